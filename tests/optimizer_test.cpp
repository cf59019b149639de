// Every optimizer against a dense reference written here (Keras 3's formulas, float), with the
// Keras check adapted to a table; lazy vs dense Adam; regularizers, constraints, weight decay;
// frozen tables, non-finite gradient rows under each policy for every optimizer, learning-rate
// changes, failures that change nothing, and bitwise equality across thread counts.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include "tests/support/tables.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using embedkit::testing::uniform_floats;

using embedkit::EmbeddingTable;
using embedkit::Error;
using embedkit::IndexTensor;
using embedkit::OptimizerConfig;
using embedkit::OptimizerKind;
using embedkit::Status;
using embedkit::TableConfig;

constexpr std::int64_t kRows = 5, kDim = 3;

// A dense table and its optimizer state, updated the textbook way: every row, g = 0 where untouched.
struct Reference {
  OptimizerConfig o;
  std::vector<float> w, a, b, row_acc;
  std::int64_t t = 0;

  Reference(const OptimizerConfig& optimizer, const std::vector<float>& weights) : o(optimizer), w(weights) {
    const bool accumulates = o.kind == OptimizerKind::adagrad || o.kind == OptimizerKind::ftrl;
    a.assign(w.size(), accumulates ? static_cast<float>(o.initial_accumulator_value) : 0.0f);
    b.assign(w.size(), 0.0f);
    row_acc.assign(kRows, static_cast<float>(o.initial_accumulator_value));
  }

  // `grad` is dense (kRows x kDim); rows in `touched` are updated (all rows when dense_rows).
  void step(const std::vector<float>& grad, const std::vector<bool>& touched, bool dense_rows = false) {
    ++t;
    const float lr = static_cast<float>(o.learning_rate);
    for (std::int64_t r = 0; r < kRows; ++r) {
      if (!touched[r] && !dense_rows) continue;
      if (o.kind == OptimizerKind::rowwise_adagrad) {
        float squares = 0;
        for (std::int64_t c = 0; c < kDim; ++c) squares += grad[r * kDim + c] * grad[r * kDim + c];
        row_acc[r] += squares / kDim;
      }
      for (std::int64_t c = 0; c < kDim; ++c) {
        const std::size_t i = static_cast<std::size_t>(r * kDim + c);
        const float g = grad[i];
        if (o.weight_decay) w[i] = w[i] - w[i] * static_cast<float>(*o.weight_decay) * lr;
        switch (o.kind) {
          case OptimizerKind::sgd:
            if (o.momentum == 0) {
              w[i] -= g * lr;
            } else {
              const float mu = static_cast<float>(o.momentum);
              a[i] = a[i] * mu - g * lr;
              w[i] += o.nesterov ? a[i] * mu - g * lr : a[i];
            }
            break;
          case OptimizerKind::adagrad:
            a[i] += g * g;
            w[i] -= lr * g / std::sqrt(a[i] + static_cast<float>(o.epsilon));
            break;
          case OptimizerKind::rowwise_adagrad:
            w[i] -= g * (lr / (std::sqrt(row_acc[r]) + static_cast<float>(o.epsilon)));
            break;
          case OptimizerKind::adam: {
            // Keras: β cast to float32 for the powers; (1 − β) a Python double cast once.
            const float b1 = static_cast<float>(o.beta_1), b2 = static_cast<float>(o.beta_2);
            const float alpha =
                lr * std::sqrt(1 - std::pow(b2, static_cast<float>(t))) / (1 - std::pow(b1, static_cast<float>(t)));
            a[i] += (g - a[i]) * static_cast<float>(1.0 - o.beta_1);
            b[i] += (g * g - b[i]) * static_cast<float>(1.0 - o.beta_2);
            w[i] -= a[i] * alpha / (std::sqrt(b[i]) + static_cast<float>(o.epsilon));
            break;
          }
          case OptimizerKind::ftrl: {
            const float power = static_cast<float>(-o.learning_rate_power);
            const float l1 = static_cast<float>(o.l1_regularization_strength);
            const float l2 = static_cast<float>(o.l2_regularization_strength) + static_cast<float>(o.beta) / (2 * lr);
            const float shrunk = g + 2 * static_cast<float>(o.l2_shrinkage_regularization_strength) * w[i];
            const float next = a[i] + g * g;
            b[i] += shrunk - (std::pow(next, power) - std::pow(a[i], power)) / lr * w[i];
            const float quadratic = std::pow(next, power) / lr + 2 * l2;
            w[i] = (std::min(std::max(b[i], -l1), l1) - b[i]) / quadratic;
            a[i] = next;
            break;
          }
          case OptimizerKind::custom: break;
        }
      }
    }
  }
};

