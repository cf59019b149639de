// TableConfig::from_json: every key accepted, rejected with Keras's words, and round-tripped.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace {

using embedkit::Error;
using embedkit::Status;
using embedkit::TableConfig;

// Parses `json`, expecting failure with `status` and a message containing `text`.
void expect_rejected(const std::string& json, Status status, const std::string& text) {
  try {
    TableConfig::from_json(json);
    ADD_FAILURE() << "accepted: " << json;
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), status) << json << " -> " << e.what();
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << json << " -> " << e.what();
  }
}

TEST(Config, MinimalConfigTakesKerasDefaults) {
  const TableConfig config = TableConfig::from_json(R"({"input_dim": 10, "output_dim": 4})");
  EXPECT_EQ(config.input_dim, 10);
  EXPECT_EQ(config.output_dim, 4);
  EXPECT_EQ(config.embeddings_initializer.kind, embedkit::InitializerKind::uniform);
  EXPECT_DOUBLE_EQ(config.embeddings_initializer.minval, -0.05);
  EXPECT_DOUBLE_EQ(config.embeddings_initializer.maxval, 0.05);
  EXPECT_FALSE(config.seed.has_value());
  EXPECT_FALSE(config.mask_zero);
  EXPECT_FALSE(config.padding_idx.has_value());
  EXPECT_EQ(config.bounds_check, embedkit::BoundsCheck::error);
  EXPECT_TRUE(config.trainable);
  EXPECT_EQ(config.name, "embedding");
  EXPECT_EQ(config.placement, embedkit::PlacementPolicy::automatic);
}

TEST(Config, EveryKeyIsRead) {
  const TableConfig config = TableConfig::from_json(R"({
    "name": "items", "input_dim": 100, "output_dim": 8, "embeddings_initializer": "glorot_uniform",
    "seed": 18446744073709551615, "mask_zero": true, "padding_idx": 0, "bounds_check": "zero_fill",
    "trainable": false, "placement": "cpu"})");
  EXPECT_EQ(config.name, "items");
  EXPECT_EQ(config.embeddings_initializer.kind, embedkit::InitializerKind::variance_scaling);
  EXPECT_EQ(*config.seed, 18446744073709551615ull);
  EXPECT_TRUE(config.mask_zero);
  EXPECT_EQ(*config.padding_idx, 0);
  EXPECT_EQ(config.bounds_check, embedkit::BoundsCheck::zero_fill);
  EXPECT_FALSE(config.trainable);
  EXPECT_EQ(config.placement, embedkit::PlacementPolicy::cpu);
  EXPECT_FALSE(TableConfig::from_json(R"({"input_dim": 1, "output_dim": 1, "seed": null,
                                          "padding_idx": null, "placement": "auto"})")
                   .seed);
}

TEST(Config, KerasWordingForBadDims) {
  expect_rejected(R"({"input_dim": 0, "output_dim": 4})", Status::invalid_argument,
                  "input_dim must be a positive integer, got 0");
  expect_rejected(R"({"input_dim": -1, "output_dim": 4})", Status::invalid_argument,
                  "input_dim must be a positive integer, got -1");
  expect_rejected(R"({"input_dim": "3", "output_dim": 4})", Status::invalid_argument,
                  R"(input_dim must be a positive integer, got "3")");
  expect_rejected(R"({"input_dim": 3.7, "output_dim": 4})", Status::invalid_argument,
                  "input_dim must be a positive integer, got 3.7");
  expect_rejected(R"({"input_dim": true, "output_dim": 4})", Status::invalid_argument,
                  "input_dim must be a positive integer, got true");
  expect_rejected(R"({"input_dim": 3, "output_dim": null})", Status::invalid_argument,
                  "output_dim must be a positive integer, got null");
  expect_rejected(R"({"input_dim": 3, "output_dim": 4294967296})", Status::invalid_argument,
                  "output_dim must be at most 2147483647");
  expect_rejected(R"({"input_dim": 18446744073709551615, "output_dim": 4})", Status::invalid_argument,
                  "input_dim must be a positive integer");
  expect_rejected(R"({"output_dim": 4})", Status::invalid_argument, "missing the required key 'input_dim'");
  expect_rejected(R"({"input_dim": 4})", Status::invalid_argument, "missing the required key 'output_dim'");
}

