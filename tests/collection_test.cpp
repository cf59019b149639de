// TableCollection: pooled and plain lookups and train steps of many tables over a KeyedJaggedTensor
// batch, against a reference written here (each feature's bags pooled from the tables' weights,
// SGD by hand) and against the tables' own single-table calls; hostile batches change no table.
#include <embedkit/c_api_collection.h>
#include <embedkit/collection.hpp>
#include <embedkit/status.hpp>

#include <gtest/gtest.h>

#include "tests/sim_context.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

using embedkit::Array;
using embedkit::CollectionConfig;
using embedkit::CollectionTable;
using embedkit::Error;
using embedkit::IndexTensor;
using embedkit::KeyedJaggedBatch;
using embedkit::OptimizerConfig;
using embedkit::OptimizerKind;
using embedkit::PoolingMode;
using embedkit::Status;
using embedkit::TableCollection;
using embedkit::TableConfig;

constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;

CollectionTable table_of(std::string name, std::int64_t rows, std::int64_t dim, std::vector<std::string> features,
                         PoolingMode pooling, OptimizerKind optimizer = OptimizerKind::sgd) {
  CollectionTable table;
  table.config.name = std::move(name);
  table.config.input_dim = rows;
  table.config.output_dim = dim;
  table.config.seed = 11 + static_cast<std::uint64_t>(rows);
  table.config.embeddings_initializer.minval = -1.0;
  table.config.embeddings_initializer.maxval = 1.0;
  table.config.optimizer = OptimizerConfig::defaults(optimizer);
  table.config.optimizer.learning_rate = 0.1;
  table.config.gpu_memory_headroom = 0;
  table.feature_names = std::move(features);
  table.pooling = pooling;
  return table;
}

// Four tables: dims below, at and above the 64-column tile, one odd; "user" serves two features;
// each pooling mode once.
CollectionConfig mixed_config() {
  CollectionConfig config;
  config.tables.push_back(table_of("user", 50, 8, {"user_a", "user_b"}, PoolingMode::sum));
  config.tables.push_back(table_of("item", 300, 70, {"item"}, PoolingMode::mean));
  config.tables.push_back(table_of("tiny", 3, 3, {"tiny"}, PoolingMode::max));
  config.tables.push_back(table_of("geo", 40, 64, {"geo"}, PoolingMode::sqrtn));
  return config;
}

// A KeyedJaggedTensor's arrays, owned.
struct Kjt {
  std::vector<std::string> keys;
  std::vector<std::int64_t> values;
  std::vector<std::int32_t> values32;
  std::vector<std::int64_t> lengths;
  std::vector<std::int64_t> offsets;
  std::vector<float> weights;
  bool use_offsets = false;
  bool int32 = false;

  KeyedJaggedBatch view() const {
    KeyedJaggedBatch batch{keys, int32 ? IndexTensor(values32) : IndexTensor(values), {}, {}, weights};
    if (use_offsets) {
      batch.offsets = offsets;
    } else {
      batch.lengths = lengths;
    }
    return batch;
  }
  void finish() {
    offsets.assign(1, 0);
    for (const std::int64_t length : lengths) offsets.push_back(offsets.back() + length);
    values32.assign(values.begin(), values.end());
  }
};

// A random batch over `keys` (in this order) with rows[k] rows for key k: bags of 0..max_bag ids,
// many duplicates (ids drawn from a few hot rows half the time).
Kjt random_batch(std::vector<std::string> keys, const std::vector<std::int64_t>& rows, std::int64_t samples,
                 std::int64_t max_bag, bool weighted, std::uint32_t seed) {
  std::mt19937 gen(seed);
  Kjt kjt;
  kjt.keys = std::move(keys);
  for (std::size_t k = 0; k < kjt.keys.size(); ++k) {
    for (std::int64_t s = 0; s < samples; ++s) {
      const std::int64_t length = std::uniform_int_distribution<std::int64_t>(0, max_bag)(gen);
      kjt.lengths.push_back(length);
      for (std::int64_t j = 0; j < length; ++j) {
        const bool hot = std::uniform_int_distribution<int>(0, 1)(gen) == 0;
        const std::int64_t bound = hot ? std::min<std::int64_t>(rows[k], 3) : rows[k];
        kjt.values.push_back(std::uniform_int_distribution<std::int64_t>(0, bound - 1)(gen));
        if (weighted) kjt.weights.push_back(std::uniform_real_distribution<float>(0.25f, 2.0f)(gen));
      }
    }
  }
  kjt.finish();
  return kjt;
}

