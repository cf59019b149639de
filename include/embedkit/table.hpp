#pragma once
/// @file table.hpp
/// @brief EmbeddingTable: one embedding matrix, its lookups and its weights.

#include <embedkit/config.hpp>
#include <embedkit/context.hpp>
#include <embedkit/export.h>
#include <embedkit/placement.hpp>
#include <embedkit/pooling.hpp>
#include <embedkit/sparse_grad.hpp>
#include <embedkit/summary.hpp>
#include <embedkit/tensor.hpp>
#include <embedkit/weights_view.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace embedkit {

namespace detail {
struct RowSlice;
struct TableAccess;
}  // namespace detail

/// @brief An embedding matrix of input_dim rows and output_dim float32 columns.
///
/// Every method that fails throws embedkit::Error and leaves the table unchanged.
///
/// Memory: an output span may share no byte with the call's inputs or with the table's own memory
/// (weights, optimizer state): Error(invalid_argument) naming both (`out and offsets overlap ...`),
/// before anything is written. Inputs may overlap each other. set_weights given exactly the
/// table's weights (a view of them) is a no-op.
///
/// Device memory: the ids, offsets, weights, gradients and outputs of lookup, lookup_pooled,
/// compute_mask, sparse_grad, sparse_grad_pooled, train_step and train_step_pooled may be in the
/// memory of the CUDA device of the table's Context instead of the host (as from cudaMalloc or a
/// framework's allocator). A table on that device uses them in place, with its kernels on the
/// call's stream (<embedkit/cuda_stream.hpp>); a table on the CPU copies them across and back.
/// Checks that read an argument on the host (a pooled call's offsets, the ids under max_norm or
/// in a chunked retry) read it from a copy, as compute_mask does. The other methods take host
/// memory. Memory of any other device is the caller's error, not detected here (the C ABI refuses
/// it). A lookup that fails on an out-of-range id may have written an output that a table on the
/// device uses in place.
///
/// Threading: every method may be called from any thread. Readers (lookup, lookup_pooled,
/// compute_mask, sparse_grad, get_weights, row, optimizer_state, summary, info_json, save and the
/// accessors) run concurrently with each other. Writers (train_step, train_step_pooled, apply,
/// set_weights, set_row, set_learning_rate, set_trainable, apply_constraints, migrate,
/// set_cuda_stream, and lookup and lookup_pooled of a table with max_norm, which renormalise the
/// rows they read) take the table alone: they wait for running readers, and readers that come
/// while a writer waits or works wait for it (so a stream of lookups cannot starve training).
/// Every read sees whole rows from one state, never a row half-way through a step.
/// Accessors return copies or immutable values for the same reason. Two tables share nothing
/// that a caller can race on, even in one Context. Moving, assigning or destroying a table must
/// not overlap any other call on it.
class EMBEDKIT_API EmbeddingTable {
 public:
  /// @brief Validates `config`, decides the placement on `context`'s device or the CPU (logged at
  /// info), allocates and initialises the weights. Under placement "auto" a failed device
  /// allocation falls back to the CPU with a warning.
  /// @throws Error: invalid_argument (bad config or EMBEDKIT_DEVICE), out_of_memory (weights and
  ///         state larger than the memory available; under placement "cuda", a table that does not
  ///         fit the device), unsupported (placement "cuda" where no CUDA table can be made).
  explicit EmbeddingTable(TableConfig config, Context& context = Context::default_context());
  ~EmbeddingTable();
  /// @brief A table holding a copy of `matrix` (pretrained vectors), trainable or frozen. The
  /// config's input_dim and output_dim, when 0, are taken from the matrix's shape.
  /// @throws Error(shape_mismatch) in Keras's words when they are set and differ, as set_weights.
  static EmbeddingTable from_pretrained(const Array<float>& matrix, bool trainable, TableConfig config = {},
                                        Context& context = Context::default_context());
  EmbeddingTable(EmbeddingTable&&) noexcept;
  EmbeddingTable& operator=(EmbeddingTable&&) noexcept;
  EmbeddingTable(const EmbeddingTable&) = delete;
  EmbeddingTable& operator=(const EmbeddingTable&) = delete;

