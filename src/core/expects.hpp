#pragma once
// EMBEDKIT_EXPECTS: the one spelling of a check on a caller's argument, so that each check reads as
// the condition it requires and the status and message it fails with.

#include <embedkit/status.hpp>

#include <fmt/format.h>

/// Throws embedkit::Error(status, fmt::format(fmt, args...)) unless `cond` holds; the message and
/// its arguments are evaluated only on failure. Usage: EMBEDKIT_EXPECTS(n >= 0, Status::invalid_argument, "n is {}",
/// n).
#define EMBEDKIT_EXPECTS(cond, status, ...)                          \
  do {                                                               \
    if (!(cond)) [[unlikely]] {                                      \
      throw ::embedkit::Error((status), ::fmt::format(__VA_ARGS__)); \
    }                                                                \
  } while (false)