TableConfig table_config(const OptimizerConfig& optimizer) {
  TableConfig config;
  config.input_dim = kRows;
  config.output_dim = kDim;
  config.seed = 4;
  config.optimizer = optimizer;
  return config;
}

void expect_near_all(const std::vector<float>& got, const std::vector<float>& expected, const std::string& what) {
  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], expected[i], 2e-6f * (1.0f + std::abs(expected[i]))) << what << " element " << i;
  }
}

OptimizerConfig with_lr(OptimizerKind kind, double lr) {
  OptimizerConfig o = OptimizerConfig::defaults(kind);
  o.learning_rate = lr;
  return o;
}

struct Case {
  std::string name;
  OptimizerConfig optimizer;
};

std::vector<Case> cases() {
  OptimizerConfig momentum = with_lr(OptimizerKind::sgd, 0.1);
  momentum.momentum = 0.9;
  OptimizerConfig nesterov = momentum;
  nesterov.nesterov = true;
  OptimizerConfig decayed = with_lr(OptimizerKind::adagrad, 0.1);
  decayed.weight_decay = 0.05;
  OptimizerConfig dense_adam = with_lr(OptimizerKind::adam, 0.01);
  dense_adam.lazy = false;
  OptimizerConfig ftrl = with_lr(OptimizerKind::ftrl, 0.1);
  ftrl.l1_regularization_strength = 0.01;
  ftrl.l2_regularization_strength = 0.02;
  ftrl.l2_shrinkage_regularization_strength = 0.01;
  ftrl.beta = 0.5;
  return {{"sgd", with_lr(OptimizerKind::sgd, 0.1)},
          {"sgd_momentum", momentum},
          {"sgd_nesterov", nesterov},
          {"adagrad", with_lr(OptimizerKind::adagrad, 0.1)},
          {"adagrad_weight_decay", decayed},
          {"rowwise_adagrad", with_lr(OptimizerKind::rowwise_adagrad, 0.1)},
          {"adam_lazy", with_lr(OptimizerKind::adam, 0.01)},
          {"adam_dense", dense_adam},
          {"ftrl", ftrl}};
}

class OptimizerTest : public ::testing::TestWithParam<Case> {};

// Keras's sparse-update check adapted to a table: 5 rows, ids (0, 2, 4), gradient row i = (10 - i)
// times ones, 5 steps; the sparse step equals the dense one with zeros elsewhere, and (lazy
// semantics) untouched rows do not move.
TEST_P(OptimizerTest, SparseStepsEqualDenseReference) {
  EmbeddingTable table(table_config(GetParam().optimizer));
  Reference reference(GetParam().optimizer, table.get_weights().values);
  const std::vector<std::int64_t> ids = {0, 2, 4};
  std::vector<float> grad_out, dense(kRows * kDim, 0.0f);
  for (const std::int64_t id : ids) {
    for (std::int64_t c = 0; c < kDim; ++c) {
      grad_out.push_back(static_cast<float>(10 - id));
      dense[id * kDim + c] = static_cast<float>(10 - id);
    }
  }
  const std::vector<bool> touched = {true, false, true, false, true};
  const auto untouched_before = table.get_weights().values;
  const bool dense_rows = !GetParam().optimizer.lazy;
  for (int step = 0; step < 5; ++step) {
    table.train_step(IndexTensor(ids), grad_out);
    reference.step(dense, touched, dense_rows);
  }
  EXPECT_EQ(table.step(), 5);
  expect_near_all(table.get_weights().values, reference.w, GetParam().name);
  for (const std::int64_t row : {1, 3}) {
    for (std::int64_t c = 0; c < kDim; ++c) {
      EXPECT_EQ(table.get_weights().values[row * kDim + c], untouched_before[row * kDim + c]) << "row " << row;
    }
  }
}