  /// @brief A copy of the config, with the seed that was drawn when none was given (a copy, as
  /// set_trainable and set_learning_rate may change it from another thread).
  TableConfig config() const;
  std::int64_t input_dim() const noexcept;
  std::int64_t output_dim() const noexcept;
  /// @brief The seed the weights were initialised from (drawn at creation when not configured).
  std::uint64_t seed() const noexcept;
  /// @brief Whether training steps change the table.
  bool trainable() const noexcept;
  /// @brief Freezes (false) or unfreezes (true) the table, as Keras's `layer.trainable`.
  void set_trainable(bool trainable);
  /// @brief Optimizer steps taken so far.
  std::int64_t step() const noexcept;
  /// @brief Where the table lives, why, and the bytes it holds there (a copy: migrate changes it).
  PlacementDecision placement() const;
  /// @brief Ids read as zeros so far under bounds_check zero_fill.
  std::int64_t out_of_range_count() const noexcept;

  /// @brief Gathers rows: the output has shape indices.shape + (output_dim,). padding_idx reads
  /// as zeros (as itself under padding_reads "row"). With config max_norm, each distinct row looked
  /// up (padding_idx included, ids zero_fill reads as zeros not) whose norm_type-norm exceeds
  /// max_norm is first scaled by max_norm / (norm + 1e-7) in the table, as torch.nn.Embedding
  /// does; the ids are checked before any row changes.
  /// @throws Error(out_of_range) `indices[3,7] = 15000 is not in [0, 10000)`.
  Array<float> lookup(const IndexTensor& indices) const;
  /// @brief As lookup, into caller memory of exactly indices.size() × output_dim floats.
  /// @throws Error(shape_mismatch) when `out` has another size; nothing is written on failure.
  void lookup(const IndexTensor& indices, std::span<float> out) const;

  /// @brief Pools bags of rows into shape (bags, output_dim). Bag b holds the 1-D `indices` at
  /// positions offsets[b] .. offsets[b+1] (CSR: bags + 1 offsets, the first 0, non-decreasing, the
  /// last indices.size()). `per_sample_weights`, when not empty, weighs each entry (not with max).
  /// Empty bags give zeros; padding_idx entries are skipped and not counted (without a padding_idx
  /// no id is padding: -1 is out of range as any other); mask_zero does not apply (id 0 is an
  /// ordinary id here). max_norm renormalises the rows first, as in lookup (nn.EmbeddingBag's).
  /// @throws Error: invalid_argument (offsets, weights with max), shape_mismatch (indices not 1-D,
  ///         weights of another length), out_of_range (as lookup).
  Array<float> lookup_pooled(const IndexTensor& indices, std::span<const std::int64_t> offsets, PoolingMode mode,
                             std::span<const float> per_sample_weights = {}) const;
  /// @brief As lookup_pooled, into caller memory of exactly bags × output_dim floats.
  void lookup_pooled(const IndexTensor& indices, std::span<const std::int64_t> offsets, PoolingMode mode,
                     std::span<const float> per_sample_weights, std::span<float> out) const;

  /// @brief indices != 0 under mask_zero, all ones otherwise; shape indices.shape.
  Array<std::uint8_t> compute_mask(const IndexTensor& indices) const;
  /// @brief As compute_mask, into caller memory of exactly indices.size() bytes.
  void compute_mask(const IndexTensor& indices, std::span<std::uint8_t> out) const;

  /// @brief The CPU table's weights in place (weights_view.hpp: no lock, migrate refuses while it
  /// lives). @throws Error(unsupported) for a table in device memory: use get_weights/set_weights.
  WeightsView weights_view();
  /// @brief A copy of the whole matrix, shape (input_dim, output_dim).
  Array<float> get_weights() const;
  /// @brief Copies the matrix into caller memory of exactly input_dim × output_dim floats.
  void get_weights(std::span<float> out) const;
  /// @brief Replaces the matrix. @throws Error(shape_mismatch) in Keras's words:
  /// `weight shape (20000, 100) is not compatible with provided weight shape (20001, 100)`.
  void set_weights(std::span<const float> values, std::span<const std::int64_t> shape);
  void set_weights(const Array<float>& weights);

