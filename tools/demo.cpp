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
  const bool synthetic = options.ratings.empty();
  const Data data = synthetic ? make_synthetic_data(options.seed)
                              : load_ratings(options.ratings, options.min_rating, options.held_out);
  std::printf("embedkit %s demo: a two-table recommender trained on %s\n\n", EMBEDKIT_VERSION_STRING,
              synthetic ? "synthetic data" : "a ratings file");
  std::printf("data: %s: %lld training likes, %lld held out\n\nplacement:\n", data.description.c_str(),
              static_cast<long long>(data.training_likes()), static_cast<long long>(data.held_out_likes()));
  EmbeddingTable users(table_config("users", data.users, options.seed));
  EmbeddingTable items(table_config("items", data.items, options.seed));
  print_placement(users);
  print_placement(items);

  std::vector<std::pair<std::int64_t, std::int64_t>> likes;
  for (std::int64_t u = 0; u < data.users; ++u) {
    for (const std::int64_t i : data.train[static_cast<std::size_t>(u)]) likes.emplace_back(u, i);
  }
  std::mt19937_64 rng(options.seed);
  NegativeSampler sampler(data);
  std::vector<std::int64_t> user_ids, item_ids;
  std::vector<float> user_grad, item_grad;
  std::printf(
      "\ntraining (Adagrad, lr %.2g, %lld popularity-sampled negatives per like, softmax with a log-Q correction, "
      "batches of %lld likes):\n",
      static_cast<double>(users.config().optimizer.learning_rate), static_cast<long long>(kNegatives),
      static_cast<long long>(kBatchPairs));
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
      append_examples(likes, begin, end, 1, sampler, rng, user_ids, item_ids);
      const auto n = static_cast<std::int64_t>(user_ids.size());
      const std::vector<float> eu = users.lookup(IndexTensor(user_ids)).values;
      const std::vector<float> ei = items.lookup(IndexTensor(item_ids)).values;
      loss += sampled_softmax_loss(eu, ei, item_ids, sampler, user_grad, item_grad);
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

  const Recalls recalls = evaluate(users.get_weights().values, items.get_weights().values, data);
  std::printf("\n%s\n\n", recall_line(recalls).c_str());
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
  const bool learned = !synthetic || recalls.model >= kPopularityMargin * recalls.popularity;
  if (!learned) std::printf("recall@10 is not %.1fx the popularity baseline's: the demo FAILED\n", kPopularityMargin);
  return identical && learned ? 0 : 1;
}

}  // namespace embedkit::tools
