// Issue #22 regression tests: see docs/reliability.md, "Round two".
// Items 7, 8 and 9 (the Adagrad accumulator): numbers that do not fit float32, 0/0 in the
// optimizers, and steps that would turn finite weights or state non-finite. Each case runs on the
// CPU (fused and unfused steps) and on the simulated device, which must fail or skip alike.
#include <embedkit/c_api.h>
#include <embedkit/config.hpp>
#include <embedkit/status.hpp>
#include <embedkit/table.hpp>

#include <gtest/gtest.h>

#include "kernels/optimizer_kernel.hpp"
#include "tests/apply_kernel_replay.hpp"
#include "tests/sim_context.hpp"

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace {

using embedkit::Constraint;
using embedkit::ConstraintKind;
using embedkit::EmbeddingTable;
using embedkit::Error;
using embedkit::IndexTensor;
using embedkit::InitializerKind;
using embedkit::NonFiniteGradients;
using embedkit::OptimizerConfig;
using embedkit::OptimizerKind;
using embedkit::Regularizer;
using embedkit::Status;
using embedkit::TableConfig;

constexpr std::int64_t kRows = 6;
constexpr std::int64_t kDim = 4;

// Runs `body` and returns the Error it throws (Status::ok with an empty message if none).
Error thrown_by(const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& e) {
    return e;
  }
  return Error(Status::ok, "");
}

void expect_refused(const std::function<void()>& body, const std::vector<std::string>& words) {
  const Error e = thrown_by(body);
  EXPECT_EQ(e.status(), Status::invalid_argument) << e.what();
  for (const std::string& word : words) EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
}

TableConfig base_config() {
  TableConfig config;
  config.input_dim = kRows;
  config.output_dim = kDim;
  config.seed = 7;
  return config;
}

// Where a table lives in a test: the CPU (fused steps where the step allows), the CPU with only
// unfused steps (through apply), or the simulated device.
enum class Where { cpu_fused, cpu_unfused, sim };
const Where kEverywhere[] = {Where::cpu_fused, Where::cpu_unfused, Where::sim};

const char* name_of(Where where) {
  return where == Where::cpu_fused ? "cpu" : where == Where::cpu_unfused ? "cpu, unfused" : "sim";
}

struct Placed {
  std::unique_ptr<embedkit::Context> context = embedkit::testing::sim_context(64 << 20);
  std::unique_ptr<EmbeddingTable> table;
  Where where;

  Placed(TableConfig config, Where w) : where(w) {
    config.placement = w == Where::sim ? embedkit::PlacementPolicy::cuda : embedkit::PlacementPolicy::cpu;
    table = std::make_unique<EmbeddingTable>(config, *context);
  }

  // One train step of `ids` with `grad` (ids.size() × kDim).
  void step(const std::vector<std::int64_t>& ids, const std::vector<float>& grad) {
    if (where == Where::cpu_unfused) {
      table->apply(table->sparse_grad(IndexTensor(ids), grad));
    } else {
      table->train_step(IndexTensor(ids), grad);
    }
  }

  // Weights and every optimizer state, in one vector.
  std::vector<float> everything() const {
    std::vector<float> all = table->get_weights().values;
    for (const std::string& name : table->optimizer_state_names()) {
      const std::vector<float> state = table->optimizer_state(name).values;
      all.insert(all.end(), state.begin(), state.end());
    }
    return all;
  }
};

bool all_finite(const std::vector<float>& values) {
  for (const float v : values) {
    if (!std::isfinite(v)) return false;
  }
  return true;
}

// ---- Item 7: initializer, regularizer and constraint values must fit float32 -------------------

TEST(FloatRange, InitializerValuesThatDoNotFitFloat32AreRefusedNamingKeyAndLimit) {
  const auto refused = [](const std::function<void(TableConfig&)>& change, const std::string& key) {
    TableConfig config = base_config();
    change(config);
    for (const Where where : {Where::cpu_fused, Where::sim}) {
      SCOPED_TRACE(name_of(where));
      expect_refused([&] { Placed placed(config, where); },
                     {"embeddings_initializer " + key, "float32", "3.4028234663852886e+38"});
    }
  };
  refused(
      [](TableConfig& c) {
        c.embeddings_initializer.kind = InitializerKind::constant;
        c.embeddings_initializer.value = 1e300;
      },
      "value");
  refused(
      [](TableConfig& c) {
        c.embeddings_initializer.minval = -1e300;
        c.embeddings_initializer.maxval = 1e300;
      },
      "minval");
  refused(
      [](TableConfig& c) {
        c.embeddings_initializer.kind = InitializerKind::normal;
        c.embeddings_initializer.stddev = 1e300;
      },
      "stddev");
  // Each value fits, but a draw of mean + stddev·z (|z| up to 8.6) would not.
  refused(
      [](TableConfig& c) {
        c.embeddings_initializer.kind = InitializerKind::normal;
        c.embeddings_initializer.stddev = 1e38;
      },
      "stddev");
}

