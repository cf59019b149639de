// Keras's own Embedding configs, pasted from real layers, and every Keras key: accepted,
// rejected with Keras's words, or refused as unsupported.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace {

using embedkit::ConstraintKind;
using embedkit::DType;
using embedkit::Error;
using embedkit::InitializerKind;
using embedkit::OptimizerConfig;
using embedkit::Rounding;
using embedkit::Status;
using embedkit::TableConfig;

// keras.layers.Embedding(1000, 64).get_config(), Keras 3.15.1 (JAX backend), json.dumps.
constexpr const char* kKeras3Default =
    R"({"name": "embedding", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}, "input_dim": 1000, "output_dim": 64, "embeddings_initializer": {"module": "keras.initializers", "class_name": "RandomUniform", "config": {"seed": null, "minval": -0.05, "maxval": 0.05}, "registered_name": null}, "embeddings_regularizer": null, "activity_regularizer": null, "embeddings_constraint": null, "mask_zero": false, "quantization_config": null})";

// Embedding(5001, 16, mask_zero=True, name="words", embeddings_initializer=TruncatedNormal(stddev=0.02,
// seed=3), embeddings_regularizer=L2(1e-4), embeddings_constraint=MaxNorm(3.0, axis=1)), Keras 3.15.1.
constexpr const char* kKeras3Full =
    R"({"name": "words", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}, "input_dim": 5001, "output_dim": 16, "embeddings_initializer": {"module": "keras.initializers", "class_name": "TruncatedNormal", "config": {"seed": 3, "mean": 0.0, "stddev": 0.02}, "registered_name": null}, "embeddings_regularizer": {"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.0001}, "registered_name": null}, "activity_regularizer": null, "embeddings_constraint": {"module": "keras.constraints", "class_name": "MaxNorm", "config": {"max_value": 3.0, "axis": 1}, "registered_name": null}, "mask_zero": true, "quantization_config": null})";

// Embedding(10, 4, embeddings_constraint=UnitNorm(axis=1), embeddings_regularizer=L1L2(l1=0.001, l2=0.002),
// embeddings_initializer=VarianceScaling(scale=0.5, mode="fan_out", distribution="uniform", seed=5)), Keras 3.15.1.
constexpr const char* kKeras3VarianceScaling =
    R"({"name": "embedding_1", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}, "input_dim": 10, "output_dim": 4, "embeddings_initializer": {"module": "keras.initializers", "class_name": "VarianceScaling", "config": {"seed": 5, "scale": 0.5, "mode": "fan_out", "distribution": "uniform", "input_axes": null, "output_axes": null}, "registered_name": null}, "embeddings_regularizer": {"module": "keras.regularizers", "class_name": "L1L2", "config": {"l1": 0.001, "l2": 0.002}, "registered_name": null}, "activity_regularizer": null, "embeddings_constraint": {"module": "keras.constraints", "class_name": "UnitNorm", "config": {"axis": 1}, "registered_name": null}, "mask_zero": false, "quantization_config": null})";

// Embedding(10, 4, lora_rank=2), Keras 3.15.1: LoRA is not implemented.
constexpr const char* kKeras3Lora =
    R"({"name": "embedding_2", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}, "input_dim": 10, "output_dim": 4, "embeddings_initializer": {"module": "keras.initializers", "class_name": "RandomUniform", "config": {"seed": null, "minval": -0.05, "maxval": 0.05}, "registered_name": null}, "embeddings_regularizer": null, "activity_regularizer": null, "embeddings_constraint": null, "mask_zero": false, "quantization_config": null, "lora_rank": 2, "lora_alpha": 2})";

