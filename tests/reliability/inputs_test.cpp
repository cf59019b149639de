// Issue #22 regression tests: see docs/reliability.md, "Round two".
// This file: caller text and sizes (JSON, byte sizes, paths), the host's memory limits, and the
// C ABI's size-query-then-fill pattern under a concurrent writer.
#include <embedkit/c_api.h>
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include "src/core/host_memory.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using embedkit::Error;

// The C ABI's text entry points, asked as documented: size first, then fill.
template <class Call>
std::pair<ek_status, std::string> two_calls(Call call) {
  std::size_t length = 0;
  if (const ek_status query = call(nullptr, 0, &length); query != EK_INVALID_ARGUMENT) return {query, ek_last_error()};
  std::string buffer(length, '\0');
  std::size_t written = 0;
  const ek_status fill = call(buffer.data(), buffer.size(), &written);
  if (fill != EK_OK) return {fill, ek_last_error()};
  EXPECT_EQ(written, length);
  buffer.resize(written - 1);
  return {fill, buffer};
}

std::pair<ek_status, std::string> plan(const std::string& request) {
  return two_calls([&](char* buffer, std::size_t capacity, std::size_t* length) {
    return ek_plan(request.c_str(), 1, buffer, capacity, length);
  });
}

ek_status create(const std::string& config, ek_table** table) { return ek_table_create(config.c_str(), table); }

std::string nested(std::size_t depth, std::string_view inner) {
  return std::string(depth, '[') + std::string(inner) + std::string(depth, ']');
}

// ---------------------------------------------------------------------------------------------
// Item 2: one guarded parser for every parse of caller JSON.

TEST(GuardedJson, PlanRequestNestedDeepIsRefusedNotAStackOverflow) {
  for (const char* key : {"optimizer", "rows", "gpu_memory"}) {
    const std::string request = std::string(R"({"dim": 4, ")") + key + R"(": )" + nested(100000, "1") + "}";
    const auto [status, message] = plan(request);
    EXPECT_EQ(status, EK_INVALID_ARGUMENT) << key;
    EXPECT_NE(message.find("plan request nests arrays and objects deeper than 64 levels"), std::string::npos)
        << message;
    EXPECT_LT(message.size(), 300u) << key;  // the input is never re-serialised into the message
  }
  const std::string object_nest = R"({"rows": 5, "dim": 4, "optimizer": )" + std::string(100000, '{') + "}";
  EXPECT_EQ(plan(object_nest).first, EK_INVALID_ARGUMENT);
  // 64 levels are fine for the parser; the plan reader then names the wrong type, briefly.
  const auto [status, message] = plan(R"({"rows": 5, "dim": 4, "optimizer": )" + nested(63, "1") + "}");
  EXPECT_EQ(status, EK_INVALID_ARGUMENT);
  EXPECT_NE(message.find("optimizer must be a name or a Keras optimizer object, got [[[["), std::string::npos)
      << message;
  EXPECT_LT(message.size(), 300u);
}

TEST(GuardedJson, DuplicateKeysAreRefusedNamingTheKey) {
  struct Case {
    std::string config;
    std::string message;
  };
  const std::vector<Case> cases = {
      {R"({"input_dim": 5, "output_dim": 4, "input_dim": 6})", "config has the key 'input_dim' twice"},
      {R"({"input_dim": 5, "output_dim": 4, "optimizer": {"class_name": "Adam",
           "config": {"learning_rate": 0.5, "learning_rate": 0.1}}})",
       "config has the key 'learning_rate' twice at /optimizer/config"},
      {R"({"input_dim": 5, "output_dim": 4, "embeddings_initializer": {"class_name": "Constant",
           "config": {"value": 1, "value": 2}}})",
       "config has the key 'value' twice at /embeddings_initializer/config"},
  };
  for (const Case& c : cases) {
    ek_table* table = nullptr;
    EXPECT_EQ(create(c.config, &table), EK_INVALID_ARGUMENT) << c.config;
    EXPECT_NE(std::string(ek_last_error()).find(c.message), std::string::npos) << ek_last_error();
    EXPECT_EQ(table, nullptr);
  }
  const auto [status, message] = plan(R"({"rows": 5, "dim": 4, "rows": 7})");
  EXPECT_EQ(status, EK_INVALID_ARGUMENT);
  EXPECT_NE(message.find("plan request has the key 'rows' twice"), std::string::npos) << message;
  EXPECT_THROW(embedkit::OptimizerConfig::from_json(R"({"class_name": "SGD", "class_name": "Adam"})"), Error);
}

