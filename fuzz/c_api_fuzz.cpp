// libFuzzer target: the C ABI's tensor entry points with fuzzed DLTensor descriptions. The bytes
// choose a table, an entry point, and for each tensor its dtype, rank, shape, strides, byte_offset,
// device and contents (ids anywhere in int64, CSR offsets, floats with NaN and infinities). Memory is
// allocated to hold whatever a description promises (up to 64 KiB; a larger promise gets NULL data),
// so a read or write past it is embedkit's fault, which AddressSanitizer reports.
//
// Checked on every call: the status is never EK_INTERNAL; a failed call changes no weight, nothing in
// the table's info (step count, counters) and no output byte; a successful lookup, mask or
// get_weights returns what a plain reference computes from the table, and set_weights stores its input;
// ek_lookup_new and ek_lookup_pooled_new hand out nothing when they fail, and a compact float32 host
// tensor of dim-wide rows (the lookup's rows, for ek_lookup_new) when they succeed.
#include <embedkit/c_api.h>
#include <embedkit/logging.hpp>

#include "fuzz/fuzz_support.hpp"

#include <dlpack/dlpack.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace {

using embedkit::fuzz::require;

// Reads the input front to back; past its end every byte is 0.
class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint8_t byte() { return at_ < size_ ? data_[at_++] : 0; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

struct TableSpec {
  const char* config;
  std::int64_t rows, dim;
  std::int64_t padding_idx;  // -1: none
  bool zero_fill, mask_zero;
};

constexpr std::array<TableSpec, 4> kTables = {{
    {R"({"input_dim": 16, "output_dim": 4, "seed": 1, "optimizer": "adagrad"})", 16, 4, -1, false, false},
    {R"({"input_dim": 16, "output_dim": 3, "seed": 2, "mask_zero": true, "padding_idx": 0, "bounds_check": "zero_fill",
         "optimizer": {"class_name": "SGD", "config": {"learning_rate": 0.1, "momentum": 0.9}}})",
     16, 3, 0, true, true},
    {R"({"input_dim": 1000, "output_dim": 8, "seed": 3, "optimizer": "adam", "nonfinite_gradients": "error"})", 1000, 8,
     -1, false, false},
    {R"({"input_dim": 5, "output_dim": 1, "seed": 4, "optimizer": "ftrl", "trainable": false})", 5, 1, -1, false,
     false},
}};

enum class Entry {
  lookup,
  lookup_pooled,
  compute_mask,
  train_step,
  train_step_pooled,
  get_weights,
  set_weights,
  lookup_new,  // the output allocated by the library: chosen by a last byte, see below
  lookup_pooled_new
};
constexpr int kEntryCount = 7;  // the entries the second byte chooses

// What a tensor argument holds, which decides its natural dtype and how its contents are drawn.
enum class Role { ids, offsets, floats, float_output, mask_output };

constexpr std::size_t kMaxTensorBytes = std::size_t{1} << 16;
constexpr std::uint8_t kBoolCode = 6;

// Dtypes drawn when the input asks for another than the role's own.
constexpr std::array<DLDataType, 12> kOtherDtypes = {{{kDLInt, 64, 1},
                                                      {kDLInt, 32, 1},
                                                      {kDLFloat, 32, 1},
                                                      {kDLUInt, 8, 1},
                                                      {kBoolCode, 8, 1},
                                                      {kDLFloat, 64, 1},
                                                      {kDLInt, 16, 1},
                                                      {kDLUInt, 64, 1},
                                                      {kDLFloat, 16, 1},
                                                      {kDLInt, 32, 4},
                                                      {kDLFloat, 32, 0},
                                                      {kBoolCode, 1, 1}}};

constexpr std::array<std::int64_t, 10> kWildExtents = {-1,
                                                       std::numeric_limits<std::int64_t>::min(),
                                                       std::numeric_limits<std::int64_t>::max(),
                                                       std::int64_t{1} << 31,
                                                       std::int64_t{1} << 32,
                                                       std::int64_t{1} << 62,
                                                       3037000500,
                                                       65536,
                                                       100000,
                                                       0};

