// The "optimizer" config key: Keras's serialized optimizers (pasted from Keras 3.15.1's
// keras.optimizers.serialize), lower-case names, defaults, and every refusal.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

using embedkit::Error;
using embedkit::OptimizerConfig;
using embedkit::OptimizerKind;
using embedkit::Status;

constexpr const char* kKerasSgdNesterov =
    R"({"module": "keras.optimizers", "class_name": "SGD", "config": {"name": "sgd_1", "learning_rate": 0.10000000149011612, "weight_decay": null, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "momentum": 0.9, "nesterov": true}, "registered_name": null})";
constexpr const char* kKerasAdagrad =
    R"({"module": "keras.optimizers", "class_name": "Adagrad", "config": {"name": "adagrad", "learning_rate": 0.0010000000474974513, "weight_decay": null, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "initial_accumulator_value": 0.1, "epsilon": 1e-07}, "registered_name": null})";
constexpr const char* kKerasAdamDecay =
    R"({"module": "keras.optimizers", "class_name": "Adam", "config": {"name": "adam_1", "learning_rate": 0.0010000000474974513, "weight_decay": 0.004, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": false}, "registered_name": null})";
constexpr const char* kKerasFtrl =
    R"({"module": "keras.optimizers", "class_name": "Ftrl", "config": {"name": "ftrl", "learning_rate": 0.0010000000474974513, "weight_decay": null, "clipnorm": null, "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99, "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null, "learning_rate_power": -0.5, "initial_accumulator_value": 0.1, "l1_regularization_strength": 0.0, "l2_regularization_strength": 0.0, "l2_shrinkage_regularization_strength": 0.0, "beta": 0.0}, "registered_name": null})";

void expect_rejected(const std::string& json, Status status, const std::string& text) {
  try {
    OptimizerConfig::from_json(json);
    ADD_FAILURE() << "accepted: " << json;
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), status) << e.what();
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

std::string adam_with(const std::string& key, const std::string& value) {
  return R"({"class_name": "Adam", "config": {")" + key + R"(": )" + value + "}}";
}

TEST(OptimizerConfig, KerasSerializedOptimizers) {
  const auto sgd = OptimizerConfig::from_json(kKerasSgdNesterov);
  EXPECT_EQ(sgd.kind, OptimizerKind::sgd);
  EXPECT_NEAR(sgd.learning_rate, 0.1, 1e-8);
  EXPECT_DOUBLE_EQ(sgd.momentum, 0.9);
  EXPECT_TRUE(sgd.nesterov);
  const auto adagrad = OptimizerConfig::from_json(kKerasAdagrad);
  EXPECT_EQ(adagrad.kind, OptimizerKind::adagrad);
  EXPECT_DOUBLE_EQ(adagrad.initial_accumulator_value, 0.1);
  EXPECT_DOUBLE_EQ(adagrad.epsilon, 1e-7);
  const auto adam = OptimizerConfig::from_json(kKerasAdamDecay);
  EXPECT_EQ(adam.kind, OptimizerKind::adam);
  EXPECT_DOUBLE_EQ(*adam.weight_decay, 0.004);
  EXPECT_TRUE(adam.lazy);
  const auto ftrl = OptimizerConfig::from_json(kKerasFtrl);
  EXPECT_EQ(ftrl.kind, OptimizerKind::ftrl);
  EXPECT_DOUBLE_EQ(ftrl.learning_rate_power, -0.5);
}

TEST(OptimizerConfig, NamesTakeKerasDefaults) {
  EXPECT_DOUBLE_EQ(OptimizerConfig::from_json(R"("sgd")").learning_rate, 0.01);
  EXPECT_DOUBLE_EQ(OptimizerConfig::from_json(R"("adagrad")").learning_rate, 0.001);
  const auto rowwise = OptimizerConfig::from_json(R"("rowwise_adagrad")");
  EXPECT_DOUBLE_EQ(rowwise.learning_rate, 0.01);
  EXPECT_DOUBLE_EQ(rowwise.epsilon, 1e-8);
  EXPECT_DOUBLE_EQ(rowwise.initial_accumulator_value, 0.0);
  const auto adam = OptimizerConfig::from_json(R"("adam")");
  EXPECT_DOUBLE_EQ(adam.beta_1, 0.9);
  EXPECT_DOUBLE_EQ(adam.beta_2, 0.999);
  EXPECT_DOUBLE_EQ(adam.epsilon, 1e-7);
  EXPECT_EQ(OptimizerConfig::from_json(R"("Ftrl")").kind, OptimizerKind::ftrl);
  EXPECT_FALSE(OptimizerConfig::from_json(adam_with("lazy", "false")).lazy);
}

