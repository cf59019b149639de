#pragma once
// C++17. Host entry points of the remaining CUDA table operations (kernels/table_ops.cu); pointers
// are device memory; each call is asynchronous on `stream` (a cudaStream_t).

#include <embedkit/config.hpp>

#include "elementwise_kernel.hpp"
#include "pooled_grad_kernel.hpp"

#include <cstdint>

namespace embedkit::kernels {

void run_fill_initial(const FillInitialArgs& args, void* stream);
void run_fill(const FillArgs& args, void* stream);
/// Flags non-finite rows with 2 (rows already flagged are left as they are); a lane group reads
/// each row (elementwise_kernel.hpp).
void run_nonfinite(const NonFiniteArgs& args, void* stream);
template <class Index>
void run_entry_rows(const EntryRowsArgs<Index>& args, void* stream);
/// The constraint on every one of `rows` rows of `dim` weights.
void run_constrain(float* weights, std::int64_t rows, std::int64_t dim, ConstraintKind constraint, float max_value,
                   void* stream);
/// partials[k] = detail::penalty_chunk(weights, count, k, l1, l2) for each of the
/// detail::penalty_chunks(count) chunks (include/embedkit/detail/penalty.hpp, shared with the CPU),
/// bit for bit; a warp reads each chunk cooperatively (penalty_kernel.hpp).
void run_penalty_chunks(const float* weights, std::int64_t count, double l1, double l2, double* partials, void* stream);

}  // namespace embedkit::kernels
