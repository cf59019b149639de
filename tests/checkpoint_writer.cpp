// A child process for checkpoint_test: saves the same table over and over into one directory, each
// state self-describing (every weight equals the step count), until it is killed.
#include <embedkit/embedkit.hpp>

#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: checkpoint_writer DIRECTORY\n");
    return 2;
  }
  embedkit::TableConfig config;
  config.name = "killed";
  config.input_dim = 4096;
  config.output_dim = 32;
  config.seed = 1;
  config.optimizer = embedkit::OptimizerConfig::defaults(embedkit::OptimizerKind::adam);
  embedkit::EmbeddingTable table(config);
  const std::vector<std::int64_t> ids = {0};
  for (std::int64_t k = 1;; ++k) {
    table.train_step(embedkit::IndexTensor(ids), std::vector<float>(32, 0.0f));  // step k
    table.set_weights(std::vector<float>(4096 * 32, static_cast<float>(k)), std::vector<std::int64_t>{4096, 32});
    table.save(argv[1]);
  }
}
