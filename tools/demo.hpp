#pragma once
// `embedkit demo`: the README's main job, a small recommender trained end to end.

#include <cstdint>
#include <string>

namespace embedkit::tools {

struct DemoOptions {
  std::string checkpoint_directory;  ///< where the checkpoint goes; a fresh temporary one when empty
  int epochs = 12;
  std::uint64_t seed = 2026;  ///< the synthetic data's, the shuffles', the negatives' and the tables' seed
  std::string ratings;        ///< a MovieLens-style ratings file to train on instead of the synthetic data
  double min_rating = 4;      ///< with `ratings`: ratings at or above this are likes
  std::int64_t held_out = 1;  ///< with `ratings`: each user's latest likes held out for evaluation
};

/// Trains two tables (users x items, dot product, a sampled softmax over popularity-sampled negatives
/// with a log-Q correction) on synthetic data with a planted low-rank structure and Zipf item
/// popularity, or on a ratings file; prints placement, progress, held-out recall@10 next to the
/// popularity and random baselines', summaries, and checks a checkpoint round trip. Returns the exit
/// code: 0 when the reloaded checkpoint equals the tables and, on the synthetic data, the model's
/// recall is at least kPopularityMargin times popularity's. A bad ratings file throws.
int run_demo(const DemoOptions& options);

/// The same demo with both tables sharded over MPI_COMM_WORLD (run under mpirun): initialises and
/// finalises MPI, trains each rank on its share of every batch, prints from rank 0, and checks a
/// sharded checkpoint round trip. Returns the exit code, the same on every rank.
int run_sharded_demo(const DemoOptions& options);

}  // namespace embedkit::tools
