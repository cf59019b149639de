// Ids checked by the backend's own operations (Backend::checks_ids, as on CUDA), on the simulated
// device, against the same table on the CPU, which checks them on the host first: the same error
// text for every entry point, nothing written or applied, no counter moved; and under zero_fill
// the same results and the same count of zero-filled ids. Also when the step is chunked.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include "tests/sim_context.hpp"

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace {

using embedkit::BoundsCheck;
using embedkit::EmbeddingTable;
using embedkit::Error;
using embedkit::IndexTensor;
using embedkit::PoolingMode;
using embedkit::Status;
using embedkit::TableConfig;

constexpr std::int64_t kRows = 50, kDim = 4;

TableConfig config_for(BoundsCheck bounds, bool on_device) {
  TableConfig config;
  config.input_dim = kRows;
  config.output_dim = kDim;
  config.seed = 9;
  config.bounds_check = bounds;
  config.gpu_memory_headroom = 0;
  config.max_batch_lookups = 64;
  config.optimizer = embedkit::OptimizerConfig::defaults(embedkit::OptimizerKind::adagrad);
  config.placement = on_device ? embedkit::PlacementPolicy::cuda : embedkit::PlacementPolicy::cpu;
  return config;
}

// Everything a call could change: weights, state, step and the zero-fill counter.
struct Snapshot {
  std::vector<float> weights, accumulator;
  std::int64_t step = 0, out_of_range = 0;
  bool operator==(const Snapshot&) const = default;
};

Snapshot snapshot(const EmbeddingTable& table) {
  return {table.get_weights().values, table.optimizer_state("accumulator").values, table.step(),
          table.out_of_range_count()};
}

// A (3, 4) batch whose bad ids sit at [1,2] (first) and [2,3].
const std::vector<std::int64_t> kIds = {1, 2, 3, 4, 5, 6, 99, 7, 8, 9, 10, -3};
const std::vector<std::int64_t> kOffsets = {0, 4, 8, 12};
const std::vector<float> kGradOut(kIds.size() * kDim, 0.5f), kGradBags(3 * kDim, 0.25f);

// One entry point, writing what it returns (outputs, gradients) to `out`.
using Call = std::function<void(EmbeddingTable&, const IndexTensor&, std::vector<float>& out)>;

std::vector<std::pair<std::string, Call>> calls() {
  return {
      {"lookup", [](EmbeddingTable& t, const IndexTensor& i, std::vector<float>& out) { t.lookup(i, out); }},
      {"lookup_pooled",
       [](EmbeddingTable& t, const IndexTensor& i, std::vector<float>& out) {
         t.lookup_pooled(IndexTensor(kIds), kOffsets, PoolingMode::mean, {}, std::span(out).first(3 * kDim));
         (void)i;
       }},
      {"train_step", [](EmbeddingTable& t, const IndexTensor& i, std::vector<float>&) { t.train_step(i, kGradOut); }},
      {"train_step_pooled",
       [](EmbeddingTable& t, const IndexTensor&, std::vector<float>&) {
         t.train_step_pooled(IndexTensor(kIds), kOffsets, PoolingMode::sum, {}, kGradBags);
       }},
      {"sparse_grad",
       [](EmbeddingTable& t, const IndexTensor& i, std::vector<float>& out) { out = t.sparse_grad(i, kGradOut).rows; }},
      {"sparse_grad_pooled",
       [](EmbeddingTable& t, const IndexTensor&, std::vector<float>& out) {
         out = t.sparse_grad_pooled(IndexTensor(kIds), kOffsets, PoolingMode::sqrtn, {}, kGradBags).rows;
       }},
  };
}

std::string error_of(const Call& call, EmbeddingTable& table, std::vector<float>& out) {
  try {
    call(table, IndexTensor(kIds.data(), {3, 4}), out);
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::out_of_range);
    return e.what();
  }
  return "(no error)";
}

class BackendIdCheck : public ::testing::TestWithParam<bool> {};  // whether the step is chunked

TEST_P(BackendIdCheck, ErrorsMatchTheCpuAndChangeNothing) {
  const bool chunked = GetParam();
  for (const auto& [name, call] : calls()) {
    if (chunked && name.rfind("lookup", 0) == 0) continue;  // a lookup has no smaller retry
    EmbeddingTable cpu(config_for(BoundsCheck::error, false));
    auto context = embedkit::testing::sim_context(std::uint64_t{16} << 20);
    EmbeddingTable device(config_for(BoundsCheck::error, true), *context);
    ASSERT_EQ(device.placement().device, embedkit::DeviceKind::cuda);
    const Snapshot before = snapshot(device);
    std::vector<float> cpu_out(kIds.size() * kDim, -7.0f), device_out(kIds.size() * kDim, -7.0f);
    const std::vector<float> untouched = device_out;
    // Staged ids (1) and gradient (2), then the fold's workspace (3): a failure there chunks the
    // step (a pooled step's third is its bag gradient: it retries as per-entry rows).
    if (chunked) embedkit::testing::sim_of(*context).fail_allocation_in(3);
    const std::string expected = error_of(call, cpu, cpu_out);
    const bool pooled = name.find("pooled") != std::string::npos;  // pooled indices are 1-D
    EXPECT_NE(expected.find(pooled ? "indices[6] = 99 is not in [0, 50)" : "indices[1,2] = 99 is not in [0, 50)"),
              std::string::npos)
        << name << ": " << expected;
    EXPECT_EQ(error_of(call, device, device_out), expected) << name;
    EXPECT_EQ(snapshot(device), before) << name;
    EXPECT_EQ(device_out, untouched) << name << " wrote its output";
  }
}

TEST_P(BackendIdCheck, ZeroFillMatchesTheCpuAndCountsTheSameIds) {
  const bool chunked = GetParam();
  for (const auto& [name, call] : calls()) {
    if (chunked && name.rfind("lookup", 0) == 0) continue;
    EmbeddingTable cpu(config_for(BoundsCheck::zero_fill, false));
    auto context = embedkit::testing::sim_context(std::uint64_t{16} << 20);
    EmbeddingTable device(config_for(BoundsCheck::zero_fill, true), *context);
    if (chunked) embedkit::testing::sim_of(*context).fail_allocation_in(3);
    std::vector<float> cpu_out(kIds.size() * kDim), device_out(kIds.size() * kDim);
    const IndexTensor ids(kIds.data(), {3, 4});
    call(cpu, ids, cpu_out);
    call(device, ids, device_out);
    EXPECT_EQ(device_out, cpu_out) << name;
    EXPECT_EQ(snapshot(device), snapshot(cpu)) << name;
    EXPECT_EQ(device.out_of_range_count(), 2) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(WholeAndChunked, BackendIdCheck, ::testing::Values(false, true));

}  // namespace
