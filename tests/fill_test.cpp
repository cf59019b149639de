// The CPU's initial fill against detail::init_value one value at a time: the vectorised clones
// (cpu/fill.cpp, cpu/philox_avx2.hpp) must give its bits for every width, row, shard offset and
// seed, including widths that leave a tail and rows and seeds that use their high 32 bits.
#include <gtest/gtest.h>

#include "cpu/fill.hpp"

#include <omp.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace {

using embedkit::detail::InitSampler;

struct Shard {
  std::uint64_t first, stride;
};

void expect_reference_bits(const InitSampler& sampler, std::uint64_t seed, std::int64_t rows, std::int64_t dim) {
  std::vector<float> filled(static_cast<std::size_t>(rows * dim), -7.0f);
  embedkit::cpu::fill_initial(filled.data(), rows, dim, sampler, seed);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < dim; ++c) {
      const float expected =
          embedkit::detail::init_value(sampler, seed, static_cast<std::uint64_t>(r), static_cast<std::uint32_t>(c));
      const float got = filled[static_cast<std::size_t>(r * dim + c)];
      ASSERT_EQ(std::memcmp(&expected, &got, sizeof(float)), 0)
          << "weights[" << r << "," << c << "] = " << got << ", the reference gives " << expected << " (dim " << dim
          << ", seed " << seed << ", row_first " << sampler.row_first << ", row_stride " << sampler.row_stride << ")";
    }
  }
}

TEST(CpuFill, UniformIsTheReferenceBitForBit) {
  const std::uint64_t seeds[] = {0, 7, 20240601, 0x0123456789ABCDEFull, ~std::uint64_t{0}};
  const Shard shards[] = {{0, 1}, {5, 3}, {(std::uint64_t{1} << 32) - 3, 1}, {0xFFFFFFFF00000000ull, 7}};
  const double ranges[][2] = {{-0.05, 0.05}, {0.0, 1.0}, {-3.0, 1e-3}};
  for (const std::uint64_t seed : seeds) {
    for (const std::int64_t dim : {1, 3, 4, 5, 15, 16, 17, 33, 64, 100}) {
      for (const Shard& shard : shards) {
        for (const auto& range : ranges) {
          const InitSampler sampler{InitSampler::uniform, range[0], range[1], shard.first, shard.stride};
          expect_reference_bits(sampler, seed, 19, dim);
        }
      }
    }
  }
}

TEST(CpuFill, OtherInitializersAreTheReferenceBitForBit) {
  for (const auto kind : {InitSampler::normal, InitSampler::truncated_normal, InitSampler::constant}) {
    expect_reference_bits(InitSampler{kind, 0.5, 0.05, 3, 2}, 11, 23, 17);
  }
}

// Large enough that the fill runs on a thread team (cpu/parallel.hpp's kParallelMinFloats).
TEST(CpuFill, SameBitsOnOneThreadAndOnMany) {
  const std::int64_t rows = 4099, dim = 19;
  const InitSampler sampler{InitSampler::uniform, -0.05, 0.05, 0, 1};
  std::vector<float> one(static_cast<std::size_t>(rows * dim)), many(one.size());
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  embedkit::cpu::fill_initial(one.data(), rows, dim, sampler, 3);
  omp_set_num_threads(4);
  embedkit::cpu::fill_initial(many.data(), rows, dim, sampler, 3);
  omp_set_num_threads(threads);
  EXPECT_EQ(std::memcmp(one.data(), many.data(), one.size() * sizeof(float)), 0);
}

}  // namespace