  /// @brief A copy of row `id`. @throws Error(out_of_range) for an id outside [0, input_dim).
  std::vector<float> row(std::int64_t id) const;
  /// @brief Replaces row `id`. @throws Error(out_of_range) or Error(shape_mismatch).
  void set_row(std::int64_t id, std::span<const float> values);

  /// @brief The sparse gradient of a lookup: `grad_out` is the upstream gradient, indices.size() ×
  /// output_dim floats (shape indices.shape + (output_dim,)). Duplicate ids are folded in the canonical
  /// order; padding_idx and (under zero_fill) out-of-range ids receive nothing. Memory and time follow
  /// the batch, never input_dim. @throws Error: shape_mismatch, out_of_range (as lookup).
  SparseGrad sparse_grad(const IndexTensor& indices, std::span<const float> grad_out) const;
  /// @brief The sparse gradient of lookup_pooled from `grad_bags` (bags × output_dim): sum gives each
  /// entry the bag's gradient × its weight; mean divides by the bag's count (or weight sum); sqrtn
  /// by √Σw²; max gives each column's gradient to that column's argmax entry (ties: first position).
  SparseGrad sparse_grad_pooled(const IndexTensor& indices, std::span<const std::int64_t> offsets, PoolingMode mode,
                                std::span<const float> per_sample_weights, std::span<const float> grad_bags) const;
  /// @brief One optimizer step from a sparse gradient: only touched rows change (every row, under
  /// the optimizer's lazy = false, where a zero gradient moves rows: detail::updates_every_row). Regularizers add their
  /// gradient first, constraints run after; the step count grows by one, also for an empty gradient. A no-op on a
  /// frozen table.
  /// @throws Error: invalid_argument (ids not strictly increasing, rows of the wrong size, a
  ///         non-finite row under nonfinite_gradients "error"), out_of_range. Nothing changes then.
  void apply(const SparseGrad& grad);
  /// @brief sparse_grad then apply, as one step under one lock.
  void train_step(const IndexTensor& indices, std::span<const float> grad_out);
  /// @brief sparse_grad_pooled then apply, as one step under one lock.
  void train_step_pooled(const IndexTensor& indices, std::span<const std::int64_t> offsets, PoolingMode mode,
                         std::span<const float> per_sample_weights, std::span<const float> grad_bags);

  /// @brief A copy of the optimizer config, with the current learning rate.
  OptimizerConfig optimizer() const;
  /// @brief Sets the learning rate of the next steps (for schedules). @throws Error(invalid_argument)
  /// unless it is finite and >= 0 (> 0 for Ftrl).
  void set_learning_rate(double learning_rate);
  /// @brief The names of the optimizer's state arrays, e.g. {"momentum", "velocity"} for Adam.
  std::vector<std::string> optimizer_state_names() const;
  /// @brief A copy of one state array: (input_dim, output_dim), or (input_dim,) for a per-row slot.
  /// @throws Error(invalid_argument) naming an unknown slot.
  Array<float> optimizer_state(std::string_view name) const;
  /// @brief Replaces the optimizer's whole state and the step count, as a checkpoint load would:
  /// `slots` holds each of optimizer_state_names() once, in optimizer_state()'s shape. All or
  /// nothing. @throws Error: invalid_argument (a slot missing, repeated or unknown; step < 0),
  ///         shape_mismatch (a slot of the wrong shape).
  void set_optimizer_state(std::int64_t step, std::span<const NamedArray> slots);
  /// @brief The full penalty of the table's regularizer: l1·Σ|w| + l2·Σw² over every row (0 without).
  double regularization_loss() const;
  /// @brief Applies the constraint to every row (training applies it to touched rows only).
  void apply_constraints();
  /// @brief Gradient rows skipped so far because they held a NaN or an infinity.
  std::int64_t nonfinite_gradient_rows() const noexcept;

