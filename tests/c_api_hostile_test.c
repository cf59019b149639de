#define _DEFAULT_SOURCE /* mkdtemp */
/* Hostile and malformed input through the C ABI, as a C caller passes it.
 *
 * Every entry point that takes tensors gets every way a DLTensor description can be wrong, in each
 * of its tensors; then the semantic errors (offsets, modes, ids, shapes); then configs that are
 * truncated, malformed, nested 100000 deep, out of range, of the wrong type or too large for
 * memory; then checkpoints whose manifest or data files are damaged or lie.
 *
 * Each failing call must return its own status with a message naming the argument (never
 * EK_INTERNAL), and leave everything as it was: the table's weights and its info (step count,
 * counters) are compared bitwise after every call, outputs keep their sentinel, *out pointers stay
 * untouched, and at the end a twin table that never saw a bad call trains one step beside the
 * battered one: equal weights afterwards show that no optimizer state moved either.
 *
 * Prints `N passed, M failed` and exits 1 when any check failed. */
#include "c_api_check.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

enum { kRows = 8, kDim = 4, kIds = 6, kBags = 3 };
static const char kTableConfig[] =
    "{\"name\": \"hostile\", \"input_dim\": 8, \"output_dim\": 4, \"seed\": 5, \"optimizer\": \"adagrad\", "
    "\"mask_zero\": true}";

/* ---------------------------------------------------------------------------------------------
 * What a failed call must leave unchanged
 * ------------------------------------------------------------------------------------------- */

typedef struct {
  float weights[kRows * kDim];
  char info[8192];
} Snapshot;

static void take_snapshot(ek_table* table, Snapshot* snapshot) {
  memset(snapshot, 0, sizeof *snapshot);
  int64_t shape[2] = {kRows, kDim};
  DLTensor weights = f32(snapshot->weights, 2, shape);
  size_t length = 0;
  if (ek_get_weights(table, &weights) != EK_OK ||
      ek_table_info(table, snapshot->info, sizeof snapshot->info, &length) != EK_OK) {
    ++g_failed;
    fprintf(stderr, "could not take a snapshot of the table: %s\n", ek_last_error());
  }
}

static int same_snapshot(const Snapshot* a, const Snapshot* b) {
  return memcmp(a->weights, b->weights, sizeof a->weights) == 0 && strcmp(a->info, b->info) == 0;
}

/* ---------------------------------------------------------------------------------------------
 * The tensor entry points and their arguments
 * ------------------------------------------------------------------------------------------- */

typedef enum { ARG_INDICES, ARG_OFFSETS, ARG_SAMPLE_WEIGHTS, ARG_OUT, ARG_GRAD, ARG_MASK, ARG_WEIGHTS, kArgCount } Arg;
static const char* const kArgNames[kArgCount] = {"indices", "offsets", "per_sample_weights", "out", "grad_out",
                                                 "mask",    "weights"};

typedef enum {
  LOOKUP,
  LOOKUP_POOLED,
  COMPUTE_MASK,
  TRAIN_STEP,
  TRAIN_STEP_POOLED,
  GET_WEIGHTS,
  SET_WEIGHTS,
  kEntryCount
} Entry;
static const char* const kEntryNames[kEntryCount] = {"ek_lookup",     "ek_lookup_pooled",     "ek_compute_mask",
                                                     "ek_train_step", "ek_train_step_pooled", "ek_get_weights",
                                                     "ek_set_weights"};
/* The tensors each entry point takes; -1 ends the list. */
static const int kEntryArgs[kEntryCount][5] = {
    {ARG_INDICES, ARG_OUT, -1},
    {ARG_INDICES, ARG_OFFSETS, ARG_SAMPLE_WEIGHTS, ARG_OUT, -1},
    {ARG_INDICES, ARG_MASK, -1},
    {ARG_INDICES, ARG_GRAD, -1},
    {ARG_INDICES, ARG_OFFSETS, ARG_SAMPLE_WEIGHTS, ARG_GRAD, -1},
    {ARG_OUT, -1},
    {ARG_WEIGHTS, -1},
};

/* The buffers behind every call. Outputs are refilled with a sentinel before each call. */
static int64_t g_ids[kIds];
static int64_t g_offsets[kBags + 1];
static float g_sample_weights[kIds];
static float g_grad[kIds * kDim];
static float g_out[kRows * kDim];
static uint8_t g_mask[kIds];
static float g_matrix[kRows * kDim];
static const float kSentinel = -7.5f;

/* One call: its tensors (valid until a test changes one), the pointers passed, and the pooling mode. */
typedef struct {
  Entry entry;
  DLTensor tensor[kArgCount];
  const DLTensor* pass[kArgCount];
  int64_t shape[kArgCount][3];
  int64_t strides[kArgCount][3];
  const char* mode;
} Call;

static void reset_buffers(void) {
  static const int64_t ids[kIds] = {1, 2, 3, 0, 7, 5};
  static const int64_t offsets[kBags + 1] = {0, 2, 2, 6};
  memcpy(g_ids, ids, sizeof ids);
  memcpy(g_offsets, offsets, sizeof offsets);
  for (int i = 0; i < kIds; ++i) g_sample_weights[i] = 0.5f * (float)(i + 1);
  for (int i = 0; i < kIds * kDim; ++i) g_grad[i] = 0.25f * (float)(i % 7) - 0.5f;
  for (int i = 0; i < kRows * kDim; ++i) g_matrix[i] = (float)i;
  fill_floats(g_out, kRows * kDim, kSentinel);
  memset(g_mask, 0xAA, sizeof g_mask);
}

static void set_shape(Call* call, Arg arg, int ndim, int64_t d0, int64_t d1) {
  call->shape[arg][0] = d0;
  call->shape[arg][1] = d1;
  call->tensor[arg].ndim = ndim;
  call->tensor[arg].shape = call->shape[arg];
}

/* Makes `call` a call of `entry` that succeeds (its tensors point into it, so it is filled in
 * place). Pooled calls pass no per_sample_weights unless a test adds them. */
static void make_valid_call(Call* c, Entry entry) {
  memset(c, 0, sizeof *c);
  c->entry = entry;
  c->mode = "sum";
  reset_buffers();
  c->tensor[ARG_INDICES] = i64(g_ids, 1, NULL);
  set_shape(c, ARG_INDICES, 1, kIds, 0);
  c->tensor[ARG_OFFSETS] = i64(g_offsets, 1, NULL);
  set_shape(c, ARG_OFFSETS, 1, kBags + 1, 0);
  c->tensor[ARG_SAMPLE_WEIGHTS] = f32(g_sample_weights, 1, NULL);
  set_shape(c, ARG_SAMPLE_WEIGHTS, 1, kIds, 0);
  const int pooled = entry == LOOKUP_POOLED || entry == TRAIN_STEP_POOLED;
  c->tensor[ARG_OUT] = f32(g_out, 2, NULL);
  set_shape(c, ARG_OUT, 2, entry == GET_WEIGHTS ? kRows : pooled ? kBags : kIds, kDim);
  c->tensor[ARG_GRAD] = f32(g_grad, 2, NULL);
  set_shape(c, ARG_GRAD, 2, pooled ? kBags : kIds, kDim);
  c->tensor[ARG_MASK] = u8(g_mask, 1, NULL);
  set_shape(c, ARG_MASK, 1, kIds, 0);
  c->tensor[ARG_WEIGHTS] = f32(g_matrix, 2, NULL);
  set_shape(c, ARG_WEIGHTS, 2, kRows, kDim);
  for (int a = 0; a < kArgCount; ++a) c->pass[a] = &c->tensor[a];
  c->pass[ARG_SAMPLE_WEIGHTS] = NULL;
}

static ek_status invoke(ek_table* table, const Call* c) {
  const DLTensor* const* p = c->pass;
  switch (c->entry) {
    case LOOKUP: return ek_lookup(table, p[ARG_INDICES], (DLTensor*)p[ARG_OUT]);
    case LOOKUP_POOLED:
      return ek_lookup_pooled(table, p[ARG_INDICES], p[ARG_OFFSETS], p[ARG_SAMPLE_WEIGHTS], c->mode,
                              (DLTensor*)p[ARG_OUT]);
    case COMPUTE_MASK: return ek_compute_mask(table, p[ARG_INDICES], (DLTensor*)p[ARG_MASK]);
    case TRAIN_STEP: return ek_train_step(table, p[ARG_INDICES], p[ARG_GRAD]);
    case TRAIN_STEP_POOLED:
      return ek_train_step_pooled(table, p[ARG_INDICES], p[ARG_OFFSETS], p[ARG_SAMPLE_WEIGHTS], c->mode, p[ARG_GRAD]);
    case GET_WEIGHTS: return ek_get_weights(table, (DLTensor*)p[ARG_OUT]);
    case SET_WEIGHTS: return ek_set_weights(table, p[ARG_WEIGHTS]);
    case kEntryCount: break;
  }
  return EK_INTERNAL;
}