DLDataType natural_dtype(Role role, std::uint8_t pick) {
  switch (role) {
    case Role::ids: return pick % 2 == 0 ? DLDataType{kDLInt, 64, 1} : DLDataType{kDLInt, 32, 1};
    case Role::offsets: return {kDLInt, 64, 1};
    case Role::mask_output: return pick % 2 == 0 ? DLDataType{kDLUInt, 8, 1} : DLDataType{kBoolCode, 8, 1};
    case Role::floats:
    case Role::float_output: return {kDLFloat, 32, 1};
  }
  return {kDLFloat, 32, 1};
}

// One tensor argument: its description, and the memory its description promises.
struct FuzzTensor {
  DLTensor tensor{};
  std::vector<std::int64_t> shape, strides;
  std::vector<unsigned char> memory;
  bool passed = true;       // false: the call gets NULL
  std::int64_t count = -1;  // elements, -1 when the shape is invalid
  const DLTensor* pointer() const { return passed ? &tensor : nullptr; }
  // The first element of a tensor that has elements (an empty one may hold any data and byte_offset).
  unsigned char* base() { return static_cast<unsigned char*>(tensor.data) + tensor.byte_offset; }
};

std::size_t element_bytes(DLDataType dtype) {
  const std::size_t bits = std::size_t{dtype.bits} * std::max<std::size_t>(dtype.lanes, 1);
  return std::max<std::size_t>((bits + 7) / 8, 1);
}

// Fills a tensor's memory for its role: mostly valid ids or finite floats, sometimes the extremes.
void fill(FuzzTensor& t, Role role, Reader& in, std::int64_t rows, std::int64_t id_count) {
  const std::int64_t n = t.count;
  if (n <= 0 || t.memory.empty()) return;
  const DLDataType dtype = t.tensor.dtype;
  const bool int64 = dtype.code == kDLInt && dtype.bits == 64 && dtype.lanes == 1;
  const bool int32 = dtype.code == kDLInt && dtype.bits == 32 && dtype.lanes == 1;
  const bool float32 = dtype.code == kDLFloat && dtype.bits == 32 && dtype.lanes == 1;
  unsigned char* p = t.base();
  if (role == Role::offsets && int64) {
    // A CSR over the ids, cut where the input says, then perhaps one entry moved.
    std::int64_t at = 0;
    for (std::int64_t k = 0; k < n; ++k) {
      const std::int64_t v = k == 0 ? 0 : k == n - 1 ? id_count : std::min(id_count, at + in.byte() % 4);
      at = v;
      std::memcpy(p + k * 8, &v, 8);
    }
    const std::uint8_t twist = in.byte();
    if (twist >= 224) {
      const std::int64_t v = kWildExtents[twist % kWildExtents.size()];
      std::memcpy(p + (twist % n) * 8, &v, 8);
    }
    return;
  }
  for (std::int64_t k = 0; k < n; ++k) {
    const std::uint8_t b = in.byte();
    if ((role == Role::ids || role == Role::offsets) && (int64 || int32)) {
      static constexpr std::array<std::int64_t, 6> kWildIds = {std::numeric_limits<std::int64_t>::min(),
                                                               std::numeric_limits<std::int64_t>::max(),
                                                               std::numeric_limits<std::int32_t>::min(),
                                                               std::numeric_limits<std::int32_t>::max(),
                                                               (std::int64_t{1} << 32) + 1,
                                                               -2};
      const std::int64_t id = b < 224 ? b % (rows + 2) - 1 : kWildIds[b % kWildIds.size()];
      if (int64) {
        std::memcpy(p + k * 8, &id, 8);
      } else {
        const auto id32 = static_cast<std::int32_t>(id);
        std::memcpy(p + k * 4, &id32, 4);
      }
    } else if (role == Role::floats && float32) {
      static constexpr std::array<float, 6> kWildFloats = {std::numeric_limits<float>::quiet_NaN(),
                                                           std::numeric_limits<float>::infinity(),
                                                           -std::numeric_limits<float>::infinity(),
                                                           3e38f,
                                                           -0.0f,
                                                           1e-45f};
      const float v = b < 240 ? (static_cast<float>(b) - 120.0f) / 16.0f : kWildFloats[b % kWildFloats.size()];
      std::memcpy(p + k * 4, &v, 4);
    } else {
      std::memset(p + k * static_cast<std::int64_t>(element_bytes(dtype)), b, element_bytes(dtype));
    }
  }
}