TEST(GuardedJson, ManifestWithADuplicateKeyIsRefused) {
  const fs::path dir = fs::temp_directory_path() / ("embedkit-h2-dup-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  embedkit::TableConfig config;
  config.input_dim = 6;
  config.output_dim = 3;
  embedkit::EmbeddingTable(config).save(dir.string());
  std::string manifest;
  {
    std::ifstream in(dir / "manifest.json");
    manifest.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::size_t open = manifest.find('{');
  ASSERT_NE(open, std::string::npos);
  manifest.insert(open + 1, R"("step": 5, )");  // the saved "step" follows: the last one used to win
  std::ofstream(dir / "manifest.json", std::ios::trunc) << manifest;
  ek_table* loaded = nullptr;
  EXPECT_EQ(ek_load(dir.c_str(), &loaded), EK_IO_ERROR);
  EXPECT_NE(std::string(ek_last_error()).find("manifest.json has the key 'step' twice"), std::string::npos)
      << ek_last_error();
  EXPECT_EQ(loaded, nullptr);
  fs::remove_all(dir);
}

TEST(GuardedJson, IntegersBeyondSixtyFourBitsAreRefusedAsWritten) {
  ek_table* table = nullptr;
  EXPECT_EQ(create(R"({"input_dim": 5, "output_dim": 4, "seed": 18446744073709551616})", &table), EK_INVALID_ARGUMENT);
  // nlohmann alone turns it into the double 1.8446744073709552e+19 and the message shows that.
  EXPECT_NE(std::string(ek_last_error()).find("18446744073709551616"), std::string::npos) << ek_last_error();
  EXPECT_NE(std::string(ek_last_error()).find("out of range"), std::string::npos) << ek_last_error();
  EXPECT_EQ(create(R"({"input_dim": -9223372036854775809, "output_dim": 4})", &table), EK_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ek_last_error()).find("-9223372036854775809"), std::string::npos) << ek_last_error();
  EXPECT_EQ(create(R"({"input_dim": 5, "output_dim": 4, "lora_alpha": 1e400})", &table), EK_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ek_last_error()).find("1e400"), std::string::npos) << ek_last_error();
  EXPECT_EQ(table, nullptr);
  // The extremes that fit are read exactly.
  ASSERT_EQ(create(R"({"input_dim": 5, "output_dim": 4, "seed": 18446744073709551615})", &table), EK_OK)
      << ek_last_error();
  ek_table_destroy(table);
}

TEST(GuardedJson, ErrorMessagesStayShortWhateverTheInput) {
  // A megabyte string ending in a control character: the parser's "last read" is that whole token.
  const std::string config = R"({"input_dim": 5, "output_dim": 4, "name": ")" + std::string(1 << 20, 'a') + "\x01\"}";
  ek_table* table = nullptr;
  EXPECT_EQ(create(config, &table), EK_INVALID_ARGUMENT);
  const std::string message = ek_last_error();
  EXPECT_NE(message.find("config is not valid JSON"), std::string::npos) << message.substr(0, 300);
  EXPECT_LT(message.size(), 400u);
  // A wide (not deep) value of the wrong type: named by a short excerpt.
  std::string wide = R"({"input_dim": [)";
  for (int i = 0; i < 100000; ++i) wide += "1,";
  wide += R"(1], "output_dim": 4})";
  EXPECT_EQ(create(wide, &table), EK_INVALID_ARGUMENT);
  EXPECT_LT(std::string(ek_last_error()).size(), 300u);
  // A megabyte key: "unknown config key '...'" used to quote it whole.
  const std::string key(1 << 20, 'k');
  for (const std::string& document :
       {R"({"input_dim": 5, "output_dim": 4, ")" + key + R"(": 1})",
        R"({"input_dim": 5, "output_dim": 4, "optimizer": {"class_name": "SGD", "config": {")" + key + R"(": 1}}})"}) {
    EXPECT_EQ(create(document, &table), EK_INVALID_ARGUMENT);
    EXPECT_LT(std::string(ek_last_error()).size(), 300u);
    EXPECT_NE(std::string(ek_last_error()).find("config has a key of 1048576 bytes"), std::string::npos)
        << std::string(ek_last_error()).substr(0, 300);
  }
  EXPECT_EQ(table, nullptr);
}

