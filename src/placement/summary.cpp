#include <embedkit/summary.hpp>

#include "core/shape.hpp"
#include "placement/placement.hpp"

#include <fmt/format.h>

#include <array>
#include <string>
#include <utility>

namespace embedkit {
namespace {

std::string with_thousands(std::uint64_t value) {
  const std::string digits = std::to_string(value);
  std::string grouped;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) grouped.push_back(',');
    grouped.push_back(digits[i]);
  }
  return grouped;
}

// `bytes` (at least 1024) in the largest binary unit that keeps the value at or above 1.
std::pair<double, const char*> binary_units(std::uint64_t bytes) {
  constexpr std::array<const char*, 6> kUnits = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double scaled = static_cast<double>(bytes) / 1024.0;
  std::size_t unit = 0;
  while (scaled >= 1024.0 && unit + 1 < kUnits.size()) {
    scaled /= 1024.0;
    ++unit;
  }
  return {scaled, kUnits[unit]};
}

}  // namespace

std::string format_bytes(std::uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} bytes", bytes);
  const auto [scaled, unit] = binary_units(bytes);
  return fmt::format("{:.2f} {} ({} bytes)", scaled, unit, with_thousands(bytes));
}

namespace detail {

std::string short_bytes(std::uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} bytes", bytes);
  const auto [scaled, unit] = binary_units(bytes);
  return fmt::format("{:.1f} {}", scaled, unit);
}

std::string dense_step_text(std::int64_t rows, std::int64_t dim) {
  const auto n = static_cast<std::uint64_t>(rows), d = static_cast<std::uint64_t>(dim);
  return fmt::format(
      "every train step updates all {} rows (lazy: false, Keras's semantics): O(input_dim x dim) = {} "
      "weights a step",
      with_thousands(n), with_thousands(n * d));
}

std::string step_scratch_text(std::uint64_t bytes) {
  return fmt::format("up to {} per train step, allocated per call (not held)", short_bytes(bytes));
}

}  // namespace detail

std::string Summary::to_string() const {
  const ByteBreakdown& bytes = placement.bytes;
  std::string text = fmt::format("Table '{}'\n", name);
  const auto line = [&text](std::string_view label, const std::string& value) {
    text += fmt::format("  {:<16}{}\n", label, value);
  };
  line("rows x dim",
       fmt::format("{} x {} ({} parameters, {})", with_thousands(static_cast<std::uint64_t>(rows)),
                   with_thousands(static_cast<std::uint64_t>(dim)),
                   with_thousands(static_cast<std::uint64_t>(parameters)), trainable ? "trainable" : "not trainable"));
  line("weights", format_bytes(bytes.weights));
  line("dtype", fmt::format("{} ({} bytes a value)", embedkit::to_string(dtype), dtype_bytes(dtype)));
  line("optimizer state", format_bytes(bytes.optimizer_state));
  line("workspace", format_bytes(bytes.workspace));
  if (bytes.step_scratch > 0) line("step scratch", detail::step_scratch_text(bytes.step_scratch));
  if (dense_step) line("optimizer step", detail::dense_step_text(rows, dim));
  line("total", format_bytes(bytes.total()));
  line("placement", fmt::format("{} ({}: {})", placement.device_name(), embedkit::to_string(placement.reason_code),
                                placement.reason));
  if (!output_shape.empty()) {
    line("output", fmt::format("{} float32 = {}", detail::format_shape(output_shape), format_bytes(output_bytes)));
  }
  if (batch_entries && padding_entries) {
    const std::int64_t effective = *batch_entries - *padding_entries;
    const double share =
        *batch_entries > 0 ? 100.0 * static_cast<double>(effective) / static_cast<double>(*batch_entries) : 100.0;
    line("padding", fmt::format("{} of {} ids are 0 (masked by mask_zero): {} effective ({:.1f}%)", *padding_entries,
                                *batch_entries, effective, share));
  }
  return text;
}

}  // namespace embedkit
