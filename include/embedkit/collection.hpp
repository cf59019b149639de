#pragma once
/// @file collection.hpp
/// @brief TableCollection: many embedding tables looked up and trained in one call, over a batch in
/// TorchRec's KeyedJaggedTensor layout.

#include <embedkit/config.hpp>
#include <embedkit/context.hpp>
#include <embedkit/export.h>
#include <embedkit/pooling.hpp>
#include <embedkit/table.hpp>
#include <embedkit/tensor.hpp>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace embedkit {

/// @brief One table of a collection: its TableConfig (rows, dim, optimizer, initializer,
/// placement, and every other per-table setting, the storage type included once tables have one),
/// the features it serves (TorchRec's feature_names) and how a pooled lookup combines a bag.
struct CollectionTable {
  TableConfig config;                      ///< config.name names the table (unique in the collection).
  std::vector<std::string> feature_names;  ///< At least one; a feature belongs to one table only.
  PoolingMode pooling = PoolingMode::sum;  ///< For lookup_pooled and train_step_pooled.
};

/// @brief The tables of a collection, in order: a pooled lookup's columns follow the tables' feature
/// names in this order (as TorchRec's KeyedTensor), whatever the order of the batch's keys.
struct EMBEDKIT_API CollectionConfig {
  std::vector<CollectionTable> tables;

  /// @brief Checks every table (TableConfig::validate), unique table and feature names, at least
  /// one feature per table, no custom optimizer.
  /// @throws Error(invalid_argument) naming the table or feature.
  void validate() const;
  /// @brief Parses `{"tables": [{"feature_names": [...], "pooling": "sum", <TableConfig keys>}, ...]}`:
  /// each table object is a TableConfig's JSON (TableConfig::from_json) plus `feature_names`
  /// (default: the table's name) and `pooling` (default "sum").
  /// @throws Error(invalid_argument) as TableConfig::from_json, naming the table.
  static CollectionConfig from_json(std::string_view json);
  /// @brief The config as JSON that from_json reads back to an equal config.
  std::string to_json() const;
};

/// @brief A batch in TorchRec's KeyedJaggedTensor layout, borrowed for a call: `values` holds the
/// ids of every feature, feature after feature in `keys` order, each feature's samples in order.
/// The bags are `offsets` (keys × batch + 1, non-decreasing from 0 to values' size) when given,
/// else `lengths` (keys × batch ids per sample, feature-major; empty for a batch of no samples);
/// given both, they must agree. `weights`, when not empty, weighs
/// each id (per_sample_weights; one per value). Keys the collection does not serve are ignored.
struct KeyedJaggedBatch {
  std::span<const std::string> keys;
  IndexTensor values;
  std::span<const std::int64_t> lengths;
  std::span<const std::int64_t> offsets;
  std::span<const float> weights;
};

/// @brief N tables serving named features, looked up and trained per call over a whole batch.
///
/// A call validates everything first (keys, lengths or offsets, every id against its table, the
/// weights, the gradient, the outputs' sizes) and fails with Error naming the feature and the
/// position (`feature 'f7' sample 12: indices[3] = 5000 is not in [0, 4000)`, indices[j] being
/// the j-th id of that sample) before any table is touched: a failed call changes no table.
/// Each table keeps its own config (bounds_check zero_fill reads bad ids as zeros and counts them
/// on that table, padding_idx, max_norm, nonfinite_gradients...). On the CPU a pooled lookup of
/// the whole batch runs in one parallel region, its work split by bytes across all tables.
///
/// Threading: as EmbeddingTable; a call holds its tables' locks (in table order) for its duration.
class EMBEDKIT_API TableCollection {
 public:
  /// @brief Validates `config` and creates the tables on `context`, each placed by its own policy
  /// against the context's one device budget, the largest tables decided first so small ones go to
  /// the device and big ones to the CPU when the budget runs out.
  /// @throws Error as CollectionConfig::validate and as EmbeddingTable's constructor.
  explicit TableCollection(CollectionConfig config, Context& context = Context::default_context());
  ~TableCollection();
  TableCollection(TableCollection&&) noexcept;
  TableCollection& operator=(TableCollection&&) noexcept;
  TableCollection(const TableCollection&) = delete;
  TableCollection& operator=(const TableCollection&) = delete;

