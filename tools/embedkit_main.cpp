// The `embedkit` command-line tool: demo, plan, inspect, bench.
#include <embedkit/c_api.h>
#include <embedkit/embedkit.hpp>

#include "bench_command.hpp"
#include "demo.hpp"
#include "inspect_command.hpp"
#include "plan_command.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

namespace {

// The optimizers a config may name (the C ABI reads them from the optimizer descriptor).
std::vector<std::string> built_in_optimizer_names() {
  std::vector<std::string> names;
  for (int k = 0; ek_optimizer_name(k) != nullptr; ++k) names.emplace_back(ek_optimizer_name(k));
  return names;
}

std::string built_in_optimizers(const char* separator) {
  std::string text;
  for (const std::string& name : built_in_optimizer_names()) text += (text.empty() ? "" : separator) + name;
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"embedkit: embedding tables on CUDA or the CPU, placed automatically"};
  app.require_subcommand(1);
  app.fallthrough();  // --log-level may come after the subcommand too
  app.set_version_flag("--version", EMBEDKIT_VERSION_STRING);
  std::string log_level;
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));

  embedkit::tools::DemoOptions demo_options;
  CLI::App* demo = app.add_subcommand("demo", "train a small two-table recommender end to end");
  demo->add_option("--checkpoint-dir", demo_options.checkpoint_directory,
                   "where to save the checkpoint (default: a new directory under /tmp)");
  demo->add_option("--epochs", demo_options.epochs, "passes over the training likes")->check(CLI::Range(1, 1000));
  demo->add_option("--seed", demo_options.seed,
                   "seed of the synthetic data, the shuffles, the negatives and the tables");
  demo->add_option("--ratings", demo_options.ratings,
                   "train on a MovieLens-style ratings file (user item rating timestamp; tab or :: separated)");
  demo->add_option("--min-rating", demo_options.min_rating, "with --ratings: ratings at or above this are likes")
      ->capture_default_str();
  demo->add_option("--held-out", demo_options.held_out, "with --ratings: each user's latest likes held out")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bool sharded_demo = false;
  demo->add_flag("--sharded", sharded_demo, "shard both tables over MPI ranks (run under mpirun -np N)");

  embedkit::tools::PlanOptions plan_options;
  CLI::App* plan = app.add_subcommand("plan", "what placement would decide for a table, and why");
  CLI::Option* rows = plan->add_option("--rows", plan_options.rows, "rows (input_dim)")->check(CLI::PositiveNumber);
  CLI::Option* dim =
      plan->add_option("--dim", plan_options.dim, "embedding width (output_dim)")->check(CLI::PositiveNumber);
  plan->add_option("--collection", plan_options.collection,
                   "a collection config (JSON file): each table's placement against one device budget")
      ->check(CLI::ExistingFile)
      ->excludes(rows)
      ->excludes(dim);
  plan->add_option("--optimizer", plan_options.optimizer, "a built-in optimizer: " + built_in_optimizers(", "))
      ->check(CLI::IsMember(built_in_optimizer_names()));
  plan->add_option("--dtype", plan_options.dtype, "the rows' storage type: float32, float16 or bfloat16")
      ->check(CLI::IsMember({"float32", "float16", "bfloat16"}));
  plan->add_option("--gpu-memory", plan_options.gpu_memory, "a hypothetical device's free memory, e.g. 80GiB");
  plan->add_option("--batch", plan_options.batch, "the largest batch, in lookups")->check(CLI::PositiveNumber);
  plan->add_flag("--json", plan_options.json, "print JSON");
  plan->add_option("--ranks", plan_options.ranks, "split the table over this many MPI ranks: rows and bytes per rank")
      ->check(CLI::PositiveNumber);
  plan->add_option("--split", plan_options.split, "with --ranks: contiguous (default) or modulo")
      ->check(CLI::IsMember({"contiguous", "modulo"}));

  std::string directory;
  bool inspect_json = false;
  CLI::App* inspect = app.add_subcommand("inspect", "a checkpoint's manifest, files, checksums and row norms");
  inspect->add_option("directory", directory, "the checkpoint directory")->required();
  inspect->add_flag("--json", inspect_json, "print JSON");

  embedkit::tools::BenchOptions bench_options;
  CLI::App* bench = app.add_subcommand("bench", "the headline benchmark figures in about a minute, as ratios");
  bench->add_option("--seconds", bench_options.seconds, "time budget of the timed runs (setup not counted)")
      ->check(CLI::PositiveNumber);
  bench->add_option("--scale", bench_options.scale, "full (2 GiB tables) or smoke (tiny shapes)")
      ->check(CLI::IsMember({"full", "smoke"}));
  bench->add_flag("--json", bench_options.json, "print JSON");

  CLI11_PARSE(app, argc, argv);
  try {
    // The demo shows its placement decisions, logged at info; otherwise EMBEDKIT_LOG_LEVEL or warn.
    if (!log_level.empty()) {
      embedkit::set_log_level(log_level);
    } else if (demo->parsed()) {
      embedkit::set_log_level("info");
    }
    if (demo->parsed() && sharded_demo) {
#if EMBEDKIT_CLI_WITH_MPI
      return embedkit::tools::run_sharded_demo(demo_options);
#else
      throw embedkit::Error(embedkit::Status::unsupported, "demo --sharded needs MPI: embedkit was built without it");
#endif
    }
    if (demo->parsed()) return embedkit::tools::run_demo(demo_options);
    if (plan->parsed()) return embedkit::tools::run_plan(plan_options);
    if (inspect->parsed()) return embedkit::tools::run_inspect(directory, inspect_json);
    if (bench->parsed()) return embedkit::tools::run_bench(bench_options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "embedkit: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
