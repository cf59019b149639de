// The threading model of table.hpp: readers of one table run together, writers run alone, and two
// tables share nothing a caller can race on. The stress test runs reader threads against a writer
// that moves the table through states whose every row is a known staircase, so any read that sees
// a torn row, rows from two different steps, or a state older than one already finished, fails.
// Built into the ThreadSanitizer lane (ctest label `concurrency`), where a missing lock is also a
// reported race.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include "tests/sim_context.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <latch>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using embedkit::Context;
using embedkit::DeviceKind;
using embedkit::EmbeddingTable;
using embedkit::IndexTensor;
using embedkit::OptimizerConfig;
using embedkit::OptimizerKind;
using embedkit::PlacementReason;
using embedkit::PoolingMode;
using embedkit::TableConfig;
using embedkit::testing::sim_context;

constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;

// The stress table: rows [0, kStairRows) follow the writer's steps, row kStairRows is set with set_row.
constexpr std::int64_t kStairRows = 255, kRows = kStairRows + 1, kDim = 256;
constexpr int kReaders = 4;
constexpr int kWriterOps = 600;

// Row r of the writer's batch appears 1 + r % 3 times, so one SGD step (lr 1, gradient -1 per
// entry) adds that many to every column: after step k, row r holds k · multiplicity(r) everywhere.
float multiplicity(std::int64_t row) { return static_cast<float>(1 + row % 3); }

// The first failure any thread saw, kept for the main thread to report.
class Failures {
 public:
  void add(const std::string& message) {
    std::lock_guard lock(mutex_);
    if (first_.empty()) first_ = message;
    failed_ = true;
  }
  bool any() const { return failed_.load(); }
  std::string first() const {
    std::lock_guard lock(mutex_);
    return first_;
  }

 private:
  mutable std::mutex mutex_;
  std::string first_;
  std::atomic<bool> failed_{false};
};

// What one reader has seen so far: the staircase step and the set_row value may only grow.
struct ReaderState {
  float step = 0;
  float single = 0;
  std::int64_t step_count = 0;
};

// Checks a (bags × kDim) block whose row b is the sum of the table rows bag_ids[b]: every column of
// a row equal (no torn row), all staircase rows on the same step (one state), that step no older
// than `finished` (the writer's last completed step) nor than this reader's last read; the
// set_row row no lower than last read.
void check_rows(const std::vector<float>& values, const std::vector<std::vector<std::int64_t>>& bag_ids, float finished,
                ReaderState& seen, Failures& failures, const char* what) {
  float step = -1;
  for (std::size_t b = 0; b < bag_ids.size(); ++b) {
    const float* row = values.data() + b * kDim;
    if (!std::all_of(row, row + kDim, [&](float v) { return v == row[0]; })) {
      failures.add(std::string(what) + ": torn row " + std::to_string(b) + ": column 0 holds " +
                   std::to_string(row[0]) + ", another column " +
                   std::to_string(*std::find_if(row, row + kDim, [&](float v) { return v != row[0]; })));
      return;
    }
    if (bag_ids[b].size() == 1 && bag_ids[b][0] == kStairRows) {  // the set_row row
      if (row[0] < seen.single) {
        failures.add(std::string(what) + ": set_row row went back from " + std::to_string(seen.single) + " to " +
                     std::to_string(row[0]));
      }
      seen.single = row[0];
      continue;
    }
    float weight = 0;
    for (const std::int64_t id : bag_ids[b]) weight += multiplicity(id);
    const float row_step = row[0] / weight;
    if (step >= 0 && row_step != step) {
      failures.add(std::string(what) + ": rows from two states in one read: step " + std::to_string(step) +
                   " and step " + std::to_string(row_step) + " (entry " + std::to_string(b) + ")");
      return;
    }
    step = row_step;
  }
  if (step < 0) return;
  if (step < finished || step < seen.step) {
    failures.add(std::string(what) + ": read step " + std::to_string(step) + " after step " +
                 std::to_string(std::max(finished, seen.step)) + " had finished");
  }
  seen.step = step;
}

std::vector<std::vector<std::int64_t>> singletons(const std::vector<std::int64_t>& ids) {
  std::vector<std::vector<std::int64_t>> bags;
  for (const std::int64_t id : ids) bags.push_back({id});
  return bags;
}

