// Issue #22 regression tests: see docs/reliability.md, "Round two".
// Checkpoint files: special files where a checkpoint's files belong (item 3), saves that keep one
// previous generation and clean up after themselves (item 4), and what a checkpoint holds beyond its
// checksums (item 6).
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include "src/io/files.hpp"
#include "src/io/npy.hpp"
#include "tests/sim_context.hpp"
#include "tests/support/scratch_files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <xxhash.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <future>
#include <limits>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using embedkit::Context;
using embedkit::EmbeddingTable;
using embedkit::Error;
using embedkit::IndexTensor;
using embedkit::OptimizerConfig;
using embedkit::OptimizerKind;
using embedkit::Status;
using embedkit::TableConfig;

std::string fresh_directory() { return embedkit::testing::fresh_directory("embedkit-reliability-ckpt"); }

using embedkit::testing::files_in;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void spill(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

nlohmann::json manifest_of(const std::string& directory) {
  return nlohmann::json::parse(slurp(directory + "/manifest.json"));
}

void write_manifest(const std::string& directory, const nlohmann::json& manifest) {
  spill(directory + "/manifest.json", manifest.dump(2));
}

// The manifest's entry for `role` (and `slot`).
nlohmann::json& entry_of(nlohmann::json& manifest, const std::string& role, const std::string& slot = "") {
  for (auto& file : manifest["files"]) {
    if (file["role"] == role && file.value("slot", "") == slot) return file;
  }
  throw std::runtime_error("no such entry");
}

TableConfig small_config(OptimizerKind kind, std::int64_t rows = 40, std::int64_t dim = 4) {
  TableConfig config;
  config.name = "files";
  config.input_dim = rows;
  config.output_dim = dim;
  config.seed = 5;
  config.optimizer = OptimizerConfig::defaults(kind);
  return config;
}

// The CPU context and one whose device is simulated: checkpoint loads must fail the same on both.
std::vector<Context*> both_contexts() {
  static const std::unique_ptr<Context> sim = embedkit::testing::sim_context(std::uint64_t{256} << 20);
  return {&Context::default_context(), sim.get()};
}

// `call` throws Error(status) whose message holds every one of `texts`.
void expect_error(const std::function<void()>& call, Status status, const std::vector<std::string>& texts) {
  try {
    call();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), status) << e.what();
    for (const std::string& text : texts) EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

// Runs `call` on another thread; a call still blocked after 20 s is a hang: `unblock` frees it and
// the test fails instead of hanging the suite.
void expect_prompt(const std::function<void()>& call, const std::function<void()>& unblock) {
  auto done = std::async(std::launch::async, call);
  if (done.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    ADD_FAILURE() << "blocked for 20 s";
    unblock();
  }
  done.get();
}

// Opens the FIFO's write end without blocking (it succeeds only once a reader waits), so that a
// reader blocked in open(2) returns.
void free_fifo_reader(const std::string& path) {
  for (int tries = 0; tries < 100; ++tries) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) {
      ::close(fd);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// ---------------------------------------------------------------------------------------------
// Item 3: special files

TEST(SpecialFiles, AFifoManifestFailsAtOnceInLoadInspectAndSave) {
  const std::string directory = fresh_directory();
  EmbeddingTable table(small_config(OptimizerKind::adagrad));
  table.save(directory);
  const std::string manifest = directory + "/manifest.json";
  ASSERT_EQ(::unlink(manifest.c_str()), 0);
  ASSERT_EQ(::mkfifo(manifest.c_str(), 0644), 0);
  const auto unblock = [&] { free_fifo_reader(manifest); };
  for (const auto& context : both_contexts()) {
    expect_prompt(
        [&] {
          expect_error([&] { EmbeddingTable::load(directory, *context); }, Status::io_error,
                       {manifest, "not a regular file"});
        },
        unblock);
  }
  expect_prompt(
      [&] {
        expect_error([&] { embedkit::inspect_checkpoint(directory); }, Status::io_error,
                     {manifest, "not a regular file"});
      },
      unblock);
  // The save reads the previous manifest to know which files it must keep.
  expect_prompt(
      [&] {
        expect_error([&] { table.save(directory); }, Status::io_error, {manifest, "not a regular file"});
      },
      unblock);
  struct stat info {};
  ASSERT_EQ(::stat(manifest.c_str(), &info), 0);
  EXPECT_TRUE(S_ISFIFO(info.st_mode)) << "the refused save replaced it";
}

TEST(SpecialFiles, ADataFileThatIsAFifoSocketDeviceOrDirectoryIsRefusedNamingIt) {
  const std::string directory = fresh_directory();
  EmbeddingTable table(small_config(OptimizerKind::adagrad));
  table.save(directory);
  nlohmann::json manifest = manifest_of(directory);
  const std::string weights = directory + "/" + entry_of(manifest, "weights")["name"].get<std::string>();
  const std::string original = slurp(weights);
  const std::vector<std::pair<std::string, std::function<void()>>> makers = {
      {"fifo", [&] { ASSERT_EQ(::mkfifo(weights.c_str(), 0644), 0); }},
      {"directory", [&] { ASSERT_EQ(::mkdir(weights.c_str(), 0755), 0); }},
      {"device", [&] { ASSERT_EQ(::symlink("/dev/zero", weights.c_str()), 0); }},
      {"socket",
       [&] {
         const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
         ASSERT_GE(fd, 0);
         sockaddr_un address{};
         address.sun_family = AF_UNIX;
         ASSERT_LT(weights.size(), sizeof(address.sun_path));
         std::memcpy(address.sun_path, weights.c_str(), weights.size() + 1);
         ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0);
         ::close(fd);
       }},
  };
  for (const auto& [kind, make] : makers) {
    SCOPED_TRACE(kind);
    ASSERT_EQ(::unlink(weights.c_str()) == 0 || ::rmdir(weights.c_str()) == 0, true);
    make();
    const auto unblock = [&] { free_fifo_reader(weights); };
    for (const auto& context : both_contexts()) {
      expect_prompt(
          [&] {
            expect_error([&] { EmbeddingTable::load(directory, *context); }, Status::io_error,
                         {weights, "not a regular file"});
          },
          unblock);
    }
    expect_prompt(
        [&] {
          const embedkit::CheckpointInfo info = embedkit::inspect_checkpoint(directory);
          bool flagged = false;
          for (const auto& file : info.files) {
            if (file.role == "weights")
              flagged = !file.ok && file.error.find("not a regular file") != std::string::npos;
          }
          EXPECT_TRUE(flagged);
        },
        unblock);
    // A pretrained matrix read from it.
    EmbeddingTable target(small_config(OptimizerKind::sgd));
    expect_prompt(
        [&] {
          expect_error([&] { embedkit::load_pretrained_npy(target, weights); }, Status::io_error,
                       {weights, "not a regular file"});
        },
        unblock);
  }
  // A symlink to a regular file keeps working.
  ASSERT_EQ(::unlink(weights.c_str()) == 0 || ::rmdir(weights.c_str()) == 0, true);
  const std::string elsewhere = fresh_directory() + "/weights.npy";
  spill(elsewhere, original);
  ASSERT_EQ(::symlink(elsewhere.c_str(), weights.c_str()), 0);
  for (const auto& context : both_contexts()) {
    EXPECT_EQ(EmbeddingTable::load(directory, *context).get_weights().values, table.get_weights().values);
  }
}

// ---------------------------------------------------------------------------------------------
// Item 4: generations

// The data files a manifest lists.
std::set<std::string> listed_by(const nlohmann::json& manifest) {
  std::set<std::string> names;
  for (const auto& file : manifest["files"]) names.insert(file["name"].get<std::string>());
  return names;
}

TEST(SaveGenerations, APreviousManifestListingTheManifestOrForeignFilesIsRefusedAndTheSaveKeepsThem) {
  const std::string directory = fresh_directory();
  EmbeddingTable table(small_config(OptimizerKind::adam));
  table.save(directory);
  spill(directory + "/notes.txt", "mine");
  const nlohmann::json saved = manifest_of(directory);
  for (const std::string& name : {std::string("manifest.json"), std::string("notes.txt"), std::string("weights.npy")}) {
    SCOPED_TRACE(name);
    nlohmann::json manifest = saved;
    nlohmann::json extra = manifest["files"][0];
    extra["name"] = name;
    manifest["files"].push_back(extra);
    write_manifest(directory, manifest);
    for (const auto& context : both_contexts()) {
      expect_error([&] { EmbeddingTable::load(directory, *context); }, Status::io_error,
                   {"manifest.json: names the file \"" + name + "\"", "a form a save writes"});
    }
    table.save(directory);  // EK_OK, and then it deleted the manifest it had just written
    EXPECT_EQ(files_in(directory).count("manifest.json"), 1u);
    EXPECT_EQ(slurp(directory + "/notes.txt"), "mine");
    EXPECT_EQ(EmbeddingTable::load(directory).get_weights().values, table.get_weights().values);
    write_manifest(directory, saved);
  }
}

TEST(SaveGenerations, ASaveKeepsOnePreviousGenerationAndRemovesOlderOnesAndLeftovers) {
  const std::string directory = fresh_directory();
  EmbeddingTable table(small_config(OptimizerKind::adam));
  // Files of the form a save writes that no manifest lists: what a killed save leaves behind.
  const std::vector<std::string> leftovers = {"weights-00000000-0123456789abcdef.npy",
                                              "state-velocity-00000000-0123456789abcdef.npy",
                                              "manifest.json.tmp-00000000-0123456789abcdef"};
  for (const auto& name : leftovers) spill(directory + "/" + name, "torn");
  const std::set<std::string> foreign = {"notes.txt", "weights.npy", "weights-mine.npy"};
  for (const auto& name : foreign) spill(directory + "/" + name, "mine");
  nlohmann::json previous;
  for (int generation = 0; generation < 4; ++generation) {
    table.train_step(IndexTensor(std::vector<std::int64_t>{1}), std::vector<float>(4, 0.5f));
    table.save(directory);
    const nlohmann::json current = manifest_of(directory);
    std::set<std::string> expected = foreign;
    expected.insert("manifest.json");
    for (const auto& name : listed_by(current)) expected.insert(name);
    if (!previous.is_null()) {
      for (const auto& name : listed_by(previous)) expected.insert(name);
    }
    EXPECT_EQ(files_in(directory), expected) << "after save " << generation;
    previous = current;
  }
}

TEST(SaveGenerations, AFailedSaveRemovesItsOwnPartialFiles) {
  const std::string directory = fresh_directory();
  EmbeddingTable table(small_config(OptimizerKind::adam, 2000, 16));  // 128 KB of weights
  table.save(directory);
  table.train_step(IndexTensor(std::vector<std::int64_t>{1}), std::vector<float>(16, 0.5f));
  table.save(directory);  // two generations on disk
  std::set<std::string> before = files_in(directory);
  std::string manifest = slurp(directory + "/manifest.json");
  table.train_step(IndexTensor(std::vector<std::int64_t>{1}), std::vector<float>(16, 0.5f));
  // A fault at every point before the new manifest is in.
  for (int stop = 0;; ++stop) {
    int reached = 0;
    bool stopped = false;
    embedkit::detail::set_checkpoint_fault_hook([&](std::string_view point) {
      if (point.substr(0, 6) != "wrote ") return;  // past the rename the new generation is in
      if (reached++ == stop) {
        stopped = true;
        throw Error(Status::io_error, fmt::format("injected fault at {}", point));
      }
    });
    try {
      table.save(directory);
    } catch (const Error&) {
    }
    embedkit::detail::set_checkpoint_fault_hook({});
    if (!stopped) break;  // the save went through
    EXPECT_EQ(files_in(directory), before) << "fault " << stop;
    EXPECT_EQ(slurp(directory + "/manifest.json"), manifest);
  }
  before = files_in(directory);
  manifest = slurp(directory + "/manifest.json");
  // The file size limit (as a full disk): write(2) fails with EFBIG once SIGXFSZ is ignored.
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  const auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  rlimit small = saved;
  small.rlim_cur = 64 << 10;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  Status status = Status::ok;
  std::string message;
  try {
    table.save(directory);
  } catch (const Error& e) {
    status = e.status();
    message = e.what();
  }
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(status, Status::io_error) << message;
  EXPECT_NE(message.find("cannot write"), std::string::npos) << message;
  EXPECT_EQ(files_in(directory), before);
  EXPECT_EQ(slurp(directory + "/manifest.json"), manifest);
  EmbeddingTable::load(directory);
}

TEST(SaveGenerations, LoadsRacingSavesIntoTheSameDirectoryAlwaysGetOneWholeGeneration) {
  const std::string directory = fresh_directory();
  TableConfig config = small_config(OptimizerKind::sgd, 16, 4);
  config.optimizer.momentum = 0.5;  // a state file too
  EmbeddingTable table(config);
  table.save(directory);
  std::atomic<bool> stop{false};
  std::atomic<int> saves{0}, loads{0}, failures{0}, torn{0};
  std::string first_failure;
  std::mutex failure_mutex;
  std::thread saver([&] {
    while (!stop) {
      table.train_step(IndexTensor(std::vector<std::int64_t>{0}), std::vector<float>(4, 0.0f));
      // Every weight equals the step: a loaded table shows whether it is one generation.
      table.set_weights(std::vector<float>(16 * 4, static_cast<float>(table.step())), std::vector<std::int64_t>{16, 4});
      table.save(directory);
      ++saves;
    }
  });
  std::vector<std::thread> loaders;
  for (int t = 0; t < 2; ++t) {
    loaders.emplace_back([&] {
      while (!stop) {
        try {
          const EmbeddingTable loaded = EmbeddingTable::load(directory);
          for (const float w : loaded.get_weights().values) {
            if (loaded.step() > 0 && w != static_cast<float>(loaded.step())) {
              ++torn;
              break;
            }
          }
        } catch (const Error& e) {
          std::lock_guard lock(failure_mutex);
          if (failures++ == 0) first_failure = e.what();
        }
        ++loads;
      }
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while ((loads < 3000 || saves < 100) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop = true;
  saver.join();
  for (auto& loader : loaders) loader.join();
  EXPECT_GE(loads, 3000);
  EXPECT_GE(saves, 20);
  EXPECT_EQ(failures, 0) << first_failure;
  EXPECT_EQ(torn, 0);
}

// ---------------------------------------------------------------------------------------------
// Item 6: contents

// Rewrites the file of `role`/`slot` in a saved checkpoint with `values`, its checksum updated.
void replace_array(const std::string& directory, const std::string& role, const std::string& slot,
                   const std::vector<float>& values, const std::vector<std::int64_t>& shape) {
  nlohmann::json manifest = manifest_of(directory);
  nlohmann::json& entry = entry_of(manifest, role, slot);
  const std::string bytes = embedkit::detail::npy_bytes(values.data(), shape);
  spill(directory + "/" + entry["name"].get<std::string>(), bytes);
  entry["xxh64"] = fmt::format("{:016x}", XXH64(bytes.data(), bytes.size(), 0));
  write_manifest(directory, manifest);
}

TEST(CheckpointContents, AStepNoTrainStepCanTakeWithoutOverflowIsRefusedAtLoad) {
  const std::string directory = fresh_directory();
  EmbeddingTable(small_config(OptimizerKind::adam)).save(directory);
  nlohmann::json manifest = manifest_of(directory);
  for (const std::int64_t step : {std::numeric_limits<std::int64_t>::max(), (std::int64_t{1} << 53) + 1}) {
    manifest["step"] = step;
    write_manifest(directory, manifest);
    for (const auto& context : both_contexts()) {
      expect_error([&] { EmbeddingTable::load(directory, *context); }, Status::io_error,
                   {fmt::format("manifest.json: step {} is not in [0, 9007199254740992]", step)});
    }
  }
}

TEST(CheckpointContents, ATrainStepPastTheLastStepIsRefusedAndChangesNothing) {
  const std::string directory = fresh_directory();
  EmbeddingTable(small_config(OptimizerKind::adam)).save(directory);
  nlohmann::json manifest = manifest_of(directory);
  const std::int64_t last = std::int64_t{1} << 53;
  manifest["step"] = last;
  write_manifest(directory, manifest);
  for (const auto& context : both_contexts()) {
    EmbeddingTable table = EmbeddingTable::load(directory, *context);
    ASSERT_EQ(table.step(), last);
    const auto weights = table.get_weights().values;
    const auto velocity = table.optimizer_state("velocity").values;
    const std::vector<std::int64_t> ids = {3, 5};
    expect_error([&] { table.train_step(IndexTensor(ids), std::vector<float>(8, 1.0f)); }, Status::invalid_argument,
                 {"step 9007199254740992", "the last step a table takes"});
    expect_error(
        [&] {
          table.train_step_pooled(IndexTensor(ids), std::vector<std::int64_t>{0, 2}, embedkit::PoolingMode::sum, {},
                                  std::vector<float>(4, 1.0f));
        },
        Status::invalid_argument, {"step 9007199254740992"});
    EXPECT_EQ(table.step(), last);
    EXPECT_EQ(table.get_weights().values, weights);
    EXPECT_EQ(table.optimizer_state("velocity").values, velocity);
  }
}

TEST(CheckpointContents, OptimizerStateOutsideWhatItsOptimizerAllowsIsRefusedNamingFileRowAndValue) {
  struct Case {
    OptimizerKind kind;
    std::string slot;
    std::int64_t width;
    float value;
    std::string why;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<Case> cases = {
      {OptimizerKind::adagrad, "accumulator", 4, -1.0f, "holds -1, which is not finite and >= 0"},
      {OptimizerKind::adagrad, "accumulator", 4, inf, "holds inf, which is not finite and >= 0"},
      {OptimizerKind::rowwise_adagrad, "row_accumulator", 1, -0.5f, "holds -0.5, which is not finite and >= 0"},
      {OptimizerKind::adam, "velocity", 4, -1e-3f, "holds -0.001, which is not finite and >= 0"},
      {OptimizerKind::adam, "momentum", 4, nan, "holds nan, which is not finite"},
      {OptimizerKind::ftrl, "accumulator", 4, -2.0f, "holds -2, which is not finite and >= 0"},
      {OptimizerKind::ftrl, "linear", 4, inf, "holds inf, which is not finite"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.slot);
    const std::string directory = fresh_directory();
    EmbeddingTable table(small_config(c.kind));
    table.save(directory);
    std::vector<float> state = table.optimizer_state(c.slot).values;
    state[static_cast<std::size_t>(7 * c.width)] = c.value;  // row 7
    replace_array(directory, "optimizer_state", c.slot, state, {40, c.width});
    nlohmann::json manifest = manifest_of(directory);
    const std::string name = entry_of(manifest, "optimizer_state", c.slot)["name"].get<std::string>();
    for (const auto& context : both_contexts()) {
      expect_error([&] { EmbeddingTable::load(directory, *context); }, Status::io_error,
                   {name + ": row 7 " + c.why, "'" + c.slot + "'"});
    }
  }
}

// An accumulator of 0 (or a denormal, 0 once flushed) where the config has nothing else keeping the
// step from 0/0: Adagrad and row-wise Adagrad at epsilon 0, FTRL with l2 and beta 0. The rule
// validate() applies to initial_accumulator_value; the same value under epsilon > 0 loads.
TEST(CheckpointContents, AZeroAccumulatorThatWouldDivideZeroByZeroIsRefusedNamingFileRowAndValue) {
  struct Case {
    OptimizerKind kind;
    double epsilon;
    std::string slot;
    std::int64_t width;
    float value;
    bool refused;
  };
  const std::vector<Case> cases = {
      {OptimizerKind::adagrad, 0.0, "accumulator", 4, 0.0f, true},
      {OptimizerKind::adagrad, 0.0, "accumulator", 4, 1e-40f, true},
      {OptimizerKind::rowwise_adagrad, 0.0, "row_accumulator", 1, 0.0f, true},
      {OptimizerKind::ftrl, 1e-7, "accumulator", 4, 0.0f, true},  // l2 and beta 0 by default
      {OptimizerKind::adagrad, 1e-7, "accumulator", 4, 0.0f, false},
      {OptimizerKind::rowwise_adagrad, 1e-8, "row_accumulator", 1, 0.0f, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(fmt::format("{} epsilon {} value {}", c.slot, c.epsilon, c.value));
    const std::string directory = fresh_directory();
    TableConfig config = small_config(c.kind);
    config.optimizer.epsilon = c.epsilon;
    config.optimizer.initial_accumulator_value = 0.1;
    EmbeddingTable table(config);
    table.save(directory);
    std::vector<float> state = table.optimizer_state(c.slot).values;
    state[static_cast<std::size_t>(7 * c.width)] = c.value;  // row 7
    replace_array(directory, "optimizer_state", c.slot, state, {40, c.width});
    nlohmann::json manifest = manifest_of(directory);
    const std::string name = entry_of(manifest, "optimizer_state", c.slot)["name"].get<std::string>();
    for (const auto& context : both_contexts()) {
      if (c.refused) {
        expect_error([&] { EmbeddingTable::load(directory, *context); }, Status::io_error,
                     {fmt::format("{}: row 7 holds {}, which is 0 in a step", name, c.value), "'" + c.slot + "'",
                      "divide 0 by 0"});
      } else {
        EXPECT_EQ(EmbeddingTable::load(directory, *context).optimizer_state(c.slot).values, state);
      }
    }
  }
}

TEST(CheckpointContents, AFileLargerThanTheManifestsShapeIsRefusedBeforeItIsRead) {
  const std::string directory = fresh_directory();
  EmbeddingTable(small_config(OptimizerKind::sgd)).save(directory);
  nlohmann::json manifest = manifest_of(directory);
  const std::string name = entry_of(manifest, "weights")["name"].get<std::string>();
  const std::string path = directory + "/" + name;
  const std::int64_t size = static_cast<std::int64_t>(slurp(path).size());  // 40 x 4 floats and a 128-byte header
  ASSERT_EQ(size, 128 + 40 * 4 * 4);
  const std::int64_t huge = std::int64_t{100} << 30;  // 100 GiB, sparse: no disk spent
  ASSERT_EQ(::truncate(path.c_str(), huge), 0);
  const auto started = std::chrono::steady_clock::now();
  for (const auto& context : both_contexts()) {
    expect_error([&] { EmbeddingTable::load(directory, *context); }, Status::io_error,
                 {fmt::format("{}: shape (40, 4) needs 640 bytes of data, the file holds {}", name, huge - 128)});
  }
  const embedkit::CheckpointInfo info = embedkit::inspect_checkpoint(directory);
  ASSERT_EQ(info.files.size(), 1u);
  EXPECT_FALSE(info.files[0].ok);
  EXPECT_NE(info.files[0].error.find(fmt::format("needs 640 bytes of data, the file holds {}", huge - 128)),
            std::string::npos)
      << info.files[0].error;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  // Shorter than the shape needs: the same message.
  ASSERT_EQ(::truncate(path.c_str(), size - 4), 0);
  expect_error([&] { EmbeddingTable::load(directory); }, Status::io_error,
               {fmt::format("{}: shape (40, 4) needs 640 bytes of data, the file holds 636", name)});
}

// A .npy file with `header` as its header dict and `payload` after it.
std::string npy_with_header(std::string header, const std::string& payload) {
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes.push_back(static_cast<char>(header.size() & 0xff));
  bytes.push_back(static_cast<char>(header.size() >> 8));
  return bytes + header + payload;
}

// Pretrained files larger than any memory: a .npy whose (consistent) header says a 4 TiB matrix is
// refused for its shape on the header, and 1 TiB GloVe or vocabulary text for its size, naming the
// file; both were read whole before (an allocation failure naming nothing). Sparse: no disk spent.
TEST(PretrainedFiles, HugeFilesAreRefusedBeforeTheyAreReadNamingThem) {
  const std::string directory = fresh_directory();
  EmbeddingTable table(small_config(OptimizerKind::sgd));  // 40 x 4
  const std::vector<float> before = table.get_weights().values;
  const std::string huge_npy = directory + "/huge.npy";
  const std::string header =
      npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576), }", "");
  spill(huge_npy, header);
  ASSERT_EQ(::truncate(huge_npy.c_str(), static_cast<off_t>(header.size() + (std::uint64_t{1} << 42))), 0);
  const auto started = std::chrono::steady_clock::now();
  expect_error([&] { embedkit::load_pretrained_npy(table, huge_npy); }, Status::shape_mismatch,
               {"weight shape (40, 4) is not compatible with provided weight shape (1048576, 1048576)"});
  const std::string huge_text = directory + "/huge.txt", vocabulary = directory + "/vocabulary.txt";
  spill(huge_text, "the 1 2 3 4\n");
  ASSERT_EQ(::truncate(huge_text.c_str(), static_cast<off_t>(std::uint64_t{1} << 40)), 0);
  spill(vocabulary, "the\n");
  expect_error([&] { embedkit::load_pretrained_text(table, huge_text, vocabulary); }, Status::out_of_memory,
               {huge_text + ": the file holds 1099511627776 bytes, more than the"});
  expect_error([&] { embedkit::load_pretrained_text(table, vocabulary, huge_text); }, Status::out_of_memory,
               {huge_text + ": the file holds 1099511627776 bytes"});
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  EXPECT_EQ(table.get_weights().values, before);
}

TEST(CheckpointContents, NpyHeadersAreParsedAsTheDictLiteralTheyAre) {
  const std::string payload(32, '\0');  // 2 x 2 float64, or 4 x 2 float32
  // The three keys inside an earlier string value, the real ones saying float64, Fortran, (2, 2).
  const std::string hidden = npy_with_header(
      "{'note': \"'descr': '<f4', 'fortran_order': False, 'shape': (4, 2), \", 'descr': '<f8', "
      "'fortran_order': True, 'shape': (2, 2), }",
      payload);
  // Refused for the unknown key 'note' (only the three keys numpy writes are allowed).
  expect_error([&] { embedkit::detail::parse_npy(hidden, "hidden.npy"); }, Status::io_error,
               {"hidden.npy: the .npy header has the key 'note'"});
  // Only the three real keys, spelled so that a search for the text numpy writes ("'descr': '")
  // would miss them or find the wrong value: the dtype and the order are read exactly.
  const std::string float64 =
      npy_with_header("{\"shape\":(2,2),\"fortran_order\" :False ,  \"descr\"  :\"<f8\"}", payload);
  expect_error([&] { embedkit::detail::parse_npy(float64, "float64.npy"); }, Status::io_error,
               {"float64.npy: dtype '<f8' is not float32 ('<f4')"});
  const std::string fortran = npy_with_header("{ 'shape':( 2 ,2 ),'descr' :\"<f4\",'fortran_order':True}", payload);
  expect_error([&] { embedkit::detail::parse_npy(fortran, "fortran.npy"); }, Status::io_error,
               {"fortran.npy: Fortran-ordered arrays are not supported"});
  const std::string doubled =
      npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2), 'descr': '<f8'}", payload);
  expect_error([&] { embedkit::detail::parse_npy(doubled, "doubled.npy"); }, Status::io_error,
               {"doubled.npy: ", "'descr' twice"});
  // What Python reads as the dict numpy writes, spelled differently.
  const std::vector<std::string> valid = {
      "{ 'shape' : ( 4 , 2 ) , \"descr\":'<f4','fortran_order':False}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (8,), }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 2)}",
  };
  for (const std::string& header : valid) {
    SCOPED_TRACE(header);
    const embedkit::detail::NpyArray array = embedkit::detail::parse_npy(npy_with_header(header, payload), "ok.npy");
    EXPECT_EQ(array.values.size(), 8u);
  }
  // Not a dict literal numpy writes: each refused, naming the file.
  for (const std::string& header : {std::string("{'descr': '<f4', 'fortran_order': False}"),
                                    std::string("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2)"),
                                    std::string("{'descr': '<f4', 'fortran_order': 0, 'shape': (4, 2)}"),
                                    std::string("{'descr': '<f4', 'fortran_order': False, 'shape': (4, -2)}"),
                                    std::string("{'descr': '<f4' 'fortran_order': False, 'shape': (4, 2)}")}) {
    SCOPED_TRACE(header);
    expect_error([&] { embedkit::detail::parse_npy(npy_with_header(header, payload), "bad.npy"); }, Status::io_error,
                 {"bad.npy: "});
  }
}

}  // namespace
