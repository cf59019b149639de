#define _DEFAULT_SOURCE /* mkdtemp */
/* Tests of embedkit's C ABI (include/embedkit/c_api.h), written in plain C11 so that the header
 * is checked to compile as C and every entry point is called the way a C caller calls it.
 *
 * Every status code the ABI can produce is provoked and its message checked; EK_IO_ERROR and
 * EK_INTERNAL, which no current entry point can return, are covered through ek_status_name and
 * the enum's values. Before each expected failure the thread's last error is primed with an
 * unrelated message, so a check of the message cannot pass on a stale one.
 *
 * Prints `N passed, M failed` and exits 1 when any check failed. Runs clean under
 * AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer: every table is destroyed. */
#include <embedkit/c_api.h>

#include "c_api_check.h"

#include <ctype.h>
#include <dlpack/dlpack.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Creates a table that must succeed; NULL (and a counted failure) otherwise. */
static ek_table* create_ok(const char* config, const char* file, int line) {
  ek_table* table = NULL;
  const ek_status status = ek_table_create(config, &table);
  check_failure(file, line, config, status, EK_OK, NULL);
  if (status == EK_OK && table == NULL) {
    ++g_failed;
    fprintf(stderr, "%s:%d: ek_table_create returned EK_OK but a NULL table for %s\n", file, line, config);
  }
  return table;
}
#define CREATE_OK(config) create_ok((config), __FILE__, __LINE__)

/* ---------------------------------------------------------------------------------------------
 * A small JSON validator for ek_table_info's output (RFC 8259, no extensions).
 * ------------------------------------------------------------------------------------------- */

static const char* json_value(const char* p, int depth);

static const char* json_space(const char* p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') ++p;
  return p;
}

static const char* json_string(const char* p) {
  if (*p != '"') return NULL;
  ++p;
  while (*p != '"') {
    const unsigned char c = (unsigned char)*p;
    if (c == '\0' || c < 0x20) return NULL;
    if (c == '\\') {
      ++p;
      if (*p == 'u') {
        for (int i = 1; i <= 4; ++i) {
          if (!isxdigit((unsigned char)p[i])) return NULL;
        }
        p += 5;
        continue;
      }
      if (strchr("\"\\/bfnrt", *p) == NULL || *p == '\0') return NULL;
    }
    ++p;
  }
  return p + 1;
}

static const char* json_number(const char* p) {
  if (*p == '-') ++p;
  if (*p == '0') {
    ++p;
  } else if (*p >= '1' && *p <= '9') {
    while (isdigit((unsigned char)*p)) ++p;
  } else {
    return NULL;
  }
  if (*p == '.') {
    ++p;
    if (!isdigit((unsigned char)*p)) return NULL;
    while (isdigit((unsigned char)*p)) ++p;
  }
  if (*p == 'e' || *p == 'E') {
    ++p;
    if (*p == '+' || *p == '-') ++p;
    if (!isdigit((unsigned char)*p)) return NULL;
    while (isdigit((unsigned char)*p)) ++p;
  }
  return p;
}

static const char* json_value(const char* p, int depth) {
  if (depth > 64) return NULL;
  p = json_space(p);
  if (*p == '{' || *p == '[') {
    const char close = *p == '{' ? '}' : ']';
    const int object = *p == '{';
    p = json_space(p + 1);
    if (*p == close) return p + 1;
    for (;;) {
      if (object) {
        p = json_string(json_space(p));
        if (p == NULL) return NULL;
        p = json_space(p);
        if (*p != ':') return NULL;
        ++p;
      }
      p = json_value(p, depth + 1);
      if (p == NULL) return NULL;
      p = json_space(p);
      if (*p == ',') {
        ++p;
        continue;
      }
      if (*p == close) return p + 1;
      return NULL;
    }
  }
  if (*p == '"') return json_string(p);
  if (strncmp(p, "true", 4) == 0) return p + 4;
  if (strncmp(p, "false", 5) == 0) return p + 5;
  if (strncmp(p, "null", 4) == 0) return p + 4;
  return json_number(p);
}

/* 1 when `text` is exactly one JSON object (surrounding whitespace allowed). */
static int is_json_object(const char* text) {
  const char* p = json_space(text);
  if (*p != '{') return 0;
  p = json_value(p, 0);
  return p != NULL && *json_space(p) == '\0';
}

/* The table's info as a malloc'ed string (NULL and a counted failure when the calls fail). */
static char* table_info(ek_table* table) {
  size_t length = 0;
  prime_last_error("info buffer holds 0 bytes");
  const ek_status query = ek_table_info(table, NULL, 0, &length);
  CHECK(query == EK_INVALID_ARGUMENT);
  CHECK(length > 1);
  if (query != EK_INVALID_ARGUMENT || length <= 1) return NULL;
  char* buffer = malloc(length);
  if (buffer == NULL) return NULL;
  size_t written = 0;
  EXPECT_OK(ek_table_info(table, buffer, length, &written));
  CHECK(written == length);
  CHECK(strlen(buffer) + 1 == length);
  return buffer;
}

/* A text entry point's output as a malloc'ed string: asks for the size, then fills (NULL and a
 * counted failure when the calls fail). */
typedef ek_status (*text_call)(void* context, char* buffer, size_t capacity, size_t* length);

static char* call_for_text(text_call call, void* context) {
  size_t length = 0;
  const ek_status query = call(context, NULL, 0, &length);
  CHECK(query == EK_INVALID_ARGUMENT);
  CHECK(length > 1);
  if (query != EK_INVALID_ARGUMENT || length <= 1) return NULL;
  char* buffer = malloc(length);
  if (buffer == NULL) return NULL;
  size_t written = 0;
  EXPECT_OK(call(context, buffer, length, &written));
  CHECK(written == length);
  CHECK(strlen(buffer) + 1 == length);
  return buffer;
}

/* ---------------------------------------------------------------------------------------------
 * Status codes
 * ------------------------------------------------------------------------------------------- */

static void test_status_codes(void) {
  /* The enum's values are part of the ABI. */
  CHECK(EK_OK == 0);
  CHECK(EK_INVALID_ARGUMENT == 1);
  CHECK(EK_OUT_OF_RANGE == 2);
  CHECK(EK_SHAPE_MISMATCH == 3);
  CHECK(EK_DTYPE_MISMATCH == 4);
  CHECK(EK_OUT_OF_MEMORY == 5);
  CHECK(EK_UNSUPPORTED == 6);
  CHECK(EK_IO_ERROR == 7);
  CHECK(EK_INTERNAL == 8);

  static const char* const names[] = {"EK_OK",
                                      "EK_INVALID_ARGUMENT",
                                      "EK_OUT_OF_RANGE",
                                      "EK_SHAPE_MISMATCH",
                                      "EK_DTYPE_MISMATCH",
                                      "EK_OUT_OF_MEMORY",
                                      "EK_UNSUPPORTED",
                                      "EK_IO_ERROR",
                                      "EK_INTERNAL",
                                      "EK_BUSY"};
  for (int code = 0; code <= 9; ++code) {
    const char* name = ek_status_name((ek_status)code);
    CHECK(name != NULL && strcmp(name, names[code]) == 0);
  }
  CHECK(strcmp(ek_status_name(EK_IO_ERROR), "EK_IO_ERROR") == 0);
  CHECK(strcmp(ek_status_name(EK_INTERNAL), "EK_INTERNAL") == 0);
  CHECK(strcmp(ek_status_name((ek_status)99), "EK_UNKNOWN_STATUS") == 0);
  CHECK(strcmp(ek_status_name((ek_status)10), "EK_UNKNOWN_STATUS") == 0);
  CHECK(strcmp(ek_status_name((ek_status)-1), "EK_UNKNOWN_STATUS") == 0);
}

/* The optimizers a config may name, in the enum's order, and nothing past them or before. */
static void test_optimizer_names(void) {
  static const char* const expected[] = {"sgd", "adagrad", "rowwise_adagrad", "adam", "ftrl"};
  for (int k = 0; k < 5; ++k) CHECK(ek_optimizer_name(k) != NULL && strcmp(ek_optimizer_name(k), expected[k]) == 0);
  CHECK(ek_optimizer_name(5) == NULL);
  CHECK(ek_optimizer_name(-1) == NULL);
  CHECK(ek_optimizer_name(1 << 30) == NULL);
}

static void test_version(void) {
  const char* version = ek_version();
  CHECK(version != NULL);
  if (version == NULL) return;
  unsigned major = 0, minor = 0, patch = 0;
  char rest = 0;
  CHECK(sscanf(version, "%u.%u.%u%c", &major, &minor, &patch, &rest) == 3);
  CHECK(ek_last_error() != NULL);
}

/* ---------------------------------------------------------------------------------------------
 * ek_table_create: invalid arguments, resource and support errors
 * ------------------------------------------------------------------------------------------- */

static void expect_create_fails(const char* config, ek_status status, const char* needle, const char* file, int line) {
  static int marker;
  ek_table* table = (ek_table*)(void*)&marker; /* must be left as it is */
  prime_last_error(needle);
  const ek_status got = ek_table_create(config, &table);
  check_failure(file, line, config != NULL ? config : "(NULL config)", got, status, needle);
  if (table != (ek_table*)(void*)&marker) {
    ++g_failed;
    fprintf(stderr, "%s:%d: ek_table_create changed *out on failure for %s\n", file, line,
            config != NULL ? config : "(NULL config)");
    if (got == EK_OK) ek_table_destroy(table);
  } else {
    ++g_passed;
  }
}
#define EXPECT_CREATE_FAILS(config, status, needle) \
  expect_create_fails((config), (status), (needle), __FILE__, __LINE__)

static void test_create_invalid(void) {
  /* NULL pointers. */
  EXPECT_FAIL(ek_table_create("{\"input_dim\": 3, \"output_dim\": 2}", NULL), EK_INVALID_ARGUMENT,
              "out (the ek_table** to fill) is NULL");
  EXPECT_CREATE_FAILS(NULL, EK_INVALID_ARGUMENT, "config_json is NULL");

  /* Malformed documents. */
  EXPECT_CREATE_FAILS("{\"input_dim\": 3,", EK_INVALID_ARGUMENT, "config is not valid JSON");
  EXPECT_CREATE_FAILS("", EK_INVALID_ARGUMENT, "config is not valid JSON");
  EXPECT_CREATE_FAILS("{input_dim: 3}", EK_INVALID_ARGUMENT, "config is not valid JSON");
  EXPECT_CREATE_FAILS("[3, 2]", EK_INVALID_ARGUMENT, "config must be a JSON object, got [3,2]");
  EXPECT_CREATE_FAILS("{\"input_dim\": 3, \"output_dim\": 2, \"colour\": \"red\"}", EK_INVALID_ARGUMENT,
                      "unknown config key 'colour'");
  EXPECT_CREATE_FAILS("{\"output_dim\": 2}", EK_INVALID_ARGUMENT, "config is missing the required key 'input_dim'");
  EXPECT_CREATE_FAILS("{\"input_dim\": 3}", EK_INVALID_ARGUMENT, "config is missing the required key 'output_dim'");

  /* input_dim must be a JSON integer > 0: no zero, negative, string, float or boolean. */
  EXPECT_CREATE_FAILS("{\"input_dim\": 0, \"output_dim\": 2}", EK_INVALID_ARGUMENT,
                      "input_dim must be a positive integer, got 0");
  CHECK_MESSAGE_IS("input_dim must be a positive integer, got 0");
  EXPECT_CREATE_FAILS("{\"input_dim\": -5, \"output_dim\": 2}", EK_INVALID_ARGUMENT,
                      "input_dim must be a positive integer, got -5");
  EXPECT_CREATE_FAILS("{\"input_dim\": \"3\", \"output_dim\": 2}", EK_INVALID_ARGUMENT,
                      "input_dim must be a positive integer, got \"3\"");
  EXPECT_CREATE_FAILS("{\"input_dim\": 3.7, \"output_dim\": 2}", EK_INVALID_ARGUMENT,
                      "input_dim must be a positive integer, got 3.7");
  EXPECT_CREATE_FAILS("{\"input_dim\": true, \"output_dim\": 2}", EK_INVALID_ARGUMENT,
                      "input_dim must be a positive integer, got true");
  EXPECT_CREATE_FAILS("{\"input_dim\": null, \"output_dim\": 2}", EK_INVALID_ARGUMENT,
                      "input_dim must be a positive integer, got null");
  EXPECT_CREATE_FAILS("{\"input_dim\": 3, \"output_dim\": 0}", EK_INVALID_ARGUMENT,
                      "output_dim must be a positive integer, got 0");
  EXPECT_CREATE_FAILS("{\"input_dim\": 3, \"output_dim\": 2147483648}", EK_INVALID_ARGUMENT,
                      "output_dim must be at most 2147483647, got 2147483648");

  /* Other fields. */
  EXPECT_CREATE_FAILS("{\"input_dim\": 3, \"output_dim\": 2, \"mask_zero\": 1}", EK_INVALID_ARGUMENT,
                      "mask_zero must be a boolean, got 1");
  EXPECT_CREATE_FAILS("{\"input_dim\": 3, \"output_dim\": 2, \"seed\": -1}", EK_INVALID_ARGUMENT,
                      "seed must be a non-negative integer, got -1");
  EXPECT_CREATE_FAILS("{\"input_dim\": 3, \"output_dim\": 2, \"padding_idx\": 3}", EK_INVALID_ARGUMENT,
                      "padding_idx must be in [0, input_dim) = [0, 3), got 3");
  EXPECT_CREATE_FAILS("{\"input_dim\": 3, \"output_dim\": 2, \"padding_idx\": -1}", EK_INVALID_ARGUMENT,
                      "padding_idx must be in [0, input_dim) = [0, 3), got -1");
  EXPECT_CREATE_FAILS("{\"input_dim\": 3, \"output_dim\": 2, \"bounds_check\": \"clamp\"}", EK_INVALID_ARGUMENT,
                      "bounds_check must be 'error' or 'zero_fill', got \"clamp\"");
  EXPECT_CREATE_FAILS("{\"input_dim\": 3, \"output_dim\": 2, \"placement\": \"tpu\"}", EK_INVALID_ARGUMENT,
                      "placement must be 'auto', 'cpu' or 'cuda', got \"tpu\"");
  EXPECT_CREATE_FAILS("{\"input_dim\": 3, \"output_dim\": 2, \"name\": 7}", EK_INVALID_ARGUMENT,
                      "name must be a string, got 7");
  EXPECT_CREATE_FAILS("{\"input_dim\": 3, \"output_dim\": 2, \"embeddings_initializer\": \"bogus\"}",
                      EK_INVALID_ARGUMENT, "unknown embeddings_initializer 'bogus'");
}

