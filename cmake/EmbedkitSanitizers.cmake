# EMBEDKIT_SANITIZE="address,undefined" instruments every host target (the CI sanitizer lane).
if(EMBEDKIT_SANITIZE)
  if(EMBEDKIT_WITH_CUDA)
    message(FATAL_ERROR "EMBEDKIT_SANITIZE needs a CPU-only build (-DEMBEDKIT_CUDA=OFF): "
                        "the CUDA runtime does not run under AddressSanitizer")
  endif()
  set(_flags -fsanitize=${EMBEDKIT_SANITIZE} -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_compile_options("$<$<COMPILE_LANGUAGE:C,CXX>:${_flags}>")
  add_link_options(-fsanitize=${EMBEDKIT_SANITIZE})
  message(STATUS "embedkit: sanitizers ${EMBEDKIT_SANITIZE}")
endif()
