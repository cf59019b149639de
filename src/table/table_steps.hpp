#pragma once
// A train step of several tables taken as one (a table collection's): every table's checks run
// before any table changes. Internal to the table layer.

#include <embedkit/pooling.hpp>
#include <embedkit/table.hpp>
#include <embedkit/tensor.hpp>

#include <cstdint>
#include <span>

namespace embedkit::detail {

/// One table's share of a many-table step: a plain batch (offsets empty, `grad` one row per id)
/// or a pooled one (CSR `offsets`, `grad` one row per bag), as train_step / train_step_pooled take.
struct TableStep {
  EmbeddingTable* table = nullptr;
  IndexTensor indices;
  std::span<const std::int64_t> offsets;
  bool pooled = false;
  PoolingMode mode = PoolingMode::sum;
  std::span<const float> per_sample_weights;
  std::span<const float> grad;
};

/// Takes every step as the table's train_step (or train_step_pooled) would, bit for bit, holding
/// every table's lock (in `steps` order, each table at most once) throughout. Every check of every
/// step (shapes, ids, the last step, and under nonfinite_gradients "error" the gradient rows and
/// their updates) runs before the first table changes, so a failing call changes no table. No
/// custom optimizer (its callback judges rows as it applies them).
void train_tables(std::span<const TableStep> steps);

}  // namespace embedkit::detail