/* Runs `call`, which must fail with `status` and a message containing `needle`, and change nothing:
 * not the table, not an output. `what` names the case in a failure report. */
static void expect_call_fails(ek_table* table, const Call* call, ek_status status, const char* needle,
                              const char* what) {
  Snapshot before, after;
  take_snapshot(table, &before);
  prime_last_error(needle);
  const ek_status got = invoke(table, call);
  char label[512];
  snprintf(label, sizeof label, "%s: %s", kEntryNames[call->entry], what);
  check_failure(__FILE__, __LINE__, label, got, status, needle);
  take_snapshot(table, &after);
  if (!same_snapshot(&before, &after)) {
    ++g_failed;
    fprintf(stderr, "%s: the failed call changed the table\n", label);
  }
  if (!all_floats_equal(g_out, kRows * kDim, kSentinel) || !bytes_all(g_mask, kIds, 0xAA)) {
    ++g_failed;
    fprintf(stderr, "%s: the failed call wrote to an output\n", label);
  }
}

/* ---------------------------------------------------------------------------------------------
 * Every way a tensor description can be wrong, in every tensor of every entry point
 * ------------------------------------------------------------------------------------------- */

static size_t element_bytes(Arg arg) {
  switch (arg) {
    case ARG_INDICES:
    case ARG_OFFSETS: return 8;
    case ARG_MASK: return 1;
    default: return 4;
  }
}

static const char* accepted_types(Arg arg) {
  switch (arg) {
    case ARG_INDICES: return "int32 or int64";
    case ARG_OFFSETS: return "int64";
    case ARG_MASK: return "uint8 or bool";
    default: return "float32";
  }
}

static int accepts(Arg arg, uint8_t code, uint8_t bits, uint16_t lanes) {
  if (lanes != 1) return 0;
  switch (arg) {
    case ARG_INDICES: return code == kDLInt && (bits == 32 || bits == 64);
    case ARG_OFFSETS: return code == kDLInt && bits == 64;
    case ARG_MASK: return (code == kDLUInt || code == kBoolCode) && bits == 8;
    default: return code == kDLFloat && bits == 32;
  }
}

enum {
  M_NULL_TENSOR,
  M_NDIM_NEGATIVE,
  M_NDIM_ABOVE_LIMIT,
  M_NDIM_INT_MAX,
  M_NDIM_INT_MIN,
  M_NULL_SHAPE,
  M_NEGATIVE_DIM,
  M_INT64_MIN_DIM,
  M_ELEMENTS_OVERFLOW_INT64,
  M_BYTES_OVERFLOW_SIZE_T,
  M_NULL_DATA,
  M_STRIDES_NOT_COMPACT,
  M_STRIDES_NEGATIVE,
  M_MISALIGNED_OFFSET,
  M_WRAPPING_OFFSET,
  M_CUDA_MEMORY,
  M_OPENCL_DEVICE,
  M_UNKNOWN_DEVICE,
  kMutationCount
};

/* Applies mutation `m` to argument `arg` of `call` and says what must happen; 0 when it does not
 * apply to that argument. */
static int mutate(Call* call, Arg arg, int m, ek_status* status, char* needle, size_t size, char* what,
                  size_t what_size) {
  DLTensor* t = &call->tensor[arg];
  const char* name = kArgNames[arg];
  const size_t bytes = element_bytes(arg);
  call->pass[arg] = t; /* per_sample_weights join the call when they are the argument under test */
  *status = EK_INVALID_ARGUMENT;
  switch (m) {
    case M_NULL_TENSOR:
      if (arg == ARG_SAMPLE_WEIGHTS) return 0; /* NULL means "no weights" */
      call->pass[arg] = NULL;
      snprintf(needle, size, "%s is NULL", name);
      snprintf(what, what_size, "%s NULL", name);
      return 1;
    case M_NDIM_NEGATIVE:
    case M_NDIM_ABOVE_LIMIT:
    case M_NDIM_INT_MAX:
    case M_NDIM_INT_MIN: {
      const int32_t ndim = m == M_NDIM_NEGATIVE      ? -1
                           : m == M_NDIM_ABOVE_LIMIT ? 34
                           : m == M_NDIM_INT_MAX     ? INT32_MAX
                                                     : INT32_MIN;
      t->ndim = ndim;
      snprintf(needle, size, "%s has ndim %d, expected 0 to 33", name, (int)ndim);
      snprintf(what, what_size, "%s ndim %d", name, (int)ndim);
      return 1;
    }
    case M_NULL_SHAPE:
      t->shape = NULL;
      snprintf(needle, size, "%s has ndim %d but a NULL shape", name, (int)t->ndim);
      snprintf(what, what_size, "%s NULL shape", name);
      return 1;
    case M_NEGATIVE_DIM:
      call->shape[arg][0] = -1;
      snprintf(needle, size, "%s has a negative dimension: shape[0] = -1", name);
      snprintf(what, what_size, "%s negative dimension", name);
      return 1;
    case M_INT64_MIN_DIM:
      call->shape[arg][t->ndim - 1] = INT64_MIN;
      snprintf(needle, size, "%s has a negative dimension: shape[%d] = -9223372036854775808", name, (int)t->ndim - 1);
      snprintf(what, what_size, "%s dimension INT64_MIN", name);
      return 1;
    case M_ELEMENTS_OVERFLOW_INT64:
      call->shape[arg][0] = call->shape[arg][1] = call->shape[arg][2] = INT64_C(4294967296);
      t->ndim = 3;
      snprintf(needle, size, "%s shape (4294967296, 4294967296, 4294967296) has more elements than memory can address",
               name);
      snprintf(what, what_size, "%s element count overflows int64", name);
      return 1;
    case M_BYTES_OVERFLOW_SIZE_T:
      /* 2^62 elements fit int64; their bytes do not fit size_t once an element is 4 bytes or more. */
      if (bytes < 4) return 0;
      call->shape[arg][0] = INT64_C(4611686018427387904);
      t->ndim = 1;
      snprintf(needle, size, "%s shape (4611686018427387904,) has more elements than memory can address", name);
      snprintf(what, what_size, "%s byte count overflows size_t", name);
      return 1;
    case M_NULL_DATA:
      t->data = NULL;
      snprintf(needle, size, "%s data is NULL for a non-empty shape", name);
      snprintf(what, what_size, "%s NULL data", name);
      return 1;
    case M_STRIDES_NOT_COMPACT:
    case M_STRIDES_NEGATIVE: {
      int64_t compact = 1;
      for (int axis = t->ndim - 1; axis >= 0; --axis) {
        call->strides[arg][axis] = compact;
        compact *= call->shape[arg][axis];
      }
      call->strides[arg][t->ndim - 1] = m == M_STRIDES_NOT_COMPACT ? 2 : -1;
      t->strides = call->strides[arg];
      snprintf(needle, size, "%s has strides", name);
      snprintf(what, what_size, "%s strides %s", name, m == M_STRIDES_NOT_COMPACT ? "not compact" : "negative");
      return 1;
    }
    case M_MISALIGNED_OFFSET:
      if (bytes == 1) return 0; /* every byte is aligned for a byte */
      t->byte_offset = 1;
      snprintf(needle, size, "%s data + byte_offset 1 is not aligned to its %d-byte elements", name, (int)bytes);
      snprintf(what, what_size, "%s misaligned byte_offset", name);
      return 1;
    case M_WRAPPING_OFFSET:
      /* Aligned, but data + byte_offset wraps around to just before data. */
      t->byte_offset = (uint64_t)0 - (uint64_t)bytes;
      snprintf(needle, size, "%s data + byte_offset %llu + its", name, (unsigned long long)t->byte_offset);
      snprintf(what, what_size, "%s byte_offset wrapping the address", name);
      return 1;
    case M_CUDA_MEMORY:
      t->device.device_type = kDLCUDA;
      *status = EK_UNSUPPORTED;
      snprintf(needle, size, "%s is in CUDA memory (cuda:0), but", name);
      snprintf(what, what_size, "%s in CUDA memory without a device", name);
      return 1;
    case M_OPENCL_DEVICE:
      t->device.device_type = kDLOpenCL;
      *status = EK_UNSUPPORTED;
      snprintf(needle, size, "%s is on DLPack device type 4, which embedkit does not support", name);
      snprintf(what, what_size, "%s on OpenCL", name);
      return 1;
    case M_UNKNOWN_DEVICE:
      t->device.device_type = (DLDeviceType)1000;
      *status = EK_UNSUPPORTED;
      snprintf(needle, size, "%s is on DLPack device type 1000", name);
      snprintf(what, what_size, "%s on device type 1000", name);
      return 1;
  }
  return 0;
}