TEST_P(OptimizerTest, DuplicatesFoldBeforeTheUpdate) {
  // Ids (1, 3, 1): row 1 is updated once with the sum of its two gradient rows.
  EmbeddingTable table(table_config(GetParam().optimizer));
  Reference reference(GetParam().optimizer, table.get_weights().values);
  const std::vector<std::int32_t> ids = {1, 3, 1};
  const std::vector<float> grad_out = {0.5f, -1, 2, 1, 1, 1, 0.25f, 3, -2};
  std::vector<float> dense(kRows * kDim, 0.0f);
  for (int c = 0; c < kDim; ++c) {
    dense[1 * kDim + c] = grad_out[c] + grad_out[6 + c];
    dense[3 * kDim + c] = grad_out[3 + c];
  }
  for (int step = 0; step < 3; ++step) {
    table.train_step(IndexTensor(ids), grad_out);
    reference.step(dense, {false, true, false, true, false}, !GetParam().optimizer.lazy);
  }
  expect_near_all(table.get_weights().values, reference.w, GetParam().name);
}

TEST_P(OptimizerTest, BitwiseEqualOnOneAndTwoThreads) {
  TableConfig config = table_config(GetParam().optimizer);
  config.input_dim = 50000;
  config.output_dim = 8;
  std::mt19937_64 rng(1);
  std::vector<std::int64_t> ids(200000);
  for (auto& id : ids) id = rng() % 3 == 0 ? 7 : static_cast<std::int64_t>(rng() % 50000);
  std::vector<float> grad(ids.size() * 8);
  for (auto& g : grad) g = static_cast<float>(static_cast<double>(rng() % 2001) / 1000.0 - 1.0);
  const auto train = [&](int threads) {
    omp_set_num_threads(threads);
    EmbeddingTable table(config);
    for (int step = 0; step < 3; ++step) table.train_step(IndexTensor(ids), grad);
    std::vector<float> all = table.get_weights().values;
    for (const auto& name : table.optimizer_state_names()) {
      const auto state = table.optimizer_state(name).values;
      all.insert(all.end(), state.begin(), state.end());
    }
    return all;
  };
  const int threads = omp_get_max_threads();
  const auto one = train(1);
  const auto two = train(2);
  omp_set_num_threads(threads);
  ASSERT_EQ(one.size(), two.size());
  EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)), 0);
}

// Non-finite gradient rows under each nonfinite_gradients policy, for every optimizer. A table that
// has taken two clean steps (so every state slot is in use) gets a batch in which id 2 occurs twice,
// once with `bad` at column 1; its twin gets the same batch without id 2.
struct NonFiniteStep {
  std::vector<std::int64_t> ids = {1, 2, 4, 2};
  std::vector<float> grad;
  std::vector<std::int64_t> clean_ids = {1, 4};  // the batch without id 2
  std::vector<float> clean_grad;

  explicit NonFiniteStep(float bad) {
    grad = uniform_floats(ids.size() * kDim, 11);
    grad[3 * kDim + 1] = bad;
    clean_grad.assign(grad.begin(), grad.begin() + kDim);
    clean_grad.insert(clean_grad.end(), grad.begin() + 2 * kDim, grad.begin() + 3 * kDim);
  }
};

// Weights, every state array and the step count, to compare two tables bitwise.
std::vector<float> everything(const EmbeddingTable& table) {
  std::vector<float> all = table.get_weights().values;
  for (const auto& name : table.optimizer_state_names()) {
    const auto state = table.optimizer_state(name).values;
    all.insert(all.end(), state.begin(), state.end());
  }
  all.push_back(static_cast<float>(table.step()));
  return all;
}

// As everything(), without the weights and state of row `left_out`.
std::vector<float> everything_but_row(const EmbeddingTable& table, std::int64_t left_out) {
  std::vector<float> all;
  const auto keep_rows = [&](const std::vector<float>& values) {
    const auto width = static_cast<std::int64_t>(values.size()) / kRows;
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(values.size()); ++i) {
      if (i / width != left_out) all.push_back(values[static_cast<std::size_t>(i)]);
    }
  };
  keep_rows(table.get_weights().values);
  for (const auto& name : table.optimizer_state_names()) keep_rows(table.optimizer_state(name).values);
  all.push_back(static_cast<float>(table.step()));
  return all;
}