TableConfig stress_config() {
  TableConfig config;
  config.name = "stress";
  config.input_dim = kRows;
  config.output_dim = kDim;
  config.seed = 1;
  config.max_batch_lookups = 4096;
  config.gpu_memory_headroom = 0;
  config.optimizer = OptimizerConfig::defaults(OptimizerKind::sgd);
  config.optimizer.learning_rate = 1.0;
  config.embeddings_constraint = {embedkit::ConstraintKind::non_neg, 0.0};  // a no-op on these values
  return config;
}

// One reader: cycles through every reading call and checks what it returns.
void read_until(const EmbeddingTable& table, const std::atomic<bool>& done, const std::atomic<int>& finished_step,
                Failures& failures, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int64_t> all(kRows);
  for (std::int64_t r = 0; r < kRows; ++r) all[r] = r;
  std::vector<std::int32_t> reversed(all.rbegin(), all.rend());
  std::vector<std::int64_t> reversed64(all.rbegin(), all.rend());
  // Pooled: bag b sums rows 2b and 2b + 1 of the staircase; the last bag is the set_row row alone.
  std::vector<std::int64_t> pooled_ids, offsets = {0};
  std::vector<std::vector<std::int64_t>> pooled_bags;
  for (std::int64_t r = 0; r + 1 < kStairRows; r += 2) {
    pooled_ids.insert(pooled_ids.end(), {r, r + 1});
    pooled_bags.push_back({r, r + 1});
    offsets.push_back(static_cast<std::int64_t>(pooled_ids.size()));
  }
  pooled_ids.push_back(kStairRows);
  pooled_bags.push_back({kStairRows});
  offsets.push_back(static_cast<std::int64_t>(pooled_ids.size()));

  ReaderState seen;
  for (int op = 0; !done.load() && !failures.any(); ++op) {
    const auto finished = static_cast<float>(finished_step.load());
    switch (op % 7) {
      case 0:
        check_rows(table.lookup(IndexTensor(all)).values, singletons(all), finished, seen, failures, "lookup");
        break;
      case 1:  // int32 ids, shape (16, 16)
        check_rows(table.lookup(IndexTensor(reversed.data(), {16, 16})).values, singletons(reversed64), finished, seen,
                   failures, "lookup int32");
        break;
      case 2:
        check_rows(table.lookup_pooled(IndexTensor(pooled_ids), offsets, PoolingMode::sum).values, pooled_bags,
                   finished, seen, failures, "lookup_pooled");
        break;
      case 3: check_rows(table.get_weights().values, singletons(all), finished, seen, failures, "get_weights"); break;
      case 4: {
        const auto r = static_cast<std::int64_t>(rng() % kRows);
        check_rows(table.row(r), {{r}}, finished, seen, failures, "row");
        break;
      }
      case 5: {  // the reports, while the writer migrates the table between devices
        const std::int64_t step_count = table.step();
        if (step_count < seen.step_count) failures.add("step() went back");
        seen.step_count = step_count;
        const embedkit::PlacementDecision placement = table.placement();
        if (placement.device_name() != "cpu" && placement.device_name() != "sim:0") {
          failures.add("placement() is '" + placement.device_name() + "'");
        }
        if (table.summary(IndexTensor(all)).rows != kRows) failures.add("summary() rows");
        if (table.info_json().find("\"name\":\"stress\"") == std::string::npos) failures.add("info_json()");
        if (table.config().name != "stress" || table.optimizer().learning_rate != 1.0) failures.add("config()");
        break;
      }
      case 6: {  // sparse_grad and compute_mask read the table's config and backend only
        const embedkit::SparseGrad grad = table.sparse_grad(IndexTensor(all), std::vector<float>(kRows * kDim, 1.0f));
        if (grad.unique_ids.size() != static_cast<std::size_t>(kRows)) failures.add("sparse_grad ids");
        const auto mask = table.compute_mask(IndexTensor(all)).values;
        if (std::count(mask.begin(), mask.end(), std::uint8_t{1}) != kRows) failures.add("compute_mask");
        break;
      }
    }
  }
}

