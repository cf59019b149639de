/* Tests of the C ABI's ways into a table's memory (include/embedkit/c_api.h), in plain C11: the
 * weights view (writes reach the table, the view outlives ek_table_destroy), the optimizer state read and restored
 * whole or not at all, and the sparse gradient computed apart from its step, which applied equals ek_train_step bit for
 * bit. Prints `N passed, M failed` and exits 1 when any check failed; clean under ASan and LSan. */
#include <embedkit/c_api.h>

#include "c_api_check.h"

#include <dlpack/dlpack.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static ek_table* create(const char* config) {
  ek_table* table = NULL;
  EXPECT_OK(ek_table_create(config, &table));
  return table;
}

static void get_weights(ek_table* table, float* w, int64_t rows, int64_t dim) {
  int64_t shape[2] = {rows, dim};
  DLTensor t = f32(w, 2, shape);
  EXPECT_OK(ek_get_weights(table, &t));
}

/* Writes through the view reach the table and reads see its steps; the view keeps the table
 * alive after ek_table_destroy. */
static void test_weights_view(void) {
  ek_table* table = create("{\"input_dim\": 4, \"output_dim\": 3, \"optimizer\": \"sgd\"}");
  DLManagedTensor* view = NULL;
  EXPECT_OK(ek_weights_view(table, &view));
  CHECK(view != NULL);
  if (view == NULL) return;
  const DLTensor* t = &view->dl_tensor;
  CHECK(t->ndim == 2 && t->shape[0] == 4 && t->shape[1] == 3 && t->dtype.code == kDLFloat && t->dtype.bits == 32);
  CHECK(t->device.device_type == kDLCPU && t->strides == NULL && t->byte_offset == 0);
  float* values = (float*)t->data;
  for (int i = 0; i < 12; ++i) values[i] = (float)i;
  float w[12];
  get_weights(table, w, 4, 3);
  for (int i = 0; i < 12; ++i) CHECK(w[i] == (float)i);

  /* A step shows through the view. */
  int64_t id = 2;
  int64_t id_shape[1] = {1};
  float g[3] = {1, 1, 1};
  int64_t g_shape[2] = {1, 3};
  DLTensor ids = i64(&id, 1, id_shape);
  DLTensor grad = f32(g, 2, g_shape);
  EXPECT_OK(ek_train_step(table, &ids, &grad));
  CHECK(values[6] == 6.0f - 0.01f && values[5] == 5.0f);

  /* A migration to where the table is replaces nothing: allowed while views live (the refusal of
   * a real move, EK_BUSY, is tested in C++ on the simulated device: tests/weights_view_test.cpp). */
  EXPECT_OK(ek_table_migrate(table, "cpu"));
  DLManagedTensor* second = NULL;
  EXPECT_OK(ek_weights_view(table, &second));
  CHECK(second != NULL && second->dl_tensor.data == t->data);
  if (second != NULL) second->deleter(second);

  /* The view outlives the handle. */
  ek_table_destroy(table);
  values[0] = 42.0f;
  CHECK(values[11] == 11.0f);
  view->deleter(view);

  EXPECT_FAIL(ek_weights_view(NULL, &view), EK_INVALID_ARGUMENT, "table is NULL");
  table = create("{\"input_dim\": 2, \"output_dim\": 2}");
  EXPECT_FAIL(ek_weights_view(table, NULL), EK_INVALID_ARGUMENT, "out (the DLManagedTensor** to fill) is NULL");
  ek_table_destroy(table);
}