// Two clean steps touching every row, so that momentum, accumulators and moments are all non-zero.
void warm_up(EmbeddingTable& table) {
  const std::vector<std::int64_t> ids = {0, 1, 2, 3, 4, 2};
  for (std::uint64_t seed = 1; seed <= 2; ++seed)
    table.train_step(IndexTensor(ids), uniform_floats(ids.size() * kDim, seed));
}

const float kBadValues[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity()};

TableConfig with_policy(const OptimizerConfig& optimizer, embedkit::NonFiniteGradients policy) {
  TableConfig config = table_config(optimizer);
  config.nonfinite_gradients = policy;
  return config;
}

// skip: the step is the same step without the bad id, bitwise: that row's weights and state stay
// as they were (lazy optimizers) or move as an untouched row's do (Adam with lazy = false), every
// other row is updated, the step count grows. Through train_step, apply and train_step_pooled; and
// the table trains on cleanly afterwards.
TEST_P(OptimizerTest, NonFiniteRowSkippedIsTheStepWithoutItsId) {
  const TableConfig config = with_policy(GetParam().optimizer, embedkit::NonFiniteGradients::skip);
  for (const float bad : kBadValues) {
    const NonFiniteStep step(bad);
    EmbeddingTable table(config), twin(config);
    warm_up(table);
    warm_up(twin);
    const std::vector<float> row2_before = table.row(2);
    table.train_step(IndexTensor(step.ids), step.grad);
    twin.train_step(IndexTensor(step.clean_ids), step.clean_grad);
    EXPECT_EQ(everything(table), everything(twin)) << bad;
    EXPECT_EQ(table.nonfinite_gradient_rows(), 1);
    if (GetParam().optimizer.lazy) {
      EXPECT_EQ(table.row(2), row2_before) << bad;
    }

    // A sparse gradient made by hand.
    embedkit::SparseGrad hand{{1, 2, 4}, uniform_floats(3 * kDim, 12), kDim};
    embedkit::SparseGrad hand_clean{{1, 4}, hand.rows, kDim};
    hand_clean.rows.erase(hand_clean.rows.begin() + kDim, hand_clean.rows.begin() + 2 * kDim);
    hand.rows[kDim + 1] = bad;
    table.apply(hand);
    twin.apply(hand_clean);
    EXPECT_EQ(everything(table), everything(twin)) << bad;
    EXPECT_EQ(table.nonfinite_gradient_rows(), 2);

    // A pooled step: bag 0 = {2, 0}, bag 1 = {3, 3}; bag 0's gradient is bad, so ids 2 and 0 are.
    std::vector<float> bags = uniform_floats(2 * kDim, 13);
    bags[1] = bad;
    table.train_step_pooled(IndexTensor(std::vector<std::int64_t>{2, 0, 3, 3}), std::vector<std::int64_t>{0, 2, 4},
                            embedkit::PoolingMode::mean, {}, bags);
    twin.train_step_pooled(IndexTensor(std::vector<std::int64_t>{3, 3}), std::vector<std::int64_t>{0, 2},
                           embedkit::PoolingMode::mean, {}, std::vector<float>(bags.begin() + kDim, bags.end()));
    EXPECT_EQ(everything(table), everything(twin)) << bad;
    EXPECT_EQ(table.nonfinite_gradient_rows(), 4);

    const std::vector<float> clean = uniform_floats(step.ids.size() * kDim, 14);
    table.train_step(IndexTensor(step.ids), clean);
    twin.train_step(IndexTensor(step.ids), clean);
    EXPECT_EQ(everything(table), everything(twin)) << bad;
  }
}

