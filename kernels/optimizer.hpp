#pragma once
// C++17. Host entry point of the CUDA optimizer step (kernels/optimizer.cu); pointers are device memory.

#include "optimizer_kernel.hpp"

#include <cstdint>

namespace embedkit::kernels {

/// Launches one step over `groups` rows (args.count touched rows, or the dense range) on `stream`
/// (a cudaStream_t); asynchronous. Under args.step.rule.judge_results, rows whose update fails
/// detail::keeps_update are left alone and added to *args.rejected. Throws embedkit::Error if the
/// launch fails.
void run_apply(const ApplyArgs& args, std::int64_t groups, void* stream);

/// Launches run_apply's judgement alone, writing nothing of the table: *first (set to ~0 by the
/// caller) becomes the smallest id whose update run_apply would reject, if any. Asynchronous.
void run_find_rejected(const ApplyArgs& args, std::int64_t groups, unsigned long long* first, void* stream);

}  // namespace embedkit::kernels
