#include <embedkit/logging.hpp>
#include <embedkit/status.hpp>

#include "core/log.hpp"

#include <fmt/format.h>

#include <string>

namespace embedkit {

void set_log_level(std::string_view level) {
  if (!detail::is_level_name(level)) {
    throw Error(Status::invalid_argument,
                fmt::format("log level must be one of trace, debug, info, warn, error, off; got '{}'", level));
  }
  detail::logger().set_level(spdlog::level::from_str(std::string(level)));
}

}  // namespace embedkit
