#include "suite.hpp"

#include <algorithm>
#include <chrono>
#include <limits>

namespace embedkit::bench {
namespace {

constexpr std::int64_t kBag = 32;
constexpr std::int64_t kTrainDim = 64;
constexpr IdDistribution kUniform{0.0};
constexpr IdDistribution kZipf105{1.05};
constexpr IdDistribution kZipf12{1.2};

template <class Shape>
ScenarioSpec spec(std::string group, const Shape& shape) {
  return {std::move(group), title(shape), measure_names(shape), [shape] { return make_scenario(shape); }};
}

std::int64_t rows_for(const Scale& scale, std::int64_t dim) {
  return scale.table_bytes / (dim * static_cast<std::int64_t>(sizeof(float)));
}

LookupShape lookup_shape(const Scale& scale, std::int64_t dim, IdDistribution ids) {
  return {rows_for(scale, dim), dim, scale.lookups, ids};
}

PooledShape pooled_shape(const Scale& scale, std::int64_t bag) {
  return {rows_for(scale, 64), 64, 2 * scale.lookups, bag, kUniform};
}

// A table of the scale's size at the training target's width, made with the default initializer.
CreateShape create_shape(const Scale& scale) { return {rows_for(scale, kTrainDim), kTrainDim}; }

TrainShape train_shape(const Scale& scale, OptimizerKind optimizer) {
  return {scale.train_rows, kTrainDim, scale.train_lookups, kBag, kZipf12, optimizer, true};
}

}  // namespace

Scale Scale::smoke() {
  Scale scale;
  scale.table_bytes = std::int64_t{8} << 20;
  scale.lookups = std::int64_t{1} << 14;
  scale.train_rows = std::int64_t{1} << 16;
  scale.train_lookups = std::int64_t{1} << 14;
  scale.scaling_rows = {std::int64_t{1} << 14, std::int64_t{1} << 17};
  scale.scaling_batches = {1 << 10, 1 << 12, 1 << 14};
  return scale;
}

std::vector<ScenarioSpec> full_suite(const Scale& scale) {
  std::vector<ScenarioSpec> suite;
  for (const std::int64_t dim : {16, 64, 128, 256}) {
    for (const IdDistribution ids : {kUniform, kZipf105, kZipf12}) {
      suite.push_back(spec("lookup", lookup_shape(scale, dim, ids)));
    }
  }
  for (const std::int64_t bag : {1, 8, 32, 128}) suite.push_back(spec("pooled", pooled_shape(scale, bag)));
  for (const OptimizerKind optimizer :
       {OptimizerKind::sgd, OptimizerKind::adagrad, OptimizerKind::rowwise_adagrad, OptimizerKind::adam}) {
    suite.push_back(spec("train", train_shape(scale, optimizer)));
  }
  suite.push_back(spec("create", create_shape(scale)));
  // Cost must follow the batch, not the vocabulary: the same batch against a small and a large table.
  for (const std::int64_t rows : scale.scaling_rows) {
    suite.push_back(spec("scaling_rows", TrainShape{rows, kTrainDim, scale.lookups, kBag, kZipf12,
                                                    OptimizerKind::rowwise_adagrad, false}));
  }
  // Cost per lookup must stay flat as the batch grows.
  for (const std::int64_t batch : scale.scaling_batches) {
    suite.push_back(spec("scaling_batch", TrainShape{scale.train_rows, kTrainDim, batch, kBag, kZipf12,
                                                     OptimizerKind::rowwise_adagrad, false}));
  }
  return suite;
}

std::vector<ScenarioSpec> main_figures(const Scale& scale) {
  return {
      spec("lookup", lookup_shape(scale, 64, kUniform)),
      spec("lookup", lookup_shape(scale, 256, kUniform)),
      spec("pooled", pooled_shape(scale, kBag)),
      spec("train", train_shape(scale, OptimizerKind::rowwise_adagrad)),
      spec("train", train_shape(scale, OptimizerKind::adam)),
      spec("create", create_shape(scale)),
  };
}

std::vector<double> best_seconds(const Scenario& scenario, double budget_seconds, int rounds) {
  using Clock = std::chrono::steady_clock;
  std::vector<double> best(scenario.measures.size(), std::numeric_limits<double>::infinity());
  const Clock::time_point start = Clock::now();
  for (int round = 0;; ++round) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    if (round >= rounds && elapsed >= budget_seconds) break;
    for (std::size_t m = 0; m < scenario.measures.size(); ++m) {
      const Clock::time_point begin = Clock::now();
      scenario.measures[m].run();
      best[m] = std::min(best[m], std::chrono::duration<double>(Clock::now() - begin).count());
    }
  }
  return best;
}

}  // namespace embedkit::bench