// Decodes one tensor argument. `expected` is the shape the call needs (used unless the input asks
// for another); `rows` and `id_count` shape the contents.
FuzzTensor decode(Reader& in, Role role, const std::vector<std::int64_t>& expected, std::int64_t rows,
                  std::int64_t id_count) {
  FuzzTensor t;
  const std::uint8_t how = in.byte();
  t.passed = how % 32 != 31;
  const std::uint8_t dtype_pick = in.byte();
  t.tensor.dtype = dtype_pick < 224 ? natural_dtype(role, dtype_pick) : kOtherDtypes[dtype_pick % kOtherDtypes.size()];
  t.tensor.device = {kDLCPU, 0};

  // Shape: the expected one, a small one, or a wild one.
  const int shape_mode = (how >> 5) % 4;
  int ndim = static_cast<int>(expected.size());
  if (shape_mode == 0 || shape_mode == 1) {
    t.shape = expected;
  } else if (shape_mode == 2) {
    ndim = in.byte() % 5;
    for (int k = 0; k < ndim; ++k) t.shape.push_back(in.byte() % 9);
  } else {
    static constexpr std::array<int, 9> kWildRanks = {-1, 0, 1, 2, 3, 32, 33, 34, std::numeric_limits<int>::max()};
    ndim = kWildRanks[in.byte() % kWildRanks.size()];
    // The library must refuse a rank outside [0, 33] before it reads the shape; allocate what it may read.
    const int readable = std::clamp(ndim, 0, 33);
    for (int k = 0; k < readable; ++k) {
      const std::uint8_t b = in.byte();
      t.shape.push_back(b < 160 ? b % 4 : kWildExtents[b % kWildExtents.size()]);
    }
  }
  t.tensor.ndim = ndim;
  t.tensor.shape = t.shape.empty() ? nullptr : t.shape.data();
  const std::uint8_t extras = in.byte();
  if (extras % 16 == 1 && ndim > 0) t.tensor.shape = nullptr;

  // Element count and bytes, -1 when the description cannot be allocated as it stands.
  const std::size_t elem = element_bytes(t.tensor.dtype);
  bool valid = ndim >= 0 && ndim <= 33;
  std::int64_t count = 1;
  for (int k = 0; valid && k < ndim; ++k) {
    if (t.shape[k] < 0 || __builtin_mul_overflow(count, t.shape[k], &count)) valid = false;
  }
  for (int k = 0; k < ndim && k < static_cast<int>(t.shape.size()); ++k) {
    if (t.shape[k] == 0 && valid) count = 0;
  }
  std::size_t bytes = 0;
  valid = valid && !__builtin_mul_overflow(static_cast<std::size_t>(count), elem, &bytes);
  t.count = valid ? count : -1;

  // Strides: compact, or drawn.
  if ((extras >> 4) % 4 == 1 && ndim > 0 && ndim <= 33) {
    for (int k = 0; k < ndim; ++k) t.strides.push_back(static_cast<std::int8_t>(in.byte()));
    t.tensor.strides = t.strides.data();
  }
  // byte_offset: 0, small (perhaps misaligned), or wrapping the address around.
  std::uint64_t offset = 0;
  if ((extras >> 6) == 1) offset = in.byte() % 16;
  if ((extras >> 6) == 2) offset = static_cast<std::uint64_t>(0) - elem;
  // Device: host mostly; pinned and managed memory are host memory; CUDA and others must be refused.
  const std::uint8_t device = in.byte();
  if (device >= 240) {
    static constexpr std::array<int, 5> kDevices = {kDLCUDA, kDLCUDAHost, kDLCUDAManaged, kDLOpenCL, 1000};
    // Stored as the int a C caller stores: 1000 is no DLDeviceType enumerator, so no C++ cast makes it.
    const std::int32_t type = kDevices[device % kDevices.size()];
    static_assert(sizeof type == sizeof t.tensor.device.device_type);
    std::memcpy(&t.tensor.device.device_type, &type, sizeof type);
  }

  if (!valid) {
    // An invalid description must be refused before any read: a small heap block lets ASan see one.
    t.memory.resize(16);
    t.tensor.data = t.memory.data();
  } else if (offset < kMaxTensorBytes && bytes <= kMaxTensorBytes - offset) {
    t.memory.resize(offset + bytes);
    t.tensor.byte_offset = offset;
    t.tensor.data = t.memory.empty() ? nullptr : t.memory.data();
    fill(t, role, in, rows, id_count);
  } else if (offset > kMaxTensorBytes) {
    t.memory.resize(16);
    t.tensor.data = t.memory.data();
    t.tensor.byte_offset = offset;  // wraps: must be refused
  } else {
    t.tensor.data = nullptr;  // more than this harness allocates: must be refused as NULL data
  }
  if (extras % 16 == 2) t.tensor.data = nullptr;
  return t;
}

