#pragma once
// C++17. Host entry points of the CUDA canonical reduction (kernels/segment_reduce.cu); pointers
// are device memory, and each call is asynchronous on `stream` (a cudaStream_t).

#include "segment_reduce_kernel.hpp"

namespace embedkit::kernels {

/// Writes each run's piece bounds (see PieceLayoutArgs).
void run_piece_layout(const PieceLayoutArgs& args, void* stream);
/// Sums each piece's rows (see PieceSumArgs).
void run_piece_sums(const PieceSumArgs& args, void* stream);
/// Adds each run's piece sums (see CombineArgs).
void run_combine(const CombineArgs& args, void* stream);

}  // namespace embedkit::kernels