static void test_create_resources(void) {
  /* 10^12 x 10^6 float32 = 4 * 10^18 bytes: representable, but far more than any host has. */
  EXPECT_CREATE_FAILS("{\"input_dim\": 1000000000000, \"output_dim\": 1000000}", EK_OUT_OF_MEMORY, "needs");
  CHECK(strstr(ek_last_error(), "host memory is available") != NULL);
  /* (2^63 - 1) x 1000 x 4 bytes overflows 64 bits. */
  EXPECT_CREATE_FAILS("{\"input_dim\": 9223372036854775807, \"output_dim\": 1000}", EK_OUT_OF_MEMORY, "needs");
  CHECK(strstr(ek_last_error(), "more bytes than memory can address") != NULL);

  /* No GPU in this test's environment, whether or not the library was built with CUDA. */
  EXPECT_CREATE_FAILS("{\"input_dim\": 3, \"output_dim\": 2, \"placement\": \"cuda\"}", EK_UNSUPPORTED,
                      "placement 'cuda' was requested by the config, but");
  EXPECT_CREATE_FAILS("{\"input_dim\": 3, \"output_dim\": 2, \"embeddings_initializer\": \"orthogonal\"}",
                      EK_UNSUPPORTED, "embeddings_initializer 'orthogonal' is not supported");
  EXPECT_CREATE_FAILS("{\"input_dim\": 3, \"output_dim\": 2, \"embeddings_initializer\": \"identity\"}", EK_UNSUPPORTED,
                      "embeddings_initializer 'identity' is not supported");
}

/* ---------------------------------------------------------------------------------------------
 * The positive path on a 3 x 2 table
 * ------------------------------------------------------------------------------------------- */

static const float kW[3][2] = {{0, 0}, {2, 2}, {3, 3}};
static const float kExpected[3][2] = {{3, 3}, {2, 2}, {0, 0}}; /* rows of x = [2, 1, 0] */

static void set_w(ek_table* table) {
  float w[3][2];
  memcpy(w, kW, sizeof w);
  int64_t shape[2] = {3, 2};
  DLTensor weights = f32(&w[0][0], 2, shape);
  EXPECT_OK(ek_set_weights(table, &weights));
}

static void test_lookup_and_weights(void) {
  ek_table* table = CREATE_OK("{\"input_dim\": 3, \"output_dim\": 2, \"mask_zero\": true}");
  set_w(table);

  /* get_weights round trip. */
  float got_w[3][2];
  fill_floats(&got_w[0][0], 6, -1.0f);
  int64_t w_shape[2] = {3, 2};
  DLTensor out_w = f32(&got_w[0][0], 2, w_shape);
  EXPECT_OK(ek_get_weights(table, &out_w));
  CHECK(floats_equal(&got_w[0][0], &kW[0][0], 6));

  int64_t x_shape[1] = {3};
  int64_t out_shape[2] = {3, 2};
  float out[3][2];

  /* int32 ids. */
  int32_t x32[3] = {2, 1, 0};
  DLTensor ids32 = i32(x32, 1, x_shape);
  DLTensor out_t = f32(&out[0][0], 2, out_shape);
  fill_floats(&out[0][0], 6, -1.0f);
  EXPECT_OK(ek_lookup(table, &ids32, &out_t));
  CHECK(floats_equal(&out[0][0], &kExpected[0][0], 6));

  /* int64 ids. */
  int64_t x64[3] = {2, 1, 0};
  DLTensor ids64 = i64(x64, 1, x_shape);
  fill_floats(&out[0][0], 6, -1.0f);
  EXPECT_OK(ek_lookup(table, &ids64, &out_t));
  CHECK(floats_equal(&out[0][0], &kExpected[0][0], 6));

  /* Lookup does not change the ids. */
  CHECK(x32[0] == 2 && x32[1] == 1 && x32[2] == 0);
  CHECK(x64[0] == 2 && x64[1] == 1 && x64[2] == 0);

  /* A second set_weights replaces the whole matrix. */
  float w2[3][2] = {{10, 11}, {12, 13}, {14, 15}};
  DLTensor weights2 = f32(&w2[0][0], 2, w_shape);
  EXPECT_OK(ek_set_weights(table, &weights2));
  fill_floats(&out[0][0], 6, -1.0f);
  EXPECT_OK(ek_lookup(table, &ids32, &out_t));
  {
    const float expected[6] = {14, 15, 12, 13, 10, 11};
    CHECK(floats_equal(&out[0][0], expected, 6));
  }
  fill_floats(&got_w[0][0], 6, -1.0f);
  EXPECT_OK(ek_get_weights(table, &out_w));
  CHECK(floats_equal(&got_w[0][0], &w2[0][0], 6));

  /* set_weights copies: changing the caller's buffer afterwards changes nothing. */
  w2[0][0] = 99;
  fill_floats(&got_w[0][0], 6, -1.0f);
  EXPECT_OK(ek_get_weights(table, &out_w));
  CHECK(got_w[0][0] == 10);

  ek_table_destroy(table);
}

/* ek_lookup_new / ek_lookup_pooled_new: the library allocates the output and hands it over as a
 * DLManagedTensor; freeing a large one and asking again reuses its memory (the output cache). */
static void test_new_outputs(void) {
  ek_table* table = CREATE_OK("{\"input_dim\": 3, \"output_dim\": 2}");
  set_w(table);
  int64_t x[3] = {2, 1, 0};
  int64_t x_shape[1] = {3};
  DLTensor ids = i64(x, 1, x_shape);

  DLManagedTensor* out = NULL;
  EXPECT_OK(ek_lookup_new(table, &ids, &out));
  CHECK(out != NULL);
  if (out != NULL) {
    const DLTensor* t = &out->dl_tensor;
    CHECK(t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 2 && t->strides == NULL && t->byte_offset == 0);
    CHECK(t->dtype.code == kDLFloat && t->dtype.bits == 32 && t->dtype.lanes == 1 && t->device.device_type == kDLCPU);
    CHECK(floats_equal((const float*)t->data, &kExpected[0][0], 6));
    out->deleter(out);
  }

  /* Pooled: bags {2, 1} and {0}, summed. */
  int64_t csr[3] = {0, 2, 3};
  int64_t csr_shape[1] = {3};
  DLTensor offsets = i64(csr, 1, csr_shape);
  out = NULL;
  EXPECT_OK(ek_lookup_pooled_new(table, &ids, &offsets, NULL, "sum", &out));
  CHECK(out != NULL);
  if (out != NULL) {
    const float expected[4] = {5, 5, 0, 0};
    CHECK(out->dl_tensor.ndim == 2 && out->dl_tensor.shape[0] == 2 && out->dl_tensor.shape[1] == 2);
    CHECK(floats_equal((const float*)out->dl_tensor.data, expected, 4));
    out->deleter(out);
  }

  /* No ids: a (0, 2) tensor, still owned and freed by its deleter. */
  int64_t empty_shape[1] = {0};
  DLTensor no_ids = i64(x, 1, empty_shape);
  out = NULL;
  EXPECT_OK(ek_lookup_new(table, &no_ids, &out));
  CHECK(out != NULL && out->dl_tensor.shape[0] == 0 && out->dl_tensor.shape[1] == 2);
  if (out != NULL) out->deleter(out);

  /* Failures name the problem and leave *out as it was. */
  DLManagedTensor sentinel;
  DLManagedTensor* untouched = &sentinel;
  EXPECT_FAIL(ek_lookup_new(table, &ids, NULL), EK_INVALID_ARGUMENT, "out (the DLManagedTensor** to fill) is NULL");
  int64_t bad[3] = {2, 7, 0};
  DLTensor bad_ids = i64(bad, 1, x_shape);
  EXPECT_FAIL(ek_lookup_new(table, &bad_ids, &untouched), EK_OUT_OF_RANGE, "indices[1] = 7 is not in [0, 3)");
  CHECK(untouched == &sentinel);
  EXPECT_FAIL(ek_lookup_pooled_new(table, &ids, &offsets, NULL, "median", &untouched), EK_INVALID_ARGUMENT, "median");
  CHECK(untouched == &sentinel);
  EXPECT_FAIL(ek_lookup_pooled_new(table, &bad_ids, &offsets, NULL, "sum", &untouched), EK_OUT_OF_RANGE,
              "indices[1] = 7");
  CHECK(untouched == &sentinel);
  ek_table_destroy(table);

  /* A 2 MiB output freed, then asked for again: the same memory, rewritten whole. */
  ek_table* big = CREATE_OK("{\"input_dim\": 1000, \"output_dim\": 64}");
  enum { kIds = 8192 };
  static int64_t many[kIds];
  for (int i = 0; i < kIds; ++i) many[i] = (i * 7919) % 1000;
  int64_t many_shape[1] = {kIds};
  DLTensor many_ids = i64(many, 1, many_shape);
  static float expected[kIds * 64];
  int64_t expected_shape[2] = {kIds, 64};
  DLTensor expected_t = f32(expected, 2, expected_shape);
  EXPECT_OK(ek_lookup(big, &many_ids, &expected_t));
  DLManagedTensor* first = NULL;
  EXPECT_OK(ek_set_output_cache_capacity((size_t)64 << 20));
  EXPECT_OK(ek_lookup_new(big, &many_ids, &first));
  if (first != NULL) {
    void* data = first->dl_tensor.data;
    fill_floats((float*)data, (size_t)kIds * 64, -1.0f);
    first->deleter(first);
    DLManagedTensor* second = NULL;
    EXPECT_OK(ek_lookup_new(big, &many_ids, &second));
    if (second != NULL) {
      CHECK(second->dl_tensor.data == data);
      CHECK(floats_equal((const float*)second->dl_tensor.data, expected, (size_t)kIds * 64));
      second->deleter(second);
    }
  }
  EXPECT_OK(ek_set_output_cache_capacity(0));
  EXPECT_OK(ek_set_output_cache_capacity((size_t)1 << 30));
  ek_table_destroy(big);
}

static void test_mask(void) {
  ek_table* masked = CREATE_OK("{\"input_dim\": 3, \"output_dim\": 2, \"mask_zero\": true}");
  ek_table* plain = CREATE_OK("{\"input_dim\": 3, \"output_dim\": 2}");
  ek_table* explicit_false = CREATE_OK("{\"input_dim\": 3, \"output_dim\": 2, \"mask_zero\": false}");

  int32_t x32[3] = {2, 1, 0};
  int64_t x64[3] = {2, 1, 0};
  int64_t shape[1] = {3};
  DLTensor ids32 = i32(x32, 1, shape);
  DLTensor ids64 = i64(x64, 1, shape);
  uint8_t mask[3];
  const uint8_t expected[3] = {1, 1, 0};

  /* uint8 mask. */
  DLTensor mask_u8 = u8(mask, 1, shape);
  memset(mask, 0xAA, sizeof mask);
  EXPECT_OK(ek_compute_mask(masked, &ids32, &mask_u8));
  CHECK(memcmp(mask, expected, 3) == 0);
  memset(mask, 0xAA, sizeof mask);
  EXPECT_OK(ek_compute_mask(masked, &ids64, &mask_u8));
  CHECK(memcmp(mask, expected, 3) == 0);

  /* DLPack bool mask (code 6, 8 bits). */
  DLTensor mask_bool = make_tensor(mask, 1, shape, kBoolCode, 8);
  memset(mask, 0xAA, sizeof mask);
  EXPECT_OK(ek_compute_mask(masked, &ids32, &mask_bool));
  CHECK(memcmp(mask, expected, 3) == 0);
  memset(mask, 0xAA, sizeof mask);
  EXPECT_OK(ek_compute_mask(masked, &ids64, &mask_bool));
  CHECK(memcmp(mask, expected, 3) == 0);

  /* Without mask_zero every entry is 1, zeros included. */
  memset(mask, 0xAA, sizeof mask);
  EXPECT_OK(ek_compute_mask(plain, &ids32, &mask_u8));
  CHECK(bytes_all(mask, 3, 1));
  memset(mask, 0xAA, sizeof mask);
  EXPECT_OK(ek_compute_mask(explicit_false, &ids64, &mask_bool));
  CHECK(bytes_all(mask, 3, 1));

  /* A 2-D mask, and ids the table would reject in a lookup: the mask does not range-check. */
  int64_t x2[2][3] = {{0, 5, 0}, {7, 0, -3}};
  int64_t shape2[2] = {2, 3};
  uint8_t mask2[2][3];
  DLTensor ids2 = i64(&x2[0][0], 2, shape2);
  DLTensor mask2_t = u8(&mask2[0][0], 2, shape2);
  memset(mask2, 0xAA, sizeof mask2);
  EXPECT_OK(ek_compute_mask(masked, &ids2, &mask2_t));
  {
    const uint8_t want[6] = {0, 1, 0, 1, 0, 1};
    CHECK(memcmp(&mask2[0][0], want, 6) == 0);
  }

  /* 0-d ids with NULL shapes. */
  int32_t zero = 0, two = 2;
  uint8_t scalar_mask = 0xAA;
  DLTensor zero_t = i32(&zero, 0, NULL);
  DLTensor two_t = i32(&two, 0, NULL);
  DLTensor scalar_mask_t = u8(&scalar_mask, 0, NULL);
  EXPECT_OK(ek_compute_mask(masked, &zero_t, &scalar_mask_t));
  CHECK(scalar_mask == 0);
  EXPECT_OK(ek_compute_mask(masked, &two_t, &scalar_mask_t));
  CHECK(scalar_mask == 1);

  /* Empty masks with NULL data, under both modes. */
  int64_t empty_shape[1] = {0};
  DLTensor empty_ids = i32(NULL, 1, empty_shape);
  DLTensor empty_mask = u8(NULL, 1, empty_shape);
  EXPECT_OK(ek_compute_mask(masked, &empty_ids, &empty_mask));
  EXPECT_OK(ek_compute_mask(plain, &empty_ids, &empty_mask));

  ek_table_destroy(masked);
  ek_table_destroy(plain);
  ek_table_destroy(explicit_false);
}