TEST(FloatRange, JsonInitializerOf1e300IsRefused) {
  expect_refused(
      [] {
        TableConfig::from_json(R"({"input_dim": 6, "output_dim": 4, "embeddings_initializer":
            {"class_name": "Constant", "config": {"value": 1e300}}})");
      },
      {"embeddings_initializer value", "float32"});
}

TEST(FloatRange, RegularizerAndConstraintValuesMustFitFloat32) {
  TableConfig config = base_config();
  config.embeddings_regularizer = Regularizer{0.0, 1e300};
  expect_refused([&] { config.validate(); }, {"embeddings_regularizer l2", "float32", "3.4028234663852886e+38"});
  config.embeddings_regularizer = Regularizer{1e39, 0.0};
  expect_refused([&] { config.validate(); }, {"embeddings_regularizer l1", "float32"});
  config.embeddings_regularizer.reset();
  config.embeddings_constraint = Constraint{ConstraintKind::max_norm, 1e300};
  expect_refused([&] { config.validate(); }, {"embeddings_constraint max_value", "float32"});
  expect_refused(
      [] {
        TableConfig::from_json(R"({"input_dim": 6, "output_dim": 4, "embeddings_regularizer":
            {"class_name": "L2", "config": {"l2": 1e300}}})");
      },
      {"embeddings_regularizer l2", "float32"});
}

TEST(FloatRange, ValuesThatFitAreStillAccepted) {
  TableConfig config = base_config();
  config.embeddings_initializer.kind = InitializerKind::constant;
  config.embeddings_initializer.value = 3e38;
  config.embeddings_regularizer = Regularizer{1e30, 1e30};
  config.embeddings_constraint = Constraint{ConstraintKind::max_norm, 3e38};
  EXPECT_NO_THROW(config.validate());
  const EmbeddingTable table(config);
  EXPECT_TRUE(all_finite(table.get_weights().values));
}

// ---- Item 7 (and 9): a step that would turn weights or state non-finite ------------------------

// Every built-in optimizer, with Adam both lazy and dense.
struct OptimizerCase {
  const char* name;
  std::function<OptimizerConfig()> make;
};

const std::vector<OptimizerCase>& optimizer_cases() {
  static const std::vector<OptimizerCase> cases = {
      {"sgd", [] { return OptimizerConfig::defaults(OptimizerKind::sgd); }},
      {"sgd momentum",
       [] {
         OptimizerConfig o = OptimizerConfig::defaults(OptimizerKind::sgd);
         o.momentum = 0.9;
         return o;
       }},
      {"adagrad", [] { return OptimizerConfig::defaults(OptimizerKind::adagrad); }},
      {"rowwise_adagrad", [] { return OptimizerConfig::defaults(OptimizerKind::rowwise_adagrad); }},
      {"adam", [] { return OptimizerConfig::defaults(OptimizerKind::adam); }},
      {"adam dense",
       [] {
         OptimizerConfig o = OptimizerConfig::defaults(OptimizerKind::adam);
         o.lazy = false;
         return o;
       }},
      {"ftrl", [] { return OptimizerConfig::defaults(OptimizerKind::ftrl); }},
  };
  return cases;
}

// Rows 1 and 3 hold ±1e30 and are penalised by L2 = 1e10: their regularized gradient, 2·l2·w, is
// infinite though every input is finite. The other rows (1e-3) stay finite, state included.
TableConfig overflowing_config(const OptimizerConfig& optimizer, NonFiniteGradients policy) {
  TableConfig config = base_config();
  config.optimizer = optimizer;
  config.nonfinite_gradients = policy;
  config.embeddings_regularizer = Regularizer{0.0, 1e10};
  config.embeddings_initializer.kind = InitializerKind::constant;
  config.embeddings_initializer.value = 0.0;
  return config;
}