/* Adagrad's accumulator and the step, read, changed, restored whole; bad restores change nothing. */
static void test_optimizer_state(void) {
  ek_table* table = create(
      "{\"input_dim\": 3, \"output_dim\": 2, \"optimizer\": {\"class_name\": \"Adagrad\", \"config\": "
      "{\"learning_rate\": 0.1, \"initial_accumulator_value\": 0.5}}}");
  CHECK(ek_optimizer_state_name(table, 0) != NULL && strcmp(ek_optimizer_state_name(table, 0), "accumulator") == 0);
  CHECK(ek_optimizer_state_name(table, 1) == NULL);
  CHECK(ek_optimizer_state_name(table, -1) == NULL);
  CHECK(ek_optimizer_state_name(NULL, 0) == NULL);

  float acc[6];
  int64_t shape[2] = {3, 2};
  DLTensor acc_t = f32(acc, 2, shape);
  EXPECT_OK(ek_get_optimizer_state(table, "accumulator", &acc_t));
  CHECK(all_floats_equal(acc, 6, 0.5f));
  EXPECT_FAIL(ek_get_optimizer_state(table, "velocity", &acc_t), EK_INVALID_ARGUMENT,
              "has no optimizer state 'velocity' (adagrad keeps: accumulator)");
  int64_t wrong_shape[2] = {2, 3};
  DLTensor wrong = f32(acc, 2, wrong_shape);
  EXPECT_FAIL(ek_get_optimizer_state(table, "accumulator", &wrong), EK_SHAPE_MISMATCH, "out shape must be (3, 2)");

  float restored[6] = {1, 2, 3, 4, 5, 6};
  DLTensor restored_t = f32(restored, 2, shape);
  const char* names[1] = {"accumulator"};
  const DLTensor* states[1] = {&restored_t};
  EXPECT_OK(ek_set_optimizer_state(table, 7, names, states, 1));
  EXPECT_OK(ek_get_optimizer_state(table, "accumulator", &acc_t));
  CHECK(floats_equal(acc, restored, 6));
  char info[4096];
  size_t length = 0;
  EXPECT_OK(ek_table_info(table, info, sizeof info, &length));
  CHECK(strstr(info, "\"step\":7") != NULL);

  /* All or nothing. */
  float other[6] = {9, 9, 9, 9, 9, 9};
  DLTensor other_t = f32(other, 2, shape);
  const DLTensor* twice[2] = {&other_t, &other_t};
  const char* twice_names[2] = {"accumulator", "accumulator"};
  EXPECT_FAIL(ek_set_optimizer_state(table, 8, twice_names, twice, 2), EK_INVALID_ARGUMENT,
              "optimizer state 'accumulator' is given twice (slots[1])");
  EXPECT_FAIL(ek_set_optimizer_state(table, 8, names, states, 0), EK_INVALID_ARGUMENT,
              "optimizer state 'accumulator' is missing");
  EXPECT_FAIL(ek_set_optimizer_state(table, -1, names, states, 1), EK_INVALID_ARGUMENT, "step must be >= 0, got -1");
  const char* unknown[1] = {"momentum"};
  EXPECT_FAIL(ek_set_optimizer_state(table, 8, unknown, states, 1), EK_INVALID_ARGUMENT,
              "has no optimizer state 'momentum'");
  DLTensor wrong_state = f32(other, 2, wrong_shape);
  const DLTensor* wrong_states[1] = {&wrong_state};
  EXPECT_FAIL(ek_set_optimizer_state(table, 8, names, wrong_states, 1), EK_SHAPE_MISMATCH,
              "optimizer state 'accumulator' has shape (3, 2), got shape (2, 3)");
  EXPECT_FAIL(ek_set_optimizer_state(table, 8, NULL, states, 1), EK_INVALID_ARGUMENT, "must not be NULL");
  EXPECT_OK(ek_get_optimizer_state(table, "accumulator", &acc_t));
  CHECK(floats_equal(acc, restored, 6));
  EXPECT_OK(ek_table_info(table, info, sizeof info, &length));
  CHECK(strstr(info, "\"step\":7") != NULL);
  ek_table_destroy(table);
}

/* The sparse gradient of a batch with duplicates, then applied: the same weights, state and step
 * as ek_train_step on a twin table. */
