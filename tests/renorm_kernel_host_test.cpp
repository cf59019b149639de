// torch's max_norm renorm: the CPU loop (cpu/renorm.cpp) against a plain long-double reference,
// on any thread count, and the CUDA kernel's body (kernels/renorm_kernel.hpp) replayed on the CPU
// group by group and lane by lane around the collectives' host twins, against the CPU loop. The
// shared norm (include/embedkit/detail/renorm_math.hpp) is checked where float32 would overflow.
#include <gtest/gtest.h>

#include "cpu/renorm.hpp"
#include "kernels/group_reduce.hpp"
#include "kernels/launch_plan.hpp"
#include "kernels/renorm_kernel.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <vector>

namespace {

using embedkit::detail::renorm_rule;
using embedkit::detail::RenormRule;

constexpr double kInf = std::numeric_limits<double>::infinity();

// The p-norm in long double, the definition itself.
long double plain_norm(const float* row, std::int64_t dim, double p) {
  long double sum = 0, largest = 0;
  for (std::int64_t c = 0; c < dim; ++c) {
    const long double a = std::fabs(static_cast<long double>(row[c]));
    largest = std::max(largest, a);
    sum += std::pow(a, static_cast<long double>(p));
  }
  return std::isinf(p) ? largest : std::pow(sum, 1.0L / static_cast<long double>(p));
}

std::vector<float> random_rows(std::int64_t rows, std::int64_t dim, std::uint64_t seed, float spread) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> value(-spread, spread);
  std::vector<float> weights(static_cast<std::size_t>(rows * dim));
  for (auto& w : weights) w = value(rng);
  return weights;
}

TEST(RenormMath, NormsMatchTheDefinition) {
  for (const double p : {0.5, 1.0, 2.0, 3.0, 7.5, kInf}) {
    for (const std::int64_t dim : {std::int64_t{1}, std::int64_t{5}, std::int64_t{64}, std::int64_t{129}}) {
      const std::vector<float> row = random_rows(1, dim, static_cast<std::uint64_t>(dim), 2.0f);
      const float got = embedkit::cpu::renorm_norm(row.data(), dim, renorm_rule(1.0, p));
      const auto expected = static_cast<double>(plain_norm(row.data(), dim, p));
      EXPECT_NEAR(got, expected, 1e-6 * expected) << "p " << p << ", dim " << dim;
    }
  }
}

TEST(RenormMath, LargeValuesAndLargePDoNotOverflowTheNorm) {
  // 1e30² overflows float32 and 3e30^20 a double: the norms stay finite and right.
  const std::vector<float> row = {1e30f, -2e30f, 3e30f};
  for (const double p : {2.0, 20.0, 100.0}) {
    const float got = embedkit::cpu::renorm_norm(row.data(), 3, renorm_rule(1.0, p));
    const auto expected = static_cast<double>(plain_norm(row.data(), 3, p));
    EXPECT_TRUE(std::isfinite(got)) << "p " << p;
    EXPECT_NEAR(got, expected, 1e-6 * expected) << "p " << p;
  }
  std::vector<float> scaled = row;
  embedkit::cpu::renorm_row(scaled.data(), 3, renorm_rule(1.0, 20.0));
  EXPECT_NEAR(static_cast<double>(plain_norm(scaled.data(), 3, 20.0)), 1.0, 1e-6);
}

TEST(RenormMath, ZeroNanAndInfiniteRows) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (const double p : {1.0, 2.0, 3.0, kInf}) {
    std::vector<float> zeros(4, 0.0f);
    embedkit::cpu::renorm_row(zeros.data(), 4, renorm_rule(1.0, p));
    EXPECT_EQ(zeros, std::vector<float>(4, 0.0f));
    // A NaN norm is not above max_norm: the row is left as it is, as torch leaves it.
    std::vector<float> with_nan = {5.0f, nan, 7.0f};
    embedkit::cpu::renorm_row(with_nan.data(), 3, renorm_rule(1.0, p));
    EXPECT_EQ(with_nan[0], 5.0f) << "p " << p;
    EXPECT_EQ(with_nan[2], 7.0f) << "p " << p;
    // An infinite norm scales by max_norm / ∞ = 0, as torch does.
    std::vector<float> with_inf = {5.0f, inf};
    EXPECT_EQ(embedkit::cpu::renorm_norm(with_inf.data(), 2, renorm_rule(1.0, p)), inf) << "p " << p;
    embedkit::cpu::renorm_row(with_inf.data(), 2, renorm_rule(1.0, p));
    EXPECT_EQ(with_inf[0], 0.0f) << "p " << p;
  }
}

TEST(RenormMath, ScaleIsTorchs) {
  std::vector<float> row = {3.0f, 4.0f};  // 2-norm 5
  embedkit::cpu::renorm_row(row.data(), 2, renorm_rule(2.0, 2.0));
  const auto scale = static_cast<float>(2.0 / (5.0 + 1e-7));
  EXPECT_EQ(row[0], 3.0f * scale);
  EXPECT_EQ(row[1], 4.0f * scale);
  std::vector<float> at_max = {3.0f, 4.0f};  // norm == max_norm: not above it, left alone
  embedkit::cpu::renorm_row(at_max.data(), 2, renorm_rule(5.0, 2.0));
  EXPECT_EQ(at_max, (std::vector<float>{3.0f, 4.0f}));
}

