#pragma once
/// @file config.hpp
/// @brief TableConfig: everything that defines a table, readable from and writable to JSON.

#include <embedkit/dtype.hpp>
#include <embedkit/export.h>
#include <embedkit/initializer.hpp>
#include <embedkit/optimizer.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace embedkit {

/// @brief What a lookup does with an id outside [0, input_dim).
enum class BoundsCheck {
  error,      ///< Fail with Status::out_of_range, naming the first bad position (the default).
  zero_fill,  ///< Read the row as zeros, count it and report the count in a warning.
};

/// @brief What a train step does with a folded gradient row holding a NaN or an infinity.
enum class NonFiniteGradients {
  skip,   ///< the step goes on as if that id were not in the batch: its row and optimizer state are
          ///< left alone (under lazy = false they move as any untouched row's do); the
          ///< row is counted (nonfinite_gradient_rows) and a warning logged. The default.
  apply,  ///< apply it as it is
  error,  ///< fail the step with Status::invalid_argument; nothing changes
};

/// @brief What a plain lookup of padding_idx returns. Either way the row never receives gradient
/// and pooled lookups leave padding entries out of their bags (and out of mean's count).
enum class PaddingReads {
  zeros,  ///< zeros, whatever the row holds (Keras-style masking; the default)
  row,    ///< the row as it is, as torch.nn.Embedding does; a new table's padding row is zeros
};

/// @brief Where the user wants the table: decided by embedkit (auto) or forced.
enum class PlacementPolicy { automatic, cpu, cuda };

/// @brief Keras's L1, L2 and L1L2 weight penalties: loss += l1·Σ|w| + l2·Σw².
struct Regularizer {
  double l1 = 0.0;
  double l2 = 0.0;
};

/// @brief A Keras constraint, applied per embedding row (Keras axis 1) after each update.
enum class ConstraintKind {
  none,
  max_norm,   ///< rows with a norm above max_value are scaled down to it
  unit_norm,  ///< rows are scaled to norm 1
  non_neg,    ///< negative values become 0
};

/// @brief A constraint and its parameter.
struct Constraint {
  ConstraintKind kind = ConstraintKind::none;
  double max_value = 2.0;  ///< max_norm (Keras's default)
};

/// @brief The definition of an embedding table, with Keras's names and defaults.
struct EMBEDKIT_API TableConfig {
  std::int64_t input_dim = 0;   ///< Number of rows (vocabulary size, + 1 under mask_zero). Required.
  std::int64_t output_dim = 0;  ///< Embedding width. Required.
  Initializer embeddings_initializer = Initializer::keras_default();
  std::optional<std::uint64_t> seed;                 ///< Drawn at creation when absent, and recorded in the table.
  bool mask_zero = false;                            ///< compute_mask returns indices != 0 (row 0 is still looked up).
  std::optional<std::int64_t> padding_idx;           ///< This row is never updated; see padding_reads.
  PaddingReads padding_reads = PaddingReads::zeros;  ///< What a plain lookup of padding_idx returns.
  BoundsCheck bounds_check = BoundsCheck::error;
  bool trainable = true;
  std::string name = "embedding";
  PlacementPolicy placement = PlacementPolicy::automatic;
  std::optional<Regularizer> embeddings_regularizer;  ///< Added to touched rows' gradients (every row's: lazy = false).
  Constraint embeddings_constraint;                   ///< Applied to updated rows after each update.
  std::optional<std::uint64_t> gpu_memory_limit;      ///< A byte cap for this table's device, shared with the model.
  std::optional<std::uint64_t> gpu_memory_headroom;   ///< Bytes left free on the device; default 10% of its total.
  std::int64_t max_batch_lookups = 1 << 18;           ///< The largest batch, which sizes the workspace.
  OptimizerConfig optimizer = OptimizerConfig::defaults(OptimizerKind::sgd);
  NonFiniteGradients nonfinite_gradients = NonFiniteGradients::skip;
  /// torch.nn.Embedding's max_norm: when set (positive, finite), every lookup first multiplies each
  /// distinct row it reads whose norm_type-norm exceeds max_norm by max_norm / (norm + 1e-7), in
  /// the table, so such a lookup writes (EmbeddingTable::lookup). Absent: lookups only read.
  std::optional<double> max_norm;
  /// The p of max_norm's p-norm: positive, or infinity (the largest magnitude). torch's default, 2.
  double norm_type = 2.0;
  /// The rows' storage type. float16 and bfloat16 halve the rows' bytes: lookups widen them to
  /// float32, gradients and optimizer state stay float32, and each updated row is rounded back
  /// (`rounding`); set_weights, pretrained vectors and initial values round to nearest even.
  DType dtype = DType::float32;
  /// How a train step rounds an updated float16 or bfloat16 row (unused for float32).
  Rounding rounding = Rounding::stochastic;

  /// @brief Parses a JSON object: a Keras `Embedding.get_config()` as it is (Keras 3 or tf-keras),
  /// plus embedkit's own keys (padding_idx, padding_reads, bounds_check, placement, seed, optimizer as a name or a
  /// Keras optimizer object, nonfinite_gradients, gpu_memory_limit, gpu_memory_headroom,
  /// max_batch_lookups, max_norm (null or a positive number), norm_type (a positive number, or
  /// "inf" / "Infinity" for the maximum norm), rounding ("stochastic" or "nearest")), and dtype as a
  /// Keras name or DTypePolicy ("float32", "float16", "bfloat16"; mixed policies keep float32
  /// rows). Initializers,
  /// regularizers and constraints come as Keras names or Keras objects.
  /// @throws Error(Status::invalid_argument) naming a malformed document, an unknown key or a value
  ///         of the wrong type or range, e.g. `input_dim must be a positive integer, got 0`;
  ///         Error(Status::unsupported) naming a Keras option embedkit does not implement
  ///         (sparse, LoRA, quantization, an activity regularizer, another dtype, a custom optimizer
  ///         over float16 or bfloat16 rows).
  static TableConfig from_json(std::string_view json);

  /// @brief The config as a JSON object that from_json reads back to an equal config.
  std::string to_json() const;

  /// @brief Checks the values' ranges (as from_json does) for a config built in C++.
  /// @throws Error(Status::invalid_argument) naming the first bad field.
  void validate() const;
};

/// @brief The JSON spelling of a bounds-check mode: "error" or "zero_fill".
EMBEDKIT_API const char* to_string(BoundsCheck mode) noexcept;
/// @brief The JSON spelling of a non-finite gradient policy: "skip", "apply" or "error".
EMBEDKIT_API const char* to_string(NonFiniteGradients policy) noexcept;
/// @brief The JSON spelling of a padding read mode: "zeros" or "row".
EMBEDKIT_API const char* to_string(PaddingReads mode) noexcept;
/// @brief The JSON spelling of a placement policy: "auto", "cpu" or "cuda".
EMBEDKIT_API const char* to_string(PlacementPolicy policy) noexcept;

}  // namespace embedkit