// tf_keras.layers.Embedding(1000, 64).get_config(), tf-keras 2.21.0.
constexpr const char* kTfKerasDefault =
    R"({"name": "embedding", "trainable": true, "dtype": "float32", "batch_input_shape": [null, null], "input_dim": 1000, "output_dim": 64, "embeddings_initializer": {"module": "keras.initializers", "class_name": "RandomUniform", "config": {"minval": -0.05, "maxval": 0.05, "seed": null}, "registered_name": null}, "embeddings_regularizer": null, "activity_regularizer": null, "embeddings_constraint": null, "mask_zero": false, "input_length": null})";

// Embedding(5001, 16, mask_zero=True, name="words", input_length=20, ...same as kKeras3Full), tf-keras 2.21.0.
constexpr const char* kTfKerasFull =
    R"({"name": "words", "trainable": true, "dtype": "float32", "batch_input_shape": [null, 20], "input_dim": 5001, "output_dim": 16, "embeddings_initializer": {"module": "keras.initializers", "class_name": "TruncatedNormal", "config": {"mean": 0.0, "stddev": 0.02, "seed": 3}, "registered_name": null}, "embeddings_regularizer": {"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 9.999999747378752e-05}, "registered_name": null}, "activity_regularizer": null, "embeddings_constraint": {"module": "keras.constraints", "class_name": "MaxNorm", "config": {"max_value": 3.0, "axis": 1}, "registered_name": null}, "mask_zero": true, "input_length": 20})";

// Embedding(10, 4, embeddings_initializer="glorot_uniform", embeddings_regularizer="l1",
// embeddings_constraint="non_neg"), tf-keras 2.21.0.
constexpr const char* kTfKerasNames =
    R"({"name": "embedding_1", "trainable": true, "dtype": "float32", "batch_input_shape": [null, null], "input_dim": 10, "output_dim": 4, "embeddings_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, "registered_name": null}, "embeddings_regularizer": {"module": "keras.regularizers", "class_name": "L1", "config": {"l1": 0.009999999776482582}, "registered_name": null}, "activity_regularizer": null, "embeddings_constraint": {"module": "keras.constraints", "class_name": "NonNeg", "config": {}, "registered_name": null}, "mask_zero": false, "input_length": null})";

void expect_rejected(const std::string& json, Status status, const std::string& text) {
  try {
    TableConfig::from_json(json);
    ADD_FAILURE() << "accepted: " << json;
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), status) << json << " -> " << e.what();
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << json << " -> " << e.what();
  }
}

// A minimal config with one extra member, `key: value`.
std::string with(const std::string& key, const std::string& value) {
  return R"({"input_dim": 10, "output_dim": 4, ")" + key + R"(": )" + value + "}";
}

TEST(KerasConfig, Keras3DefaultLayer) {
  const TableConfig config = TableConfig::from_json(kKeras3Default);
  EXPECT_EQ(config.name, "embedding");
  EXPECT_EQ(config.input_dim, 1000);
  EXPECT_EQ(config.output_dim, 64);
  EXPECT_EQ(config.embeddings_initializer.kind, InitializerKind::uniform);
  EXPECT_DOUBLE_EQ(config.embeddings_initializer.minval, -0.05);
  EXPECT_FALSE(config.embeddings_initializer.seed);
  EXPECT_FALSE(config.embeddings_regularizer);
  EXPECT_EQ(config.embeddings_constraint.kind, ConstraintKind::none);
  EXPECT_FALSE(config.mask_zero);
  EXPECT_TRUE(config.trainable);
}

