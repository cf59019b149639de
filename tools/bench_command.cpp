#include "bench_command.hpp"

#include "core/report.hpp"
#include "core/suite.hpp"

#include <omp.h>

#include <iostream>
#include <vector>

namespace embedkit::tools {

int run_bench(const BenchOptions& options) {
  const bench::Scale scale = options.scale == "smoke" ? bench::Scale::smoke() : bench::Scale::full();
  const std::vector<bench::ScenarioSpec> specs = bench::main_figures(scale);
  const double budget = options.seconds / static_cast<double>(specs.size());
  std::vector<bench::Figures> figures;
  for (const bench::ScenarioSpec& spec : specs) {
    if (!options.json) std::cerr << "[bench] " << spec.title << '\n';
    const bench::Scenario scenario = spec.make();
    bench::Figures figure = bench::describe(spec.group, scenario);
    const std::vector<double> seconds = bench::best_seconds(scenario, budget);
    for (std::size_t m = 0; m < seconds.size(); ++m) figure.seconds[scenario.measures[m].name] = seconds[m];
    figures.push_back(std::move(figure));
  }
  if (options.json) {
    bench::print_json(std::cout, figures, omp_get_max_threads());
  } else {
    bench::print_report(std::cout, figures, omp_get_max_threads());
  }
  return 0;
}

}  // namespace embedkit::tools
