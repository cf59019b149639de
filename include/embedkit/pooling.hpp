#pragma once
/// @file pooling.hpp
/// @brief How a pooled lookup combines the rows of one bag. C++17.

#include <embedkit/export.h>

#include <string_view>

namespace embedkit {

/// @brief The combiner of a bag, as torch.nn.EmbeddingBag's mode and TensorFlow's combiner.
enum class PoolingMode {
  sum,    ///< Σ wᵢ·eᵢ
  mean,   ///< Σ wᵢ·eᵢ / Σ wᵢ (wᵢ = 1 without weights); zeros when Σ wᵢ = 0
  max,    ///< element-wise maximum, no weights; ties go to the first position
  sqrtn,  ///< Σ wᵢ·eᵢ / √(Σ wᵢ²), TensorFlow's "sqrtn"
};

/// @brief "sum", "mean", "max" or "sqrtn" to the mode.
/// @throws Error(Status::invalid_argument) naming any other string.
EMBEDKIT_API PoolingMode parse_pooling_mode(std::string_view mode);

/// @brief The mode's name as parse_pooling_mode reads it.
EMBEDKIT_API const char* to_string(PoolingMode mode) noexcept;

}  // namespace embedkit