// `lazy` is every built-in's key: written by to_json, read back, false only where asked; a custom
// optimizer (called per touched id) cannot step untouched rows and refuses it.
TEST(OptimizerConfig, LazyIsEveryBuiltInsKey) {
  for (const char* name : {"SGD", "Adagrad", "RowWiseAdagrad", "Adam", "Ftrl"}) {
    const std::string json = std::string(R"({"class_name": ")") + name + R"(", "config": {"lazy": false}})";
    const OptimizerConfig config = OptimizerConfig::from_json(json);
    EXPECT_FALSE(config.lazy) << name;
    EXPECT_FALSE(OptimizerConfig::from_json(config.to_json()).lazy) << name;
    EXPECT_NE(config.to_json().find(R"("lazy":false)"), std::string::npos) << config.to_json();
    const std::string lazy = std::string(R"({"class_name": ")") + name + R"(", "config": {}})";
    EXPECT_TRUE(OptimizerConfig::from_json(lazy).lazy) << name;
    EXPECT_NE(OptimizerConfig::from_json(lazy).to_json().find(R"("lazy":true)"), std::string::npos) << name;
    expect_rejected(std::string(R"({"class_name": ")") + name + R"(", "config": {"lazy": "no"}})",
                    Status::invalid_argument, "optimizer lazy must be a boolean");
  }
  OptimizerConfig custom = OptimizerConfig::custom([](std::int64_t, float*, const float*, float*, int) {}, 0);
  custom.lazy = false;
  try {
    custom.validate();
    FAIL() << "a custom optimizer accepted lazy = false";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("custom optimizer updates touched rows only: lazy must be true"),
              std::string::npos)
        << e.what();
  }
}

TEST(OptimizerConfig, UnimplementedKerasOptionsAreUnsupported) {
  expect_rejected(adam_with("clipnorm", "1.0"), Status::unsupported, "optimizer clipnorm = 1.0 is not supported");
  expect_rejected(adam_with("clipvalue", "0.5"), Status::unsupported, "clipvalue");
  expect_rejected(adam_with("global_clipnorm", "1"), Status::unsupported, "global_clipnorm");
  expect_rejected(adam_with("use_ema", "true"), Status::unsupported, "use_ema");
  expect_rejected(adam_with("amsgrad", "true"), Status::unsupported, "amsgrad");
  expect_rejected(adam_with("loss_scale_factor", "128"), Status::unsupported, "loss_scale_factor");
  expect_rejected(adam_with("gradient_accumulation_steps", "4"), Status::unsupported, "gradient_accumulation_steps");
  expect_rejected(adam_with("learning_rate", R"({"class_name": "ExponentialDecay", "config": {}})"),
                  Status::unsupported, "set_learning_rate");
}

TEST(OptimizerConfig, BadValuesAreNamed) {
  expect_rejected(R"("rmsprop")", Status::invalid_argument, "unknown optimizer 'rmsprop'");
  expect_rejected(R"(7)", Status::invalid_argument, "optimizer must be a name or a Keras optimizer object");
  expect_rejected(R"({"config": {}})", Status::invalid_argument, "optimizer object has no 'class_name'");
  expect_rejected(adam_with("momentum", "0.9"), Status::invalid_argument,
                  "unknown key 'momentum' in optimizer config of Adam");
  expect_rejected(adam_with("beta_1", "1.0"), Status::invalid_argument, "beta_1 must be in [0, 1) as a float32, got 1");
  expect_rejected(adam_with("learning_rate", "-0.1"), Status::invalid_argument,
                  "learning_rate must be a finite number >= 0");
  expect_rejected(adam_with("learning_rate", "\"fast\""), Status::invalid_argument,
                  "optimizer learning_rate must be a finite number");
  expect_rejected(adam_with("lazy", "1"), Status::invalid_argument, "optimizer lazy must be a boolean");
  expect_rejected(R"({"class_name": "SGD", "config": {"momentum": 1.5}})", Status::invalid_argument,
                  "momentum must be in [0, 1]");
}

// A kind cast from a foreign integer is no optimizer: validation names it, and the names and
// backends asked about it answer as for none (not as for some other optimizer).
TEST(OptimizerConfig, AKindOutsideTheEnumIsRefused) {
  OptimizerConfig config = OptimizerConfig::defaults(OptimizerKind::sgd);
  config.kind = static_cast<OptimizerKind>(17);
  try {
    config.validate();
    FAIL() << "validate accepted kind 17";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::invalid_argument);
    EXPECT_EQ(std::string(e.what()), "optimizer kind 17 is not one of embedkit's");
  }
  EXPECT_FALSE(config.has_cuda_kernel());
  EXPECT_STREQ(embedkit::to_string(config.kind), "custom");
}

TEST(OptimizerConfig, RoundTripsAndTableConfigKey) {
  for (const char* json : {kKerasSgdNesterov, kKerasAdagrad, kKerasAdamDecay, kKerasFtrl}) {
    const auto config = OptimizerConfig::from_json(json);
    EXPECT_EQ(OptimizerConfig::from_json(config.to_json()).to_json(), config.to_json());
  }
  const auto table = embedkit::TableConfig::from_json(
      std::string(R"({"input_dim": 4, "output_dim": 2, "nonfinite_gradients": "error", "optimizer": )") +
      kKerasAdamDecay + "}");
  EXPECT_EQ(table.optimizer.kind, OptimizerKind::adam);
  EXPECT_EQ(table.nonfinite_gradients, embedkit::NonFiniteGradients::error);
  EXPECT_EQ(embedkit::TableConfig::from_json(table.to_json()).to_json(), table.to_json());
  EXPECT_THROW(embedkit::TableConfig::from_json(R"({"input_dim": 4, "output_dim": 2, "nonfinite_gradients": "drop"})"),
               Error);
}

}  // namespace
