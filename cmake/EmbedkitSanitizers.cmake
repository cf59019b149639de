# EMBEDKIT_SANITIZE instruments every host target: "address,undefined" (the asan lane) or "thread"
# (the tsan lane, with clang and LLVM's OpenMP runtime; see EmbedkitDependencies.cmake).
if(EMBEDKIT_SANITIZE)
  if(EMBEDKIT_WITH_CUDA)
    message(FATAL_ERROR "EMBEDKIT_SANITIZE needs a CPU-only build (-DEMBEDKIT_CUDA=OFF): "
                        "the CUDA runtime does not run under the sanitizers")
  endif()
  if(EMBEDKIT_SANITIZE MATCHES "thread" AND EMBEDKIT_SANITIZE MATCHES "address")
    message(FATAL_ERROR "EMBEDKIT_SANITIZE: ThreadSanitizer and AddressSanitizer cannot be combined")
  endif()
  set(_flags -fsanitize=${EMBEDKIT_SANITIZE} -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_compile_options("$<$<COMPILE_LANGUAGE:C,CXX>:${_flags}>")
  add_link_options(-fsanitize=${EMBEDKIT_SANITIZE})
  message(STATUS "embedkit: sanitizers ${EMBEDKIT_SANITIZE}")
endif()