static const struct {
  uint8_t code;
  uint8_t bits;
  uint16_t lanes;
  const char* name;
} kDTypes[] = {
    {kDLInt, 8, 1, "int8"},
    {kDLInt, 16, 1, "int16"},
    {kDLInt, 32, 1, "int32"},
    {kDLInt, 64, 1, "int64"},
    {kDLInt, 0, 1, "int0"},
    {kDLUInt, 8, 1, "uint8"},
    {kDLUInt, 16, 1, "uint16"},
    {kDLUInt, 32, 1, "uint32"},
    {kDLUInt, 64, 1, "uint64"},
    {kDLFloat, 16, 1, "float16"},
    {kDLFloat, 32, 1, "float32"},
    {kDLFloat, 64, 1, "float64"},
    {kDLBfloat, 16, 1, "bfloat16"},
    {kBoolCode, 8, 1, "bool"},
    {kBoolCode, 1, 1, "bool"},
    {kDLComplex, 64, 1, "complex64"},
    {kDLOpaqueHandle, 64, 1, "opaque handle"},
    {kDLInt, 32, 4, "int32x4"},
    {kDLInt, 64, 2, "int64x2"},
    {kDLFloat, 32, 4, "float32x4"},
    {kDLFloat, 32, 0, "float32x0"},
    {kDLUInt, 8, 16, "uint8x16"},
    {200, 32, 1, "type code 200 of 32 bits"},
};

static void test_every_bad_tensor_description(ek_table* table) {
  char needle[256], what[256];
  for (int e = 0; e < kEntryCount; ++e) {
    for (int k = 0; kEntryArgs[e][k] >= 0; ++k) {
      const Arg arg = (Arg)kEntryArgs[e][k];
      for (int m = 0; m < kMutationCount; ++m) {
        Call call;
        make_valid_call(&call, (Entry)e);
        ek_status status;
        if (!mutate(&call, arg, m, &status, needle, sizeof needle, what, sizeof what)) continue;
        expect_call_fails(table, &call, status, needle, what);
      }
      for (size_t d = 0; d < sizeof kDTypes / sizeof kDTypes[0]; ++d) {
        if (accepts(arg, kDTypes[d].code, kDTypes[d].bits, kDTypes[d].lanes)) continue;
        Call call;
        make_valid_call(&call, (Entry)e);
        call.pass[arg] = &call.tensor[arg];
        call.tensor[arg].dtype.code = kDTypes[d].code;
        call.tensor[arg].dtype.bits = kDTypes[d].bits;
        call.tensor[arg].dtype.lanes = kDTypes[d].lanes;
        snprintf(needle, sizeof needle, "%s must be %s, got %s", kArgNames[arg], accepted_types(arg), kDTypes[d].name);
        snprintf(what, sizeof what, "%s of dtype %s", kArgNames[arg], kDTypes[d].name);
        expect_call_fails(table, &call, EK_DTYPE_MISMATCH, needle, what);
      }
    }
  }
}

/* Shapes that are well formed but not the ones the call needs. */
static void test_wrong_shapes(ek_table* table) {
  static const struct {
    Entry entry;
    Arg arg;
    int ndim;
    int64_t shape[3];
    const char* needle;
  } kCases[] = {
      {LOOKUP, ARG_OUT, 2, {6, 5, 0}, "out shape must be (6, 4), got (6, 5)"},
      {LOOKUP, ARG_OUT, 1, {24, 0, 0}, "out shape must be (6, 4), got (24,)"},
      {LOOKUP, ARG_OUT, 3, {6, 4, 1}, "out shape must be (6, 4), got (6, 4, 1)"},
      {LOOKUP, ARG_OUT, 0, {0, 0, 0}, "out shape must be (6, 4), got ()"},
      {LOOKUP, ARG_INDICES, 2, {2, 3, 0}, "out shape must be (2, 3, 4), got (6, 4)"},
      {LOOKUP_POOLED, ARG_INDICES, 2, {2, 3, 0}, "pooled lookup indices must be 1-D, got shape (2, 3)"},
      {LOOKUP_POOLED, ARG_INDICES, 0, {0, 0, 0}, "pooled lookup indices must be 1-D, got shape ()"},
      {LOOKUP_POOLED, ARG_OFFSETS, 2, {2, 2, 0}, "offsets must be 1-D, got shape (2, 2)"},
      {LOOKUP_POOLED, ARG_OFFSETS, 0, {0, 0, 0}, "offsets must be 1-D, got shape ()"},
      {LOOKUP_POOLED, ARG_SAMPLE_WEIGHTS, 1, {5, 0, 0}, "per_sample_weights shape must be (6,), got (5,)"},
      {LOOKUP_POOLED, ARG_SAMPLE_WEIGHTS, 2, {6, 1, 0}, "per_sample_weights shape must be (6,), got (6, 1)"},
      {LOOKUP_POOLED, ARG_OUT, 2, {4, 4, 0}, "out shape must be (3, 4), got (4, 4)"},
      {LOOKUP_POOLED, ARG_OUT, 2, {3, 3, 0}, "out shape must be (3, 4), got (3, 3)"},
      {COMPUTE_MASK, ARG_MASK, 1, {5, 0, 0}, "mask shape must be (6,), got (5,)"},
      {COMPUTE_MASK, ARG_INDICES, 2, {2, 3, 0}, "mask shape must be (2, 3), got (6,)"},
      {TRAIN_STEP, ARG_GRAD, 2, {6, 3, 0}, "grad_out shape must be (6, 4), got (6, 3)"},
      {TRAIN_STEP, ARG_GRAD, 1, {24, 0, 0}, "grad_out shape must be (6, 4), got (24,)"},
      {TRAIN_STEP, ARG_INDICES, 1, {5, 0, 0}, "grad_out shape must be (5, 4), got (6, 4)"},
      {TRAIN_STEP_POOLED, ARG_GRAD, 2, {2, 4, 0}, "grad_out shape must be (3, 4), got (2, 4)"},
      {TRAIN_STEP_POOLED, ARG_SAMPLE_WEIGHTS, 1, {7, 0, 0}, "per_sample_weights shape must be (6,), got (7,)"},
      {TRAIN_STEP_POOLED, ARG_INDICES, 2, {2, 3, 0}, "pooled lookup indices must be 1-D, got shape (2, 3)"},
      {TRAIN_STEP_POOLED, ARG_OFFSETS, 2, {1, 4, 0}, "offsets must be 1-D, got shape (1, 4)"},
      {GET_WEIGHTS, ARG_OUT, 2, {4, 8, 0}, "out shape must be (8, 4), got (4, 8)"},
      {GET_WEIGHTS, ARG_OUT, 1, {32, 0, 0}, "out shape must be (8, 4), got (32,)"},
      {SET_WEIGHTS,
       ARG_WEIGHTS,
       2,
       {4, 8, 0},
       "table 'hostile' weight shape (8, 4) is not compatible with provided weight shape (4, 8)"},
      {SET_WEIGHTS,
       ARG_WEIGHTS,
       1,
       {32, 0, 0},
       "weight shape (8, 4) is not compatible with provided weight shape (32,)"},
      {SET_WEIGHTS, ARG_WEIGHTS, 3, {8, 4, 1}, "provided weight shape (8, 4, 1)"},
      {SET_WEIGHTS, ARG_WEIGHTS, 2, {7, 4, 0}, "provided weight shape (7, 4)"},
  };
  for (size_t i = 0; i < sizeof kCases / sizeof kCases[0]; ++i) {
    Call call;
    make_valid_call(&call, kCases[i].entry);
    const Arg arg = kCases[i].arg;
    call.pass[arg] = &call.tensor[arg];
    memcpy(call.shape[arg], kCases[i].shape, sizeof kCases[i].shape);
    call.tensor[arg].ndim = kCases[i].ndim;
    expect_call_fails(table, &call, EK_SHAPE_MISMATCH, kCases[i].needle, kCases[i].needle);
  }
}

