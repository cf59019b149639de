// Issue #22 regression tests: see docs/reliability.md, "Round two".
// Item 1: outputs that overlap an input or the table's memory are refused before anything is
// written. Item 12: id -1 is an id like any other (flagged, or a row of zeros under zero_fill),
// never padding, in pooled and plain calls, train steps and kernels. Item 9 (sqrtn): a per-sample
// weight whose square overflows float32.
#include <embedkit/c_api.h>
#include <embedkit/status.hpp>
#include <embedkit/table.hpp>

#include <gtest/gtest.h>

#include "kernels/gather_kernel.hpp"
#include "src/capi/c_api_support.hpp"
#include "src/core/memory_overlap.hpp"
#include "src/table/table_access.hpp"
#include "tests/kernel_host_launch.hpp"
#include "tests/sim_context.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace {

using embedkit::EmbeddingTable;
using embedkit::Error;
using embedkit::IndexTensor;
using embedkit::PoolingMode;
using embedkit::Status;
using embedkit::TableConfig;

constexpr std::int64_t kRows = 10, kDim = 4;

// ---------------------------------------------------------------------------------------------
// Item 1 through the C ABI, on host tensors carved out of one buffer so that they can overlap.

struct CTable {
  ek_table* table = nullptr;
  explicit CTable(const char* json = R"({"input_dim": 10, "output_dim": 4, "seed": 7, "mask_zero": true})") {
    EXPECT_EQ(ek_table_create(json, &table), EK_OK) << ek_last_error();
  }
  ~CTable() { ek_table_destroy(table); }
  std::vector<float> weights() const {
    std::vector<float> values(static_cast<std::size_t>(kRows * kDim));
    std::int64_t shape[] = {kRows, kDim};
    DLTensor out{values.data(), {kDLCPU, 0}, 2, {kDLFloat, 32, 1}, shape, nullptr, 0};
    EXPECT_EQ(ek_get_weights(table, &out), EK_OK) << ek_last_error();
    return values;
  }
};

// A 1-D or 2-D host tensor over `data` (shape storage kept by the caller).
DLTensor host_tensor(void* data, DLDataType dtype, std::int64_t* shape, int ndim) {
  return DLTensor{data, {kDLCPU, 0}, ndim, dtype, shape, nullptr, 0};
}
constexpr DLDataType kInt64{kDLInt, 64, 1}, kInt32{kDLInt, 32, 1}, kFloat32{kDLFloat, 32, 1}, kUint8{kDLUInt, 8, 1};

// 256 bytes, 16-byte aligned, that tensors are placed in at chosen byte offsets.
struct Arena {
  alignas(16) unsigned char bytes[256];
  Arena() {
    for (std::size_t i = 0; i < sizeof bytes; ++i) bytes[i] = static_cast<unsigned char>(i * 37 + 11);
  }
  template <class T>
  T* at(std::size_t offset) {
    return reinterpret_cast<T*>(bytes + offset);
  }
  std::vector<unsigned char> snapshot() const { return {bytes, bytes + sizeof bytes}; }
};

void expect_overlap_refused(ek_status status, const std::string& output, const std::string& input) {
  EXPECT_EQ(status, EK_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ek_last_error()).find(output + " and " + input + " overlap"), std::string::npos)
      << ek_last_error();
}

// ek_lookup_pooled with `out` laid over `offsets`: a crash in max, garbage in sum before.
TEST(AliasingCApi, PooledOutputOverOffsetsIsRefusedInEveryMode) {
  for (const char* mode : {"max", "sum", "mean", "sqrtn"}) {
    CTable t;
    const std::vector<float> weights_before = t.weights();
    Arena arena;
    std::int64_t* ids = arena.at<std::int64_t>(0);  // 4 ids: bytes [0, 32)
    ids[0] = 1, ids[1] = 2, ids[2] = 3, ids[3] = 4;
    std::int64_t* offsets = arena.at<std::int64_t>(64);  // 3 offsets: bytes [64, 88)
    offsets[0] = 0, offsets[1] = 2, offsets[2] = 4;
    const std::vector<unsigned char> before = arena.snapshot();
    std::int64_t ids_shape[] = {4}, offsets_shape[] = {3}, out_shape[] = {2, kDim};
    DLTensor ids_t = host_tensor(ids, kInt64, ids_shape, 1);
    DLTensor offsets_t = host_tensor(offsets, kInt64, offsets_shape, 1);
    DLTensor out_t = host_tensor(offsets, kFloat32, out_shape, 2);  // 32 bytes from offsets[0] on
    expect_overlap_refused(ek_lookup_pooled(t.table, &ids_t, &offsets_t, nullptr, mode, &out_t), "out", "offsets");
    EXPECT_EQ(arena.snapshot(), before) << mode << ": nothing may be written";
    EXPECT_EQ(t.weights(), weights_before) << mode;
  }
}

