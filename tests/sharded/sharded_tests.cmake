# The sharded-table tests: one GoogleTest program run under mpirun on 1, 2 and 4 ranks (more ranks
# than this machine's cores: oversubscribed, each rank single-threaded). Every rank runs every test,
# since the calls are collective; the job fails when any rank does.
add_executable(sharded_test sharded/mpi_test_main.cpp sharded/sharded_parity_test.cpp sharded/sharded_errors_test.cpp
                            sharded/sharded_checkpoint_test.cpp)
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

# A rank killed in the middle of a train step ends the job, non-zero, well within the timeout.
add_executable(rank_death_helper sharded/rank_death_helper.cpp)
target_link_libraries(rank_death_helper PRIVATE embedkit::embedkit MPI::MPI_C)
embedkit_warnings(rank_death_helper)
add_test(NAME sharded_rank_death
         COMMAND ${CMAKE_COMMAND} -DTIMEOUT=60
                 "-DCOMMAND=${MPIEXEC_EXECUTABLE};${MPIEXEC_NUMPROC_FLAG};2;${EMBEDKIT_MPIEXEC_FLAGS};${MPIEXEC_PREFLAGS};$<TARGET_FILE:rank_death_helper>"
                 -P ${CMAKE_CURRENT_SOURCE_DIR}/sharded/expect_job_ends.cmake)
set_tests_properties(sharded_rank_death PROPERTIES LABELS "mpi" PROCESSORS 2 TIMEOUT 120
                     ENVIRONMENT "OMP_NUM_THREADS=1;${EMBEDKIT_MPI_TEST_ENVIRONMENT}")

# The sharded C ABI from a C program.
add_executable(c_api_sharded_test sharded/c_api_sharded_test.c)
target_link_libraries(c_api_sharded_test PRIVATE embedkit::embedkit MPI::MPI_C)
embedkit_warnings(c_api_sharded_test)
foreach(ranks IN ITEMS 1 2)
  add_test(NAME c_api_sharded_test_np${ranks}
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${ranks} ${EMBEDKIT_MPIEXEC_FLAGS} ${MPIEXEC_PREFLAGS}
                   $<TARGET_FILE:c_api_sharded_test> ${MPIEXEC_POSTFLAGS})
  set_tests_properties(c_api_sharded_test_np${ranks} PROPERTIES LABELS "mpi" PROCESSORS ${ranks} TIMEOUT 120
                       ENVIRONMENT "OMP_NUM_THREADS=1;${EMBEDKIT_MPI_TEST_ENVIRONMENT}")
endforeach()

# NCCL's row exchange between the GPUs of ranks: compiled in the CUDA lane; on a machine with GPUs it
# runs on one rank (ctest -L gpu), and skips without a device.
if(EMBEDKIT_WITH_NCCL)
  add_executable(nccl_exchange_gpu_test sharded/mpi_test_main.cpp gpu/nccl_exchange_gpu_test.cpp)
  target_link_libraries(nccl_exchange_gpu_test PRIVATE embedkit_internal GTest::gtest MPI::MPI_C NCCL::NCCL
                                                       CUDA::cudart_static)
  target_include_directories(nccl_exchange_gpu_test PRIVATE ${PROJECT_SOURCE_DIR})
  embedkit_warnings(nccl_exchange_gpu_test)
  add_test(NAME nccl_exchange_gpu_test
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 1 ${EMBEDKIT_MPIEXEC_FLAGS} ${MPIEXEC_PREFLAGS}
                   $<TARGET_FILE:nccl_exchange_gpu_test> ${MPIEXEC_POSTFLAGS})
  set_tests_properties(nccl_exchange_gpu_test PROPERTIES LABELS "gpu;mpi" TIMEOUT 120
                       ENVIRONMENT "OMP_NUM_THREADS=1" SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
endif()