// The reference pooled matrix: for each feature of `config` (in config order), each sample's bag
// pooled from `weights[t]` (the table's matrix) in double.
std::vector<float> reference_pooled(const CollectionConfig& config, const std::vector<std::vector<float>>& weights,
                                    const Kjt& kjt, std::int64_t samples) {
  std::int64_t width = 0;
  for (const CollectionTable& table : config.tables) {
    width += table.config.output_dim * static_cast<std::int64_t>(table.feature_names.size());
  }
  std::vector<float> out(static_cast<std::size_t>(samples * width), 0.0f);
  std::int64_t column = 0;
  for (std::size_t t = 0; t < config.tables.size(); ++t) {
    const CollectionTable& table = config.tables[t];
    const std::int64_t dim = table.config.output_dim;
    for (const std::string& feature : table.feature_names) {
      const auto k = static_cast<std::int64_t>(std::find(kjt.keys.begin(), kjt.keys.end(), feature) - kjt.keys.begin());
      for (std::int64_t s = 0; s < samples; ++s) {
        const std::int64_t begin = kjt.offsets[k * samples + s], end = kjt.offsets[k * samples + s + 1];
        for (std::int64_t c = 0; c < dim; ++c) {
          double sum = 0.0, weight_sum = 0.0, square_sum = 0.0;
          double best = -std::numeric_limits<double>::infinity();
          for (std::int64_t j = begin; j < end; ++j) {
            const double w = kjt.weights.empty() ? 1.0 : kjt.weights[j];
            const double v = weights[t][kjt.values[j] * dim + c];
            sum += w * v, weight_sum += w, square_sum += w * w, best = std::max(best, v);
          }
          double pooled = sum;
          if (table.pooling == PoolingMode::mean) pooled = end > begin ? sum / weight_sum : 0.0;
          if (table.pooling == PoolingMode::sqrtn) pooled = end > begin ? sum / std::sqrt(square_sum) : 0.0;
          if (table.pooling == PoolingMode::max) pooled = end > begin ? best : 0.0;
          out[s * width + column + c] = static_cast<float>(pooled);
        }
      }
      column += dim;
    }
  }
  return out;
}

std::vector<std::vector<float>> all_weights(const TableCollection& collection) {
  std::vector<std::vector<float>> weights;
  for (std::size_t t = 0; t < collection.table_count(); ++t) {
    const Array<float> matrix = collection.table(t).get_weights();
    weights.emplace_back(matrix.values.begin(), matrix.values.end());
  }
  return weights;
}

void expect_near_all(const std::vector<float>& got, const std::vector<float>& want, float tolerance) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tolerance * (1.0f + std::fabs(want[i]))) << "at " << i;
  }
}

const std::vector<std::string> kShuffledKeys{"geo", "extra", "user_b", "tiny", "item", "user_a"};
const std::vector<std::int64_t> kShuffledRows{40, 9, 50, 3, 300, 50};

TEST(Collection, PooledLookupMatchesTheReferenceInConfigOrder) {
  TableCollection collection(mixed_config());
  EXPECT_EQ(collection.feature_names(), (std::vector<std::string>{"user_a", "user_b", "item", "tiny", "geo"}));
  EXPECT_EQ(collection.pooled_width(), 8 + 8 + 70 + 3 + 64);
  // 33 samples run on one thread; 700 samples of bags up to 30 in one parallel region.
  for (const std::int64_t samples : {33, 700}) {
    for (const bool int32 : {false, true}) {
      for (const bool use_offsets : {false, true}) {
        Kjt kjt = random_batch(kShuffledKeys, kShuffledRows, samples, samples > 100 ? 30 : 6, false, 7);
        kjt.int32 = int32;
        kjt.use_offsets = use_offsets;
        const Array<float> out = collection.lookup_pooled(kjt.view());
        EXPECT_EQ(out.shape, (std::vector<std::int64_t>{samples, collection.pooled_width()}));
        expect_near_all(std::vector<float>(out.values.begin(), out.values.end()),
                        reference_pooled(mixed_config(), all_weights(collection), kjt, samples), 1e-5f);
      }
    }
  }
}

TEST(Collection, WeightedPooledLookupIsEachTablesOwnLookupBitForBit) {
  CollectionConfig config = mixed_config();
  config.tables[2].pooling = PoolingMode::sum;  // max takes no weights
  TableCollection collection(config);
  const Kjt kjt = random_batch(kShuffledKeys, kShuffledRows, 200, 40, true, 8);
  const Array<float> out = collection.lookup_pooled(kjt.view());
  const std::int64_t samples = 200, width = collection.pooled_width();
  const std::vector<std::string> features = collection.feature_names();
  const std::vector<std::int64_t> dims = collection.feature_dims();
  const std::vector<std::size_t> table_of_feature{0, 0, 1, 2, 3};
  std::int64_t column = 0;
  std::vector<std::vector<float>> per_feature(features.size());
  for (std::size_t f = 0; f < features.size(); ++f) {
    const auto k =
        static_cast<std::int64_t>(std::find(kjt.keys.begin(), kjt.keys.end(), features[f]) - kjt.keys.begin());
    const std::int64_t begin = kjt.offsets[k * samples];
    std::vector<std::int64_t> offsets;
    for (std::int64_t s = 0; s <= samples; ++s) offsets.push_back(kjt.offsets[k * samples + s] - begin);
    const std::vector<std::int64_t> ids(kjt.values.begin() + begin, kjt.values.begin() + begin + offsets.back());
    const std::vector<float> weights(kjt.weights.begin() + begin, kjt.weights.begin() + begin + offsets.back());
    const Array<float> alone =
        collection.table(table_of_feature[f])
            .lookup_pooled(IndexTensor(ids), offsets, config.tables[table_of_feature[f]].pooling, weights);
    for (std::int64_t s = 0; s < samples; ++s) {
      for (std::int64_t c = 0; c < dims[f]; ++c) {
        ASSERT_EQ(out.values[s * width + column + c], alone.values[s * dims[f] + c]) << features[f] << " " << s;
      }
    }
    per_feature[f].resize(static_cast<std::size_t>(samples * dims[f]));
    column += dims[f];
  }
  // Per-feature outputs hold the same blocks.
  std::vector<std::span<float>> outs(per_feature.begin(), per_feature.end());
  collection.lookup_pooled(kjt.view(), outs);
  column = 0;
  for (std::size_t f = 0; f < features.size(); ++f) {
    for (std::int64_t s = 0; s < samples; ++s) {
      for (std::int64_t c = 0; c < dims[f]; ++c) {
        ASSERT_EQ(per_feature[f][s * dims[f] + c], out.values[s * width + column + c]);
      }
    }
    column += dims[f];
  }
}

