#include "report.hpp"

#include <embedkit/summary.hpp>

#include <fmt/format.h>
#include <fmt/ostream.h>

namespace embedkit::bench {
namespace {

std::string ratio(double value) { return value < 0 ? std::string("-") : fmt::format("{:.2f}", value); }

std::string bytes_text(std::int64_t bytes) {
  return bytes < 0 ? std::string("n/a") : format_bytes(static_cast<std::uint64_t>(bytes));
}

std::string json_number(double value) { return value < 0 ? std::string("null") : fmt::format("{:.6g}", value); }

}  // namespace

double Figures::speedup_over(const std::string& measure) const {
  const auto mine = seconds.find("embedkit");
  const auto theirs = seconds.find(measure);
  if (mine == seconds.end() || theirs == seconds.end() || mine->second <= 0) return -1;
  return theirs->second / mine->second;
}

Figures describe(const std::string& group, const Scenario& scenario) {
  Figures figures;
  figures.group = group;
  figures.title = scenario.title;
  figures.lookups = scenario.lookups;
  figures.bytes = scenario.bytes;
  figures.pcie_bytes = scenario.pcie_bytes;
  figures.table_bytes = scenario.table_bytes;
  figures.state_bytes = scenario.state_bytes;
  figures.peak_step_bytes = scenario.peak_step_bytes;
  return figures;
}

void print_report(std::ostream& out, const std::vector<Figures>& figures, int threads) {
  fmt::print(out,
             "\nembedkit figures ({} threads). Ratios are measured in this run: x naive = embedkit's "
             "throughput over the plain baseline's, x copy = over a streaming copy of the same bytes "
             "(the fraction of the machine's copy bandwidth reached). H100 and PCIe 5 are the memory "
             "roofline: the time the bytes take at 3.35 TB/s and at 64 GB/s.\n",
             threads);
  std::string group;
  for (const Figures& f : figures) {
    if (f.group != group) {
      group = f.group;
      fmt::print(out, "\n[{}]\n{:<72} {:>10} {:>8} {:>10} {:>9} {:>8} {:>7} {:>10} {:>10}\n", group, "scenario",
                 "ms/batch", "GB/s", "Mlookup/s", "ns/lookup", "x naive", "x copy", "H100 us", "PCIe5 us");
    }
    const auto mine = f.seconds.find("embedkit");
    if (mine == f.seconds.end()) continue;
    const double s = mine->second;
    const auto lookups = static_cast<double>(f.lookups);
    // A creation looks nothing up.
    const std::string lookup_rate = f.lookups > 0 ? fmt::format("{:.1f}", lookups / s / 1e6) : "-";
    const std::string lookup_time = f.lookups > 0 ? fmt::format("{:.2f}", s * 1e9 / lookups) : "-";
    fmt::print(out, "{:<72} {:>10.3f} {:>8.2f} {:>10} {:>9} {:>8} {:>7} {:>10.1f} {:>10.1f}\n", f.title, s * 1e3,
               f.bytes / s / 1e9, lookup_rate, lookup_time, ratio(f.speedup_over("naive")),
               ratio(f.speedup_over("copy")), h100_seconds(f.bytes) * 1e6, pcie5_seconds(f.pcie_bytes) * 1e6);
    if (const auto fill = f.seconds.find("fill"); fill != f.seconds.end()) {
      fmt::print(out, "{:<72} a constant fill of fresh memory {:.2f} GB/s; creating takes {:.2f}x its time\n", "",
                 f.bytes / fill->second / 1e9, s / fill->second);
    }
    if (f.peak_step_bytes >= 0 || f.state_bytes > 0) {
      fmt::print(out, "{:<72} peak step memory {} beside weights {} + state {}\n", "", bytes_text(f.peak_step_bytes),
                 bytes_text(f.table_bytes), bytes_text(f.state_bytes));
    }
  }
}

void print_json(std::ostream& out, const std::vector<Figures>& figures, int threads) {
  fmt::print(out, "{{\"threads\": {}, \"scenarios\": [", threads);
  for (std::size_t i = 0; i < figures.size(); ++i) {
    const Figures& f = figures[i];
    fmt::print(out,
               "{}\n  {{\"group\": \"{}\", \"title\": \"{}\", \"lookups\": {}, \"bytes\": {}, \"table_bytes\": {}, "
               "\"state_bytes\": {}, \"peak_step_bytes\": {}, \"seconds\": {{",
               i == 0 ? "" : ",", f.group, f.title, f.lookups, json_number(f.bytes), f.table_bytes, f.state_bytes,
               f.peak_step_bytes);
    bool first = true;
    for (const auto& [name, seconds] : f.seconds) {
      fmt::print(out, "{}\"{}\": {}", first ? "" : ", ", name, json_number(seconds));
      first = false;
    }
    fmt::print(out, "}}}}");
  }
  fmt::print(out, "\n]}}\n");
}

}  // namespace embedkit::bench