TEST(AliasingCApi, LookupOutputOverIndicesIsRefusedAtEitherEnd) {
  CTable t;
  const std::vector<float> weights_before = t.weights();
  // 4 ids at bytes [64, 96); their 4 output rows (64 bytes) from byte 88 on share the last id's
  // bytes, and from byte 8 on the first id's.
  for (const std::size_t out_at : {std::size_t{88}, std::size_t{8}}) {
    Arena arena;
    std::int64_t* ids = arena.at<std::int64_t>(64);
    ids[0] = 1, ids[1] = 2, ids[2] = 3, ids[3] = 4;
    const std::vector<unsigned char> before = arena.snapshot();
    std::int64_t ids_shape[] = {4}, out_shape[] = {4, kDim};
    DLTensor ids_t = host_tensor(ids, kInt64, ids_shape, 1);
    DLTensor out_t = host_tensor(arena.at<float>(out_at), kFloat32, out_shape, 2);
    expect_overlap_refused(ek_lookup(t.table, &ids_t, &out_t), "out", "indices");
    EXPECT_EQ(arena.snapshot(), before) << "out at byte " << out_at;
  }
  EXPECT_EQ(t.weights(), weights_before);
}

// ek_lookup writing its row over the one id it reads: EK_OK and a zero row before.
TEST(AliasingCApi, LookupOutputExactlyOverItsIndexIsRefused) {
  CTable t;
  Arena arena;
  std::int64_t* ids = arena.at<std::int64_t>(0);
  ids[0] = 3, ids[1] = 5;
  const std::vector<unsigned char> before = arena.snapshot();
  std::int64_t ids_shape[] = {2}, out_shape[] = {2, kDim};
  DLTensor ids_t = host_tensor(ids, kInt64, ids_shape, 1);
  DLTensor out_t = host_tensor(ids, kFloat32, out_shape, 2);
  expect_overlap_refused(ek_lookup(t.table, &ids_t, &out_t), "out", "indices");
  EXPECT_EQ(arena.snapshot(), before);
}

// Buffers that touch but share no byte are accepted, and the result is the plain reference.
TEST(AliasingCApi, AdjacentBuffersAreAccepted) {
  CTable t;
  const std::vector<float> weights = t.weights();
  Arena arena;
  std::int64_t* ids = arena.at<std::int64_t>(0);  // [0, 16)
  ids[0] = 3, ids[1] = 5;
  float* out = arena.at<float>(16);  // [16, 48), right after the ids
  std::int64_t ids_shape[] = {2}, out_shape[] = {2, kDim};
  DLTensor ids_t = host_tensor(ids, kInt64, ids_shape, 1);
  DLTensor out_t = host_tensor(out, kFloat32, out_shape, 2);
  ASSERT_EQ(ek_lookup(t.table, &ids_t, &out_t), EK_OK) << ek_last_error();
  for (std::int64_t c = 0; c < kDim; ++c) {
    EXPECT_EQ(out[c], weights[3 * kDim + c]);
    EXPECT_EQ(out[kDim + c], weights[5 * kDim + c]);
  }
  // The output just before the ids ([0, 32) with ids at [32, 48)) is accepted as well.
  std::int64_t* later_ids = arena.at<std::int64_t>(32);
  later_ids[0] = 1, later_ids[1] = 2;
  ids_t.data = later_ids;
  out_t.data = arena.at<float>(0);
  ASSERT_EQ(ek_lookup(t.table, &ids_t, &out_t), EK_OK) << ek_last_error();
  EXPECT_EQ(arena.at<float>(0)[0], weights[1 * kDim]);
  // Inputs may overlap each other: pooled weights laid over the offsets' bytes are only read.
  std::int64_t* offsets = arena.at<std::int64_t>(128);
  offsets[0] = 0, offsets[1] = 2;
  std::int64_t offsets_shape[] = {2}, pooled_shape[] = {1, kDim}, sample_shape[] = {2};
  DLTensor offsets_t = host_tensor(offsets, kInt64, offsets_shape, 1);
  DLTensor sample_t = host_tensor(offsets, kFloat32, sample_shape, 1);
  DLTensor pooled_t = host_tensor(arena.at<float>(192), kFloat32, pooled_shape, 2);
  EXPECT_EQ(ek_lookup_pooled(t.table, &ids_t, &offsets_t, &sample_t, "sum", &pooled_t), EK_OK) << ek_last_error();
}

