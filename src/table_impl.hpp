#pragma once
// The state behind EmbeddingTable, shared by the files that implement its methods.

#include <embedkit/config.hpp>
#include <embedkit/placement.hpp>
#include <embedkit/table.hpp>

#include "host_memory.hpp"

#include <atomic>
#include <cstdint>
#include <shared_mutex>

namespace embedkit {

struct EmbeddingTable::Impl {
  TableConfig config;           // with the seed filled in
  PlacementDecision placement;  // decided once, at creation
  detail::HostFloats weights;   // (input_dim, output_dim), row-major
  std::int64_t step = 0;
  std::atomic<std::int64_t> out_of_range_count{0};
  // Lookups share it; writes to the weights take it alone, so no lookup sees a half-written row.
  mutable std::shared_mutex mutex;

  std::uint64_t weight_count() const {
    return static_cast<std::uint64_t>(config.input_dim) * static_cast<std::uint64_t>(config.output_dim);
  }
};

}  // namespace embedkit
