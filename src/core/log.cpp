#include "core/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdlib>
#include <string>

namespace embedkit::detail {

spdlog::logger& logger() {
  static const std::shared_ptr<spdlog::logger> instance = [] {
    auto created =
        std::make_shared<spdlog::logger>("embedkit", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    created->set_pattern("[embedkit] [%l] %v");
    const char* level = std::getenv("EMBEDKIT_LOG_LEVEL");
    created->set_level(spdlog::level::warn);
    if (level != nullptr && is_level_name(level)) created->set_level(spdlog::level::from_str(level));
    return created;
  }();
  return *instance;
}

bool is_level_name(std::string_view name) {
  // spdlog maps unknown names to "off", which would silence a typo; only exact names count.
  return name == "off" || spdlog::level::from_str(std::string(name)) != spdlog::level::off;
}

}  // namespace embedkit::detail
