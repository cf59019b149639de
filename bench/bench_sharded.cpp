// bench_sharded: what a ShardedEmbeddingTable costs per step, run under mpirun on 1, 2, 4 ... ranks
// (bench/run_sharded_bench.sh runs them in turn).
//
// Every rank holds a batch of --batch ids per step drawn from a Zipf law (exponent --zipf, hot ids
// spread over the table), and runs --steps steps of: a lookup of its batch, then a train step
// (Adagrad) with a gradient of the same shape; both calls are collective. Each rank records, per
// call, the bytes it sent to and received from other ranks (ids and rows; what a network would
// carry between machines) and the seconds of the call and of those spent inside MPI. Rank 0 prints
// the mean per step, with the slowest rank's time (the step ends when the slowest rank's does):
//   lookup_ms, train_ms            the slowest rank's time per call
//   comm_share                     the fraction of that time inside MPI calls (waiting included)
//   lookup_sent_KiB, train_sent_KiB  mean bytes a rank sends per call, to compare with
//                                  bench/sharded_network_model.py
//   distinct_per_rank              distinct ids per rank's batch: the lookup sends each once
// No Google Benchmark: its adaptive iteration counts would differ between ranks, and every call
// here is collective, so each rank runs the same fixed number of steps after --warmup steps.
//
// Usage: mpirun -np N bench_sharded [--rows R] [--dim D] [--batch B] [--steps S] [--warmup W]
//                                   [--zipf A] [--split contiguous|modulo] [--json]
// Shared 2-core machines make absolute times noisy, and N > cores oversubscribes: compare the bytes
// with the model, and the times only between runs on the same machine.

#include <embedkit/embedkit.hpp>

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace {

struct Options {
  std::int64_t rows = 1 << 18;
  std::int64_t dim = 64;
  std::int64_t batch = 8192;
  int steps = 20;
  int warmup = 3;
  double zipf = 1.05;
  std::string split = "modulo";
  bool json = false;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int k = 1; k < argc; ++k) {
    const std::string flag = argv[k];
    const char* value = k + 1 < argc ? argv[k + 1] : "";
    if (flag == "--json") {
      o.json = true;
      continue;
    }
    ++k;
    if (flag == "--rows") o.rows = std::atoll(value);
    else if (flag == "--dim") o.dim = std::atoll(value);
    else if (flag == "--batch") o.batch = std::atoll(value);
    else if (flag == "--steps") o.steps = std::atoi(value);
    else if (flag == "--warmup") o.warmup = std::atoi(value);
    else if (flag == "--zipf") o.zipf = std::atof(value);
    else if (flag == "--split") o.split = value;
    else {
      std::fprintf(stderr, "bench_sharded: unknown flag %s\n", flag.c_str());
      std::exit(2);
    }
  }
  return o;
}

// Zipf ranks mapped through a fixed permutation, so hot ids are spread over the table (and ranks).
class ZipfIds {
 public:
  ZipfIds(std::int64_t rows, double exponent, std::uint64_t seed) : generator_(seed), permutation_(rows) {
    std::vector<double> weights(static_cast<std::size_t>(rows));
    for (std::int64_t k = 0; k < rows; ++k)
      weights[static_cast<std::size_t>(k)] = 1.0 / std::pow(double(k + 1), exponent);
    zipf_ = std::discrete_distribution<std::int64_t>(weights.begin(), weights.end());
    for (std::int64_t k = 0; k < rows; ++k) permutation_[static_cast<std::size_t>(k)] = k;
    std::mt19937_64 shuffle(7);
    std::shuffle(permutation_.begin(), permutation_.end(), shuffle);
  }
  void fill(std::vector<std::int64_t>& ids) {
    for (auto& id : ids) id = permutation_[static_cast<std::size_t>(zipf_(generator_))];
  }

 private:
  std::mt19937_64 generator_;
  std::discrete_distribution<std::int64_t> zipf_;
  std::vector<std::int64_t> permutation_;
};