TEST(Concurrency, ReadersSeeWholeRowsFromOneStepWhileAWriterTrains) {
  auto context = sim_context(64 * kMiB);
  EmbeddingTable table(stress_config(), *context);
  ASSERT_EQ(table.placement().device_name(), "sim:0");
  table.set_weights(std::vector<float>(kRows * kDim, 0.0f), std::vector<std::int64_t>{kRows, kDim});

  // The writer's batch: row r of the staircase multiplicity(r) times, shuffled, gradient -1.
  std::vector<std::int64_t> batch;
  for (std::int64_t r = 0; r < kStairRows; ++r) batch.insert(batch.end(), static_cast<std::size_t>(multiplicity(r)), r);
  std::shuffle(batch.begin(), batch.end(), std::mt19937_64(7));
  const std::vector<float> minus_one(batch.size() * kDim, -1.0f);
  std::vector<std::int64_t> one_bag_each(batch.size() + 1);
  for (std::size_t p = 0; p <= batch.size(); ++p) one_bag_each[p] = static_cast<std::int64_t>(p);
  embedkit::SparseGrad folded;
  folded.dim = kDim;
  for (std::int64_t r = 0; r < kStairRows; ++r) {
    folded.unique_ids.push_back(r);
    folded.rows.insert(folded.rows.end(), kDim, -multiplicity(r));
  }

  std::atomic<bool> done{false};
  std::atomic<int> finished_step{0};
  Failures failures;
  std::latch start(kReaders + 1);
  std::vector<std::thread> readers;
  for (int t = 0; t < kReaders; ++t) {
    readers.emplace_back([&, t] {
      start.arrive_and_wait();
      read_until(table, done, finished_step, failures, static_cast<std::uint64_t>(t));
    });
  }
  start.arrive_and_wait();
  int step = 0;
  float single = 0;
  for (int op = 0; op < kWriterOps && !failures.any(); ++op) {
    bool advances = true;
    switch (op % 6) {
      case 0: table.train_step(IndexTensor(batch), minus_one); break;
      case 1: table.train_step_pooled(IndexTensor(batch), one_bag_each, PoolingMode::sum, {}, minus_one); break;
      case 2: table.apply(folded); break;
      case 3: {  // the next staircase written whole, the set_row row kept
        std::vector<float> next(kRows * kDim, single);
        for (std::int64_t r = 0; r < kStairRows; ++r) {
          std::fill_n(next.begin() + r * kDim, kDim, static_cast<float>(step + 1) * multiplicity(r));
        }
        table.set_weights(next, std::vector<std::int64_t>{kRows, kDim});
        break;
      }
      case 4:  // writers that leave the values alone: a new device, the same learning rate, the constraint
        table.migrate(table.placement().device == DeviceKind::cpu ? "sim:0" : "cpu");
        table.set_learning_rate(1.0);
        table.apply_constraints();
        advances = false;
        break;
      case 5: table.train_step(IndexTensor(batch), minus_one); break;
    }
    if (advances) ++step;
    finished_step.store(step);
    single += 1;
    table.set_row(kStairRows, std::vector<float>(kDim, single));
  }
  done.store(true);
  for (std::thread& reader : readers) reader.join();
  EXPECT_FALSE(failures.any()) << failures.first();
  // The writer's own arithmetic held: the last state is the staircase of its last step.
  const std::vector<float> last = table.get_weights().values;
  for (std::int64_t r = 0; r < kStairRows; ++r) {
    ASSERT_EQ(last[r * kDim], static_cast<float>(step) * multiplicity(r)) << "row " << r;
  }
  EXPECT_EQ(table.row(kStairRows), std::vector<float>(kDim, single));
}

// Weights, every optimizer state array and the step count, for bitwise comparisons.
std::vector<float> everything(const EmbeddingTable& table) {
  std::vector<float> all = table.get_weights().values;
  for (const auto& name : table.optimizer_state_names()) {
    const auto state = table.optimizer_state(name).values;
    all.insert(all.end(), state.begin(), state.end());
  }
  all.push_back(static_cast<float>(table.step()));
  return all;
}