// ek_compute_mask writing its bytes over the int32 ids it reads (a race before).
TEST(AliasingCApi, MaskOverInt32IdsIsRefused) {
  CTable t;
  Arena arena;
  std::int32_t* ids = arena.at<std::int32_t>(0);
  for (int i = 0; i < 8; ++i) ids[i] = i % 3;
  const std::vector<unsigned char> before = arena.snapshot();
  std::int64_t shape[] = {8};
  DLTensor ids_t = host_tensor(ids, kInt32, shape, 1);
  DLTensor mask_t = host_tensor(arena.at<std::uint8_t>(4), kUint8, shape, 1);  // inside the ids
  expect_overlap_refused(ek_compute_mask(t.table, &ids_t, &mask_t), "mask", "indices");
  EXPECT_EQ(arena.snapshot(), before);
}

TEST(AliasingCApi, SummaryBufferOverItsBatchIsRefused) {
  CTable t;
  Arena arena;
  std::int64_t* ids = arena.at<std::int64_t>(0);
  ids[0] = 0, ids[1] = 1;
  const std::vector<unsigned char> before = arena.snapshot();
  std::int64_t shape[] = {2};
  DLTensor batch = host_tensor(ids, kInt64, shape, 1);
  std::size_t length = 0;
  // Room for the whole summary (it is checked on the bytes it would write, refused before any is).
  expect_overlap_refused(ek_table_summary(t.table, &batch, reinterpret_cast<char*>(arena.bytes + 8), 4096, &length),
                         "buffer", "batch");
  EXPECT_EQ(arena.snapshot(), before);
}

// A text buffer is checked on the bytes written (the text and its NUL), not on the capacity the
// caller claims: a generous capacity over a later input was refused, and a capacity near SIZE_MAX
// wrapped the range's end around the address space, so text written over the batch was accepted.
TEST(AliasingCApi, TextBuffersAreCheckedOnTheBytesWrittenNotOnTheirCapacity) {
  CTable t;
  std::vector<unsigned char> arena(8192);
  std::int64_t* ids = reinterpret_cast<std::int64_t*>(arena.data() + arena.size() - 16);  // the last 16 bytes
  ids[0] = 0, ids[1] = 1;
  std::int64_t shape[] = {2};
  DLTensor batch = host_tensor(ids, kInt64, shape, 1);
  std::size_t length = 0;
  char* buffer = reinterpret_cast<char*>(arena.data());
  ASSERT_EQ(ek_table_summary(t.table, &batch, buffer, std::size_t{1} << 40, &length), EK_OK) << ek_last_error();
  ASSERT_LT(length, arena.size() - 16);
  EXPECT_EQ(std::strlen(buffer) + 1, length);
  // The batch 16 bytes into the buffer: the text lands on it whatever the capacity.
  std::int64_t* inside = reinterpret_cast<std::int64_t*>(arena.data() + 16);
  inside[0] = 0, inside[1] = 1;
  batch.data = inside;
  const std::vector<unsigned char> before = arena;
  for (const std::size_t capacity : {std::size_t{4096}, SIZE_MAX, SIZE_MAX - 8}) {
    SCOPED_TRACE(capacity);
    expect_overlap_refused(ek_table_summary(t.table, &batch, buffer, capacity, &length), "buffer", "batch");
    EXPECT_EQ(arena, before);
  }
}

// overlap() at the top of the address space, where begin + bytes wraps to a small number.
TEST(AliasingRanges, RangesReachingTheEndOfTheAddressSpaceAreComparedWithoutWrapping) {
  using embedkit::detail::NamedBytes;
  using embedkit::detail::overlap;
  const auto at = [](std::uintptr_t address) { return reinterpret_cast<const void*>(address); };
  const std::uintptr_t top = std::numeric_limits<std::uintptr_t>::max();
  const NamedBytes last{"last", at(top - 15), 16}, inside{"inside", at(top - 3), 2}, low{"low", at(0x1000), 16};
  EXPECT_TRUE(overlap(last, inside));
  EXPECT_TRUE(overlap(inside, last));
  EXPECT_FALSE(overlap(last, low));
  EXPECT_FALSE(overlap(low, last));
  const NamedBytes everything_above{"huge", at(0x1000), SIZE_MAX}, later{"later", at(0x2000), 8};
  EXPECT_TRUE(overlap(everything_above, later));
  EXPECT_TRUE(overlap(later, everything_above));
  EXPECT_FALSE(overlap(NamedBytes{"before", at(0x800), 0x800}, everything_above));  // touching, not sharing
}