// ---------------------------------------------------------------------------------------------
// Item 9: sizes past what a double reads exactly, and empty checkpoint paths.

TEST(SizeLimits, GpuMemoryAboveTheLargestExactSizeIsRefused) {
  for (const char* size : {"1e19", "1.8e19", "2e30", "8192TiB", "9007199254740992", "9007199254740993"}) {
    const auto [status, message] = plan(std::string(R"({"rows": 5, "dim": 4, "gpu_memory": ")") + size + "\"}");
    EXPECT_EQ(status, EK_INVALID_ARGUMENT) << size;
    EXPECT_NE(message.find(std::string("'") + size + "'"), std::string::npos) << message;
    EXPECT_NE(message.find("9007199254740991 bytes"), std::string::npos) << message;
    EXPECT_THROW(embedkit::parse_bytes(size), Error);
  }
  // The largest exact size itself, and its unit spellings, are read to the byte.
  EXPECT_EQ(embedkit::parse_bytes("9007199254740991"), (std::uint64_t{1} << 53) - 1);
  EXPECT_EQ(embedkit::parse_bytes("8191TiB"), std::uint64_t{8191} << 40);
  EXPECT_EQ(embedkit::parse_bytes("80GiB"), std::uint64_t{80} << 30);
  const auto [status, report] = plan(R"({"rows": 5, "dim": 4, "gpu_memory": "8191TiB"})");
  ASSERT_EQ(status, EK_OK) << report;
  EXPECT_EQ(nlohmann::json::parse(report)["device_free_bytes"], std::uint64_t{8191} << 40);
}

// Sizes given as JSON integers have the same cap as sizes given as strings: they are held as doubles
// by JSON readers, and were taken to the byte however large.
TEST(SizeLimits, GpuMemoryAsAJsonIntegerAboveTheLargestExactSizeIsRefused) {
  for (const char* key : {"gpu_memory", "gpu_memory_limit", "gpu_memory_headroom"}) {
    for (const char* size : {"9007199254740992", "18446744073709551615"}) {
      const auto [status, message] = plan(fmt::format(R"({{"rows": 5, "dim": 4, "{}": {}}})", key, size));
      EXPECT_EQ(status, EK_INVALID_ARGUMENT) << key << " " << size;
      EXPECT_NE(message.find(fmt::format("{} {} is more than 9007199254740991 bytes", key, size)), std::string::npos)
          << message;
    }
  }
  const auto [status, report] = plan(R"({"rows": 5, "dim": 4, "gpu_memory": 9007199254740991})");
  ASSERT_EQ(status, EK_OK) << report;
  EXPECT_EQ(nlohmann::json::parse(report)["device_free_bytes"], (std::uint64_t{1} << 53) - 1);
}

// inspect_checkpoint("") read /manifest.json: the empty path is refused first, as load and save refuse it.
TEST(SizeLimits, InspectingAnEmptyCheckpointPathIsAnInvalidArgument) {
  try {
    (void)embedkit::inspect_checkpoint("");
    ADD_FAILURE() << "inspected";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), embedkit::Status::invalid_argument) << e.what();
    EXPECT_NE(std::string(e.what()).find("checkpoint directory is empty"), std::string::npos) << e.what();
  }
}

TEST(SizeLimits, EmptyCheckpointPathIsAnInvalidArgument) {
  ek_table* loaded = nullptr;
  EXPECT_EQ(ek_load("", &loaded), EK_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ek_last_error()).find("checkpoint directory is empty"), std::string::npos) << ek_last_error();
  EXPECT_EQ(loaded, nullptr);
  ek_table* table = nullptr;
  ASSERT_EQ(create(R"({"input_dim": 5, "output_dim": 4})", &table), EK_OK);
  EXPECT_EQ(ek_save(table, ""), EK_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ek_last_error()).find("checkpoint directory is empty"), std::string::npos) << ek_last_error();
  ek_table_destroy(table);
  EXPECT_FALSE(fs::exists("/manifest.json"));
}

// ---------------------------------------------------------------------------------------------
// Item 10: the size query then fill while another thread writes.

struct Trainer {
  ek_table* table;
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> steps{0};
  std::thread thread;

