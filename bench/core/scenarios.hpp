#pragma once
// A benchmark scenario: one operation on one shape, with embedkit's implementation and the baselines
// it is compared with, and the bytes the operation must move at minimum (what GB/s and the roofline
// are computed from). The bench programs and `embedkit bench` time the same scenarios.

#include <embedkit/optimizer.hpp>
#include <embedkit/table.hpp>

#include "id_streams.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace embedkit::bench {

/// One implementation of a scenario's operation; `run` does one whole batch.
struct Measure {
  std::string name;  ///< "embedkit", "naive" (the plain baseline) or "copy" (a streaming copy)
  std::function<void()> run;
};

struct Scenario {
  std::string title;                  ///< as title(shape)
  std::int64_t lookups = 0;           ///< ids per batch
  double bytes = 0;                   ///< bytes the operation must move per batch (rows, outputs, state)
  double pcie_bytes = 0;              ///< bytes that cross PCIe per batch when the table stays in host memory
  std::int64_t table_bytes = 0;       ///< weights
  std::int64_t state_bytes = 0;       ///< optimizer state
  std::int64_t peak_step_bytes = -1;  ///< train: resident memory a step adds at its peak; -1 if unmeasured
  std::vector<Measure> measures;      ///< embedkit first
  std::shared_ptr<void> resources;    ///< what the measures point into
};

/// A lookup of `lookups` ids into a (rows, dim) table; baselines: naive gather, streaming copy.
struct LookupShape {
  std::int64_t rows = 0, dim = 0, lookups = 0;
  IdDistribution ids;
};
/// A pooled sum over bags of `bag` ids; baselines: a plain pooled loop, streaming copy of the rows read.
struct PooledShape {
  std::int64_t rows = 0, dim = 0, lookups = 0, bag = 1;
  IdDistribution ids;
};
/// A training step: pooled-sum forward, the sparse gradient of a given bag gradient, the optimizer.
/// With `baseline`, also NaiveTrainStep (an unordered_map scatter-add and SGD) on a copy of the table.
struct TrainShape {
  std::int64_t rows = 0, dim = 0, lookups = 0, bag = 1;
  IdDistribution ids;
  OptimizerKind optimizer = OptimizerKind::sgd;
  bool baseline = true;
};

/// A (rows, dim) table created with the default initializer, Keras's uniform(-0.05, 0.05): the
/// allocation, every page's first touch and the draws, then freed. Baseline "fill": the same bytes
/// allocated the same way and filled with a constant (fresh_fill), the floor of any creation.
struct CreateShape {
  std::int64_t rows = 0, dim = 0;
};

/// The scenario's title, e.g. "lookup/dim:64/uniform/rows:8388608/lookups:1048576".
std::string title(const LookupShape& shape);
std::string title(const PooledShape& shape);
std::string title(const TrainShape& shape);
std::string title(const CreateShape& shape);

/// The names of the measures make_scenario gives, embedkit first.
std::vector<std::string> measure_names(const LookupShape& shape);
std::vector<std::string> measure_names(const PooledShape& shape);
std::vector<std::string> measure_names(const TrainShape& shape);
std::vector<std::string> measure_names(const CreateShape& shape);

Scenario make_scenario(const LookupShape& shape);
Scenario make_scenario(const PooledShape& shape);
/// Also measures peak_step_bytes, by running one step before returning.
Scenario make_scenario(const TrainShape& shape);
Scenario make_scenario(const CreateShape& shape);

/// A (rows, dim) CPU table with the benchmarks' seed and `optimizer`'s defaults.
EmbeddingTable make_table(std::int64_t rows, std::int64_t dim, OptimizerKind optimizer);

/// The time `bytes` take at the bandwidth of an H100's HBM3 (3.35 TB/s) and of PCIe 5.0 x16
/// (64 GB/s per direction): the memory roofline of a kernel that moves them once.
double h100_seconds(double bytes);
double pcie5_seconds(double bytes);

}  // namespace embedkit::bench
