#pragma once
// C++17, host and device. The table operations that touch elements independently: the
// initializer's fill, a constant fill, and a non-finite scan of gradient rows. Launched with
// kElementBlockThreads threads per block; tests run the bodies for every coordinate on the CPU.

#include <embedkit/detail/host_device.hpp>
#include <embedkit/detail/init_sampler.hpp>
#include <embedkit/detail/optimizer_math.hpp>

#include <cmath>
#include <cstdint>

namespace embedkit::kernels {

constexpr int kElementBlockThreads = 256;

EK_HOST_DEVICE inline std::int64_t element_index(std::int64_t block, int thread) {
  return block * kElementBlockThreads + thread;
}

/// weights[i] = the initializer's value at (row, column) of element i: the CPU's matrix, bit for bit
/// up to the device's libm (uniform and constants are exact; normals agree within an ulp or two).
struct FillInitialArgs {
  float* weights;
  std::int64_t rows;
  std::int64_t dim;
  detail::InitSampler sampler;
  std::uint64_t seed;
};

EK_HOST_DEVICE inline void fill_initial_body(std::int64_t block, int thread, const FillInitialArgs& a) {
  const std::int64_t i = element_index(block, thread);
  if (i >= a.rows * a.dim) return;
  a.weights[i] = detail::init_value(a.sampler, a.seed, static_cast<std::uint64_t>(i / a.dim),
                                    static_cast<std::uint32_t>(i % a.dim));
}

struct FillArgs {
  float* data;
  std::int64_t count;
  float value;
};

EK_HOST_DEVICE inline void fill_body(std::int64_t block, int thread, const FillArgs& a) {
  const std::int64_t i = element_index(block, thread);
  if (i < a.count) a.data[i] = a.value;
}

/// One thread per gradient row: skip[u] = 1 for a row, not already skipped, holding NaN or
/// infinity. Counting happens afterwards, on the flags.
struct NonFiniteArgs {
  const float* rows;
  std::int64_t count;
  std::int64_t dim;
  std::uint8_t* skip;
};

// Whether v is neither NaN nor infinite: the rule the optimizer math judges updates by too.
using detail::finite_value;

EK_HOST_DEVICE inline void nonfinite_body(std::int64_t block, int thread, const NonFiniteArgs& a) {
  const std::int64_t u = element_index(block, thread);
  if (u >= a.count || a.skip[u] != 0) return;
  for (std::int64_t c = 0; c < a.dim; ++c) {
    const float v = a.rows[u * a.dim + c];
    if (!finite_value(v)) {
      a.skip[u] = 2;  // 2: non-finite (1: left out before the scan)
      return;
    }
  }
}

}  // namespace embedkit::kernels