// Creates a table, trains it on random batches with hot ids (plain and pooled steps, lookups in
// between) and returns everything it holds.
std::vector<float> train_one(OptimizerKind kind, std::uint64_t seed, Context& context) {
  TableConfig config;
  config.name = "independent";
  config.input_dim = 3000;
  config.output_dim = 16;
  config.seed = seed;
  config.max_batch_lookups = 4096;
  config.gpu_memory_headroom = 0;
  config.optimizer = OptimizerConfig::defaults(kind);
  config.optimizer.learning_rate = 0.05;
  EmbeddingTable table(config, context);
  std::mt19937_64 rng(seed);
  for (int step = 0; step < 12; ++step) {
    std::vector<std::int64_t> ids(2000);
    for (auto& id : ids) id = rng() % 4 == 0 ? 11 : static_cast<std::int64_t>(rng() % 3000);
    std::vector<float> grad(ids.size() * 16);
    for (auto& g : grad) g = static_cast<float>(static_cast<double>(rng() % 2001) / 1000.0 - 1.0);
    if (step % 3 == 2) {
      const std::vector<std::int64_t> offsets = {0, 500, 500, 2000};
      table.train_step_pooled(IndexTensor(ids), offsets, PoolingMode::mean, {},
                              std::vector<float>(grad.begin(), grad.begin() + 3 * 16));
    } else {
      table.train_step(IndexTensor(ids), grad);
    }
    (void)table.lookup(IndexTensor(ids));
  }
  return everything(table);
}

TEST(Concurrency, TwoTablesTrainedOnTwoThreadsEqualSequentialTraining) {
  // On the CPU, and both on one simulated device, sharing its allocator and the context's ledger.
  auto sim = sim_context(64 * kMiB);
  for (Context* context : {&Context::default_context(), sim.get()}) {
    const std::vector<float> adam_alone = train_one(OptimizerKind::adam, 1, *context);
    const std::vector<float> ftrl_alone = train_one(OptimizerKind::ftrl, 2, *context);
    std::vector<float> adam_together, ftrl_together;
    std::latch start(2);
    std::thread first([&] {
      start.arrive_and_wait();
      adam_together = train_one(OptimizerKind::adam, 1, *context);
    });
    std::thread second([&] {
      start.arrive_and_wait();
      ftrl_together = train_one(OptimizerKind::ftrl, 2, *context);
    });
    first.join();
    second.join();
    EXPECT_EQ(adam_together, adam_alone) << context->device_name();
    EXPECT_EQ(ftrl_together, ftrl_alone) << context->device_name();
  }
  EXPECT_EQ(sim->device_bytes_placed(), 0u);
}

TEST(Concurrency, TablesPlacedFromManyThreadsNeverOvercommitTheDevice) {
  // Each table needs 4 MiB (weights and Adagrad's accumulator) plus its workspace: two fit in
  // 10 MiB, as in the sequential ledger test; eight threads create one each at the same moment.
  constexpr int kThreads = 8;
  constexpr std::uint64_t kCapacity = 10 * kMiB;
  auto context = sim_context(kCapacity);
  TableConfig config;
  config.input_dim = 32768;
  config.output_dim = 16;
  config.seed = 5;
  config.max_batch_lookups = 1024;
  config.gpu_memory_headroom = 0;
  config.optimizer = OptimizerConfig::defaults(OptimizerKind::adagrad);
  std::vector<std::unique_ptr<EmbeddingTable>> tables(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      tables[t] = std::make_unique<EmbeddingTable>(config, *context);
    });
  }
  for (std::thread& thread : threads) thread.join();
  int on_device = 0;
  for (const auto& table : tables) {
    const embedkit::PlacementDecision placement = table->placement();
    if (placement.device == DeviceKind::cuda) {
      ++on_device;
    } else {
      // Refused by the decision, never by a device allocation that a racing decision ran out of.
      EXPECT_EQ(placement.reason_code, PlacementReason::does_not_fit) << placement.reason;
    }
  }
  EXPECT_EQ(on_device, 2);
  EXPECT_LE(context->device_bytes_placed(), kCapacity);
  tables.clear();
  EXPECT_EQ(context->device_bytes_placed(), 0u);
}

TEST(Concurrency, ZeroFilledIdsFromConcurrentLookupsAreAllCounted) {
  TableConfig config;
  config.input_dim = 10;
  config.output_dim = 4;
  config.bounds_check = embedkit::BoundsCheck::zero_fill;
  const EmbeddingTable table(config);
  constexpr int kThreads = 4, kLookups = 200;
  const std::vector<std::int64_t> ids = {1, 99, -3, 2};  // two bad ids per lookup
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kLookups; ++i) (void)table.lookup(IndexTensor(ids));
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(table.out_of_range_count(), 2 * kThreads * kLookups);
}

// A row of `dim` values all equal to its first, and (when `bound` > 0) with a 2-norm at most bound.
bool whole_row(const float* row, std::int64_t dim, float bound) {
  if (!std::all_of(row, row + dim, [&](float v) { return v == row[0]; })) return false;
  return bound <= 0 || std::abs(row[0]) * std::sqrt(static_cast<float>(dim)) <= bound;
}

