#pragma once
// The benchmark suite of issue #8, as scenario specifications built on demand (one at a time, since
// full-size tables take gigabytes), shared by bench/bench_embedkit and `embedkit bench`.

#include "scenarios.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace embedkit::bench {

/// How large the shapes are. `full` is the measurement: tables of `table_bytes` (2 GiB, beyond
/// any last-level cache of this machine class), 2^20–2^21 lookups. `smoke` shrinks everything so
/// CI checks the harness in seconds.
struct Scale {
  std::int64_t table_bytes = std::int64_t{2} << 30;
  std::int64_t lookups = std::int64_t{1} << 20;
  std::int64_t train_rows = std::int64_t{4} << 20;  ///< the training target: Zipf 1.2 over 4 M rows
  std::int64_t train_lookups = std::int64_t{2} << 20;
  std::vector<std::int64_t> scaling_rows = {std::int64_t{1} << 20, std::int64_t{32} << 20};
  std::vector<std::int64_t> scaling_batches = {1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22};

  static Scale full() { return {}; }
  static Scale smoke();
};

/// A scenario before it is built.
struct ScenarioSpec {
  std::string group;  ///< "lookup", "pooled", "train", "create", "scaling_rows", "scaling_batch"
  std::string title;
  std::vector<std::string> measures;
  std::function<Scenario()> make;
};

/// Every scenario of the issue: lookups at dim 16/64/128/256 with uniform and Zipf (1.05, 1.2) ids,
/// pooled sums over bags of 1/8/32/128, train steps (SGD, Adagrad, row-wise Adagrad, lazy Adam),
/// the creation of a table with the default initializer, row-wise Adagrad against 1 M and 32 M rows,
/// and batches of 2^14 … 2^22.
std::vector<ScenarioSpec> full_suite(const Scale& scale);

/// The headline figures `embedkit bench` prints: lookups at dim 64 and 256, pooled bags of 32 at
/// dim 64, the row-wise Adagrad and lazy Adam train steps of the training target, and the creation
/// of a table of the scale's size with the default initializer.
std::vector<ScenarioSpec> main_figures(const Scale& scale);

/// Best seconds per batch of each measure of `scenario`, the measures run in turns (round robin,
/// one batch each) for at least `rounds` rounds and until `budget_seconds` have passed, so that
/// all measures see the same machine; the minimum filters out other processes' interference.
std::vector<double> best_seconds(const Scenario& scenario, double budget_seconds, int rounds = 3);

}  // namespace embedkit::bench
