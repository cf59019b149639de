// A sharded table against one EmbeddingTable of the same config given the concatenation of every
// rank's batch in rank order: initial matrix, lookup, pooled lookup and 20 train steps of every
// optimizer, bit for bit, under both row splits and any world size (ctest runs 1, 2 and 4 ranks).
#include "sharded_test_support.hpp"

#include <limits>

namespace embedkit::testing {
namespace {

constexpr std::int64_t kRows = 397;  // prime: no world size divides it, so contiguous shards differ in size
constexpr std::int64_t kDim = 6;

TableConfig base_config(std::uint64_t seed = 11) {
  TableConfig config;
  config.input_dim = kRows;
  config.output_dim = kDim;
  config.seed = seed;
  config.name = "items";
  return config;
}

// Rank r's batch size at a step: uneven, and rank 1 sends nothing on even steps.
std::int64_t batch_size(int step, int rank) { return rank == 1 && step % 2 == 0 ? 0 : 24 + 13 * rank + step % 5; }

// Every rank's batch of a step, concatenated in rank order: the single table's batch.
std::vector<std::int64_t> global_ids(int step, std::uint64_t seed) {
  std::vector<std::int64_t> all;
  for (int r = 0; r < world_size(); ++r) {
    const std::vector<std::int64_t> ids = zipf_ids(kRows, batch_size(step, r), seed, step, r);
    all.insert(all.end(), ids.begin(), ids.end());
  }
  return all;
}

std::vector<float> global_grads(int step, std::uint64_t seed) {
  std::vector<float> all;
  for (int r = 0; r < world_size(); ++r) {
    const std::vector<float> g = random_floats(static_cast<std::size_t>(batch_size(step, r) * kDim), seed, step, r);
    all.insert(all.end(), g.begin(), g.end());
  }
  return all;
}

void expect_shard_equals(const ShardedEmbeddingTable& sharded, const EmbeddingTable& single, const std::string& what) {
  const ShardRows mine = sharded.rows(sharded.rank());
  expect_same_bits(sharded.shard().get_weights().values, rows_of(single.get_weights().values, kDim, mine),
                   what + " weights");
  for (const std::string& name : single.optimizer_state_names()) {
    const std::vector<float> state = single.optimizer_state(name).values;
    const std::int64_t width = static_cast<std::int64_t>(state.size()) / kRows;
    expect_same_bits(sharded.shard().optimizer_state(name).values, rows_of(state, width, mine),
                     what + " state '" + name + "'");
  }
  EXPECT_EQ(sharded.step(), single.step()) << what;
}

class SplitTest : public ::testing::TestWithParam<RowSplit> {};

TEST_P(SplitTest, ShardsHoldTheRowsOfTheSingleTablesMatrix) {
  for (const char* initializer : {"uniform", "glorot_uniform", "truncated_normal", "he_normal"}) {
    TableConfig config = base_config();
    config.embeddings_initializer = Initializer::from_name(initializer);
    const ShardedEmbeddingTable sharded(config, GetParam());
    const EmbeddingTable single(config);
    expect_same_bits(sharded.shard().get_weights().values,
                     rows_of(single.get_weights().values, kDim, sharded.rows(sharded.rank())), initializer);
    expect_same_bits(sharded.get_weights().values, single.get_weights().values, std::string(initializer) + " gathered");
  }
}

TEST_P(SplitTest, RowsCoverTheTableOnce) {
  const ShardedEmbeddingTable sharded(base_config(), GetParam());
  std::vector<int> held(kRows, 0);
  for (int r = 0; r < sharded.world_size(); ++r) {
    const ShardRows rows = sharded.rows(r);
    EXPECT_EQ(rows.rank, r);
    for (std::int64_t k = 0; k < rows.count; ++k) ++held[static_cast<std::size_t>(rows.first + k * rows.stride)];
  }
  for (std::int64_t id = 0; id < kRows; ++id) EXPECT_EQ(held[static_cast<std::size_t>(id)], 1) << "row " << id;
  EXPECT_EQ(sharded.shard().input_dim(), sharded.rows(sharded.rank()).count);
}

TEST_P(SplitTest, LookupMatchesTheSingleTable) {
  TableConfig config = base_config();
  config.padding_idx = 5;
  const ShardedEmbeddingTable sharded(config, GetParam());
  const EmbeddingTable single(config);
  const int rank = world_rank();
  for (int step = 0; step < 3; ++step) {
    std::vector<std::int64_t> ids = zipf_ids(kRows, batch_size(step, rank), 3, step, rank);
    if (!ids.empty()) ids.front() = 5;  // padding reads as zeros
    const IndexTensor batch(ids.data(), {static_cast<std::int64_t>(ids.size())});
    const Array<float> got = sharded.lookup(batch);
    EXPECT_EQ(got.shape, (std::vector<std::int64_t>{static_cast<std::int64_t>(ids.size()), kDim}));
    expect_same_bits(got.values, single.lookup(batch).values, "lookup step " + std::to_string(step));
  }
  // int32 ids of rank 2, an empty batch
  std::vector<std::int32_t> narrow(12);
  for (std::size_t k = 0; k < narrow.size(); ++k) narrow[k] = static_cast<std::int32_t>((k * 37 + 11) % kRows);
  const IndexTensor batch(narrow.data(), {3, 4});
  const IndexTensor empty(narrow.data(), {0, 4});
  const IndexTensor mine = rank % 2 == 0 ? batch : empty;
  const Array<float> got = sharded.lookup(mine);
  EXPECT_EQ(got.shape, (std::vector<std::int64_t>{mine.shape()[0], 4, kDim}));
  expect_same_bits(got.values, single.lookup(mine).values, "int32 lookup");
}

TEST_P(SplitTest, PooledLookupMatchesTheSingleTable) {
  TableConfig config = base_config();
  config.padding_idx = 0;
  const ShardedEmbeddingTable sharded(config, GetParam());
  const EmbeddingTable single(config);
  const int rank = world_rank();
  std::vector<std::int64_t> ids = zipf_ids(kRows, batch_size(1, rank), 5, 1, rank);
  if (ids.size() > 2) ids[2] = 0;  // a padding entry, skipped and not counted
  // Bags of 0, 1, 2, ... entries until the ids run out: an empty bag first.
  std::vector<std::int64_t> offsets = {0};
  for (std::int64_t size = 0; offsets.back() < static_cast<std::int64_t>(ids.size()); ++size) {
    offsets.push_back(std::min<std::int64_t>(offsets.back() + size, static_cast<std::int64_t>(ids.size())));
  }
  const std::vector<float> weights = random_floats(ids.size(), 9, 1, rank);
  const IndexTensor batch(ids);
  for (const PoolingMode mode : {PoolingMode::sum, PoolingMode::mean, PoolingMode::max, PoolingMode::sqrtn}) {
    const std::string name = to_string(mode);
    expect_same_bits(sharded.lookup_pooled(batch, offsets, mode).values,
                     single.lookup_pooled(batch, offsets, mode).values, "pooled " + name);
    if (mode == PoolingMode::max) continue;
    expect_same_bits(sharded.lookup_pooled(batch, offsets, mode, weights).values,
                     single.lookup_pooled(batch, offsets, mode, weights).values, "weighted pooled " + name);
  }
}

TEST_P(SplitTest, MaxNormRowsAreRenormalisedByTheirOwners) {
  // Each owner renormalises the rows every rank asked it for: the single table given all ranks'
  // batches, concatenated, reads this rank's rows the same and ends with the same matrix.
  for (const double norm_type : {1.0, 2.0, std::numeric_limits<double>::infinity()}) {
    TableConfig config = base_config();
    config.max_norm = 0.04;  // uniform ±0.05 rows, 6 wide: most lie above it, about half in the ∞-norm
    config.norm_type = norm_type;
    config.padding_idx = 5;
    const ShardedEmbeddingTable sharded(config, GetParam());
    const EmbeddingTable single(config);
    const int rank = world_rank();
    for (int step = 0; step < 3; ++step) {
      std::vector<std::int64_t> ids = zipf_ids(kRows, batch_size(step, rank), 3, step, rank);
      const std::vector<std::int64_t> all = global_ids(step, 3);
      std::int64_t first = 0;  // where this rank's batch starts in `all`
      for (int r = 0; r < rank; ++r) first += batch_size(step, r);
      const Array<float> got = sharded.lookup(IndexTensor(ids));
      const Array<float> expected = single.lookup(IndexTensor(all));
      expect_same_bits(
          got.values,
          std::vector<float>(expected.values.begin() + first * kDim,
                             expected.values.begin() + (first + static_cast<std::int64_t>(ids.size())) * kDim),
          "max_norm lookup step " + std::to_string(step));
    }
    expect_same_bits(sharded.get_weights().values, single.get_weights().values, "max_norm weights");
  }
}

TEST_P(SplitTest, ZeroFillReadsBadIdsAsZerosAndSendsThemNoGradient) {
  TableConfig config = base_config();
  config.bounds_check = BoundsCheck::zero_fill;
  ShardedEmbeddingTable sharded(config, GetParam());
  EmbeddingTable single(config);
  const int rank = world_rank();
  std::vector<std::int64_t> ids = zipf_ids(kRows, 10, 4, 0, rank);
  ids[3] = kRows + rank;
  ids[7] = -1;
  const IndexTensor batch(ids);
  expect_same_bits(sharded.lookup(batch).values, single.lookup(batch).values, "zero_fill lookup");
  EXPECT_EQ(sharded.out_of_range_count(), 2);
  std::vector<std::int64_t> all;
  for (int r = 0; r < world_size(); ++r) {
    std::vector<std::int64_t> theirs = zipf_ids(kRows, 10, 4, 0, r);
    theirs[3] = kRows + r;
    theirs[7] = -1;
    all.insert(all.end(), theirs.begin(), theirs.end());
  }
  std::vector<float> grads_all;
  for (int r = 0; r < world_size(); ++r) {
    const std::vector<float> g = random_floats(10 * kDim, 4, 0, r);
    grads_all.insert(grads_all.end(), g.begin(), g.end());
  }
  sharded.train_step(batch, random_floats(10 * kDim, 4, 0, rank));
  single.train_step(IndexTensor(all), grads_all);
  expect_shard_equals(sharded, single, "zero_fill step");
}

INSTANTIATE_TEST_SUITE_P(Splits, SplitTest, ::testing::Values(RowSplit::contiguous, RowSplit::modulo),
                         [](const auto& param_info) { return std::string(to_string(param_info.param)); });

OptimizerConfig with_lr(OptimizerKind kind, double lr) {
  OptimizerConfig o = OptimizerConfig::defaults(kind);
  o.learning_rate = lr;
  return o;
}

struct TrainCase {
  std::string name;
  OptimizerConfig optimizer;
  RowSplit split;
  friend void PrintTo(const TrainCase& c, std::ostream* os) { *os << c.name; }
};

std::vector<TrainCase> train_cases() {
  OptimizerConfig momentum = with_lr(OptimizerKind::sgd, 0.1);
  momentum.momentum = 0.9;
  OptimizerConfig nesterov = momentum;
  nesterov.nesterov = true;
  OptimizerConfig decayed = with_lr(OptimizerKind::adagrad, 0.1);
  decayed.weight_decay = 0.05;
  OptimizerConfig dense_adam = with_lr(OptimizerKind::adam, 0.01);
  dense_adam.lazy = false;
  OptimizerConfig ftrl = with_lr(OptimizerKind::ftrl, 0.1);
  ftrl.l1_regularization_strength = 0.01;
  ftrl.l2_regularization_strength = 0.02;
  ftrl.l2_shrinkage_regularization_strength = 0.01;
  ftrl.beta = 0.5;
  const std::vector<std::pair<std::string, OptimizerConfig>> optimizers = {
      {"sgd", with_lr(OptimizerKind::sgd, 0.1)},
      {"sgd_momentum", momentum},
      {"sgd_nesterov", nesterov},
      {"adagrad", with_lr(OptimizerKind::adagrad, 0.1)},
      {"adagrad_weight_decay", decayed},
      {"rowwise_adagrad", with_lr(OptimizerKind::rowwise_adagrad, 0.1)},
      {"adam_lazy", with_lr(OptimizerKind::adam, 0.01)},
      {"adam_dense", dense_adam},
      {"ftrl", ftrl}};
  std::vector<TrainCase> cases;
  for (const RowSplit split : {RowSplit::contiguous, RowSplit::modulo}) {
    for (const auto& [name, optimizer] : optimizers) cases.push_back({name + "_" + to_string(split), optimizer, split});
  }
  return cases;
}

class TrainParityTest : public ::testing::TestWithParam<TrainCase> {};

// 20 steps on Zipf ids (hot ids on every rank, rank 1 empty every other step), with padding, an L2
// regularizer and a max-norm constraint, and a learning-rate change halfway.
TEST_P(TrainParityTest, TwentyStepsEqualTheSingleTableOnTheConcatenatedBatch) {
  TableConfig config = base_config(23);
  config.optimizer = GetParam().optimizer;
  config.padding_idx = 1;
  config.embeddings_regularizer = Regularizer{0.0, 0.001};
  config.embeddings_constraint = Constraint{ConstraintKind::max_norm, 1.5};
  ShardedEmbeddingTable sharded(config, GetParam().split);
  EmbeddingTable single(config);
  const int rank = world_rank();
  for (int step = 0; step < 20; ++step) {
    if (step == 10) {
      sharded.set_learning_rate(config.optimizer.learning_rate / 2);
      single.set_learning_rate(config.optimizer.learning_rate / 2);
    }
    const std::vector<std::int64_t> ids = zipf_ids(kRows, batch_size(step, rank), 7, step, rank);
    const std::vector<float> grads = random_floats(ids.size() * kDim, 7, step, rank);
    sharded.train_step(IndexTensor(ids), grads);
    single.train_step(IndexTensor(global_ids(step, 7)), global_grads(step, 7));
  }
  expect_shard_equals(sharded, single, GetParam().name);
  expect_same_bits(sharded.get_weights().values, single.get_weights().values, "gathered weights");
}

// Narrow rows shard as float32 rows do: stochastic rounding is keyed by each row's place in the
// whole matrix, so a sharded bfloat16 or float16 table trains to the single table's bits on any
// world size and split, and a checkpoint of it loads back (re-sharded) to the same bits.
TEST(NarrowShardParity, StochasticStepsEqualTheSingleTable) {
  for (const DType type : {DType::bfloat16, DType::float16}) {
    for (const RowSplit split : {RowSplit::contiguous, RowSplit::modulo}) {
      TableConfig config = base_config(29);
      config.dtype = type;
      config.optimizer = OptimizerConfig::defaults(OptimizerKind::adam);
      ShardedEmbeddingTable sharded(config, split);
      EmbeddingTable single(config);
      const int rank = world_rank();
      for (int step = 0; step < 6; ++step) {
        const std::vector<std::int64_t> ids = zipf_ids(kRows, batch_size(step, rank), 5, step, rank);
        const std::vector<float> grads = random_floats(ids.size() * kDim, 5, step, rank);
        sharded.train_step(IndexTensor(ids), grads);
        single.train_step(IndexTensor(global_ids(step, 5)), global_grads(step, 5));
      }
      const std::string what = std::string(to_string(type)) + " " + to_string(split);
      expect_shard_equals(sharded, single, what);
      expect_same_bits(sharded.get_weights().values, single.get_weights().values, what + " gathered");
    }
  }
}

// Rank r's pooled batch at a step: bags of 0 .. 4 entries (an empty one first), Zipf ids with a
// padding entry, per-sample weights, and the bags' upstream gradient.
struct PooledBatch {
  std::vector<std::int64_t> ids, offsets;
  std::vector<float> weights, grad_bags;
};

PooledBatch pooled_batch(int step, int rank) {
  PooledBatch batch;
  batch.ids = zipf_ids(kRows, batch_size(step, rank), 13, step, rank);
  if (batch.ids.size() > 4) batch.ids[4] = 1;  // padding_idx
  batch.offsets = {0};
  for (std::int64_t size = 0; batch.offsets.back() < static_cast<std::int64_t>(batch.ids.size());
       size = (size + 1) % 5) {
    batch.offsets.push_back(
        std::min<std::int64_t>(batch.offsets.back() + size, static_cast<std::int64_t>(batch.ids.size())));
  }
  batch.weights = random_floats(batch.ids.size(), 13, step, rank + 100);
  batch.grad_bags = random_floats((batch.offsets.size() - 1) * kDim, 13, step, rank);
  return batch;
}

// Every rank's pooled batch of a step as one batch, in rank order.
PooledBatch global_pooled_batch(int step) {
  PooledBatch all;
  all.offsets = {0};
  for (int r = 0; r < world_size(); ++r) {
    const PooledBatch part = pooled_batch(step, r);
    for (std::size_t b = 1; b < part.offsets.size(); ++b) {
      all.offsets.push_back(static_cast<std::int64_t>(all.ids.size()) + part.offsets[b]);
    }
    all.ids.insert(all.ids.end(), part.ids.begin(), part.ids.end());
    all.weights.insert(all.weights.end(), part.weights.begin(), part.weights.end());
    all.grad_bags.insert(all.grad_bags.end(), part.grad_bags.begin(), part.grad_bags.end());
  }
  return all;
}

class PooledTrainTest : public ::testing::TestWithParam<std::tuple<PoolingMode, RowSplit>> {};

TEST_P(PooledTrainTest, StepsEqualTheSingleTablesPooledStepsOnTheConcatenatedBags) {
  const auto [mode, split] = GetParam();
  TableConfig config = base_config(29);
  config.padding_idx = 1;
  config.optimizer = with_lr(OptimizerKind::adam, 0.01);
  ShardedEmbeddingTable sharded(config, split);
  EmbeddingTable single(config);
  const bool weighted = mode != PoolingMode::max;
  for (int step = 0; step < 8; ++step) {
    const PooledBatch mine = pooled_batch(step, world_rank());
    const PooledBatch all = global_pooled_batch(step);
    sharded.train_step_pooled(IndexTensor(mine.ids), mine.offsets, mode,
                              weighted ? std::span<const float>(mine.weights) : std::span<const float>(),
                              mine.grad_bags);
    single.train_step_pooled(IndexTensor(all.ids), all.offsets, mode,
                             weighted ? std::span<const float>(all.weights) : std::span<const float>(), all.grad_bags);
  }
  expect_shard_equals(sharded, single, std::string("pooled ") + to_string(mode));
}

INSTANTIATE_TEST_SUITE_P(Modes, PooledTrainTest,
                         ::testing::Combine(::testing::Values(PoolingMode::sum, PoolingMode::mean, PoolingMode::max,
                                                              PoolingMode::sqrtn),
                                            ::testing::Values(RowSplit::contiguous, RowSplit::modulo)),
                         [](const auto& param_info) {
                           return std::string(to_string(std::get<0>(param_info.param))) + "_" +
                                  to_string(std::get<1>(param_info.param));
                         });

INSTANTIATE_TEST_SUITE_P(Optimizers, TrainParityTest, ::testing::ValuesIn(train_cases()),
                         [](const auto& param_info) { return param_info.param.name; });

}  // namespace
}  // namespace embedkit::testing