static void test_tensor_layouts(void) {
  ek_table* table = CREATE_OK("{\"input_dim\": 3, \"output_dim\": 2}");
  set_w(table);

  /* 0-d index with a NULL shape: out has shape (output_dim,). */
  {
    int32_t x = 2;
    DLTensor ids = i32(&x, 0, NULL);
    float out[2] = {-1, -1};
    int64_t out_shape[1] = {2};
    DLTensor out_t = f32(out, 1, out_shape);
    EXPECT_OK(ek_lookup(table, &ids, &out_t));
    CHECK(out[0] == 3 && out[1] == 3);
    /* A 0-d tensor may also carry a non-NULL shape pointer. */
    int64_t unused_shape[1] = {12345};
    DLTensor ids_shape = i32(&x, 0, unused_shape);
    fill_floats(out, 2, -1.0f);
    EXPECT_OK(ek_lookup(table, &ids_shape, &out_t));
    CHECK(out[0] == 3 && out[1] == 3);
  }

  /* Empty batches with NULL data: (0,) and (2, 0). */
  {
    int64_t ids_shape[1] = {0};
    int64_t out_shape[2] = {0, 2};
    DLTensor ids = i64(NULL, 1, ids_shape);
    DLTensor out_t = f32(NULL, 2, out_shape);
    EXPECT_OK(ek_lookup(table, &ids, &out_t));
    int64_t ids_shape2[2] = {2, 0};
    int64_t out_shape2[3] = {2, 0, 2};
    DLTensor ids2 = i32(NULL, 2, ids_shape2);
    DLTensor out2 = f32(NULL, 3, out_shape2);
    EXPECT_OK(ek_lookup(table, &ids2, &out2));
    /* An empty out must still have the right shape. */
    int64_t wrong_shape[3] = {2, 0, 3};
    DLTensor wrong = f32(NULL, 3, wrong_shape);
    EXPECT_FAIL(ek_lookup(table, &ids2, &wrong), EK_SHAPE_MISMATCH, "out shape must be (2, 0, 2), got (2, 0, 3)");
  }

  /* A rank-4 index tensor (1, 2, 1, 3). */
  {
    int32_t x[6] = {0, 1, 2, 2, 1, 0};
    int64_t ids_shape[4] = {1, 2, 1, 3};
    int64_t out_shape[5] = {1, 2, 1, 3, 2};
    float out[12];
    fill_floats(out, 12, -1.0f);
    DLTensor ids = i32(x, 4, ids_shape);
    DLTensor out_t = f32(out, 5, out_shape);
    EXPECT_OK(ek_lookup(table, &ids, &out_t));
    const float expected[12] = {0, 0, 2, 2, 3, 3, 3, 3, 2, 2, 0, 0};
    CHECK(floats_equal(out, expected, 12));
  }

  /* Explicit compact strides are accepted. */
  {
    int64_t x[2][3] = {{0, 1, 2}, {2, 2, 1}};
    int64_t ids_shape[2] = {2, 3}, ids_strides[2] = {3, 1};
    int64_t out_shape[3] = {2, 3, 2}, out_strides[3] = {6, 2, 1};
    float out[12];
    fill_floats(out, 12, -1.0f);
    DLTensor ids = i64(&x[0][0], 2, ids_shape);
    ids.strides = ids_strides;
    DLTensor out_t = f32(out, 3, out_shape);
    out_t.strides = out_strides;
    EXPECT_OK(ek_lookup(table, &ids, &out_t));
    const float expected[12] = {0, 0, 2, 2, 3, 3, 3, 3, 3, 3, 2, 2};
    CHECK(floats_equal(out, expected, 12));
  }

  /* Strides along size-1 (and size-0) dims are never used, so any value is accepted. */
  {
    int32_t x[3] = {1, 2, 0};
    int64_t ids_shape[2] = {1, 3}, ids_strides[2] = {999, 1};
    int64_t out_shape[3] = {1, 3, 2}, out_strides[3] = {-42, 2, 1};
    float out[6];
    fill_floats(out, 6, -1.0f);
    DLTensor ids = i32(x, 2, ids_shape);
    ids.strides = ids_strides;
    DLTensor out_t = f32(out, 3, out_shape);
    out_t.strides = out_strides;
    EXPECT_OK(ek_lookup(table, &ids, &out_t));
    const float expected[6] = {2, 2, 3, 3, 0, 0};
    CHECK(floats_equal(out, expected, 6));

    int64_t w_shape[2] = {3, 2}, w_strides[2] = {2, 1};
    float w[6];
    fill_floats(w, 6, -1.0f);
    DLTensor w_t = f32(w, 2, w_shape);
    w_t.strides = w_strides;
    EXPECT_OK(ek_get_weights(table, &w_t));
    CHECK(floats_equal(w, &kW[0][0], 6));
    EXPECT_OK(ek_set_weights(table, &w_t));

    int64_t empty_shape[2] = {0, 3}, empty_strides[2] = {7, 1};
    int64_t empty_out_shape[3] = {0, 3, 2}, empty_out_strides[3] = {0, 2, 1};
    DLTensor empty_ids = i32(NULL, 2, empty_shape);
    empty_ids.strides = empty_strides;
    DLTensor empty_out = f32(NULL, 3, empty_out_shape);
    empty_out.strides = empty_out_strides;
    EXPECT_OK(ek_lookup(table, &empty_ids, &empty_out));
  }

  /* An aligned byte_offset is honoured. */
  {
    int32_t x[4] = {77, 2, 1, 0}; /* the first entry is skipped by byte_offset 4 */
    int64_t ids_shape[1] = {3};
    float out_storage[1 + 6];
    fill_floats(out_storage, 7, -1.0f);
    int64_t out_shape[2] = {3, 2};
    DLTensor ids = i32(x, 1, ids_shape);
    ids.byte_offset = sizeof(int32_t);
    DLTensor out_t = f32(out_storage, 2, out_shape);
    out_t.byte_offset = sizeof(float);
    EXPECT_OK(ek_lookup(table, &ids, &out_t));
    CHECK(out_storage[0] == -1.0f);
    CHECK(floats_equal(out_storage + 1, &kExpected[0][0], 6));
  }

  /* Pinned host memory (kDLCUDAHost) is host memory: accepted for every tensor. */
  {
    int64_t x[3] = {2, 1, 0};
    int64_t ids_shape[1] = {3};
    float out[6];
    int64_t out_shape[2] = {3, 2};
    fill_floats(out, 6, -1.0f);
    DLTensor ids = i64(x, 1, ids_shape);
    ids.device.device_type = kDLCUDAHost;
    DLTensor out_t = f32(out, 2, out_shape);
    out_t.device.device_type = kDLCUDAHost;
    EXPECT_OK(ek_lookup(table, &ids, &out_t));
    CHECK(floats_equal(out, &kExpected[0][0], 6));
    uint8_t mask[3];
    DLTensor mask_t = u8(mask, 1, ids_shape);
    mask_t.device.device_type = kDLCUDAHost;
    EXPECT_OK(ek_compute_mask(table, &ids, &mask_t));
    CHECK(bytes_all(mask, 3, 1));
    float w[6];
    int64_t w_shape[2] = {3, 2};
    DLTensor w_t = f32(w, 2, w_shape);
    w_t.device.device_type = kDLCUDAHost;
    EXPECT_OK(ek_get_weights(table, &w_t));
    EXPECT_OK(ek_set_weights(table, &w_t));
    CHECK(floats_equal(w, &kW[0][0], 6));
  }

  ek_table_destroy(table);
}

/* ---------------------------------------------------------------------------------------------
 * ek_table_summary
 * ------------------------------------------------------------------------------------------- */

struct summary_call {
  ek_table* table;
  const DLTensor* batch;
};

static ek_status summary_of(void* context, char* buffer, size_t capacity, size_t* length) {
  const struct summary_call* call = context;
  return ek_table_summary(call->table, call->batch, buffer, capacity, length);
}

static void test_summary(void) {
  ek_table* table = CREATE_OK(
      "{\"input_dim\": 3, \"output_dim\": 2, \"mask_zero\": true, \"name\": \"tiny\", \"placement\": \"cpu\"}");
  struct summary_call call = {table, NULL};
  char* text = call_for_text(summary_of, &call);
  CHECK(text != NULL);
  if (text != NULL) {
    CHECK(strncmp(text, "Table 'tiny'\n", strlen("Table 'tiny'\n")) == 0);
    CHECK(strstr(text, "\n  rows x dim      3 x 2 (6 parameters, trainable)\n") != NULL);
    CHECK(strstr(text, "\n  weights         24 bytes\n") != NULL);
    CHECK(strstr(text, "\n  placement       cpu (cpu_requested: ") != NULL);
    CHECK(strstr(text, "output") == NULL); /* no batch, no output line */
    CHECK(text[strlen(text) - 1] == '\n');
    free(text);
  }

  /* With a batch: its output shape and bytes, and the padding under mask_zero. */
  int64_t ids[6] = {1, 0, 0, 2, 2, 0};
  int64_t shape[2] = {2, 3};
  DLTensor batch = i64(ids, 2, shape);
  call.batch = &batch;
  text = call_for_text(summary_of, &call);
  CHECK(text != NULL);
  if (text != NULL) {
    CHECK(strstr(text, "\n  output          (2, 3, 2) float32 = 48 bytes\n") != NULL);
    CHECK(strstr(text, "\n  padding         3 of 6 ids are 0 (masked by mask_zero): 3 effective (50.0%)\n") != NULL);
    free(text);
  }

  /* Too small a buffer: nothing written; a batch of floats: EK_DTYPE_MISMATCH naming it. */
  char small[8];
  memset(small, 'Z', sizeof small);
  size_t length = 0;
  EXPECT_FAIL(ek_table_summary(table, NULL, small, sizeof small, &length), EK_INVALID_ARGUMENT,
              "summary buffer holds 8 bytes");
  CHECK(length > sizeof small);
  CHECK(small[0] == 'Z' && small[7] == 'Z');
  float values[2] = {1.0f, 2.0f};
  int64_t two[1] = {2};
  DLTensor floats = f32(values, 1, two);
  EXPECT_FAIL(ek_table_summary(table, &floats, NULL, 0, &length), EK_DTYPE_MISMATCH,
              "batch must be int32 or int64, got float32");
  EXPECT_FAIL(ek_table_summary(NULL, NULL, NULL, 0, &length), EK_INVALID_ARGUMENT, "table is NULL");
  EXPECT_FAIL(ek_table_summary(table, NULL, small, sizeof small, NULL), EK_INVALID_ARGUMENT, "length is NULL");
  ek_table_destroy(table);
}

/* ---------------------------------------------------------------------------------------------
 * ek_plan
 * ------------------------------------------------------------------------------------------- */

struct plan_call {
  const char* request;
  int as_json;
};

static ek_status plan_of(void* context, char* buffer, size_t capacity, size_t* length) {
  const struct plan_call* call = context;
  return ek_plan(call->request, call->as_json, buffer, capacity, length);
}

