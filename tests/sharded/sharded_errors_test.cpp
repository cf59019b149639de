// Errors keep their meaning across ranks: a bad input on one rank fails the collective call on
// every rank with the same status and message (naming that rank and the position), and a failed
// call changes no shard.
#include "sharded_test_support.hpp"

namespace embedkit::testing {
namespace {

TableConfig small_config() {
  TableConfig config;
  config.input_dim = 101;
  config.output_dim = 4;
  config.seed = 5;
  config.name = "users";
  config.optimizer = OptimizerConfig::defaults(OptimizerKind::adagrad);
  return config;
}

// Runs `call` and returns the status and message it failed with (every rank must fail).
template <class Call>
std::pair<Status, std::string> failure_of(Call&& call) {
  try {
    call();
  } catch (const Error& e) {
    return {e.status(), e.what()};
  }
  ADD_FAILURE() << "the call succeeded on rank " << world_rank();
  return {Status::ok, ""};
}

// The message every rank got, as rank 0 got it.
std::string rank0_message(const std::string& message) {
  int length = static_cast<int>(message.size());
  MPI_Bcast(&length, 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::string theirs = message;
  theirs.resize(static_cast<std::size_t>(length));
  MPI_Bcast(theirs.data(), length, MPI_CHAR, 0, MPI_COMM_WORLD);
  return theirs;
}

TEST(ShardedErrors, OutOfRangeOnOneRankFailsEveryRankAndChangesNoShard) {
  ShardedEmbeddingTable sharded(small_config());
  const int rank = world_rank(), last = world_size() - 1;
  std::vector<std::int64_t> ids = {3, 4, 5, 6, 7, 8};
  if (rank == last) ids[5] = 15000;  // position [1, 2] of a (2, 3) batch
  const IndexTensor batch(ids.data(), {2, 3});
  const std::string expected = "rank " + std::to_string(last) + ": indices[1,2] = 15000 is not in [0, 101)";

  const auto [lookup_status, lookup_message] = failure_of([&] { (void)sharded.lookup(batch); });
  EXPECT_EQ(lookup_status, Status::out_of_range);
  EXPECT_EQ(lookup_message, expected);
  EXPECT_EQ(rank0_message(lookup_message), lookup_message);

  const std::vector<float> before = sharded.shard().get_weights().values;
  const std::vector<float> state_before = sharded.shard().optimizer_state("accumulator").values;
  const auto [train_status, train_message] =
      failure_of([&] { sharded.train_step(batch, std::vector<float>(6 * 4, 0.5f)); });
  EXPECT_EQ(train_status, Status::out_of_range);
  EXPECT_EQ(train_message, expected);
  expect_same_bits(sharded.shard().get_weights().values, before, "weights after a failed step");
  expect_same_bits(sharded.shard().optimizer_state("accumulator").values, state_before, "state after a failed step");
  EXPECT_EQ(sharded.step(), 0);

  const std::vector<std::int64_t> offsets = {0, 2, 6};
  const auto [pooled_status, pooled_message] =
      failure_of([&] { (void)sharded.lookup_pooled(IndexTensor(ids), offsets, PoolingMode::sum); });
  EXPECT_EQ(pooled_status, Status::out_of_range);
  EXPECT_EQ(pooled_message, "rank " + std::to_string(last) + ": indices[5] = 15000 is not in [0, 101)");

  // The table still works after the failures.
  std::vector<std::int64_t> good = {1, 2};
  sharded.train_step(IndexTensor(good), std::vector<float>(2 * 4, 1.0f));
  EXPECT_EQ(sharded.step(), 1);
}

TEST(ShardedErrors, ANonFiniteGradientUnderErrorFailsEveryRankAndChangesNoShard) {
  TableConfig config = small_config();
  config.nonfinite_gradients = NonFiniteGradients::error;
  ShardedEmbeddingTable sharded(config);
  const int rank = world_rank(), last = world_size() - 1;
  // Every rank touches row 0 (owned by rank 0) and its own row; the last rank's row holds a NaN.
  std::vector<std::int64_t> ids = {0, 10 + rank};
  std::vector<float> grads(2 * 4, 0.25f);
  if (rank == last) grads[5] = std::nanf("");
  const std::vector<float> before = sharded.shard().get_weights().values;
  const auto [status, message] = failure_of([&] { sharded.train_step(IndexTensor(ids), grads); });
  EXPECT_EQ(status, Status::invalid_argument);
  EXPECT_NE(message.find("not finite"), std::string::npos) << message;
  EXPECT_EQ(rank0_message(message), message);
  expect_same_bits(sharded.shard().get_weights().values, before, "weights after a failed step");
  EXPECT_EQ(sharded.step(), 0);
}

TEST(ShardedErrors, AWrongGradientSizeOnOneRankFailsEveryRank) {
  ShardedEmbeddingTable sharded(small_config());
  const int last = world_size() - 1;
  const std::vector<std::int64_t> ids = {1, 2, 3};
  const std::size_t floats = world_rank() == last ? 11 : 12;
  const auto [status, message] = failure_of([&] { sharded.train_step(IndexTensor(ids), std::vector<float>(floats)); });
  EXPECT_EQ(status, Status::shape_mismatch);
  EXPECT_EQ(message,
            "rank " + std::to_string(last) + ": grad_out must hold 3 x 4 floats for indices of shape (3,), got 11");
}

TEST(ShardedErrors, ConfigsThatDifferBetweenRanksAreRefusedOnEveryRank) {
  if (world_size() == 1) GTEST_SKIP() << "needs two ranks";
  TableConfig config = small_config();
  if (world_rank() == 1) config.output_dim = 8;
  const auto [status, message] = failure_of([&] { ShardedEmbeddingTable sharded(config); });
  EXPECT_EQ(status, Status::invalid_argument);
  EXPECT_EQ(message,
            "rank 1's table config or row split differs from rank 0's: every rank must create a sharded "
            "table with the same config and split");
  EXPECT_EQ(rank0_message(message), message);
  const auto [split_status, split_message] = failure_of([&] {
    ShardedEmbeddingTable sharded(small_config(), world_rank() == 1 ? RowSplit::modulo : RowSplit::contiguous);
  });
  EXPECT_EQ(split_status, Status::invalid_argument);
  EXPECT_EQ(split_message, message);
}

TEST(ShardedErrors, MalformedJsonOnOneRankFailsEveryRank) {
  const int last = world_size() - 1;
  const std::string json =
      world_rank() == last ? R"({"input_dim": 10, "output_dim": )" : R"({"input_dim": 10, "output_dim": 4, "seed": 1})";
  const auto [status, message] = failure_of([&] { (void)ShardedEmbeddingTable::from_json(json); });
  EXPECT_EQ(status, Status::invalid_argument);
  EXPECT_EQ(message.rfind("rank " + std::to_string(last) + ": ", 0), 0u) << message;
  EXPECT_EQ(rank0_message(message), message);
  const auto [split_status, split_message] =
      failure_of([&] { (void)ShardedEmbeddingTable::from_json(R"({"input_dim": 10, "output_dim": 4})", "rows"); });
  EXPECT_EQ(split_status, Status::invalid_argument);
  EXPECT_EQ(split_message, "rank 0: row split must be 'contiguous' or 'modulo', got 'rows'");
}

TEST(ShardedErrors, ABadConfigOnOneRankIsReportedWithItsRank) {
  TableConfig config = small_config();
  const int last = world_size() - 1;
  if (world_rank() == last) config.input_dim = 0;
  const auto [status, message] = failure_of([&] { ShardedEmbeddingTable sharded(config); });
  EXPECT_EQ(status, Status::invalid_argument);
  EXPECT_EQ(message.rfind("rank " + std::to_string(last) + ": input_dim", 0), 0u) << message;
}

TEST(ShardedErrors, MoreRanksThanRowsIsRefused) {
  TableConfig config = small_config();
  config.input_dim = 1;
  if (world_size() == 1) GTEST_SKIP() << "one rank holds one row";
  const auto [status, message] = failure_of([&] { ShardedEmbeddingTable sharded(config); });
  EXPECT_EQ(status, Status::invalid_argument);
  EXPECT_NE(message.find("cannot be split over " + std::to_string(world_size()) + " ranks"), std::string::npos);
}

TEST(ShardedErrors, LearningRatesThatDifferBetweenRanksAreRefused) {
  ShardedEmbeddingTable sharded(small_config());
  if (world_size() > 1) {
    const auto [status, message] = failure_of([&] { sharded.set_learning_rate(world_rank() == 1 ? 0.5 : 0.25); });
    EXPECT_EQ(status, Status::invalid_argument);
    EXPECT_EQ(message, "rank 1 sets learning rate 0.5 but rank 0 sets 0.25: every rank must pass the same");
  }
  const auto [status, message] = failure_of([&] { sharded.set_learning_rate(-1.0); });
  EXPECT_EQ(status, Status::invalid_argument);
  EXPECT_DOUBLE_EQ(sharded.config().optimizer.learning_rate, small_config().optimizer.learning_rate);
  sharded.set_learning_rate(0.125);
  EXPECT_DOUBLE_EQ(sharded.shard().optimizer().learning_rate, 0.125);
}

TEST(ShardedErrors, ACustomOptimizerIsRefused) {
  TableConfig config = small_config();
  config.optimizer = OptimizerConfig::custom([](std::int64_t, float*, const float*, float*, int) {}, 0);
  const auto [status, message] = failure_of([&] { ShardedEmbeddingTable sharded(config); });
  EXPECT_EQ(status, Status::unsupported);
  EXPECT_EQ(message,
            "rank 0: sharded table 'users': a custom (callback) optimizer cannot be sharded; use a built-in one");
}

}  // namespace
}  // namespace embedkit::testing
