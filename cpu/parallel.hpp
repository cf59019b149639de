#pragma once
// When the OpenMP loops go parallel: below these sizes a thread team costs more than it saves.

#include <cstdint>

namespace embedkit::cpu {

/// Ids per call below which index passes run on one thread.
constexpr std::int64_t kParallelMinIds = 1 << 14;
/// Floats moved per call below which gathers and fills run on one thread.
constexpr std::int64_t kParallelMinFloats = 1 << 15;

}  // namespace embedkit::cpu
