# Resolves EMBEDKIT_CUDA (AUTO|ON|OFF) into EMBEDKIT_WITH_CUDA and enables the CUDA language.
# The CPU-only build never touches the toolkit.
include(CheckLanguage)

string(TOUPPER "${EMBEDKIT_CUDA}" _embedkit_cuda)
set(EMBEDKIT_WITH_CUDA OFF)
if(_embedkit_cuda STREQUAL "ON" OR _embedkit_cuda STREQUAL "AUTO")
  # CMake's own search: CMAKE_CUDA_COMPILER, the CUDACXX environment variable, or nvcc on PATH
  # (scripts/find_nvcc.sh also looks in /usr/local/cuda/bin and passes what it finds).
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(EMBEDKIT_WITH_CUDA ON)
  elseif(_embedkit_cuda STREQUAL "ON")
    message(FATAL_ERROR "EMBEDKIT_CUDA=ON but no CUDA compiler (nvcc) was found")
  endif()
elseif(NOT _embedkit_cuda STREQUAL "OFF")
  message(FATAL_ERROR "EMBEDKIT_CUDA must be AUTO, ON or OFF, got '${EMBEDKIT_CUDA}'")
endif()

if(EMBEDKIT_WITH_CUDA)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 80 90)
  endif()
  enable_language(CUDA)
  # .cu files and every header they include are C++17: CMake 3.25 cannot ask nvcc 13 for C++20.
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  find_package(CUDAToolkit REQUIRED)
  # CUB and Thrust come from the toolkit's CCCL, never from Debian's older copies in /usr/include.
  set(EMBEDKIT_CCCL_INCLUDE_DIR "${CUDAToolkit_INCLUDE_DIRS}/cccl")
  if(NOT EXISTS "${EMBEDKIT_CCCL_INCLUDE_DIR}/cub/cub.cuh")
    set(EMBEDKIT_CCCL_INCLUDE_DIR "${CUDAToolkit_INCLUDE_DIRS}")
  endif()
  message(STATUS "embedkit: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures "
                 "${CMAKE_CUDA_ARCHITECTURES}, CCCL from ${EMBEDKIT_CCCL_INCLUDE_DIR})")
else()
  message(STATUS "embedkit: CUDA backend OFF (CPU-only library)")
endif()