static void test_plan(void) {
  /* 10M x 64 with Adam on a hypothetical 80 GiB device: fits; the bytes are the table's. */
  struct plan_call call = {
      "{\"rows\": 10000000, \"dim\": 64, \"optimizer\": \"adam\", \"gpu_memory\": \"80GiB\", "
      "\"max_batch_lookups\": 65536}",
      1};
  char* text = call_for_text(plan_of, &call);
  CHECK(text != NULL);
  if (text != NULL) {
    CHECK(is_json_object(text));
    CHECK(strstr(text, "\"device\": \"cuda:0 (hypothetical)\"") != NULL);
    CHECK(strstr(text, "\"reason_code\": \"fits_on_device\"") != NULL);
    CHECK(strstr(text, "\"weights\": 2560000000") != NULL);         /* 10M x 64 x 4 */
    CHECK(strstr(text, "\"optimizer_state\": 5120000000") != NULL); /* two moments */
    CHECK(strstr(text, "\"device_free_bytes\": 85899345920") != NULL);
    free(text);
  }

  /* The text form, as `embedkit plan` prints it; the device given in bytes. */
  call.request =
      "{\"rows\": 100000000, \"dim\": 128, \"optimizer\": {\"class_name\": \"Adam\", \"config\": {}}, "
      "\"gpu_memory\": 17179869184}";
  call.as_json = 0;
  text = call_for_text(plan_of, &call);
  CHECK(text != NULL);
  if (text != NULL) {
    const char* first_line = "table of 100000000 x 128, adam, batches up to 262144 lookups\n";
    CHECK(strncmp(text, first_line, strlen(first_line)) == 0);
    CHECK(strstr(text, "\n  weights          47.68 GiB (51,200,000,000 bytes)\n") != NULL);
    CHECK(strstr(text, "\n  device free      16.00 GiB (17,179,869,184 bytes)\n") != NULL);
    CHECK(strstr(text, "\nplacement: cpu (does_not_fit)\n  ") != NULL);
    free(text);
  }

  size_t length = 0;
  EXPECT_FAIL(ek_plan(NULL, 0, NULL, 0, &length), EK_INVALID_ARGUMENT, "request_json is NULL");
  EXPECT_FAIL(ek_plan("[1]", 0, NULL, 0, &length), EK_INVALID_ARGUMENT, "plan request must be a JSON object, got [1]");
  EXPECT_FAIL(ek_plan("{\"rows\": 5}", 0, NULL, 0, &length), EK_INVALID_ARGUMENT, "missing the required key 'dim'");
  EXPECT_FAIL(ek_plan("{\"rows\": 5, \"dim\": 4, \"colour\": 1}", 0, NULL, 0, &length), EK_INVALID_ARGUMENT,
              "unknown plan request key 'colour'");
  EXPECT_FAIL(ek_plan("{\"rows\": 0, \"dim\": 4}", 0, NULL, 0, &length), EK_INVALID_ARGUMENT,
              "rows must be a positive integer, got 0");
  EXPECT_FAIL(ek_plan("{\"rows\": 5, \"dim\": 4, \"gpu_memory\": \"lots\"}", 0, NULL, 0, &length), EK_INVALID_ARGUMENT,
              "'lots' is not a size");
  EXPECT_FAIL(ek_plan("{\"rows\": 5, \"dim\": 4, \"optimizer\": \"rmsprop\"}", 0, NULL, 0, &length),
              EK_INVALID_ARGUMENT, "rmsprop");
}

/* ---------------------------------------------------------------------------------------------
 * ek_table_info
 * ------------------------------------------------------------------------------------------- */

static void test_info(void) {
  ek_table* table =
      CREATE_OK("{\"input_dim\": 3, \"output_dim\": 2, \"mask_zero\": true, \"seed\": 1234, \"name\": \"tiny\"}");

  /* Asking with a NULL buffer and capacity 0: EK_INVALID_ARGUMENT, *length = size with the NUL. */
  size_t needed = 0;
  EXPECT_FAIL(ek_table_info(table, NULL, 0, &needed), EK_INVALID_ARGUMENT, "info buffer holds 0 bytes");
  CHECK(needed > 2);

  char* info = table_info(table);
  CHECK(info != NULL);
  if (info != NULL) {
    CHECK(strlen(info) + 1 == needed);
    CHECK(is_json_object(info));
    CHECK(strstr(info, "\"input_dim\":3") != NULL);
    CHECK(strstr(info, "\"output_dim\":2") != NULL);
    CHECK(strstr(info, "\"name\":\"tiny\"") != NULL);
    CHECK(strstr(info, "\"placement\"") != NULL);
    CHECK(strstr(info, "\"reason_code\"") != NULL);
    CHECK(strstr(info, "\"device\":\"cpu\"") != NULL);
    CHECK(strstr(info, "\"bytes\"") != NULL);
    CHECK(strstr(info, "\"weights\":24") != NULL); /* 3 x 2 x 4 bytes */
    CHECK(strstr(info, "\"seed\":1234") != NULL);
    CHECK(strstr(info, "\"step\":0") != NULL);
    CHECK(strstr(info, "\"mask_zero\":true") != NULL);
    CHECK(strstr(info, "\"out_of_range_ids\":0") != NULL);
    {
      char version_field[64];
      snprintf(version_field, sizeof version_field, "\"embedkit_version\":\"%s\"", ek_version());
      CHECK(strstr(info, version_field) != NULL);
    }

    /* Too small by one: nothing written, *length says how many, EK_INVALID_ARGUMENT. */
    char* small = malloc(needed + 8);
    if (small != NULL) {
      memset(small, 'Z', needed + 8);
      size_t length = 0;
      EXPECT_FAIL(ek_table_info(table, small, needed - 1, &length), EK_INVALID_ARGUMENT, "info buffer holds");
      CHECK(length == needed);
      CHECK(strstr(ek_last_error(), "(including the NUL)") != NULL);
      int untouched = 1;
      for (size_t i = 0; i < needed + 8; ++i) untouched = untouched && small[i] == 'Z';
      CHECK(untouched);

      /* A capacity of 1, and a capacity of 0 with a real buffer. */
      length = 0;
      EXPECT_FAIL(ek_table_info(table, small, 1, &length), EK_INVALID_ARGUMENT, "info buffer holds 1 bytes");
      CHECK(length == needed);
      length = 0;
      EXPECT_FAIL(ek_table_info(table, small, 0, &length), EK_INVALID_ARGUMENT, "info buffer holds 0 bytes");
      CHECK(length == needed);
      untouched = 1;
      for (size_t i = 0; i < needed + 8; ++i) untouched = untouched && small[i] == 'Z';
      CHECK(untouched);

      /* Exactly enough, and more than enough: the bytes after the NUL are left alone. */
      length = 0;
      EXPECT_OK(ek_table_info(table, small, needed, &length));
      CHECK(length == needed);
      CHECK(strcmp(small, info) == 0);
      memset(small, 'Z', needed + 8);
      length = 0;
      EXPECT_OK(ek_table_info(table, small, needed + 8, &length));
      CHECK(length == needed);
      CHECK(strcmp(small, info) == 0);
      CHECK(small[needed] == 'Z');
      free(small);
    }
    free(info);
  }

  /* NULL pointers. */
  char buffer[8];
  size_t length = 0;
  EXPECT_FAIL(ek_table_info(table, buffer, sizeof buffer, NULL), EK_INVALID_ARGUMENT, "length is NULL");
  EXPECT_FAIL(ek_table_info(NULL, buffer, sizeof buffer, &length), EK_INVALID_ARGUMENT, "table is NULL");

  /* Placement: 'cpu' is always honoured and reported as asked for. */
  ek_table* on_cpu = CREATE_OK("{\"input_dim\": 4, \"output_dim\": 8, \"placement\": \"cpu\"}");
  char* cpu_info = table_info(on_cpu);
  if (cpu_info != NULL) {
    CHECK(is_json_object(cpu_info));
    CHECK(strstr(cpu_info, "\"reason_code\":\"cpu_requested\"") != NULL);
    CHECK(strstr(cpu_info, "\"weights\":128") != NULL);
    CHECK(strstr(cpu_info, "\"seed\":") != NULL); /* drawn, and recorded */
    free(cpu_info);
  }

  /* A seed is recorded as given, up to 2^64 - 1. */
  ek_table* big_seed = CREATE_OK("{\"input_dim\": 2, \"output_dim\": 2, \"seed\": 18446744073709551615}");
  char* big_info = table_info(big_seed);
  if (big_info != NULL) {
    CHECK(strstr(big_info, "\"seed\":18446744073709551615") != NULL);
    free(big_info);
  }

  ek_table_destroy(big_seed);
  ek_table_destroy(on_cpu);
  ek_table_destroy(table);
}

static void test_seeds(void) {
  /* The same seed gives the same initial weights; the default initializer is U[-0.05, 0.05). */
  enum { kSeedRows = 50, kSeedDim = 8, kCount = kSeedRows * kSeedDim };
  const char* config42 = "{\"input_dim\": 50, \"output_dim\": 8, \"seed\": 42}";
  ek_table* a = CREATE_OK(config42);
  ek_table* b = CREATE_OK(config42);
  ek_table* c = CREATE_OK("{\"input_dim\": 50, \"output_dim\": 8, \"seed\": 43}");
  static float wa[kCount], wb[kCount], wc[kCount];
  int64_t shape[2] = {kSeedRows, kSeedDim};
  DLTensor ta = f32(wa, 2, shape), tb = f32(wb, 2, shape), tc = f32(wc, 2, shape);
  EXPECT_OK(ek_get_weights(a, &ta));
  EXPECT_OK(ek_get_weights(b, &tb));
  EXPECT_OK(ek_get_weights(c, &tc));
  CHECK(floats_equal(wa, wb, kCount));
  CHECK(!floats_equal(wa, wc, kCount));
  int in_range = 1, all_zero = 1;
  for (int i = 0; i < kCount; ++i) {
    in_range = in_range && wa[i] >= -0.05f && wa[i] <= 0.05f && !isnan(wa[i]);
    all_zero = all_zero && wa[i] == 0.0f;
  }
  CHECK(in_range);
  CHECK(!all_zero);

  /* A named initializer. */
  ek_table* ones = CREATE_OK("{\"input_dim\": 50, \"output_dim\": 8, \"embeddings_initializer\": \"ones\"}");
  DLTensor t1 = f32(wa, 2, shape);
  EXPECT_OK(ek_get_weights(ones, &t1));
  CHECK(all_floats_equal(wa, kCount, 1.0f));

  ek_table_destroy(ones);
  ek_table_destroy(a);
  ek_table_destroy(b);
  ek_table_destroy(c);
}

/* ---------------------------------------------------------------------------------------------
 * padding_idx and bounds_check
 * ------------------------------------------------------------------------------------------- */

static void test_padding_idx(void) {
  ek_table* table = CREATE_OK("{\"input_dim\": 3, \"output_dim\": 2, \"padding_idx\": 1}");
  set_w(table);
  int32_t x[4] = {1, 2, 1, 0};
  int64_t shape[1] = {4};
  int64_t out_shape[2] = {4, 2};
  float out[8];
  fill_floats(out, 8, -1.0f);
  DLTensor ids = i32(x, 1, shape);
  DLTensor out_t = f32(out, 2, out_shape);
  EXPECT_OK(ek_lookup(table, &ids, &out_t));
  const float expected[8] = {0, 0, 3, 3, 0, 0, 0, 0};
  CHECK(floats_equal(out, expected, 8));
  ek_table_destroy(table);

  /* padding_idx null means none. */
  ek_table* none = CREATE_OK("{\"input_dim\": 3, \"output_dim\": 2, \"padding_idx\": null}");
  set_w(none);
  fill_floats(out, 8, -1.0f);
  EXPECT_OK(ek_lookup(none, &ids, &out_t));
  const float expected_none[8] = {2, 2, 3, 3, 2, 2, 0, 0};
  CHECK(floats_equal(out, expected_none, 8));
  ek_table_destroy(none);
}

static void test_zero_fill(void) {
  ek_table* table = CREATE_OK("{\"input_dim\": 3, \"output_dim\": 2, \"bounds_check\": \"zero_fill\"}");
  set_w(table);
  int64_t x[4] = {2, 7, -1, 1};
  int64_t shape[1] = {4};
  int64_t out_shape[2] = {4, 2};
  float out[8];
  fill_floats(out, 8, -1.0f);
  DLTensor ids = i64(x, 1, shape);
  DLTensor out_t = f32(out, 2, out_shape);
  EXPECT_OK(ek_lookup(table, &ids, &out_t));
  const float expected[8] = {3, 3, 0, 0, 0, 0, 2, 2};
  CHECK(floats_equal(out, expected, 8));

  /* int32 too, and a 0-d id. */
  int32_t x32[2] = {INT32_MIN, INT32_MAX};
  int64_t shape2[1] = {2};
  int64_t out_shape2[2] = {2, 2};
  DLTensor ids32 = i32(x32, 1, shape2);
  DLTensor out2 = f32(out, 2, out_shape2);
  fill_floats(out, 8, -1.0f);
  EXPECT_OK(ek_lookup(table, &ids32, &out2));
  CHECK(all_floats_equal(out, 4, 0.0f));
  CHECK(all_floats_equal(out + 4, 4, -1.0f));
  int64_t big = INT64_MAX;
  int64_t out_shape0[1] = {2};
  DLTensor id0 = i64(&big, 0, NULL);
  DLTensor out0 = f32(out, 1, out_shape0);
  fill_floats(out, 8, -1.0f);
  EXPECT_OK(ek_lookup(table, &id0, &out0));
  CHECK(out[0] == 0.0f && out[1] == 0.0f);

  /* The bad ids are counted in the info: 2 + 2 + 1. */
  char* info = table_info(table);
  if (info != NULL) {
    CHECK(strstr(info, "\"out_of_range_ids\":5") != NULL);
    CHECK(strstr(info, "\"bounds_check\":\"zero_fill\"") != NULL);
    free(info);
  }
  ek_table_destroy(table);
}

/* ---------------------------------------------------------------------------------------------
 * Tensor validation: EK_INVALID_ARGUMENT, EK_DTYPE_MISMATCH, EK_UNSUPPORTED
 * ------------------------------------------------------------------------------------------- */