TEST(Config, UnknownKeysAndBadValuesAreNamed) {
  expect_rejected(R"({"input_dim": 3, "output_dim": 4, "inputdim": 3})", Status::invalid_argument,
                  "unknown config key 'inputdim'");
  expect_rejected(R"({"input_dim": 3, "output_dim": 4, "mask_zero": 1})", Status::invalid_argument,
                  "mask_zero must be a boolean, got 1");
  expect_rejected(R"({"input_dim": 3, "output_dim": 4, "trainable": "yes"})", Status::invalid_argument,
                  "trainable must be a boolean");
  expect_rejected(R"({"input_dim": 3, "output_dim": 4, "seed": -5})", Status::invalid_argument,
                  "seed must be a non-negative integer, got -5");
  expect_rejected(R"({"input_dim": 3, "output_dim": 4, "padding_idx": 3})", Status::invalid_argument,
                  "padding_idx must be in [0, input_dim) = [0, 3), got 3");
  expect_rejected(R"({"input_dim": 3, "output_dim": 4, "padding_idx": -1})", Status::invalid_argument,
                  "padding_idx must be in [0, input_dim)");
  expect_rejected(R"({"input_dim": 3, "output_dim": 4, "bounds_check": "clip"})", Status::invalid_argument,
                  "bounds_check must be 'error' or 'zero_fill', got \"clip\"");
  expect_rejected(R"({"input_dim": 3, "output_dim": 4, "placement": "gpu"})", Status::invalid_argument,
                  "placement must be 'auto', 'cpu' or 'cuda', got \"gpu\"");
  expect_rejected(R"({"input_dim": 3, "output_dim": 4, "name": 7})", Status::invalid_argument,
                  "name must be a string, got 7");
  expect_rejected(R"({"input_dim": 3, "output_dim": 4, "embeddings_initializer": "unifrom"})", Status::invalid_argument,
                  "unknown embeddings_initializer 'unifrom'");
  expect_rejected(R"({"input_dim": 3, "output_dim": 4, "embeddings_initializer": "orthogonal"})", Status::unsupported,
                  "orthogonal");
  expect_rejected(R"({"input_dim": 3, "output_dim": 4, "embeddings_initializer": 5})", Status::invalid_argument,
                  "embeddings_initializer must be a Keras initializer name or object");
}

TEST(Config, MalformedDocuments) {
  expect_rejected("", Status::invalid_argument, "config is not valid JSON");
  expect_rejected(R"({"input_dim": 3,)", Status::invalid_argument, "config is not valid JSON");
  expect_rejected("[1, 2]", Status::invalid_argument, "config must be a JSON object, got [1,2]");
  expect_rejected(R"({"input_dim": 1e400, "output_dim": 4})", Status::invalid_argument,
                  "config is not valid JSON: [json.exception.out_of_range.406] number overflow parsing '1e400'");
}

// nlohmann::json's dump, copy and comparison recurse: a document 100000 levels deep overflowed the
// stack when an error message printed it. Nesting is now measured before parsing.
TEST(Config, NestingDeeperThan64LevelsIsRefusedBeforeParsing) {
  const auto nested = [](const std::string& before, int depth, const std::string& after) {
    std::string text = before;
    text.append(static_cast<std::size_t>(depth), '[').append(static_cast<std::size_t>(depth), ']');
    return text.append(after);
  };
  expect_rejected(nested("", 100000, ""), Status::invalid_argument,
                  "config nests arrays and objects deeper than 64 levels (byte 64)");
  expect_rejected(nested(R"({"input_dim": )", 100000, R"(, "output_dim": 2})"), Status::invalid_argument,
                  "config nests arrays and objects deeper than 64 levels (byte 77)");
  std::string objects;
  for (int level = 0; level < 100000; ++level) objects.append(R"({"a":)");
  objects.append("1").append(100000, '}');
  expect_rejected(objects, Status::invalid_argument, "deeper than 64 levels");
  // 64 levels parse, and the error names the value; brackets inside strings do not count.
  expect_rejected(nested(R"({"input_dim": )", 63, R"(, "output_dim": 2})"), Status::invalid_argument,
                  "input_dim must be a positive integer, got [[[[");
  std::string name = R"({"input_dim": 3, "output_dim": 2, "name": "\"[{)";
  name.append(100000, '[').append(R"("})");
  EXPECT_EQ(TableConfig::from_json(name).name.size(), 100003u);
  try {
    embedkit::OptimizerConfig::from_json(nested(R"({"class_name": "SGD", "config": )", 100000, "}"));
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("optimizer nests arrays and objects deeper than 64 levels"), std::string::npos)
        << e.what();
  }
}

