// bench_lookup: how fast EmbeddingTable::lookup gathers rows on the CPU, against two references
// measured in the same process, over the same table size, the same ids and the same output buffer.
//
//   BM_stream_copy      One parallel memcpy of a buffer as large as the output: the machine's copy
//                       bandwidth, the ceiling for a gather, which reads and writes as many bytes.
//   BM_naive_gather     One std::memcpy per row from a plain float matrix of the table's size (a copy
//                       of its weights), in an OpenMP static loop like the library's, so the thread
//                       counts match: the baseline embedkit has to match.
//   BM_embedkit_lookup  EmbeddingTable::lookup(indices, out) into a preallocated output, the id
//                       bounds check included.
//
// Each family runs for dims 16, 64 and 256 with 2^20 uniform random int64 ids (fixed seed) over a
// table of EMBEDKIT_BENCH_ROWS rows (default 2^19; set it to reach tables of 2 GiB and more, beyond
// the last-level cache, for a real measurement). Every benchmark reports the bytes it moves per
// batch (output written + rows read, i.e. 2 x output bytes; the ids are not counted), lookups/s and
// GB/s (10^9 bytes), all over wall-clock time since the work runs on OpenMP threads.
//
// Why ratios: the machines are shared and noisy, so absolute figures move from run to run, while
// benchmarks run back to back in one process see the same machine. After the runs the program
// prints, per dim, the throughput ratios embedkit/naive, embedkit/copy and naive/copy, from the
// fastest repetition of each benchmark. Those ratios are the figures to report.
//
// Usage: bench_lookup [Google Benchmark flags], e.g. --benchmark_min_time=0.01 for a CI smoke run,
// --benchmark_repetitions=5 for a measurement. Memory: about 2 x (table + output) bytes for the shape
// being run; the shapes are built one at a time, outside the timings, and each is built once.

#include <benchmark/benchmark.h>
#include <embedkit/config.hpp>
#include <embedkit/summary.hpp>
#include <embedkit/table.hpp>
#include <embedkit/tensor.hpp>
#include <omp.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// 32 / 128 / 512 MiB tables: beyond a CI runner's last-level cache from dim 64, and quick to build.
constexpr std::int64_t kDefaultRows = std::int64_t{1} << 19;
constexpr std::int64_t kLookups = std::int64_t{1} << 20;
constexpr std::array<std::int64_t, 3> kDims = {16, 64, 256};
constexpr std::uint64_t kSeed = 20240601;
constexpr std::size_t kAlignment = 64;  // a cache line, as the library aligns its weights

struct FreeDeleter {
  void operator()(float* p) const noexcept { std::free(p); }
};
using Floats = std::unique_ptr<float[], FreeDeleter>;

// A (rows, dim) float buffer, aligned as the table's weights and first touched by the threads of a
// static schedule over rows, so that on NUMA machines its pages lie where the loops below use them.
Floats allocate_floats(std::int64_t rows, std::int64_t dim) {
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * sizeof(float);
  const std::size_t bytes =
      (static_cast<std::size_t>(rows) * row_bytes + kAlignment - 1) / kAlignment * kAlignment;
  Floats floats(static_cast<float*>(std::aligned_alloc(kAlignment, bytes)));
  if (!floats) throw std::bad_alloc();
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < rows; ++r) std::memset(floats.get() + r * dim, 0, row_bytes);
  return floats;
}

// The naive baseline: one memcpy per row, no bounds check, the library's OpenMP schedule.
void naive_gather(const float* matrix, std::int64_t dim, std::span<const std::int64_t> ids, float* out) {
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * sizeof(float);
  const auto count = static_cast<std::int64_t>(ids.size());
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < count; ++i) std::memcpy(out + i * dim, matrix + ids[i] * dim, row_bytes);
}

// Copies rows [0, rows) of width dim, each thread one contiguous slice in one memcpy.
void stream_copy(const float* source, float* destination, std::int64_t rows, std::int64_t dim) {
#pragma omp parallel
  {
    const std::int64_t threads = omp_get_num_threads();
    const std::int64_t thread = omp_get_thread_num();
    const std::int64_t begin = rows * thread / threads * dim;
    const std::int64_t end = rows * (thread + 1) / threads * dim;
    std::memcpy(destination + begin, source + begin, static_cast<std::size_t>(end - begin) * sizeof(float));
  }
}