/* CSR offsets that do not start at 0, decrease, or end anywhere but at the number of ids. */
static void test_bad_offsets(ek_table* table) {
  static const struct {
    int count;
    int64_t offsets[4];
    const char* needle;
  } kCases[] = {
      {4, {1, 2, 2, 6}, "offsets[0] = 1 must be 0"},
      {4, {-1, 2, 2, 6}, "offsets[0] = -1 must be 0"},
      {4, {INT64_MIN, 2, 2, 6}, "offsets[0] = -9223372036854775808 must be 0"},
      {4, {0, 3, 2, 6}, "offsets[2] = 2 is less than offsets[1] = 3; offsets must not decrease"},
      {4, {0, 2, INT64_MAX, 6}, "offsets[3] = 6 is less than offsets[2] = 9223372036854775807"},
      {4, {0, 2, 2, 9}, "offsets[3] = 9 (the last) must equal the number of indices, 6"},
      {4, {0, 7, 7, 7}, "offsets[3] = 7 (the last) must equal the number of indices, 6"},
      {4, {0, 2, 2, 5}, "offsets[3] = 5 (the last) must equal the number of indices, 6"},
      {4, {0, 2, 2, INT64_MAX}, "offsets[3] = 9223372036854775807 (the last) must equal the number of indices, 6"},
      {1, {0, 0, 0, 0}, "offsets[0] = 0 (the last) must equal the number of indices, 6"},
      {0, {0, 0, 0, 0}, "offsets must hold bags + 1 entries (at least 1), got 0"},
  };
  const Entry entries[2] = {LOOKUP_POOLED, TRAIN_STEP_POOLED};
  for (int e = 0; e < 2; ++e) {
    for (size_t i = 0; i < sizeof kCases / sizeof kCases[0]; ++i) {
      Call call;
      make_valid_call(&call, entries[e]);
      memcpy(g_offsets, kCases[i].offsets, sizeof kCases[i].offsets);
      const int64_t bags = kCases[i].count > 0 ? kCases[i].count - 1 : 0;
      set_shape(&call, ARG_OFFSETS, 1, kCases[i].count, 0);
      set_shape(&call, entries[e] == LOOKUP_POOLED ? ARG_OUT : ARG_GRAD, 2, bags, kDim);
      expect_call_fails(table, &call, EK_INVALID_ARGUMENT, kCases[i].needle, kCases[i].needle);
    }
  }
}

/* Pooling modes: NULL, unknown, near misses, and weights with "max". */
static void test_bad_modes(ek_table* table) {
  static char long_mode[4097];
  memset(long_mode, 'm', sizeof long_mode - 1);
  const char* const modes[] = {"avg", "", "SUM", "sum ", " sum", "max\n", "sqrt", long_mode};
  const Entry entries[2] = {LOOKUP_POOLED, TRAIN_STEP_POOLED};
  char needle[4300];
  for (int e = 0; e < 2; ++e) {
    Call call;
    make_valid_call(&call, entries[e]);
    call.mode = NULL;
    expect_call_fails(table, &call, EK_INVALID_ARGUMENT, "mode is NULL", "mode NULL");
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; ++i) {
      make_valid_call(&call, entries[e]);
      call.mode = modes[i];
      snprintf(needle, sizeof needle, "pooling mode must be 'sum', 'mean', 'max' or 'sqrtn', got '%s'", modes[i]);
      expect_call_fails(table, &call, EK_INVALID_ARGUMENT, needle, "unknown mode");
    }
    make_valid_call(&call, entries[e]);
    call.mode = "max";
    call.pass[ARG_SAMPLE_WEIGHTS] = &call.tensor[ARG_SAMPLE_WEIGHTS];
    expect_call_fails(table, &call, EK_INVALID_ARGUMENT, "per_sample_weights are not supported with pooling mode 'max'",
                      "weights with max");
  }
}

/* Ids outside [0, input_dim) in every entry point that reads rows, as int64 and int32. */
static void test_out_of_range_ids(ek_table* table) {
  static const struct {
    int64_t id;
    const char* needle;
  } kCases[] = {
      {8, "indices[4] = 8 is not in [0, 8)"},
      {-1, "indices[4] = -1 is not in [0, 8)"},
      {INT64_MIN, "indices[4] = -9223372036854775808 is not in [0, 8)"},
      {INT64_MAX, "indices[4] = 9223372036854775807 is not in [0, 8)"},
      {INT64_C(4294967304), "indices[4] = 4294967304 is not in [0, 8)"}, /* 2^32 + 8: wraps to 8 as int32 */
  };
  const Entry entries[4] = {LOOKUP, LOOKUP_POOLED, TRAIN_STEP, TRAIN_STEP_POOLED};
  for (int e = 0; e < 4; ++e) {
    for (size_t i = 0; i < sizeof kCases / sizeof kCases[0]; ++i) {
      Call call;
      make_valid_call(&call, entries[e]);
      g_ids[4] = kCases[i].id;
      expect_call_fails(table, &call, EK_OUT_OF_RANGE, kCases[i].needle, kCases[i].needle);
    }
    Call call;
    make_valid_call(&call, entries[e]);
    int32_t ids32[kIds] = {1, 2, 3, 0, INT32_MIN, 5};
    call.tensor[ARG_INDICES] = i32(ids32, 1, call.shape[ARG_INDICES]);
    expect_call_fails(table, &call, EK_OUT_OF_RANGE, "indices[4] = -2147483648 is not in [0, 8)", "int32 INT32_MIN");
  }
}

/* The entry points without tensors: NULL handles and out-pointers, bad numbers and names. */
static void test_other_entry_points(ek_table* table) {
  Snapshot before, after;
  take_snapshot(table, &before);
  size_t length = 0;
  char buffer[16];
  EXPECT_FAIL(ek_table_info(NULL, buffer, sizeof buffer, &length), EK_INVALID_ARGUMENT, "table is NULL");
  EXPECT_FAIL(ek_table_info(table, buffer, sizeof buffer, NULL), EK_INVALID_ARGUMENT, "length is NULL");
  EXPECT_FAIL(ek_table_info(table, NULL, 100000, &length), EK_INVALID_ARGUMENT, "info buffer holds 0 bytes");
  const double rates[] = {NAN, INFINITY, -INFINITY, -1.0, -0.0 - 1e-300};
  for (size_t i = 0; i < sizeof rates / sizeof rates[0]; ++i) {
    EXPECT_FAIL(ek_set_learning_rate(table, rates[i]), EK_INVALID_ARGUMENT,
                "learning_rate must be a finite number >= 0");
  }
  EXPECT_FAIL(ek_set_learning_rate(table, 1e308), EK_INVALID_ARGUMENT, "learning_rate must fit a float32, got 1e+308");
  EXPECT_FAIL(ek_set_learning_rate(NULL, 0.1), EK_INVALID_ARGUMENT, "table is NULL");
  EXPECT_FAIL(ek_table_migrate(NULL, "cpu"), EK_INVALID_ARGUMENT, "table is NULL");
  EXPECT_FAIL(ek_table_migrate(table, NULL), EK_INVALID_ARGUMENT, "device is NULL");
  const char* const devices[] = {"tpu", "", "CPU", "cuda:0", " cpu"};
  char needle[128];
  for (size_t i = 0; i < sizeof devices / sizeof devices[0]; ++i) {
    snprintf(needle, sizeof needle, "migrate: device must be 'cpu' or 'cuda', got '%s'", devices[i]);
    EXPECT_FAIL(ek_table_migrate(table, devices[i]), EK_INVALID_ARGUMENT, needle);
  }
  EXPECT_FAIL(ek_table_migrate(table, "cuda"), EK_UNSUPPORTED, "migrate: table 'hostile' cannot move to 'cuda'");
  EXPECT_FAIL(ek_table_set_cuda_stream(NULL, NULL), EK_INVALID_ARGUMENT, "table is NULL");
  EXPECT_FAIL(ek_save(NULL, "/tmp"), EK_INVALID_ARGUMENT, "table is NULL");
  EXPECT_FAIL(ek_save(table, NULL), EK_INVALID_ARGUMENT, "directory is NULL");
  EXPECT_FAIL(ek_save(table, "/etc/passwd"), EK_IO_ERROR, "/etc/passwd: not a directory");
  EXPECT_FAIL(ek_save(table, ""), EK_INVALID_ARGUMENT, "checkpoint directory is empty");
  take_snapshot(table, &after);
  CHECK(same_snapshot(&before, &after));
}