static void test_null_arguments(void) {
  ek_table* table = CREATE_OK("{\"input_dim\": 3, \"output_dim\": 2}");
  int32_t x[3] = {0, 1, 2};
  int64_t shape[1] = {3};
  int64_t out_shape[2] = {3, 2};
  float out[6];
  uint8_t mask[3];
  float w[6];
  int64_t w_shape[2] = {3, 2};
  DLTensor ids = i32(x, 1, shape);
  DLTensor out_t = f32(out, 2, out_shape);
  DLTensor mask_t = u8(mask, 1, shape);
  DLTensor w_t = f32(w, 2, w_shape);

  EXPECT_FAIL(ek_lookup(NULL, &ids, &out_t), EK_INVALID_ARGUMENT, "table is NULL");
  CHECK_MESSAGE_IS("table is NULL");
  EXPECT_FAIL(ek_compute_mask(NULL, &ids, &mask_t), EK_INVALID_ARGUMENT, "table is NULL");
  EXPECT_FAIL(ek_get_weights(NULL, &w_t), EK_INVALID_ARGUMENT, "table is NULL");
  EXPECT_FAIL(ek_set_weights(NULL, &w_t), EK_INVALID_ARGUMENT, "table is NULL");

  EXPECT_FAIL(ek_lookup(table, NULL, &out_t), EK_INVALID_ARGUMENT, "indices is NULL");
  CHECK_MESSAGE_IS("indices is NULL");
  EXPECT_FAIL(ek_lookup(table, &ids, NULL), EK_INVALID_ARGUMENT, "out is NULL");
  CHECK_MESSAGE_IS("out is NULL");
  EXPECT_FAIL(ek_compute_mask(table, NULL, &mask_t), EK_INVALID_ARGUMENT, "indices is NULL");
  EXPECT_FAIL(ek_compute_mask(table, &ids, NULL), EK_INVALID_ARGUMENT, "mask is NULL");
  EXPECT_FAIL(ek_get_weights(table, NULL), EK_INVALID_ARGUMENT, "out is NULL");
  EXPECT_FAIL(ek_set_weights(table, NULL), EK_INVALID_ARGUMENT, "weights is NULL");

  ek_table_destroy(table);
}

static void test_bad_tensors(void) {
  ek_table* table = CREATE_OK("{\"input_dim\": 10, \"output_dim\": 4}");
  int32_t x[6] = {0, 1, 2, 3, 4, 5};
  int64_t shape[2] = {2, 3};
  int64_t out_shape[3] = {2, 3, 4};
  float out[24];
  DLTensor out_t = f32(out, 3, out_shape);
  fill_floats(out, 24, -7.5f);

  /* Rank. */
  {
    DLTensor ids = i32(x, -1, shape);
    EXPECT_FAIL(ek_lookup(table, &ids, &out_t), EK_INVALID_ARGUMENT, "indices has ndim -1, expected 0 to 33");
    int64_t deep[40];
    for (int i = 0; i < 40; ++i) deep[i] = 1;
    DLTensor deep_ids = i32(x, 40, deep);
    EXPECT_FAIL(ek_lookup(table, &deep_ids, &out_t), EK_INVALID_ARGUMENT, "indices has ndim 40, expected 0 to 33");
    DLTensor deep_out = f32(out, 40, deep);
    DLTensor one = i32(x, 0, NULL);
    EXPECT_FAIL(ek_lookup(table, &one, &deep_out), EK_INVALID_ARGUMENT, "out has ndim 40, expected 0 to 33");
    /* Ids may have rank 32, their output rank 33; ids of rank 33 are refused. */
    int64_t rank33_out_shape[33];
    for (int i = 0; i < 32; ++i) rank33_out_shape[i] = 1;
    rank33_out_shape[32] = 4;
    DLTensor rank32 = i32(x + 3, 32, deep);
    DLTensor rank33 = i32(x + 3, 33, deep);
    float out33[4] = {-1, -1, -1, -1};
    DLTensor rank33_out = f32(out33, 33, rank33_out_shape);
    EXPECT_OK(ek_lookup(table, &rank32, &rank33_out));
    CHECK(out33[0] != -1.0f);
    EXPECT_FAIL(ek_lookup(table, &rank33, &rank33_out), EK_INVALID_ARGUMENT,
                "indices rank 33 exceeds the maximum of 32");
    uint8_t mask32 = 0xAA;
    DLTensor mask32_t = u8(&mask32, 32, deep);
    EXPECT_OK(ek_compute_mask(table, &rank32, &mask32_t));
    CHECK(mask32 == 1);
  }

  /* NULL shape with ndim > 0. */
  {
    DLTensor ids = i32(x, 2, NULL);
    EXPECT_FAIL(ek_lookup(table, &ids, &out_t), EK_INVALID_ARGUMENT, "indices has ndim 2 but a NULL shape");
    DLTensor ids_ok = i32(x, 2, shape);
    DLTensor out_null_shape = f32(out, 3, NULL);
    EXPECT_FAIL(ek_lookup(table, &ids_ok, &out_null_shape), EK_INVALID_ARGUMENT, "out has ndim 3 but a NULL shape");
  }

  /* Negative dimension, and a product that overflows int64. */
  {
    int64_t negative[2] = {2, -3};
    DLTensor ids = i32(x, 2, negative);
    EXPECT_FAIL(ek_lookup(table, &ids, &out_t), EK_INVALID_ARGUMENT, "indices has a negative dimension: shape[1] = -3");
    int64_t huge[2] = {INT64_C(4294967296), INT64_C(4294967296)};
    DLTensor big = i32(x, 2, huge);
    EXPECT_FAIL(ek_lookup(table, &big, &out_t), EK_INVALID_ARGUMENT,
                "indices shape (4294967296, 4294967296) has more elements than memory can address");
    int64_t huge3[3] = {INT64_C(3037000500), INT64_C(3037000500), 2};
    int64_t dummy[1] = {0};
    DLTensor big3 = i64(dummy, 3, huge3);
    EXPECT_FAIL(ek_lookup(table, &big3, &out_t), EK_INVALID_ARGUMENT, "has more elements than memory can address");
    /* A zero extent after an overflowing prefix makes an empty tensor, which is fine. */
    int64_t zero_after[3] = {INT64_C(4294967296), INT64_C(4294967296), 0};
    int64_t zero_out[4] = {INT64_C(4294967296), INT64_C(4294967296), 0, 4};
    DLTensor empty = i32(NULL, 3, zero_after);
    DLTensor empty_out = f32(NULL, 4, zero_out);
    EXPECT_OK(ek_lookup(table, &empty, &empty_out));
  }

  /* Strides that are not compact row-major. */
  {
    int64_t strides[2] = {1, 2};
    DLTensor ids = i32(x, 2, shape);
    ids.strides = strides;
    EXPECT_FAIL(ek_lookup(table, &ids, &out_t), EK_INVALID_ARGUMENT,
                "indices has strides (1, 2), but embedkit needs compact row-major tensors (strides (3, 1) or NULL)");
    int64_t padded[2] = {4, 1};
    ids.strides = padded;
    EXPECT_FAIL(ek_lookup(table, &ids, &out_t), EK_INVALID_ARGUMENT, "indices has strides (4, 1)");
    DLTensor ids_ok = i32(x, 2, shape);
    int64_t out_strides[3] = {12, 4, 2};
    DLTensor strided_out = f32(out, 3, out_shape);
    strided_out.strides = out_strides;
    EXPECT_FAIL(
        ek_lookup(table, &ids_ok, &strided_out), EK_INVALID_ARGUMENT,
        "out has strides (12, 4, 2), but embedkit needs compact row-major tensors (strides (12, 4, 1) or NULL)");
  }

  /* Misaligned byte_offset. */
  {
    DLTensor ids = i32(x, 2, shape);
    ids.byte_offset = 2;
    EXPECT_FAIL(ek_lookup(table, &ids, &out_t), EK_INVALID_ARGUMENT,
                "indices data + byte_offset 2 is not aligned to its 4-byte elements");
    int64_t x64[6] = {0, 1, 2, 3, 4, 5};
    DLTensor ids64 = i64(x64, 2, shape);
    ids64.byte_offset = 4;
    EXPECT_FAIL(ek_lookup(table, &ids64, &out_t), EK_INVALID_ARGUMENT,
                "indices data + byte_offset 4 is not aligned to its 8-byte elements");
    /* A misaligned data pointer with byte_offset 0. */
    DLTensor odd = make_tensor((char*)x + 1, 2, shape, kDLInt, 32);
    EXPECT_FAIL(ek_lookup(table, &odd, &out_t), EK_INVALID_ARGUMENT, "is not aligned to its 4-byte elements");
    DLTensor ids_ok = i32(x, 2, shape);
    DLTensor out_odd = f32(out, 3, out_shape);
    out_odd.byte_offset = 1;
    EXPECT_FAIL(ek_lookup(table, &ids_ok, &out_odd), EK_INVALID_ARGUMENT,
                "out data + byte_offset 1 is not aligned to its 4-byte elements");
  }

  /* NULL data with a non-empty shape. */
  {
    DLTensor ids = i32(NULL, 2, shape);
    EXPECT_FAIL(ek_lookup(table, &ids, &out_t), EK_INVALID_ARGUMENT,
                "indices data is NULL for a non-empty shape (2, 3)");
    DLTensor ids_ok = i32(x, 2, shape);
    DLTensor null_out = f32(NULL, 3, out_shape);
    EXPECT_FAIL(ek_lookup(table, &ids_ok, &null_out), EK_INVALID_ARGUMENT,
                "out data is NULL for a non-empty shape (2, 3, 4)");
    DLTensor scalar = i32(NULL, 0, NULL);
    EXPECT_FAIL(ek_lookup(table, &scalar, &out_t), EK_INVALID_ARGUMENT,
                "indices data is NULL for a non-empty shape ()");
    int64_t w_shape[2] = {10, 4};
    DLTensor null_w = f32(NULL, 2, w_shape);
    EXPECT_FAIL(ek_set_weights(table, &null_w), EK_INVALID_ARGUMENT,
                "weights data is NULL for a non-empty shape (10, 4)");
    EXPECT_FAIL(ek_get_weights(table, &null_w), EK_INVALID_ARGUMENT, "out data is NULL for a non-empty shape (10, 4)");
  }

  /* Element types. */
  {
    float xf[6] = {0};
    DLTensor ids = f32(xf, 2, shape);
    EXPECT_FAIL(ek_lookup(table, &ids, &out_t), EK_DTYPE_MISMATCH, "indices must be int32 or int64, got float32");
    CHECK_MESSAGE_IS("indices must be int32 or int64, got float32");
    uint64_t xu[6] = {0};
    DLTensor ids_u64 = make_tensor(xu, 2, shape, kDLUInt, 64);
    EXPECT_FAIL(ek_lookup(table, &ids_u64, &out_t), EK_DTYPE_MISMATCH, "indices must be int32 or int64, got uint64");
    int16_t x16[6] = {0};
    DLTensor ids_i16 = make_tensor(x16, 2, shape, kDLInt, 16);
    EXPECT_FAIL(ek_lookup(table, &ids_i16, &out_t), EK_DTYPE_MISMATCH, "indices must be int32 or int64, got int16");
    uint8_t xb[6] = {0};
    DLTensor ids_bool = make_tensor(xb, 2, shape, kBoolCode, 8);
    EXPECT_FAIL(ek_lookup(table, &ids_bool, &out_t), EK_DTYPE_MISMATCH, "indices must be int32 or int64, got bool");
    EXPECT_FAIL(ek_compute_mask(table, &ids_bool, &out_t), EK_DTYPE_MISMATCH,
                "indices must be int32 or int64, got bool");
    int32_t x4[24] = {0};
    DLTensor ids_vec = i32(x4, 2, shape);
    ids_vec.dtype.lanes = 4;
    EXPECT_FAIL(ek_lookup(table, &ids_vec, &out_t), EK_DTYPE_MISMATCH, "indices must be int32 or int64, got int32x4");
    DLTensor ids_bf16 = make_tensor(x4, 2, shape, kDLBfloat, 16);
    EXPECT_FAIL(ek_lookup(table, &ids_bf16, &out_t), EK_DTYPE_MISMATCH, "indices must be int32 or int64, got bfloat16");

    DLTensor ids_ok = i32(x, 2, shape);
    double out64[24];
    DLTensor out_f64 = make_tensor(out64, 3, out_shape, kDLFloat, 64);
    EXPECT_FAIL(ek_lookup(table, &ids_ok, &out_f64), EK_DTYPE_MISMATCH, "out must be float32, got float64");
    CHECK_MESSAGE_IS("out must be float32, got float64");
    DLTensor out_f16 = make_tensor(out, 3, out_shape, kDLFloat, 16);
    EXPECT_FAIL(ek_lookup(table, &ids_ok, &out_f16), EK_DTYPE_MISMATCH, "out must be float32, got float16");
    DLTensor out_vec = f32(out, 3, out_shape);
    out_vec.dtype.lanes = 2;
    EXPECT_FAIL(ek_lookup(table, &ids_ok, &out_vec), EK_DTYPE_MISMATCH, "out must be float32, got float32x2");

    float maskf[6];
    DLTensor mask_f32 = f32(maskf, 2, shape);
    EXPECT_FAIL(ek_compute_mask(table, &ids_ok, &mask_f32), EK_DTYPE_MISMATCH,
                "mask must be uint8 or bool, got float32");
    DLTensor mask_i8 = make_tensor(xb, 2, shape, kDLInt, 8);
    EXPECT_FAIL(ek_compute_mask(table, &ids_ok, &mask_i8), EK_DTYPE_MISMATCH, "mask must be uint8 or bool, got int8");
    DLTensor mask_bool1 = make_tensor(xb, 2, shape, kBoolCode, 1);
    EXPECT_FAIL(ek_compute_mask(table, &ids_ok, &mask_bool1), EK_DTYPE_MISMATCH,
                "mask must be uint8 or bool, got bool");

    int64_t w_shape[2] = {10, 4};
    int32_t wi[40] = {0};
    DLTensor w_i32 = i32(wi, 2, w_shape);
    EXPECT_FAIL(ek_set_weights(table, &w_i32), EK_DTYPE_MISMATCH, "weights must be float32, got int32");
    EXPECT_FAIL(ek_get_weights(table, &w_i32), EK_DTYPE_MISMATCH, "out must be float32, got int32");
  }

  /* Devices: CUDA memory is never read, other devices are named by number. */
  {
    DLTensor ids = i32(x, 2, shape);
    ids.device.device_type = kDLCUDA;
    EXPECT_FAIL(ek_lookup(table, &ids, &out_t), EK_UNSUPPORTED, "indices is in CUDA memory (cuda:0)");
    CHECK(strstr(ek_last_error(), "pass a host tensor") != NULL);
    ids.device.device_id = 3;
    EXPECT_FAIL(ek_compute_mask(table, &ids, &out_t), EK_UNSUPPORTED, "indices is in CUDA memory (cuda:3)");
    /* Managed (unified) memory is addressable from the host: read in place. */
    ids.device.device_type = kDLCUDAManaged;
    ids.device.device_id = 0;
    EXPECT_OK(ek_lookup(table, &ids, &out_t));
    fill_floats(out, 24, -7.5f);
    ids.device.device_type = kDLOpenCL;
    EXPECT_FAIL(ek_lookup(table, &ids, &out_t), EK_UNSUPPORTED,
                "indices is on DLPack device type 4, which embedkit does not support");

    DLTensor ids_ok = i32(x, 2, shape);
    DLTensor cuda_out = f32(out, 3, out_shape);
    cuda_out.device.device_type = kDLCUDA;
    EXPECT_FAIL(ek_lookup(table, &ids_ok, &cuda_out), EK_UNSUPPORTED, "out is in CUDA memory (cuda:0)");
    int64_t w_shape[2] = {10, 4};
    float w[40];
    DLTensor cuda_w = f32(w, 2, w_shape);
    cuda_w.device.device_type = kDLCUDA;
    EXPECT_FAIL(ek_set_weights(table, &cuda_w), EK_UNSUPPORTED, "weights is in CUDA memory (cuda:0)");
    EXPECT_FAIL(ek_get_weights(table, &cuda_w), EK_UNSUPPORTED, "out is in CUDA memory (cuda:0)");
    uint8_t mask[6];
    DLTensor cuda_mask = u8(mask, 2, shape);
    cuda_mask.device.device_type = kDLCUDA;
    EXPECT_FAIL(ek_compute_mask(table, &ids_ok, &cuda_mask), EK_UNSUPPORTED, "mask is in CUDA memory (cuda:0)");
  }

  /* No failure above wrote to `out`. */
  CHECK(all_floats_equal(out, 24, -7.5f));
  ek_table_destroy(table);
}