TEST(Config, InitializerObjectsFromKeras) {
  // Keras 3's serialized form and tf-keras's (no module, no registered_name).
  const TableConfig keras3 = TableConfig::from_json(R"({"input_dim": 5, "output_dim": 2,
    "embeddings_initializer": {"module": "keras.initializers", "class_name": "RandomNormal",
                               "config": {"mean": 1.0, "stddev": 0.5, "seed": 7}, "registered_name": null}})");
  EXPECT_EQ(keras3.embeddings_initializer.kind, embedkit::InitializerKind::normal);
  EXPECT_DOUBLE_EQ(keras3.embeddings_initializer.mean, 1.0);
  EXPECT_DOUBLE_EQ(keras3.embeddings_initializer.stddev, 0.5);
  EXPECT_EQ(*keras3.embeddings_initializer.seed, 7u);
  const TableConfig tf_keras = TableConfig::from_json(R"({"input_dim": 5, "output_dim": 2,
    "embeddings_initializer": {"class_name": "RandomUniform", "config": {"minval": -1, "maxval": 2, "seed": null}}})");
  EXPECT_DOUBLE_EQ(tf_keras.embeddings_initializer.minval, -1.0);
  EXPECT_DOUBLE_EQ(tf_keras.embeddings_initializer.maxval, 2.0);
  expect_rejected(R"({"input_dim": 5, "output_dim": 2, "embeddings_initializer":
                      {"class_name": "RandomUniform", "config": {"low": 0}}})",
                  Status::invalid_argument, "unknown key 'low' in embeddings_initializer config of RandomUniform");
  expect_rejected(R"({"input_dim": 5, "output_dim": 2, "embeddings_initializer":
                      {"class_name": "RandomUniform", "config": {"minval": 1, "maxval": 0}}})",
                  Status::invalid_argument, "minval must not exceed maxval");
  expect_rejected(R"({"input_dim": 5, "output_dim": 2, "embeddings_initializer": {"config": {}}})",
                  Status::invalid_argument, "has no 'class_name'");
}

TEST(Config, JsonRoundTrip) {
  TableConfig config;
  config.name = "users";
  config.input_dim = 12;
  config.output_dim = 3;
  config.embeddings_initializer = embedkit::Initializer::from_name("he_normal");
  config.embeddings_initializer.seed = 11;
  config.seed = 5;
  config.mask_zero = true;
  config.padding_idx = 2;
  config.bounds_check = embedkit::BoundsCheck::zero_fill;
  config.trainable = false;
  config.placement = embedkit::PlacementPolicy::cpu;
  const TableConfig back = TableConfig::from_json(config.to_json());
  EXPECT_EQ(back.to_json(), config.to_json());
  EXPECT_EQ(back.name, "users");
  EXPECT_EQ(back.embeddings_initializer.kind, embedkit::InitializerKind::variance_scaling);
  EXPECT_DOUBLE_EQ(back.embeddings_initializer.scale, 2.0);
  EXPECT_EQ(back.embeddings_initializer.mode, embedkit::FanMode::fan_in);
  EXPECT_EQ(*back.embeddings_initializer.seed, 11u);
  EXPECT_EQ(*back.padding_idx, 2);
}

