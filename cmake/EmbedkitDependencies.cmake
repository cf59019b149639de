# Third-party libraries, all from Debian packages (scripts/setup.sh installs them).
find_package(OpenMP REQUIRED COMPONENTS CXX)
# ThreadSanitizer understands OpenMP's synchronisation only through LLVM's runtime (libomp, whose
# Archer tool tells TSan about barriers and tasks); GCC's libgomp makes it report false races.
# clang picks libomp (-fopenmp=libomp) when libomp-dev is installed; anything else is refused.
if(EMBEDKIT_SANITIZE MATCHES "thread" AND NOT OpenMP_CXX_LIBRARIES MATCHES "/libomp[.]")
  message(FATAL_ERROR "EMBEDKIT_SANITIZE=thread needs clang with LLVM's OpenMP runtime (Debian: clang, "
                      "libomp-dev; scripts/setup.sh installs them), but OpenMP resolved to "
                      "'${OpenMP_CXX_LIBRARIES}' with ${CMAKE_CXX_COMPILER_ID}: GCC's libgomp gives false TSan reports")
endif()
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)

# xxHash checksums checkpoint files (Debian: libxxhash-dev).
find_path(EMBEDKIT_XXHASH_INCLUDE_DIR xxhash.h REQUIRED)
find_library(EMBEDKIT_XXHASH_LIBRARY xxhash REQUIRED)

# DLPack is a single C header; Debian's libdlpack-dev also ships a CMake package.
find_path(EMBEDKIT_DLPACK_INCLUDE_DIR dlpack/dlpack.h REQUIRED)

if(EMBEDKIT_BUILD_TOOLS)
  find_package(CLI11 REQUIRED)
endif()
if(EMBEDKIT_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(EMBEDKIT_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