embedkit::TableConfig table_config(std::int64_t rows, std::int64_t dim) {
  embedkit::TableConfig config;
  config.input_dim = rows;
  config.output_dim = dim;
  config.seed = kSeed;
  config.name = "bench_lookup";
  config.placement = embedkit::PlacementPolicy::cpu;
  return config;
}

std::vector<std::int64_t> uniform_ids(std::int64_t rows) {
  std::mt19937_64 generator(kSeed);
  std::uniform_int_distribution<std::int64_t> distribution(0, rows - 1);
  std::vector<std::int64_t> ids(static_cast<std::size_t>(kLookups));
  for (std::int64_t& id : ids) id = distribution(generator);
  return ids;
}

// Everything the three families of one shape share: the table, its plain copy, the ids, the output
// they all write and the stream copy's source.
struct Shape {
  Shape(std::int64_t table_rows, std::int64_t width)
      : rows(table_rows),
        dim(width),
        table(table_config(rows, dim)),
        matrix(allocate_floats(rows, dim)),
        ids(uniform_ids(rows)),
        indices(ids),
        out(allocate_floats(kLookups, dim)),
        source(allocate_floats(kLookups, dim)) {
    table.get_weights(std::span<float>(matrix.get(), static_cast<std::size_t>(rows * dim)));
    // The naive gather and the library must do the same work: check their outputs agree once.
    table.lookup(indices, output());
    naive_gather(matrix.get(), dim, ids, source.get());
    if (std::memcmp(out.get(), source.get(), output().size_bytes()) != 0) {
      throw std::runtime_error("the naive gather and EmbeddingTable::lookup disagree");
    }
  }

  std::span<float> output() const { return {out.get(), static_cast<std::size_t>(kLookups * dim)}; }

  std::int64_t rows;
  std::int64_t dim;
  embedkit::EmbeddingTable table;
  Floats matrix;  // the table's weights, as a raw row-major matrix for the naive gather
  std::vector<std::int64_t> ids;
  embedkit::IndexTensor indices;
  Floats out;
  Floats source;
};

// The shape being run, built on its first use. Only one is kept: the benchmarks are registered shape
// by shape, so each shape is still built once, and memory holds one shape even for multi-GiB tables.
Shape& shape_for(std::int64_t rows, std::int64_t dim) {
  static std::unique_ptr<Shape> current;
  if (!current || current->rows != rows || current->dim != dim) {
    current.reset();  // free the previous shape before allocating the next
    current = std::make_unique<Shape>(rows, dim);
  }
  return *current;
}

std::string benchmark_name(const char* family, std::int64_t dim) {
  return std::string(family) + "/dim:" + std::to_string(dim);
}

// Times kernel(shape) per iteration; the shape is built (or fetched) before the timed loop.
template <class Kernel>
void run_benchmark(benchmark::State& state, std::int64_t rows, std::int64_t dim, const Kernel& kernel) {
  Shape* shape = nullptr;
  try {
    shape = &shape_for(rows, dim);
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
    return;
  }
  for (auto _ : state) {
    kernel(*shape);
    benchmark::ClobberMemory();
  }
  const auto iterations = static_cast<std::int64_t>(state.iterations());
  const std::int64_t bytes_per_batch = 2 * static_cast<std::int64_t>(shape->output().size_bytes());
  state.SetBytesProcessed(iterations * bytes_per_batch);
  state.counters["lookups/s"] = benchmark::Counter(static_cast<double>(iterations * kLookups),
                                                   benchmark::Counter::kIsRate);
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(iterations * bytes_per_batch) / 1e9,
                                              benchmark::Counter::kIsRate);
}

