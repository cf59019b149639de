#pragma once
// The rule that a call's outputs share no byte with what it reads: its inputs and the table's own
// memory (weights, optimizer state). Checked on byte ranges, before anything is written, by every
// entry point that writes an output (the C ABI on the caller's tensors wherever they live, the C++
// API on its spans), so this is its one place. An output over an input made lookups read ids or
// offsets half-overwritten (a crash in pooled max, garbage in sum, a zero row for a plain lookup).

#include <embedkit/status.hpp>

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace embedkit::detail {

/// `bytes` bytes at `data`, named as the caller knows them ("out", "offsets", "the table's weights").
struct NamedBytes {
  std::string name;
  const void* data = nullptr;
  std::size_t bytes = 0;
};

/// Whether two ranges share a byte (an empty range shares none). Compared by distances from the
/// lower start, never by end addresses: begin + bytes wraps for a range that reaches the end of the
/// address space, and the sum would then say "apart" for ranges that share bytes.
inline bool overlap(const NamedBytes& a, const NamedBytes& b) {
  if (a.bytes == 0 || b.bytes == 0) return false;
  const auto a_begin = reinterpret_cast<std::uintptr_t>(a.data), b_begin = reinterpret_cast<std::uintptr_t>(b.data);
  return a_begin <= b_begin ? b_begin - a_begin < a.bytes : a_begin - b_begin < b.bytes;
}

/// Whether two ranges are the same bytes.
inline bool same_bytes(const NamedBytes& a, const NamedBytes& b) { return a.data == b.data && a.bytes == b.bytes; }

/// Throws Error(invalid_argument) `out and offsets overlap (out is bytes [0x10, 0x30), offsets
/// [0x20, 0x38)): ...` when an output shares a byte with an input or with another output. Inputs
/// may overlap each other: they are only read.
inline void check_outputs_apart(std::span<const NamedBytes> outputs, std::span<const NamedBytes> inputs) {
  const auto refuse = [](const NamedBytes& output, const NamedBytes& other) {
    const auto at = [](const NamedBytes& range) {
      const auto begin = reinterpret_cast<std::uintptr_t>(range.data);
      return fmt::format("[{:#x}, {:#x})", begin, begin + range.bytes);
    };
    throw Error(Status::invalid_argument,
                fmt::format("{} and {} overlap ({} is bytes {}, {} {}): an output may share no memory with the "
                            "call's inputs or the table; nothing was written",
                            output.name, other.name, output.name, at(output), other.name, at(other)));
  };
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    for (const NamedBytes& input : inputs) {
      if (overlap(outputs[k], input)) refuse(outputs[k], input);
    }
    for (std::size_t other = 0; other < k; ++other) {
      if (overlap(outputs[k], outputs[other])) refuse(outputs[k], outputs[other]);
    }
  }
}

/// set_weights's case of the rule: `values` exactly the table's `weights` (a view of them) makes
/// the call a no-op (true); any other overlap throws as check_outputs_apart does.
inline bool writes_weights_onto_themselves(const NamedBytes& values, const NamedBytes& weights) {
  if (same_bytes(values, weights)) return true;
  check_outputs_apart(std::span(&weights, 1), std::span(&values, 1));
  return false;
}

}  // namespace embedkit::detail