TEST(RenormCpu, RowsAreTheSameOnAnyThreadCount) {
  constexpr std::int64_t kRows = 3000, kDim = 24;  // past the parallel threshold
  const std::vector<float> weights = random_rows(kRows, kDim, 5, 1.0f);
  std::vector<std::int64_t> ids(kRows / 2);
  for (std::size_t k = 0; k < ids.size(); ++k) ids[k] = static_cast<std::int64_t>(2 * k + 1);
  for (const double p : {1.0, 2.0, 3.0, kInf}) {
    std::vector<float> one = weights, many = weights;
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    embedkit::cpu::renorm_rows(one.data(), kDim, ids.data(), static_cast<std::int64_t>(ids.size()),
                               renorm_rule(0.5, p));
    omp_set_num_threads(4);
    embedkit::cpu::renorm_rows(many.data(), kDim, ids.data(), static_cast<std::int64_t>(ids.size()),
                               renorm_rule(0.5, p));
    omp_set_num_threads(saved);
    EXPECT_EQ(std::memcmp(one.data(), many.data(), one.size() * sizeof(float)), 0) << "p " << p;
    EXPECT_NE(std::memcmp(one.data(), weights.data(), one.size() * sizeof(float)), 0) << "p " << p;
  }
}

// The kernel's phases for every group of a launch, as the device runs them: lane 0 claims, the
// claim is broadcast, then each phase lane by lane with the collectives' host twins between.
// Returns how many groups renormalised a row.
template <class Index>
std::int64_t replay_renorm(const embedkit::kernels::RenormArgs<Index>& args) {
  using namespace embedkit::kernels;
  const GroupPlan plan = plan_groups(args.count, args.dim);
  const int lanes = plan.lanes;
  std::int64_t claimed = 0;
  std::vector<float> largest(static_cast<std::size_t>(lanes));
  std::vector<double> sums(static_cast<std::size_t>(lanes));
  for (std::int64_t group = 0; group < plan.blocks * plan.groups_per_block; ++group) {
    const std::int64_t id = renorm_claim_phase(group, args);
    if (id >= 0) ++claimed;
    for (int lane = 0; lane < lanes; ++lane) largest[lane] = renorm_largest_phase(id, lane, lanes, args);
    group_max_magnitude_host(largest.data(), lanes);
    for (int lane = 0; lane < lanes; ++lane) sums[lane] = renorm_terms_phase(id, lane, lanes, args, largest[lane]);
    group_sum_host(sums.data(), lanes);
    for (int lane = 0; lane < lanes; ++lane) renorm_scale_phase(id, lane, lanes, args, sums[lane], largest[lane]);
  }
  return claimed;
}

TEST(RenormKernelHost, EachDistinctRowOnceAsTheCpuDoesIt) {
  constexpr std::int64_t kRows = 70;
  for (const double p : {1.0, 2.0, 3.0, 0.5, kInf}) {
    for (const std::int64_t dim :
         {std::int64_t{1}, std::int64_t{4}, std::int64_t{13}, std::int64_t{32}, std::int64_t{67}}) {
      const std::vector<float> weights = random_rows(kRows, dim, static_cast<std::uint64_t>(dim) + 11, 1.0f);
      std::mt19937_64 rng(static_cast<std::uint64_t>(dim));
      std::vector<std::int32_t> ids(300);
      for (auto& id : ids) id = rng() % 4 == 0 ? 9 : static_cast<std::int32_t>(rng() % (kRows + 6)) - 3;  // bad too
      std::set<std::int64_t> distinct;
      for (const std::int32_t id : ids) {
        if (id >= 0 && id < kRows) distinct.insert(id);
      }
      const std::vector<std::int64_t> distinct_ids(distinct.begin(), distinct.end());
      const RenormRule rule = renorm_rule(0.8, p);

      std::vector<float> cpu = weights;
      embedkit::cpu::renorm_rows(cpu.data(), dim, distinct_ids.data(), static_cast<std::int64_t>(distinct_ids.size()),
                                 rule);
      std::vector<float> device = weights;
      std::vector<unsigned int> bitmap(static_cast<std::size_t>(embedkit::kernels::renorm_claim_words(kRows)), 0u);
      const embedkit::kernels::RenormArgs<std::int32_t> args{
          device.data(), kRows, dim, ids.data(), static_cast<std::int64_t>(ids.size()), bitmap.data(), rule};
      EXPECT_EQ(replay_renorm(args), static_cast<std::int64_t>(distinct.size())) << "p " << p << ", dim " << dim;
      for (std::int64_t r = 0; r < kRows; ++r) {
        const bool set = (bitmap[static_cast<std::size_t>(r / 32)] >> (r % 32) & 1u) != 0;
        EXPECT_EQ(set, distinct.count(r) != 0) << "row " << r;
      }
      // The lanes sum the row in another order than the CPU's column order: the norms agree to the
      // last bits of a double, the rows within float rounding.
      for (std::size_t i = 0; i < cpu.size(); ++i) {
        ASSERT_NEAR(device[i], cpu[i], 1e-6f * (1.0f + std::fabs(cpu[i]))) << "p " << p << ", dim " << dim;
      }
      int changed = 0;
      for (std::size_t i = 0; i < cpu.size(); ++i) changed += device[i] != weights[i] ? 1 : 0;
      EXPECT_GT(changed, 0) << "p " << p << ", dim " << dim;
    }
  }
}

TEST(RenormKernelHost, MaxCollectiveKeepsNaN) {
  float values[8] = {1, -3, 2, std::numeric_limits<float>::quiet_NaN(), 0, 5, 4, 1};
  for (float& v : values) v = embedkit::detail::magnitude(v);
  embedkit::kernels::group_max_magnitude_host(values, 8);
  for (const float v : values) EXPECT_TRUE(std::isnan(v));
  float plain[4] = {1, 7, 2, 3};
  embedkit::kernels::group_max_magnitude_host(plain, 4);
  for (const float v : plain) EXPECT_EQ(v, 7.0f);
}

}  // namespace