/* After all of the above, the battered table and a twin that saw none of it train one step alike. */
static void test_nothing_moved(ek_table* battered) {
  ek_table* twin = NULL;
  EXPECT_OK(ek_table_create(kTableConfig, &twin));
  if (twin == NULL) return;
  Snapshot a, b;
  take_snapshot(battered, &a);
  take_snapshot(twin, &b);
  CHECK(same_snapshot(&a, &b));
  for (int step = 0; step < 2; ++step) {
    Call call;
    make_valid_call(&call, TRAIN_STEP);
    EXPECT_OK(invoke(battered, &call));
    EXPECT_OK(invoke(twin, &call));
  }
  take_snapshot(battered, &a);
  take_snapshot(twin, &b);
  CHECK(same_snapshot(&a, &b));
  CHECK(strstr(a.info, "\"step\":2") != NULL);
  ek_table_destroy(twin);
}

/* ---------------------------------------------------------------------------------------------
 * Configs
 * ------------------------------------------------------------------------------------------- */

/* ek_table_create(config) must fail with `status` and `needle`, leaving *out as it was. `label`
 * stands for the config in reports (some are 600 kB). */
static void expect_create_fails(const char* label, const char* config, ek_status status, const char* needle) {
  static int marker;
  ek_table* table = (ek_table*)(void*)&marker;
  prime_last_error(needle);
  const ek_status got = ek_table_create(config, &table);
  check_failure(__FILE__, __LINE__, label, got, status, needle);
  if (table != (ek_table*)(void*)&marker) {
    ++g_failed;
    fprintf(stderr, "ek_table_create changed *out on failure for %s\n", label);
    if (got == EK_OK) ek_table_destroy(table);
  }
}

/* `before` + `open` x depth + `close` x depth + `after`, malloc'ed. */
static char* nested(const char* before, const char* open, const char* close, int depth, const char* after) {
  const size_t size = strlen(before) + (size_t)depth * (strlen(open) + strlen(close)) + strlen(after) + 1;
  char* text = malloc(size);
  if (text == NULL) return NULL;
  char* p = text;
  p += sprintf(p, "%s", before);
  for (int i = 0; i < depth; ++i) p += sprintf(p, "%s", open);
  for (int i = 0; i < depth; ++i) p += sprintf(p, "%s", close);
  sprintf(p, "%s", after);
  return text;
}

static void test_truncated_configs(void) {
  /* Every proper prefix of a valid config, cut inside keys, numbers, escapes and a UTF-8 sequence. */
  static const char full[] =
      "{\"name\": \"caf\\u00e9 \xc3\xa9\", \"input_dim\": 8, \"output_dim\": 4, \"seed\": 5, \"mask_zero\": true, "
      "\"optimizer\": {\"class_name\": \"Adam\", \"config\": {\"learning_rate\": 0.01}}, "
      "\"embeddings_initializer\": {\"class_name\": \"RandomUniform\", \"config\": {\"minval\": -0.1, \"maxval\": 1e-1}}}";
  ek_table* table = NULL;
  EXPECT_OK(ek_table_create(full, &table));
  ek_table_destroy(table);
  char prefix[sizeof full];
  for (size_t length = 0; length + 1 < sizeof full; ++length) {
    memcpy(prefix, full, length);
    prefix[length] = '\0';
    char label[64];
    snprintf(label, sizeof label, "the first %zu bytes of a valid config", length);
    expect_create_fails(label, prefix, EK_INVALID_ARGUMENT, "config is not valid JSON");
  }
}

static void test_malformed_configs(void) {
  static const char* const kCases[] = {
      "{\"input_dim\": 8, \"output_dim\": 4} x",
      "{\"input_dim\": 8, \"output_dim\": 4} {}",
      "{\"input_dim\": 8, \"output_dim\": 4,}",
      "{\"input_dim\": 8 \"output_dim\": 4}",
      "{'input_dim': 8, 'output_dim': 4}",
      "{\"input_dim\": 8, \"output_dim\": 4 // comment\n}",
      "{\"input_dim\": NaN, \"output_dim\": 4}",
      "{\"input_dim\": Infinity, \"output_dim\": 4}",
      "{\"input_dim\": 0x10, \"output_dim\": 4}",
      "{\"input_dim\": 08, \"output_dim\": 4}",
      "{\"input_dim\": +8, \"output_dim\": 4}",
      "{\"input_dim\": 8, \"output_dim\": 4, \"name\": \"\x01\"}",
      "{\"input_dim\": 8, \"output_dim\": 4, \"name\": \"\\ud800\"}",
      "{\"input_dim\": 8, \"output_dim\": 4, \"name\": \"\xff\xfe\"}",
      "{\"input_dim\": 8, \"output_dim\": 4, \"name\": \"\\x41\"}",
      "\xef\xbb\xbf\xef\xbb\xbf{}",
      "}",
      "]",
      "{\"input_dim\": [8}",
  };
  for (size_t i = 0; i < sizeof kCases / sizeof kCases[0]; ++i) {
    expect_create_fails(kCases[i], kCases[i], EK_INVALID_ARGUMENT, "config is not valid JSON");
  }
  expect_create_fails("true", "true", EK_INVALID_ARGUMENT, "config must be a JSON object, got true");
  expect_create_fails("\"x\"", "\"x\"", EK_INVALID_ARGUMENT, "config must be a JSON object, got \"x\"");
  expect_create_fails("null", "null", EK_INVALID_ARGUMENT, "config must be a JSON object, got null");
  expect_create_fails("{}", "{}", EK_INVALID_ARGUMENT, "config is missing the required key 'input_dim'");
}

static void test_deep_configs(void) {
  static const struct {
    const char *before, *open, *close, *after, *label, *needle;
  } kCases[] = {
      {"", "[", "]", "", "100000 nested arrays", "config nests arrays and objects deeper than 64 levels (byte 64)"},
      {"", "{\"a\":", "}", "", "100000 nested objects (and no innermost value)", "deeper than 64 levels"},
      {"{\"input_dim\": ", "[", "]", ", \"output_dim\": 4}", "input_dim nested 100000 deep",
       "config nests arrays and objects deeper than 64 levels (byte 77)"},
      {"{\"input_dim\": 8, \"output_dim\": 4, \"optimizer\": {\"class_name\": \"SGD\", \"config\": ", "{\"momentum\": ",
       "}", "}}", "the optimizer's config nested 100000 deep", "deeper than 64 levels"},
      {"{\"input_dim\": 8, \"output_dim\": 4, \"embeddings_initializer\": {\"class_name\": \"Zeros\", \"config\": ",
       "[", "]", "}}", "the initializer's config nested 100000 deep", "deeper than 64 levels"},
      {"{\"input_dim\": 8, \"output_dim\": 4, \"name\": ", "[", "]", "}", "the name nested 100000 deep",
       "deeper than 64 levels"},
      {"{\"input_dim\": 8, \"output_dim\": 4, \"colour\": ", "[", "]", "}", "an unknown key nested 100000 deep",
       "deeper than 64 levels"},
  };
  for (size_t i = 0; i < sizeof kCases / sizeof kCases[0]; ++i) {
    char* config = nested(kCases[i].before, kCases[i].open, kCases[i].close, 100000, kCases[i].after);
    CHECK(config != NULL);
    if (config == NULL) continue;
    expect_create_fails(kCases[i].label, config, EK_INVALID_ARGUMENT, kCases[i].needle);
    free(config);
  }
  /* The limit: 64 levels (the object and 63 arrays) parse, and the value is then refused by type. */
  char* at_limit = nested("{\"input_dim\": ", "[", "]", 63, ", \"output_dim\": 4}");
  char* over_limit = nested("{\"input_dim\": ", "[", "]", 64, ", \"output_dim\": 4}");
  if (at_limit != NULL && over_limit != NULL) {
    expect_create_fails("input_dim 63 arrays deep", at_limit, EK_INVALID_ARGUMENT,
                        "input_dim must be a positive integer, got [[[[");
    expect_create_fails("input_dim 64 arrays deep", over_limit, EK_INVALID_ARGUMENT, "deeper than 64 levels (byte 77)");
  }
  free(at_limit);
  free(over_limit);
  /* Brackets inside a string are text: a name of 100000 '[' (and an escaped quote) is a fine name. */
  char* name = nested("{\"input_dim\": 8, \"output_dim\": 4, \"name\": \"\\\"", "[", "", 100000, "\"}");
  ek_table* table = NULL;
  if (name != NULL) EXPECT_OK(ek_table_create(name, &table));
  ek_table_destroy(table);
  free(name);
}