TEST(Collection, EmptyBatchAndEmptyBagsGiveZeros) {
  TableCollection collection(mixed_config());
  Kjt kjt;
  kjt.keys = {"user_a", "user_b", "item", "tiny", "geo"};
  kjt.finish();
  EXPECT_EQ(collection.lookup_pooled(kjt.view()).values.size(), 0u);
  kjt.lengths.assign(5 * 4, 0);
  kjt.finish();
  const Array<float> out = collection.lookup_pooled(kjt.view());
  EXPECT_EQ(out.values.size(), static_cast<std::size_t>(4 * collection.pooled_width()));
  EXPECT_TRUE(std::all_of(out.values.begin(), out.values.end(), [](float v) { return v == 0.0f; }));
  collection.train_step_pooled(kjt.view(), std::vector<float>(out.values.size(), 1.0f));
  EXPECT_EQ(collection.table(0).step(), 1);
}

TEST(Collection, SgdStepMatchesTheReference) {
  CollectionConfig config;
  config.tables.push_back(table_of("user", 20, 5, {"user_a", "user_b"}, PoolingMode::sum));
  config.tables.push_back(table_of("item", 30, 3, {"item"}, PoolingMode::mean));
  TableCollection collection(config);
  const Kjt kjt = random_batch({"item", "user_b", "user_a"}, {30, 20, 20}, 17, 5, false, 9);
  const std::int64_t samples = 17, width = collection.pooled_width();
  std::vector<float> grad(static_cast<std::size_t>(samples * width));
  std::mt19937 gen(3);
  for (float& g : grad) g = std::uniform_real_distribution<float>(-1.0f, 1.0f)(gen);
  std::vector<std::vector<float>> want = all_weights(collection);
  // Reference: each id of a bag receives its bag's gradient (divided by the count under mean); SGD.
  const std::vector<std::string> features{"user_a", "user_b", "item"};
  const std::vector<std::size_t> table_of_feature{0, 0, 1};
  const std::vector<std::int64_t> columns{0, 5, 10};
  std::vector<std::vector<double>> sums(2);
  for (std::size_t t = 0; t < 2; ++t) sums[t].assign(want[t].size(), 0.0);
  for (std::size_t f = 0; f < features.size(); ++f) {
    const std::size_t t = table_of_feature[f];
    const std::int64_t dim = config.tables[t].config.output_dim;
    const auto k =
        static_cast<std::int64_t>(std::find(kjt.keys.begin(), kjt.keys.end(), features[f]) - kjt.keys.begin());
    for (std::int64_t s = 0; s < samples; ++s) {
      const std::int64_t begin = kjt.offsets[k * samples + s], end = kjt.offsets[k * samples + s + 1];
      for (std::int64_t j = begin; j < end; ++j) {
        const double scale =
            config.tables[t].pooling == PoolingMode::mean ? 1.0 / static_cast<double>(end - begin) : 1.0;
        for (std::int64_t c = 0; c < dim; ++c)
          sums[t][kjt.values[j] * dim + c] += scale * grad[s * width + columns[f] + c];
      }
    }
  }
  for (std::size_t t = 0; t < 2; ++t) {
    for (std::size_t i = 0; i < want[t].size(); ++i) want[t][i] = static_cast<float>(want[t][i] - 0.1 * sums[t][i]);
  }
  collection.train_step_pooled(kjt.view(), grad);
  const std::vector<std::vector<float>> got = all_weights(collection);
  for (std::size_t t = 0; t < 2; ++t) expect_near_all(got[t], want[t], 1e-5f);
  EXPECT_EQ(collection.table(0).step(), 1);
  EXPECT_EQ(collection.table(1).step(), 1);
}

// The collection's step of each table is its train_step_pooled over the table's features
// concatenated, bit for bit, for every optimizer kind the tables may hold.
TEST(Collection, TrainStepIsEachTablesOwnStepBitForBit) {
  for (const OptimizerKind kind : {OptimizerKind::sgd, OptimizerKind::adagrad, OptimizerKind::rowwise_adagrad,
                                   OptimizerKind::adam, OptimizerKind::ftrl}) {
    CollectionConfig config = mixed_config();
    for (CollectionTable& table : config.tables) table.config.optimizer = OptimizerConfig::defaults(kind);
    config.tables[0].config.nonfinite_gradients = embedkit::NonFiniteGradients::error;  // the unfused path
    TableCollection collection(config);
    std::vector<embedkit::EmbeddingTable> twins;
    for (const CollectionTable& table : config.tables) twins.emplace_back(table.config);
    const std::int64_t samples = 25;
    for (std::uint32_t round = 0; round < 3; ++round) {
      const Kjt kjt = random_batch(kShuffledKeys, kShuffledRows, samples, 7, false, 20 + round);
      const std::int64_t width = collection.pooled_width();
      std::vector<float> grad(static_cast<std::size_t>(samples * width));
      std::mt19937 gen(round);
      for (float& g : grad) g = std::uniform_real_distribution<float>(-1.0f, 1.0f)(gen);
      collection.train_step_pooled(kjt.view(), grad);
      std::int64_t column = 0;
      for (std::size_t t = 0; t < config.tables.size(); ++t) {
        const std::int64_t dim = config.tables[t].config.output_dim;
        std::vector<std::int64_t> ids, offsets{0};
        std::vector<float> table_grad;
        for (const std::string& feature : config.tables[t].feature_names) {
          const auto k =
              static_cast<std::int64_t>(std::find(kjt.keys.begin(), kjt.keys.end(), feature) - kjt.keys.begin());
          for (std::int64_t s = 0; s < samples; ++s) {
            const std::int64_t begin = kjt.offsets[k * samples + s], end = kjt.offsets[k * samples + s + 1];
            ids.insert(ids.end(), kjt.values.begin() + begin, kjt.values.begin() + end);
            offsets.push_back(static_cast<std::int64_t>(ids.size()));
            table_grad.insert(table_grad.end(), grad.begin() + s * width + column,
                              grad.begin() + s * width + column + dim);
          }
          column += dim;
        }
        twins[t].train_step_pooled(IndexTensor(ids), offsets, config.tables[t].pooling, {}, table_grad);
        const Array<float> got = collection.table(t).get_weights(), want = twins[t].get_weights();
        ASSERT_TRUE(std::equal(got.values.begin(), got.values.end(), want.values.begin(), want.values.end()))
            << static_cast<int>(kind) << " table " << t << " round " << round;
      }
    }
  }
}

TEST(Collection, PlainLookupAndStepAreEachTablesOwn) {
  CollectionConfig config;
  config.tables.push_back(table_of("user", 20, 4, {"user_a", "user_b"}, PoolingMode::sum, OptimizerKind::adagrad));
  config.tables.push_back(table_of("item", 30, 6, {"item"}, PoolingMode::sum, OptimizerKind::adagrad));
  TableCollection collection(config);
  embedkit::EmbeddingTable user(config.tables[0].config), item(config.tables[1].config);
  const Kjt kjt = random_batch({"item", "user_b", "user_a"}, {30, 20, 20}, 9, 4, false, 4);
  const std::int64_t size = collection.lookup_size(kjt.view());
  const std::int64_t item_ids = kjt.offsets[9], user_b_ids = kjt.offsets[18] - kjt.offsets[9];
  const std::int64_t user_a_ids = kjt.offsets[27] - kjt.offsets[18];
  EXPECT_EQ(size, item_ids * 6 + (user_a_ids + user_b_ids) * 4);
  std::vector<float> out(static_cast<std::size_t>(size));
  collection.lookup(kjt.view(), out);
  // Rows in values' order: item's rows, then user_b's, then user_a's.
  std::vector<float> want;
  for (std::int64_t j = 0; j < kjt.offsets[27]; ++j) {
    const std::vector<float> row = j < item_ids ? item.row(kjt.values[j]) : user.row(kjt.values[j]);
    want.insert(want.end(), row.begin(), row.end());
  }
  EXPECT_EQ(out, want);
  std::vector<float> grad(out.size());
  for (std::size_t i = 0; i < grad.size(); ++i) grad[i] = static_cast<float>(i % 7) - 3.0f;
  collection.train_step(kjt.view(), grad);
  // Twins: item's ids and rows; user's ids as user_a's then user_b's (the features' config order).
  const std::vector<std::int64_t> item_vals(kjt.values.begin(), kjt.values.begin() + item_ids);
  item.train_step(IndexTensor(item_vals), std::span<const float>(grad).subspan(0, item_ids * 6));
  std::vector<std::int64_t> user_vals(kjt.values.begin() + item_ids + user_b_ids, kjt.values.begin() + kjt.offsets[27]);
  user_vals.insert(user_vals.end(), kjt.values.begin() + item_ids, kjt.values.begin() + item_ids + user_b_ids);
  std::vector<float> user_grad(grad.begin() + item_ids * 6 + user_b_ids * 4, grad.end());
  user_grad.insert(user_grad.end(), grad.begin() + item_ids * 6, grad.begin() + item_ids * 6 + user_b_ids * 4);
  user.train_step(IndexTensor(user_vals), user_grad);
  EXPECT_EQ(collection.table(0).get_weights().values.size(), user.get_weights().values.size());
  const Array<float> got_user = collection.table(0).get_weights(), want_user = user.get_weights();
  const Array<float> got_item = collection.table(1).get_weights(), want_item = item.get_weights();
  EXPECT_TRUE(std::equal(got_user.values.begin(), got_user.values.end(), want_user.values.begin()));
  EXPECT_TRUE(std::equal(got_item.values.begin(), got_item.values.end(), want_item.values.begin()));
}

// Hostile batches: each fails with its message and leaves every table as it was.
struct Snapshot {
  std::vector<std::vector<float>> weights;
  std::vector<std::int64_t> steps;
};

Snapshot snapshot(const TableCollection& collection) {
  Snapshot shot{all_weights(collection), {}};
  for (std::size_t t = 0; t < collection.table_count(); ++t) shot.steps.push_back(collection.table(t).step());
  return shot;
}

void expect_unchanged(const TableCollection& collection, const Snapshot& before) {
  const Snapshot after = snapshot(collection);
  EXPECT_EQ(after.weights, before.weights);
  EXPECT_EQ(after.steps, before.steps);
}

template <class Call>
void expect_error(TableCollection& collection, Status status, const std::string& message, Call&& call) {
  const Snapshot before = snapshot(collection);
  try {
    call();
    ADD_FAILURE() << "no error; expected: " << message;
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), status) << e.what();
    EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
  }
  expect_unchanged(collection, before);
}

TEST(Collection, HostileBatchesNameFeatureAndPositionAndChangeNoTable) {
  CollectionConfig config;
  config.tables.push_back(table_of("small", 10, 4, {"f1", "f2"}, PoolingMode::sum));
  config.tables.push_back(table_of("big", 4000, 4, {"f7"}, PoolingMode::sum, OptimizerKind::adagrad));
  TableCollection collection(config);
  const std::int64_t samples = 14;
  Kjt good = random_batch({"f1", "f2", "f7"}, {10, 10, 4000}, samples, 5, false, 5);
  std::vector<float> grad(static_cast<std::size_t>(samples * collection.pooled_width()), 0.5f);
  std::vector<float> out(grad.size());
  const auto all_calls = [&](const Kjt& kjt, Status status, const std::string& message) {
    expect_error(collection, status, message, [&] { collection.lookup_pooled(kjt.view(), out); });
    expect_error(collection, status, message, [&] { collection.train_step_pooled(kjt.view(), grad); });
  };
  {  // an id past its table, in the last table, after earlier tables would have been stepped
    Kjt kjt = good;
    kjt.lengths[2 * samples + 12] = 4;
    kjt.lengths[2 * samples + 13] = 0;
    kjt.values.resize(static_cast<std::size_t>(kjt.offsets[2 * samples + 12]));
    kjt.values.insert(kjt.values.end(), {1, 2, 3, 5000});
    kjt.finish();
    all_calls(kjt, Status::out_of_range, "feature 'f7' sample 12: indices[3] = 5000 is not in [0, 4000)");
    kjt.use_offsets = true;
    all_calls(kjt, Status::out_of_range, "feature 'f7' sample 12: indices[3] = 5000 is not in [0, 4000)");
  }
  {  // a negative id, a huge one, in a shared table's second feature
    Kjt kjt = good;
    std::int64_t s = 0;
    while (kjt.lengths[samples + s] == 0) ++s;
    const auto at = static_cast<std::size_t>(kjt.offsets[samples + s]);
    kjt.values[at] = -1;
    kjt.finish();
    all_calls(kjt, Status::out_of_range,
              "feature 'f2' sample " + std::to_string(s) + ": indices[0] = -1 is not in [0, 10)");
    kjt.values[at] = std::numeric_limits<std::int64_t>::max();
    all_calls(kjt, Status::out_of_range, "= 9223372036854775807 is not in [0, 10)");
  }
  {
    Kjt kjt = good;
    kjt.lengths[3] = -2;
    all_calls(kjt, Status::invalid_argument, "feature 'f1' sample 3: length -2 is negative");
    kjt = good;
    kjt.lengths[3] += 1;
    all_calls(kjt, Status::shape_mismatch, "values");
    kjt = good;
    kjt.lengths.pop_back();
    all_calls(kjt, Status::shape_mismatch, "not a multiple of the 3 keys");
    kjt = good;
    kjt.use_offsets = true;
    std::swap(kjt.offsets[5], kjt.offsets[6]);
    if (kjt.offsets[5] != kjt.offsets[6]) all_calls(kjt, Status::invalid_argument, "feature 'f1' sample");
    kjt = good;
    kjt.keys = {"f1", "f2", "f9"};
    all_calls(kjt, Status::invalid_argument, "feature 'f7' (table 'big') is not among the batch's keys");
    kjt.keys = {"f1", "f1", "f7"};
    all_calls(kjt, Status::invalid_argument, "key 'f1' is keys[0] and keys[1]");
    kjt = good;
    kjt.weights.assign(3, 1.0f);
    all_calls(kjt, Status::shape_mismatch, "weights hold 3 values");
  }
  // The gradient and the outputs.
  expect_error(collection, Status::shape_mismatch, "grad",
               [&] { collection.train_step_pooled(good.view(), std::span<const float>(grad).subspan(1)); });
  expect_error(collection, Status::shape_mismatch, "pooled output",
               [&] { collection.lookup_pooled(good.view(), std::span<float>(out).subspan(1)); });
  std::vector<float> shared(out.size() + good.values.size() * 2);
  expect_error(collection, Status::invalid_argument, "overlap", [&] {
    // The ids live inside the output's memory.
    auto* ids = reinterpret_cast<std::int64_t*>(shared.data());
    std::copy(good.values.begin(), good.values.end(), ids);
    KeyedJaggedBatch batch = good.view();
    batch.values = IndexTensor(ids, {static_cast<std::int64_t>(good.values.size())});
    collection.lookup_pooled(batch, std::span<float>(shared).subspan(2, out.size()));
  });
  expect_error(collection, Status::invalid_argument, "overlap", [&] {
    embedkit::WeightsView view = collection.table(0).weights_view();
    collection.lookup_pooled(good.view(), view.values().subspan(0, out.size()));
  });
  // A non-finite gradient under "error" in the last table: the first table is not stepped either.
  CollectionConfig strict = config;
  strict.tables[1].config.nonfinite_gradients = embedkit::NonFiniteGradients::error;
  TableCollection guarded(strict);
  std::vector<float> bad = grad;
  std::int64_t sample = 0;  // a sample whose f7 bag is not empty, so its NaN reaches a row
  while (good.lengths[2 * samples + sample] == 0) ++sample;
  bad[static_cast<std::size_t>(sample * guarded.pooled_width() + 9)] = std::numeric_limits<float>::quiet_NaN();
  expect_error(guarded, Status::invalid_argument, "nonfinite_gradients is 'error'",
               [&] { guarded.train_step_pooled(good.view(), bad); });
  // Good calls still work afterwards.
  collection.train_step_pooled(good.view(), grad);
  EXPECT_EQ(collection.table(1).step(), 1);
}

