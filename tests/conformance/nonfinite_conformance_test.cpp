// Gradients holding a NaN or an infinity on every backend present, under each nonfinite_gradients
// policy and on each path a step takes: the fused step (train_step and train_step_pooled of a
// sparse optimizer), and the unfused ones (apply of a sparse gradient, dense Adam, the "error"
// policy, rows too wide to fuse). The bad value sits in the first, a middle or the last column, at
// dims below, at and above a vector and past the fused step's widest row. Skipped rows are counted
// as the CPU counts them, and the table is the CPU's bit for bit (NaN for NaN under "apply");
// "error" names the CPU's row and changes nothing.
#include "tests/conformance/optimizer_cases.hpp"

#include <cstring>
#include <limits>

namespace {

using namespace embedkit::testing::conformance;
namespace reference = embedkit::testing::reference;
using embedkit::EmbeddingTable;
using embedkit::NonFiniteGradients;
using embedkit::OptimizerKind;
using embedkit::TableConfig;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
const std::int64_t kNonFiniteDims[] = {1, 5, 32, 33, 128, 257};
// Ids of the batch whose gradient is poisoned (neither padding nor the hot row, both in range).
constexpr std::int64_t kPoisoned[] = {2, 40};

const char* policy_name(NonFiniteGradients policy) { return embedkit::to_string(policy); }

// Whether two float arrays are equal bit for bit, any NaN matching any NaN (its payload is the
// hardware's, not the contract's).
::testing::AssertionResult same_values(const std::vector<float>& got, const std::vector<float>& expected) {
  if (got.size() != expected.size()) return ::testing::AssertionFailure() << got.size() << " values";
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]) && std::isnan(expected[i])) continue;
    if (std::memcmp(&got[i], &expected[i], sizeof(float)) != 0) {
      return ::testing::AssertionFailure() << "element " << i << ": " << got[i] << ", expected " << expected[i];
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult same_values(const TableState& got, const TableState& expected) {
  if (got.step != expected.step) return ::testing::AssertionFailure() << "step " << got.step;
  if (auto weights = same_values(got.weights, expected.weights); !weights) return weights << " (weights)";
  for (std::size_t s = 0; s < got.slots.size() && s < expected.slots.size(); ++s) {
    if (auto slot = same_values(got.slots[s], expected.slots[s]); !slot) return slot << " (state array " << s << ")";
  }
  return ::testing::AssertionSuccess();
}

// `grad` (positions × dim) with `bad` in column `column` of one position of each poisoned id.
std::vector<float> poisoned(std::vector<float> grad, const std::vector<std::int64_t>& ids, std::int64_t dim,
                            std::int64_t column, float bad) {
  for (const std::int64_t id : kPoisoned) {
    for (std::size_t p = 0; p < ids.size(); ++p) {
      if (ids[p] == id) {
        grad[p * static_cast<std::size_t>(dim) + static_cast<std::size_t>(column)] = bad;
        break;
      }
    }
  }
  return grad;
}

class NonFiniteConformance : public OnBackend {
 protected:
  // Runs `step` on the table under test and on the CPU's, then compares what they did: the same
  // error text (or none), the same rows counted, the same state.
  template <class Step>
  void expect_like_cpu(EmbeddingTable& table, EmbeddingTable& cpu, const Step& step, NonFiniteGradients policy,
                       const std::string& what) {
    const TableState before = state_of(table);
    const std::string got_error = error_of([&] { step(table); });
    const std::string cpu_error = error_of([&] { step(cpu); });
    EXPECT_EQ(got_error, cpu_error) << what;
    EXPECT_EQ(table.nonfinite_gradient_rows(), cpu.nonfinite_gradient_rows()) << what;
    EXPECT_TRUE(same_values(state_of(table), state_of(cpu))) << what;
    switch (policy) {
      case NonFiniteGradients::skip:
        EXPECT_EQ(got_error, "") << what;
        EXPECT_EQ(cpu.nonfinite_gradient_rows(), std::size(kPoisoned)) << what;
        for (const std::int64_t id : kPoisoned) {
          if (!table.config().optimizer.lazy) continue;  // dense Adam moves a skipped row as an untouched one
          EXPECT_TRUE(
              same_bits(table.row(id), std::vector<float>(before.weights.begin() + id * table.output_dim(),
                                                          before.weights.begin() + (id + 1) * table.output_dim())))
              << what << ": row " << id << " was not skipped";
        }
        break;
      case NonFiniteGradients::error:
        EXPECT_NE(got_error.find("id " + std::to_string(kPoisoned[0])), std::string::npos) << what << ": " << got_error;
        EXPECT_TRUE(same_bits(state_of(table), before)) << what;
        break;
      case NonFiniteGradients::apply: EXPECT_EQ(got_error, "") << what; break;
    }
  }

 private:
  template <class Call>
  static std::string error_of(const Call& call) {
    try {
      call();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
};

// Every policy, fused where the backend fuses the dim (sgd, Adam, row-wise Adagrad) and unfused
// (dense Adam; "error", which must name the row before anything changes).
TEST_P(NonFiniteConformance, TrainStepFusedAndUnfused) {
  for (const std::int64_t dim : kNonFiniteDims) {
    for (const float bad : {kNaN, kInf, -kInf}) {
      for (const std::int64_t column : {std::int64_t{0}, dim / 2, dim - 1}) {
        for (const Optimizer& optimizer : {kOptimizers[0], kOptimizers[4], kOptimizers[5]}) {
          for (const bool dense : {false, true}) {
            if (dense && optimizer.kind != OptimizerKind::adam) continue;
            for (const auto policy : {NonFiniteGradients::skip, NonFiniteGradients::apply, NonFiniteGradients::error}) {
              TableConfig config = optimizer_config(optimizer, dim);
              config.optimizer.lazy = !dense;
              config.nonfinite_gradients = policy;
              auto table = on_backend(config);
              auto cpu = on_cpu(config);
              auto ids = random_ids<std::int64_t>(200, static_cast<std::uint64_t>(dim) + 5);
              ids[10] = ids[150] = kPoisoned[0];  // each poisoned id present, one of them twice
              ids[100] = kPoisoned[1];
              const auto grad =
                  poisoned(random_values(ids.size() * static_cast<std::size_t>(dim), 6), ids, dim, column, bad);
              const std::string what = std::string(optimizer.name) + (dense ? " dense" : "") + ", " +
                                       policy_name(policy) + ", dim " + std::to_string(dim) + ", " +
                                       std::to_string(bad) + " in column " + std::to_string(column);
              const auto step = [&](EmbeddingTable& t) { t.train_step(IndexTensor(ids), grad); };
              expect_like_cpu(table, cpu, step, policy, what);
              // The next finite step is taken as the CPU takes it.
              if (policy != NonFiniteGradients::apply) {
                const auto clean = random_values(ids.size() * static_cast<std::size_t>(dim), 7);
                table.train_step(IndexTensor(ids), clean);
                cpu.train_step(IndexTensor(ids), clean);
                EXPECT_TRUE(same_bits(state_of(table), state_of(cpu))) << what << ", the next step";
              }
            }
          }
        }
      }
    }
  }
}

// apply of a sparse gradient: the unfused step (the non-finite scan, then the optimizer kernel).
TEST_P(NonFiniteConformance, ApplyOfASparseGradient) {
  for (const std::int64_t dim : kNonFiniteDims) {
    for (const float bad : {kNaN, kInf, -kInf}) {
      for (const std::int64_t column : {std::int64_t{0}, dim / 2, dim - 1}) {
        for (const auto policy : {NonFiniteGradients::skip, NonFiniteGradients::apply, NonFiniteGradients::error}) {
          TableConfig config = optimizer_config(kOptimizers[3], dim);  // adagrad
          config.nonfinite_gradients = policy;
          auto table = on_backend(config);
          auto cpu = on_cpu(config);
          SparseGrad grad;
          grad.dim = dim;
          grad.unique_ids = {0, kPoisoned[0], kHot, kPoisoned[1], kRows - 1};
          grad.rows = random_values(grad.unique_ids.size() * static_cast<std::size_t>(dim), 8);
          grad.rows[1 * static_cast<std::size_t>(dim) + static_cast<std::size_t>(column)] = bad;
          grad.rows[3 * static_cast<std::size_t>(dim) + static_cast<std::size_t>(column)] = bad;
          const std::string what = std::string(policy_name(policy)) + ", dim " + std::to_string(dim) + ", " +
                                   std::to_string(bad) + " in column " + std::to_string(column);
          expect_like_cpu(
              table, cpu, [&](EmbeddingTable& t) { t.apply(grad); }, policy, what);
        }
      }
    }
  }
}

// A pooled step's bag gradient with a bad value: every entry of the bag receives it.
TEST_P(NonFiniteConformance, TrainStepPooled) {
  for (const std::int64_t dim : {std::int64_t{5}, std::int64_t{33}, std::int64_t{257}}) {
    for (const auto mode : {PoolingMode::sum, PoolingMode::mean}) {
      for (const auto policy : {NonFiniteGradients::skip, NonFiniteGradients::error}) {
        TableConfig config = optimizer_config(kOptimizers[1], dim);  // momentum
        config.nonfinite_gradients = policy;
        auto table = on_backend(config);
        auto cpu = on_cpu(config);
        // Bag 1 holds the poisoned ids (and nothing else), the other bags random ids.
        std::vector<std::int64_t> ids = random_ids<std::int64_t>(30, 9);
        for (auto& id : ids) {
          if (id == kPoisoned[0] || id == kPoisoned[1]) id = kHot;
        }
        ids.insert(ids.begin() + 10, {kPoisoned[0], kPoisoned[1], kPoisoned[0]});
        const std::vector<std::int64_t> offsets = {0, 10, 13, 33};
        const auto weights = random_values(ids.size(), 10, 0.5f, 2.0f);
        auto grad_bags = random_values(3 * static_cast<std::size_t>(dim), 11);
        grad_bags[static_cast<std::size_t>(dim) + static_cast<std::size_t>(dim / 2)] = kNaN;
        const std::string what =
            std::string(policy_name(policy)) + ", " + to_string(mode) + ", dim " + std::to_string(dim);
        expect_like_cpu(
            table, cpu,
            [&](EmbeddingTable& t) { t.train_step_pooled(IndexTensor(ids), offsets, mode, weights, grad_bags); },
            policy, what);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(On, NonFiniteConformance, ::testing::ValuesIn(present_backends()), backend_name);

}  // namespace
