#pragma once
// What `embedkit demo` and `embedkit demo --sharded` share: the data (synthetic, or a MovieLens-style
// ratings file), the tables' config, the negatives and the loss, and the held-out evaluation.

#include <embedkit/embedkit.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace embedkit::tools {

constexpr std::int64_t kDim = 16, kNegatives = 4, kBatchPairs = 512;
constexpr std::uint64_t kDefaultSeed = 2026;

/// Likes split per user into training likes and held-out likes; rows are dense ids.
struct Data {
  std::int64_t users = 0, items = 0;
  std::vector<std::vector<std::int64_t>> train, test;  // per user
  std::vector<std::int64_t> counts;                    // per item: its training likes
  std::string description;                             // one line: what the data is
  std::int64_t training_likes() const;
  std::int64_t held_out_likes() const;
};

/// The built-in data: 2000 users x 5000 items with a planted rank-8 taste and Zipf(1.05) item
/// popularity; each user likes 20 items, 4 of them held out at random.
Data make_synthetic_data(std::uint64_t seed);

/// A MovieLens-style ratings file: `user item rating timestamp` per line, tab (or blank) or `::`
/// separated (as u.data and ratings.dat are). Ratings >= `min_rating` are likes; user and item ids
/// are remapped to dense rows in increasing order; each user's latest `held_out` likes (by
/// timestamp, then by line) are held out when the user has more likes than that. Throws
/// embedkit::Error naming the file and line on a bad line, and on a file without likes.
Data load_ratings(const std::string& path, double min_rating, std::int64_t held_out);

TableConfig table_config(const char* name, std::int64_t rows, std::uint64_t seed);

/// The negatives: items drawn by popularity (training like count + 1), and log Q(item) of each.
struct NegativeSampler {
  explicit NegativeSampler(const Data& data);
  std::int64_t operator()(std::mt19937_64& rng) { return distribution(rng); }
  std::discrete_distribution<std::int64_t> distribution;
  std::vector<float> log_q;
};

/// Appends likes [begin, end) taking every `stride`-th from `begin`, each followed by its
/// kNegatives sampled negatives, to `user_ids` and `item_ids`.
void append_examples(const std::vector<std::pair<std::int64_t, std::int64_t>>& likes, std::size_t begin,
                     std::size_t end, std::size_t stride, NegativeSampler& sampler, std::mt19937_64& rng,
                     std::vector<std::int64_t>& user_ids, std::vector<std::int64_t>& item_ids);

/// The loss of groups of 1 + kNegatives examples (a like, then its negatives) from their embeddings
/// `eu`, `ei`: a sampled softmax over each group whose logits are corrected by - log Q(item), Q the
/// sampling distribution, so that popular items are not pushed down for being drawn as negatives
/// often (the plain logistic loss over popularity negatives learns less than the like counts).
/// Writes d(loss)/d(embedding) of every example, returns the summed loss.
double sampled_softmax_loss(const std::vector<float>& eu, const std::vector<float>& ei,
                            const std::vector<std::int64_t>& item_ids, const NegativeSampler& sampler,
                            std::vector<float>& user_grad, std::vector<float>& item_grad);

/// recall@10 over the held-out likes of the model (items ranked by dot product), of popularity
/// (ranked by training like count, ties to the lower id) and of a random ranking (its
/// expectation); each user's training likes are left out of every ranking.
struct Recalls {
  double model = 0, popularity = 0, random = 0;
};
Recalls evaluate(const std::vector<float>& u, const std::vector<float>& v, const Data& data);

/// "held-out recall@10: 0.1234, popularity: 0.0861 (1.43x), random: 0.0020 (62x)"
std::string recall_line(const Recalls& recalls);

/// The gate on the synthetic data: the model beats popularity 1.2 times over.
constexpr double kPopularityMargin = 1.2;

}  // namespace embedkit::tools