TEST(Collection, ZeroFillTablesReadBadIdsAsZerosAndCountThem) {
  CollectionConfig config;
  config.tables.push_back(table_of("t", 10, 4, {"f"}, PoolingMode::sum));
  config.tables[0].config.bounds_check = embedkit::BoundsCheck::zero_fill;
  TableCollection collection(config);
  Kjt kjt;
  kjt.keys = {"f"};
  kjt.lengths = {2, 1};
  kjt.values = {3, 99, 42};
  kjt.finish();
  const Array<float> out = collection.lookup_pooled(kjt.view());
  const std::vector<float> row = collection.table(0).row(3);
  for (std::int64_t c = 0; c < 4; ++c) EXPECT_EQ(out.values[c], row[c]);
  for (std::int64_t c = 4; c < 8; ++c) EXPECT_EQ(out.values[c], 0.0f);
  EXPECT_EQ(collection.table(0).out_of_range_count(), 2);
}

TEST(Collection, ConfigValidationAndJson) {
  CollectionConfig config = mixed_config();
  config.tables[3].feature_names = {"item"};
  try {
    config.validate();
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("feature 'item' is served by table 'item' and again by table 'geo'"),
              std::string::npos)
        << e.what();
  }
  config = mixed_config();
  config.tables[1].config.name = "user";
  EXPECT_THROW(config.validate(), Error);
  config = mixed_config();
  config.tables[1].feature_names.clear();
  EXPECT_THROW(config.validate(), Error);
  config = mixed_config();
  config.tables[1].config.output_dim = 0;
  EXPECT_THROW(config.validate(), Error);

  const CollectionConfig parsed = CollectionConfig::from_json(mixed_config().to_json());
  ASSERT_EQ(parsed.tables.size(), 4u);
  EXPECT_EQ(parsed.tables[0].feature_names, (std::vector<std::string>{"user_a", "user_b"}));
  EXPECT_EQ(parsed.tables[1].pooling, PoolingMode::mean);
  EXPECT_EQ(parsed.to_json(), mixed_config().to_json());
  const CollectionConfig defaults = CollectionConfig::from_json(
      R"({"tables": [{"name": "t", "input_dim": 5, "output_dim": 2, "optimizer": "adagrad"}]})");
  EXPECT_EQ(defaults.tables[0].feature_names, (std::vector<std::string>{"t"}));
  EXPECT_EQ(defaults.tables[0].pooling, PoolingMode::sum);
  EXPECT_EQ(defaults.tables[0].config.optimizer.kind, OptimizerKind::adagrad);
  EXPECT_THROW(CollectionConfig::from_json(R"({"tables": [{"input_dim": 5, "output_dim": 2, "pooling": "median"}]})"),
               Error);
  EXPECT_THROW(CollectionConfig::from_json(R"({"tables": [], "extra": 1})"), Error);
  EXPECT_THROW(CollectionConfig::from_json(R"({"tables": []})"), Error);
}

// On a simulated device: tables placed against one budget (the small ones on the device, the big
// one on the CPU), and results equal to an all-CPU collection's.
TEST(Collection, PlacementPerTableAgainstOneBudgetAndTheSameResults) {
  CollectionConfig config;
  config.tables.push_back(table_of("big", 20000, 16, {"big"}, PoolingMode::sum, OptimizerKind::adagrad));
  config.tables.push_back(table_of("small_a", 100, 16, {"a"}, PoolingMode::mean, OptimizerKind::adagrad));
  config.tables.push_back(table_of("small_b", 200, 8, {"b", "b2"}, PoolingMode::sum, OptimizerKind::adagrad));
  for (CollectionTable& table : config.tables) table.config.max_batch_lookups = 512;
  // Room for the small tables and their workspaces, not for the big one's 2.5 MB.
  auto context = embedkit::testing::sim_context(2 * kMiB);
  TableCollection placed(config, *context);
  EXPECT_EQ(placed.table(0).placement().device, embedkit::DeviceKind::cpu);
  EXPECT_EQ(placed.table(1).placement().device, embedkit::DeviceKind::cuda);
  EXPECT_EQ(placed.table(2).placement().device, embedkit::DeviceKind::cuda);
  CollectionConfig cpu_config = config;
  for (CollectionTable& table : cpu_config.tables) table.config.placement = embedkit::PlacementPolicy::cpu;
  TableCollection cpu(cpu_config);
  for (std::uint32_t round = 0; round < 3; ++round) {
    const Kjt kjt = random_batch({"b2", "a", "big", "b"}, {200, 100, 20000, 200}, 21, 6, round == 1, 30 + round);
    const Array<float> got = placed.lookup_pooled(kjt.view()), want = cpu.lookup_pooled(kjt.view());
    EXPECT_TRUE(std::equal(got.values.begin(), got.values.end(), want.values.begin(), want.values.end()));
    std::vector<float> grad(got.values.size());
    for (std::size_t i = 0; i < grad.size(); ++i) grad[i] = std::sin(static_cast<float>(i + round));
    placed.train_step_pooled(kjt.view(), grad);
    cpu.train_step_pooled(kjt.view(), grad);
  }
  for (std::size_t t = 0; t < 3; ++t) {
    const Array<float> got = placed.table(t).get_weights(), want = cpu.table(t).get_weights();
    EXPECT_TRUE(std::equal(got.values.begin(), got.values.end(), want.values.begin(), want.values.end())) << t;
  }
}

