# cmake -P script: install embedkit from EMBEDKIT_BUILD_DIR into SCRATCH_DIR/prefix, then configure,
# build and run the consumer project in CONSUMER_SOURCE_DIR against that prefix alone.
file(REMOVE_RECURSE "${SCRATCH_DIR}")
set(prefix "${SCRATCH_DIR}/prefix")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}")
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "failed (${result}): ${ARGN}\n${err}")
  endif()
endfunction()

run(${CMAKE_COMMAND} --install "${EMBEDKIT_BUILD_DIR}" --prefix "${prefix}")
run(${CMAKE_COMMAND} -S "${CONSUMER_SOURCE_DIR}" -B "${SCRATCH_DIR}/build" -G "${GENERATOR}"
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build "${SCRATCH_DIR}/build")
run("${SCRATCH_DIR}/build/consumer_cpp")
run("${SCRATCH_DIR}/build/consumer_c")
