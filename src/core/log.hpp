#pragma once
// The library's logger: a thin wrapper so spdlog stays out of public headers and .cu files.
// The level comes from EMBEDKIT_LOG_LEVEL (trace, debug, info, warn, error, off; default warn).

#include <spdlog/spdlog.h>

#include <memory>
#include <string_view>

namespace embedkit::detail {

/// The "embedkit" logger, writing to stderr, created on first use.
spdlog::logger& logger();

/// Whether spdlog knows `name` as a level (trace, debug, info, warning/warn, error/err, critical, off).
bool is_level_name(std::string_view name);

}  // namespace embedkit::detail
