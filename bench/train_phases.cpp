// Where a training step's time goes, phase by phase, against the bytes it must move: the byte
// roofline of issue #24 item 3 (docs/performance.md). At one shape (default: a 2^22 x 64 table,
// 2^21 Zipf(1.2) ids in bags of 32, the shape FBGEMM's CPU TBE is compared at), it times in
// interleaved rounds: a streaming copy (the machine's bandwidth, measured in this run), the
// pooled-sum forward, the sparse gradient alone (sort + fold), the optimizer step alone on that
// gradient, and the fused train step (sort + fold + apply), for SGD and row-wise Adagrad. Each
// phase's minimum bytes over the copy's bandwidth is the time it would take at the roofline; the
// fraction printed is roofline time / measured time. Usage: bench_train_phases [rows lookups rounds
// [optimizer]]; with an optimizer (sgd, rowwise_adagrad) it runs only that optimizer's fused step,
// `rounds` times, for a profiler (perf record) to attribute its time to the step's functions.
#include <embedkit/embedkit.hpp>

#include "core/baselines.hpp"
#include "core/buffers.hpp"
#include "core/id_streams.hpp"
#include "core/scenarios.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace {

using embedkit::EmbeddingTable;
using embedkit::IndexTensor;
using embedkit::OptimizerKind;
using embedkit::PoolingMode;
using embedkit::bench::Floats;

constexpr std::int64_t kDim = 64, kBag = 32;

double seconds(const std::function<void()>& run) {
  const auto start = std::chrono::steady_clock::now();
  run();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct Phase {
  std::string name;
  double bytes;  // the minimum the phase must move
  std::function<void()> run;
  double best = std::numeric_limits<double>::infinity();
};

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t rows = argc > 1 ? std::atoll(argv[1]) : std::int64_t{1} << 22;
  const std::int64_t lookups = argc > 2 ? std::atoll(argv[2]) : std::int64_t{1} << 21;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 8;
  const std::string profiled = argc > 4 ? argv[4] : "";
  const std::vector<std::int64_t> ids =
      embedkit::bench::draw_ids(embedkit::bench::IdDistribution{1.2}, rows, lookups, 3);
  std::vector<std::int64_t> offsets;
  for (std::int64_t start = 0; start < lookups; start += kBag) offsets.push_back(start);
  offsets.push_back(lookups);
  const std::int64_t bags = static_cast<std::int64_t>(offsets.size()) - 1;
  std::vector<std::int64_t> sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  const auto touched = static_cast<double>(std::unique(sorted.begin(), sorted.end()) - sorted.begin());
  const IndexTensor batch(ids);
  const std::vector<float> grad_bags(static_cast<std::size_t>(bags * kDim), 1e-3f);
  Floats forward(bags * kDim), copy_from(lookups * kDim), copy_to(lookups * kDim);
  const double row_bytes = kDim * sizeof(float);
  const double id_bytes = static_cast<double>(lookups) * sizeof(std::int64_t);

  std::printf(
      "Train step phases: %lld x %lld table, %lld Zipf(1.2) ids (%.0f distinct) in bags of %lld, %d threads, "
      "best of %d interleaved rounds\n\n",
      static_cast<long long>(rows), static_cast<long long>(kDim), static_cast<long long>(lookups), touched,
      static_cast<long long>(kBag), omp_get_max_threads(), rounds);
  for (const OptimizerKind kind : {OptimizerKind::sgd, OptimizerKind::rowwise_adagrad}) {
    if (!profiled.empty() && profiled != embedkit::to_string(kind)) continue;
    std::printf("| optimizer | phase | ms | minimum bytes (MiB) | roofline ms | fraction of roofline |\n");
    std::printf("| --- | --- | ---: | ---: | ---: | ---: |\n");
    EmbeddingTable table = embedkit::bench::make_table(rows, kDim, kind);
    const double state_per_row =
        static_cast<double>(table.placement().bytes.optimizer_state) / static_cast<double>(rows);
    const embedkit::SparseGrad gradient = table.sparse_grad_pooled(batch, offsets, PoolingMode::sum, {}, grad_bags);
    const double forward_bytes = static_cast<double>(lookups) * row_bytes + static_cast<double>(bags) * row_bytes;
    const double fold_bytes = id_bytes + static_cast<double>(bags) * row_bytes + touched * row_bytes;
    const double apply_bytes = touched * row_bytes + 2 * touched * (row_bytes + state_per_row);
    const double step_bytes =
        id_bytes + static_cast<double>(bags) * row_bytes + 2 * touched * (row_bytes + state_per_row);
    std::vector<Phase> phases = {
        {"streaming copy", 2.0 * static_cast<double>(lookups) * row_bytes,
         [&] { embedkit::bench::stream_copy(copy_from.data(), copy_to.data(), lookups * kDim); }},
        {"forward: pooled sum", forward_bytes,
         [&] { table.lookup_pooled(batch, offsets, PoolingMode::sum, {}, forward.span()); }},
        {"sparse gradient (sort + fold)", fold_bytes,
         [&] { (void)table.sparse_grad_pooled(batch, offsets, PoolingMode::sum, {}, grad_bags); }},
        {"apply (optimizer on the folded rows)", apply_bytes, [&] { table.apply(gradient); }},
        {"fused train step (sort + fold + apply)", step_bytes,
         [&] { table.train_step_pooled(batch, offsets, PoolingMode::sum, {}, grad_bags); }},
    };
    if (!profiled.empty()) {
      for (int round = 0; round < rounds; ++round) phases[4].run();
      return 0;
    }
    for (int round = 0; round < rounds; ++round) {
      for (Phase& phase : phases) phase.best = std::min(phase.best, seconds(phase.run));
    }
    const double bandwidth = phases[0].bytes / phases[0].best;
    for (const Phase& phase : phases) {
      const double roofline = phase.bytes / bandwidth;
      std::printf("| %s | %s | %.1f | %.0f | %.1f | %.2f |\n", embedkit::to_string(kind), phase.name.c_str(),
                  phase.best * 1e3, phase.bytes / (1 << 20), roofline * 1e3, roofline / phase.best);
    }
    const double step = phases[1].best + phases[4].best;
    const double roofline = (phases[1].bytes + phases[4].bytes) / bandwidth;
    std::printf("| %s | **forward + fused step** | %.1f | %.0f | %.1f | %.2f |\n", embedkit::to_string(kind),
                step * 1e3, (phases[1].bytes + phases[4].bytes) / (1 << 20), roofline * 1e3, roofline / step);
    std::printf("\ncopy bandwidth in this run: %.1f GB/s (bytes read + written)\n\n", bandwidth / 1e9);
  }
  return 0;
}
