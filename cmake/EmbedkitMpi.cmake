# Resolves EMBEDKIT_MPI (AUTO|ON|OFF) into EMBEDKIT_WITH_MPI: sharded tables over MPI (Debian:
# libopenmpi-dev, openmpi-bin). Without MPI the library still builds, and its sharded entry points
# answer "built without MPI".
string(TOUPPER "${EMBEDKIT_MPI}" _embedkit_mpi)
set(EMBEDKIT_WITH_MPI OFF)
if(_embedkit_mpi STREQUAL "ON" OR _embedkit_mpi STREQUAL "AUTO")
  # Only the C bindings: the library calls MPI's C API from C++.
  find_package(MPI COMPONENTS C)
  if(MPI_C_FOUND)
    set(EMBEDKIT_WITH_MPI ON)
    # Open MPI's and MPICH's mpi.h would otherwise pull in the deprecated C++ bindings.
    set_property(TARGET MPI::MPI_C APPEND PROPERTY INTERFACE_COMPILE_DEFINITIONS OMPI_SKIP_MPICXX MPICH_SKIP_MPICXX)
    message(STATUS "embedkit: MPI ON (MPI ${MPI_C_VERSION}), mpiexec ${MPIEXEC_EXECUTABLE}")
  elseif(_embedkit_mpi STREQUAL "ON")
    message(FATAL_ERROR "EMBEDKIT_MPI=ON but no MPI was found (Debian: libopenmpi-dev openmpi-bin)")
  endif()
elseif(NOT _embedkit_mpi STREQUAL "OFF")
  message(FATAL_ERROR "EMBEDKIT_MPI must be AUTO, ON or OFF, got '${EMBEDKIT_MPI}'")
endif()
if(NOT EMBEDKIT_WITH_MPI)
  message(STATUS "embedkit: MPI OFF (sharded tables answer EK_UNSUPPORTED)")
endif()

if(EMBEDKIT_WITH_MPI)
  set(EMBEDKIT_MPI_TEST_RANKS "1;2;4" CACHE STRING "World sizes the sharded tests run on under mpiexec")
  # Open MPI refuses more ranks than cores, and root (CI runs as root), unless told.
  execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version OUTPUT_VARIABLE _embedkit_mpiexec_version
                  ERROR_QUIET RESULT_VARIABLE _embedkit_mpiexec_result)
  set(EMBEDKIT_MPIEXEC_FLAGS "")
  if(_embedkit_mpiexec_version MATCHES "Open MPI|OpenRTE")
    set(EMBEDKIT_MPIEXEC_FLAGS --oversubscribe --allow-run-as-root)
  endif()
  set(EMBEDKIT_MPI_TEST_ENVIRONMENT "")
  if(EMBEDKIT_SANITIZE MATCHES "address")
    # Open MPI keeps allocations alive past MPI_Finalize on purpose (its own caches and plugin
    # state), which LeakSanitizer reports by the hundred; only the MPI tests run without it.
    set(EMBEDKIT_MPI_TEST_ENVIRONMENT "ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=0")
  endif()
endif()

# NCCL (from the CUDA toolkit) moves rows between GPUs of ranks, bootstrapped over MPI: built when
# both CUDA and MPI are.
set(EMBEDKIT_WITH_NCCL OFF)
if(EMBEDKIT_WITH_MPI AND EMBEDKIT_WITH_CUDA)
  find_package(NCCL)
  if(NCCL_FOUND)
    set(EMBEDKIT_WITH_NCCL ON)
    message(STATUS "embedkit: NCCL ON (${NCCL_VERSION}, ${NCCL_LIBRARY})")
  else()
    message(STATUS "embedkit: NCCL not found: no GPU-to-GPU row exchange")
  endif()
endif()