  /// @brief The config the collection was made with (each table's seed filled in).
  CollectionConfig config() const;
  std::size_t table_count() const noexcept;
  /// @brief Table i, in config order (its weights, state, placement, checkpoint as any table's).
  EmbeddingTable& table(std::size_t i);
  const EmbeddingTable& table(std::size_t i) const;
  /// @brief The table named `name`. @throws Error(invalid_argument) for an unknown name.
  EmbeddingTable& table(std::string_view name);
  /// @brief Every feature, in output order (the tables' feature_names in config order).
  std::vector<std::string> feature_names() const;
  /// @brief The embedding width of each feature, in feature_names() order.
  std::vector<std::int64_t> feature_dims() const;
  /// @brief Columns of a pooled lookup: the sum of feature_dims().
  std::int64_t pooled_width() const noexcept;
  /// @brief The batch size of `batch` (lengths or offsets over the number of keys), validated.
  std::int64_t batch_size(const KeyedJaggedBatch& batch) const;

  /// @brief Pools each feature's bags with its table's pooling into out, shape (batch, pooled_width()):
  /// feature f's block of columns holds sample b's pooled row at row b. Empty bags give zeros.
  /// @throws Error: invalid_argument, shape_mismatch, out_of_range (named as above).
  void lookup_pooled(const KeyedJaggedBatch& batch, std::span<float> out) const;
  Array<float> lookup_pooled(const KeyedJaggedBatch& batch) const;
  /// @brief As lookup_pooled, each feature into its own (batch, dim) output, in feature_names() order.
  void lookup_pooled(const KeyedJaggedBatch& batch, std::span<const std::span<float>> outs) const;
  /// @brief Plain lookup: one row per value, in values' order, each of its feature's dim (padding_idx
  /// as the table's lookup reads it): Σ_f values_f × dim_f floats. Keys not served must be absent.
  void lookup(const KeyedJaggedBatch& batch, std::span<float> out) const;
  /// @brief The floats `lookup` writes for `batch`.
  std::int64_t lookup_size(const KeyedJaggedBatch& batch) const;

  /// @brief One optimizer step of every table from the upstream gradient of lookup_pooled's output
  /// (batch × pooled_width()): the features of a table are one batch for it (duplicates across
  /// them folded), each table steps once with its own optimizer, bit for bit as its
  /// train_step_pooled would. Checks (ids, gradient, non-finite rows under "error", the last step)
  /// run for every table before any table changes.
  void train_step_pooled(const KeyedJaggedBatch& batch, std::span<const float> grad);
  /// @brief One optimizer step from the upstream gradient of `lookup` (lookup_size floats), as
  /// train_step_pooled with each table's train_step.
  void train_step(const KeyedJaggedBatch& batch, std::span<const float> grad);

  /// @brief Saves every table (EmbeddingTable::save, each crash-safe) into a new generation of
  /// `directory` (`g<N>-t<i>/` per table), then collection.json, one manifest over them (format
  /// version, generation, the collection config, each table's folder), written aside, fsynced and
  /// renamed over the old one: a crash leaves the previous checkpoint or the new one, whole. Then
  /// generations older than the previous one are deleted. Saves into one directory take turns.
  /// The tables are saved one after the other: steps of the collection must not run meanwhile.
  /// @throws Error(io_error) naming the file; Error(unsupported) as EmbeddingTable::save.
  void save(std::string_view directory) const;
  /// @brief Loads a collection saved by save(), each table placed anew on `context` as a new
  /// collection's are (the smallest first). @throws Error(io_error) naming the file that fails.
  static TableCollection load(std::string_view directory, Context& context = Context::default_context());

  struct Impl;  ///< Opaque.

 private:
  TableCollection() = default;
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedkit
