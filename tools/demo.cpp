#include "demo.hpp"

#include <embedkit/embedkit.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

namespace embedkit::tools {

int run_demo() {
  set_log_level("info");  // the demo shows the placement decision as it is logged
  std::printf("embedkit %s demo\n\n", EMBEDKIT_VERSION_STRING);

  TableConfig config;
  config.name = "words";
  config.input_dim = 50'001;  // a 50,000-word vocabulary plus index 0 for padding
  config.output_dim = 64;
  config.mask_zero = true;
  config.seed = 2026;
  const EmbeddingTable table(config);

  // A batch of 32 padded sentences of up to 20 tokens, token ids Zipf-like.
  constexpr std::int64_t kBatch = 32, kLength = 20;
  std::mt19937_64 rng(7);
  std::vector<std::int64_t> ids(kBatch * kLength, 0);
  for (std::int64_t s = 0; s < kBatch; ++s) {
    const std::int64_t words = 5 + static_cast<std::int64_t>(rng() % (kLength - 5));
    for (std::int64_t w = 0; w < words; ++w) {
      const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
      ids[s * kLength + w] = 1 + static_cast<std::int64_t>(50'000.0 * u * u * u);
    }
  }
  const IndexTensor batch(ids.data(), {kBatch, kLength});
  const Array<float> out = table.lookup(batch);
  const Array<std::uint8_t> mask = table.compute_mask(batch);

  // Every output row must be its table row: check the whole batch.
  std::int64_t mismatches = 0;
  for (std::int64_t i = 0; i < batch.size(); ++i) {
    const std::vector<float> row = table.row(ids[i]);
    if (std::memcmp(row.data(), out.values.data() + i * config.output_dim, row.size() * sizeof(float)) != 0) {
      ++mismatches;
    }
  }
  std::int64_t unmasked = 0;
  for (const std::uint8_t m : mask.values) unmasked += m;

  std::printf("looked up a (%lld, %lld) batch -> output (%lld, %lld, %lld); %lld ids unmasked; "
              "rows checked against the weights: %s\n\n",
              static_cast<long long>(kBatch), static_cast<long long>(kLength), static_cast<long long>(out.shape[0]),
              static_cast<long long>(out.shape[1]), static_cast<long long>(out.shape[2]),
              static_cast<long long>(unmasked), mismatches == 0 ? "all equal" : "MISMATCH");
  std::printf("%s\n", table.summary(batch).to_string().c_str());
  std::printf("placement decision: %s (%s)\n  %s\n", table.placement().device_name().c_str(),
              to_string(table.placement().reason_code), table.placement().reason.c_str());
  return mismatches == 0 ? 0 : 1;
}

}  // namespace embedkit::tools