// The table's weights and (when `with_info`) its info: what a failed call must leave alone.
struct TableState {
  std::vector<float> weights;
  std::string info;
  bool operator==(const TableState&) const = default;
};

TableState state_of(ek_table* table, const TableSpec& spec, bool with_info) {
  TableState state;
  state.weights.resize(static_cast<std::size_t>(spec.rows * spec.dim));
  std::int64_t shape[2] = {spec.rows, spec.dim};
  DLTensor out{};
  out.data = state.weights.data();
  out.device = {kDLCPU, 0};
  out.ndim = 2;
  out.dtype = {kDLFloat, 32, 1};
  out.shape = shape;
  require(ek_get_weights(table, &out) == EK_OK, "get_weights of a valid tensor failed");
  if (!with_info) return state;
  std::size_t length = 0;
  (void)ek_table_info(table, nullptr, 0, &length);
  state.info.resize(length);
  require(ek_table_info(table, state.info.data(), length, &length) == EK_OK, "table_info failed");
  return state;
}

// The id at flat position k of a successful call's ids (int32 or int64, compact).
std::int64_t id_at(FuzzTensor& ids, std::int64_t k) {
  if (ids.tensor.dtype.bits == 32) {
    std::int32_t v;
    std::memcpy(&v, ids.base() + k * 4, 4);
    return v;
  }
  std::int64_t v;
  std::memcpy(&v, ids.base() + k * 8, 8);
  return v;
}

const char* pooling_mode(std::uint8_t pick) {
  static constexpr std::array<const char*, 7> kModes = {"sum", "mean", "max", "sqrtn", "avg", "", nullptr};
  return kModes[pick % kModes.size()];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool quiet = (embedkit::set_log_level("off"), true);
  (void)quiet;
  Reader in(data, size);
  const TableSpec& spec = kTables[in.byte() % kTables.size()];
  auto entry = static_cast<Entry>(in.byte() % kEntryCount);
  ek_table* table = nullptr;
  require(ek_table_create(spec.config, &table) == EK_OK, "a fixed config failed");

  // Ids first: their shape decides the expected shapes of the rest.
  const bool pooled = entry == Entry::lookup_pooled || entry == Entry::train_step_pooled;
  const bool takes_ids = entry != Entry::get_weights && entry != Entry::set_weights;
  const std::int64_t id_rank = pooled ? 1 : in.byte() % 4;
  std::vector<std::int64_t> id_shape;
  for (std::int64_t k = 0; k < id_rank; ++k) id_shape.push_back(in.byte() % 6);
  FuzzTensor ids, offsets, weights, out, grad;
  std::int64_t id_count = 0;
  if (takes_ids) {
    ids = decode(in, Role::ids, id_shape, spec.rows, 0);
    id_count = std::max<std::int64_t>(ids.count, 0);
  }
  const char* mode = pooled ? pooling_mode(in.byte()) : nullptr;
  const std::int64_t bags = in.byte() % 5;
  bool has_sample_weights = false;
  if (pooled) {
    offsets = decode(in, Role::offsets, {bags + 1}, spec.rows, id_count);
    has_sample_weights = in.byte() % 2 == 1;
    if (has_sample_weights) weights = decode(in, Role::floats, ids.shape, spec.rows, id_count);
  }
  std::vector<std::int64_t> row_shape = ids.shape;
  row_shape.push_back(spec.dim);
  switch (entry) {
    case Entry::lookup: out = decode(in, Role::float_output, row_shape, spec.rows, id_count); break;
    case Entry::lookup_pooled: out = decode(in, Role::float_output, {bags, spec.dim}, spec.rows, id_count); break;
    case Entry::compute_mask: out = decode(in, Role::mask_output, ids.shape, spec.rows, id_count); break;
    case Entry::train_step: grad = decode(in, Role::floats, row_shape, spec.rows, id_count); break;
    case Entry::train_step_pooled: grad = decode(in, Role::floats, {bags, spec.dim}, spec.rows, id_count); break;
    case Entry::get_weights: out = decode(in, Role::float_output, {spec.rows, spec.dim}, spec.rows, 0); break;
    case Entry::set_weights: weights = decode(in, Role::floats, {spec.rows, spec.dim}, spec.rows, 0); break;
    case Entry::lookup_new:
    case Entry::lookup_pooled_new: break;
  }
  // The library-allocated variants of the lookups, chosen by one more byte: inputs found before
  // they existed end before it (it reads as 0), so they still replay the entry they were found for.
  if ((entry == Entry::lookup || entry == Entry::lookup_pooled) && in.byte() % 2 == 1) {
    entry = entry == Entry::lookup ? Entry::lookup_new : Entry::lookup_pooled_new;
  }
  const DLTensor* sample_weights = has_sample_weights ? weights.pointer() : nullptr;

  // The info (step count, out-of-range counter) can move only in a train step or a zero_fill lookup;
  // it costs half of each run to build, so the other calls compare the weights alone.
  const bool looks_up = entry == Entry::lookup || entry == Entry::lookup_pooled || entry == Entry::lookup_new ||
                        entry == Entry::lookup_pooled_new;
  const bool counts = entry == Entry::train_step || entry == Entry::train_step_pooled || (spec.zero_fill && looks_up);
  DLManagedTensor unwritten{};
  DLManagedTensor* handed_out = &unwritten;  // a failed call must leave it as it is
  const TableState before = state_of(table, spec, counts);
  const std::vector<unsigned char> out_before = out.memory;
  ek_status status = EK_OK;
  switch (entry) {
    case Entry::lookup: status = ek_lookup(table, ids.pointer(), out.passed ? &out.tensor : nullptr); break;
    case Entry::lookup_pooled:
      status = ek_lookup_pooled(table, ids.pointer(), offsets.pointer(), sample_weights, mode,
                                out.passed ? &out.tensor : nullptr);
      break;
    case Entry::compute_mask: status = ek_compute_mask(table, ids.pointer(), out.passed ? &out.tensor : nullptr); break;
    case Entry::train_step: status = ek_train_step(table, ids.pointer(), grad.pointer()); break;
    case Entry::train_step_pooled:
      status = ek_train_step_pooled(table, ids.pointer(), offsets.pointer(), sample_weights, mode, grad.pointer());
      break;
    case Entry::get_weights: status = ek_get_weights(table, out.passed ? &out.tensor : nullptr); break;
    case Entry::set_weights: status = ek_set_weights(table, weights.pointer()); break;
    case Entry::lookup_new: status = ek_lookup_new(table, ids.pointer(), &handed_out); break;
    case Entry::lookup_pooled_new:
      status = ek_lookup_pooled_new(table, ids.pointer(), offsets.pointer(), sample_weights, mode, &handed_out);
      break;
  }
  embedkit::fuzz::trace("table %d, entry %d: %s %s", static_cast<int>(&spec - kTables.data()), static_cast<int>(entry),
                        ek_status_name(status), status == EK_OK ? "" : ek_last_error());
  require(status != EK_INTERNAL, "a bad input was reported as EK_INTERNAL");
  const TableState after = state_of(table, spec, counts);

  const bool new_output = entry == Entry::lookup_new || entry == Entry::lookup_pooled_new;
  if (status != EK_OK) {
    require(after == before, "a failed call changed the table");
    require(out.memory == out_before, "a failed call wrote to its output");
    require(handed_out == &unwritten, "a failed call handed out a tensor");
  } else if (new_output) {
    require(handed_out != &unwritten && handed_out != nullptr, "a successful call handed out no tensor");
    const DLTensor& got = handed_out->dl_tensor;
    require(got.dtype.code == kDLFloat && got.dtype.bits == 32 && got.device.device_type == kDLCPU &&
                got.strides == nullptr,
            "the handed-out tensor is not compact float32 host memory");
    std::vector<std::int64_t> want = row_shape;  // a row per id, or per bag
    if (entry == Entry::lookup_pooled_new) want = {offsets.shape.empty() ? 0 : offsets.shape[0] - 1, spec.dim};
    require(std::vector<std::int64_t>(got.shape, got.shape + got.ndim) == want,
            "the handed-out tensor's shape is not the lookup's");
  }
  if (status == EK_OK && (entry == Entry::lookup || entry == Entry::lookup_new)) {
    // Each id's row, or zeros for padding_idx and (under zero_fill) ids out of range.
    for (std::int64_t k = 0; k < id_count; ++k) {
      const auto* rows = static_cast<const float*>(entry == Entry::lookup_new ? handed_out->dl_tensor.data
                                                                              : static_cast<const void*>(out.base()));
      const std::int64_t id = id_at(ids, k);
      const bool real = id >= 0 && id < spec.rows && id != spec.padding_idx;
      require(real || spec.zero_fill || id == spec.padding_idx, "an out-of-range id was looked up under 'error'");
      for (std::int64_t c = 0; c < spec.dim; ++c) {
        float got;
        std::memcpy(&got, rows + k * spec.dim + c, sizeof got);
        const float want = real ? before.weights[static_cast<std::size_t>(id * spec.dim + c)] : 0.0f;
        require(std::memcmp(&got, &want, sizeof got) == 0, "lookup returned another value than the row");
      }
    }
  } else if (status == EK_OK && entry == Entry::compute_mask) {
    for (std::int64_t k = 0; k < id_count; ++k) {
      const std::uint8_t want = spec.mask_zero ? id_at(ids, k) != 0 : 1;
      require(out.base()[k] == want, "compute_mask returned another mask than ids != 0");
    }
  } else if (status == EK_OK && entry == Entry::get_weights) {
    require(std::memcmp(out.base(), before.weights.data(), before.weights.size() * sizeof(float)) == 0,
            "get_weights returned another matrix than the table's");
  } else if (status == EK_OK && entry == Entry::set_weights) {
    require(std::memcmp(weights.base(), after.weights.data(), after.weights.size() * sizeof(float)) == 0,
            "set_weights stored another matrix than its input");
  }
  if (status == EK_OK && new_output) handed_out->deleter(handed_out);
  ek_table_destroy(table);
  return 0;
}