TEST(KerasConfig, Keras3AndTfKerasFullLayersAgree) {
  for (const char* json : {kKeras3Full, kTfKerasFull}) {
    const TableConfig config = TableConfig::from_json(json);
    EXPECT_EQ(config.name, "words");
    EXPECT_EQ(config.input_dim, 5001);
    EXPECT_EQ(config.output_dim, 16);
    EXPECT_TRUE(config.mask_zero);
    EXPECT_EQ(config.embeddings_initializer.kind, InitializerKind::truncated_normal);
    EXPECT_DOUBLE_EQ(config.embeddings_initializer.stddev, 0.02);
    EXPECT_EQ(*config.embeddings_initializer.seed, 3u);
    ASSERT_TRUE(config.embeddings_regularizer);
    EXPECT_NEAR(config.embeddings_regularizer->l2, 1e-4, 1e-11);
    EXPECT_EQ(config.embeddings_regularizer->l1, 0.0);
    EXPECT_EQ(config.embeddings_constraint.kind, ConstraintKind::max_norm);
    EXPECT_DOUBLE_EQ(config.embeddings_constraint.max_value, 3.0);
  }
  // The initializer's seed decides the matrix, so both configs build the same table.
  EXPECT_EQ(embedkit::EmbeddingTable(TableConfig::from_json(kKeras3Full)).get_weights().values,
            embedkit::EmbeddingTable(TableConfig::from_json(kTfKerasFull)).get_weights().values);
}

TEST(KerasConfig, VarianceScalingL1L2UnitNorm) {
  const TableConfig config = TableConfig::from_json(kKeras3VarianceScaling);
  const auto& init = config.embeddings_initializer;
  EXPECT_EQ(init.kind, InitializerKind::variance_scaling);
  EXPECT_DOUBLE_EQ(init.scale, 0.5);
  EXPECT_EQ(init.mode, embedkit::FanMode::fan_out);
  EXPECT_EQ(init.distribution, embedkit::ScalingDistribution::uniform);
  EXPECT_DOUBLE_EQ(config.embeddings_regularizer->l1, 0.001);
  EXPECT_DOUBLE_EQ(config.embeddings_regularizer->l2, 0.002);
  EXPECT_EQ(config.embeddings_constraint.kind, ConstraintKind::unit_norm);
  // fan_out = output_dim = 4: limit sqrt(3 * 0.5 / 4).
  const auto weights = embedkit::EmbeddingTable(config).get_weights().values;
  for (const float w : weights) EXPECT_LE(std::abs(w), std::sqrt(3.0 * 0.5 / 4.0));
}

TEST(KerasConfig, TfKerasDefaultsAndNames) {
  const TableConfig config = TableConfig::from_json(kTfKerasDefault);
  EXPECT_EQ(config.input_dim, 1000);
  const TableConfig names = TableConfig::from_json(kTfKerasNames);
  EXPECT_EQ(names.embeddings_initializer.kind, InitializerKind::variance_scaling);
  EXPECT_NEAR(names.embeddings_regularizer->l1, 0.01, 1e-9);
  EXPECT_EQ(names.embeddings_constraint.kind, ConstraintKind::non_neg);
}

TEST(KerasConfig, LoraIsUnsupportedAndNamed) {
  expect_rejected(kKeras3Lora, Status::unsupported, "lora_rank = 2 is not supported by embedkit");
}

TEST(KerasConfig, OptionsAcceptedAtTheirKerasDefaults) {
  for (const auto& [key, value] : {std::pair{"sparse", "false"},
                                   {"sparse", "null"},
                                   {"lora_rank", "null"},
                                   {"lora_alpha", "null"},
                                   {"quantization_config", "null"},
                                   {"activity_regularizer", "null"},
                                   {"input_length", "null"},
                                   {"input_length", "20"},
                                   {"batch_input_shape", "[null, 20]"},
                                   {"dtype", "\"float32\""},
                                   {"dtype", "null"},
                                   {"embeddings_regularizer", "null"},
                                   {"embeddings_constraint", "null"}}) {
    EXPECT_NO_THROW(TableConfig::from_json(with(key, value))) << key << ": " << value;
  }
}