// Outputs over the table's own memory: a copy of the weights onto themselves, a lookup's rows
// written into the matrix it reads. set_weights given exactly its own weights is a no-op.
TEST(AliasingCApi, OutputsOverTheTablesWeightsAreRefused) {
  CTable t;
  const std::vector<float> weights_before = t.weights();
  const std::vector<embedkit::detail::NamedBytes> memory =
      embedkit::detail::TableAccess::memory(embedkit::detail::table_of_handle(t.table));
  ASSERT_EQ(memory.front().bytes, weights_before.size() * sizeof(float));
  auto* own = static_cast<float*>(const_cast<void*>(memory.front().data));
  std::int64_t weights_shape[] = {kRows, kDim};
  DLTensor own_t = host_tensor(own, kFloat32, weights_shape, 2);
  expect_overlap_refused(ek_get_weights(t.table, &own_t), "out", "the table's weights");
  std::int64_t ids[] = {1, 2};
  std::int64_t ids_shape[] = {2}, out_shape[] = {2, kDim};
  DLTensor ids_t = host_tensor(ids, kInt64, ids_shape, 1);
  DLTensor rows_t = host_tensor(own + 3 * kDim, kFloat32, out_shape, 2);
  expect_overlap_refused(ek_lookup(t.table, &ids_t, &rows_t), "out", "the table's weights");
  EXPECT_EQ(t.weights(), weights_before);
  EXPECT_EQ(ek_set_weights(t.table, &own_t), EK_OK) << ek_last_error();  // a view of its own weights
  EXPECT_EQ(t.weights(), weights_before);
  // Shifted by one row, the "new" weights run over the table's from its second row on.
  DLTensor shifted_t = host_tensor(own + kDim, kFloat32, weights_shape, 2);
  expect_overlap_refused(ek_set_weights(t.table, &shifted_t), "the table's weights", "weights");
  EXPECT_EQ(t.weights(), weights_before);
}

// ---------------------------------------------------------------------------------------------
// Item 1 through the C++ API, on the CPU and on the simulated device, with the same message.

TableConfig small_config() {
  TableConfig config;
  config.input_dim = kRows;
  config.output_dim = kDim;
  config.seed = 7;
  return config;
}

std::unique_ptr<EmbeddingTable> table_on(bool device, std::unique_ptr<embedkit::Context>& context,
                                         TableConfig config = small_config()) {
  if (!device) return std::make_unique<EmbeddingTable>(config);
  context = embedkit::testing::sim_context(std::uint64_t{64} << 20);
  auto table = std::make_unique<EmbeddingTable>(config, *context);
  EXPECT_EQ(table->placement().device, embedkit::DeviceKind::cuda);
  return table;
}

std::string error_of(const std::function<void()>& call, Status expected) {
  try {
    call();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), expected) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return {};
}

TEST(AliasingCpp, OutputsOverInputsAreRefusedAlikeOnCpuAndDevice) {
  std::vector<std::string> messages;
  for (const bool device : {false, true}) {
    std::unique_ptr<embedkit::Context> context;
    auto table = table_on(device, context);
    const auto weights = table->get_weights().values;
    Arena arena;
    auto* ids = arena.at<std::int64_t>(0);
    ids[0] = 1, ids[1] = 2;
    auto* offsets = arena.at<std::int64_t>(64);
    offsets[0] = 0, offsets[1] = 2;
    const std::vector<unsigned char> before = arena.snapshot();
    const IndexTensor indices(ids, {2});
    const std::string lookup =
        error_of([&] { table->lookup(indices, std::span(arena.at<float>(8), 2 * kDim)); }, Status::invalid_argument);
    EXPECT_NE(lookup.find("out and indices overlap"), std::string::npos) << lookup;
    const std::string pooled = error_of(
        [&] {
          table->lookup_pooled(indices, std::span<const std::int64_t>(offsets, 2), PoolingMode::max, {},
                               std::span(arena.at<float>(72), kDim));
        },
        Status::invalid_argument);
    EXPECT_NE(pooled.find("out and offsets overlap"), std::string::npos) << pooled;
    EXPECT_EQ(arena.snapshot(), before);
    EXPECT_EQ(table->get_weights().values, weights);
    // The messages differ only in the addresses; their start is the same on both.
    messages.push_back(lookup.substr(0, lookup.find('(')) + pooled.substr(0, pooled.find('(')));
  }
  EXPECT_EQ(messages[0], messages[1]);
}

