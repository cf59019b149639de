/* embedkit C ABI for sharded tables: one embedding matrix split row-wise across the ranks of an
 * MPI communicator (see ShardedEmbeddingTable in sharded_table.hpp).
 *
 * Every function but ek_sharded_available, ek_sharded_destroy and ek_sharded_rows is collective:
 * each rank makes the same calls in the same order, each with its own local batch. A call that
 * fails on any rank (a bad tensor included) fails on every rank with the same status, and
 * ek_last_error() holds the same message on every rank, starting with the rank it came from
 * ("rank 1: indices[3] = 15000 is not in [0, 10000)"); no shard changes then. A build without MPI
 * answers EK_UNSUPPORTED ("built without MPI"). Tensors follow c_api.h's conventions (host memory). */
#ifndef EMBEDKIT_C_API_SHARDED_H
#define EMBEDKIT_C_API_SHARDED_H

#include <embedkit/c_api.h>

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A sharded table; create with ek_sharded_create, free with ek_sharded_destroy. */
typedef struct ek_sharded_table ek_sharded_table;

/* 1 when this build has MPI (sharded tables work), 0 otherwise. */
EMBEDKIT_API int ek_sharded_available(void);

/* Creates a sharded table, collectively over `mpi_comm`: the address of an MPI_Comm (NULL:
 * MPI_COMM_WORLD), read during the call only; MPI_Init must have been called. `config_json` is
 * ek_table_create's, the same on every rank; `split` is "contiguous" or "modulo" (NULL:
 * "contiguous"). EK_INVALID_ARGUMENT for a bad or differing config, EK_OUT_OF_MEMORY when a shard
 * does not fit, EK_UNSUPPORTED without MPI. */
EMBEDKIT_API ek_status ek_sharded_create(const char* config_json, const char* split, const void* mpi_comm,
                                         ek_sharded_table** out);

/* Frees this rank's part of a table; NULL is a no-op. Every rank frees its part, before MPI_Finalize. */
EMBEDKIT_API void ek_sharded_destroy(ek_sharded_table* table);

/* This rank's index and the communicator's size. */
EMBEDKIT_API ek_status ek_sharded_world(ek_sharded_table* t, int* rank, int* world_size);

/* The rows `rank` holds: its local row k is the table's row *first + k * *stride, for k < *count. */
EMBEDKIT_API ek_status ek_sharded_rows(ek_sharded_table* t, int rank, int64_t* first, int64_t* stride, int64_t* count);

/* As ek_lookup, for this rank's batch: rows come from the ranks that hold them. */
EMBEDKIT_API ek_status ek_sharded_lookup(ek_sharded_table* t, const DLTensor* indices, DLTensor* out);

/* As ek_lookup_pooled, for this rank's bags, reduced on this rank. */
EMBEDKIT_API ek_status ek_sharded_lookup_pooled(ek_sharded_table* t, const DLTensor* indices, const DLTensor* offsets,
                                                const DLTensor* per_sample_weights, const char* mode, DLTensor* out);

/* As ek_train_step, for this rank's batch: the step is the one a single table would take on every
 * rank's batch concatenated in rank order, bit for bit on CPU shards. */
EMBEDKIT_API ek_status ek_sharded_train_step(ek_sharded_table* t, const DLTensor* indices, const DLTensor* grad_out);

/* As ek_train_step_pooled, for this rank's bags: bitwise one table's pooled step on the
 * concatenated bags, on CPU shards. */
EMBEDKIT_API ek_status ek_sharded_train_step_pooled(ek_sharded_table* t, const DLTensor* indices,
                                                    const DLTensor* offsets, const DLTensor* per_sample_weights,
                                                    const char* mode, const DLTensor* grad_out);

/* Sets the learning rate of the next steps; the same value on every rank. */
EMBEDKIT_API ek_status ek_sharded_set_learning_rate(ek_sharded_table* t, double lr);

/* Saves the table into `directory` (the same path on every rank; created if missing): each rank's
 * rows as an ek_save checkpoint in `directory`/rank<R>of<W>, and sharded.json naming the world
 * size, split, step and rows. EK_IO_ERROR naming the file. */
EMBEDKIT_API ek_status ek_sharded_save(ek_sharded_table* t, const char* directory);

/* Loads a checkpoint saved by ek_sharded_save onto `mpi_comm` (as ek_sharded_create's), of any
 * size: the rows are re-sharded, and training continues bit for bit. EK_IO_ERROR naming the file. */
EMBEDKIT_API ek_status ek_sharded_load(const char* directory, const void* mpi_comm, ek_sharded_table** out);

#ifdef __cplusplus
}
#endif

#endif /* EMBEDKIT_C_API_SHARDED_H */