template <class Kernel>
void register_benchmark(const char* family, std::int64_t rows, std::int64_t dim, Kernel kernel) {
  const auto run = [rows, dim, kernel](benchmark::State& state) { run_benchmark(state, rows, dim, kernel); };
  benchmark::RegisterBenchmark(benchmark_name(family, dim).c_str(), run)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

// The usual console output, then the throughput ratios of the benchmarks it reported.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  RatioReporter() : ConsoleReporter(OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      failed_ = failed_ || run.error_occurred;
      if (run.error_occurred || run.run_type != Run::RT_Iteration || run.iterations == 0) continue;
      const double seconds = run.real_accumulated_time / static_cast<double>(run.iterations);
      const auto [entry, inserted] = seconds_per_batch_.try_emplace(run.run_name.function_name, seconds);
      if (!inserted && seconds < entry->second) entry->second = seconds;
    }
    ConsoleReporter::ReportRuns(runs);
  }

  // Whether a benchmark was skipped with an error (a table that could not be built, say).
  bool failed() const { return failed_; }

  void Finalize() override {
    ConsoleReporter::Finalize();
    std::ostream& out = GetOutputStream();
    out << "\nThroughput ratios from this run (same bytes per batch; 1.00 = as fast, above 1 = the first "
           "is faster):\n"
        << std::setw(6) << "dim" << std::setw(16) << "embedkit/naive" << std::setw(15) << "embedkit/copy"
        << std::setw(12) << "naive/copy" << '\n';
    for (const std::int64_t dim : kDims) {
      const std::optional<double> copy = seconds("BM_stream_copy", dim);
      const std::optional<double> naive = seconds("BM_naive_gather", dim);
      const std::optional<double> embedkit = seconds("BM_embedkit_lookup", dim);
      out << std::setw(6) << dim;
      print_ratio(out, 16, naive, embedkit);
      print_ratio(out, 15, copy, embedkit);
      print_ratio(out, 12, copy, naive);
      out << '\n';
    }
  }

 private:
  std::optional<double> seconds(const char* family, std::int64_t dim) const {
    const auto entry = seconds_per_batch_.find(benchmark_name(family, dim));
    if (entry == seconds_per_batch_.end()) return std::nullopt;
    return entry->second;
  }

  // The throughput of `measured` relative to `reference`, or "-" when either did not run.
  static void print_ratio(std::ostream& out, int width, std::optional<double> reference,
                          std::optional<double> measured) {
    if (reference && measured) {
      out << std::setw(width) << std::fixed << std::setprecision(2) << *reference / *measured;
    } else {
      out << std::setw(width) << "-";
    }
  }

  std::map<std::string, double> seconds_per_batch_;  // fastest repetition, by benchmark name
  bool failed_ = false;
};

// The table's rows: EMBEDKIT_BENCH_ROWS when set, else kDefaultRows; nullopt when malformed.
std::optional<std::int64_t> table_rows() {
  const char* text = std::getenv("EMBEDKIT_BENCH_ROWS");
  if (text == nullptr || *text == '\0') return kDefaultRows;
  const char* end = text + std::strlen(text);
  std::int64_t rows = 0;
  const auto [last, error] = std::from_chars(text, end, rows);
  if (error != std::errc() || last != end || rows <= 0) return std::nullopt;
  return rows;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const std::optional<std::int64_t> rows = table_rows();
  if (!rows) {
    std::cerr << "EMBEDKIT_BENCH_ROWS must be a positive integer, got '" << std::getenv("EMBEDKIT_BENCH_ROWS")
              << "'\n";
    return 1;
  }

  std::cout << "bench_lookup: " << omp_get_max_threads() << " OpenMP threads, " << kLookups
            << " lookups per batch, tables of " << *rows << " rows (EMBEDKIT_BENCH_ROWS)\n";
  for (const std::int64_t dim : kDims) {
    std::cout << "  table bytes at dim " << dim << ": "
              << embedkit::format_bytes(static_cast<std::uint64_t>(*rows * dim) * sizeof(float)) << '\n';
  }
  std::cout << "Report the ratios printed at the end, measured in this one run; absolute figures vary "
               "between runs on shared machines.\n"
            << std::flush;

  for (const std::int64_t dim : kDims) {
    register_benchmark("BM_stream_copy", *rows, dim, [](Shape& shape) {
      stream_copy(shape.source.get(), shape.out.get(), kLookups, shape.dim);
    });
    register_benchmark("BM_naive_gather", *rows, dim, [](Shape& shape) {
      naive_gather(shape.matrix.get(), shape.dim, shape.ids, shape.out.get());
    });
    register_benchmark("BM_embedkit_lookup", *rows, dim,
                       [](Shape& shape) { shape.table.lookup(shape.indices, shape.output()); });
  }

  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return reporter.failed() ? 1 : 0;
}