/* ---------------------------------------------------------------------------------------------
 * EK_OUT_OF_RANGE and EK_SHAPE_MISMATCH on a 10000 x 4 table; failures leave outputs unchanged
 * ------------------------------------------------------------------------------------------- */

enum { kRows = 10000, kDim = 4 };

static void test_out_of_range(void) {
  ek_table* table = CREATE_OK("{\"input_dim\": 10000, \"output_dim\": 4, \"seed\": 7}");
  float out[2 * 3 * kDim];
  int64_t out_shape[3] = {2, 3, kDim};
  DLTensor out_t = f32(out, 3, out_shape);

  /* 2-D, int64 and int32: the position is a subscript. */
  int64_t shape[2] = {2, 3};
  int64_t x64[6] = {0, 1, 2, 9999, 4, 15000};
  DLTensor ids64 = i64(x64, 2, shape);
  fill_floats(out, 24, -7.5f);
  EXPECT_FAIL(ek_lookup(table, &ids64, &out_t), EK_OUT_OF_RANGE, "indices[1,2] = 15000 is not in [0, 10000)");
  CHECK_MESSAGE_IS("indices[1,2] = 15000 is not in [0, 10000)");
  CHECK(all_floats_equal(out, 24, -7.5f));
  int32_t x32[6] = {0, 1, 2, 9999, 4, 15000};
  DLTensor ids32 = i32(x32, 2, shape);
  EXPECT_FAIL(ek_lookup(table, &ids32, &out_t), EK_OUT_OF_RANGE, "indices[1,2] = 15000 is not in [0, 10000)");
  CHECK_MESSAGE_IS("indices[1,2] = 15000 is not in [0, 10000)");
  CHECK(all_floats_equal(out, 24, -7.5f));

  /* 1-D negative: the first bad id is reported. */
  int32_t x1[4] = {5, 6, -1, 20000};
  int64_t shape1[1] = {4};
  int64_t out_shape1[2] = {4, kDim};
  DLTensor ids1 = i32(x1, 1, shape1);
  DLTensor out1 = f32(out, 2, out_shape1);
  EXPECT_FAIL(ek_lookup(table, &ids1, &out1), EK_OUT_OF_RANGE, "indices[2] = -1 is not in [0, 10000)");
  CHECK_MESSAGE_IS("indices[2] = -1 is not in [0, 10000)");
  CHECK(all_floats_equal(out, 24, -7.5f));
  int64_t xmin[1] = {INT64_MIN};
  int64_t shape_one[1] = {1};
  int64_t out_shape_one[2] = {1, kDim};
  DLTensor ids_min = i64(xmin, 1, shape_one);
  DLTensor out_one = f32(out, 2, out_shape_one);
  EXPECT_FAIL(ek_lookup(table, &ids_min, &out_one), EK_OUT_OF_RANGE,
              "indices[0] = -9223372036854775808 is not in [0, 10000)");
  CHECK(all_floats_equal(out, 24, -7.5f));

  /* 0-d with a NULL shape: no subscript. */
  int64_t x0 = 10000;
  int64_t out_shape0[1] = {kDim};
  DLTensor ids0 = i64(&x0, 0, NULL);
  DLTensor out0 = f32(out, 1, out_shape0);
  EXPECT_FAIL(ek_lookup(table, &ids0, &out0), EK_OUT_OF_RANGE, "indices = 10000 is not in [0, 10000)");
  CHECK_MESSAGE_IS("indices = 10000 is not in [0, 10000)");
  CHECK(all_floats_equal(out, 24, -7.5f));

  /* 3-D position. */
  int32_t x3[2 * 2 * 2] = {0, 1, 2, 3, 4, 5, 10000, 7};
  int64_t shape3[3] = {2, 2, 2};
  int64_t out_shape3[4] = {2, 2, 2, kDim};
  float out3[8 * kDim];
  fill_floats(out3, 8 * kDim, -7.5f);
  DLTensor ids3 = i32(x3, 3, shape3);
  DLTensor out3_t = f32(out3, 4, out_shape3);
  EXPECT_FAIL(ek_lookup(table, &ids3, &out3_t), EK_OUT_OF_RANGE, "indices[1,1,0] = 10000 is not in [0, 10000)");
  CHECK(all_floats_equal(out3, 8 * kDim, -7.5f));

  /* The boundary ids 0 and input_dim - 1 are fine. */
  int64_t edge[2] = {0, 9999};
  int64_t edge_shape[1] = {2};
  int64_t edge_out_shape[2] = {2, kDim};
  DLTensor edge_t = i64(edge, 1, edge_shape);
  DLTensor edge_out = f32(out, 2, edge_out_shape);
  EXPECT_OK(ek_lookup(table, &edge_t, &edge_out));

  ek_table_destroy(table);
}

static void test_shape_mismatch(void) {
  ek_table* table = CREATE_OK("{\"input_dim\": 10000, \"output_dim\": 4, \"seed\": 7}");
  const size_t count = (size_t)kRows * kDim;
  float* before = malloc(count * sizeof(float));
  float* after = malloc(count * sizeof(float));
  float* bigger = malloc((count + kDim) * sizeof(float));
  CHECK(before != NULL && after != NULL && bigger != NULL);
  if (before == NULL || after == NULL || bigger == NULL) {
    free(before);
    free(after);
    free(bigger);
    ek_table_destroy(table);
    return;
  }
  int64_t w_shape[2] = {kRows, kDim};
  DLTensor before_t = f32(before, 2, w_shape);
  EXPECT_OK(ek_get_weights(table, &before_t));

  /* lookup: out of the wrong shape, unchanged. */
  int32_t x[6] = {0, 1, 2, 3, 4, 5};
  int64_t shape[2] = {2, 3};
  DLTensor ids = i32(x, 2, shape);
  float out[2 * 3 * 5];
  fill_floats(out, 30, -7.5f);
  int64_t wide[3] = {2, 3, 5};
  DLTensor out_wide = f32(out, 3, wide);
  EXPECT_FAIL(ek_lookup(table, &ids, &out_wide), EK_SHAPE_MISMATCH, "out shape must be (2, 3, 4), got (2, 3, 5)");
  CHECK_MESSAGE_IS("out shape must be (2, 3, 4), got (2, 3, 5)");
  int64_t flat[2] = {6, 4};
  DLTensor out_flat = f32(out, 2, flat);
  EXPECT_FAIL(ek_lookup(table, &ids, &out_flat), EK_SHAPE_MISMATCH, "out shape must be (2, 3, 4), got (6, 4)");
  int64_t flat1[1] = {24};
  DLTensor out_flat1 = f32(out, 1, flat1);
  EXPECT_FAIL(ek_lookup(table, &ids, &out_flat1), EK_SHAPE_MISMATCH, "out shape must be (2, 3, 4), got (24,)");
  DLTensor scalar_out = f32(out, 0, NULL);
  int32_t one_id = 1;
  DLTensor scalar_id = i32(&one_id, 0, NULL);
  EXPECT_FAIL(ek_lookup(table, &scalar_id, &scalar_out), EK_SHAPE_MISMATCH, "out shape must be (4,), got ()");
  CHECK(all_floats_equal(out, 30, -7.5f));

  /* compute_mask: mask of the wrong shape, unchanged. */
  uint8_t mask[6];
  memset(mask, 0xAA, sizeof mask);
  int64_t transposed[2] = {3, 2};
  DLTensor mask_t = u8(mask, 2, transposed);
  EXPECT_FAIL(ek_compute_mask(table, &ids, &mask_t), EK_SHAPE_MISMATCH, "mask shape must be (2, 3), got (3, 2)");
  CHECK_MESSAGE_IS("mask shape must be (2, 3), got (3, 2)");
  int64_t short_shape[1] = {5};
  DLTensor mask_short = u8(mask, 1, short_shape);
  EXPECT_FAIL(ek_compute_mask(table, &ids, &mask_short), EK_SHAPE_MISMATCH, "mask shape must be (2, 3), got (5,)");
  CHECK(bytes_all(mask, 6, 0xAA));

  /* get_weights: out of the wrong shape, unchanged. */
  fill_floats(after, count, -7.5f);
  int64_t w_wide[2] = {kRows, kDim + 1};
  int64_t w_short[2] = {kRows - 1, kDim};
  int64_t w_t[2] = {kDim, kRows};
  int64_t w_flat[1] = {kRows * kDim};
  DLTensor get_short = f32(after, 2, w_short);
  EXPECT_FAIL(ek_get_weights(table, &get_short), EK_SHAPE_MISMATCH, "out shape must be (10000, 4), got (9999, 4)");
  CHECK_MESSAGE_IS("out shape must be (10000, 4), got (9999, 4)");
  DLTensor get_t = f32(after, 2, w_t);
  EXPECT_FAIL(ek_get_weights(table, &get_t), EK_SHAPE_MISMATCH, "out shape must be (10000, 4), got (4, 10000)");
  DLTensor get_flat = f32(after, 1, w_flat);
  EXPECT_FAIL(ek_get_weights(table, &get_flat), EK_SHAPE_MISMATCH, "out shape must be (10000, 4), got (40000,)");
  CHECK(all_floats_equal(after, count, -7.5f));

  /* set_weights: (input_dim + 1, dim) and friends fail, and the weights stay as they were. */
  fill_floats(bigger, count + kDim, 1.25f);
  int64_t w_more[2] = {kRows + 1, kDim};
  DLTensor set_more = f32(bigger, 2, w_more);
  EXPECT_FAIL(ek_set_weights(table, &set_more), EK_SHAPE_MISMATCH,
              "weight shape (10000, 4) is not compatible with provided weight shape (10001, 4)");
  CHECK(strstr(ek_last_error(), "table 'embedding'") != NULL);
  DLTensor set_wide = f32(bigger, 2, w_wide);
  EXPECT_FAIL(ek_set_weights(table, &set_wide), EK_SHAPE_MISMATCH,
              "weight shape (10000, 4) is not compatible with provided weight shape (10000, 5)");
  DLTensor set_short = f32(bigger, 2, w_short);
  EXPECT_FAIL(ek_set_weights(table, &set_short), EK_SHAPE_MISMATCH,
              "weight shape (10000, 4) is not compatible with provided weight shape (9999, 4)");
  DLTensor set_t = f32(bigger, 2, w_t);
  EXPECT_FAIL(ek_set_weights(table, &set_t), EK_SHAPE_MISMATCH,
              "weight shape (10000, 4) is not compatible with provided weight shape (4, 10000)");
  DLTensor set_flat = f32(bigger, 1, w_flat);
  EXPECT_FAIL(ek_set_weights(table, &set_flat), EK_SHAPE_MISMATCH,
              "weight shape (10000, 4) is not compatible with provided weight shape (40000,)");
  int64_t w_3d[3] = {kRows, kDim, 1};
  DLTensor set_3d = f32(bigger, 3, w_3d);
  EXPECT_FAIL(ek_set_weights(table, &set_3d), EK_SHAPE_MISMATCH,
              "weight shape (10000, 4) is not compatible with provided weight shape (10000, 4, 1)");
  DLTensor set_f64 = make_tensor(bigger, 2, w_shape, kDLFloat, 64);
  EXPECT_FAIL(ek_set_weights(table, &set_f64), EK_DTYPE_MISMATCH, "weights must be float32, got float64");

  DLTensor after_t = f32(after, 2, w_shape);
  EXPECT_OK(ek_get_weights(table, &after_t));
  CHECK(floats_equal(before, after, count));

  /* The table still works after all those failures. */
  fill_floats(bigger, count, 0.5f);
  DLTensor set_ok = f32(bigger, 2, w_shape);
  EXPECT_OK(ek_set_weights(table, &set_ok));
  EXPECT_OK(ek_get_weights(table, &after_t));
  CHECK(all_floats_equal(after, count, 0.5f));

  free(before);
  free(after);
  free(bigger);
  ek_table_destroy(table);
}

