// How many OpenMP parallel regions and barriers each table operation enters: the cost that grows
// when the machine is loaded, since every region wakes the team and every barrier waits for its
// slowest thread (docs/performance.md). Counted by interposing libgomp's entry points: this
// executable defines GOMP_parallel, GOMP_barrier and GOMP_loop_end, so libembedkit's calls
// bind to them; each counts on the calling thread and forwards to libgomp's own (RTLD_NEXT).
// GCC's libgomp only; prints a markdown table.
#include <embedkit/embedkit.hpp>

#include "core/id_streams.hpp"
#include "core/scenarios.hpp"

#include <dlfcn.h>
#include <omp.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace {

std::atomic<std::int64_t> g_regions{0};         // GOMP_parallel with a team of more than one thread
std::atomic<std::int64_t> g_serial_regions{0};  // GOMP_parallel whose if() clause kept one thread
std::atomic<std::int64_t> g_barriers{0};        // explicit, single's and loops' barriers, once per team

template <class Function>
Function next_definition(const char* name) {
  void* found = dlsym(RTLD_NEXT, name);
  if (found == nullptr) {
    std::fprintf(stderr, "parallel_regions: libgomp's %s not found\n", name);
    std::abort();
  }
  return reinterpret_cast<Function>(found);
}

}  // namespace

extern "C" {

void GOMP_parallel(void (*fn)(void*), void* data, unsigned num_threads, unsigned flags) {
  using Parallel = void (*)(void (*)(void*), void*, unsigned, unsigned);
  static const Parallel real = next_definition<Parallel>("GOMP_parallel");
  (num_threads == 1 ? g_serial_regions : g_regions).fetch_add(1);
  real(fn, data, num_threads, flags);
}

void GOMP_loop_end() {  // the barrier that ends a dynamically scheduled loop without nowait
  using LoopEnd = void (*)();
  static const LoopEnd real = next_definition<LoopEnd>("GOMP_loop_end");
  if (omp_get_thread_num() == 0) g_barriers.fetch_add(1);
  real();
}

void GOMP_barrier() {
  using Barrier = void (*)();
  static const Barrier real = next_definition<Barrier>("GOMP_barrier");
  if (omp_get_thread_num() == 0) g_barriers.fetch_add(1);
  real();
}

}  // extern "C"

namespace {

using embedkit::EmbeddingTable;
using embedkit::IndexTensor;
using embedkit::OptimizerKind;
using embedkit::PoolingMode;

struct Counts {
  std::int64_t regions, serial, barriers;
};

Counts count(const std::function<void()>& operation) {
  operation();  // once to warm: workspaces are allocated on the first call
  const Counts before{g_regions.load(), g_serial_regions.load(), g_barriers.load()};
  operation();
  return {g_regions.load() - before.regions, g_serial_regions.load() - before.serial,
          g_barriers.load() - before.barriers};
}

}  // namespace

int main() {
  constexpr std::int64_t kRows = 1 << 20, kDim = 64, kIds = 1 << 16, kBag = 32;
  const std::vector<std::int64_t> ids =
      embedkit::bench::draw_ids(embedkit::bench::IdDistribution{1.2}, kRows, kIds, /*seed=*/7);
  std::vector<std::int64_t> offsets;
  for (std::int64_t start = 0; start <= kIds; start += kBag) offsets.push_back(start);
  const std::int64_t bags = static_cast<std::int64_t>(offsets.size()) - 1;
  const std::vector<float> row_grad(static_cast<std::size_t>(kIds * kDim), 0.01f);
  const std::vector<float> bag_grad(static_cast<std::size_t>(bags * kDim), 0.01f);
  std::vector<float> rows_out(row_grad.size()), bags_out(bag_grad.size());
  const IndexTensor batch(ids);

  std::printf(
      "OpenMP parallel regions and barriers per call: %lld ids (Zipf 1.2) into %lld x %lld, bags of %lld, "
      "%d threads\n\n",
      static_cast<long long>(kIds), static_cast<long long>(kRows), static_cast<long long>(kDim),
      static_cast<long long>(kBag), omp_get_max_threads());
  std::printf("| operation | parallel regions | regions run by one thread (if clause) | barriers inside regions |\n");
  std::printf("| --- | ---: | ---: | ---: |\n");
  const auto row = [](const std::string& name, Counts c) {
    std::printf("| %s | %lld | %lld | %lld |\n", name.c_str(), static_cast<long long>(c.regions),
                static_cast<long long>(c.serial), static_cast<long long>(c.barriers));
  };
  {
    EmbeddingTable t = embedkit::bench::make_table(kRows, kDim, OptimizerKind::sgd);
    row("lookup", count([&] { t.lookup(batch, rows_out); }));
    row("pooled lookup, sum", count([&] { t.lookup_pooled(batch, offsets, PoolingMode::sum, {}, bags_out); }));
    row("pooled lookup, mean", count([&] { t.lookup_pooled(batch, offsets, PoolingMode::mean, {}, bags_out); }));
    row("sparse gradient", count([&] { (void)t.sparse_grad(batch, row_grad); }));
    row("sparse gradient, pooled sum",
        count([&] { (void)t.sparse_grad_pooled(batch, offsets, PoolingMode::sum, {}, bag_grad); }));
  }
  for (const OptimizerKind kind :
       {OptimizerKind::sgd, OptimizerKind::rowwise_adagrad, OptimizerKind::adagrad, OptimizerKind::adam}) {
    EmbeddingTable t = embedkit::bench::make_table(kRows, kDim, kind);
    row(std::string("train step, ") + embedkit::to_string(kind), count([&] { t.train_step(batch, row_grad); }));
    row(std::string("train step, pooled sum, ") + embedkit::to_string(kind),
        count([&] { t.train_step_pooled(batch, offsets, PoolingMode::sum, {}, bag_grad); }));
  }
  return 0;
}
