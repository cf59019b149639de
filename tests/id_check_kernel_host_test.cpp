// The bounds check's second pass (kernels/id_check_kernel.hpp) at every launch coordinate on the
// CPU, folded as the kernel folds it (a count and a minimum), against a scan written here.
#include <gtest/gtest.h>

#include "kernels/id_check_kernel.hpp"
#include "tests/kernel_host_launch.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace {

using embedkit::kernels::IdCheckArgs;
using embedkit::kernels::kIdCheckBlockThreads;
using embedkit::kernels::out_of_range_position;

template <class T>
class IdCheckHost : public ::testing::Test {};

using IndexTypes = ::testing::Types<std::int32_t, std::int64_t>;
TYPED_TEST_SUITE(IdCheckHost, IndexTypes);

struct Found {
  std::int64_t count = 0;
  std::int64_t first = -1;
};

template <class Index>
Found second_pass(const std::vector<Index>& ids, std::int64_t input_dim) {
  const auto count = static_cast<std::int64_t>(ids.size());
  const IdCheckArgs<Index> args{ids.data(), count, input_dim};
  Found found;
  std::int64_t first = count;  // the kernel's "none"
  embedkit::testing::host_launch((count + kIdCheckBlockThreads - 1) / kIdCheckBlockThreads, kIdCheckBlockThreads,
                                 [&](std::int64_t block, int thread) {
                                   const std::int64_t p = out_of_range_position(block, thread, args);
                                   if (p < 0) return;
                                   ++found.count;
                                   first = std::min(first, p);
                                 });
  if (found.count > 0) found.first = first;
  return found;
}

template <class Index>
Found reference(const std::vector<Index>& ids, std::int64_t input_dim) {
  Found found;
  for (std::size_t p = 0; p < ids.size(); ++p) {
    if (ids[p] < 0 || static_cast<std::int64_t>(ids[p]) >= input_dim) {
      if (found.count++ == 0) found.first = static_cast<std::int64_t>(p);
    }
  }
  return found;
}

TYPED_TEST(IdCheckHost, CountsAndFindsTheFirstLikeAPlainScan) {
  using Index = TypeParam;
  constexpr std::int64_t kInputDim = 10000;
  std::mt19937_64 rng(11);
  for (const std::size_t count :
       {std::size_t{0}, std::size_t{1}, std::size_t{255}, std::size_t{256}, std::size_t{257}, std::size_t{5000}}) {
    for (const double bad_share : {0.0, 0.001, 0.5, 1.0}) {
      std::vector<Index> ids(count);
      for (auto& id : ids) {
        const bool bad = static_cast<double>(rng() % 10000) < bad_share * 10000;
        const std::int64_t choice = static_cast<std::int64_t>(rng() % 4);
        const std::int64_t out = choice == 0   ? -1
                                 : choice == 1 ? kInputDim
                                 : choice == 2 ? std::numeric_limits<Index>::max()
                                               : std::numeric_limits<Index>::min();
        id = static_cast<Index>(bad ? out : static_cast<std::int64_t>(rng() % kInputDim));
      }
      if (count > 3 && bad_share == 0.0) ids[count - 1] = static_cast<Index>(kInputDim - 1);  // the last good id
      const Found got = second_pass(ids, kInputDim), expected = reference(ids, kInputDim);
      EXPECT_EQ(got.count, expected.count) << count << " ids, share " << bad_share;
      EXPECT_EQ(got.first, expected.first) << count << " ids, share " << bad_share;
    }
  }
}

TYPED_TEST(IdCheckHost, TheLastPositionOfAPartialBlockIsLookedAt) {
  using Index = TypeParam;
  std::vector<Index> ids(300, 1);
  ids[299] = 7;
  const Found found = second_pass(ids, 7);
  EXPECT_EQ(found.count, 1);
  EXPECT_EQ(found.first, 299);
}

}  // namespace