// error: the step fails naming the id, the value and the column; weights, every state array, the
// step count and the skip counter are bitwise as before, and the next clean step is the one a
// table that never saw the failure takes.
TEST_P(OptimizerTest, NonFiniteRowUnderErrorChangesNothing) {
  const TableConfig config = with_policy(GetParam().optimizer, embedkit::NonFiniteGradients::error);
  for (const float bad : kBadValues) {
    const NonFiniteStep step(bad);
    EmbeddingTable table(config), twin(config);
    warm_up(table);
    warm_up(twin);
    const std::vector<float> before = everything(table);
    try {
      table.train_step(IndexTensor(step.ids), step.grad);
      FAIL() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), Status::invalid_argument);
      const std::string expected = "1 gradient rows are not finite; the gradient row of id 2 holds " +
                                   std::string(std::isnan(bad) ? "nan"
                                               : bad > 0       ? "inf"
                                                               : "-inf") +
                                   " at column 1";
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
    EXPECT_EQ(everything(table), before) << bad;
    embedkit::SparseGrad hand{{0, 2}, uniform_floats(2 * kDim, 12), kDim};
    hand.rows[kDim + 2] = bad;
    EXPECT_THROW(table.apply(hand), Error);
    EXPECT_EQ(everything(table), before) << bad;
    EXPECT_EQ(table.nonfinite_gradient_rows(), 0);
    const std::vector<float> clean = uniform_floats(step.ids.size() * kDim, 14);
    table.train_step(IndexTensor(step.ids), clean);
    twin.train_step(IndexTensor(step.ids), clean);
    EXPECT_EQ(everything(table), everything(twin)) << bad;
  }
}

