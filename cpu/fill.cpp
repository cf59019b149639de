#include "fill.hpp"

#include "parallel.hpp"

namespace embedkit::cpu {

void fill_initial(float* weights, std::int64_t rows, std::int64_t dim, const detail::InitSampler& sampler,
                  std::uint64_t seed) {
#pragma omp parallel for schedule(static) if (rows * dim >= kParallelMinFloats)
  for (std::int64_t r = 0; r < rows; ++r) {
    float* row = weights + r * dim;
    for (std::int64_t c = 0; c < dim; ++c) {
      row[c] = detail::init_value(sampler, seed, static_cast<std::uint64_t>(r), static_cast<std::uint32_t>(c));
    }
  }
}

}  // namespace embedkit::cpu