static void test_numbers_out_of_range(void) {
  static const struct {
    const char *config, *needle;
  } kCases[] = {
      {"{\"input_dim\": 1e400, \"output_dim\": 4}",
       "config is not valid JSON: [json.exception.out_of_range.406] number overflow parsing '1e400'"},
      {"{\"input_dim\": -1e400, \"output_dim\": 4}", "number overflow parsing '-1e400'"},
      {"{\"input_dim\": 8, \"output_dim\": 4, \"seed\": 1e400}", "number overflow parsing '1e400'"},
      {"{\"input_dim\": 8, \"output_dim\": 4, \"lora_alpha\": 1e400}", "number overflow parsing '1e400'"},
      {"{\"input_dim\": 8, \"output_dim\": 4, \"optimizer\": {\"class_name\": \"SGD\", \"config\": {\"learning_rate\": 1e400}}}",
       "number overflow parsing '1e400'"},
      {"{\"input_dim\": 8, \"output_dim\": 4, \"embeddings_initializer\": {\"class_name\": \"RandomUniform\", "
       "\"config\": {\"minval\": -1e400}}}",
       "number overflow parsing '-1e400'"},
      {"{\"input_dim\": 18446744073709551616, \"output_dim\": 4}",
       "config: the integer 18446744073709551616 at /input_dim is out of range"},
      {"{\"input_dim\": 9223372036854775808, \"output_dim\": 4}",
       "input_dim must be a positive integer, got 9223372036854775808"},
      {"{\"input_dim\": -9223372036854775809, \"output_dim\": 4}",
       "config: the integer -9223372036854775809 at /input_dim is out of range"},
      {"{\"input_dim\": 8, \"output_dim\": 2147483648}", "output_dim must be at most 2147483647, got 2147483648"},
      {"{\"input_dim\": 8, \"output_dim\": 4, \"seed\": 18446744073709551616}",
       "config: the integer 18446744073709551616 at /seed is out of range"},
      {"{\"input_dim\": 8, \"output_dim\": 4, \"padding_idx\": 9223372036854775808}",
       "padding_idx must be an integer that fits int64, got 9223372036854775808"},
      {"{\"input_dim\": 8, \"output_dim\": 4, \"optimizer\": {\"class_name\": \"SGD\", \"config\": {\"learning_rate\": 1e300}}}",
       "learning_rate must fit a float32, got 1e+300"},
  };
  for (size_t i = 0; i < sizeof kCases / sizeof kCases[0]; ++i) {
    expect_create_fails(kCases[i].config, kCases[i].config, EK_INVALID_ARGUMENT, kCases[i].needle);
  }
}

/* A wrong-typed value for each of the 25 keys (the values each key accepts are tested in config_test). */
static void test_wrong_types(void) {
  static const struct {
    const char *field, *needle;
    ek_status status;
  } kCases[] = {
      {"\"input_dim\": \"8\"", "input_dim must be a positive integer, got \"8\"", EK_INVALID_ARGUMENT},
      {"\"input_dim\": 8.0", "input_dim must be a positive integer, got 8.0", EK_INVALID_ARGUMENT},
      {"\"output_dim\": [4]", "output_dim must be a positive integer, got [4]", EK_INVALID_ARGUMENT},
      {"\"seed\": \"x\"", "seed must be a non-negative integer, got \"x\"", EK_INVALID_ARGUMENT},
      {"\"seed\": 3.5", "seed must be a non-negative integer, got 3.5", EK_INVALID_ARGUMENT},
      {"\"mask_zero\": 1", "mask_zero must be a boolean, got 1", EK_INVALID_ARGUMENT},
      {"\"mask_zero\": null", "mask_zero must be a boolean, got null", EK_INVALID_ARGUMENT},
      {"\"padding_idx\": true", "padding_idx must be an integer, got true", EK_INVALID_ARGUMENT},
      {"\"bounds_check\": 3.5", "bounds_check must be a string, got 3.5", EK_INVALID_ARGUMENT},
      {"\"trainable\": \"yes\"", "trainable must be a boolean, got \"yes\"", EK_INVALID_ARGUMENT},
      {"\"name\": {\"a\":1}", "name must be a string, got {\"a\":1}", EK_INVALID_ARGUMENT},
      {"\"placement\": null", "placement must be a string, got null", EK_INVALID_ARGUMENT},
      {"\"optimizer\": 3.5", "optimizer must be a name or a Keras optimizer object, got 3.5", EK_INVALID_ARGUMENT},
      {"\"optimizer\": {\"a\":1}", "optimizer object has no 'class_name'", EK_INVALID_ARGUMENT},
      {"\"optimizer\": {\"class_name\": 7}", "optimizer class_name must be a string, got 7", EK_INVALID_ARGUMENT},
      {"\"gpu_memory_limit\": -1", "gpu_memory_limit must be a non-negative integer, got -1", EK_INVALID_ARGUMENT},
      {"\"gpu_memory_headroom\": \"1GB\"", "gpu_memory_headroom must be a non-negative integer, got \"1GB\"",
       EK_INVALID_ARGUMENT},
      {"\"max_batch_lookups\": null", "max_batch_lookups must be a positive integer, got null", EK_INVALID_ARGUMENT},
      {"\"nonfinite_gradients\": [1]", "nonfinite_gradients must be a string, got [1]", EK_INVALID_ARGUMENT},
      {"\"dtype\": true", "dtype must be a string or a Keras DTypePolicy object, got true", EK_INVALID_ARGUMENT},
      {"\"dtype\": \"float64\"", "dtype 'float64' is not supported", EK_UNSUPPORTED},
      {"\"input_length\": {\"a\":1}", "input_length must be null, a positive integer or a list of them, got {\"a\":1}",
       EK_INVALID_ARGUMENT},
      {"\"batch_input_shape\": [\"x\"]", "batch_input_shape must be null, a positive integer or a list of them",
       EK_INVALID_ARGUMENT},
      {"\"activity_regularizer\": [1]", "activity_regularizer = [1] is not supported by embedkit", EK_UNSUPPORTED},
      {"\"quantization_config\": {\"mode\": \"int8\"}", "quantization_config = {\"mode\":\"int8\"} is not supported",
       EK_UNSUPPORTED},
      {"\"sparse\": \"x\"", "sparse = \"x\" is not supported by embedkit", EK_UNSUPPORTED},
      {"\"lora_rank\": 3.5", "lora_rank = 3.5 is not supported by embedkit", EK_UNSUPPORTED},
      {"\"lora_alpha\": true", "lora_alpha must be a finite number, got true", EK_INVALID_ARGUMENT},
      {"\"embeddings_initializer\": null",
       "embeddings_initializer must be a Keras initializer name or object, got null", EK_INVALID_ARGUMENT},
      {"\"embeddings_initializer\": {\"class_name\": \"RandomUniform\", \"config\": {\"minval\": \"0\"}}", "minval",
       EK_INVALID_ARGUMENT},
      {"\"embeddings_regularizer\": true",
       "embeddings_regularizer must be null, a Keras regularizer name or object, got true", EK_INVALID_ARGUMENT},
      {"\"embeddings_constraint\": 3.5",
       "embeddings_constraint must be null, a Keras constraint name or object, got 3.5", EK_INVALID_ARGUMENT},
  };
  char config[512];
  for (size_t i = 0; i < sizeof kCases / sizeof kCases[0]; ++i) {
    /* The key under test takes the place of the base's value (a key given twice is refused as such). */
    const int sets_input = strncmp(kCases[i].field, "\"input_dim\"", 11) == 0;
    const int sets_output = strncmp(kCases[i].field, "\"output_dim\"", 12) == 0;
    snprintf(config, sizeof config, "{%s%s%s}", sets_input ? "" : "\"input_dim\": 8, ",
             sets_output ? "" : "\"output_dim\": 4, ", kCases[i].field);
    expect_create_fails(config, config, kCases[i].status, kCases[i].needle);
  }
}

static void test_tables_larger_than_memory(void) {
  expect_create_fails("adam state beyond memory",
                      "{\"input_dim\": 100000000000, \"output_dim\": 64, \"optimizer\": \"adam\"}", EK_OUT_OF_MEMORY,
                      "adam state");
  expect_create_fails("weights bytes overflow", "{\"input_dim\": 4611686018427387904, \"output_dim\": 1}",
                      EK_OUT_OF_MEMORY, "needs more bytes than memory can address");
  expect_create_fails(
      "weights + state overflow",
      "{\"input_dim\": 2147483648, \"output_dim\": 1073741824, \"optimizer\": {\"class_name\": \"SGD\", "
      "\"config\": {\"momentum\": 0.9}}}",
      EK_OUT_OF_MEMORY, "needs more bytes than memory can address");
  expect_create_fails("workspace overflow",
                      "{\"input_dim\": 8, \"output_dim\": 4, \"max_batch_lookups\": 9223372036854775807}",
                      EK_OUT_OF_MEMORY,
                      "with max_batch_lookups 9223372036854775807 needs more bytes than memory can address");
}

