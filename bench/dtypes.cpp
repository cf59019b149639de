// Rows stored as bfloat16 and float16 against float32, at the same table shape, in one process:
// plain lookups (into a float32 output), pooled sums, and the train step (pooled-sum forward, then
// the fused step) with its two phases apart. The storage types alternate call by call, round after
// round, so the ratios compare like with like on a shared machine; each figure is the best and the
// median of the rounds. A row read as bfloat16 is half the bytes of float32: where reading rows
// dominates (pooled sums, the forward, the row updates) the ratio approaches 2; where the output's
// float32 bytes stay (plain lookups) or the work is float32 anyway (sort, fold, optimizer math),
// less. Usage: bench_dtypes [rows lookups rounds].
#include <embedkit/embedkit.hpp>

#include "core/buffers.hpp"
#include "core/id_streams.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace {

using embedkit::DType;
using embedkit::EmbeddingTable;
using embedkit::IndexTensor;
using embedkit::PoolingMode;
using embedkit::bench::Floats;

constexpr std::int64_t kDim = 64, kBag = 32;
constexpr DType kTypes[] = {DType::float32, DType::bfloat16, DType::float16};

double seconds(const std::function<void()>& run) {
  const auto start = std::chrono::steady_clock::now();
  run();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A table of the bench's shape stored as `type`, trained with `optimizer` (stochastic rounding).
EmbeddingTable make_table(std::int64_t rows, DType type, embedkit::OptimizerKind optimizer) {
  embedkit::TableConfig config;
  config.input_dim = rows;
  config.output_dim = kDim;
  config.seed = 7;
  config.name = std::string("bench_") + embedkit::to_string(type);
  config.placement = embedkit::PlacementPolicy::cpu;
  config.optimizer = embedkit::OptimizerConfig::defaults(optimizer);
  config.dtype = type;
  return EmbeddingTable(config);
}

// One operation's times, per storage type.
struct Measure {
  std::string name;
  std::vector<double> times[std::size(kTypes)];
};

double best(std::vector<double> times) { return *std::min_element(times.begin(), times.end()); }
double median(std::vector<double> times) {
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t rows = argc > 1 ? std::atoll(argv[1]) : std::int64_t{1} << 22;
  const std::int64_t lookups = argc > 2 ? std::atoll(argv[2]) : std::int64_t{1} << 21;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 9;
  const auto uniform = embedkit::bench::draw_ids(embedkit::bench::IdDistribution{0.0}, rows, lookups, 1);
  const auto zipf = embedkit::bench::draw_ids(embedkit::bench::IdDistribution{1.2}, rows, lookups, 3);
  const std::vector<std::int64_t> offsets = embedkit::bench::bag_offsets(lookups, kBag);
  const std::int64_t bags = static_cast<std::int64_t>(offsets.size()) - 1;
  const IndexTensor uniform_batch(uniform), zipf_batch(zipf);
  const std::vector<float> grad_bags(static_cast<std::size_t>(bags * kDim), 1e-3f);
  Floats gathered(lookups * kDim), pooled(bags * kDim);

  std::vector<EmbeddingTable> tables;
  for (const DType type : kTypes) tables.push_back(make_table(rows, type, embedkit::OptimizerKind::rowwise_adagrad));
  std::vector<Measure> measures = {{"plain lookup, uniform ids, float32 output", {}},
                                   {"pooled sum, uniform ids, bags of 32", {}},
                                   {"train: forward (pooled sum, Zipf 1.2)", {}},
                                   {"train: fused step (sort + fold + row updates)", {}},
                                   {"train: forward + fused step", {}}};
  for (int round = 0; round < rounds; ++round) {
    for (std::size_t t = 0; t < std::size(kTypes); ++t) {
      EmbeddingTable& table = tables[t];
      measures[0].times[t].push_back(seconds([&] { table.lookup(uniform_batch, gathered.span()); }));
      measures[1].times[t].push_back(
          seconds([&] { table.lookup_pooled(uniform_batch, offsets, PoolingMode::sum, {}, pooled.span()); }));
      const double forward =
          seconds([&] { table.lookup_pooled(zipf_batch, offsets, PoolingMode::sum, {}, pooled.span()); });
      const double step =
          seconds([&] { table.train_step_pooled(zipf_batch, offsets, PoolingMode::sum, {}, grad_bags); });
      measures[2].times[t].push_back(forward);
      measures[3].times[t].push_back(step);
      measures[4].times[t].push_back(forward + step);
    }
  }
  std::printf(
      "Storage types: %lld x %lld table (float32 %.0f MiB), %lld lookups (bags of %lld), row-wise Adagrad, "
      "%d threads, %d rounds alternating the types\n\n",
      static_cast<long long>(rows), static_cast<long long>(kDim), static_cast<double>(rows * kDim * 4) / (1 << 20),
      static_cast<long long>(lookups), static_cast<long long>(kBag), omp_get_max_threads(), rounds);
  std::printf(
      "| operation | float32 ms (best / median) | bfloat16 ms | float16 ms | bfloat16 speed-up (best / median) "
      "| float16 speed-up |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: |\n");
  for (const Measure& m : measures) {
    std::printf("| %s | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %.2fx / %.2fx | %.2fx / %.2fx |\n", m.name.c_str(),
                best(m.times[0]) * 1e3, median(m.times[0]) * 1e3, best(m.times[1]) * 1e3, median(m.times[1]) * 1e3,
                best(m.times[2]) * 1e3, median(m.times[2]) * 1e3, best(m.times[0]) / best(m.times[1]),
                median(m.times[0]) / median(m.times[1]), best(m.times[0]) / best(m.times[2]),
                median(m.times[0]) / median(m.times[2]));
  }
  return 0;
}
