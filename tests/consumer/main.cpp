// Looks a row up through the installed C++ API; exits non-zero on a wrong answer.
#include <embedkit/embedkit.hpp>

#include <cstdio>
#include <vector>

int main() {
  embedkit::TableConfig config;
  config.input_dim = 3;
  config.output_dim = 2;
  embedkit::EmbeddingTable table(config);
  const std::vector<float> w = {0, 0, 2, 2, 3, 3};
  const std::int64_t shape[] = {3, 2};
  table.set_weights(w, shape);
  const std::vector<std::int64_t> ids = {2, 1, 0};
  const auto out = table.lookup(embedkit::IndexTensor(ids));
  const bool ok = out.values == std::vector<float>{3, 3, 2, 2, 0, 0};
  std::printf("consumer_cpp: embedkit %s lookup %s\n", EMBEDKIT_VERSION_STRING, ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