/* ---------------------------------------------------------------------------------------------
 * Checkpoints: damaged and lying manifests and data files
 * ------------------------------------------------------------------------------------------- */

typedef struct {
  char* bytes;
  size_t size;
} Bytes;

static Bytes read_bytes(const char* path) {
  Bytes b = {NULL, 0};
  FILE* f = fopen(path, "rb");
  if (f == NULL) return b;
  fseek(f, 0, SEEK_END);
  const long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  b.bytes = malloc((size_t)size + 1);
  if (b.bytes != NULL && fread(b.bytes, 1, (size_t)size, f) == (size_t)size) {
    b.size = (size_t)size;
    b.bytes[size] = '\0';
  }
  fclose(f);
  return b;
}

static void write_bytes(const char* path, const char* bytes, size_t size) {
  FILE* f = fopen(path, "wb");
  CHECK(f != NULL);
  if (f == NULL) return;
  CHECK(fwrite(bytes, 1, size, f) == size);
  fclose(f);
}

/* `text` with its first `from` replaced by `to`, malloc'ed (NULL and a failure when absent). */
static char* replaced(const char* text, const char* from, const char* to) {
  const char* at = strstr(text, from);
  CHECK(at != NULL);
  if (at == NULL) return NULL;
  const size_t head = (size_t)(at - text);
  char* out = malloc(strlen(text) - strlen(from) + strlen(to) + 1);
  if (out == NULL) return NULL;
  memcpy(out, text, head);
  sprintf(out + head, "%s%s", to, at + strlen(from));
  return out;
}

/* A version 1.0 .npy file of `header` (the dict) and `payload`, malloc'ed; its size in *size. */
static char* npy_file(const char* header, const void* payload, size_t payload_size, size_t* size) {
  char dict[256];
  int length = snprintf(dict, sizeof dict, "%s", header);
  while ((10 + length + 1) % 64 != 0) dict[length++] = ' ';
  dict[length++] = '\n';
  *size = 10 + (size_t)length + payload_size;
  char* bytes = malloc(*size);
  if (bytes == NULL) return NULL;
  memcpy(bytes, "\x93NUMPY\x01\x00", 8);
  bytes[8] = (char)(length & 0xff);
  bytes[9] = (char)(length >> 8);
  memcpy(bytes + 10, dict, (size_t)length);
  memcpy(bytes + 10 + length, payload, payload_size);
  return bytes;
}

typedef struct {
  char directory[64];
  char manifest_path[128];
  char weights_name[256];
  char weights_path[512];
  Bytes manifest;
  Bytes weights;
} Checkpoint;

static void checksum_hex(const void* bytes, size_t size, char hex[17]) {
  snprintf(hex, 17, "%016llx", (unsigned long long)XXH64(bytes, size, 0));
}

/* Restores the checkpoint as saved. */
static void restore(const Checkpoint* c) {
  write_bytes(c->manifest_path, c->manifest.bytes, c->manifest.size);
  write_bytes(c->weights_path, c->weights.bytes, c->weights.size);
}

/* ek_load must fail with EK_IO_ERROR and `needle`, leaving *out as it was. */
static void expect_load_fails(const Checkpoint* c, const char* what, const char* needle) {
  static int marker;
  ek_table* table = (ek_table*)(void*)&marker;
  prime_last_error(needle);
  const ek_status got = ek_load(c->directory, &table);
  check_failure(__FILE__, __LINE__, what, got, EK_IO_ERROR, needle);
  if (table != (ek_table*)(void*)&marker) {
    ++g_failed;
    fprintf(stderr, "ek_load changed *out on failure: %s\n", what);
    if (got == EK_OK) ek_table_destroy(table);
  }
}

/* Writes a manifest in which `from` reads `to`, and expects the load to fail with `needle`. */
static void expect_manifest_refused(const Checkpoint* c, const char* from, const char* to, const char* needle) {
  char* manifest = replaced(c->manifest.bytes, from, to);
  if (manifest == NULL) return;
  write_bytes(c->manifest_path, manifest, strlen(manifest));
  char what[512];
  snprintf(what, sizeof what, "manifest with %s -> %.200s", from, to);
  expect_load_fails(c, what, needle);
  free(manifest);
  restore(c);
}

/* Replaces the weights file by `bytes` and its checksum in the manifest by theirs, so that the file
 * passes the checksum and the .npy reader is the one that must refuse it. */
static void expect_weights_refused(const Checkpoint* c, const char* bytes, size_t size, const char* what,
                                   const char* needle) {
  char old_sum[17], new_sum[17];
  checksum_hex(c->weights.bytes, c->weights.size, old_sum);
  checksum_hex(bytes, size, new_sum);
  char* manifest = replaced(c->manifest.bytes, old_sum, new_sum);
  if (manifest == NULL) return;
  write_bytes(c->manifest_path, manifest, strlen(manifest));
  write_bytes(c->weights_path, bytes, size);
  char full_needle[1024];
  snprintf(full_needle, sizeof full_needle, "%s: %s", c->weights_name, needle);
  expect_load_fails(c, what, full_needle);
  free(manifest);
  restore(c);
}

static int make_checkpoint(Checkpoint* c) {
  memset(c, 0, sizeof *c);
  snprintf(c->directory, sizeof c->directory, "/tmp/embedkit-hostile-XXXXXX");
  if (mkdtemp(c->directory) == NULL) return 0;
  ek_table* table = NULL;
  EXPECT_OK(ek_table_create(kTableConfig, &table));
  EXPECT_OK(ek_save(table, c->directory));
  ek_table_destroy(table);
  DIR* dir = opendir(c->directory);
  if (dir == NULL) return 0;
  for (struct dirent* entry; (entry = readdir(dir)) != NULL;) {
    if (strncmp(entry->d_name, "weights-", 8) == 0)
      snprintf(c->weights_name, sizeof c->weights_name, "%s", entry->d_name);
  }
  closedir(dir);
  snprintf(c->manifest_path, sizeof c->manifest_path, "%s/manifest.json", c->directory);
  snprintf(c->weights_path, sizeof c->weights_path, "%s/%s", c->directory, c->weights_name);
  c->manifest = read_bytes(c->manifest_path);
  c->weights = read_bytes(c->weights_path);
  return c->weights_name[0] != '\0' && c->manifest.bytes != NULL && c->weights.bytes != NULL;
}