TEST(AliasingCpp, OutputsOverTheTablesMemoryAreRefusedOnCpuAndDevice) {
  for (const bool device : {false, true}) {
    std::unique_ptr<embedkit::Context> context;
    TableConfig config = small_config();
    config.optimizer.kind = embedkit::OptimizerKind::adagrad;
    auto table = table_on(device, context, config);
    const auto weights = table->get_weights().values;
    const auto accumulator = table->optimizer_state("accumulator").values;
    const auto memory = embedkit::detail::TableAccess::memory(*table);
    ASSERT_EQ(memory.size(), 2u);
    auto* own = static_cast<float*>(const_cast<void*>(memory[0].data));
    auto* slot = static_cast<float*>(const_cast<void*>(memory[1].data));
    const auto count = static_cast<std::size_t>(kRows * kDim);
    const std::string copied = error_of([&] { table->get_weights(std::span(own, count)); }, Status::invalid_argument);
    EXPECT_NE(copied.find("out and the table's weights overlap"), std::string::npos) << copied;
    const std::vector<std::int64_t> ids = {1, 2};
    const std::string looked =
        error_of([&] { table->lookup(IndexTensor(ids), std::span(slot + kDim, 2 * kDim)); }, Status::invalid_argument);
    EXPECT_NE(looked.find("out and the table's optimizer state 'accumulator' overlap"), std::string::npos) << looked;
    const std::vector<std::int64_t> shape = {kRows, kDim};
    table->set_weights(std::span<const float>(own, count), shape);  // its own weights: a no-op
    const std::string shifted = error_of([&] { table->set_weights(std::span<const float>(own + kDim, count), shape); },
                                         Status::invalid_argument);
    EXPECT_NE(shifted.find("the table's weights and weights overlap"), std::string::npos) << shifted;
    EXPECT_EQ(table->get_weights().values, weights) << "device " << device;
    EXPECT_EQ(table->optimizer_state("accumulator").values, accumulator) << "device " << device;
  }
}

// A train step writes the table: a gradient, ids, offsets or sample weights laid over its weights or
// optimizer state were read while the step wrote them. Refused before anything changes, on the CPU
// (fused and unfused) and on the device, as an output over the table is.
TEST(AliasingCpp, TrainStepInputsOverTheTablesMemoryAreRefused) {
  for (const bool device : {false, true}) {
    for (const bool fused : {true, false}) {
      SCOPED_TRACE(std::string(device ? "device" : "cpu") + (fused ? ", fused" : ", unfused"));
      std::unique_ptr<embedkit::Context> context;
      TableConfig config = small_config();
      config.optimizer.kind = embedkit::OptimizerKind::adagrad;
      // "error" is never fused: the unfused step is taken.
      if (!fused) config.nonfinite_gradients = embedkit::NonFiniteGradients::error;
      auto table = table_on(device, context, config);
      const auto memory = embedkit::detail::TableAccess::memory(*table);
      ASSERT_EQ(memory.size(), 2u);
      auto* own = static_cast<float*>(const_cast<void*>(memory[0].data));
      auto* slot = static_cast<float*>(const_cast<void*>(memory[1].data));
      const auto weights = table->get_weights().values;
      const auto accumulator = table->optimizer_state("accumulator").values;
      const std::vector<std::int64_t> ids = {1, 2};
      const std::string grad =
          error_of([&] { table->train_step(IndexTensor(ids), std::span<const float>(own + kDim, 2 * kDim)); },
                   Status::invalid_argument);
      EXPECT_NE(grad.find("the table's weights and grad_out overlap"), std::string::npos) << grad;
      // Ids over the optimizer state (their bits are small floats' bits: in range or not, refused first).
      const IndexTensor over_state(reinterpret_cast<const std::int64_t*>(slot), {2});
      const std::vector<float> gradient(2 * kDim, 0.5f);
      const std::string idx = error_of([&] { table->train_step(over_state, gradient); }, Status::invalid_argument);
      EXPECT_NE(idx.find("the table's optimizer state 'accumulator' and indices overlap"), std::string::npos) << idx;
      const std::vector<std::int64_t> offsets = {0, 2};
      const std::string bags = error_of(
          [&] {
            table->train_step_pooled(IndexTensor(ids), std::span<const std::int64_t>(offsets), PoolingMode::sum,
                                     std::span<const float>(slot, 2), std::span<const float>(own, kDim));
          },
          Status::invalid_argument);
      EXPECT_NE(bags.find("the table's weights and grad_bags overlap"), std::string::npos) << bags;
      const std::vector<float> sample_weights = {1.0f, 1.0f};
      const std::string weighted = error_of(
          [&] {
            table->train_step_pooled(IndexTensor(ids), std::span<const std::int64_t>(offsets), PoolingMode::sum,
                                     std::span<const float>(slot + 4, 2),
                                     std::span<const float>(gradient.data(), kDim));
          },
          Status::invalid_argument);
      EXPECT_NE(weighted.find("the table's optimizer state 'accumulator' and per_sample_weights overlap"),
                std::string::npos)
          << weighted;
      EXPECT_EQ(table->get_weights().values, weights);
      EXPECT_EQ(table->optimizer_state("accumulator").values, accumulator);
      // Apart, the same calls train.
      table->train_step(IndexTensor(ids), gradient);
      table->train_step_pooled(IndexTensor(ids), std::span<const std::int64_t>(offsets), PoolingMode::sum,
                               sample_weights, std::span<const float>(gradient.data(), kDim));
      EXPECT_NE(table->get_weights().values, weights);
    }
  }
}