// apply: the bad value reaches its row (some weight of row 2 is no longer finite) and nothing
// else: every other row, and the step count, are those of the step without id 2, bitwise.
TEST_P(OptimizerTest, NonFiniteRowUnderApplyReachesOnlyItsRow) {
  const TableConfig config = with_policy(GetParam().optimizer, embedkit::NonFiniteGradients::apply);
  for (const float bad : kBadValues) {
    const NonFiniteStep step(bad);
    EmbeddingTable table(config), twin(config);
    warm_up(table);
    warm_up(twin);
    table.train_step(IndexTensor(step.ids), step.grad);
    twin.train_step(IndexTensor(step.clean_ids), step.clean_grad);
    const std::vector<float> row2 = table.row(2);
    EXPECT_FALSE(std::all_of(row2.begin(), row2.end(), [](float v) { return std::isfinite(v); })) << bad;
    EXPECT_EQ(everything_but_row(table, 2), everything_but_row(twin, 2)) << bad;
    EXPECT_EQ(table.nonfinite_gradient_rows(), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Keras, OptimizerTest, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& param_info) { return param_info.param.name; });

TEST(Adam, DenseModeFollowsKerasOnEveryRow) {
  OptimizerConfig adam = with_lr(OptimizerKind::adam, 0.01);
  adam.lazy = false;
  EmbeddingTable table(table_config(adam));
  Reference reference(adam, table.get_weights().values);
  const std::vector<std::int64_t> first = {0, 2}, second = {4};
  std::vector<float> dense_first(kRows * kDim, 0.0f), dense_second(kRows * kDim, 0.0f);
  for (int c = 0; c < kDim; ++c) {
    dense_first[0 * kDim + c] = 1.0f;
    dense_first[2 * kDim + c] = -2.0f;
    dense_second[4 * kDim + c] = 0.5f;
  }
  const std::vector<float> grad_first = {1, 1, 1, -2, -2, -2}, grad_second = {0.5f, 0.5f, 0.5f};
  const std::vector<bool> none(kRows, false);
  table.train_step(IndexTensor(first), grad_first);
  reference.step(dense_first, none, true);
  const float row0_after_first = table.row(0)[0];
  table.train_step(IndexTensor(second), grad_second);
  reference.step(dense_second, none, true);
  expect_near_all(table.get_weights().values, reference.w, "weights");
  expect_near_all(table.optimizer_state("momentum").values, reference.a, "m");
  expect_near_all(table.optimizer_state("velocity").values, reference.b, "v");
  // Row 0 was touched only in step 1, yet its momentum moves it again in step 2: dense semantics.
  EXPECT_NE(table.row(0)[0], row0_after_first);
}

TEST(Adam, LazyLeavesUntouchedRowsAndStateStill) {
  EmbeddingTable table(table_config(with_lr(OptimizerKind::adam, 0.01)));
  const auto before = table.get_weights().values;
  table.train_step(IndexTensor(std::vector<std::int64_t>{1}), std::vector<float>{1, 1, 1});
  const auto after = table.get_weights().values;
  const auto m = table.optimizer_state("momentum").values;
  for (std::int64_t r = 0; r < kRows; ++r) {
    for (std::int64_t c = 0; c < kDim; ++c) {
      if (r == 1) {
        EXPECT_NE(after[r * kDim + c], before[r * kDim + c]);
      } else {
        EXPECT_EQ(after[r * kDim + c], before[r * kDim + c]);
        EXPECT_EQ(m[r * kDim + c], 0.0f);
      }
    }
  }
}

TEST(Training, RegularizerAddsItsGradientAndReportsTheFullLoss) {
  TableConfig config = table_config(with_lr(OptimizerKind::sgd, 0.1));
  config.embeddings_regularizer = embedkit::Regularizer{0.01, 0.02};
  EmbeddingTable table(config);
  const auto w = table.get_weights().values;
  double loss = 0;
  for (const float v : w) loss += 0.01 * std::abs(v) + 0.02 * v * v;
  EXPECT_NEAR(table.regularization_loss(), loss, 1e-9);
  table.train_step(IndexTensor(std::vector<std::int64_t>{2}), std::vector<float>{1, 0, -1});
  const auto after = table.get_weights().values;
  for (std::int64_t c = 0; c < kDim; ++c) {
    const float v = w[2 * kDim + c];
    const float g = static_cast<float>(c == 0 ? 1 : c == 1 ? 0 : -1) + 0.01f * (v > 0 ? 1.0f : -1.0f) + 2 * 0.02f * v;
    EXPECT_NEAR(after[2 * kDim + c], v - g * 0.1f, 1e-7f);
  }
  EXPECT_EQ(after[0], w[0]);  // lazy: untouched rows get no penalty gradient
}

TEST(Training, ConstraintsApplyToTouchedRowsAfterTheUpdate) {
  for (const auto kind :
       {embedkit::ConstraintKind::max_norm, embedkit::ConstraintKind::unit_norm, embedkit::ConstraintKind::non_neg}) {
    TableConfig config = table_config(with_lr(OptimizerKind::sgd, 1.0));
    config.embeddings_constraint = {kind, 0.5};
    EmbeddingTable table(config);
    const auto before = table.get_weights().values;
    table.train_step(IndexTensor(std::vector<std::int64_t>{3}), std::vector<float>{-3, 4, 0});
    const auto row = table.row(3);
    const float updated[] = {before[9] + 3, before[10] - 4, before[11]};
    const float norm = std::sqrt(updated[0] * updated[0] + updated[1] * updated[1] + updated[2] * updated[2]);
    for (int c = 0; c < 3; ++c) {
      float expected = updated[c];
      if (kind == embedkit::ConstraintKind::max_norm) expected *= std::min(norm, 0.5f) / (1e-7f + norm);
      if (kind == embedkit::ConstraintKind::unit_norm) expected /= 1e-7f + norm;
      if (kind == embedkit::ConstraintKind::non_neg) expected = expected < 0 ? 0.0f : expected;
      EXPECT_NEAR(row[c], expected, 1e-6f) << static_cast<int>(kind);
    }
    EXPECT_EQ(table.row(0), std::vector<float>(before.begin(), before.begin() + 3));  // untouched row kept
  }
  // apply_constraints() reaches every row.
  TableConfig config = table_config(with_lr(OptimizerKind::sgd, 1.0));
  config.embeddings_constraint = {embedkit::ConstraintKind::non_neg, 2.0};
  EmbeddingTable table(config);
  table.apply_constraints();
  for (const float v : table.get_weights().values) EXPECT_GE(v, 0.0f);
}

TEST(Training, CustomOptimizerRunsPerTouchedRowInIdOrder) {
  std::vector<std::int64_t> seen;
  OptimizerConfig custom = OptimizerConfig::custom(
      [&seen](std::int64_t id, float* w, const float* g, float* state, int dim) {
        seen.push_back(id);
        state[0] += 1.0f;  // a per-row step counter
        for (int c = 0; c < dim; ++c) w[c] -= g[c] / state[0];
      },
      1);
  EXPECT_FALSE(custom.has_cuda_kernel());
  EmbeddingTable table(table_config(custom));
  const auto before = table.get_weights().values;
  table.train_step(IndexTensor(std::vector<std::int64_t>{4, 1, 4}), std::vector<float>(9, 1.0f));
  EXPECT_EQ(seen, (std::vector<std::int64_t>{1, 4}));
  EXPECT_NEAR(table.row(4)[0], before[12] - 2.0f, 1e-6f);
  EXPECT_EQ(table.optimizer_state("state").values, (std::vector<float>{0, 1, 0, 0, 1}));
}

TEST(Training, FrozenTableIsANoOpAndKeepsItsStep) {
  TableConfig config = table_config(with_lr(OptimizerKind::adagrad, 0.1));
  config.trainable = false;
  EmbeddingTable table(config);
  const auto before = table.get_weights().values;
  table.train_step(IndexTensor(std::vector<std::int64_t>{1}), std::vector<float>{1, 1, 1});
  EXPECT_EQ(table.get_weights().values, before);
  EXPECT_EQ(table.step(), 0);
  table.set_trainable(true);
  table.train_step(IndexTensor(std::vector<std::int64_t>{1}), std::vector<float>{1, 1, 1});
  EXPECT_EQ(table.step(), 1);
  EXPECT_NE(table.get_weights().values, before);
}

TEST(Training, EmptyBatchCountsAsAStep) {
  EmbeddingTable table(table_config(with_lr(OptimizerKind::adam, 0.01)));
  const auto before = table.get_weights().values;
  table.train_step(IndexTensor(static_cast<const std::int64_t*>(nullptr), {0}), {});
  EXPECT_EQ(table.step(), 1);
  EXPECT_EQ(table.get_weights().values, before);
}

TEST(Training, PaddingAndZeroFilledIdsAreNotUpdated) {
  TableConfig config = table_config(with_lr(OptimizerKind::sgd, 1.0));
  config.padding_idx = 0;
  config.bounds_check = embedkit::BoundsCheck::zero_fill;
  EmbeddingTable table(config);
  const auto before = table.get_weights().values;
  table.train_step(IndexTensor(std::vector<std::int64_t>{0, 9, 2}), std::vector<float>(9, 1.0f));
  const auto after = table.get_weights().values;
  for (std::int64_t i = 0; i < kRows * kDim; ++i) {
    if (i / kDim == 2) {
      EXPECT_EQ(after[i], before[i] - 1.0f);
    } else {
      EXPECT_EQ(after[i], before[i]);
    }
  }
}

TEST(Training, LearningRateChangesTakeEffect) {
  EmbeddingTable table(table_config(with_lr(OptimizerKind::sgd, 0.1)));
  const float start = table.row(1)[0];
  table.train_step(IndexTensor(std::vector<std::int64_t>{1}), std::vector<float>{1, 0, 0});
  table.set_learning_rate(0.5);
  EXPECT_EQ(table.optimizer().learning_rate, 0.5);
  table.train_step(IndexTensor(std::vector<std::int64_t>{1}), std::vector<float>{1, 0, 0});
  EXPECT_NEAR(table.row(1)[0], start - 0.1f - 0.5f, 1e-6f);
  EXPECT_THROW(table.set_learning_rate(-1.0), Error);
  EXPECT_THROW(table.set_learning_rate(std::nan("")), Error);
  EXPECT_EQ(table.optimizer().learning_rate, 0.5);
}

TEST(Training, BadInputsChangeNothing) {
  EmbeddingTable table(table_config(with_lr(OptimizerKind::adam, 0.1)));
  table.train_step(IndexTensor(std::vector<std::int64_t>{1}), std::vector<float>{1, 1, 1});
  const auto weights = table.get_weights().values;
  const auto m = table.optimizer_state("momentum").values;
  const auto expect_unchanged = [&] {
    EXPECT_EQ(table.get_weights().values, weights);
    EXPECT_EQ(table.optimizer_state("momentum").values, m);
    EXPECT_EQ(table.step(), 1);
  };
  EXPECT_THROW(table.train_step(IndexTensor(std::vector<std::int64_t>{1, 5}), std::vector<float>(6, 1.0f)), Error);
  expect_unchanged();
  EXPECT_THROW(table.train_step(IndexTensor(std::vector<std::int64_t>{1, 2}), std::vector<float>(5, 1.0f)), Error);
  expect_unchanged();
  embedkit::SparseGrad unsorted{{3, 1}, std::vector<float>(6, 1.0f), kDim};
  try {
    table.apply(unsorted);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "unique_ids[1] = 1 does not exceed unique_ids[0] = 3; ids must be strictly increasing");
  }
  embedkit::SparseGrad wrong_dim{{1}, std::vector<float>(4, 1.0f), 4};
  EXPECT_THROW(table.apply(wrong_dim), Error);
  embedkit::SparseGrad out_of_range{{7}, std::vector<float>(3, 1.0f), kDim};
  EXPECT_THROW(table.apply(out_of_range), Error);
  expect_unchanged();
  EXPECT_THROW(table.optimizer_state("accumulator"), Error);
}

