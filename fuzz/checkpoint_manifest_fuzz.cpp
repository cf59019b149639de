// libFuzzer target: a checkpoint's manifest.json from arbitrary bytes, beside valid data files
// (weights.npy and state-accumulator.npy of a 4 x 2 Adagrad table; the seed corpus holds manifests
// naming them with their checksums). load() gives a table whose weights are one of those files
// (the manifest says which), or throws Error (not internal); inspect_checkpoint() reads the
// manifest or throws Error(io_error).
#include <embedkit/embedkit.hpp>

#include "fuzz/fuzz_support.hpp"
#include "src/io/npy.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace {

const std::vector<float> kWeights = {0.5f, -1.0f, 2.0f, 0.25f, -0.125f, 3.0f, 1.5f, -2.0f};
const std::vector<float> kAccumulator(8, 0.1f);  // Keras Adagrad's initial_accumulator_value

// The data files, written once; each input replaces only the manifest.
const std::string& checkpoint_directory() {
  static const std::string directory = [] {
    embedkit::set_log_level("off");
    const std::string& dir = embedkit::fuzz::scratch_directory();
    embedkit::fuzz::write_file(dir + "/weights.npy", embedkit::detail::npy_bytes(kWeights.data(), {4, 2}));
    embedkit::fuzz::write_file(dir + "/state-accumulator.npy",
                               embedkit::detail::npy_bytes(kAccumulator.data(), {4, 2}));
    return dir;
  }();
  return directory;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& directory = checkpoint_directory();
  embedkit::fuzz::write_file(directory + "/manifest.json", std::string(reinterpret_cast<const char*>(data), size));
  embedkit::fuzz::succeeds([&] {
    const embedkit::EmbeddingTable table = embedkit::EmbeddingTable::load(directory);
    const auto weights = table.get_weights().values;
    embedkit::fuzz::require(weights == kWeights || weights == kAccumulator, "a loaded table holds neither data file");
  });
  embedkit::Status status = embedkit::Status::ok;
  if (!embedkit::fuzz::succeeds([&] { embedkit::inspect_checkpoint(directory); }, &status)) {
    embedkit::fuzz::require(status == embedkit::Status::io_error,
                            "inspect_checkpoint failed with a status other than io_error");
  }
  return 0;
}
