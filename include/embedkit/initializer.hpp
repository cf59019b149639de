#pragma once
/// @file initializer.hpp
/// @brief How a table's weights are first filled, with Keras's initializer names and defaults.

#include <embedkit/export.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace embedkit {

/// @brief The distribution family of an initializer.
enum class InitializerKind {
  uniform,           ///< U[minval, maxval).
  normal,            ///< N(mean, stddev²).
  truncated_normal,  ///< N(mean, stddev²) redrawn outside mean ± 2·stddev, as Keras.
  constant,          ///< Every value equals `value` (zeros and ones are constants).
  variance_scaling,  ///< Keras's VarianceScaling; the Glorot, He and LeCun families are instances.
};

/// @brief Which fan VarianceScaling divides the scale by (fan_in = input_dim, fan_out = output_dim).
enum class FanMode { fan_in, fan_out, fan_avg };

/// @brief VarianceScaling's base distribution, named as in Keras.
enum class ScalingDistribution { truncated_normal, untruncated_normal, uniform };

/// @brief A Keras-compatible initializer. Values are drawn by a counter-based generator, so each
/// value depends only on (seed, row, column): the same matrix on any thread count, device or shard.
struct EMBEDKIT_API Initializer {
  InitializerKind kind = InitializerKind::uniform;
  std::string name = "uniform";    ///< The Keras name it was made from, for summaries and configs.
  double minval = -0.05;           ///< uniform
  double maxval = 0.05;            ///< uniform
  double mean = 0.0;               ///< normal, truncated_normal
  double stddev = 0.05;            ///< normal, truncated_normal
  double value = 0.0;              ///< constant
  double scale = 1.0;              ///< variance_scaling
  FanMode mode = FanMode::fan_in;  ///< variance_scaling
  ScalingDistribution distribution = ScalingDistribution::truncated_normal;  ///< variance_scaling
  std::optional<std::uint64_t> seed;  ///< When set, wins over the table's seed (as in Keras).

  /// @brief Keras's default for Embedding: uniform in [-0.05, 0.05).
  static Initializer keras_default() { return Initializer{}; }

  /// @brief Builds an initializer from a Keras name string ("uniform", "random_normal",
  /// "glorot_uniform", "zeros", ...), case-insensitive, with Keras's default arguments.
  /// @throws Error(Status::invalid_argument) naming an unknown name;
  ///         Error(Status::unsupported) for "orthogonal" and "identity".
  static Initializer from_name(std::string_view name);
};

}  // namespace embedkit