// The same through the C ABI, which checks the caller's tensors where they are.
TEST(AliasingCApi, TrainStepGradientOverTheTablesWeightsIsRefused) {
  CTable t;
  const std::vector<float> weights_before = t.weights();
  const auto memory = embedkit::detail::TableAccess::memory(embedkit::detail::table_of_handle(t.table));
  auto* own = static_cast<float*>(const_cast<void*>(memory[0].data));
  std::int64_t ids[] = {1, 2}, offsets[] = {0, 2};
  std::int64_t ids_shape[] = {2}, grad_shape[] = {2, kDim}, offsets_shape[] = {2}, bag_shape[] = {1, kDim};
  DLTensor ids_t = host_tensor(ids, kInt64, ids_shape, 1);
  DLTensor grad_t = host_tensor(own + 2 * kDim, kFloat32, grad_shape, 2);
  expect_overlap_refused(ek_train_step(t.table, &ids_t, &grad_t), "the table's weights", "grad_out");
  DLTensor offsets_t = host_tensor(offsets, kInt64, offsets_shape, 1);
  DLTensor bag_t = host_tensor(own, kFloat32, bag_shape, 2);
  expect_overlap_refused(ek_train_step_pooled(t.table, &ids_t, &offsets_t, nullptr, "sum", &bag_t),
                         "the table's weights", "grad_out");
  EXPECT_EQ(t.weights(), weights_before);
}

// ---------------------------------------------------------------------------------------------
// Item 12: id -1 without padding_idx in pooled calls.

TableConfig config_with(embedkit::BoundsCheck bounds, std::optional<std::int64_t> padding_idx = std::nullopt) {
  TableConfig config = small_config();
  config.bounds_check = bounds;
  config.padding_idx = padding_idx;
  config.optimizer.kind = embedkit::OptimizerKind::sgd;
  config.optimizer.learning_rate = 0.5;
  return config;
}

constexpr PoolingMode kModes[] = {PoolingMode::sum, PoolingMode::mean, PoolingMode::max, PoolingMode::sqrtn};

TEST(PaddingFlag, MinusOneIsOutOfRangeInPooledCallsAlikeOnCpuAndDevice) {
  const std::vector<std::int64_t> ids = {2, -1, 3};
  const std::vector<std::int64_t> offsets = {0, 3};
  const std::vector<float> grad(kDim, 1.0f);
  for (const PoolingMode mode : kModes) {
    for (const bool device : {false, true}) {
      std::unique_ptr<embedkit::Context> context;
      auto table = table_on(device, context, config_with(embedkit::BoundsCheck::error));
      const auto weights = table->get_weights().values;
      const std::string looked =
          error_of([&] { table->lookup_pooled(IndexTensor(ids), offsets, mode); }, Status::out_of_range);
      EXPECT_EQ(looked, "indices[1] = -1 is not in [0, 10)") << embedkit::to_string(mode) << " device " << device;
      const std::string trained =
          error_of([&] { table->train_step_pooled(IndexTensor(ids), offsets, mode, {}, grad); }, Status::out_of_range);
      EXPECT_EQ(trained, "indices[1] = -1 is not in [0, 10)") << embedkit::to_string(mode) << " device " << device;
      EXPECT_EQ(table->get_weights().values, weights);
      EXPECT_EQ(table->step(), 0);
    }
  }
}

// Under zero_fill, -1 is a row of zeros that counts, as any other id outside the table (99 here):
// it was skipped as padding and left out of mean's and sqrtn's denominators and of max before.
TEST(PaddingFlag, MinusOneUnderZeroFillCountsAsAZeroRowAlikeOnCpuAndDevice) {
  const std::vector<std::int64_t> minus_one = {-1, 3}, outside = {99, 3};
  const std::vector<std::int64_t> offsets = {0, 2};
  const std::vector<float> grad = {1.0f, -2.0f, 0.5f, 4.0f};
  for (const PoolingMode mode : kModes) {
    for (const bool device : {false, true}) {
      std::unique_ptr<embedkit::Context> context_a, context_b;
      auto a = table_on(device, context_a, config_with(embedkit::BoundsCheck::zero_fill));
      auto b = table_on(device, context_b, config_with(embedkit::BoundsCheck::zero_fill));
      const auto row3 = a->row(3);
      const auto pooled = a->lookup_pooled(IndexTensor(minus_one), offsets, mode).values;
      EXPECT_EQ(pooled, b->lookup_pooled(IndexTensor(outside), offsets, mode).values)
          << embedkit::to_string(mode) << " device " << device;
      // The plain reference: entries 0-row and row 3.
      for (std::int64_t c = 0; c < kDim; ++c) {
        const float v = row3[c];
        const float expected = mode == PoolingMode::sum     ? v
                               : mode == PoolingMode::mean  ? v / 2.0f
                               : mode == PoolingMode::sqrtn ? v / std::sqrt(2.0f)
                                                            : std::max(0.0f, v);
        EXPECT_FLOAT_EQ(pooled[c], expected) << embedkit::to_string(mode) << " column " << c << " device " << device;
      }
      a->train_step_pooled(IndexTensor(minus_one), offsets, mode, {}, grad);
      b->train_step_pooled(IndexTensor(outside), offsets, mode, {}, grad);
      EXPECT_EQ(a->get_weights().values, b->get_weights().values) << embedkit::to_string(mode) << " device " << device;
    }
  }
}