TEST(KerasConfig, UnimplementedOptionsAreUnsupported) {
  expect_rejected(with("sparse", "true"), Status::unsupported, "sparse = true is not supported");
  expect_rejected(with("quantization_config", R"({"mode": "int8"})"), Status::unsupported, "quantization_config");
  expect_rejected(with("activity_regularizer", R"({"class_name": "L2", "config": {"l2": 0.01}})"), Status::unsupported,
                  "activity_regularizer");
  expect_rejected(with("dtype", "\"float64\""), Status::unsupported, "dtype 'float64' is not supported");
  expect_rejected(with("dtype", "\"int8\""), Status::unsupported, "dtype 'int8' is not supported");
  expect_rejected(
      with("dtype",
           R"({"module": "keras", "class_name": "QuantizedDTypePolicy", "config": {"name": "int8_from_float32"}})"),
      Status::unsupported, "QuantizedDTypePolicy");
  expect_rejected(with("embeddings_initializer",
                       R"({"class_name": "Orthogonal", "config": {"seed": null, "gain": 1.0}})"),
                  Status::unsupported, "Orthogonal");
  expect_rejected(with("embeddings_initializer", R"({"class_name": "GlorotUniform", "config": {"input_axes": [0]}})"),
                  Status::unsupported, "input_axes");
  expect_rejected(with("embeddings_regularizer", R"({"class_name": "OrthogonalRegularizer", "config": {}})"),
                  Status::unsupported, "OrthogonalRegularizer");
  // Keras's default constraint axis (0) constrains columns; embedkit constrains rows.
  expect_rejected(with("embeddings_constraint", R"({"class_name": "MaxNorm", "config": {"max_value": 2, "axis": 0}})"),
                  Status::unsupported, "use axis=1");
  expect_rejected(with("embeddings_constraint", "\"unit_norm\""), Status::unsupported, "axis=0");
  expect_rejected(with("embeddings_constraint", R"({"class_name": "MinMaxNorm", "config": {}})"), Status::unsupported,
                  "MinMaxNorm");
}

// Keras's dtype names and policies give the rows' type; a mixed policy keeps float32 variables.
TEST(KerasConfig, DtypeNamesAndPoliciesGiveTheRowsType) {
  const std::pair<const char*, DType> cases[] = {
      {R"("float32")", DType::float32},
      {"null", DType::float32},
      {R"("float16")", DType::float16},
      {R"("bfloat16")", DType::bfloat16},
      {R"("mixed_float16")", DType::float32},
      {R"("mixed_bfloat16")", DType::float32},
      {R"({"module": "keras", "class_name": "DTypePolicy", "config": {"name": "bfloat16"}, "registered_name": null})",
       DType::bfloat16},
      {R"({"module": "keras", "class_name": "DTypePolicy", "config": {"name": "mixed_bfloat16"}})", DType::float32},
      {R"({"module": "keras", "class_name": "FloatDTypePolicy", "config": {"name": "float16"}})", DType::float16},
  };
  for (const auto& [json, type] : cases) {
    const TableConfig config = TableConfig::from_json(with("dtype", json));
    EXPECT_EQ(config.dtype, type) << json;
    EXPECT_EQ(config.rounding, Rounding::stochastic) << json;
    // to_json writes the type by name, which reads back to the same config.
    EXPECT_EQ(TableConfig::from_json(config.to_json()).dtype, type) << json;
  }
  EXPECT_EQ(TableConfig::from_json(with("rounding", R"("nearest")")).rounding, Rounding::nearest);
  EXPECT_EQ(TableConfig::from_json(TableConfig::from_json(with("rounding", R"("nearest")")).to_json()).rounding,
            Rounding::nearest);
  expect_rejected(with("rounding", R"("up")"), Status::invalid_argument,
                  "rounding must be 'stochastic' or 'nearest', got \"up\"");
  expect_rejected(with("rounding", "1"), Status::invalid_argument, "rounding");
  TableConfig custom = TableConfig::from_json(with("dtype", R"("bfloat16")"));
  custom.optimizer = OptimizerConfig::custom([](std::int64_t, float*, const float*, float*, int) {}, 0);
  try {
    custom.validate();
    ADD_FAILURE() << "a custom optimizer over bfloat16 rows was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::unsupported);
    EXPECT_NE(std::string(e.what()).find("bfloat16"), std::string::npos) << e.what();
  }
}

