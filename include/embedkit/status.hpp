#pragma once
/// @file status.hpp
/// @brief Status codes and the exception every C++ entry point throws on failure.

#include <embedkit/export.h>

#include <stdexcept>
#include <string>

namespace embedkit {

/// @brief Why a call failed; the values equal the C ABI's `ek_status`.
enum class Status : int {
  ok = 0,
  invalid_argument = 1,  ///< NULL pointer, malformed config, bad shape value, stride or offset.
  out_of_range = 2,      ///< An id outside [0, input_dim).
  shape_mismatch = 3,    ///< A tensor whose shape is not the one the call needs.
  dtype_mismatch = 4,    ///< A tensor of the wrong element type.
  out_of_memory = 5,     ///< Not enough memory, checked before allocating.
  unsupported = 6,       ///< Valid, but not available in this build or on this machine.
  io_error = 7,          ///< A file could not be read or written.
  internal = 8,          ///< A broken invariant: a bug in embedkit.
  busy = 9,              ///< The table is in use in a way the call cannot wait out (a live weights view).
};

/// @brief The name of a status as the C ABI spells it, e.g. "EK_OUT_OF_RANGE".
EMBEDKIT_API const char* status_name(Status status) noexcept;

/// @brief The exception thrown by every embedkit call that fails. A failed call changes nothing.
class EMBEDKIT_API Error : public std::runtime_error {
 public:
  Error(Status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  /// @brief The cause, as a status code.
  Status status() const noexcept { return status_; }

 private:
  Status status_;
};

}  // namespace embedkit
