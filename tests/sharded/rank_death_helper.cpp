// A job in which one rank dies in the middle of a collective call: the last rank kills itself
// while the others are inside a train step waiting for it. Run under mpiexec by
// expect_job_ends.cmake, which requires the job to end, non-zero, within its timeout (Open MPI 4.1
// has no fault tolerance: mpiexec ends the job when a rank dies).
#include <embedkit/embedkit.hpp>

#include <mpi.h>

#include <csignal>
#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  embedkit::TableConfig config;
  config.input_dim = 64;
  config.output_dim = 4;
  config.seed = 1;
  embedkit::ShardedEmbeddingTable table(config);
  const std::vector<std::int64_t> ids = {1, 2, 3, 40, 50, 60};
  const std::vector<float> grads(ids.size() * 4, 0.5f);
  table.train_step(embedkit::IndexTensor(ids), grads);  // everyone alive: this step completes
  std::printf("rank %d: first step done\n", rank);
  std::fflush(stdout);
  if (rank == size - 1) std::raise(SIGKILL);
  table.train_step(embedkit::IndexTensor(ids), grads);  // the others wait here for the dead rank
  std::printf("rank %d: second step done, which it cannot be\n", rank);
  MPI_Finalize();
  return 0;
}
