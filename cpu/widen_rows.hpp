#pragma once
// float16 rows widened to float32 for a lookup: the scalar conversion of detail/stored_row.hpp, or
// F16C's vcvtph2ps eight values at a time where the CPU has it (chosen at run time), which gives
// the same bits for every input (tests/stored_row_test.cpp checks all 65536).

#include <embedkit/detail/stored_row.hpp>

#include <cstdint>

namespace embedkit::cpu {

/// Whether this CPU and build run widen_float16_row's F16C path.
bool has_f16c();

/// to[c] = widen(from[c]) for c < dim, with F16C when `f16c` (which has_f16c() must allow).
void widen_float16_row(const detail::float16* from, std::int64_t dim, float* to, bool f16c);

}  // namespace embedkit::cpu