TEST(KerasConfig, IllFormedKerasValuesAreInvalid) {
  expect_rejected(with("dtype", "3"), Status::invalid_argument, "dtype must be a string or a Keras DTypePolicy");
  expect_rejected(with("input_length", "\"20\""), Status::invalid_argument, "input_length must be null");
  expect_rejected(with("batch_input_shape", "[null, -2]"), Status::invalid_argument, "batch_input_shape must be null");
  expect_rejected(with("lora_alpha", "\"x\""), Status::invalid_argument, "lora_alpha must be a finite number");
  expect_rejected(with("embeddings_regularizer", "\"l3\""), Status::invalid_argument,
                  "unknown embeddings_regularizer 'l3'");
  expect_rejected(with("embeddings_regularizer", R"({"class_name": "L2", "config": {"l2": -1}})"),
                  Status::invalid_argument, "must be non-negative");
  expect_rejected(with("embeddings_regularizer", R"({"class_name": "L2", "config": {"l1": 0.1}})"),
                  Status::invalid_argument, "unknown key 'l1' in embeddings_regularizer config of L2");
  expect_rejected(with("embeddings_regularizer", "7"), Status::invalid_argument, "embeddings_regularizer must be null");
  expect_rejected(with("embeddings_constraint", R"({"class_name": "MaxNorm", "config": {"max_value": -1, "axis": 1}})"),
                  Status::invalid_argument, "max_value must be non-negative");
  expect_rejected(with("embeddings_constraint", "\"clip\""), Status::invalid_argument,
                  "unknown embeddings_constraint 'clip'");
  expect_rejected(with("embeddings_constraint", R"({"class_name": "NonNeg", "config": {"axis": 1}})"),
                  Status::invalid_argument, "unknown key 'axis'");
  expect_rejected(with("embeddings_initializer", R"({"class_name": "RandomUniform", "config": [], "x": 1})"),
                  Status::invalid_argument, "unknown key 'x'");
}

TEST(KerasConfig, RegularizerAndConstraintNames) {
  EXPECT_NEAR(TableConfig::from_json(with("embeddings_regularizer", "\"l2\"")).embeddings_regularizer->l2, 0.01, 1e-12);
  EXPECT_NEAR(TableConfig::from_json(with("embeddings_regularizer", "\"l1\"")).embeddings_regularizer->l1, 0.01, 1e-12);
  const auto l1l2 = *TableConfig::from_json(with("embeddings_regularizer", "\"L1L2\"")).embeddings_regularizer;
  EXPECT_EQ(l1l2.l1, 0.0);  // Keras's L1L2() defaults both penalties to 0
  EXPECT_EQ(l1l2.l2, 0.0);
  EXPECT_EQ(TableConfig::from_json(with("embeddings_constraint", "\"non_neg\"")).embeddings_constraint.kind,
            ConstraintKind::non_neg);
  const auto max_norm =
      TableConfig::from_json(with("embeddings_constraint", R"({"class_name": "MaxNorm", "config": {"axis": -1}})"))
          .embeddings_constraint;
  EXPECT_EQ(max_norm.kind, ConstraintKind::max_norm);
  EXPECT_DOUBLE_EQ(max_norm.max_value, 2.0);  // Keras's default max_value
}

TEST(KerasConfig, ToJsonRoundTripsRegularizerAndConstraint) {
  const TableConfig config = TableConfig::from_json(kKeras3VarianceScaling);
  const TableConfig back = TableConfig::from_json(config.to_json());
  EXPECT_EQ(back.to_json(), config.to_json());
  EXPECT_DOUBLE_EQ(back.embeddings_regularizer->l1, 0.001);
  EXPECT_EQ(back.embeddings_constraint.kind, ConstraintKind::unit_norm);
}

}  // namespace
