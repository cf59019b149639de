// Sharded checkpoints: saved on this world, loaded on every smaller one (4 -> 2 -> 1 under
// `mpirun -np 4`) and on this one with the other split's table, the loaded table holds exactly
// the single reference table's rows and state and keeps training bit for bit like it.
#include "sharded_test_support.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <utility>

namespace embedkit::testing {
namespace {

constexpr std::int64_t kRows = 131;
constexpr std::int64_t kDim = 5;

TableConfig adam_config() {
  TableConfig config;
  config.input_dim = kRows;
  config.output_dim = kDim;
  config.seed = 77;
  config.name = "saved";
  config.optimizer = OptimizerConfig::defaults(OptimizerKind::adam);
  config.optimizer.learning_rate = 0.01;
  return config;
}

// A scratch directory every rank of the world knows, removed at the end.
class SharedDirectory {
 public:
  SharedDirectory() {
    std::string path;
    if (world_rank() == 0) {
      char pattern[] = "/tmp/embedkit-sharded-XXXXXX";
      path = mkdtemp(pattern);
    }
    int length = static_cast<int>(path.size());
    MPI_Bcast(&length, 1, MPI_INT, 0, MPI_COMM_WORLD);
    path.resize(static_cast<std::size_t>(length));
    MPI_Bcast(path.data(), length, MPI_CHAR, 0, MPI_COMM_WORLD);
    path_ = path;
  }
  ~SharedDirectory() {
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank() == 0) std::filesystem::remove_all(path_);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Step `step` of every rank of a world of `world` ranks, as one batch (rank order), and rank r's part.
std::vector<std::int64_t> step_ids(int step, int world, int rank = -1) {
  std::vector<std::int64_t> ids;
  for (int r = 0; r < world; ++r) {
    if (rank >= 0 && r != rank) continue;
    const std::vector<std::int64_t> part = zipf_ids(kRows, 9 + r, 17, step, r);
    ids.insert(ids.end(), part.begin(), part.end());
  }
  return ids;
}

std::vector<float> step_grads(int step, int world, int rank = -1) {
  std::vector<float> grads;
  for (int r = 0; r < world; ++r) {
    if (rank >= 0 && r != rank) continue;
    const std::vector<float> part = random_floats(static_cast<std::size_t>((9 + r) * kDim), 17, step, r);
    grads.insert(grads.end(), part.begin(), part.end());
  }
  return grads;
}

void expect_rows_of(const ShardedEmbeddingTable& sharded, const EmbeddingTable& single, const std::string& what) {
  const ShardRows mine = sharded.rows(sharded.rank());
  expect_same_bits(sharded.shard().get_weights().values, rows_of(single.get_weights().values, kDim, mine),
                   what + " weights");
  for (const std::string& name : single.optimizer_state_names()) {
    expect_same_bits(sharded.shard().optimizer_state(name).values,
                     rows_of(single.optimizer_state(name).values, kDim, mine), what + " " + name);
  }
  EXPECT_EQ(sharded.step(), single.step()) << what;
}

TEST(ShardedCheckpoint, LoadsOnEverySmallerWorldAndKeepsTrainingLikeOneTable) {
  const SharedDirectory directory;
  const int world = world_size(), rank = world_rank();
  EmbeddingTable single(adam_config());
  {
    ShardedEmbeddingTable sharded(adam_config(), RowSplit::contiguous);
    for (int step = 0; step < 3; ++step) {
      sharded.train_step(IndexTensor(step_ids(step, world, rank)), step_grads(step, world, rank));
      single.train_step(IndexTensor(step_ids(step, world)), step_grads(step, world));
    }
    sharded.save(directory.path());
  }
  for (const int size : {world, (world + 1) / 2, 1}) {
    // The first `size` ranks load it on a communicator of their own; the others wait.
    MPI_Comm part;
    MPI_Comm_split(MPI_COMM_WORLD, rank < size ? 0 : MPI_UNDEFINED, rank, &part);
    if (part == MPI_COMM_NULL) continue;
    const std::string what = "loaded on " + std::to_string(size) + " of " + std::to_string(world) + " ranks";
    {
      ShardedEmbeddingTable loaded = ShardedEmbeddingTable::load(directory.path(), MpiComm::of(part));
      EXPECT_EQ(loaded.world_size(), size);
      EXPECT_EQ(loaded.config().seed, adam_config().seed);
      expect_rows_of(loaded, single, what);
      // Two more steps, the global batches now split over `size` ranks, equal two more steps of
      // one table (rebuilt: the same 3 steps, then these 2).
      for (int step = 3; step < 5; ++step) {
        loaded.train_step(IndexTensor(step_ids(step, size, rank)), step_grads(step, size, rank));
      }
      EmbeddingTable again(adam_config());
      for (int step = 0; step < 3; ++step)
        again.train_step(IndexTensor(step_ids(step, world)), step_grads(step, world));
      for (int step = 3; step < 5; ++step) again.train_step(IndexTensor(step_ids(step, size)), step_grads(step, size));
      expect_rows_of(loaded, again, what + ", 2 steps later");
    }
    MPI_Comm_free(&part);
  }
}

TEST(ShardedCheckpoint, LoadsAModuloSplitAsModulo) {
  const SharedDirectory directory;
  const int world = world_size(), rank = world_rank();
  EmbeddingTable single(adam_config());
  ShardedEmbeddingTable sharded(adam_config(), RowSplit::modulo);
  sharded.train_step(IndexTensor(step_ids(0, world, rank)), step_grads(0, world, rank));
  single.train_step(IndexTensor(step_ids(0, world)), step_grads(0, world));
  sharded.save(directory.path());
  sharded.save(directory.path());  // saving over a checkpoint replaces it
  const ShardedEmbeddingTable loaded = ShardedEmbeddingTable::load(directory.path());
  EXPECT_EQ(loaded.split(), RowSplit::modulo);
  expect_rows_of(loaded, single, "modulo, reloaded");
}

TEST(ShardedCheckpoint, ShardsOfDifferentSavesAreRefusedOnEveryRank) {
  if (world_size() == 1) GTEST_SKIP() << "needs two shards";
  const SharedDirectory first, second;
  const int world = world_size(), rank = world_rank();
  ShardedEmbeddingTable sharded(adam_config());
  sharded.save(first.path());
  sharded.train_step(IndexTensor(step_ids(0, world, rank)), step_grads(0, world, rank));
  sharded.save(second.path());
  // As if the first save had been overwritten by a later one that stopped after rank 1's shard.
  const std::string torn = first.path() + "/rank1of" + std::to_string(world);
  if (rank == 0) {
    std::filesystem::remove_all(torn);
    std::filesystem::copy(second.path() + "/rank1of" + std::to_string(world), torn);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  try {
    (void)ShardedEmbeddingTable::load(first.path());
    ADD_FAILURE() << "a torn checkpoint loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::io_error);
    EXPECT_NE(std::string(e.what()).find("rank1of" + std::to_string(world) + ": holds step 1"), std::string::npos)
        << e.what();
  }
  if (rank == 0) std::filesystem::remove(first.path() + "/sharded.json");
  MPI_Barrier(MPI_COMM_WORLD);
  try {
    (void)ShardedEmbeddingTable::load(first.path());
    ADD_FAILURE() << "a checkpoint without its manifest loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::io_error);
    EXPECT_NE(std::string(e.what()).find("rank 0: "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("sharded.json"), std::string::npos) << e.what();
  }
}

// Issue #22 items 6 and 9 on sharded checkpoints: an empty directory is an invalid argument and a
// manifest step no train step could take without overflow is refused, on every rank alike.
TEST(ShardedCheckpoint, AnEmptyPathAndAStepOutOfRangeAreRefusedOnEveryRank) {
  ShardedEmbeddingTable sharded(adam_config());
  for (const bool saving : {true, false}) {
    try {
      if (saving) {
        sharded.save("");
      } else {
        (void)ShardedEmbeddingTable::load("");
      }
      ADD_FAILURE() << (saving ? "save" : "load") << " into an empty path succeeded";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), Status::invalid_argument) << e.what();
      EXPECT_NE(std::string(e.what()).find("checkpoint directory is empty"), std::string::npos) << e.what();
    }
  }
  const SharedDirectory directory;
  sharded.save(directory.path());
  const std::string manifest = directory.path() + "/sharded.json";
  if (world_rank() == 0) {
    std::ifstream in(manifest);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::size_t at = text.find("\"step\"");
    ASSERT_NE(at, std::string::npos) << text;
    const std::size_t value = text.find_first_of("0123456789", at);
    const std::size_t end = text.find_first_not_of("0123456789", value);
    text.replace(value, end - value, "9223372036854775807");
    std::ofstream(manifest, std::ios::trunc) << text;
  }
  MPI_Barrier(MPI_COMM_WORLD);
  try {
    (void)ShardedEmbeddingTable::load(directory.path());
    ADD_FAILURE() << "a step of INT64_MAX loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), Status::io_error) << e.what();
    EXPECT_NE(std::string(e.what()).find("step 9223372036854775807 is not in [0, 9007199254740992]"), std::string::npos)
        << e.what();
  }
}

// The manifest's text with the value of the first "KEY": replaced by `value`.
std::string with_value(std::string text, const std::string& key, const std::string& value) {
  const std::size_t at = text.find("\"" + key + "\": ");
  if (at == std::string::npos) return text;
  const std::size_t begin = at + key.size() + 4, end = text.find_first_of(",\n}", begin);
  return text.replace(begin, end - begin, value);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Issue #22 round-two review: the manifest's integers are read typed and in range. get<int>() took
// world_size 2.5 as 2, wrapped 4294967298 to 2, and took format_version 1.5 as 1; get<std::int64_t>()
// took a shard's first 0.5 as 0, so such manifests loaded.
TEST(ShardedCheckpoint, ManifestIntegersThatAreFloatsOrWrapAreRefusedOnEveryRank) {
  const SharedDirectory directory;
  ShardedEmbeddingTable sharded(adam_config());
  sharded.save(directory.path());
  const std::string manifest = directory.path() + "/sharded.json";
  const std::string saved = read_text(manifest);
  const std::string world = std::to_string(world_size());
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"world_size", world + ".5", "world_size must be a positive integer, got " + world + ".5"},
      {"world_size", std::to_string((std::int64_t{1} << 32) + world_size()), "world_size"},
      {"format_version", "1.5", "format version 1.5 is not supported"},
      {"format_version", "4294967297", "format version 4294967297 is not supported"},
      {"rank", "0.5", "rank must be an integer, got 0.5"},
      {"first", "0.5", "first must be an integer, got 0.5"},
      {"stride", "1.0", "stride must be an integer, got 1.0"},
      {"rows", "1e1", "rows must be an integer"},
  };
  for (const auto& [key, value, message] : cases) {
    SCOPED_TRACE(key + " " + value);
    if (world_rank() == 0) {
      const std::string changed = with_value(saved, key, value);
      ASSERT_NE(changed, saved);
      std::ofstream(manifest, std::ios::trunc) << changed;
    }
    MPI_Barrier(MPI_COMM_WORLD);
    try {
      (void)ShardedEmbeddingTable::load(directory.path());
      ADD_FAILURE() << "loaded";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), Status::io_error) << e.what();
      EXPECT_NE(std::string(e.what()).find("sharded.json: "), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
}

// A save killed between writing sharded.json.tmp-* and renaming it leaves the temporary; the next
// successful save removes it (and only names of that form: other files stay).
TEST(ShardedCheckpoint, TheNextSaveRemovesTemporaryManifestsThatKilledSavesLeft) {
  const SharedDirectory directory;
  ShardedEmbeddingTable sharded(adam_config());
  sharded.save(directory.path());
  const std::vector<std::string> leftovers = {"sharded.json.tmp-0badf00d", "sharded.json.tmp-12345678"};
  if (world_rank() == 0) {
    for (const std::string& name : leftovers) std::ofstream(directory.path() + "/" + name) << "{";
    std::ofstream(directory.path() + "/notes.txt") << "mine";
  }
  MPI_Barrier(MPI_COMM_WORLD);
  sharded.save(directory.path());
  MPI_Barrier(MPI_COMM_WORLD);
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(directory.path())) {
    names.insert(entry.path().filename().string());
  }
  for (const std::string& name : leftovers) EXPECT_EQ(names.count(name), 0u) << name << " was not removed";
  EXPECT_EQ(names.count("notes.txt"), 1u);
  EXPECT_EQ(names.count("sharded.json"), 1u);
  (void)ShardedEmbeddingTable::load(directory.path());
}

}  // namespace
}  // namespace embedkit::testing
