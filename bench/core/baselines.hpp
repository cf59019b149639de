#pragma once
// The plain implementations embedkit is measured against, compiled into the same binary and run on
// the same OpenMP thread count, so that a ratio to them survives a noisy, shared machine.

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

namespace embedkit::bench {

/// Copies `count` floats, each thread one contiguous slice in one memcpy: the machine's copy
/// bandwidth, the ceiling for a gather, which reads and writes as many bytes.
void stream_copy(const float* source, float* destination, std::int64_t count);

/// Allocates `count` floats as the library allocates a table's weights (2 MiB aligned, huge pages
/// advised from 64 MiB), fills them with `value` on the OpenMP threads and frees them: the floor of
/// creating a table, every page faulted in and written once, with nothing drawn.
void fresh_fill(std::int64_t count, float value);

/// out[i, :] = matrix[ids[i], :] with one memcpy per row, no bounds check.
void naive_gather(const float* matrix, std::int64_t dim, std::span<const std::int64_t> ids, float* out);

/// out[b, :] = Σ matrix[ids[j], :] over bag b's positions (CSR offsets), a plain loop per bag.
void naive_pooled_sum(const float* matrix, std::int64_t dim, std::span<const std::int64_t> ids,
                      std::span<const std::int64_t> offsets, float* out);

/// A training step written the obvious way: the pooled-sum forward (naive_pooled_sum), the sparse
/// gradient as a std::unordered_map scatter-add of each bag's gradient into its ids' rows (one
/// thread), then SGD on the touched rows. Owns its matrix.
class NaiveTrainStep {
 public:
  NaiveTrainStep(std::vector<float> matrix, std::int64_t dim, float learning_rate);

  /// One step on a batch; `forward_out` receives the pooled rows, `grad_bags` is their gradient.
  void run(std::span<const std::int64_t> ids, std::span<const std::int64_t> offsets, float* forward_out,
           std::span<const float> grad_bags);

 private:
  std::vector<float> matrix_;
  std::int64_t dim_;
  float learning_rate_;
  std::unordered_map<std::int64_t, std::vector<float>> gradient_;
};

}  // namespace embedkit::bench
