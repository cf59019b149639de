// Checkpoints: round trips, crash safety (a fault at every write, and SIGKILL at random moments),
// and loads that refuse every kind of damage with the file named.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include "src/io/files.hpp"
#include "tests/sim_context.hpp"
#include "tests/support/scratch_files.hpp"

#include <dirent.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

extern char** environ;

namespace {

using embedkit::EmbeddingTable;
using embedkit::Error;
using embedkit::IndexTensor;
using embedkit::OptimizerConfig;
using embedkit::OptimizerKind;
using embedkit::Status;
using embedkit::TableConfig;

std::string fresh_directory() { return embedkit::testing::fresh_directory("embedkit-checkpoint-test"); }

using embedkit::testing::files_in;

TableConfig trained_config(OptimizerKind kind) {
  TableConfig config;
  config.name = "ckpt";
  config.input_dim = 300;
  config.output_dim = 8;
  config.seed = 3;
  config.mask_zero = true;
  config.optimizer = OptimizerConfig::defaults(kind);
  return config;
}

void train(EmbeddingTable& table, int steps) {
  std::mt19937_64 rng(7);
  for (int s = 0; s < steps; ++s) {
    std::vector<std::int64_t> ids(64);
    for (auto& id : ids) id = static_cast<std::int64_t>(rng() % 300);
    std::vector<float> grad(64 * 8);
    for (auto& g : grad) g = static_cast<float>(static_cast<int>(rng() % 200) - 100) / 100.0f;
    table.train_step(IndexTensor(ids), grad);
  }
}

void expect_same(const EmbeddingTable& a, const EmbeddingTable& b) {
  EXPECT_EQ(a.get_weights().values, b.get_weights().values);
  EXPECT_EQ(a.step(), b.step());
  EXPECT_EQ(a.seed(), b.seed());
  EXPECT_EQ(a.config().to_json(), b.config().to_json());
  ASSERT_EQ(a.optimizer_state_names(), b.optimizer_state_names());
  for (const auto& name : a.optimizer_state_names()) {
    EXPECT_EQ(a.optimizer_state(name).values, b.optimizer_state(name).values) << name;
  }
}

void expect_io_error(const std::string& directory, const std::string& text) {
  try {
    EmbeddingTable::load(directory);
    ADD_FAILURE() << "loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::io_error) << e.what();
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

std::string named(const std::string& directory, const std::string& prefix) {
  for (const auto& name : files_in(directory)) {
    if (name.rfind(prefix, 0) == 0) return name;
  }
  return "";
}

class CheckpointRoundTrip : public ::testing::TestWithParam<OptimizerKind> {};

TEST_P(CheckpointRoundTrip, LoadGivesTheSameTableAndTrainingContinuesTheSame) {
  const std::string directory = fresh_directory();
  EmbeddingTable original(trained_config(GetParam()));
  train(original, 3);
  original.save(directory);
  EmbeddingTable loaded = EmbeddingTable::load(directory);
  expect_same(original, loaded);
  train(original, 2);
  train(loaded, 2);
  expect_same(original, loaded);
  // The manifest says what is there, and numpy reads the files as they are (checked by shape here).
  const auto manifest = nlohmann::json::parse(embedkit::detail::read_file(directory + "/manifest.json"));
  EXPECT_EQ(manifest["format"], "embedkit-checkpoint");
  EXPECT_EQ(manifest["format_version"], 1);
  EXPECT_EQ(manifest["step"], 3);
  EXPECT_EQ(manifest["files"][0]["shape"], (std::vector<std::int64_t>{300, 8}));
  EXPECT_EQ(manifest["files"][0]["dtype"], "<f4");
  EXPECT_EQ(manifest["files"].size(), 1 + original.optimizer_state_names().size());
}

// float16 and bfloat16 rows are saved in their own type (float16 '<f2'; bfloat16 as its bits
// '<u2', the type in the manifest), load back bit for bit and train on the same, and load into
// another type on request: wider exactly, narrower rounded to nearest even.
TEST(CheckpointTypes, NarrowRowsKeepTheirTypeAndLoadIntoAnother) {
  for (const embedkit::DType type : {embedkit::DType::float16, embedkit::DType::bfloat16}) {
    const std::string directory = fresh_directory();
    TableConfig config = trained_config(OptimizerKind::adam);
    config.dtype = type;
    EmbeddingTable original(config);
    train(original, 3);
    original.save(directory);
    const auto manifest = nlohmann::json::parse(embedkit::detail::read_file(directory + "/manifest.json"));
    const auto& weights = manifest["files"][0];
    EXPECT_EQ(weights["dtype"], type == embedkit::DType::float16 ? "<f2" : "<u2");
    EXPECT_EQ(weights.contains("storage"), type == embedkit::DType::bfloat16);
    if (type == embedkit::DType::bfloat16) {
      EXPECT_EQ(weights["storage"], "bfloat16");
    }
    EXPECT_EQ(manifest["files"][1]["dtype"], "<f4");  // optimizer state stays float32
    // The weights file holds 2 bytes a value, and NumPy's header says which.
    const std::string bytes = embedkit::detail::read_file(directory + "/" + weights["name"].get<std::string>());
    EXPECT_NE(bytes.find(type == embedkit::DType::float16 ? "'descr': '<f2'" : "'descr': '<u2'"), std::string::npos);
    EXPECT_LT(bytes.size(), 300u * 8u * 2u + 256u);
    EmbeddingTable loaded = EmbeddingTable::load(directory);
    EXPECT_EQ(loaded.config().dtype, type);
    expect_same(original, loaded);
    train(original, 2);
    train(loaded, 2);
    expect_same(original, loaded);
    // Into float32: the same values, exactly; training goes on in float32.
    EmbeddingTable wide = EmbeddingTable::load(directory, embedkit::DType::float32);
    EXPECT_EQ(wide.config().dtype, embedkit::DType::float32);
    EXPECT_EQ(wide.step(), 3);
    EXPECT_EQ(wide.optimizer_state("momentum").values,
              EmbeddingTable::load(directory).optimizer_state("momentum").values);
    EXPECT_EQ(wide.get_weights().values, EmbeddingTable::load(directory).get_weights().values);
  }
  // A float32 checkpoint into a bfloat16 table: each value rounded to nearest even.
  const std::string directory = fresh_directory();
  EmbeddingTable full(trained_config(OptimizerKind::sgd));
  train(full, 2);
  full.save(directory);
  EmbeddingTable narrow = EmbeddingTable::load(directory, embedkit::DType::bfloat16);
  EXPECT_EQ(narrow.config().dtype, embedkit::DType::bfloat16);
  const auto values = full.get_weights().values, rounded = narrow.get_weights().values;
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, &values[i], 4);
    bits = (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u;  // to nearest even (values are finite)
    float expected;
    std::memcpy(&expected, &bits, 4);
    ASSERT_EQ(rounded[i], expected) << i;
  }
}

// A narrow dtype a manifest cannot name (<u2 without its storage, or on optimizer state) is refused.
TEST(CheckpointTypes, UnknownFileTypesAreRefused) {
  const std::string directory = fresh_directory();
  TableConfig config = trained_config(OptimizerKind::adagrad);
  config.dtype = embedkit::DType::bfloat16;
  EmbeddingTable(config).save(directory);
  const std::string path = directory + "/manifest.json";
  const std::string good = embedkit::detail::read_file(path);
  auto manifest = nlohmann::json::parse(good);
  manifest["files"][0].erase("storage");
  std::ofstream(path, std::ios::trunc) << manifest.dump(2);
  expect_io_error(directory, "dtype '<u2' (storage '') is not one a checkpoint holds");
  manifest = nlohmann::json::parse(good);
  manifest["files"][1]["dtype"] = "<f2";
  std::ofstream(path, std::ios::trunc) << manifest.dump(2);
  expect_io_error(directory, "optimizer state is float32, the manifest says '<f2'");
}

INSTANTIATE_TEST_SUITE_P(Optimizers, CheckpointRoundTrip,
                         ::testing::Values(OptimizerKind::sgd, OptimizerKind::adagrad, OptimizerKind::rowwise_adagrad,
                                           OptimizerKind::adam, OptimizerKind::ftrl),
                         [](const ::testing::TestParamInfo<OptimizerKind>& param_info) {
                           return std::string(embedkit::to_string(param_info.param));
                         });

// One previous generation stays (a load that read its manifest still finds its files); the one
// before goes.
TEST(Checkpoint, SavingOverAnOldCheckpointReplacesItsFiles) {
  const std::string directory = fresh_directory();
  EmbeddingTable table(trained_config(OptimizerKind::adam));
  table.save(directory);
  const auto first = files_in(directory);
  train(table, 1);
  table.save(directory);
  const auto second = files_in(directory);
  EXPECT_EQ(second.size(), 7u);  // manifest, and weights, momentum, velocity of two generations
  train(table, 1);
  table.save(directory);
  const auto third = files_in(directory);
  EXPECT_EQ(third.size(), 7u);
  for (const auto& name : first) {
    if (name != "manifest.json") {
      EXPECT_EQ(third.count(name), 0u) << name << " was not deleted";
    }
  }
  expect_same(table, EmbeddingTable::load(directory));
}

// Two saves into one directory at once (two tables, two threads): each holds a lock on the directory
// for its whole save, so both succeed and the checkpoint is one table whole. Before, one save's
// cleanup deleted the files of the other still in progress, whose manifest then named missing files.
TEST(Checkpoint, ConcurrentSavesIntoOneDirectoryAreSerialisedAndBothSucceed) {
  const std::string directory = fresh_directory();
  TableConfig other_config = trained_config(OptimizerKind::sgd);
  other_config.name = "other";
  other_config.seed = 11;
  EmbeddingTable adam(trained_config(OptimizerKind::adam)), sgd(other_config);
  train(adam, 1);
  // A short pause at every step of a save, so the two saves interleave.
  embedkit::detail::set_checkpoint_fault_hook(
      [](std::string_view) { std::this_thread::sleep_for(std::chrono::microseconds(300)); });
  struct Unhook {
    ~Unhook() { embedkit::detail::set_checkpoint_fault_hook({}); }
  } unhook;
  for (int round = 0; round < 12; ++round) {
    std::string errors[2];
    const auto save = [&directory](const EmbeddingTable& table, std::string& error) {
      try {
        table.save(directory);
      } catch (const Error& e) {
        error = e.what();
      }
    };
    std::thread first(save, std::cref(adam), std::ref(errors[0])), second(save, std::cref(sgd), std::ref(errors[1]));
    first.join();
    second.join();
    EXPECT_EQ(errors[0], "") << "round " << round;
    EXPECT_EQ(errors[1], "") << "round " << round;
    try {
      const EmbeddingTable loaded = EmbeddingTable::load(directory);
      expect_same(loaded.config().name == "other" ? sgd : adam, loaded);
    } catch (const Error& e) {
      ADD_FAILURE() << "round " << round << ": " << e.what();
    }
  }
}

TEST(Checkpoint, LoadPlacesByTodaysPolicy) {
  const std::string directory = fresh_directory();
  // Room for two tables, each promised the workspace of 2^18 lookups (about 46 MB at dim 8).
  auto context = embedkit::testing::sim_context(std::uint64_t{128} << 20);
  EmbeddingTable on_device(trained_config(OptimizerKind::adagrad), *context);
  ASSERT_EQ(on_device.placement().device_name(), "sim:0");
  train(on_device, 2);
  on_device.save(directory);
  const EmbeddingTable on_cpu = EmbeddingTable::load(directory);  // the default context: the CPU here
  EXPECT_EQ(on_cpu.placement().device_name(), "cpu");
  expect_same(on_device, on_cpu);
  EXPECT_EQ(EmbeddingTable::load(directory, *context).placement().device_name(), "sim:0");
}

// A checkpoint written before the gate's reason was renamed records cuda_backend_not_implemented;
// the load places the table anew, so it loads as it did.
TEST(Checkpoint, AManifestRecordingTheOldReasonNameLoads) {
  const std::string directory = fresh_directory();
  EmbeddingTable saved(trained_config(OptimizerKind::adagrad));
  train(saved, 2);
  saved.save(directory);
  const std::string path = directory + "/manifest.json";
  nlohmann::json manifest = nlohmann::json::parse(std::ifstream(path));
  manifest["placement"]["reason_code"] = "cuda_backend_not_implemented";
  std::ofstream(path, std::ios::trunc) << manifest.dump(2);
  const EmbeddingTable loaded = EmbeddingTable::load(directory);
  expect_same(saved, loaded);
}

// A fault at every point of a save over an old checkpoint: the directory loads as one or the other.
TEST(Checkpoint, AFaultBetweenAnyTwoWritesLeavesTheOldOrTheNewState) {
  EmbeddingTable table(trained_config(OptimizerKind::adam));
  train(table, 1);
  EmbeddingTable old_state =
      EmbeddingTable::from_pretrained(table.get_weights(), true, trained_config(OptimizerKind::adam));
  std::vector<std::string> points;
  const std::string probe = fresh_directory();
  table.save(probe);
  table.save(probe);
  // A save over two generations passes every point, the deletion of the older one included.
  embedkit::detail::set_checkpoint_fault_hook([&](std::string_view point) { points.emplace_back(point); });
  table.save(probe);
  embedkit::detail::set_checkpoint_fault_hook({});
  const std::size_t per_save = points.size();
  ASSERT_GE(per_save, 9u);  // 3 data files, the manifest, its rename, the directory sync, 3 deletions
  for (std::size_t stop = 0; stop < per_save; ++stop) {
    const std::string directory = fresh_directory();
    table.save(directory);  // the old state: step 1, in two generations
    table.save(directory);
    EmbeddingTable next = EmbeddingTable::load(directory);
    train(next, 1);  // the new state: step 2
    std::size_t reached = 0;
    embedkit::detail::set_checkpoint_fault_hook([&](std::string_view) {
      if (reached++ == stop) throw std::runtime_error("crash");
    });
    EXPECT_THROW(next.save(directory), std::runtime_error);
    embedkit::detail::set_checkpoint_fault_hook({});
    const EmbeddingTable loaded = EmbeddingTable::load(directory);
    if (loaded.step() == 1) {
      expect_same(loaded, table);
    } else {
      EXPECT_EQ(loaded.step(), 2) << "stopped after point " << stop;
      expect_same(loaded, next);
    }
  }
}

// Starts the checkpoint writer saving into `directory` in a loop, waits until it has finished one
// save (however slow the machine: a sanitizer on a loaded one can take longer than the kill delay
// to start), lets it run `delay` more and SIGKILLs it, mid-save or not.
void kill_a_saving_writer(const std::string& directory, std::chrono::milliseconds delay) {
  pid_t child = 0;
  std::string path = directory;
  char* argv[] = {const_cast<char*>(EMBEDKIT_CHECKPOINT_WRITER), path.data(), nullptr};
  ASSERT_EQ(::posix_spawn(&child, EMBEDKIT_CHECKPOINT_WRITER, nullptr, nullptr, argv, environ), 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (files_in(directory).count("manifest.json") == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(delay);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
}

TEST(Checkpoint, SigkillAtRandomMomentsNeverTearsTheCheckpoint) {
  const std::string directory = fresh_directory();
  std::mt19937_64 rng(11);
  int loads = 0;
  for (int round = 0; round < 12; ++round) {
    ASSERT_NO_FATAL_FAILURE(kill_a_saving_writer(directory, std::chrono::milliseconds(40 + rng() % 200)));
    ASSERT_EQ(files_in(directory).count("manifest.json"), 1u) << "no save finished within 60 s";
    const EmbeddingTable loaded = EmbeddingTable::load(directory);
    const auto weights = loaded.get_weights().values;
    // One whole state: every weight is the step at which it was saved.
    EXPECT_EQ(std::count(weights.begin(), weights.end(), static_cast<float>(loaded.step())),
              static_cast<std::ptrdiff_t>(weights.size()));
    ++loads;
  }
  EXPECT_EQ(loads, 12);
}

// What killed saves leave (16 kills left 37 files for a 4-file checkpoint) goes with the next save
// that finishes: the directory then holds its generation and the previous one, nothing else.
TEST(Checkpoint, TheNextSaveRemovesWhatKilledSavesLeft) {
  const std::string directory = fresh_directory();
  std::mt19937_64 rng(13);
  for (int round = 0; round < 16; ++round) {
    ASSERT_NO_FATAL_FAILURE(kill_a_saving_writer(directory, std::chrono::milliseconds(20 + rng() % 120)));
  }
  const std::string manifest_path = directory + "/manifest.json";
  const auto listed = [&] {
    std::set<std::string> names;
    const nlohmann::json manifest = nlohmann::json::parse(embedkit::detail::read_file(manifest_path));
    for (const auto& file : manifest["files"]) {
      names.insert(file["name"].get<std::string>());
    }
    return names;
  };
  const std::set<std::string> previous = listed();
  EmbeddingTable table = EmbeddingTable::load(directory);
  table.save(directory);
  std::set<std::string> expected = listed();
  expected.insert(previous.begin(), previous.end());
  expected.insert("manifest.json");
  EXPECT_EQ(files_in(directory), expected);
}

TEST(Checkpoint, DamageIsRefusedWithTheFileNamed) {
  const std::string directory = fresh_directory();
  EmbeddingTable table(trained_config(OptimizerKind::adagrad));
  table.save(directory);
  const std::string manifest_text = embedkit::detail::read_file(directory + "/manifest.json");
  const auto rewrite = [&](const std::string& name, const std::string& text) {
    std::ofstream(directory + "/" + name, std::ios::binary | std::ios::trunc) << text;
  };
  const std::string weights = named(directory, "weights-");
  const std::string weights_bytes = embedkit::detail::read_file(directory + "/" + weights);

  std::string flipped = weights_bytes;
  flipped[flipped.size() - 3] ^= 0x40;
  rewrite(weights, flipped);
  expect_io_error(directory, weights + ": checksum mismatch");
  rewrite(weights, weights_bytes.substr(0, weights_bytes.size() / 2));  // refused by its size, before it is read
  expect_io_error(directory, weights + ": shape (300, 8) needs 9600 bytes of data, the file holds");
  rewrite(weights, weights_bytes);

  auto manifest = nlohmann::json::parse(manifest_text);
  manifest["files"][0]["name"] = "../elsewhere.npy";
  rewrite("manifest.json", manifest.dump());
  expect_io_error(directory, "not a plain file name inside the checkpoint directory");
  manifest = nlohmann::json::parse(manifest_text);
  manifest["files"][0]["name"] = "/etc/passwd";
  rewrite("manifest.json", manifest.dump());
  expect_io_error(directory, "not a plain file name");
  manifest = nlohmann::json::parse(manifest_text);
  manifest["format_version"] = 2;
  rewrite("manifest.json", manifest.dump());
  expect_io_error(directory, "format version 2 is not supported");
  // Numbers of the wrong kind: get<std::int64_t>() converted them silently, 1e300 with undefined behaviour.
  for (const auto& [field, value, text] :
       {std::tuple<std::string, nlohmann::json, std::string>{"step", 1.5,
                                                             "manifest.json: step must be an integer, got 1.5"},
        {"step", true, "manifest.json: step must be an integer, got true"},
        {"step", 1e300, "manifest.json: step must be an integer, got 1e+300"},
        {"step", -1, "manifest.json: step -1 is not in [0, 9007199254740992]"},
        {"format_version", 1e300, "manifest.json: format version 1e+300 is not supported"},
        {"format_version", "1", "manifest.json: format version \"1\" is not supported"}}) {
    manifest = nlohmann::json::parse(manifest_text);
    manifest[field] = value;
    rewrite("manifest.json", manifest.dump());
    expect_io_error(directory, text);
    if (field == "step" && !value.is_number_integer()) {
      EXPECT_THROW(embedkit::inspect_checkpoint(directory), Error);
    }
  }
  // 'files' as an object: inspect_checkpoint read its entries, then indexed it as an array, and
  // nlohmann's type_error escaped instead of an Error.
  manifest = nlohmann::json::parse(manifest_text);
  manifest["files"] = {{"only", manifest["files"][0]}};
  rewrite("manifest.json", manifest.dump());
  const embedkit::CheckpointInfo inspected = embedkit::inspect_checkpoint(directory);
  ASSERT_EQ(inspected.files.size(), 1u);
  EXPECT_TRUE(inspected.files[0].ok) << inspected.files[0].error;
  manifest = nlohmann::json::parse(manifest_text);
  manifest["config"]["input_dim"] = 301;  // the manifest lies about the shape
  rewrite("manifest.json", manifest.dump());
  expect_io_error(directory, weights + ": shape (300, 8) does not match the table's (301, 8)");
  manifest = nlohmann::json::parse(manifest_text);
  manifest["files"].erase(1);
  rewrite("manifest.json", manifest.dump());
  expect_io_error(directory, "names no file for the optimizer state 'accumulator'");
  rewrite("manifest.json", manifest_text.substr(0, manifest_text.size() / 2));
  expect_io_error(directory, "manifest.json is not valid JSON");
  rewrite("manifest.json", manifest_text);
  // A data file that is not what its name says, with a checksum that matches it.
  manifest = nlohmann::json::parse(manifest_text);
  const std::string text = "just text";
  rewrite(weights, text);
  manifest["files"][0]["xxh64"] = fmt::format("{:016x}", XXH64(text.data(), text.size(), 0));
  rewrite("manifest.json", manifest.dump());
  expect_io_error(directory, weights + ": not a .npy file (wrong magic bytes)");
  expect_io_error(fresh_directory(), "manifest.json: cannot open");
  EXPECT_THROW(table.save("/proc/no/such/place"), Error);
}

TEST(Checkpoint, CustomOptimizersCannotBeSaved) {
  TableConfig config = trained_config(OptimizerKind::sgd);
  config.optimizer = OptimizerConfig::custom([](std::int64_t, float*, const float*, float*, int) {}, 0);
  try {
    EmbeddingTable(config).save(fresh_directory());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::unsupported);
  }
}

}  // namespace