// A checkpoint: one manifest over the tables; generations replace each other whole; a damaged
// table file fails the load naming it.
TEST(Collection, CheckpointRoundTripAndGenerations) {
  CollectionConfig config = mixed_config();
  for (CollectionTable& table : config.tables)
    table.config.optimizer = OptimizerConfig::defaults(OptimizerKind::adagrad);
  TableCollection collection(config);
  const Kjt kjt = random_batch(kShuffledKeys, kShuffledRows, 12, 4, false, 40);
  const std::vector<float> grad(static_cast<std::size_t>(12 * collection.pooled_width()), 0.5f);
  collection.train_step_pooled(kjt.view(), grad);
  const std::string dir = ::testing::TempDir() + "embedkit_collection_checkpoint";
  std::filesystem::remove_all(dir);
  for (int generation = 1; generation <= 3; ++generation) {
    collection.save(dir);
    const TableCollection loaded = TableCollection::load(dir);
    EXPECT_EQ(loaded.feature_names(), collection.feature_names());
    for (std::size_t t = 0; t < collection.table_count(); ++t) {
      const Array<float> got = loaded.table(t).get_weights(), want = collection.table(t).get_weights();
      EXPECT_TRUE(std::equal(got.values.begin(), got.values.end(), want.values.begin(), want.values.end()));
      EXPECT_EQ(loaded.table(t).step(), collection.table(t).step());
      const Array<float> state = loaded.table(t).optimizer_state("accumulator");
      const Array<float> want_state = collection.table(t).optimizer_state("accumulator");
      EXPECT_TRUE(std::equal(state.values.begin(), state.values.end(), want_state.values.begin()));
    }
    const Array<float> got = loaded.lookup_pooled(kjt.view()), want = collection.lookup_pooled(kjt.view());
    EXPECT_TRUE(std::equal(got.values.begin(), got.values.end(), want.values.begin(), want.values.end()));
    collection.train_step_pooled(kjt.view(), grad);
  }
  // Generations 2 and 3 remain; 1 was deleted.
  EXPECT_FALSE(std::filesystem::exists(dir + "/g1-t0"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/g2-t0"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/g3-t3"));
  // A damaged weights file of one table: the load names it.
  for (const auto& entry : std::filesystem::directory_iterator(dir + "/g3-t1")) {
    if (entry.path().filename().string().rfind("weights", 0) == 0) {
      std::fstream file(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
      file.seekp(-4, std::ios::end);
      file.write("\x7f\x7f\x7f\x7f", 4);
    }
  }
  try {
    (void)TableCollection::load(dir);
    ADD_FAILURE() << "a damaged table loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::io_error);
    EXPECT_NE(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)TableCollection::load(dir + "/nowhere"), Error);
  std::filesystem::remove_all(dir);
}

// A table migrated between the CPU and the device while another thread looks the collection up:
// each lookup sees the table where it is (judged under its lock), so every result is the same.
TEST(Collection, LookupsWhileATableMigrates) {
  CollectionConfig config;
  config.tables.push_back(table_of("moving", 500, 16, {"m"}, PoolingMode::sum));
  config.tables.push_back(table_of("still", 300, 8, {"s"}, PoolingMode::mean));
  for (CollectionTable& table : config.tables) {
    table.config.placement = embedkit::PlacementPolicy::cpu;
    table.config.max_batch_lookups = 1 << 14;
  }
  auto context = embedkit::testing::sim_context(64 * kMiB);
  TableCollection collection(config, *context);
  const Kjt kjt = random_batch({"m", "s"}, {500, 300}, 400, 20, false, 12);
  const Array<float> want = collection.lookup_pooled(kjt.view());
  std::atomic<bool> done{false};
  std::thread mover([&] {
    for (int k = 0; k < 20; ++k) collection.table(0).migrate(k % 2 == 0 ? "sim:0" : "cpu");
    done = true;
  });
  int lookups = 0;
  while (!done || lookups < 5) {
    const Array<float> got = collection.lookup_pooled(kjt.view());
    ASSERT_TRUE(std::equal(got.values.begin(), got.values.end(), want.values.begin(), want.values.end()));
    ++lookups;
  }
  mover.join();
}

}  // namespace