TEST(Training, AFailedStepCountsNoZeroFilledIds) {
  TableConfig config = table_config(with_lr(OptimizerKind::sgd, 0.1));
  config.bounds_check = embedkit::BoundsCheck::zero_fill;
  config.nonfinite_gradients = embedkit::NonFiniteGradients::error;
  EmbeddingTable table(config);
  const std::vector<std::int64_t> ids = {1, 99};
  const std::vector<float> nan_grad = {std::nanf(""), 1, 1, 1, 1, 1};
  EXPECT_THROW(table.train_step(IndexTensor(ids), nan_grad), Error);
  EXPECT_EQ(table.out_of_range_count(), 0);
  table.train_step(IndexTensor(ids), std::vector<float>(6, 1.0f));
  EXPECT_EQ(table.out_of_range_count(), 1);
}

TEST(Training, AThrowingCustomOptimizerChangesNothing) {
  OptimizerConfig custom = OptimizerConfig::custom(
      [](std::int64_t id, float* w, const float*, float* state, int dim) {
        if (id == 3) throw std::runtime_error("refused");
        state[0] += 1.0f;
        for (int c = 0; c < dim; ++c) w[c] += 1.0f;
      },
      1);
  EmbeddingTable table(table_config(custom));
  const auto before = table.get_weights().values;
  EXPECT_THROW(table.train_step(IndexTensor(std::vector<std::int64_t>{1, 3}), std::vector<float>(6, 1.0f)),
               std::runtime_error);
  EXPECT_EQ(table.get_weights().values, before);
  EXPECT_EQ(table.optimizer_state("state").values, std::vector<float>(kRows, 0.0f));
  EXPECT_EQ(table.step(), 0);
}