static void test_damaged_manifests(const Checkpoint* c) {
  /* Every proper prefix (short of the trailing newline, without which the manifest is whole). */
  size_t end = c->manifest.size;
  while (end > 0 && (c->manifest.bytes[end - 1] == '\n' || c->manifest.bytes[end - 1] == ' ')) --end;
  for (size_t length = 0; length < end; ++length) {
    write_bytes(c->manifest_path, c->manifest.bytes, length);
    char what[64];
    snprintf(what, sizeof what, "the first %zu bytes of the manifest", length);
    expect_load_fails(c, what, "manifest.json is not valid JSON");
  }
  restore(c);
  /* Not a manifest at all. */
  write_bytes(c->manifest_path, "[1, 2]", 6);
  expect_load_fails(c, "an array", "manifest.json: malformed");
  write_bytes(c->manifest_path, c->weights.bytes, c->weights.size);
  expect_load_fails(c, "a .npy file named manifest.json", "manifest.json is not valid JSON");
  char* deep = nested("{\"files\": ", "[", "]", 100000, "}");
  if (deep != NULL) write_bytes(c->manifest_path, deep, strlen(deep));
  free(deep);
  expect_load_fails(c, "nested 100000 deep", "manifest.json nests arrays and objects deeper than 64 levels");
  restore(c);
  /* Header fields that are wrong or of the wrong kind. */
  expect_manifest_refused(c, "\"embedkit-checkpoint\"", "\"keras\"",
                          "manifest.json: not an embedkit checkpoint manifest");
  expect_manifest_refused(c, "\"embedkit-checkpoint\"", "7", "manifest.json: malformed");
  expect_manifest_refused(c, "\"format_version\": 1", "\"format_version\": 2",
                          "format version 2 is not supported (this embedkit reads 1)");
  expect_manifest_refused(c, "\"format_version\": 1", "\"format_version\": 1e300",
                          "format version 1e+300 is not supported");
  expect_manifest_refused(c, "\"step\": 0", "\"step\": -1", "manifest.json: step -1 is not in [0, 9007199254740992]");
  expect_manifest_refused(c, "\"step\": 0", "\"step\": 1e300", "manifest.json: step must be an integer, got 1e+300");
  expect_manifest_refused(c, "\"step\": 0", "\"step\": \"0\"", "manifest.json: step must be an integer, got \"0\"");
  expect_manifest_refused(c, "\"step\": 0", "\"step\": 1e400", "manifest.json is not valid JSON");
  expect_manifest_refused(c, "\"input_dim\": 8", "\"input_dim\": \"8\"",
                          "manifest.json: config: input_dim must be a positive integer, got \"8\"");
  /* A manifest that lies about the table's shape. */
  char needle[1024];
  snprintf(needle, sizeof needle, "%s: shape (8, 4) does not match the table's (9, 4)", c->weights_name);
  expect_manifest_refused(c, "\"input_dim\": 8", "\"input_dim\": 9", needle);
  snprintf(needle, sizeof needle, "%s: shape (8, 4) does not match the table's (8, 2)", c->weights_name);
  expect_manifest_refused(c, "\"output_dim\": 4", "\"output_dim\": 2", needle);
  /* File names outside the directory, or not plain names. */
  static const char* const kNames[] = {"../x.npy", "/etc/passwd", "", ".", "..", "sub/x.npy", "a\\u0000b", "..hidden"};
  char quoted_weights[300], name[64];
  snprintf(quoted_weights, sizeof quoted_weights, "\"%s\"", c->weights_name);
  for (size_t i = 0; i < sizeof kNames / sizeof kNames[0]; ++i) {
    snprintf(name, sizeof name, "\"%s\"", kNames[i]);
    expect_manifest_refused(c, quoted_weights, name, "which is not a plain file name inside the checkpoint directory");
    CHECK(strstr(ek_last_error(), name) != NULL); /* the name as JSON writes it, a NUL as \u0000 */
  }
  /* Files missing, unknown roles, and checksums that do not match. */
  expect_manifest_refused(c, "\"files\"", "\"fils\"", "manifest.json: malformed file entry");
  expect_manifest_refused(c, "\"role\": \"weights\"", "\"role\": \"bias\"",
                          "as 'bias', which this table does not have or has twice");
  expect_manifest_refused(c, "\"role\": \"optimizer_state\"", "\"role\": \"weights\"",
                          "which this table does not have or has twice");
  expect_manifest_refused(c, "\"slot\": \"accumulator\"", "\"slot\": \"momentum\"",
                          "which this table does not have or has twice");
  expect_manifest_refused(c, "\"xxh64\": \"", "\"xxh64\": \"0", "checksum mismatch");
  expect_manifest_refused(c, "\"xxh64\": \"", "\"xxh64\": 7, \"x\": \"", "manifest.json: malformed file entry");
}

static void test_damaged_weights(const Checkpoint* c) {
  const size_t payload = kRows * kDim * sizeof(float);
  const char* values = c->weights.bytes + c->weights.size - payload;
  size_t size = 0;
  char* file = NULL;
  /* Truncated: inside the payload, inside the header, inside the magic. */
  expect_weights_refused(c, c->weights.bytes, c->weights.size - 1, "truncated by one byte",
                         "shape (8, 4) needs 128 bytes of data, the file holds 127");
  expect_weights_refused(c, c->weights.bytes, 40, "truncated inside the header", "the .npy header is truncated");
  expect_weights_refused(c, c->weights.bytes, 5, "truncated inside the magic", "not a .npy file (wrong magic bytes)");
  expect_weights_refused(c, "", 0, "empty", "not a .npy file (wrong magic bytes)");
  /* Not what its name says. */
  expect_weights_refused(c, "name,value\nw,1\n", 15, "a CSV file", "not a .npy file (wrong magic bytes)");
  expect_weights_refused(c, c->manifest.bytes, c->manifest.size, "the manifest", "not a .npy file (wrong magic bytes)");
  /* Wrong headers. */
  char* bad = malloc(c->weights.size);
  if (bad != NULL) {
    memcpy(bad, c->weights.bytes, c->weights.size);
    bad[5] = 'Z';
    expect_weights_refused(c, bad, c->weights.size, "wrong magic", "not a .npy file (wrong magic bytes)");
    memcpy(bad, c->weights.bytes, c->weights.size);
    bad[6] = 9;
    expect_weights_refused(c, bad, c->weights.size, "version 9", ".npy format version 9 is not supported (1, 2 or 3)");
    memcpy(bad, c->weights.bytes, c->weights.size);
    bad[8] = (char)0xff;
    bad[9] = (char)0xff;
    expect_weights_refused(c, bad, c->weights.size, "header length past the end", "the .npy header is truncated");
    free(bad);
  }
  static const struct {
    const char *header, *needle;
  } kHeaders[] = {
      {"{'descr': '<f8', 'fortran_order': False, 'shape': (8, 4), }", "dtype '<f8' is not float32 ('<f4')"},
      {"{'descr': '>f4', 'fortran_order': False, 'shape': (8, 4), }", "dtype '>f4' is not float32 ('<f4')"},
      {"{'descr': '<i4', 'fortran_order': False, 'shape': (8, 4), }", "dtype '<i4' is not float32"},
      {"{'descr': '<f4', 'fortran_order': True, 'shape': (8, 4), }", "Fortran-ordered arrays are not supported"},
      {"{'fortran_order': False, 'shape': (8, 4), }", "the .npy header has no 'descr'"},
      {"{'descr': '<f4', 'fortran_order': False, }", "the .npy header has no 'shape'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (8, 5), }",
       "shape (8, 5) needs 160 bytes of data, the file holds 128"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (32,), }", "shape (32,) does not match the table's (8, 4)"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 8), }", "shape (4, 8) does not match the table's (8, 4)"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-8, 4), }",
       "the .npy shape (-8, 4) is not a tuple of integers"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (8, 4, }", "the .npy header's shape is not closed"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': 32, }", "shape 32 is not a tuple"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 4), }", "a .npy dimension overflows"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }",
       "the array shape (4611686018427387904, 4) has more elements than memory can address"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4), }",
       "the array shape (4294967296, 4294967296, 4) has more elements than memory can address"},
  };
  for (size_t i = 0; i < sizeof kHeaders / sizeof kHeaders[0]; ++i) {
    file = npy_file(kHeaders[i].header, values, payload, &size);
    if (file == NULL) continue;
    expect_weights_refused(c, file, size, kHeaders[i].header, kHeaders[i].needle);
    free(file);
  }
  /* The file is missing, or a directory. */
  unlink(c->weights_path);
  char needle[1024];
  snprintf(needle, sizeof needle, "%s: cannot open", c->weights_name);
  expect_load_fails(c, "weights file missing", needle);
  CHECK(mkdir(c->weights_path, 0700) == 0);
  snprintf(needle, sizeof needle, "%s: not a regular file", c->weights_name);
  expect_load_fails(c, "weights file is a directory", needle);
  rmdir(c->weights_path);
  restore(c);
}

static void remove_checkpoint(const Checkpoint* c) {
  DIR* dir = opendir(c->directory);
  if (dir != NULL) {
    char path[512];
    for (struct dirent* entry; (entry = readdir(dir)) != NULL;) {
      if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
      snprintf(path, sizeof path, "%s/%s", c->directory, entry->d_name);
      unlink(path);
    }
    closedir(dir);
  }
  rmdir(c->directory);
  free(c->manifest.bytes);
  free(c->weights.bytes);
}

static void test_checkpoints(void) {
  Checkpoint c;
  const int made = make_checkpoint(&c);
  CHECK(made);
  if (made) {
    ek_table* loaded = NULL;
    EXPECT_OK(ek_load(c.directory, &loaded)); /* the undamaged checkpoint loads */
    ek_table_destroy(loaded);
    test_damaged_manifests(&c);
    test_damaged_weights(&c);
    loaded = NULL;
    EXPECT_OK(ek_load(c.directory, &loaded)); /* and still loads after every restore */
    ek_table_destroy(loaded);
  }
  remove_checkpoint(&c);
}

int main(void) {
  ek_table* table = NULL;
  EXPECT_OK(ek_table_create(kTableConfig, &table));
  if (table == NULL) return 1;
  test_every_bad_tensor_description(table);
  test_wrong_shapes(table);
  test_bad_offsets(table);
  test_bad_modes(table);
  test_out_of_range_ids(table);
  test_other_entry_points(table);
  test_nothing_moved(table);
  ek_table_destroy(table);

  test_truncated_configs();
  test_malformed_configs();
  test_deep_configs();
  test_numbers_out_of_range();
  test_wrong_types();
  test_tables_larger_than_memory();

  test_checkpoints();

  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed > 0 ? 1 : 0;
}