/* A batch large enough for the OpenMP loops to run in parallel. */
static void test_large_batch(void) {
  ek_table* table = CREATE_OK("{\"input_dim\": 10000, \"output_dim\": 4}");
  ek_table* zero_fill = CREATE_OK("{\"input_dim\": 10000, \"output_dim\": 4, \"bounds_check\": \"zero_fill\"}");
  enum { kBatch = 1 << 16 };
  const size_t count = (size_t)kRows * kDim;
  float* w = malloc(count * sizeof(float));
  int64_t* x = malloc(kBatch * sizeof(int64_t));
  float* out = malloc((size_t)kBatch * kDim * sizeof(float));
  uint8_t* mask = malloc(kBatch);
  CHECK(w != NULL && x != NULL && out != NULL && mask != NULL);
  if (w != NULL && x != NULL && out != NULL && mask != NULL) {
    for (size_t i = 0; i < count; ++i) w[i] = (float)(i / kDim) + 0.25f * (float)(i % kDim);
    int64_t w_shape[2] = {kRows, kDim};
    DLTensor w_t = f32(w, 2, w_shape);
    EXPECT_OK(ek_set_weights(table, &w_t));
    EXPECT_OK(ek_set_weights(zero_fill, &w_t));
    for (int64_t i = 0; i < kBatch; ++i) x[i] = (i * 7919) % kRows;
    int64_t ids_shape[2] = {kBatch / 64, 64};
    int64_t out_shape[3] = {kBatch / 64, 64, kDim};
    DLTensor ids = i64(x, 2, ids_shape);
    DLTensor out_t = f32(out, 3, out_shape);
    EXPECT_OK(ek_lookup(table, &ids, &out_t));
    int ok = 1;
    for (int64_t i = 0; i < kBatch && ok; ++i) {
      for (int d = 0; d < kDim; ++d) ok = ok && out[i * kDim + d] == (float)x[i] + 0.25f * (float)d;
    }
    CHECK(ok);
    DLTensor mask_t = u8(mask, 2, ids_shape);
    EXPECT_OK(ek_compute_mask(table, &ids, &mask_t));
    CHECK(bytes_all(mask, kBatch, 1));

    /* Bad ids deep in a big batch: the first one is named, out untouched. */
    x[40000] = -5;
    x[50000] = kRows;
    fill_floats(out, (size_t)kBatch * kDim, -7.5f);
    EXPECT_FAIL(ek_lookup(table, &ids, &out_t), EK_OUT_OF_RANGE, "indices[625,0] = -5 is not in [0, 10000)");
    CHECK(all_floats_equal(out, (size_t)kBatch * kDim, -7.5f));

    /* Under zero_fill the same batch reads the bad rows as zeros. */
    EXPECT_OK(ek_lookup(zero_fill, &ids, &out_t));
    ok = 1;
    for (int64_t i = 0; i < kBatch && ok; ++i) {
      for (int d = 0; d < kDim; ++d) {
        const float want = (i == 40000 || i == 50000) ? 0.0f : (float)x[i] + 0.25f * (float)d;
        ok = ok && out[i * kDim + d] == want;
      }
    }
    CHECK(ok);
  }
  free(w);
  free(x);
  free(out);
  free(mask);
  ek_table_destroy(zero_fill);
  ek_table_destroy(table);
}

/* ---------------------------------------------------------------------------------------------
 * The last error
 * ------------------------------------------------------------------------------------------- */

static void test_last_error_sticky(void) {
  ek_table* table = CREATE_OK("{\"input_dim\": 3, \"output_dim\": 2}");
  int32_t bad = 3;
  float out[2];
  int64_t out_shape[1] = {2};
  DLTensor ids = i32(&bad, 0, NULL);
  DLTensor out_t = f32(out, 1, out_shape);
  EXPECT_FAIL(ek_lookup(table, &ids, &out_t), EK_OUT_OF_RANGE, "indices = 3 is not in [0, 3)");
  char saved[256];
  snprintf(saved, sizeof saved, "%s", ek_last_error());

  /* Successes of every kind leave it as it was. */
  int32_t good = 1;
  DLTensor good_ids = i32(&good, 0, NULL);
  EXPECT_OK(ek_lookup(table, &good_ids, &out_t));
  CHECK(strcmp(ek_last_error(), saved) == 0);
  ek_table* other = CREATE_OK("{\"input_dim\": 2, \"output_dim\": 2}");
  CHECK(strcmp(ek_last_error(), saved) == 0);
  uint8_t mask = 0;
  DLTensor mask_t = u8(&mask, 0, NULL);
  EXPECT_OK(ek_compute_mask(table, &good_ids, &mask_t));
  CHECK(strcmp(ek_last_error(), saved) == 0);
  char* info = table_info(other); /* includes a deliberate size query, which does set the error */
  free(info);
  CHECK(strstr(ek_last_error(), "info buffer holds 0 bytes") != NULL);

  /* A later failure replaces it. */
  EXPECT_FAIL(ek_lookup(table, NULL, &out_t), EK_INVALID_ARGUMENT, "indices is NULL");
  CHECK(strcmp(ek_last_error(), saved) != 0);

  ek_table_destroy(other);
  ek_table_destroy(table);
}

/* ---------------------------------------------------------------------------------------------
 * Main
 * ------------------------------------------------------------------------------------------- */

/* ek_lookup_pooled: values on W = [[0,0],[2,2],[3,3]], every mode, weights, and each bad input. */
static void test_pooled(void) {
  ek_table* table = CREATE_OK("{\"input_dim\": 3, \"output_dim\": 2, \"padding_idx\": 0}");
  set_w(table);
  int64_t x[5] = {2, 1, 0, 1, 2}; /* bags: [2, 1], [] , [0, 1, 2] (0 is padding: skipped, not counted) */
  int64_t x_shape[1] = {5};
  int64_t offsets[4] = {0, 2, 2, 5};
  int64_t offsets_shape[1] = {4};
  float w[5] = {1.0f, 3.0f, 7.0f, 1.0f, 1.0f};
  float out[6];
  int64_t out_shape[2] = {3, 2};
  DLTensor ids = i64(x, 1, x_shape);
  DLTensor csr = i64(offsets, 1, offsets_shape);
  DLTensor weights = f32(w, 1, x_shape);
  DLTensor out_t = f32(out, 2, out_shape);

  EXPECT_OK(ek_lookup_pooled(table, &ids, &csr, NULL, "sum", &out_t));
  CHECK(out[0] == 5 && out[1] == 5 && out[2] == 0 && out[3] == 0 && out[4] == 5 && out[5] == 5);
  EXPECT_OK(ek_lookup_pooled(table, &ids, &csr, NULL, "mean", &out_t));
  CHECK(out[0] == 2.5f && out[2] == 0 && out[4] == 2.5f);
  EXPECT_OK(ek_lookup_pooled(table, &ids, &csr, NULL, "max", &out_t));
  CHECK(out[0] == 3 && out[2] == 0 && out[4] == 3);
  EXPECT_OK(ek_lookup_pooled(table, &ids, &csr, &weights, "sum", &out_t));
  CHECK(out[0] == 9 && out[4] == 5); /* 1*3 + 3*2; padding's weight 7 ignored */
  EXPECT_OK(ek_lookup_pooled(table, &ids, &csr, &weights, "mean", &out_t));
  CHECK(out[0] == 2.25f);
  EXPECT_OK(ek_lookup_pooled(table, &ids, &csr, &weights, "sqrtn", &out_t));
  CHECK(fabsf(out[0] - 9.0f / sqrtf(10.0f)) < 1e-6f);

  fill_floats(out, 6, -4.0f);
  EXPECT_FAIL(ek_lookup_pooled(table, &ids, &csr, NULL, "avg", &out_t), EK_INVALID_ARGUMENT,
              "pooling mode must be 'sum', 'mean', 'max' or 'sqrtn', got 'avg'");
  EXPECT_FAIL(ek_lookup_pooled(table, &ids, &csr, NULL, NULL, &out_t), EK_INVALID_ARGUMENT, "mode is NULL");
  EXPECT_FAIL(ek_lookup_pooled(table, &ids, NULL, NULL, "sum", &out_t), EK_INVALID_ARGUMENT, "offsets is NULL");
  EXPECT_FAIL(ek_lookup_pooled(table, &ids, &csr, &weights, "max", &out_t), EK_INVALID_ARGUMENT,
              "per_sample_weights are not supported with pooling mode 'max'");
  {
    int32_t offsets32[4] = {0, 2, 2, 5};
    DLTensor csr32 = i32(offsets32, 1, offsets_shape);
    EXPECT_FAIL(ek_lookup_pooled(table, &ids, &csr32, NULL, "sum", &out_t), EK_DTYPE_MISMATCH,
                "offsets must be int64, got int32");
    int64_t bad_offsets[4] = {0, 3, 2, 5};
    DLTensor bad = i64(bad_offsets, 1, offsets_shape);
    EXPECT_FAIL(ek_lookup_pooled(table, &ids, &bad, NULL, "sum", &out_t), EK_INVALID_ARGUMENT,
                "offsets[2] = 2 is less than offsets[1] = 3");
    int64_t short_offsets[4] = {0, 2, 2, 4};
    DLTensor short_csr = i64(short_offsets, 1, offsets_shape);
    EXPECT_FAIL(ek_lookup_pooled(table, &ids, &short_csr, NULL, "sum", &out_t), EK_INVALID_ARGUMENT,
                "offsets[3] = 4 (the last) must equal the number of indices, 5");
    int64_t two_d_shape[2] = {1, 5};
    DLTensor ids_2d = i64(x, 2, two_d_shape);
    EXPECT_FAIL(ek_lookup_pooled(table, &ids_2d, &csr, NULL, "sum", &out_t), EK_SHAPE_MISMATCH,
                "pooled lookup indices must be 1-D, got shape (1, 5)");
    int64_t w_shape[1] = {4};
    DLTensor short_w = f32(w, 1, w_shape);
    EXPECT_FAIL(ek_lookup_pooled(table, &ids, &csr, &short_w, "sum", &out_t), EK_SHAPE_MISMATCH,
                "per_sample_weights shape must be (5,), got (4,)");
    int64_t wrong_out_shape[2] = {2, 2};
    DLTensor wrong_out = f32(out, 2, wrong_out_shape);
    EXPECT_FAIL(ek_lookup_pooled(table, &ids, &csr, NULL, "sum", &wrong_out), EK_SHAPE_MISMATCH,
                "out shape must be (3, 2), got (2, 2)");
    int64_t bad_x[5] = {2, 1, 0, 1, 3};
    DLTensor bad_ids = i64(bad_x, 1, x_shape);
    EXPECT_FAIL(ek_lookup_pooled(table, &bad_ids, &csr, NULL, "sum", &out_t), EK_OUT_OF_RANGE,
                "indices[4] = 3 is not in [0, 3)");
  }
  CHECK(all_floats_equal(out, 6, -4.0f));

  /* No bags at all: offsets = [0], an empty batch, a (0, 2) output. */
  {
    int64_t zero[1] = {0};
    int64_t one_shape[1] = {1};
    int64_t empty_shape[1] = {0};
    int64_t empty_out_shape[2] = {0, 2};
    DLTensor no_ids = i64(NULL, 1, empty_shape);
    DLTensor no_bags = i64(zero, 1, one_shape);
    DLTensor no_out = f32(NULL, 2, empty_out_shape);
    EXPECT_OK(ek_lookup_pooled(table, &no_ids, &no_bags, NULL, "mean", &no_out));
  }
  ek_table_destroy(table);
}

/* ek_train_step, ek_train_step_pooled, ek_set_learning_rate: SGD on W = [[0,0],[2,2],[3,3]], the
 * step count in the info, and failures that change nothing. */