static void test_sparse_grad(void) {
  const char* config =
      "{\"input_dim\": 5, \"output_dim\": 2, \"seed\": 3, \"padding_idx\": 4, \"optimizer\": \"adagrad\"}";
  ek_table* split = create(config);
  ek_table* fused = create(config);
  int64_t x[5] = {3, 1, 3, 4, 0};
  int64_t x_shape[1] = {5};
  float g[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  int64_t g_shape[2] = {5, 2};
  DLTensor ids = i64(x, 1, x_shape);
  DLTensor grad = f32(g, 2, g_shape);
  DLManagedTensor* unique = NULL;
  DLManagedTensor* rows = NULL;
  EXPECT_OK(ek_sparse_grad_new(split, &ids, &grad, &unique, &rows));
  CHECK(unique != NULL && rows != NULL);
  if (unique == NULL || rows == NULL) return;
  CHECK(unique->dl_tensor.ndim == 1 && unique->dl_tensor.shape[0] == 3);
  CHECK(unique->dl_tensor.dtype.code == kDLInt && unique->dl_tensor.dtype.bits == 64);
  const int64_t* u = (const int64_t*)unique->dl_tensor.data;
  const float* r = (const float*)rows->dl_tensor.data;
  CHECK(u[0] == 0 && u[1] == 1 && u[2] == 3); /* padding id 4 left out */
  CHECK(r[0] == 9 && r[1] == 10 && r[2] == 3 && r[3] == 4 && r[4] == 6 && r[5] == 8);
  char info[4096];
  size_t length = 0;
  EXPECT_OK(ek_table_info(split, info, sizeof info, &length));
  CHECK(strstr(info, "\"step\":0") != NULL); /* nothing applied yet */

  EXPECT_OK(ek_apply_sparse_grad(split, &unique->dl_tensor, &rows->dl_tensor));
  EXPECT_OK(ek_train_step(fused, &ids, &grad));
  float a[10], b[10];
  get_weights(split, a, 5, 2);
  get_weights(fused, b, 5, 2);
  CHECK(memcmp(a, b, sizeof a) == 0);
  int64_t shape[2] = {5, 2};
  DLTensor a_t = f32(a, 2, shape), b_t = f32(b, 2, shape);
  EXPECT_OK(ek_get_optimizer_state(split, "accumulator", &a_t));
  EXPECT_OK(ek_get_optimizer_state(fused, "accumulator", &b_t));
  CHECK(memcmp(a, b, sizeof a) == 0);
  EXPECT_OK(ek_table_info(split, info, sizeof info, &length));
  CHECK(strstr(info, "\"step\":1") != NULL);

  /* Pooled: one bag {1, 1} under mean gives row 1 the bag's gradient. */
  int64_t bag_ids[2] = {1, 1};
  int64_t bag_shape[1] = {2};
  int64_t offsets[2] = {0, 2};
  int64_t offsets_shape[1] = {2};
  float bag_grad[2] = {2, 4};
  int64_t bag_grad_shape[2] = {1, 2};
  DLTensor pooled_ids = i64(bag_ids, 1, bag_shape), csr = i64(offsets, 1, offsets_shape);
  DLTensor pooled_grad = f32(bag_grad, 2, bag_grad_shape);
  DLManagedTensor* pooled_unique = NULL;
  DLManagedTensor* pooled_rows = NULL;
  EXPECT_OK(
      ek_sparse_grad_pooled_new(split, &pooled_ids, &csr, NULL, "mean", &pooled_grad, &pooled_unique, &pooled_rows));
  if (pooled_unique != NULL && pooled_rows != NULL) {
    CHECK(pooled_unique->dl_tensor.shape[0] == 1 && ((const int64_t*)pooled_unique->dl_tensor.data)[0] == 1);
    const float* pr = (const float*)pooled_rows->dl_tensor.data;
    CHECK(pr[0] == 2 && pr[1] == 4);
    pooled_unique->deleter(pooled_unique);
    pooled_rows->deleter(pooled_rows);
  }

  /* Bad gradients change nothing and set no output. */
  get_weights(split, a, 5, 2);
  int64_t bad_ids[2] = {3, 1};
  int64_t two[1] = {2};
  float two_rows[4] = {1, 1, 1, 1};
  int64_t two_rows_shape[2] = {2, 2};
  DLTensor decreasing = i64(bad_ids, 1, two), rows_t = f32(two_rows, 2, two_rows_shape);
  EXPECT_FAIL(ek_apply_sparse_grad(split, &decreasing, &rows_t), EK_INVALID_ARGUMENT,
              "unique_ids[1] = 1 does not exceed unique_ids[0] = 3");
  int64_t outside[2] = {1, 5};
  DLTensor outside_t = i64(outside, 1, two);
  EXPECT_FAIL(ek_apply_sparse_grad(split, &outside_t, &rows_t), EK_OUT_OF_RANGE, "unique_ids[1] = 5 is not in [0, 5)");
  int64_t short_shape[2] = {1, 2};
  DLTensor short_rows = f32(two_rows, 2, short_shape);
  DLTensor fine_ids = i64(&outside[0], 1, two);
  EXPECT_FAIL(ek_apply_sparse_grad(split, &fine_ids, &short_rows), EK_SHAPE_MISMATCH, "rows shape must be (2, 2)");
  DLManagedTensor* untouched = (DLManagedTensor*)&g_passed; /* any non-NULL value: must stay as it is */
  DLManagedTensor* untouched_rows = untouched;
  int64_t out_of_table[1] = {9};
  int64_t one[1] = {1};
  DLTensor bad_batch = i64(out_of_table, 1, one);
  DLTensor one_grad = f32(two_rows, 2, short_shape);
  EXPECT_FAIL(ek_sparse_grad_new(split, &bad_batch, &one_grad, &untouched, &untouched_rows), EK_OUT_OF_RANGE,
              "indices[0] = 9 is not in [0, 5)");
  CHECK(untouched == (DLManagedTensor*)&g_passed && untouched_rows == untouched);
  get_weights(split, b, 5, 2);
  CHECK(memcmp(a, b, sizeof a) == 0);
  EXPECT_OK(ek_table_info(split, info, sizeof info, &length));
  CHECK(strstr(info, "\"step\":1") != NULL);

  unique->deleter(unique);
  rows->deleter(rows);
  ek_table_destroy(split);
  ek_table_destroy(fused);
}

int main(void) {
  test_weights_view();
  test_optimizer_state();
  test_sparse_grad();
  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed > 0 ? 1 : 0;
}