  explicit Trainer(ek_table* t) : table(t) {
    thread = std::thread([this] {
      std::int64_t ids[2] = {1, 2};
      float grad[2 * 4] = {0.5f, 0.5f, 0.5f, 0.5f, 0.25f, 0.25f, 0.25f, 0.25f};
      std::int64_t ids_shape[1] = {2};
      std::int64_t grad_shape[2] = {2, 4};
      DLTensor indices{ids, {kDLCPU, 0}, 1, {kDLInt, 64, 1}, ids_shape, nullptr, 0};
      DLTensor grad_out{grad, {kDLCPU, 0}, 2, {kDLFloat, 32, 1}, grad_shape, nullptr, 0};
      while (!stop.load()) {
        if (ek_train_step(table, &indices, &grad_out) != EK_OK) ADD_FAILURE() << ek_last_error();
        steps.fetch_add(1);
      }
    });
  }
  ~Trainer() {
    stop = true;
    thread.join();
  }
};

TEST(TwoCallText, InfoSizeQueryThenFillHoldsWhileAnotherThreadTrains) {
  ek_table* table = nullptr;
  // A fixed seed: a drawn one may have fewer digits, and the sizes compared at the end would differ.
  const std::string config = R"({"input_dim": 5, "output_dim": 4, "name": "trained", "seed": 7})";
  ASSERT_EQ(create(config, &table), EK_OK);
  int failures = 0;
  std::int64_t last_step = -1;
  {
    Trainer trainer(table);
    // Until the step has gained a few digits while we read (10, 100, 1000, 10000, ...).
    for (int call = 0; call < 20000 && (call < 3000 || trainer.steps.load() < 20000); ++call) {
      const auto [status, text] = two_calls([&](char* buffer, std::size_t capacity, std::size_t* length) {
        return ek_table_info(table, buffer, capacity, length);
      });
      if (status != EK_OK) {
        ++failures;
        continue;
      }
      const nlohmann::json info = nlohmann::json::parse(text);  // the padding is JSON whitespace
      EXPECT_GE(info["step"].get<std::int64_t>(), last_step);
      last_step = info["step"].get<std::int64_t>();
    }
    EXPECT_GT(trainer.steps.load(), 1000);
  }
  EXPECT_EQ(failures, 0) << "of the two-call reads failed while the table trained";
  // The padded size is the size at the largest step: the same before and after training.
  std::size_t at_end = 0;
  EXPECT_EQ(ek_table_info(table, nullptr, 0, &at_end), EK_INVALID_ARGUMENT);
  ek_table* fresh = nullptr;
  ASSERT_EQ(create(config, &fresh), EK_OK);
  std::size_t at_start = 0;
  EXPECT_EQ(ek_table_info(fresh, nullptr, 0, &at_start), EK_INVALID_ARGUMENT);
  EXPECT_EQ(at_start, at_end);
  ek_table_destroy(fresh);
  ek_table_destroy(table);
}

// The summary holds no value training changes (unlike the info's step): a guard that it stays so.
TEST(TwoCallText, SummarySizeQueryThenFillHoldsWhileAnotherThreadTrains) {
  ek_table* table = nullptr;
  ASSERT_EQ(create(R"({"input_dim": 5, "output_dim": 4, "mask_zero": true})", &table), EK_OK);
  std::int32_t ids[3] = {0, 1, 4};
  std::int64_t shape[1] = {3};
  DLTensor batch{ids, {kDLCPU, 0}, 1, {kDLInt, 32, 1}, shape, nullptr, 0};
  int failures = 0;
  {
    Trainer trainer(table);
    for (int call = 0; call < 3000; ++call) {
      const auto [status, text] = two_calls([&](char* buffer, std::size_t capacity, std::size_t* length) {
        return ek_table_summary(table, call % 2 == 0 ? nullptr : &batch, buffer, capacity, length);
      });
      failures += status == EK_OK ? 0 : 1;
    }
  }
  EXPECT_EQ(failures, 0);
  ek_table_destroy(table);
}

// ---------------------------------------------------------------------------------------------
// Item 5: the process's own memory cgroup, v1 and v2, read through a root tests can point at.

class MemoryLimit : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("embedkit-h2-cgroup-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    write("proc/meminfo", "MemTotal:       67108864 kB\nMemAvailable:   33554432 kB\n");  // 32 GiB
  }
  void TearDown() override { fs::remove_all(root_); }

  void write(const std::string& path, const std::string& text) {
    fs::create_directories((root_ / path).parent_path());
    std::ofstream(root_ / path) << text;
  }
  std::uint64_t available() const { return embedkit::detail::host_memory_available(root_.string()); }

  static constexpr std::uint64_t kMiB = 1024 * 1024;
  fs::path root_;
};

