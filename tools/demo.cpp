#include "demo.hpp"

#include <embedkit/embedkit.hpp>

#include "demo_data.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace embedkit::tools {
namespace {

void print_placement(const EmbeddingTable& table) {
  std::printf("  %-6s -> %s (%s): %s\n", table.config().name.c_str(), table.placement().device_name().c_str(),
              to_string(table.placement().reason_code), table.placement().reason.c_str());
}

bool same_state(const EmbeddingTable& a, const EmbeddingTable& b) {
  if (a.get_weights().values != b.get_weights().values || a.step() != b.step()) return false;
  for (const auto& name : a.optimizer_state_names()) {
    if (a.optimizer_state(name).values != b.optimizer_state(name).values) return false;
  }
  return true;
}

}  // namespace

int run_demo(const DemoOptions& options) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // interleave with the log lines on stderr in order
  std::printf("embedkit %s demo: a two-table recommender trained on synthetic data\n\n", EMBEDKIT_VERSION_STRING);
  std::mt19937_64 rng(2026);
  Data data = make_data(rng);
  std::int64_t pairs = 0;
  for (const auto& liked : data.train) pairs += static_cast<std::int64_t>(liked.size());
  std::printf(
      "data: %lld users x %lld items, planted rank %lld, Zipf(1.05) popularity, %lld training likes, "
      "%lld held out\n\nplacement:\n",
      static_cast<long long>(kUsers), static_cast<long long>(kItems), static_cast<long long>(kRank),
      static_cast<long long>(pairs), static_cast<long long>(kUsers * kHeldOut));
  EmbeddingTable users(table_config("users", kUsers));
  EmbeddingTable items(table_config("items", kItems));
  print_placement(users);
  print_placement(items);

  std::vector<std::pair<std::int64_t, std::int64_t>> likes;
  for (std::int64_t u = 0; u < kUsers; ++u) {
    for (const std::int64_t i : data.train[u]) likes.emplace_back(u, i);
  }
  constexpr std::int64_t kPer = 1 + kNegatives;  // one like and its negatives
  std::vector<std::int64_t> user_ids, item_ids;
  std::vector<float> labels, user_grad, item_grad;
  std::printf("\ntraining (Adagrad, lr 0.2, %lld negatives per like, batches of %lld likes):\n",
              static_cast<long long>(kNegatives), static_cast<long long>(kBatchPairs));
  const auto start = std::chrono::steady_clock::now();
  std::int64_t lookups = 0;
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    std::shuffle(likes.begin(), likes.end(), rng);
    double loss = 0;
    std::int64_t examples = 0;
    for (std::size_t begin = 0; begin < likes.size(); begin += kBatchPairs) {
      const std::size_t end = std::min(likes.size(), begin + kBatchPairs);
      user_ids.clear();
      item_ids.clear();
      labels.clear();
      for (std::size_t k = begin; k < end; ++k) {
        for (std::int64_t j = 0; j < kPer; ++j) {
          user_ids.push_back(likes[k].first);
          item_ids.push_back(j == 0 ? likes[k].second : data.popularity(rng));
          labels.push_back(j == 0 ? 1.0f : 0.0f);
        }
      }
      const auto n = static_cast<std::int64_t>(user_ids.size());
      const std::vector<float> eu = users.lookup(IndexTensor(user_ids)).values;
      const std::vector<float> ei = items.lookup(IndexTensor(item_ids)).values;
      user_grad.assign(static_cast<std::size_t>(n * kDim), 0.0f);
      item_grad.assign(static_cast<std::size_t>(n * kDim), 0.0f);
      for (std::int64_t k = 0; k < n; ++k) {
        const float score = dot(&eu[k * kDim], &ei[k * kDim]);
        const float p = 1.0f / (1.0f + std::exp(-score));
        loss += -(labels[k] * std::log(p + 1e-7f) + (1 - labels[k]) * std::log(1 - p + 1e-7f));
        const float g = p - labels[k];  // d(loss)/d(score) of this example
        for (std::int64_t c = 0; c < kDim; ++c) {
          user_grad[k * kDim + c] = g * ei[k * kDim + c];
          item_grad[k * kDim + c] = g * eu[k * kDim + c];
        }
      }
      users.train_step(IndexTensor(user_ids), user_grad);
      items.train_step(IndexTensor(item_ids), item_grad);
      examples += n;
      lookups += 2 * n;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const int filled = epoch * 30 / options.epochs;
    std::printf("  epoch %2d/%d [%s%s] loss %.4f  %.2f M lookups/s\n", epoch, options.epochs,
                std::string(static_cast<std::size_t>(filled), '#').c_str(),
                std::string(static_cast<std::size_t>(30 - filled), '.').c_str(), loss / static_cast<double>(examples),
                static_cast<double>(lookups) / seconds / 1e6);
  }

  const double recall = recall_at_10(users.get_weights().values, items.get_weights().values, data);
  const double random = 10.0 / static_cast<double>(kItems - (kPositives - kHeldOut));
  std::printf("\nheld-out recall@10: %.4f   random ranking: %.4f   (%.0fx random)\n\n", recall, random,
              recall / random);
  std::printf("%s\n%s\n", users.summary().to_string().c_str(), items.summary().to_string().c_str());

  std::string directory = options.checkpoint_directory;
  if (directory.empty()) {
    char pattern[] = "/tmp/embedkit-demo-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) {
      std::fprintf(stderr, "embedkit: error: cannot create a temporary directory for the checkpoint\n");
      return 1;
    }
    directory = pattern;
  }
  users.save(directory + "/users");
  items.save(directory + "/items");
  const EmbeddingTable users_back = EmbeddingTable::load(directory + "/users");
  const EmbeddingTable items_back = EmbeddingTable::load(directory + "/items");
  const bool identical = same_state(users, users_back) && same_state(items, items_back);
  std::printf("checkpoint: saved to %s/{users,items}, reloaded: %s\n", directory.c_str(),
              identical ? "identical (weights, optimizer state, step)" : "DIFFERENT");
  const bool learned = recall > 3.0 * random;
  if (!learned) std::printf("recall@10 is not 3x the random baseline: the demo FAILED\n");
  return identical && learned ? 0 : 1;
}

}  // namespace embedkit::tools
