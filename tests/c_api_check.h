/* Checks shared by the C programs that test embedkit's C ABI: counters, CHECK, the expected-failure
 * checks that prime the last error first, and DLTensor builders. One test program includes it once. */
#ifndef EMBEDKIT_TESTS_C_API_CHECK_H
#define EMBEDKIT_TESTS_C_API_CHECK_H

#include <embedkit/c_api.h>

#include <dlpack/dlpack.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * Checking
 * ------------------------------------------------------------------------------------------- */

static int g_passed = 0;
static int g_failed = 0;

#define CHECK(expr)                                                                                        \
  do {                                                                                                     \
    if (expr) {                                                                                            \
      ++g_passed;                                                                                          \
    } else {                                                                                               \
      ++g_failed;                                                                                          \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n    ek_last_error(): \"%s\"\n", __FILE__, __LINE__, #expr, \
              ek_last_error());                                                                            \
    }                                                                                                      \
  } while (0)

/* Sets this thread's last error to a message that does not contain `avoid`, so that a check of
 * the message after the next failing call only passes if that call wrote it. */
static inline void prime_last_error(const char* avoid) {
  (void)ek_table_create(NULL, NULL); /* "out (the ek_table** to fill) is NULL" */
  if (avoid != NULL && strstr(ek_last_error(), avoid) != NULL) {
    (void)ek_lookup(NULL, NULL, NULL); /* "table is NULL" */
  }
}

static inline void check_failure(const char* file, int line, const char* text, ek_status got, ek_status want,
                                 const char* needle) {
  const char* message = ek_last_error();
  const int status_ok = got == want;
  const int message_ok = needle == NULL || (message != NULL && strstr(message, needle) != NULL);
  if (status_ok && message_ok) {
    ++g_passed;
    return;
  }
  ++g_failed;
  fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, text);
  if (!status_ok) fprintf(stderr, "    status: got %s, expected %s\n", ek_status_name(got), ek_status_name(want));
  if (!message_ok) fprintf(stderr, "    message does not contain \"%s\"\n", needle);
  fprintf(stderr, "    ek_last_error(): \"%s\"\n", message != NULL ? message : "(NULL)");
}

/* `call` must fail with `status` and leave a last error containing `needle` (NULL: any). */
#define EXPECT_FAIL(call, status, needle)                                      \
  do {                                                                         \
    prime_last_error(needle);                                                  \
    const ek_status got_status_ = (call);                                      \
    check_failure(__FILE__, __LINE__, #call, got_status_, (status), (needle)); \
  } while (0)

/* `call` must return EK_OK. */
#define EXPECT_OK(call)                                                 \
  do {                                                                  \
    const ek_status got_status_ = (call);                               \
    check_failure(__FILE__, __LINE__, #call, got_status_, EK_OK, NULL); \
  } while (0)

/* The last error must be exactly `text`. */
#define CHECK_MESSAGE_IS(text) CHECK(strcmp(ek_last_error(), (text)) == 0)

/* ---------------------------------------------------------------------------------------------
 * Tensors and buffers
 * ------------------------------------------------------------------------------------------- */

enum { kBoolCode = 6 }; /* DLPack >= 0.8 names it kDLBool; the v0.6 header does not. */

static inline DLTensor make_tensor(void* data, int32_t ndim, int64_t* shape, uint8_t code, uint8_t bits) {
  DLTensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.device.device_type = kDLCPU;
  t.device.device_id = 0;
  t.ndim = ndim;
  t.dtype.code = code;
  t.dtype.bits = bits;
  t.dtype.lanes = 1;
  t.shape = shape;
  t.strides = NULL;
  t.byte_offset = 0;
  return t;
}

static inline DLTensor i32(int32_t* data, int32_t ndim, int64_t* shape) {
  return make_tensor(data, ndim, shape, kDLInt, 32);
}
static inline DLTensor i64(int64_t* data, int32_t ndim, int64_t* shape) {
  return make_tensor(data, ndim, shape, kDLInt, 64);
}
static inline DLTensor f32(float* data, int32_t ndim, int64_t* shape) {
  return make_tensor(data, ndim, shape, kDLFloat, 32);
}
static inline DLTensor u8(uint8_t* data, int32_t ndim, int64_t* shape) {
  return make_tensor(data, ndim, shape, kDLUInt, 8);
}

static inline void fill_floats(float* p, size_t n, float value) {
  for (size_t i = 0; i < n; ++i) p[i] = value;
}

static inline int all_floats_equal(const float* p, size_t n, float value) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != value) return 0;
  }
  return 1;
}

static inline int floats_equal(const float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return 0;
  }
  return 1;
}

static inline int bytes_all(const uint8_t* p, size_t n, uint8_t value) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != value) return 0;
  }
  return 1;
}

#endif /* EMBEDKIT_TESTS_C_API_CHECK_H */