TEST(PaddingFlag, ARealPaddingIdxIsStillSkippedAndNotCounted) {
  const std::vector<std::int64_t> ids = {0, 3};
  const std::vector<std::int64_t> offsets = {0, 2};
  for (const bool device : {false, true}) {
    std::unique_ptr<embedkit::Context> context;
    auto table = table_on(device, context, config_with(embedkit::BoundsCheck::error, 0));
    const auto row3 = table->row(3);
    EXPECT_EQ(table->lookup_pooled(IndexTensor(ids), offsets, PoolingMode::mean).values, row3);
    EXPECT_EQ(table->lookup_pooled(IndexTensor(ids), offsets, PoolingMode::max).values, row3);
    const auto before = table->get_weights().values;
    table->train_step_pooled(IndexTensor(ids), offsets, PoolingMode::mean, {}, std::vector<float>(kDim, 1.0f));
    EXPECT_EQ(table->row(0), std::vector<float>(before.begin(), before.begin() + kDim)) << "padding row trained";
    EXPECT_NE(table->row(3), row3);
  }
}

// Item 12 beyond pooling: every path below the table takes the padding as a flag (detail::Padding),
// so without a padding_idx id -1 is an id outside the table in plain lookups, in train steps fused
// and unfused, and in the CUDA gather kernel's body, never a "no padding" value that an id can equal.

// A table on the CPU or the simulated device whose train steps take the fused path or not: the
// simulated device offers its fused step or not (tests/fused_step_test.cpp); the CPU fuses every
// step it may, and a step under nonfinite_gradients "error" it may not.
std::unique_ptr<EmbeddingTable> stepping_table(bool device, bool fused, std::unique_ptr<embedkit::Context>& context,
                                               TableConfig config) {
  if (!device && !fused) config.nonfinite_gradients = embedkit::NonFiniteGradients::error;
  auto table = table_on(device, context, config);
  if (device) embedkit::testing::sim_of(*context).offer_fused_steps(fused);
  return table;
}

TEST(PaddingFlagEverywhere, MinusOneIsOutOfRangeInPlainLookupAndTrainStepsFusedOrNot) {
  const std::vector<std::int64_t> good = {2, 3}, bad = {2, -1, 3};
  for (const bool device : {false, true}) {
    for (const bool fused : {true, false}) {
      const std::string where = std::string(device ? "device" : "cpu") + (fused ? " fused" : " unfused");
      std::unique_ptr<embedkit::Context> context;
      auto table = stepping_table(device, fused, context, config_with(embedkit::BoundsCheck::error));
      table->train_step(IndexTensor(good), std::vector<float>(2 * kDim, 1.0f));  // a step that lands
      if (device) {
        EXPECT_EQ(embedkit::testing::sim_of(*context).fused_steps(), fused ? 1 : 0) << where;
      }
      const auto weights = table->get_weights().values;
      EXPECT_EQ(error_of([&] { table->lookup(IndexTensor(bad)); }, Status::out_of_range),
                "indices[1] = -1 is not in [0, 10)")
          << where;
      EXPECT_EQ(error_of([&] { table->train_step(IndexTensor(bad), std::vector<float>(3 * kDim, 1.0f)); },
                         Status::out_of_range),
                "indices[1] = -1 is not in [0, 10)")
          << where;
      EXPECT_EQ(table->get_weights().values, weights) << where;
      EXPECT_EQ(table->step(), 1) << where;
    }
  }
}

