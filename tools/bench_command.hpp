#pragma once
// `embedkit bench`: the headline benchmark figures in about a minute, as ratios measured in one run.

#include <string>

namespace embedkit::tools {

struct BenchOptions {
  double seconds = 60;         ///< time budget of the timed runs, shared among the scenarios
  std::string scale = "full";  ///< "full" (2 GiB tables) or "smoke" (tiny shapes, for tests)
  bool json = false;           ///< print JSON (what bench/compare_pytorch.py reads) instead of tables
};

/// Builds each scenario of bench::main_figures in turn, times its measures in turns within its
/// share of the budget, and prints the report. Returns the process exit code.
int run_bench(const BenchOptions& options);

}  // namespace embedkit::tools
