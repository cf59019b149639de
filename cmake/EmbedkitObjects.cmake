# embedkit_object_library(NAME SOURCES...): one part of libembedkit (the table layer in src/, a
# backend in cpu/, sim/ or kernels/), compiled as the shared library needs it. Every part sees the
# public headers and src/'s core and backend headers; what else it sees it adds itself, privately.
function(embedkit_object_library name)
  add_library(${name} OBJECT ${ARGN})
  set_target_properties(${name} PROPERTIES
    POSITION_INDEPENDENT_CODE ON
    CXX_VISIBILITY_PRESET hidden
    CUDA_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  target_compile_definitions(${name} PRIVATE EMBEDKIT_BUILDING)
  # -fno-math-errno: sqrtf and friends never set errno (nothing here reads it after a math call), so
  # the compiler inlines them as single instructions and hoists them out of the per-column loops of
  # the optimizer step. Values are unchanged: only the errno side effect goes.
  # -ffp-contract=off: no multiply-add contraction in the loops compiled for a wider instruction set
  # (cpu/isa.hpp), so they give the bits of the baseline build, which has no FMA to contract into.
  target_compile_options(${name} PRIVATE "$<$<COMPILE_LANGUAGE:CXX>:-fno-math-errno;-ffp-contract=off>")
  target_include_directories(${name} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>
    $<BUILD_INTERFACE:${EMBEDKIT_DLPACK_INCLUDE_DIR}>)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PRIVATE OpenMP::OpenMP_CXX fmt::fmt spdlog::spdlog)
  if(EMBEDKIT_WITH_CUDA)
    # -fmad=false: no multiply-add contraction on the device, as none on the host (x86-64 builds
    # without FMA), so the bits a kernel body gives in the host replays are the bits the GPU gives.
    target_compile_options(${name} PRIVATE "$<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr;-fmad=false>")
  endif()
  embedkit_warnings(${name})
endfunction()
