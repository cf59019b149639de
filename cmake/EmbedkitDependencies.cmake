# Third-party libraries, all from Debian packages (scripts/setup.sh installs them).
find_package(OpenMP REQUIRED COMPONENTS CXX)
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
