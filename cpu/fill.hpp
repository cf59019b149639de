#pragma once
// Initial weights on the CPU: every value from the counter-based sampler, so the matrix does not
// depend on the thread count.

#include <embedkit/detail/init_sampler.hpp>
#include <embedkit/detail/stored_row.hpp>

#include <cstdint>

namespace embedkit::cpu {

/// weights[r, c] = init_value(sampler, seed, r, c) for the (rows, dim) matrix.
void fill_initial(float* weights, std::int64_t rows, std::int64_t dim, const detail::InitSampler& sampler,
                  std::uint64_t seed);

/// The same for rows stored as float16 or bfloat16: each value drawn in float32, rounded to nearest.
template <class T>
void fill_initial(T* weights, std::int64_t rows, std::int64_t dim, const detail::InitSampler& sampler,
                  std::uint64_t seed);

}  // namespace embedkit::cpu