TEST(Config, ValidateCatchesConfigsBuiltInCpp) {
  TableConfig config;
  config.input_dim = 4;
  config.output_dim = 0;
  EXPECT_THROW(embedkit::EmbeddingTable{config}, Error);
  config.output_dim = 2;
  config.embeddings_initializer.stddev = -1.0;
  EXPECT_THROW(config.validate(), Error);
}

TEST(Config, MaxNormAndNormType) {
  const TableConfig plain = TableConfig::from_json(R"({"input_dim": 3, "output_dim": 4})");
  EXPECT_FALSE(plain.max_norm.has_value());
  EXPECT_EQ(plain.norm_type, 2.0);
  const TableConfig set = TableConfig::from_json(R"({"input_dim": 3, "output_dim": 4, "max_norm": 1.5,
                                                     "norm_type": 3})");
  EXPECT_EQ(*set.max_norm, 1.5);
  EXPECT_EQ(set.norm_type, 3.0);
  EXPECT_FALSE(TableConfig::from_json(R"({"input_dim": 3, "output_dim": 4, "max_norm": null})").max_norm);
  // Infinity: JSON has none, so a string.
  for (const char* inf : {R"("inf")", R"("Infinity")"}) {
    const TableConfig config =
        TableConfig::from_json(std::string(R"({"input_dim": 3, "output_dim": 4, "norm_type": )") + inf + "}");
    EXPECT_TRUE(std::isinf(config.norm_type) && config.norm_type > 0) << inf;
  }
  expect_rejected(R"({"input_dim": 3, "output_dim": 4, "max_norm": 0})", Status::invalid_argument,
                  "max_norm must be null or a positive finite number, got 0");
  expect_rejected(R"({"input_dim": 3, "output_dim": 4, "max_norm": -2.5})", Status::invalid_argument,
                  "max_norm must be null or a positive finite number, got -2.5");
  expect_rejected(R"({"input_dim": 3, "output_dim": 4, "max_norm": "1"})", Status::invalid_argument,
                  "max_norm must be a finite number, got \"1\"");
  expect_rejected(R"({"input_dim": 3, "output_dim": 4, "norm_type": 0})", Status::invalid_argument,
                  "norm_type must be a positive number or inf, got 0");
  expect_rejected(R"({"input_dim": 3, "output_dim": 4, "norm_type": -1})", Status::invalid_argument,
                  "norm_type must be a positive number or inf, got -1");
  expect_rejected(R"({"input_dim": 3, "output_dim": 4, "norm_type": "-inf"})", Status::invalid_argument,
                  "norm_type must be a positive number or \"inf\", got \"-inf\"");
  expect_rejected(R"({"input_dim": 3, "output_dim": 4, "norm_type": true})", Status::invalid_argument,
                  "norm_type must be a positive number or \"inf\", got true");
  expect_rejected(R"({"input_dim": 3, "output_dim": 4, "norm_type": null})", Status::invalid_argument,
                  "norm_type must be a positive number");
}

TEST(Config, MaxNormRoundTrips) {
  for (const double p : {1.0, 2.0, 0.5, std::numeric_limits<double>::infinity()}) {
    TableConfig config;
    config.input_dim = 5;
    config.output_dim = 2;
    config.max_norm = 0.25;
    config.norm_type = p;
    const TableConfig back = TableConfig::from_json(config.to_json());
    EXPECT_EQ(back.to_json(), config.to_json());
    EXPECT_EQ(*back.max_norm, 0.25);
    EXPECT_EQ(back.norm_type, p);
  }
  TableConfig none;
  none.input_dim = 5;
  none.output_dim = 2;
  EXPECT_FALSE(TableConfig::from_json(none.to_json()).max_norm.has_value());
  // Built in C++: validate() (and a table's constructor) refuse what from_json refuses.
  none.max_norm = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(none.validate(), Error);
  none.max_norm = 1.0;
  none.norm_type = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(embedkit::EmbeddingTable{none}, Error);
}

}  // namespace
