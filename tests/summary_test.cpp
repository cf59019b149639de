// summary() and info_json(): figures against hand-computed bytes.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include "tests/support/tables.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace {

using embedkit::EmbeddingTable;
using embedkit::IndexTensor;
using embedkit::TableConfig;
using embedkit::testing::table_config;

// The table every case reads.
EmbeddingTable words_table(bool mask_zero) {
  TableConfig config = table_config(10001, 64, 99);
  config.name = "words";
  config.mask_zero = mask_zero;
  config.max_batch_lookups = 1000;  // step scratch: 1000 x (80 + 12 x 64) = 848,000 bytes
  return EmbeddingTable(config);
}

TEST(Summary, TableFiguresWithoutBatch) {
  const auto summary = words_table(false).summary();
  EXPECT_EQ(summary.name, "words");
  EXPECT_EQ(summary.rows, 10001);
  EXPECT_EQ(summary.dim, 64);
  EXPECT_EQ(summary.parameters, 640064);
  EXPECT_EQ(summary.placement.bytes.weights, 640064u * 4u);
  EXPECT_EQ(summary.placement.bytes.optimizer_state, 0u);
  // A CPU table holds no step workspace: each train step allocates its scratch and frees it.
  EXPECT_EQ(summary.placement.bytes.workspace, 0u);
  EXPECT_EQ(summary.placement.bytes.step_scratch, 848000u);
  EXPECT_EQ(summary.placement.bytes.total(), 2560256u);
  EXPECT_TRUE(summary.output_shape.empty());
  const std::string text = summary.to_string();
  EXPECT_NE(text.find("2.44 MiB (2,560,256 bytes)"), std::string::npos) << text;
  EXPECT_NE(text.find("workspace       0 bytes"), std::string::npos) << text;
  EXPECT_NE(text.find("step scratch    up to 828.1 KiB per train step, allocated per call (not held)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("total           2.44 MiB (2,560,256 bytes)"), std::string::npos) << text;
  EXPECT_NE(text.find("10,001 x 64 (640,064 parameters, trainable)"), std::string::npos) << text;
}

// lazy: false where a zero gradient moves rows costs O(input_dim x dim) a step: the summary and
// the placement sentence say so; where it moves nothing (plain SGD) the step is sparse and neither does.
TEST(Summary, DenseStepStatesItsCost) {
  TableConfig config = table_config(10001, 64, 99);
  config.optimizer = embedkit::OptimizerConfig::from_json(R"({"class_name": "Adam", "config": {"lazy": false}})");
  const std::string cost =
      "every train step updates all 10,001 rows (lazy: false, Keras's semantics): O(input_dim x dim) = 640,064 "
      "weights a step";
  const auto summary = EmbeddingTable(config).summary();
  EXPECT_TRUE(summary.dense_step);
  EXPECT_NE(summary.to_string().find("optimizer step  " + cost), std::string::npos) << summary.to_string();
  EXPECT_NE(summary.placement.reason.find("; " + cost), std::string::npos) << summary.placement.reason;

  config.optimizer = embedkit::OptimizerConfig::from_json(R"({"class_name": "SGD", "config": {"lazy": false}})");
  const auto plain = EmbeddingTable(config).summary();
  EXPECT_FALSE(plain.dense_step);
  EXPECT_EQ(plain.to_string().find("optimizer step"), std::string::npos) << plain.to_string();
  EXPECT_EQ(plain.placement.reason.find("O(input_dim x dim)"), std::string::npos) << plain.placement.reason;
  EXPECT_FALSE(words_table(false).summary().dense_step);
}

TEST(Summary, BatchShapeGivesOutputBytes) {
  const std::int64_t batch[] = {32, 20};
  const auto summary = words_table(false).summary(batch);
  EXPECT_EQ(summary.output_shape, (std::vector<std::int64_t>{32, 20, 64}));
  EXPECT_EQ(summary.output_bytes, 32u * 20u * 64u * 4u);
  EXPECT_NE(summary.to_string().find("(32, 20, 64) float32 = 160.00 KiB (163,840 bytes)"), std::string::npos);
}

TEST(Summary, ActualBatchCountsPaddingUnderMaskZero) {
  const std::vector<std::int32_t> ids = {5, 0, 0, 7, 0, 9};
  const auto summary = words_table(true).summary(IndexTensor(ids.data(), {2, 3}));
  EXPECT_EQ(*summary.batch_entries, 6);
  EXPECT_EQ(*summary.padding_entries, 3);
  EXPECT_NE(summary.to_string().find("3 of 6 ids are 0 (masked by mask_zero): 3 effective (50.0%)"), std::string::npos);
  EXPECT_FALSE(words_table(false).summary(IndexTensor(ids)).padding_entries.has_value());
}

TEST(Summary, FormatBytes) {
  EXPECT_EQ(embedkit::format_bytes(0), "0 bytes");
  EXPECT_EQ(embedkit::format_bytes(1023), "1023 bytes");
  EXPECT_EQ(embedkit::format_bytes(1024), "1.00 KiB (1,024 bytes)");
  EXPECT_EQ(embedkit::format_bytes(3u << 30), "3.00 GiB (3,221,225,472 bytes)");
}

TEST(Summary, InfoJsonHoldsTheRecord) {
  const EmbeddingTable table = words_table(true);
  const auto info = nlohmann::json::parse(table.info_json());
  EXPECT_EQ(info["name"], "words");
  EXPECT_EQ(info["input_dim"], 10001);
  EXPECT_EQ(info["output_dim"], 64);
  EXPECT_EQ(info["seed"], 99);
  EXPECT_EQ(info["step"], 0);
  EXPECT_EQ(info["placement"]["device"], "cpu");
  EXPECT_EQ(info["placement"]["reason_code"], embedkit::to_string(table.placement().reason_code));
  EXPECT_EQ(info["placement"]["reason"], table.placement().reason);
  EXPECT_EQ(info["bytes"]["weights"], 2560256);
  EXPECT_EQ(info["bytes"]["optimizer_state"], 0);
  EXPECT_EQ(info["bytes"]["workspace"], 0);
  EXPECT_EQ(info["bytes"]["step_scratch"], 848000);
  EXPECT_EQ(info["bytes"]["total"], 2560256);
  EXPECT_EQ(info["config"]["mask_zero"], true);
  // The embedded config is a valid config: it rebuilds the same table.
  EXPECT_EQ(EmbeddingTable(TableConfig::from_json(info["config"].dump())).get_weights().values,
            table.get_weights().values);
}

}  // namespace