static void test_training(void) {
  ek_table* table = CREATE_OK(
      "{\"input_dim\": 3, \"output_dim\": 2, \"optimizer\": "
      "{\"class_name\": \"SGD\", \"config\": {\"learning_rate\": 0.5}}}");
  set_w(table);
  int64_t x[3] = {2, 1, 2};
  int64_t x_shape[1] = {3};
  float g[6] = {1, 2, 3, 4, 5, 6};
  int64_t g_shape[2] = {3, 2};
  DLTensor ids = i64(x, 1, x_shape);
  DLTensor grad = f32(g, 2, g_shape);
  EXPECT_OK(ek_train_step(table, &ids, &grad));
  float w[6];
  int64_t w_shape[2] = {3, 2};
  DLTensor w_t = f32(w, 2, w_shape);
  EXPECT_OK(ek_get_weights(table, &w_t));
  /* row 1 -= 0.5 * (3, 4); row 2 -= 0.5 * ((1, 2) + (5, 6)) */
  CHECK(w[0] == 0 && w[1] == 0 && w[2] == 0.5f && w[3] == 0 && w[4] == 0 && w[5] == -1);
  char* info = table_info(table);
  CHECK(info != NULL && strstr(info, "\"step\":1") != NULL);
  free(info);

  EXPECT_OK(ek_set_learning_rate(table, 1.0));
  EXPECT_FAIL(ek_set_learning_rate(table, -1.0), EK_INVALID_ARGUMENT, "learning_rate must be a finite number >= 0");
  EXPECT_FAIL(ek_set_learning_rate(NULL, 1.0), EK_INVALID_ARGUMENT, "table is NULL");

  /* Pooled: one bag [1, 2] with mean: each row receives half the bag's gradient. */
  int64_t offsets[2] = {0, 2};
  int64_t offsets_shape[1] = {2};
  int64_t pooled_x[2] = {1, 2};
  int64_t pooled_shape[1] = {2};
  float bag_grad[2] = {2, 4};
  int64_t bag_shape[2] = {1, 2};
  DLTensor pooled_ids = i64(pooled_x, 1, pooled_shape);
  DLTensor csr = i64(offsets, 1, offsets_shape);
  DLTensor bag = f32(bag_grad, 2, bag_shape);
  EXPECT_OK(ek_train_step_pooled(table, &pooled_ids, &csr, NULL, "mean", &bag));
  EXPECT_OK(ek_get_weights(table, &w_t));
  CHECK(w[2] == -0.5f && w[3] == -2 && w[4] == -1 && w[5] == -3);

  /* Failures change nothing, the step count included. */
  float before[6];
  memcpy(before, w, sizeof(w));
  int64_t wrong_shape[2] = {3, 3};
  DLTensor wrong = f32(g, 2, wrong_shape);
  EXPECT_FAIL(ek_train_step(table, &ids, &wrong), EK_SHAPE_MISMATCH, "grad_out shape must be (3, 2), got (3, 3)");
  int64_t bad_x[3] = {2, 1, 3};
  DLTensor bad_ids = i64(bad_x, 1, x_shape);
  EXPECT_FAIL(ek_train_step(table, &bad_ids, &grad), EK_OUT_OF_RANGE, "indices[2] = 3 is not in [0, 3)");
  DLTensor int_grad = i64(x, 2, g_shape);
  EXPECT_FAIL(ek_train_step(table, &ids, &int_grad), EK_DTYPE_MISMATCH, "grad_out must be float32, got int64");
  EXPECT_FAIL(ek_train_step(table, &ids, NULL), EK_INVALID_ARGUMENT, "grad_out is NULL");
  EXPECT_FAIL(ek_train_step_pooled(table, &pooled_ids, &csr, NULL, "max", &wrong), EK_SHAPE_MISMATCH,
              "grad_out shape must be (1, 2), got (3, 3)");
  EXPECT_OK(ek_get_weights(table, &w_t));
  CHECK(floats_equal(w, before, 6));
  info = table_info(table);
  CHECK(info != NULL && strstr(info, "\"step\":2") != NULL);
  free(info);

  /* A non-finite gradient under "error" is refused whole. */
  ek_table* strict = CREATE_OK("{\"input_dim\": 3, \"output_dim\": 2, \"nonfinite_gradients\": \"error\"}");
  float nan_grad[6] = {1, 1, 1, 1, NAN, 1};
  DLTensor nan_t = f32(nan_grad, 2, g_shape);
  EXPECT_FAIL(ek_train_step(strict, &ids, &nan_t), EK_INVALID_ARGUMENT, "are not finite");
  info = table_info(strict);
  CHECK(info != NULL && strstr(info, "\"step\":0") != NULL);
  free(info);
  ek_table_destroy(strict);
  ek_table_destroy(table);
}

/* ek_save / ek_load: a round trip, and the statuses of bad calls. */
static void test_checkpoint(void) {
  char directory[] = "/tmp/embedkit-c-api-XXXXXX";
  CHECK(mkdtemp(directory) != NULL);
  ek_table* table = CREATE_OK("{\"input_dim\": 3, \"output_dim\": 2, \"optimizer\": \"adagrad\"}");
  set_w(table);
  int64_t x[1] = {1};
  int64_t x_shape[1] = {1};
  float g[2] = {1, 1};
  int64_t g_shape[2] = {1, 2};
  DLTensor ids = i64(x, 1, x_shape);
  DLTensor grad = f32(g, 2, g_shape);
  EXPECT_OK(ek_train_step(table, &ids, &grad));
  EXPECT_OK(ek_save(table, directory));
  ek_table* loaded = NULL;
  EXPECT_OK(ek_load(directory, &loaded));
  float a[6], b[6];
  int64_t w_shape[2] = {3, 2};
  DLTensor a_t = f32(a, 2, w_shape);
  DLTensor b_t = f32(b, 2, w_shape);
  EXPECT_OK(ek_get_weights(table, &a_t));
  EXPECT_OK(ek_get_weights(loaded, &b_t));
  CHECK(floats_equal(a, b, 6));
  char* info = table_info(loaded);
  CHECK(info != NULL && strstr(info, "\"step\":1") != NULL);
  free(info);
  ek_table* none = NULL;
  EXPECT_FAIL(ek_load("/tmp/no-such-embedkit-checkpoint", &none), EK_IO_ERROR, "manifest.json: cannot open");
  CHECK(none == NULL);
  EXPECT_FAIL(ek_load(NULL, &none), EK_INVALID_ARGUMENT, "directory is NULL");
  EXPECT_FAIL(ek_load(directory, NULL), EK_INVALID_ARGUMENT, "out (the ek_table** to fill) is NULL");
  EXPECT_FAIL(ek_save(table, NULL), EK_INVALID_ARGUMENT, "directory is NULL");
  EXPECT_FAIL(ek_save(NULL, directory), EK_INVALID_ARGUMENT, "table is NULL");
  EXPECT_FAIL(ek_save(table, "/proc/embedkit-cannot-write-here"), EK_IO_ERROR, "cannot create directory");
  ek_table_destroy(loaded);
  ek_table_destroy(table);
}

/* Caller-owned CUDA streams and allocators: what a build without a CUDA table can check. */
static void* fake_alloc(size_t bytes, void* stream, void* ctx) {
  (void)bytes;
  (void)stream;
  (void)ctx;
  return NULL;
}
static void fake_free(void* data, void* stream, void* ctx) {
  (void)data;
  (void)stream;
  (void)ctx;
}

/* The _on_stream calls on a CPU table and host tensors: no CUDA work to order, so each gives what
 * the call without a stream gives, and refuses what it refuses. */
static void test_per_call_streams(void) {
  ek_table* plain = CREATE_OK("{\"input_dim\": 3, \"output_dim\": 2, \"seed\": 4, \"optimizer\": \"adagrad\"}");
  ek_table* streamed = CREATE_OK("{\"input_dim\": 3, \"output_dim\": 2, \"seed\": 4, \"optimizer\": \"adagrad\"}");
  void* stream = (void*)0x5000; /* never dereferenced: a CPU table queues nothing */
  int64_t x[4] = {2, 0, 2, 1};
  int64_t x_shape[1] = {4}, offsets[3] = {0, 1, 4}, offsets_shape[1] = {3};
  int64_t rows_shape[2] = {4, 2}, bags_shape[2] = {2, 2};
  float grad[8] = {0.5f, -1.0f, 2.0f, 0.25f, 1.0f, 1.0f, -3.0f, 0.5f};
  float a[8], b[8];
  DLTensor ids = i64(x, 1, x_shape), csr = i64(offsets, 1, offsets_shape);
  DLTensor rows_grad = f32(grad, 2, rows_shape), bags_grad = f32(grad, 2, bags_shape);
  DLTensor out_a = f32(a, 2, rows_shape), out_b = f32(b, 2, rows_shape);
  DLTensor pooled_a = f32(a, 2, bags_shape), pooled_b = f32(b, 2, bags_shape);
  for (int step = 0; step < 2; ++step) {
    EXPECT_OK(ek_train_step(plain, &ids, &rows_grad));
    EXPECT_OK(ek_train_step_on_stream(streamed, &ids, &rows_grad, stream));
    EXPECT_OK(ek_train_step_pooled(plain, &ids, &csr, NULL, "mean", &bags_grad));
    EXPECT_OK(ek_train_step_pooled_on_stream(streamed, &ids, &csr, NULL, "mean", &bags_grad, stream));
  }
  EXPECT_OK(ek_lookup(plain, &ids, &out_a));
  EXPECT_OK(ek_lookup_on_stream(streamed, &ids, &out_b, stream));
  CHECK(memcmp(a, b, sizeof a) == 0);
  EXPECT_OK(ek_lookup_pooled(plain, &ids, &csr, NULL, "sqrtn", &pooled_a));
  EXPECT_OK(ek_lookup_pooled_on_stream(streamed, &ids, &csr, NULL, "sqrtn", &pooled_b, stream));
  CHECK(memcmp(a, b, 4 * sizeof(float)) == 0);
  {
    DLManagedTensor* rows = NULL;
    DLManagedTensor* unique = NULL;
    DLManagedTensor* grad_rows = NULL;
    uint8_t mask[4];
    DLTensor mask_t = {mask, {kDLCPU, 0}, 1, {kDLUInt, 8, 1}, x_shape, NULL, 0};
    EXPECT_OK(ek_lookup_new_on_stream(streamed, &ids, &rows, stream));
    EXPECT_OK(ek_lookup(plain, &ids, &out_a)); /* a held the pooled rows */
    CHECK(memcmp(rows->dl_tensor.data, a, sizeof a) == 0);
    rows->deleter(rows);
    EXPECT_OK(ek_sparse_grad_new_on_stream(streamed, &ids, &rows_grad, &unique, &grad_rows, stream));
    CHECK(unique->dl_tensor.shape[0] == 3); /* ids 0, 1 and 2 */
    unique->deleter(unique);
    grad_rows->deleter(grad_rows);
    EXPECT_OK(ek_compute_mask_on_stream(streamed, &ids, &mask_t, stream));
    CHECK(mask[0] == 1 && mask[3] == 1);
  }
  x[1] = 7;
  fill_floats(b, 8, -4.0f);
  EXPECT_FAIL(ek_lookup_on_stream(streamed, &ids, &out_b, stream), EK_OUT_OF_RANGE, "indices[1] = 7 is not in [0, 3)");
  EXPECT_FAIL(ek_train_step_on_stream(streamed, &ids, &rows_grad, stream), EK_OUT_OF_RANGE,
              "indices[1] = 7 is not in [0, 3)");
  EXPECT_FAIL(ek_lookup_pooled_on_stream(NULL, &ids, &csr, NULL, "sum", &pooled_b, stream), EK_INVALID_ARGUMENT,
              "table is NULL");
  CHECK(all_floats_equal(b, 8, -4.0f));
  ek_table_destroy(plain);
  ek_table_destroy(streamed);
}

static void test_cuda_hooks(void) {
  ek_table* table = CREATE_OK("{\"input_dim\": 3, \"output_dim\": 2, \"placement\": \"cpu\"}");
  EXPECT_FAIL(ek_table_set_cuda_stream(table, NULL), EK_UNSUPPORTED,
              "is on cpu: a CUDA stream applies only to tables on a CUDA device");
  EXPECT_FAIL(ek_table_set_cuda_stream(NULL, NULL), EK_INVALID_ARGUMENT, "table is NULL");
#if EMBEDKIT_TEST_WITH_CUDA
  EXPECT_FAIL(ek_set_cuda_allocator(NULL, fake_free, NULL), EK_INVALID_ARGUMENT, "needs both");
  EXPECT_OK(ek_set_cuda_allocator(fake_alloc, fake_free, NULL));
  EXPECT_OK(ek_set_cuda_allocator(NULL, NULL, NULL));
#else
  EXPECT_FAIL(ek_set_cuda_allocator(fake_alloc, fake_free, NULL), EK_UNSUPPORTED, "built without CUDA");
#endif
  ek_table_destroy(table);
}

int main(void) {
  /* Never NULL, even before any failure. */
  CHECK(ek_last_error() != NULL);

  /* Destroying NULL is a no-op. */
  ek_table_destroy(NULL);
  ++g_passed;

  test_status_codes();
  test_version();
  test_optimizer_names();
  test_create_invalid();
  test_create_resources();
  test_lookup_and_weights();
  test_new_outputs();
  test_mask();
  test_tensor_layouts();
  test_info();
  test_summary();
  test_plan();
  test_seeds();
  test_padding_idx();
  test_zero_fill();
  test_null_arguments();
  test_bad_tensors();
  test_out_of_range();
  test_shape_mismatch();
  test_large_batch();
  test_last_error_sticky();
  test_pooled();
  test_training();
  test_per_call_streams();
  test_checkpoint();
  test_cuda_hooks();

  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed > 0 ? 1 : 0;
}
