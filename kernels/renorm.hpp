#pragma once
// C++17. Host entry point of the max_norm renorm kernel (kernels/renorm.cu); pointers are device
// memory; the call is asynchronous on `stream` (a cudaStream_t).

#include "renorm_kernel.hpp"

namespace embedkit::kernels {

/// Renormalises each distinct in-range row of args.ids as detail/renorm_math.hpp says; args.claimed
/// must be zero.
template <class Index>
void run_renorm(const RenormArgs<Index>& args, void* stream);

}  // namespace embedkit::kernels
