#define _DEFAULT_SOURCE /* mkdtemp */
/* The sharded C ABI (include/embedkit/c_api_sharded.h) from plain C11 under mpiexec: creation on
 * MPI_COMM_WORLD and on a caller's communicator, lookups and a train step against a single
 * ek_table given the concatenated batch, and a bad tensor on one rank failing every rank's call
 * with the same status and message. Prints `rank R: N passed, M failed`; the job fails when any
 * rank does. */
#include <embedkit/c_api.h>
#include <embedkit/c_api_sharded.h>

#include <dlpack/dlpack.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_passed = 0;
static int g_failed = 0;
static int g_rank = 0;

#define CHECK(expr)                                                                                                  \
  do {                                                                                                               \
    if (expr) {                                                                                                      \
      ++g_passed;                                                                                                    \
    } else {                                                                                                         \
      ++g_failed;                                                                                                    \
      fprintf(stderr, "rank %d: %s:%d: CHECK failed: %s\n    ek_last_error(): \"%s\"\n", g_rank, __FILE__, __LINE__, \
              #expr, ek_last_error());                                                                               \
    }                                                                                                                \
  } while (0)

enum { kDim = 4, kBatch = 5, kMaxRanks = 8 };

static const char* kConfig =
    "{\"input_dim\": 37, \"output_dim\": 4, \"seed\": 3, \"optimizer\": \"adagrad\", \"name\": \"c\"}";

static DLTensor tensor(void* data, DLDataType dtype, int ndim, int64_t* shape) {
  DLTensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.device.device_type = kDLCPU;
  t.ndim = ndim;
  t.dtype = dtype;
  t.shape = shape;
  return t;
}

static const DLDataType kInt64 = {kDLInt, 64, 1};
static const DLDataType kFloat32 = {kDLFloat, 32, 1};

/* Rank r's batch: hot ids every rank shares, and ids of its own. */
static void batch_of(int rank, int64_t* ids) {
  const int64_t mine[kBatch] = {5, 36, 5, 11 + rank, 0};
  memcpy(ids, mine, sizeof mine);
}

static void grads_of(int rank, float* grads) {
  for (int k = 0; k < kBatch * kDim; ++k) grads[k] = 0.125f * (float)(k % 7) - 0.25f * (float)rank;
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  CHECK(ek_sharded_available() == 1);

  /* On the caller's own communicator (a duplicate of the world), split modulo. */
  MPI_Comm comm;
  MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  ek_sharded_table* sharded = NULL;
  CHECK(ek_sharded_create(kConfig, "modulo", &comm, &sharded) == EK_OK);
  ek_table* single = NULL;
  CHECK(ek_table_create(kConfig, &single) == EK_OK);
  int rank = -1, size = 0;
  CHECK(ek_sharded_world(sharded, &rank, &size) == EK_OK && rank == g_rank && size == world);
  int64_t first = -1, stride = 0, count = 0;
  CHECK(ek_sharded_rows(sharded, g_rank, &first, &stride, &count) == EK_OK && first == g_rank && stride == world &&
        count == (37 - g_rank + world - 1) / world);

  int64_t ids[kBatch];
  batch_of(g_rank, ids);
  int64_t id_shape[1] = {kBatch}, out_shape[2] = {kBatch, kDim};
  float got[kBatch * kDim], want[kBatch * kDim];
  DLTensor id_tensor = tensor(ids, kInt64, 1, id_shape);
  DLTensor got_tensor = tensor(got, kFloat32, 2, out_shape), want_tensor = tensor(want, kFloat32, 2, out_shape);
  CHECK(ek_sharded_lookup(sharded, &id_tensor, &got_tensor) == EK_OK);
  CHECK(ek_lookup(single, &id_tensor, &want_tensor) == EK_OK);
  CHECK(memcmp(got, want, sizeof got) == 0);

  /* One step: the single table takes every rank's batch, concatenated in rank order. */
  float grads[kBatch * kDim];
  grads_of(g_rank, grads);
  int64_t grad_shape[2] = {kBatch, kDim};
  DLTensor grad_tensor = tensor(grads, kFloat32, 2, grad_shape);
  CHECK(ek_sharded_train_step(sharded, &id_tensor, &grad_tensor) == EK_OK);
  int64_t all_ids[kMaxRanks * kBatch];
  float all_grads[kMaxRanks * kBatch * kDim];
  for (int r = 0; r < world && r < kMaxRanks; ++r) {
    batch_of(r, all_ids + r * kBatch);
    grads_of(r, all_grads + r * kBatch * kDim);
  }
  int64_t all_id_shape[1] = {(int64_t)world * kBatch}, all_grad_shape[2] = {(int64_t)world * kBatch, kDim};
  DLTensor all_id_tensor = tensor(all_ids, kInt64, 1, all_id_shape);
  DLTensor all_grad_tensor = tensor(all_grads, kFloat32, 2, all_grad_shape);
  CHECK(world <= kMaxRanks && ek_train_step(single, &all_id_tensor, &all_grad_tensor) == EK_OK);
  CHECK(ek_sharded_lookup(sharded, &id_tensor, &got_tensor) == EK_OK);
  CHECK(ek_lookup(single, &id_tensor, &want_tensor) == EK_OK);
  CHECK(memcmp(got, want, sizeof got) == 0);

  /* Pooled: bags {5, 36}, {}, {5, 11 + rank, 0}. */
  int64_t offsets[4] = {0, 2, 2, 5}, offset_shape[1] = {4}, pooled_shape[2] = {3, kDim};
  DLTensor offset_tensor = tensor(offsets, kInt64, 1, offset_shape);
  DLTensor pooled_got = tensor(got, kFloat32, 2, pooled_shape), pooled_want = tensor(want, kFloat32, 2, pooled_shape);
  CHECK(ek_sharded_lookup_pooled(sharded, &id_tensor, &offset_tensor, NULL, "mean", &pooled_got) == EK_OK);
  CHECK(ek_lookup_pooled(single, &id_tensor, &offset_tensor, NULL, "mean", &pooled_want) == EK_OK);
  CHECK(memcmp(got, want, 3 * kDim * sizeof(float)) == 0);

  /* A pooled step with the same bags on every rank: the single table takes them all, rank by rank. */
  float bag_grads[3 * kDim];
  for (int k = 0; k < 3 * kDim; ++k) bag_grads[k] = 0.5f - 0.0625f * (float)k;
  int64_t bag_grad_shape[2] = {3, kDim};
  DLTensor bag_grad_tensor = tensor(bag_grads, kFloat32, 2, bag_grad_shape);
  CHECK(ek_sharded_train_step_pooled(sharded, &id_tensor, &offset_tensor, NULL, "sum", &bag_grad_tensor) == EK_OK);
  int64_t all_offsets[kMaxRanks * 3 + 1] = {0};
  float all_bag_grads[kMaxRanks * 3 * kDim];
  for (int r = 0; r < world && r < kMaxRanks; ++r) {
    for (int b = 1; b <= 3; ++b) all_offsets[r * 3 + b] = r * kBatch + offsets[b];
    memcpy(all_bag_grads + r * 3 * kDim, bag_grads, sizeof bag_grads);
  }
  int64_t all_offset_shape[1] = {(int64_t)world * 3 + 1}, all_bag_shape[2] = {(int64_t)world * 3, kDim};
  DLTensor all_offset_tensor = tensor(all_offsets, kInt64, 1, all_offset_shape);
  DLTensor all_bag_tensor = tensor(all_bag_grads, kFloat32, 2, all_bag_shape);
  CHECK(ek_train_step_pooled(single, &all_id_tensor, &all_offset_tensor, NULL, "sum", &all_bag_tensor) == EK_OK);
  CHECK(ek_sharded_lookup(sharded, &id_tensor, &got_tensor) == EK_OK);
  CHECK(ek_lookup(single, &id_tensor, &want_tensor) == EK_OK);
  CHECK(memcmp(got, want, sizeof got) == 0);

  /* A float64 gradient on the last rank fails the step on every rank, with that rank's message. */
  double wide[kBatch * kDim] = {0};
  const DLDataType kFloat64 = {kDLFloat, 64, 1};
  DLTensor wide_tensor = tensor(wide, kFloat64, 2, grad_shape);
  const ek_status status =
      ek_sharded_train_step(sharded, &id_tensor, g_rank == world - 1 ? &wide_tensor : &grad_tensor);
  CHECK(status == EK_DTYPE_MISMATCH);
  char expected[64];
  snprintf(expected, sizeof expected, "rank %d: grad_out", world - 1);
  CHECK(strncmp(ek_last_error(), expected, strlen(expected)) == 0);
  /* Nothing changed: the lookups still agree with the single table. */
  CHECK(ek_sharded_lookup(sharded, &id_tensor, &got_tensor) == EK_OK);
  CHECK(ek_lookup(single, &id_tensor, &want_tensor) == EK_OK);
  CHECK(memcmp(got, want, sizeof got) == 0);

  /* Saved here, loaded by rank 0 alone: the same rows. */
  char directory[64] = "/tmp/embedkit-c-sharded-XXXXXX";
  if (g_rank == 0 && mkdtemp(directory) == NULL) directory[0] = '\0';
  MPI_Bcast(directory, sizeof directory, MPI_CHAR, 0, MPI_COMM_WORLD);
  CHECK(ek_sharded_save(sharded, directory) == EK_OK);
  MPI_Comm alone;
  MPI_Comm_split(MPI_COMM_WORLD, g_rank == 0 ? 0 : MPI_UNDEFINED, 0, &alone);
  if (g_rank == 0) {
    ek_sharded_table* loaded = NULL;
    CHECK(ek_sharded_load(directory, &alone, &loaded) == EK_OK);
    int64_t all[37];
    for (int64_t k = 0; k < 37; ++k) all[k] = k;
    int64_t all_shape[1] = {37}, rows_shape[2] = {37, kDim};
    float loaded_rows[37 * kDim], single_rows[37 * kDim];
    DLTensor all_tensor = tensor(all, kInt64, 1, all_shape);
    DLTensor loaded_tensor = tensor(loaded_rows, kFloat32, 2, rows_shape);
    DLTensor single_tensor = tensor(single_rows, kFloat32, 2, rows_shape);
    CHECK(ek_sharded_lookup(loaded, &all_tensor, &loaded_tensor) == EK_OK);
    CHECK(ek_lookup(single, &all_tensor, &single_tensor) == EK_OK);
    CHECK(memcmp(loaded_rows, single_rows, sizeof loaded_rows) == 0);
    ek_sharded_destroy(loaded);
    CHECK(ek_sharded_load("/nonexistent/embedkit", &alone, &loaded) == EK_IO_ERROR);
    CHECK(strstr(ek_last_error(), "/nonexistent/embedkit/sharded.json") != NULL);
    MPI_Comm_free(&alone);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (g_rank == 0) {
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", directory);
    CHECK(system(command) == 0);
  }

  CHECK(ek_sharded_create(kConfig, "striped", NULL, &sharded) == EK_INVALID_ARGUMENT);
  CHECK(strcmp(ek_last_error(), "rank 0: row split must be 'contiguous' or 'modulo', got 'striped'") == 0);

  ek_sharded_destroy(sharded);
  ek_table_destroy(single);
  /* The world communicator (NULL) works as well. */
  ek_sharded_table* on_world = NULL;
  CHECK(ek_sharded_create(kConfig, NULL, NULL, &on_world) == EK_OK);
  CHECK(ek_sharded_rows(on_world, world, &first, &stride, &count) == EK_INVALID_ARGUMENT);
  ek_sharded_destroy(on_world);
  MPI_Comm_free(&comm);

  printf("rank %d: %d passed, %d failed\n", g_rank, g_passed, g_failed);
  int failed = g_failed > 0, any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return any_failed;
}
