#pragma once
// The figures of a benchmark run, as ratios measured in that run: embedkit against the naive baseline
// and the streaming copy, the fraction of copy bandwidth reached, the memory roofline on an H100 and
// over PCIe 5, and a train step's peak memory next to the table's weights and state.

#include "scenarios.hpp"

#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace embedkit::bench {

/// A scenario's description and best times, kept after its buffers are freed.
struct Figures {
  std::string group;
  std::string title;
  std::int64_t lookups = 0;
  double bytes = 0;
  double pcie_bytes = 0;
  std::int64_t table_bytes = 0;
  std::int64_t state_bytes = 0;
  std::int64_t peak_step_bytes = -1;
  std::map<std::string, double> seconds;  ///< best seconds per batch, by measure name

  /// Throughput of embedkit relative to `measure` (above 1: embedkit is faster), or -1 if either is missing.
  double speedup_over(const std::string& measure) const;
};

/// The description of `scenario` (no times yet).
Figures describe(const std::string& group, const Scenario& scenario);

/// A table per group, one line per scenario, with a header saying how to read it.
void print_report(std::ostream& out, const std::vector<Figures>& figures, int threads);

/// The same figures as one JSON document (bench/compare_pytorch.py reads it).
void print_json(std::ostream& out, const std::vector<Figures>& figures, int threads);

}  // namespace embedkit::bench
