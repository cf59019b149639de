#pragma once
// `embedkit demo`: the README's main job, a small recommender trained end to end.

#include <string>

namespace embedkit::tools {

struct DemoOptions {
  std::string checkpoint_directory;  ///< where the checkpoint goes; a fresh temporary one when empty
  int epochs = 12;
};

/// Trains two tables (users x items, dot product, logistic loss with negative sampling) on
/// synthetic data with a planted low-rank structure and Zipf item popularity, prints placement,
/// progress, held-out recall@10 against a random baseline, summaries, and checks a checkpoint
/// round trip. Returns the exit code: 0 when recall beats random 3 times over and the reloaded
/// checkpoint equals the tables.
int run_demo(const DemoOptions& options);

/// The same demo with both tables sharded over MPI_COMM_WORLD (run under mpirun): initialises and
/// finalises MPI, trains each rank on its share of every batch, prints from rank 0, and checks a
/// sharded checkpoint round trip. Returns the exit code, the same on every rank.
int run_sharded_demo(const DemoOptions& options);

}  // namespace embedkit::tools
