// A Criteo-shaped table collection (DLRM's Kaggle configuration: 26 tables of the Criteo Kaggle
// cardinalities, one feature each, ids Zipf(1.05) per table) looked up and trained in one
// TableCollection call against the same 26 tables called one by one. Each contender's forward
// (pooled sum) and train step (SGD, row-wise Adagrad) is timed in interleaved rounds; the report
// gives the best and median of each and the ratio separate / collection.
//
//   bench_collection onehot BATCH ROUNDS            both contenders in this process (dim 16, one id
//                                                   per feature and sample)
//   bench_collection multihot BATCH ROUNDS WHICH    bags of 20-40 ids, dim 64, tables capped at 4M
//                                                   rows; WHICH = collection | separate, each in its
//                                                   own process (two copies do not fit 24 GiB)
#include <embedkit/collection.hpp>
#include <embedkit/table.hpp>

#include "core/id_streams.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using embedkit::CollectionConfig;
using embedkit::CollectionTable;
using embedkit::EmbeddingTable;
using embedkit::IndexTensor;
using embedkit::KeyedJaggedBatch;
using embedkit::OptimizerKind;
using embedkit::PoolingMode;
using embedkit::TableCollection;

// The Criteo Kaggle cardinalities, in DLRM's order.
constexpr std::int64_t kCardinalities[] = {1460,  583,  10131227, 2202608, 305, 24,     12517,   633,   3,
                                           93145, 5683, 8351593,  3194,    27,  14992,  5461306, 10,    5652,
                                           2173,  4,    7046547,  18,      15,  286181, 105,     142572};
constexpr std::int64_t kTables = 26;

double seconds(const std::function<void()>& run) {
  const auto start = std::chrono::steady_clock::now();
  run();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct Timing {
  std::string name;
  std::function<void()> run;
  std::vector<double> times;

  double best() const { return *std::min_element(times.begin(), times.end()); }
  double median() const {
    std::vector<double> sorted = times;
    std::sort(sorted.begin(), sorted.end());
    return sorted[sorted.size() / 2];
  }
};

CollectionConfig criteo_config(std::int64_t dim, std::int64_t cap, OptimizerKind optimizer, std::int64_t lookups) {
  CollectionConfig config;
  for (std::int64_t t = 0; t < kTables; ++t) {
    CollectionTable table;
    table.config.name = fmt::format("t{}", t);
    table.config.input_dim = std::min(kCardinalities[t], cap);
    table.config.output_dim = dim;
    table.config.seed = static_cast<std::uint64_t>(t);
    table.config.placement = embedkit::PlacementPolicy::cpu;
    table.config.optimizer = embedkit::OptimizerConfig::defaults(optimizer);
    table.config.max_batch_lookups = lookups;
    table.feature_names = {fmt::format("f{}", t)};
    table.pooling = PoolingMode::sum;
    config.tables.push_back(std::move(table));
  }
  return config;
}

// One batch: per table its ids (Zipf(1.05) over that table) and bag lengths.
struct Batch {
  std::vector<std::string> keys;
  std::vector<std::int64_t> values, lengths;
  std::vector<std::vector<std::int64_t>> ids, offsets;  // per table, for the separate calls
  std::vector<float> grad;                              // (batch, 26 × dim)

  KeyedJaggedBatch view() const { return {keys, IndexTensor(values), lengths, {}, {}}; }
};

Batch make_batch(const CollectionConfig& config, std::int64_t batch, std::int64_t min_bag, std::int64_t max_bag,
                 std::int64_t dim) {
  Batch made;
  std::mt19937_64 gen(7);
  for (std::int64_t t = 0; t < kTables; ++t) {
    made.keys.push_back(config.tables[t].feature_names[0]);
    std::vector<std::int64_t> offsets{0};
    for (std::int64_t b = 0; b < batch; ++b) {
      const std::int64_t length = std::uniform_int_distribution<std::int64_t>(min_bag, max_bag)(gen);
      made.lengths.push_back(length);
      offsets.push_back(offsets.back() + length);
    }
    std::vector<std::int64_t> ids =
        embedkit::bench::draw_ids(embedkit::bench::IdDistribution{1.05}, config.tables[t].config.input_dim,
                                  offsets.back(), static_cast<std::uint64_t>(100 + t));
    made.values.insert(made.values.end(), ids.begin(), ids.end());
    made.ids.push_back(std::move(ids));
    made.offsets.push_back(std::move(offsets));
  }
  made.grad.resize(static_cast<std::size_t>(batch * kTables * dim));
  std::uniform_real_distribution<float> uniform(-1e-3f, 1e-3f);
  for (float& g : made.grad) g = uniform(gen);
  return made;
}

// The contenders' calls on one batch, for one optimizer.
struct Contenders {
  std::vector<Timing> collection, separate;
};

void add_collection(std::vector<Timing>& timings, TableCollection& collection, const Batch& batch,
                    std::vector<float>& out, const std::string& optimizer) {
  timings.push_back({"collection: forward", [&] { collection.lookup_pooled(batch.view(), out); }, {}});
  timings.push_back({"collection: train step (" + optimizer + ")",
                     [&] { collection.train_step_pooled(batch.view(), batch.grad); },
                     {}});
}

void add_separate(std::vector<Timing>& timings, std::vector<EmbeddingTable>& tables, const Batch& batch,
                  std::vector<std::vector<float>>& outs, std::vector<float>& wide,
                  std::vector<std::vector<float>>& grads, const std::string& optimizer) {
  timings.push_back({"26 separate calls: forward",
                     [&] {
                       for (std::size_t t = 0; t < tables.size(); ++t) {
                         tables[t].lookup_pooled(IndexTensor(batch.ids[t]), batch.offsets[t], PoolingMode::sum, {},
                                                 outs[t]);
                       }
                     },
                     {}});
  // What a caller of the separate calls does to get the collection's (batch, 26 × dim) matrix (as
  // TorchRec's KeyedTensor holds it).
  timings.push_back(
      {"26 separate calls + concatenation: forward",
       [&] {
         const std::int64_t dim = tables[0].output_dim(), width = dim * std::ssize(tables);
         for (std::size_t t = 0; t < tables.size(); ++t) {
           tables[t].lookup_pooled(IndexTensor(batch.ids[t]), batch.offsets[t], PoolingMode::sum, {}, outs[t]);
         }
         const auto samples = static_cast<std::int64_t>(outs[0].size()) / dim;
         for (std::int64_t b = 0; b < samples; ++b) {
           for (std::size_t t = 0; t < tables.size(); ++t) {
             std::copy_n(outs[t].data() + b * dim, dim, wide.data() + b * width + static_cast<std::int64_t>(t) * dim);
           }
         }
       },
       {}});
  timings.push_back({"26 separate calls: train step (" + optimizer + ")",
                     [&] {
                       for (std::size_t t = 0; t < tables.size(); ++t) {
                         tables[t].train_step_pooled(IndexTensor(batch.ids[t]), batch.offsets[t], PoolingMode::sum, {},
                                                     grads[t]);
                       }
                     },
                     {}});
}

}  // namespace

int main(int argc, char** argv) {
  const std::string shape = argc > 1 ? argv[1] : "onehot";
  const std::int64_t batch_size = argc > 2 ? std::atoll(argv[2]) : 2048;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 10;
  const std::string which = argc > 4 ? argv[4] : "both";
  const bool multihot = shape == "multihot";
  const std::int64_t dim = multihot ? 64 : 16;
  const std::int64_t cap = multihot ? std::int64_t{4} << 20 : std::int64_t{1} << 40;
  const std::int64_t min_bag = multihot ? 20 : 1, max_bag = multihot ? 40 : 1;
  std::printf("### %s, batch %lld, dim %lld, %d interleaved rounds, contenders: %s\n\n", shape.c_str(),
              static_cast<long long>(batch_size), static_cast<long long>(dim), rounds, which.c_str());
  std::printf("| optimizer | call | best ms | median ms |\n| --- | --- | ---: | ---: |\n");
  for (const OptimizerKind optimizer : {OptimizerKind::sgd, OptimizerKind::rowwise_adagrad}) {
    const std::string name = optimizer == OptimizerKind::sgd ? "sgd" : "rowwise_adagrad";
    const CollectionConfig config = criteo_config(dim, cap, optimizer, batch_size * max_bag);
    const Batch batch = make_batch(config, batch_size, min_bag, max_bag, dim);
    std::vector<Timing> timings;
    std::unique_ptr<TableCollection> collection;
    std::vector<EmbeddingTable> tables;
    std::vector<float> out(static_cast<std::size_t>(batch_size * kTables * dim)), wide(out.size());
    std::vector<std::vector<float>> outs, grads;
    if (which != "separate") {
      collection = std::make_unique<TableCollection>(config);
      add_collection(timings, *collection, batch, out, name);
    }
    if (which != "collection") {
      for (const CollectionTable& table : config.tables) {
        tables.emplace_back(table.config);
        outs.emplace_back(static_cast<std::size_t>(batch_size * dim));
        std::vector<float> grad(static_cast<std::size_t>(batch_size * dim));
        const std::size_t t = grads.size();
        for (std::int64_t b = 0; b < batch_size; ++b) {
          std::copy_n(batch.grad.data() + (b * kTables + static_cast<std::int64_t>(t)) * dim, dim,
                      grad.data() + b * dim);
        }
        grads.push_back(std::move(grad));
      }
      add_separate(timings, tables, batch, outs, wide, grads, name);
    }
    for (Timing& timing : timings) timing.run();  // warm up: page in rows, fill caches
    for (int round = 0; round < rounds; ++round) {
      for (Timing& timing : timings) timing.times.push_back(seconds(timing.run));
    }
    for (const Timing& timing : timings) {
      std::printf("| %s | %s | %.3f | %.3f |\n", name.c_str(), timing.name.c_str(), timing.best() * 1e3,
                  timing.median() * 1e3);
    }
    if (which == "both") {  // collection: forward, step; separate: forward, forward + concatenation, step
      const auto ratio = [&](const char* what, std::size_t separate, std::size_t together) {
        std::printf("| %s | **ratio %s / collection** | %.2fx | %.2fx |\n", name.c_str(), what,
                    timings[separate].best() / timings[together].best(),
                    timings[separate].median() / timings[together].median());
      };
      ratio("separate forward", 2, 0);
      ratio("separate forward + concatenation", 3, 0);
      ratio("separate train step", 4, 1);
    }
  }
  std::printf("\n");
  return 0;
}