namespace {

// A compact host DLTensor over `data`.
template <class T>
DLTensor host_tensor(T* data, std::vector<std::int64_t>& shape) {
  DLTensor tensor{};
  tensor.data = const_cast<std::remove_const_t<T>*>(data);
  tensor.device = {kDLCPU, 0};
  tensor.ndim = static_cast<std::int32_t>(shape.size());
  tensor.shape = shape.data();
  if constexpr (std::is_same_v<std::remove_const_t<T>, float>) {
    tensor.dtype = {kDLFloat, 32, 1};
  } else {
    tensor.dtype = {kDLInt, static_cast<std::uint8_t>(sizeof(T) * 8), 1};
  }
  return tensor;
}

TEST(CollectionCApi, LooksUpTrainsAndNamesTheBadId) {
  const std::string json = R"({"tables": [
      {"name": "small", "input_dim": 10, "output_dim": 4, "seed": 3, "feature_names": ["f1", "f2"]},
      {"name": "big", "input_dim": 4000, "output_dim": 2, "seed": 4, "feature_names": ["f7"], "pooling": "mean",
       "optimizer": "adagrad"}]})";
  ek_collection* handle = nullptr;
  ASSERT_EQ(ek_collection_create(json.c_str(), &handle), EK_OK) << ek_last_error();
  std::size_t tables = 0;
  std::int64_t width = 0;
  ASSERT_EQ(ek_collection_shape(handle, &tables, &width), EK_OK);
  EXPECT_EQ(tables, 2u);
  EXPECT_EQ(width, 10);
  TableCollection twin(CollectionConfig::from_json(json));
  const char* keys[] = {"f7", "f1", "f2"};
  Kjt kjt = random_batch({"f7", "f1", "f2"}, {4000, 10, 10}, 5, 3, false, 2);
  std::vector<std::int64_t> values_shape{static_cast<std::int64_t>(kjt.values.size())};
  std::vector<std::int64_t> lengths_shape{static_cast<std::int64_t>(kjt.lengths.size())};
  std::vector<std::int64_t> out_shape{5, width};
  std::vector<float> out(50);
  DLTensor values = host_tensor(kjt.values.data(), values_shape);
  DLTensor lengths = host_tensor(kjt.lengths.data(), lengths_shape);
  DLTensor out_tensor = host_tensor(out.data(), out_shape);
  ASSERT_EQ(ek_collection_lookup_pooled(handle, keys, 3, &values, &lengths, nullptr, nullptr, &out_tensor), EK_OK)
      << ek_last_error();
  const Array<float> want = twin.lookup_pooled(kjt.view());
  EXPECT_TRUE(std::equal(out.begin(), out.end(), want.values.begin(), want.values.end()));
  std::vector<float> grad(50, 0.25f);
  DLTensor grad_tensor = host_tensor(static_cast<const float*>(grad.data()), out_shape);
  ASSERT_EQ(ek_collection_train_step_pooled(handle, keys, 3, &values, &lengths, nullptr, nullptr, &grad_tensor), EK_OK)
      << ek_last_error();
  twin.train_step_pooled(kjt.view(), grad);
  // A table handle outlives the collection's and reads the trained table.
  ek_table* big = nullptr;
  ASSERT_EQ(ek_collection_table(handle, 1, &big), EK_OK);
  ek_table* none = nullptr;
  EXPECT_EQ(ek_collection_table(handle, 2, &none), EK_OUT_OF_RANGE);
  std::vector<float> bad_out(50);
  kjt.values[0] = 4000;          // f7's first id
  ASSERT_GT(kjt.lengths[0], 0);  // the seed gives f7's sample 0 ids
  {
    DLTensor bad_out_tensor = host_tensor(bad_out.data(), out_shape);
    EXPECT_EQ(ek_collection_lookup_pooled(handle, keys, 3, &values, &lengths, nullptr, nullptr, &bad_out_tensor),
              EK_OUT_OF_RANGE);
    EXPECT_STREQ(ek_last_error(), "feature 'f7' sample 0: indices[0] = 4000 is not in [0, 4000)");
    EXPECT_EQ(ek_collection_train_step_pooled(handle, keys, 3, &values, &lengths, nullptr, nullptr, &grad_tensor),
              EK_OUT_OF_RANGE);
  }
  EXPECT_EQ(ek_collection_lookup_pooled(handle, keys, 3, &values, nullptr, nullptr, nullptr, &out_tensor),
            EK_INVALID_ARGUMENT);
  const std::string dir = ::testing::TempDir() + "embedkit_c_collection_checkpoint";
  std::filesystem::remove_all(dir);
  ASSERT_EQ(ek_collection_save(handle, dir.c_str()), EK_OK) << ek_last_error();
  ek_collection* loaded = nullptr;
  ASSERT_EQ(ek_collection_load(dir.c_str(), &loaded), EK_OK) << ek_last_error();
  std::size_t loaded_tables = 0;
  std::int64_t loaded_width = 0;
  ASSERT_EQ(ek_collection_shape(loaded, &loaded_tables, &loaded_width), EK_OK);
  EXPECT_EQ(loaded_tables, 2u);
  EXPECT_EQ(loaded_width, 10);
  ek_collection_destroy(loaded);
  EXPECT_EQ(ek_collection_load((dir + "/missing").c_str(), &loaded), EK_IO_ERROR);
  std::filesystem::remove_all(dir);
  ek_collection_destroy(handle);
  std::vector<float> weights(8000);
  std::vector<std::int64_t> weights_shape{4000, 2};
  DLTensor weights_tensor = host_tensor(weights.data(), weights_shape);
  ASSERT_EQ(ek_get_weights(big, &weights_tensor), EK_OK) << ek_last_error();
  const Array<float> twin_weights = twin.table(1).get_weights();
  EXPECT_TRUE(std::equal(weights.begin(), weights.end(), twin_weights.values.begin(), twin_weights.values.end()));
  ek_table_destroy(big);
}

}  // namespace
