#pragma once
// `embedkit plan`: what placement would decide for a table, and why.

#include <cstdint>
#include <string>

namespace embedkit::tools {

struct PlanOptions {
  std::int64_t rows = 0;
  std::int64_t dim = 0;
  std::string optimizer = "sgd";
  std::string dtype = "float32";  ///< the rows' storage type: float32, float16 or bfloat16
  std::string gpu_memory;         ///< a hypothetical device's free memory, e.g. "80GiB"; this machine's when empty
  std::int64_t batch = 1 << 18;
  bool json = false;
  int ranks = 0;                     ///< > 0: the table sharded over this many ranks
  std::string split = "contiguous";  ///< with ranks: contiguous or modulo
  std::string collection;            ///< a collection config's JSON file: every table, against one budget
};

/// Prints the decision and its byte breakdown; returns the exit code.
int run_plan(const PlanOptions& options);

/// Prints how a sharded table would be split over options.ranks ranks, each rank's rows, bytes and
/// placement (tools/plan_sharded.cpp); returns the exit code.
int run_sharded_plan(const PlanOptions& options);

/// Prints where each table of options.collection would go, the smallest first against one device
/// budget (options.gpu_memory, else this machine's device), as TableCollection places them
/// (tools/plan_collection.cpp); returns the exit code.
int run_collection_plan(const PlanOptions& options);

}  // namespace embedkit::tools
