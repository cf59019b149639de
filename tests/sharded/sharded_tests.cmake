# The sharded-table tests: one GoogleTest program run under mpirun on 1, 2 and 4 ranks (more ranks
# than this machine's cores: oversubscribed, each rank single-threaded). Every rank runs every test,
# since the calls are collective; the job fails when any rank does.
add_executable(sharded_test sharded/mpi_test_main.cpp sharded/sharded_parity_test.cpp sharded/sharded_errors_test.cpp)
target_link_libraries(sharded_test PRIVATE embedkit::embedkit GTest::gtest MPI::MPI_C)
target_include_directories(sharded_test PRIVATE ${PROJECT_SOURCE_DIR})
embedkit_warnings(sharded_test)

foreach(ranks IN ITEMS ${EMBEDKIT_MPI_TEST_RANKS})
  add_test(NAME sharded_test_np${ranks}
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${ranks} ${EMBEDKIT_MPIEXEC_FLAGS} ${MPIEXEC_PREFLAGS}
                   $<TARGET_FILE:sharded_test> ${MPIEXEC_POSTFLAGS})
  set_tests_properties(sharded_test_np${ranks} PROPERTIES
    LABELS "mpi" PROCESSORS ${ranks} TIMEOUT 300
    ENVIRONMENT "OMP_NUM_THREADS=1;${EMBEDKIT_MPI_TEST_ENVIRONMENT}")
endforeach()
