// bench_embedkit: the benchmark suite (bench/core/suite.hpp) under Google Benchmark. Each scenario
// registers one benchmark per measure, "<scenario>/<measure>": embedkit, the plain baseline compiled
// into this binary ("naive": a memcpy-per-row gather, a plain pooled loop, or an unordered_map
// scatter-add with SGD) and a streaming copy of the same bytes ("copy"). All run with the same OpenMP
// thread count. Each reports bytes moved (the minimum the operation must move: rows read, outputs
// written, touched weights and optimizer state read and written; ids are not counted), GB/s and
// lookups/s over wall-clock time. After the runs the program prints the report of
// bench/core/report.hpp: ratios from this run, the H100 / PCIe 5 roofline, and each train step's
// peak memory beside the table's weights and state.
//
// Scenarios are built when their first benchmark runs and freed before the next one is built, so
// memory holds one shape: about 2 x 2 GiB (table and its plain copy) plus the batch for lookups.
//
// Usage: bench_embedkit [Google Benchmark flags]
//   EMBEDKIT_BENCH_SCALE=smoke   tiny shapes for CI (the harness works; timings mean nothing)
//   --benchmark_filter=lookup    one group; --benchmark_repetitions=3 for a steadier measurement
#include <benchmark/benchmark.h>

#include "core/report.hpp"
#include "core/suite.hpp"

#include <omp.h>

#include <cstdlib>
#include <exception>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using embedkit::bench::Figures;
using embedkit::bench::Scenario;
using embedkit::bench::ScenarioSpec;

// The scenario being run, and the figures of every scenario built so far, in suite order.
struct Registry {
  std::unique_ptr<Scenario> current;
  std::vector<Figures> figures;
  std::map<std::string, std::size_t> index;  // title -> position in figures

  Scenario& scenario_for(const ScenarioSpec& spec) {
    if (!current || current->title != spec.title) {
      current.reset();  // free the previous shape before building the next
      current = std::make_unique<Scenario>(spec.make());
      index.try_emplace(spec.title, figures.size());
      if (index[spec.title] == figures.size()) figures.push_back(embedkit::bench::describe(spec.group, *current));
    }
    return *current;
  }

  void record(const std::string& title, const std::string& measure, double seconds) {
    const auto entry = index.find(title);
    if (entry == index.end()) return;
    auto& best = figures[entry->second].seconds;
    const auto [slot, inserted] = best.try_emplace(measure, seconds);
    if (!inserted && seconds < slot->second) slot->second = seconds;
  }
};

Registry& registry() {
  static Registry instance;
  return instance;
}

void run_measure(benchmark::State& state, const ScenarioSpec& spec, std::size_t measure) {
  Scenario* scenario = nullptr;
  try {
    scenario = &registry().scenario_for(spec);
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
    return;
  }
  const auto& run = scenario->measures.at(measure).run;
  for (auto _ : state) {
    run();
    benchmark::ClobberMemory();
  }
  const auto batches = static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(batches * scenario->bytes));
  state.counters["lookups/s"] =
      benchmark::Counter(batches * static_cast<double>(scenario->lookups), benchmark::Counter::kIsRate);
  state.counters["GB/s"] = benchmark::Counter(batches * scenario->bytes / 1e9, benchmark::Counter::kIsRate);
}

// Console output as usual; each finished run's time per batch goes to the registry.
class Reporter : public benchmark::ConsoleReporter {
 public:
  Reporter(std::map<std::string, std::pair<std::string, std::string>> names) : names_(std::move(names)) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      failed_ = failed_ || run.error_occurred;
      if (run.error_occurred || run.run_type != Run::RT_Iteration || run.iterations == 0) continue;
      const auto name = names_.find(run.run_name.function_name);
      if (name == names_.end()) continue;
      registry().record(name->second.first, name->second.second,
                        run.real_accumulated_time / static_cast<double>(run.iterations));
    }
    ConsoleReporter::ReportRuns(runs);
  }

  bool failed() const { return failed_; }

 private:
  std::map<std::string, std::pair<std::string, std::string>> names_;  // benchmark -> (scenario, measure)
  bool failed_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const char* scale_name = std::getenv("EMBEDKIT_BENCH_SCALE");
  const std::string_view scale_text = scale_name == nullptr ? "full" : scale_name;
  if (scale_text != "full" && scale_text != "smoke") {
    std::cerr << "EMBEDKIT_BENCH_SCALE must be 'full' or 'smoke', got '" << scale_text << "'\n";
    return 1;
  }
  const auto scale = scale_text == "smoke" ? embedkit::bench::Scale::smoke() : embedkit::bench::Scale::full();
  std::cout << "bench_embedkit: " << omp_get_max_threads() << " OpenMP threads, scale " << scale_text
            << ". Report the ratios printed at the end; absolute figures vary between runs on shared "
               "machines.\n"
            << std::flush;

  static const std::vector<ScenarioSpec> suite = embedkit::bench::full_suite(scale);
  std::map<std::string, std::pair<std::string, std::string>> names;
  for (const ScenarioSpec& spec : suite) {
    for (std::size_t m = 0; m < spec.measures.size(); ++m) {
      const std::string name = spec.title + "/" + spec.measures[m];
      names[name] = {spec.title, spec.measures[m]};
      benchmark::RegisterBenchmark(name.c_str(), [&spec, m](benchmark::State& state) { run_measure(state, spec, m); })
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }

  Reporter reporter(std::move(names));
  benchmark::RunSpecifiedBenchmarks(&reporter);
  registry().current.reset();
  embedkit::bench::print_report(std::cout, registry().figures, omp_get_max_threads());
  benchmark::Shutdown();
  return reporter.failed() ? 1 : 0;
}