// Under zero_fill, -1 reads as zeros and is counted, as any other id outside the table (99 here);
// it trains nothing, fused or not.
TEST(PaddingFlagEverywhere, MinusOneUnderZeroFillIsACountedZeroRowInPlainLookups) {
  const std::vector<std::int64_t> minus_one = {-1, 3, -1}, outside = {99, 3, 99};
  const std::vector<float> grad = {1.0f, -2.0f, 0.5f, 4.0f, 3.0f, 1.0f, -1.0f, 2.0f, 0.25f, -0.5f, 1.5f, 8.0f};
  for (const bool device : {false, true}) {
    for (const bool fused : {true, false}) {
      const std::string where = std::string(device ? "device" : "cpu") + (fused ? " fused" : " unfused");
      std::unique_ptr<embedkit::Context> context_a, context_b;
      auto a = stepping_table(device, fused, context_a, config_with(embedkit::BoundsCheck::zero_fill));
      auto b = stepping_table(device, fused, context_b, config_with(embedkit::BoundsCheck::zero_fill));
      std::vector<float> expected(3 * kDim, 0.0f);
      const auto row3 = a->row(3);
      std::copy(row3.begin(), row3.end(), expected.begin() + kDim);
      EXPECT_EQ(a->lookup(IndexTensor(minus_one)).values, expected) << where;
      EXPECT_EQ(a->out_of_range_count(), 2) << where;
      a->train_step(IndexTensor(minus_one), grad);
      b->train_step(IndexTensor(outside), grad);
      EXPECT_EQ(a->get_weights().values, b->get_weights().values) << where;
      EXPECT_NE(a->row(3), row3) << where;
    }
  }
}

// The CUDA gather kernel's body on the host at every launch coordinate (as
// tests/gather_kernel_host_test.cpp): without padding, -1 raises the out-of-range flag and reads
// as zeros; with padding_idx 0, id 0 reads as zeros without the flag, and -1 still raises it.
TEST(PaddingFlagEverywhere, TheGatherKernelBodyFlagsMinusOneWithoutPadding) {
  std::vector<float> weights(static_cast<std::size_t>(kRows * kDim));
  for (std::size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<float>(i) + 1.0f;
  const auto gather = [&](const std::vector<std::int64_t>& ids, embedkit::detail::Padding padding,
                          std::vector<float>& out) {
    const auto count = static_cast<std::int64_t>(ids.size());
    out.assign(static_cast<std::size_t>(count * kDim), -9.0f);
    unsigned int flag = 0;
    const embedkit::kernels::GatherPlan plan = embedkit::kernels::plan_gather(count, kDim, false);
    const embedkit::kernels::GatherArgs<std::int64_t> args{weights.data(), kRows,   kDim,       ids.data(),
                                                           count,          padding, out.data(), &flag};
    embedkit::testing::host_launch(plan.groups.blocks, plan.groups.threads(), [&](std::int64_t block, int thread) {
      embedkit::kernels::gather_body(block, thread, plan, args);
    });
    return flag;
  };
  const auto row = [&](std::int64_t id) {
    return std::vector<float>(weights.begin() + id * kDim, weights.begin() + (id + 1) * kDim);
  };
  const auto expect_rows = [&](const std::vector<float>& out, const std::vector<std::vector<float>>& rows) {
    for (std::size_t i = 0; i < rows.size(); ++i) {
      EXPECT_EQ(std::vector<float>(out.begin() + static_cast<std::ptrdiff_t>(i) * kDim,
                                   out.begin() + static_cast<std::ptrdiff_t>(i + 1) * kDim),
                rows[i])
          << "row " << i;
    }
  };
  const std::vector<float> zeros(kDim, 0.0f);
  std::vector<float> out;
  EXPECT_EQ(gather({0, -1, 3}, embedkit::detail::Padding{}, out), 1u);
  expect_rows(out, {row(0), zeros, row(3)});
  EXPECT_EQ(gather({0, 3}, embedkit::detail::Padding{true, 0}, out), 0u);
  expect_rows(out, {zeros, row(3)});
  EXPECT_EQ(gather({0, -1}, embedkit::detail::Padding{true, 0}, out), 1u);
  expect_rows(out, {zeros, zeros});
}

// ---------------------------------------------------------------------------------------------
// Item 9: sqrtn with a per-sample weight of 1e20, whose square overflows float32.

TEST(SqrtnOverflow, AHugeSampleWeightPoolsToTheWeightedRowOverItsNorm) {
  const std::vector<std::int64_t> ids = {3, 4};
  const std::vector<std::int64_t> offsets = {0, 1, 2};
  const std::vector<float> sample_weights = {1e20f, -3e25f};
  for (const bool device : {false, true}) {
    std::unique_ptr<embedkit::Context> context;
    auto table = table_on(device, context);
    const auto pooled = table->lookup_pooled(IndexTensor(ids), offsets, PoolingMode::sqrtn, sample_weights).values;
    const auto row3 = table->row(3), row4 = table->row(4);
    for (std::int64_t c = 0; c < kDim; ++c) {
      // w·row / sqrt(w²) = sign(w)·row, computed in double as the reference.
      EXPECT_NEAR(pooled[c], row3[c], 1e-6 * std::abs(row3[c])) << "column " << c << " device " << device;
      EXPECT_NEAR(pooled[kDim + c], -row4[c], 1e-6 * std::abs(row4[c])) << "column " << c << " device " << device;
    }
  }
}

}  // namespace
