# Runs COMMAND (a ;-list) and passes only when it ends by itself within TIMEOUT seconds with a
# non-zero status: a rank that dies must not leave the others hanging.
execute_process(COMMAND ${COMMAND} TIMEOUT ${TIMEOUT} RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
message(STATUS "${output}")
if(result MATCHES "timeout|Timeout")
  message(FATAL_ERROR "the job was still running after ${TIMEOUT} s: the surviving ranks hang")
endif()
if(result STREQUAL "0")
  message(FATAL_ERROR "the job exited 0 although a rank was killed")
endif()
message(STATUS "the job ended with '${result}' within ${TIMEOUT} s, as it should")