constexpr const char* kV1Mounts =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

TEST_F(MemoryLimit, CgroupV1GroupOfTheProcessAndItsParents) {
  write("proc/self/mountinfo", kV1Mounts);
  write("proc/self/cgroup", "5:cpu,cpuacct:/\n4:memory:/jobs/job7\n0::/\n");
  // The job's own group is unlimited (v1 writes PAGE_COUNTER_MAX); its parent holds 256 MiB.
  write("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
  write("sys/fs/cgroup/memory/memory.usage_in_bytes", "4000000000\n");
  write("sys/fs/cgroup/memory/jobs/memory.limit_in_bytes", std::to_string(256 * kMiB) + "\n");
  write("sys/fs/cgroup/memory/jobs/memory.usage_in_bytes", std::to_string(200 * kMiB) + "\n");
  write("sys/fs/cgroup/memory/jobs/job7/memory.limit_in_bytes", "9223372036854771712\n");
  write("sys/fs/cgroup/memory/jobs/job7/memory.usage_in_bytes", std::to_string(150 * kMiB) + "\n");
  EXPECT_EQ(available(), 56 * kMiB);
  // The group itself tighter than its parent.
  write("sys/fs/cgroup/memory/jobs/job7/memory.limit_in_bytes", std::to_string(160 * kMiB) + "\n");
  EXPECT_EQ(available(), 10 * kMiB);
  // Usage past the limit (the kernel reclaims lazily): nothing left, not a wrapped-around size.
  write("sys/fs/cgroup/memory/jobs/job7/memory.usage_in_bytes", std::to_string(170 * kMiB) + "\n");
  EXPECT_EQ(available(), 0u);
}

TEST_F(MemoryLimit, CgroupV2GroupOfTheProcessAndItsParents) {
  write("proc/self/mountinfo", "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
  write("proc/self/cgroup", "0::/user.slice/app.scope\n");
  write("sys/fs/cgroup/memory.current", "4000000000\n");  // the root has no memory.max
  write("sys/fs/cgroup/user.slice/memory.max", std::to_string(1024 * kMiB) + "\n");
  write("sys/fs/cgroup/user.slice/memory.current", std::to_string(900 * kMiB) + "\n");
  write("sys/fs/cgroup/user.slice/app.scope/memory.max", "max\n");
  write("sys/fs/cgroup/user.slice/app.scope/memory.current", std::to_string(10 * kMiB) + "\n");
  EXPECT_EQ(available(), 124 * kMiB);
  write("sys/fs/cgroup/user.slice/app.scope/memory.max", std::to_string(20 * kMiB) + "\n");
  EXPECT_EQ(available(), 10 * kMiB);
}

TEST_F(MemoryLimit, HybridHierarchyTakesTheTighterOfV1AndV2) {
  write("proc/self/mountinfo", kV1Mounts);
  write("proc/self/cgroup", "4:memory:/a\n0::/b\n");
  write("sys/fs/cgroup/memory/a/memory.limit_in_bytes", std::to_string(512 * kMiB) + "\n");
  write("sys/fs/cgroup/memory/a/memory.usage_in_bytes", std::to_string(12 * kMiB) + "\n");
  write("sys/fs/cgroup/unified/b/memory.max", std::to_string(300 * kMiB) + "\n");
  write("sys/fs/cgroup/unified/b/memory.current", std::to_string(100 * kMiB) + "\n");
  EXPECT_EQ(available(), 200 * kMiB);
}

TEST_F(MemoryLimit, ContainerMountRootAndEscapedMountPoints) {
  // A container without a cgroup namespace: the mount's root is the group's own path.
  write("proc/self/mountinfo",
        "35 31 0:32 /docker/abc /sys/fs/cgroup/my\\040memory ro,nosuid - cgroup cgroup rw,memory\n");
  write("proc/self/cgroup", "4:memory:/docker/abc\n");
  write("sys/fs/cgroup/my memory/memory.limit_in_bytes", std::to_string(64 * kMiB) + "\n");
  write("sys/fs/cgroup/my memory/memory.usage_in_bytes", std::to_string(16 * kMiB) + "\n");
  EXPECT_EQ(available(), 48 * kMiB);
}

TEST_F(MemoryLimit, NoCgroupOrUnreadableFilesFallBackToMeminfo) {
  EXPECT_EQ(available(), 32768 * kMiB);
  write("proc/self/mountinfo", kV1Mounts);
  write("proc/self/cgroup", "4:memory:/gone\ngarbage line\n");
  write("sys/fs/cgroup/memory/gone/memory.limit_in_bytes", "not a number\n");
  EXPECT_EQ(available(), 32768 * kMiB);
  // A limit above what the machine has left: MemAvailable is the tighter one.
  write("sys/fs/cgroup/memory/gone/memory.limit_in_bytes", std::to_string(1ull << 40) + "\n");
  write("sys/fs/cgroup/memory/gone/memory.usage_in_bytes", "0\n");
  EXPECT_EQ(available(), 32768 * kMiB);
}

// A mount root is a path prefix of the group, not a string prefix: /docker/abc is not an ancestor
// of /docker/abcd. Read as one, the parser looked in "<mount>d" and then threw std::out_of_range
// out of every allocation; now the group is not under the mount and MemAvailable is the answer.
TEST_F(MemoryLimit, MountRootThatIsOnlyAStringPrefixOfTheGroupIsNotItsAncestor) {
  write("proc/self/mountinfo", "35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n");
  write("proc/self/cgroup", "4:memory:/docker/abcd\n");
  write("sys/fs/cgroup/memoryd/memory.limit_in_bytes", std::to_string(64 * kMiB) + "\n");
  write("sys/fs/cgroup/memoryd/memory.usage_in_bytes", std::to_string(16 * kMiB) + "\n");
  EXPECT_EQ(available(), 32768 * kMiB);
  // A group below the mount root still counts, and so does the mount root itself.
  write("proc/self/cgroup", "4:memory:/docker/abc/job\n");
  write("sys/fs/cgroup/memory/memory.limit_in_bytes", std::to_string(64 * kMiB) + "\n");
  write("sys/fs/cgroup/memory/memory.usage_in_bytes", std::to_string(16 * kMiB) + "\n");
  write("sys/fs/cgroup/memory/job/memory.limit_in_bytes", std::to_string(40 * kMiB) + "\n");
  write("sys/fs/cgroup/memory/job/memory.usage_in_bytes", std::to_string(10 * kMiB) + "\n");
  EXPECT_EQ(available(), 30 * kMiB);
  // A group path that is not absolute names no directory: MemAvailable, not an exception.
  write("proc/self/mountinfo", kV1Mounts);
  write("proc/self/cgroup", "4:memory:job\n");
  EXPECT_EQ(available(), 32768 * kMiB);
}

// Usage counts the page cache, which the kernel reclaims before it kills: after reading a large
// file a container looked out of memory. The inactive file cache is not counted as used.
TEST_F(MemoryLimit, InactiveFileCacheIsNotCountedAsUsed) {
  write("proc/self/mountinfo", "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
  write("proc/self/cgroup", "0::/app\n");
  write("sys/fs/cgroup/app/memory.max", std::to_string(1024 * kMiB) + "\n");
  write("sys/fs/cgroup/app/memory.current", std::to_string(1000 * kMiB) + "\n");
  write("sys/fs/cgroup/app/memory.stat", "anon 104857600\nfile 943718400\nactive_file 104857600\ninactive_file " +
                                             std::to_string(800 * kMiB) + "\nshmem 0\n");
  EXPECT_EQ(available(), 824 * kMiB);
  // More inactive cache than usage (the files are read at different moments): usage 0, not a wrap.
  write("sys/fs/cgroup/app/memory.stat", "inactive_file " + std::to_string(2000 * kMiB) + "\n");
  EXPECT_EQ(available(), 1024 * kMiB);
  // v1: memory.stat's total_inactive_file counts the group and those below it, as usage_in_bytes
  // does (inactive_file is the group's own).
  write("proc/self/mountinfo", kV1Mounts);
  write("proc/self/cgroup", "4:memory:/job\n");
  write("sys/fs/cgroup/memory/job/memory.limit_in_bytes", std::to_string(512 * kMiB) + "\n");
  write("sys/fs/cgroup/memory/job/memory.usage_in_bytes", std::to_string(500 * kMiB) + "\n");
  write("sys/fs/cgroup/memory/job/memory.stat", "cache 1\ninactive_file " + std::to_string(1 * kMiB) +
                                                    "\ntotal_inactive_file " + std::to_string(300 * kMiB) + "\n");
  EXPECT_EQ(available(), 312 * kMiB);
}

}  // namespace
