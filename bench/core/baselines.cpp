#include "baselines.hpp"

#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace embedkit::bench {

void stream_copy(const float* source, float* destination, std::int64_t count) {
#pragma omp parallel
  {
    const std::int64_t threads = omp_get_num_threads();
    const std::int64_t thread = omp_get_thread_num();
    const std::int64_t begin = count * thread / threads;
    const std::int64_t end = count * (thread + 1) / threads;
    std::memcpy(destination + begin, source + begin, static_cast<std::size_t>(end - begin) * sizeof(float));
  }
}

void fresh_fill(std::int64_t count, float value) {
  // As cpu/cpu_backend.cpp allocates weights, so the two differ only in what they write.
  constexpr std::size_t kHugePage = std::size_t{2} << 20;
  constexpr std::size_t kHugePageMinBytes = 32 * kHugePage;
  const std::size_t bytes = static_cast<std::size_t>(count) * sizeof(float);
  const bool huge = bytes >= kHugePageMinBytes;
  const std::size_t alignment = huge ? kHugePage : 64;
  const std::size_t rounded = std::max(alignment, (bytes + alignment - 1) / alignment * alignment);
  auto* data = static_cast<float*>(std::aligned_alloc(alignment, rounded));
  if (data == nullptr) throw std::bad_alloc();
  if (huge) (void)madvise(data, rounded, MADV_HUGEPAGE);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < count; ++i) data[i] = value;
  std::free(data);
}

void naive_gather(const float* matrix, std::int64_t dim, std::span<const std::int64_t> ids, float* out) {
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * sizeof(float);
  const auto count = static_cast<std::int64_t>(ids.size());
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < count; ++i) std::memcpy(out + i * dim, matrix + ids[i] * dim, row_bytes);
}

void naive_pooled_sum(const float* matrix, std::int64_t dim, std::span<const std::int64_t> ids,
                      std::span<const std::int64_t> offsets, float* out) {
  const auto bags = static_cast<std::int64_t>(offsets.size()) - 1;
#pragma omp parallel for schedule(static)
  for (std::int64_t b = 0; b < bags; ++b) {
    float* sum = out + b * dim;
    for (std::int64_t c = 0; c < dim; ++c) sum[c] = 0.0f;
    for (std::int64_t j = offsets[b]; j < offsets[b + 1]; ++j) {
      const float* row = matrix + ids[j] * dim;
      for (std::int64_t c = 0; c < dim; ++c) sum[c] += row[c];
    }
  }
}

NaiveTrainStep::NaiveTrainStep(std::vector<float> matrix, std::int64_t dim, float learning_rate)
    : matrix_(std::move(matrix)), dim_(dim), learning_rate_(learning_rate) {}

void NaiveTrainStep::run(std::span<const std::int64_t> ids, std::span<const std::int64_t> offsets, float* forward_out,
                         std::span<const float> grad_bags) {
  naive_pooled_sum(matrix_.data(), dim_, ids, offsets, forward_out);
  gradient_.clear();
  const auto bags = static_cast<std::int64_t>(offsets.size()) - 1;
  for (std::int64_t b = 0; b < bags; ++b) {
    const float* grad = grad_bags.data() + b * dim_;
    for (std::int64_t j = offsets[b]; j < offsets[b + 1]; ++j) {
      std::vector<float>& row = gradient_[ids[j]];
      if (row.empty()) row.assign(static_cast<std::size_t>(dim_), 0.0f);
      for (std::int64_t c = 0; c < dim_; ++c) row[static_cast<std::size_t>(c)] += grad[c];
    }
  }
  for (const auto& [id, grad] : gradient_) {
    float* row = matrix_.data() + id * dim_;
    for (std::int64_t c = 0; c < dim_; ++c) row[c] -= learning_rate_ * grad[static_cast<std::size_t>(c)];
  }
}

}  // namespace embedkit::bench