TEST(Concurrency, MaxNormLookupsWriteAloneAndNoReaderSeesATornRow) {
  // Every row is constant across its columns, and stays so through SGD steps (gradient -1 on every
  // column) and renorms (one float scale per row): a read that sees a row half scaled, or half
  // stepped, finds two values in it. A lookup renorms what it reads under the same lock, so what it
  // returns never has a norm above max_norm.
  constexpr std::int64_t kRenormRows = 128, kRenormDim = 64;
  constexpr float kMaxNorm = 1.0f;
  TableConfig config = stress_config();
  config.name = "max_norm";
  config.input_dim = kRenormRows;
  config.output_dim = kRenormDim;
  config.max_norm = kMaxNorm;
  config.placement = embedkit::PlacementPolicy::cpu;
  EmbeddingTable table(config);
  std::vector<float> initial(kRenormRows * kRenormDim);
  for (std::int64_t r = 0; r < kRenormRows; ++r) {
    std::fill_n(initial.begin() + r * kRenormDim, kRenormDim, static_cast<float>(1 + r));
  }
  table.set_weights(initial, std::vector<std::int64_t>{kRenormRows, kRenormDim});
  const float bound = kMaxNorm * (1.0f + 1e-5f);

  std::atomic<bool> done{false};
  Failures failures;
  std::latch start(5);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {  // lookups, which renorm: writers now
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 100);
      start.arrive_and_wait();
      while (!done.load() && !failures.any()) {
        std::vector<std::int64_t> ids(64);
        for (auto& id : ids) id = rng() % 3 == 0 ? 5 : static_cast<std::int64_t>(rng() % kRenormRows);
        const bool pooled = rng() % 2 == 0;
        std::vector<std::int64_t> each(ids.size() + 1);
        for (std::size_t p = 0; p <= ids.size(); ++p) each[p] = static_cast<std::int64_t>(p);
        const std::vector<float> got = pooled ? table.lookup_pooled(IndexTensor(ids), each, PoolingMode::mean).values
                                              : table.lookup(IndexTensor(ids)).values;
        for (std::size_t k = 0; k < ids.size(); ++k) {
          if (!whole_row(got.data() + k * kRenormDim, kRenormDim, bound)) {
            failures.add(std::string(pooled ? "pooled" : "plain") + " lookup of row " + std::to_string(ids[k]) +
                         " read " + std::to_string(got[k * kRenormDim]) + " and another value or a norm past max_norm");
            return;
          }
        }
      }
    });
  }
  for (int t = 0; t < 2; ++t) {  // readers: the whole matrix, or one row
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(t) + 200);
      start.arrive_and_wait();
      while (!done.load() && !failures.any()) {
        if (t == 0) {
          const std::vector<float> all = table.get_weights().values;
          for (std::int64_t r = 0; r < kRenormRows; ++r) {
            if (!whole_row(all.data() + r * kRenormDim, kRenormDim, 0)) {
              failures.add("get_weights saw row " + std::to_string(r) + " torn");
              return;
            }
          }
        } else {
          const auto id = static_cast<std::int64_t>(rng() % kRenormRows);
          const std::vector<float> row = table.row(id);
          if (!whole_row(row.data(), kRenormDim, 0)) failures.add("row(" + std::to_string(id) + ") saw it torn");
        }
      }
    });
  }
  start.arrive_and_wait();
  std::vector<std::int64_t> all_rows(kRenormRows);
  for (std::int64_t r = 0; r < kRenormRows; ++r) all_rows[static_cast<std::size_t>(r)] = r;
  const std::vector<float> minus_one(all_rows.size() * kRenormDim, -1.0f);
  for (int step = 0; step < 300 && !failures.any(); ++step) table.train_step(IndexTensor(all_rows), minus_one);
  done.store(true);
  for (std::thread& thread : threads) thread.join();
  EXPECT_FALSE(failures.any()) << failures.first();
  // A last lookup of every row leaves every row within max_norm.
  (void)table.lookup(IndexTensor(all_rows));
  const std::vector<float> last = table.get_weights().values;
  for (std::int64_t r = 0; r < kRenormRows; ++r) {
    EXPECT_TRUE(whole_row(last.data() + r * kRenormDim, kRenormDim, bound)) << "row " << r;
  }
}

}  // namespace
