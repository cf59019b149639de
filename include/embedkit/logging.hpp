#pragma once
/// @file logging.hpp
/// @brief The library's log level (placement decisions at info, fallbacks and zero_fill at warn).

#include <embedkit/export.h>

#include <string_view>

namespace embedkit {

/// @brief Sets the level of embedkit's log on stderr: "trace", "debug", "info", "warn", "error"
/// or "off". The default is warn, or EMBEDKIT_LOG_LEVEL when set.
/// @throws Error(Status::invalid_argument) for another name.
EMBEDKIT_API void set_log_level(std::string_view level);

}  // namespace embedkit
