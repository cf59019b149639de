# embedkit_warnings(target): -Wall -Wextra and friends for host code, the host compiler's warnings
# for nvcc, and -Werror when EMBEDKIT_WERROR is set (CI sets it).
function(embedkit_warnings target)
  set(_host_flags -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion)
  if(EMBEDKIT_WERROR)
    list(APPEND _host_flags -Werror)
  endif()
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:${_host_flags}>
    $<$<COMPILE_LANGUAGE:C>:-Wall -Wextra -Wpedantic $<$<BOOL:${EMBEDKIT_WERROR}>:-Werror>>
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra $<$<BOOL:${EMBEDKIT_WERROR}>:-Werror=all-warnings>>)
endfunction()