void set_big_rows(EmbeddingTable& table) {
  std::vector<float> weights(kRows * kDim, 1e-3f);
  for (std::int64_t c = 0; c < kDim; ++c) {
    weights[1 * kDim + c] = 1e30f;
    weights[3 * kDim + c] = -1e30f;
  }
  table.set_weights(weights, std::vector<std::int64_t>{kRows, kDim});
}

const std::vector<std::int64_t> kStepIds = {0, 1, 3, 4};
std::vector<float> step_grad() { return std::vector<float>(kStepIds.size() * kDim, 0.25f); }

TEST(NonfiniteAfterUpdate, SkipLeavesTheOverflowingRowsAndTheirStateAsTheyWereAndCountsThem) {
  for (const OptimizerCase& optimizer : optimizer_cases()) {
    for (const Where where : kEverywhere) {
      SCOPED_TRACE(std::string(optimizer.name) + " on " + name_of(where));
      Placed placed(overflowing_config(optimizer.make(), NonFiniteGradients::skip), where);
      set_big_rows(*placed.table);
      const std::vector<float> before = placed.everything();
      placed.step(kStepIds, step_grad());
      const std::vector<float> after = placed.everything();
      ASSERT_TRUE(all_finite(after));
      EXPECT_EQ(placed.table->nonfinite_gradient_rows(), 2);
      // Rows 1 and 3 (weights and every state) are as before; row 0 moved.
      for (const std::int64_t row : {1, 3}) {
        for (std::int64_t c = 0; c < kDim; ++c) EXPECT_EQ(after[row * kDim + c], before[row * kDim + c]);
      }
      for (std::size_t k = kRows * kDim; k < before.size(); ++k) {
        const std::int64_t row = optimizer.make().kind == OptimizerKind::rowwise_adagrad
                                     ? static_cast<std::int64_t>(k - kRows * kDim)
                                     : static_cast<std::int64_t>((k - kRows * kDim) % (kRows * kDim)) / kDim;
        if (row == 1 || row == 3) {
          EXPECT_EQ(after[k], before[k]) << "state at " << k;
        }
      }
      EXPECT_NE(after[0], before[0]);
    }
  }
}