TEST(Training, PaddingRowsOfAHandMadeGradientAreNeitherAppliedNorRefused) {
  TableConfig config = table_config(with_lr(OptimizerKind::sgd, 0.1));
  config.padding_idx = 2;
  config.nonfinite_gradients = embedkit::NonFiniteGradients::error;
  EmbeddingTable table(config);
  const auto before = table.get_weights().values;
  embedkit::SparseGrad grad{{1, 2}, {1, 1, 1, std::nanf(""), 0, 0}, kDim};
  table.apply(grad);  // the NaN sits on the padding row, which never receives gradient
  EXPECT_EQ(table.row(2), std::vector<float>(before.begin() + 6, before.begin() + 9));
  EXPECT_EQ(table.step(), 1);
  EXPECT_EQ(table.nonfinite_gradient_rows(), 0);
}

TEST(Training, ApplyEqualsTrainStep) {
  EmbeddingTable a(table_config(with_lr(OptimizerKind::ftrl, 0.1)));
  EmbeddingTable b(table_config(with_lr(OptimizerKind::ftrl, 0.1)));
  const std::vector<std::int64_t> ids = {4, 0, 4};
  const std::vector<float> grad = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  a.train_step(IndexTensor(ids), grad);
  b.apply(b.sparse_grad(IndexTensor(ids), grad));
  EXPECT_EQ(a.get_weights().values, b.get_weights().values);
  EXPECT_EQ(a.optimizer_state("linear").values, b.optimizer_state("linear").values);
}

TEST(Training, OptimizerStateBytesAreInThePlacement) {
  TableConfig config = table_config(with_lr(OptimizerKind::adam, 0.1));
  config.input_dim = 1000;
  config.output_dim = 16;
  EXPECT_EQ(EmbeddingTable(config).placement().bytes.optimizer_state, 2u * 1000u * 16u * 4u);
  config.optimizer = OptimizerConfig::defaults(OptimizerKind::rowwise_adagrad);
  const EmbeddingTable rowwise(config);
  EXPECT_EQ(rowwise.placement().bytes.optimizer_state, 1000u * 4u);
  EXPECT_EQ(rowwise.optimizer_state("row_accumulator").shape, (std::vector<std::int64_t>{1000}));
  config.optimizer = OptimizerConfig::defaults(OptimizerKind::sgd);
  EXPECT_EQ(EmbeddingTable(config).placement().bytes.optimizer_state, 0u);
}

}  // namespace