struct Totals {
  double lookup_seconds = 0, lookup_comm = 0, train_seconds = 0, train_comm = 0;
  double lookup_sent = 0, train_sent = 0, distinct = 0;
};

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  const Options o = parse(argc, argv);
  int code = 0;
  try {
    embedkit::TableConfig config;
    config.input_dim = o.rows;
    config.output_dim = o.dim;
    config.seed = 1;
    config.name = "bench";
    config.max_batch_lookups = o.batch;
    config.optimizer = embedkit::OptimizerConfig::defaults(embedkit::OptimizerKind::adagrad);
    embedkit::ShardedEmbeddingTable table(config, embedkit::parse_row_split(o.split));
    ZipfIds draw(o.rows, o.zipf, 1000 + static_cast<std::uint64_t>(rank));
    std::vector<std::int64_t> ids(static_cast<std::size_t>(o.batch));
    std::vector<float> out(static_cast<std::size_t>(o.batch * o.dim));
    std::vector<float> grad(out.size(), 0.001f);
    Totals mine;
    for (int step = 0; step < o.warmup + o.steps; ++step) {
      draw.fill(ids);
      const embedkit::IndexTensor batch(ids);
      table.lookup(batch, out);
      const embedkit::ExchangeStats lookup = table.last_exchange();
      table.train_step(batch, grad);
      const embedkit::ExchangeStats train = table.last_exchange();
      if (step < o.warmup) continue;
      mine.lookup_seconds += lookup.seconds;
      mine.lookup_comm += lookup.seconds_communicating;
      mine.lookup_sent += static_cast<double>(lookup.bytes_sent);
      mine.train_seconds += train.seconds;
      mine.train_comm += train.seconds_communicating;
      mine.train_sent += static_cast<double>(train.bytes_sent);
      std::vector<std::int64_t> distinct = ids;
      std::sort(distinct.begin(), distinct.end());
      mine.distinct += static_cast<double>(std::unique(distinct.begin(), distinct.end()) - distinct.begin());
    }
    // The slowest rank's times (with its MPI share), the mean bytes and distinct ids over ranks.
    double slowest[2] = {mine.lookup_seconds, mine.train_seconds}, slowest_all[2] = {0, 0};
    MPI_Allreduce(slowest, slowest_all, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    double sums[5] = {mine.lookup_sent, mine.train_sent, mine.distinct, mine.lookup_comm / mine.lookup_seconds,
                      mine.train_comm / mine.train_seconds};
    double sums_all[5] = {0, 0, 0, 0, 0};
    MPI_Allreduce(sums, sums_all, 5, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
      const double steps = o.steps, ranks = world;
      const double lookup_ms = 1e3 * slowest_all[0] / steps, train_ms = 1e3 * slowest_all[1] / steps;
      const double lookup_share = sums_all[3] / ranks, train_share = sums_all[4] / ranks;
      const double lookup_kib = sums_all[0] / ranks / steps / 1024, train_kib = sums_all[1] / ranks / steps / 1024;
      const double distinct = sums_all[2] / ranks / steps;
      if (o.json) {
        std::printf(
            "{\"ranks\": %d, \"rows\": %lld, \"dim\": %lld, \"batch\": %lld, \"split\": \"%s\", "
            "\"lookup_ms\": %.3f, \"lookup_comm_share\": %.3f, \"lookup_sent_KiB\": %.1f, "
            "\"train_ms\": %.3f, \"train_comm_share\": %.3f, \"train_sent_KiB\": %.1f, "
            "\"distinct_per_rank\": %.1f}\n",
            world, static_cast<long long>(o.rows), static_cast<long long>(o.dim), static_cast<long long>(o.batch),
            o.split.c_str(), lookup_ms, lookup_share, lookup_kib, train_ms, train_share, train_kib, distinct);
      } else {
        std::printf("ranks %d  rows %lld  dim %lld  batch %lld/rank  %s split  %d steps\n", world,
                    static_cast<long long>(o.rows), static_cast<long long>(o.dim), static_cast<long long>(o.batch),
                    o.split.c_str(), o.steps);
        std::printf("  lookup     %8.3f ms  (%4.1f%% in MPI)  %9.1f KiB sent per rank  (%.0f distinct ids)\n",
                    lookup_ms, 100 * lookup_share, lookup_kib, distinct);
        std::printf("  train step %8.3f ms  (%4.1f%% in MPI)  %9.1f KiB sent per rank\n", train_ms, 100 * train_share,
                    train_kib);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_sharded: rank %d: %s\n", rank, e.what());
    code = 1;
  }
  MPI_Finalize();
  return code;
}
