// `embedkit demo --sharded` under mpirun: the demo's recommender with both tables sharded over the
// ranks. Every rank builds the same data; each trains on its share of every batch (likes k with
// k % world == rank), so the ranks together take the single-process demo's steps on the whole
// batch. Rank 0 reports; every rank saves its shard and checks the reloaded table.
#include <embedkit/embedkit.hpp>

#include "demo.hpp"
#include "demo_data.hpp"

#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace embedkit::tools {
namespace {

bool same_shard(const ShardedEmbeddingTable& a, const ShardedEmbeddingTable& b) {
  if (a.shard().get_weights().values != b.shard().get_weights().values || a.step() != b.step()) return false;
  for (const auto& name : a.shard().optimizer_state_names()) {
    if (a.shard().optimizer_state(name).values != b.shard().optimizer_state(name).values) return false;
  }
  return true;
}

// Runs the demo on MPI_COMM_WORLD, MPI already initialised.
int sharded_demo(const DemoOptions& options, int rank, int world) {
  const bool talk = rank == 0;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const bool synthetic = options.ratings.empty();
  const Data data = synthetic ? make_synthetic_data(options.seed)  // the same data on every rank
                              : load_ratings(options.ratings, options.min_rating, options.held_out);
  if (talk) {
    std::printf("embedkit %s demo, sharded over %d MPI ranks: a two-table recommender on %s\n\n",
                EMBEDKIT_VERSION_STRING, world, synthetic ? "synthetic data" : "a ratings file");
    std::printf("data: %s: %lld training likes, %lld held out\n\n", data.description.c_str(),
                static_cast<long long>(data.training_likes()), static_cast<long long>(data.held_out_likes()));
  }
  std::mt19937_64 rng(options.seed);                                           // the same shuffles on every rank
  std::mt19937_64 negatives(options.seed + static_cast<std::uint64_t>(rank));  // each rank its own negatives
  NegativeSampler sampler(data);
  ShardedEmbeddingTable users(table_config("users", data.users, options.seed));
  ShardedEmbeddingTable items(table_config("items", data.items, options.seed));
  if (talk) {
    for (const ShardedEmbeddingTable* table : {&users, &items}) {
      std::printf("  %-6s rows per rank:", table->config().name.c_str());
      for (int r = 0; r < world; ++r) std::printf(" %lld", static_cast<long long>(table->rows(r).count));
      std::printf(" (rank 0's shard on %s)\n", table->shard().placement().device_name().c_str());
    }
  }
  std::vector<std::pair<std::int64_t, std::int64_t>> likes;
  for (std::int64_t u = 0; u < data.users; ++u) {
    for (const std::int64_t i : data.train[static_cast<std::size_t>(u)]) likes.emplace_back(u, i);
  }
  std::vector<std::int64_t> user_ids, item_ids;
  std::vector<float> user_grad, item_grad;
  const auto start = std::chrono::steady_clock::now();
  double communicating = 0;
  std::uint64_t bytes_sent = 0;
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    std::shuffle(likes.begin(), likes.end(), rng);  // the same order on every rank
    double loss = 0;
    std::int64_t examples = 0;
    for (std::size_t begin = 0; begin < likes.size(); begin += kBatchPairs) {
      const std::size_t end = std::min(likes.size(), begin + kBatchPairs);
      user_ids.clear();
      item_ids.clear();
      append_examples(likes, begin + static_cast<std::size_t>(rank), end, static_cast<std::size_t>(world), sampler,
                      negatives, user_ids, item_ids);
      const auto n = static_cast<std::int64_t>(user_ids.size());
      const std::vector<float> eu = users.lookup(IndexTensor(user_ids)).values;
      communicating += users.last_exchange().seconds_communicating;
      const std::vector<float> ei = items.lookup(IndexTensor(item_ids)).values;
      communicating += items.last_exchange().seconds_communicating;
      loss += sampled_softmax_loss(eu, ei, item_ids, sampler, user_grad, item_grad);
      users.train_step(IndexTensor(user_ids), user_grad);
      communicating += users.last_exchange().seconds_communicating;
      bytes_sent += users.last_exchange().bytes_sent;
      items.train_step(IndexTensor(item_ids), item_grad);
      communicating += items.last_exchange().seconds_communicating;
      bytes_sent += items.last_exchange().bytes_sent;
      examples += n;
    }
    double totals[2] = {loss, static_cast<double>(examples)}, global[2] = {0, 0};
    MPI_Allreduce(totals, global, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (talk) {
      std::printf("  epoch %2d/%d loss %.4f  (rank 0: %.1f%% of %.1f s in MPI, %.1f MiB sent)\n", epoch, options.epochs,
                  global[0] / global[1], 100.0 * communicating / seconds, seconds,
                  static_cast<double>(bytes_sent) / (1 << 20));
    }
  }
  // Every rank gathers both matrices (small here); rank 0 evaluates.
  const std::vector<float> u = users.get_weights().values, v = items.get_weights().values;
  const Recalls recalls = evaluate(u, v, data);
  if (talk) std::printf("\n%s\n", recall_line(recalls).c_str());

  std::string directory = options.checkpoint_directory;
  char path[64] = "";
  if (directory.empty()) {
    if (rank == 0) {
      std::snprintf(path, sizeof path, "/tmp/embedkit-demo-sharded-XXXXXX");
      if (::mkdtemp(path) == nullptr) path[0] = '\0';
    }
    MPI_Bcast(path, sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (path[0] == '\0') {
      if (talk) std::fprintf(stderr, "embedkit: error: cannot create a temporary directory for the checkpoint\n");
      return 1;
    }
    directory = path;
  }
  users.save(directory + "/users");
  items.save(directory + "/items");
  const ShardedEmbeddingTable users_back = ShardedEmbeddingTable::load(directory + "/users");
  const ShardedEmbeddingTable items_back = ShardedEmbeddingTable::load(directory + "/items");
  int identical = same_shard(users, users_back) && same_shard(items, items_back) ? 1 : 0, all_identical = 0;
  MPI_Allreduce(&identical, &all_identical, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  const bool learned = !synthetic || recalls.model >= kPopularityMargin * recalls.popularity;
  if (talk) {
    std::printf("checkpoint: saved to %s/{users,items} (a shard per rank), reloaded: %s\n", directory.c_str(),
                all_identical == 1 ? "identical (weights, optimizer state, step)" : "DIFFERENT");
    if (!learned) {
      std::printf("recall@10 is not %.1fx the popularity baseline's: the demo FAILED\n", kPopularityMargin);
    }
  }
  return all_identical == 1 && learned ? 0 : 1;
}

}  // namespace

int run_sharded_demo(const DemoOptions& options) {
  int argc = 0;
  char** argv = nullptr;
  MPI_Init(&argc, &argv);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  int code = 1;
  try {
    code = sharded_demo(options, rank, world);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "embedkit: error: %s\n", e.what());  // every rank fails alike: each says so
  }
  MPI_Finalize();
  return code;
}

}  // namespace embedkit::tools