TEST(NonfiniteAfterUpdate, ErrorFailsTheStepNamingTheRowAndChangesNothing) {
  for (const OptimizerCase& optimizer : optimizer_cases()) {
    for (const Where where : {Where::cpu_fused, Where::sim}) {
      SCOPED_TRACE(std::string(optimizer.name) + " on " + name_of(where));
      Placed placed(overflowing_config(optimizer.make(), NonFiniteGradients::error), where);
      set_big_rows(*placed.table);
      const std::vector<float> before = placed.everything();
      const Error e = thrown_by([&] { placed.step(kStepIds, step_grad()); });
      EXPECT_EQ(e.status(), Status::invalid_argument) << e.what();
      EXPECT_NE(std::string(e.what()).find("id 1"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("not finite"), std::string::npos) << e.what();
      EXPECT_EQ(placed.everything(), before);
      // The step counter did not move either: a good step afterwards is step 1.
      placed.table->set_weights(std::vector<float>(kRows * kDim, 1e-3f), std::vector<std::int64_t>{kRows, kDim});
      EXPECT_NO_THROW(placed.step(kStepIds, step_grad()));
    }
  }
}

TEST(NonfiniteAfterUpdate, AdagradAccumulatorOverflowIsCountedNotFrozen) {
  for (const OptimizerKind kind : {OptimizerKind::adagrad, OptimizerKind::rowwise_adagrad}) {
    for (const Where where : kEverywhere) {
      SCOPED_TRACE(std::string(embedkit::to_string(kind)) + " on " + name_of(where));
      TableConfig config = base_config();
      config.optimizer = OptimizerConfig::defaults(kind);
      Placed placed(config, where);
      const std::vector<float> before = placed.everything();
      // 1e20² overflows float32: the accumulator would become infinite and the row freeze for good.
      std::vector<float> grad(2 * kDim, 1e20f);
      std::fill(grad.begin() + kDim, grad.end(), 0.5f);
      placed.step({2, 5}, grad);
      const std::vector<float> after = placed.everything();
      EXPECT_TRUE(all_finite(after));
      EXPECT_EQ(placed.table->nonfinite_gradient_rows(), 1);
      for (std::int64_t c = 0; c < kDim; ++c) EXPECT_EQ(after[2 * kDim + c], before[2 * kDim + c]);
      EXPECT_NE(after[5 * kDim], before[5 * kDim]);
    }
  }
}

// A custom (callback) optimizer's update is judged as a built-in one's: id 1's callback writes an
// infinite weight and id 3's a NaN into its state, from finite inputs. Unjudged, both passed under
// skip and error alike.
OptimizerConfig overflowing_custom() {
  return OptimizerConfig::custom(
      [](std::int64_t id, float* w, const float* g, float* state, int dim) {
        for (int c = 0; c < dim; ++c) w[c] -= 0.5f * g[c];
        state[0] += 1.0f;
        if (id == 1) w[2] = std::numeric_limits<float>::infinity();
        if (id == 3) state[1] = std::numeric_limits<float>::quiet_NaN();
      },
      2);
}

TEST(NonfiniteAfterUpdate, CustomUpdateThatTurnsARowNonFiniteIsSkippedOrRefused) {
  for (const Where where : {Where::cpu_fused, Where::cpu_unfused}) {
    SCOPED_TRACE(name_of(where));
    TableConfig config = base_config();
    config.optimizer = overflowing_custom();
    Placed skipping(config, where);
    const std::vector<float> before = skipping.everything();
    skipping.step(kStepIds, step_grad());
    const std::vector<float> after = skipping.everything();
    ASSERT_TRUE(all_finite(after));
    EXPECT_EQ(skipping.table->nonfinite_gradient_rows(), 2);
    const std::int64_t state_at = kRows * kDim;  // the state follows the weights, 2 floats a row
    for (const std::int64_t row : {1, 3}) {
      for (std::int64_t c = 0; c < kDim; ++c) EXPECT_EQ(after[row * kDim + c], before[row * kDim + c]) << row;
      for (std::int64_t k = 0; k < 2; ++k) EXPECT_EQ(after[state_at + row * 2 + k], before[state_at + row * 2 + k]);
    }
    for (const std::int64_t row : {0, 4}) {
      EXPECT_EQ(after[row * kDim], before[row * kDim] - 0.125f) << row;
      EXPECT_EQ(after[state_at + row * 2], 1.0f) << row;
    }

    config.nonfinite_gradients = NonFiniteGradients::error;
    Placed refusing(config, where);
    const std::vector<float> untouched = refusing.everything();
    const Error e = thrown_by([&] { refusing.step(kStepIds, step_grad()); });
    EXPECT_EQ(e.status(), Status::invalid_argument) << e.what();
    for (const char* word : {"id 1", "weights[2] = inf", "not finite", "'error'"}) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
    EXPECT_EQ(refusing.everything(), untouched);
    EXPECT_EQ(refusing.table->nonfinite_gradient_rows(), 0);

    // "apply" keeps what the callback wrote, as it keeps a built-in optimizer's non-finite rows.
    config.nonfinite_gradients = NonFiniteGradients::apply;
    Placed applying(config, where);
    applying.step(kStepIds, step_grad());
    EXPECT_TRUE(std::isinf(applying.everything()[1 * kDim + 2]));
  }
}

// ---- Norm constraints on rows whose Σ w² overflows float32 --------------------------------------

// Row 1 holds 1e20 in every column (Σ w² = 4e40, past float32) and row 2 a lone 3e38: MaxNorm(1)
// and UnitNorm scaled them by 1/∞ to zeros. Row 0 (0.25s) is an ordinary row: bit for bit
// w·min(n, 1)/(ε + n) or w/(ε + n) with n = sqrtf(Σ w²) summed in column order.
std::vector<float> norm_rows() {
  std::vector<float> weights(kRows * kDim, 0.25f);
  for (std::int64_t c = 0; c < kDim; ++c) {
    weights[1 * kDim + c] = 1e20f;
    weights[2 * kDim + c] = c == 0 ? 3e38f : 0.0f;
  }
  return weights;
}

void expect_norm_constrained(const std::vector<float>& got, ConstraintKind kind) {
  for (std::int64_t c = 0; c < kDim; ++c) {
    EXPECT_NEAR(got[1 * kDim + c], 0.5f, 1e-6f) << "row 1 column " << c;
    EXPECT_NEAR(got[2 * kDim + c], c == 0 ? 1.0f : 0.0f, 1e-6f) << "row 2 column " << c;
  }
  float squares = 0.0f;
  for (std::int64_t c = 0; c < kDim; ++c) squares += 0.25f * 0.25f;
  const float norm = std::sqrt(squares);
  const float expected = kind == ConstraintKind::unit_norm ? 0.25f / (1e-7f + norm) : 0.25f * (norm / (1e-7f + norm));
  EXPECT_EQ(got[0], expected);
}

TEST(NormConstraint, RowsWhoseSquaresOverflowAreScaledNotZeroed) {
  for (const ConstraintKind kind : {ConstraintKind::max_norm, ConstraintKind::unit_norm}) {
    for (const Where where : kEverywhere) {
      SCOPED_TRACE(std::string(kind == ConstraintKind::max_norm ? "max_norm" : "unit_norm") + " on " + name_of(where));
      TableConfig config = base_config();
      config.embeddings_constraint = Constraint{kind, 1.0};
      config.optimizer = OptimizerConfig::defaults(OptimizerKind::sgd);
      Placed placed(config, where);
      placed.table->set_weights(norm_rows(), std::vector<std::int64_t>{kRows, kDim});
      placed.table->apply_constraints();
      expect_norm_constrained(placed.table->get_weights().values, kind);
      // A train step applies the constraint to the rows it updates (a zero gradient: only the constraint moves them).
      placed.table->set_weights(norm_rows(), std::vector<std::int64_t>{kRows, kDim});
      placed.step({0, 1, 2}, std::vector<float>(3 * kDim, 0.0f));
      expect_norm_constrained(placed.table->get_weights().values, kind);
    }
  }
}

// The CUDA kernels' phases (a lane's share of Σ w², the group's sum, the constraint), replayed on the host.
TEST(NormConstraint, KernelPhasesScaleRowsWhoseSquaresOverflow) {
  using namespace embedkit::kernels;
  for (const ConstraintKind kind : {ConstraintKind::max_norm, ConstraintKind::unit_norm}) {
    SCOPED_TRACE(kind == ConstraintKind::max_norm ? "max_norm" : "unit_norm");
    std::vector<float> weights = norm_rows();
    const std::vector<std::int64_t> ids = {0, 1, 2};
    const std::vector<float> grads(ids.size() * kDim, 0.0f);
    const std::vector<std::uint8_t> skip(ids.size(), 0);
    embedkit::detail::StepScalars s;
    s.learning_rate = 0.01f;
    const ApplyArgs args{{weights.data(), nullptr, nullptr, kDim, OptimizerKind::sgd, s, kind, 1.0f},
                         ids.data(),
                         grads.data(),
                         skip.data(),
                         static_cast<std::int64_t>(ids.size()),
                         false,
                         0,
                         kRows,
                         embedkit::detail::Padding{}};
    for (const int lanes : {1, 2, 4}) {
      std::vector<float> replayed = weights;
      ApplyArgs at = args;
      at.step.weights = replayed.data();
      embedkit::testing::replay_apply(at, static_cast<std::int64_t>(ids.size()), lanes);
      SCOPED_TRACE(lanes);
      for (std::int64_t c = 0; c < kDim; ++c) {
        EXPECT_NEAR(replayed[1 * kDim + c], 0.5f, 1e-6f) << "row 1 column " << c;
        EXPECT_NEAR(replayed[2 * kDim + c], c == 0 ? 1.0f : 0.0f, 1e-6f) << "row 2 column " << c;
      }
    }
  }
}

// ---- Item 8: 0/0 in the optimizers, and denormal learning rates ---------------------------------

TEST(ZeroOverZero, SettingsThatMakeZeroOverZeroReachableAreRefusedNamingThePair) {
  OptimizerConfig adagrad = OptimizerConfig::defaults(OptimizerKind::adagrad);
  adagrad.epsilon = 0.0;
  adagrad.initial_accumulator_value = 0.0;
  expect_refused([&] { adagrad.validate(); }, {"epsilon 0", "initial_accumulator_value 0"});
  OptimizerConfig rowwise = OptimizerConfig::defaults(OptimizerKind::rowwise_adagrad);
  rowwise.epsilon = 0.0;
  expect_refused([&] { rowwise.validate(); }, {"epsilon 0", "initial_accumulator_value 0"});
  OptimizerConfig adam = OptimizerConfig::defaults(OptimizerKind::adam);
  adam.epsilon = 1e-50;  // 0 as a float32
  expect_refused([&] { adam.validate(); }, {"Adam", "epsilon 1e-50"});
  OptimizerConfig ftrl = OptimizerConfig::defaults(OptimizerKind::ftrl);
  ftrl.initial_accumulator_value = 0.0;
  expect_refused([&] { ftrl.validate(); }, {"initial_accumulator_value 0", "learning_rate_power -0.5"});
  expect_refused([] { OptimizerConfig::from_json(R"({"class_name": "Adam", "config": {"epsilon": 0}})"); },
                 {"epsilon 0"});
}

TEST(ZeroOverZero, AcceptedNeighboursOfThoseSettingsLeaveAZeroGradientRowUnchanged) {
  OptimizerConfig adagrad = OptimizerConfig::defaults(OptimizerKind::adagrad);
  adagrad.epsilon = 0.0;  // the accumulator starts at 0.1: no 0/0
  OptimizerConfig rowwise = OptimizerConfig::defaults(OptimizerKind::rowwise_adagrad);
  rowwise.epsilon = 0.0;
  rowwise.initial_accumulator_value = 0.5;
  OptimizerConfig ftrl = OptimizerConfig::defaults(OptimizerKind::ftrl);
  ftrl.initial_accumulator_value = 0.0;
  ftrl.l2_regularization_strength = 0.01;  // quadratic > 0 even at accumulator 0
  OptimizerConfig adam = OptimizerConfig::defaults(OptimizerKind::adam);
  adam.lazy = false;
  for (const OptimizerConfig& optimizer : {adagrad, rowwise, ftrl, adam}) {
    for (const Where where : kEverywhere) {
      SCOPED_TRACE(std::string(embedkit::to_string(optimizer.kind)) + " on " + name_of(where));
      TableConfig config = base_config();
      config.optimizer = optimizer;
      Placed placed(config, where);
      const std::vector<float> before = placed.table->get_weights().values;
      placed.step({0, 2}, std::vector<float>(2 * kDim, 0.0f));
      const std::vector<float> after = placed.table->get_weights().values;
      EXPECT_TRUE(all_finite(placed.everything()));
      EXPECT_EQ(placed.table->nonfinite_gradient_rows(), 0);
      if (optimizer.kind != OptimizerKind::ftrl) {
        EXPECT_EQ(after, before);  // FTRL moves w to its proximal point
      }
    }
  }
}

TEST(ZeroOverZero, DenormalLearningRateIsFlushedToZero) {
  for (const Where where : kEverywhere) {
    SCOPED_TRACE(name_of(where));
    TableConfig config = base_config();
    config.optimizer.learning_rate = 1e-44;  // a float32 denormal
    Placed placed(config, where);
    const std::vector<float> before = placed.table->get_weights().values;
    // Were the denormal used, lr·g = 1.4e-44 · 3e38 = 4.2e-6 would move every w of about 0.05 (an
    // ulp of which is 3.7e-9).
    placed.step({0, 2}, std::vector<float>(2 * kDim, 3e38f));
    EXPECT_EQ(placed.table->get_weights().values, before);
  }
}

TEST(ZeroOverZero, FtrlRefusesALearningRateBelowTheSmallestNormalFloat32) {
  OptimizerConfig ftrl = OptimizerConfig::defaults(OptimizerKind::ftrl);
  ftrl.learning_rate = 1e-44;
  expect_refused([&] { ftrl.validate(); }, {"learning_rate", "1e-44", "1.1754943508222875e-38"});
  for (const Where where : {Where::cpu_fused, Where::sim}) {
    SCOPED_TRACE(name_of(where));
    TableConfig config = base_config();
    config.optimizer = OptimizerConfig::defaults(OptimizerKind::ftrl);
    Placed placed(config, where);
    // A schedule that drives FTRL's rate to 0 fails at that call, and the rate stays.
    expect_refused([&] { placed.table->set_learning_rate(1e-44); }, {"learning_rate", "1e-44"});
    expect_refused([&] { placed.table->set_learning_rate(0.0); }, {"learning_rate", "0"});
    EXPECT_EQ(placed.table->optimizer().learning_rate, 0.001);
    placed.step({0, 2}, std::vector<float>(2 * kDim, 0.0f));
    EXPECT_TRUE(all_finite(placed.everything()));
  }
}

TEST(ZeroOverZero, CAbiSetLearningRateRefusesADenormalFtrlRate) {
  ek_table* table = nullptr;
  ASSERT_EQ(ek_table_create(R"({"input_dim": 6, "output_dim": 4, "optimizer": "ftrl", "placement": "cpu"})", &table),
            EK_OK)
      << ek_last_error();
  EXPECT_EQ(ek_set_learning_rate(table, 1e-44), EK_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ek_last_error()).find("1e-44"), std::string::npos) << ek_last_error();
  EXPECT_EQ(ek_set_learning_rate(table, 0.01), EK_OK);
  ek_table_destroy(table);
}

}  // namespace
