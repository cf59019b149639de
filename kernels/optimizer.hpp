#pragma once
// C++17. Host entry point of the CUDA optimizer step (kernels/optimizer.cu); pointers are device memory.

#include "optimizer_kernel.hpp"

#include <cstdint>

namespace embedkit::kernels {

/// Launches one step over `groups` rows (args.count touched rows, or the dense range) on `stream`
/// (a cudaStream_t); asynchronous. Throws embedkit::Error if the launch fails.
void run_apply(const ApplyArgs& args, std::int64_t groups, void* stream);

}  // namespace embedkit::kernels
