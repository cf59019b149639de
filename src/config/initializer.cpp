#include <embedkit/initializer.hpp>
#include <embedkit/status.hpp>

#include "config/initializer_resolve.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <random>

namespace embedkit {
namespace {

std::string normalized(std::string_view name) {
  // Keras accepts "RandomUniform", "random_uniform" and "uniform" alike.
  std::string out;
  for (const char c : name) {
    if (c != '_') out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

Initializer variance_scaling(std::string_view name, double scale, FanMode mode, ScalingDistribution distribution) {
  Initializer init;
  init.kind = InitializerKind::variance_scaling;
  init.name = std::string(name);
  init.scale = scale;
  init.mode = mode;
  init.distribution = distribution;
  return init;
}

}  // namespace

Initializer Initializer::from_name(std::string_view name) {
  const std::string key = normalized(name);
  Initializer init;
  init.name = std::string(name);
  if (key == "uniform" || key == "randomuniform") {
    init.kind = InitializerKind::uniform;
  } else if (key == "normal" || key == "randomnormal") {
    init.kind = InitializerKind::normal;
  } else if (key == "truncatednormal") {
    init.kind = InitializerKind::truncated_normal;
  } else if (key == "zeros" || key == "zero") {
    init.kind = InitializerKind::constant;
    init.value = 0.0;
  } else if (key == "ones" || key == "one") {
    init.kind = InitializerKind::constant;
    init.value = 1.0;
  } else if (key == "constant") {
    init.kind = InitializerKind::constant;
  } else if (key == "glorotuniform") {
    init = variance_scaling(name, 1.0, FanMode::fan_avg, ScalingDistribution::uniform);
  } else if (key == "glorotnormal") {
    init = variance_scaling(name, 1.0, FanMode::fan_avg, ScalingDistribution::truncated_normal);
  } else if (key == "heuniform") {
    init = variance_scaling(name, 2.0, FanMode::fan_in, ScalingDistribution::uniform);
  } else if (key == "henormal") {
    init = variance_scaling(name, 2.0, FanMode::fan_in, ScalingDistribution::truncated_normal);
  } else if (key == "lecununiform") {
    init = variance_scaling(name, 1.0, FanMode::fan_in, ScalingDistribution::uniform);
  } else if (key == "lecunnormal") {
    init = variance_scaling(name, 1.0, FanMode::fan_in, ScalingDistribution::truncated_normal);
  } else if (key == "variancescaling") {
    init = variance_scaling(name, 1.0, FanMode::fan_in, ScalingDistribution::truncated_normal);
  } else if (key == "orthogonal" || key == "identity") {
    throw Error(Status::unsupported, fmt::format("embeddings_initializer '{}' is not supported by embedkit: its rows "
                                                 "are not independent, so it cannot be drawn per (seed, row, column)",
                                                 name));
  } else {
    throw Error(Status::invalid_argument,
                fmt::format("unknown embeddings_initializer '{}' (expected a Keras initializer "
                            "name such as 'uniform', 'normal', 'truncated_normal', 'zeros', "
                            "'ones', 'glorot_uniform', 'he_normal', 'lecun_uniform')",
                            name));
  }
  return init;
}

namespace detail {

std::uint64_t draw_seed() {
  std::random_device device;
  const std::uint64_t high = device(), low = device();
  return ((high << 32) | low) & ((std::uint64_t{1} << 53) - 1);
}

InitSampler resolve_sampler(const Initializer& init, std::int64_t input_dim, std::int64_t output_dim) {
  switch (init.kind) {
    case InitializerKind::uniform: return {InitSampler::uniform, init.minval, init.maxval};
    case InitializerKind::normal: return {InitSampler::normal, init.mean, init.stddev};
    case InitializerKind::truncated_normal: return {InitSampler::truncated_normal, init.mean, init.stddev};
    case InitializerKind::constant: return {InitSampler::constant, init.value, 0.0};
    case InitializerKind::variance_scaling: break;
  }
  // Keras's fans for a (input_dim, output_dim) kernel: fan_in = input_dim, fan_out = output_dim.
  const double fan_in = static_cast<double>(input_dim);
  const double fan_out = static_cast<double>(output_dim);
  const double fan = init.mode == FanMode::fan_in    ? fan_in
                     : init.mode == FanMode::fan_out ? fan_out
                                                     : (fan_in + fan_out) / 2.0;
  const double variance = init.scale / std::max(1.0, fan);
  switch (init.distribution) {
    case ScalingDistribution::uniform: {
      const double limit = std::sqrt(3.0 * variance);
      return {InitSampler::uniform, -limit, limit};
    }
    case ScalingDistribution::untruncated_normal: return {InitSampler::normal, 0.0, std::sqrt(variance)};
    case ScalingDistribution::truncated_normal:
      // Keras divides by the stddev of a unit normal truncated to [-2, 2].
      return {InitSampler::truncated_normal, 0.0, std::sqrt(variance) / 0.87962566103423978};
  }
  throw Error(Status::internal, "unhandled VarianceScaling distribution");
}

}  // namespace detail
}  // namespace embedkit
