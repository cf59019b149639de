#pragma once
// What `embedkit demo` and `embedkit demo --sharded` share: the synthetic recommender data, the
// tables' config and the model's score.

#include <embedkit/embedkit.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace embedkit::tools {

constexpr std::int64_t kUsers = 2000, kItems = 5000, kRank = 8, kDim = 16;
constexpr std::int64_t kPositives = 20, kHeldOut = 4, kNegatives = 4, kBatchPairs = 512;

// Synthetic interactions: each user likes, among items drawn by Zipf popularity, those closest to
// its planted taste (a rank-8 dot product); some of those likes are held out for evaluation.
struct Data {
  std::vector<std::vector<std::int64_t>> train, test;  // per user
  std::discrete_distribution<std::int64_t> popularity;
};

inline Data make_data(std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> users(kUsers * kRank), items(kItems * kRank), weights(kItems);
  for (auto& x : users) x = normal(rng);
  for (auto& x : items) x = normal(rng);
  for (std::int64_t i = 0; i < kItems; ++i) weights[i] = 1.0 / std::pow(static_cast<double>(i + 1), 1.05);
  Data data{{}, {}, std::discrete_distribution<std::int64_t>(weights.begin(), weights.end())};
  for (std::int64_t u = 0; u < kUsers; ++u) {
    std::vector<std::pair<double, std::int64_t>> candidates;
    for (int k = 0; k < 400; ++k) {
      const std::int64_t i = data.popularity(rng);
      double affinity = 0;
      for (std::int64_t r = 0; r < kRank; ++r) affinity += users[u * kRank + r] * items[i * kRank + r];
      candidates.emplace_back(-affinity, i);
    }
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end(),
                                 [](const auto& a, const auto& b) { return a.second == b.second; }),
                     candidates.end());
    std::vector<std::int64_t> liked;
    for (std::size_t k = 0; k < candidates.size() && static_cast<std::int64_t>(liked.size()) < kPositives; ++k) {
      liked.push_back(candidates[k].second);
    }
    std::shuffle(liked.begin(), liked.end(), rng);
    data.test.emplace_back(liked.begin(), liked.begin() + kHeldOut);
    data.train.emplace_back(liked.begin() + kHeldOut, liked.end());
  }
  return data;
}

inline TableConfig table_config(const char* name, std::int64_t rows) {
  TableConfig config;
  config.name = name;
  config.input_dim = rows;
  config.output_dim = kDim;
  config.seed = 2026;
  config.embeddings_initializer = Initializer::from_name("random_normal");
  config.embeddings_initializer.stddev = 0.1;
  config.optimizer = OptimizerConfig::defaults(OptimizerKind::adagrad);
  config.optimizer.learning_rate = 0.2;
  config.max_batch_lookups = kBatchPairs * (1 + kNegatives);
  return config;
}

inline float dot(const float* a, const float* b) {
  float s = 0;
  for (std::int64_t c = 0; c < kDim; ++c) s += a[c] * b[c];
  return s;
}

// recall@10 over the held-out likes: each user's items ranked by score, training likes left out.
inline double recall_at_10(const std::vector<float>& u, const std::vector<float>& v, const Data& data) {
  std::int64_t hits = 0, total = 0;
  std::vector<std::pair<float, std::int64_t>> scores(kItems);
  for (std::int64_t user = 0; user < kUsers; ++user) {
    for (std::int64_t i = 0; i < kItems; ++i) scores[i] = {-dot(&u[user * kDim], &v[i * kDim]), i};
    for (const std::int64_t i : data.train[user]) scores[i].first = INFINITY;
    std::partial_sort(scores.begin(), scores.begin() + 10, scores.end());
    for (const std::int64_t held : data.test[user]) {
      hits += std::any_of(scores.begin(), scores.begin() + 10, [&](const auto& s) { return s.second == held; });
      ++total;
    }
  }
  return static_cast<double>(hits) / static_cast<double>(total);
}

}  // namespace embedkit::tools
