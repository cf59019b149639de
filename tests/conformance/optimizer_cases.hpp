#pragma once
// The optimizers the optimizer and fused-step suites train with, each with a regularizer, weight
// decay and a max-norm constraint, and the comparison of a table's state with the reference's.

#include "tests/conformance/conformance.hpp"

#include <string>

namespace embedkit::testing::conformance {

struct Optimizer {
  const char* name;
  OptimizerKind kind;
  double momentum;
  bool nesterov;
};

inline const Optimizer kOptimizers[] = {{"sgd", OptimizerKind::sgd, 0.0, false},
                                        {"momentum", OptimizerKind::sgd, 0.9, false},
                                        {"nesterov", OptimizerKind::sgd, 0.9, true},
                                        {"adagrad", OptimizerKind::adagrad, 0.0, false},
                                        {"rowwise_adagrad", OptimizerKind::rowwise_adagrad, 0.0, false},
                                        {"adam", OptimizerKind::adam, 0.0, false},
                                        {"ftrl", OptimizerKind::ftrl, 0.0, false}};

inline TableConfig optimizer_config(const Optimizer& optimizer, std::int64_t dim,
                                    BoundsCheck bounds = BoundsCheck::error) {
  TableConfig config = config_of(dim, bounds);
  config.optimizer = OptimizerConfig::defaults(optimizer.kind);
  config.optimizer.learning_rate = 0.05;
  config.optimizer.momentum = optimizer.momentum;
  config.optimizer.nesterov = optimizer.nesterov;
  config.optimizer.weight_decay = 0.01;
  config.embeddings_regularizer = Regularizer{0.001, 0.002};
  config.embeddings_constraint = {ConstraintKind::max_norm, 0.8};
  return config;
}

/// The reference optimizer, starting from the table's weights and state.
inline reference::Trainer trainer_of(const EmbeddingTable& table) {
  const TableState state = state_of(table);
  reference::Trainer trainer{table.config(), state.weights, {}, {}, state.step};
  if (!state.slots.empty()) trainer.slot0 = state.slots[0];
  if (state.slots.size() > 1) trainer.slot1 = state.slots[1];
  return trainer;
}

/// Whether a table's weights and state are within tolerance of the reference's.
inline ::testing::AssertionResult close_to(const TableState& state, const reference::Trainer& trainer) {
  constexpr float kRelative = 2e-5f;
  if (state.step != trainer.step) return ::testing::AssertionFailure() << "step " << state.step;
  if (auto weights = close(state.weights, trainer.weights, kRelative); !weights) return weights << " (weights)";
  const std::vector<float>* slots[] = {&trainer.slot0, &trainer.slot1};
  for (std::size_t s = 0; s < state.slots.size(); ++s) {
    if (auto slot = close(state.slots[s], *slots[s], kRelative); !slot) return slot << " (state array " << s << ")";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace embedkit::testing::conformance
