#pragma once
// C++17. Host entry point of the fused train step (kernels/fused_apply.cu); pointers are device memory.

#include "fused_apply_kernel.hpp"

namespace embedkit::kernels {

/// Launches one fused step over args.runs runs on `stream` (a cudaStream_t); asynchronous. Rows
/// must fit (fits_fused(args.step.dim)). Throws embedkit::Error if the launch fails.
void run_fused_apply(const FusedApplyArgs& args, void* stream);

}  // namespace embedkit::kernels
