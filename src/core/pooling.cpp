#include <embedkit/pooling.hpp>
#include <embedkit/status.hpp>

#include <fmt/format.h>

namespace embedkit {

PoolingMode parse_pooling_mode(std::string_view mode) {
  if (mode == "sum") return PoolingMode::sum;
  if (mode == "mean") return PoolingMode::mean;
  if (mode == "max") return PoolingMode::max;
  if (mode == "sqrtn") return PoolingMode::sqrtn;
  throw Error(Status::invalid_argument,
              fmt::format("pooling mode must be 'sum', 'mean', 'max' or 'sqrtn', got '{}'", mode));
}

const char* to_string(PoolingMode mode) noexcept {
  switch (mode) {
    case PoolingMode::sum: return "sum";
    case PoolingMode::mean: return "mean";
    case PoolingMode::max: return "max";
    case PoolingMode::sqrtn: return "sqrtn";
  }
  return "sum";
}

}  // namespace embedkit