  /// @brief Saves weights, optimizer state, config, seed and step count into `directory` (created
  /// if missing): .npy files that numpy.load reads (the weights in their storage type: float16 as
  /// '<f2', bfloat16 as its bits '<u2' with "storage": "bfloat16" in the manifest), and manifest.json (format version,
  /// config, step, placement, each file's name, shape, dtype and xxHash64). Crash-safe, also over an existing
  /// checkpoint: new files under new names, fsynced; the manifest written aside, fsynced and renamed over the old one;
  /// the directory fsynced. Then files of the forms a save writes that neither the new nor the previous manifest lists
  /// are deleted (older generations, leftovers of killed saves): one previous generation stays, so a concurrent load
  /// still finds its files. A failed save removes its own files. A crash at any moment leaves the old checkpoint or the
  /// new one. Saves into one directory (threads, tables, processes) take turns on an exclusive
  /// flock(2) on the directory, held for the whole save, and each succeeds.
  /// @throws Error: io_error (naming the file; a manifest.json that is not a regular file
  ///         included), unsupported (a custom optimizer).
  void save(std::string_view directory) const;
  /// @brief Loads a checkpoint saved by save(), placed by today's policy on `context` (not the
  /// saved device). Every checksum, shape and file name is checked before the table exists.
  /// @throws Error(io_error) naming the file that fails (`weights-….npy: checksum mismatch`).
  static EmbeddingTable load(std::string_view directory, Context& context = Context::default_context());
  /// @brief load() into a table whose rows are stored as `dtype`, whatever the checkpoint's type:
  /// a float32 checkpoint into a bfloat16 table rounds each value to nearest even; a narrower one
  /// into a wider table is exact. Throws as load() does.
  static EmbeddingTable load(std::string_view directory, DType dtype, Context& context = Context::default_context());

  /// @brief Moves the table (weights, optimizer state, step count) to "cpu" or to its context's
  /// device ("cuda", or the device's name such as "cuda:0"); results before and after are bitwise
  /// equal. Nothing changes when it fails.
  /// @throws Error: invalid_argument (unknown device), unsupported (no such device, no kernels
  ///         there, or a custom optimizer), out_of_memory (does not fit; allocation failed).
  void migrate(std::string_view device);

  /// @brief Puts this table's CUDA work on `stream` (a cudaStream_t the caller owns, such as a
  /// framework's current stream; NULL: the table's own). Operations synchronise only that stream,
  /// never the device. @throws Error(unsupported) when the table is not on a CUDA device.
  void set_cuda_stream(void* stream);
  /// @brief The stream set by set_cuda_stream, or NULL while the table uses its own.
  void* cuda_stream() const;

  /// @brief The table's figures without a batch.
  Summary summary() const;
  /// @brief The figures for a batch of this shape (output shape and bytes).
  Summary summary(std::span<const std::int64_t> batch_shape) const;
  /// @brief The figures for an actual batch: also how many entries are padding under mask_zero.
  Summary summary(const IndexTensor& batch) const;

  /// @brief name, dims, seed, step, config, optimizer_state [{name, shape}], placement {device,
  /// reason_code, reason} and bytes, as JSON,
  /// padded with trailing spaces to one length whatever the step, out-of-range count, learning rate
  /// and trainable flag (only a migration changes it), so a buffer sized by one call fits the next.
  std::string info_json() const;

  struct Impl;  ///< Opaque: the table's state, defined inside the library.

 private:
  friend struct detail::TableAccess;  // the library's sharded tables build their shards through it
  enum class Fill { initializer, none };
  // `rows`, when given, makes the table rows of a larger matrix, initialised as that matrix's rows.
  EmbeddingTable(TableConfig config, Context& context, Fill fill, const detail::RowSlice* rows = nullptr);
  // Both loads: the checkpoint's own type, or the one asked for.
  static EmbeddingTable load_as(std::string_view directory, std::optional<DType> dtype, Context& context);
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedkit
