/* embedkit C ABI over DLPack tensors.
 *
 * Conventions: tensors are borrowed `DLTensor*`, compact row-major (strides NULL or compact),
 * in host memory (kDLCPU, kDLCUDAHost, kDLCUDAManaged) or in the memory of the CUDA device
 * embedkit uses (kDLCUDA). The lookups, train steps and ek_sparse_grad*_new use CUDA tensors in
 * place for a table on that device (no copy through the host) and copy them across for a table on
 * the CPU; ek_compute_mask (made on the host) and the other calls copy CUDA tensors through the
 * host. Work on CUDA
 * tensors follows the call's stream (the `_on_stream` functions' argument), else the table's
 * (ek_table_set_cuda_stream), else CUDA's legacy default stream, as DLPack prescribes for a
 * consumer that names none; only that stream is synchronised. Every function returns an ek_status; on failure the
 * table and every output are unchanged and ek_last_error() holds a message naming the bad value
 * and its position (one exception: a CUDA output that a table on that device writes in place may
 * hold partial results after a lookup that fails on an out-of-range id). A 0-d tensor may carry a NULL `shape`.
 *
 * Memory: no output (a tensor, a text buffer or its *length) may share a byte with an input of the
 * same call or with the table's own memory (weights, optimizer state); such a call is
 * EK_INVALID_ARGUMENT naming both ("out and offsets overlap ...") and writes nothing. Inputs may
 * overlap each other. ek_set_weights given exactly the table's weights (a view of them) is a no-op.
 *
 * Threads: every function may be called from any thread. On one table, reading calls (ek_lookup,
 * ek_lookup_pooled, ek_compute_mask, ek_get_weights, ek_get_optimizer_state, ek_sparse_grad_new,
 * ek_table_info, ek_save) run concurrently; writing calls (ek_train_step, ek_train_step_pooled,
 * ek_apply_sparse_grad, ek_set_weights, ek_set_optimizer_state, ek_set_learning_rate,
 * ek_table_migrate, ek_table_set_cuda_stream, and the lookups of a table with max_norm, which
 * renormalise the rows they read) wait for them and run alone, so a read never sees a row half-way
 * through a step. A weights view (ek_weights_view) is outside this: its reads and writes take no lock. Different tables
 * are independent. Saves into one directory (of one table or several, from threads or processes) take turns on a lock
 * on the directory, and each succeeds. ek_last_error() is per thread. ek_table_destroy must not overlap any other call
 * on that table. */
#ifndef EMBEDKIT_C_API_H
#define EMBEDKIT_C_API_H

#include <embedkit/export.h>

#include <dlpack/dlpack.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An embedding table; create with ek_table_create, free with ek_table_destroy. */
typedef struct ek_table ek_table;

/* Why a call failed. */
typedef enum ek_status {
  EK_OK = 0,
  EK_INVALID_ARGUMENT = 1, /* NULL pointer, bad config, bad shape value, stride or offset */
  EK_OUT_OF_RANGE = 2,     /* an id outside [0, input_dim) */
  EK_SHAPE_MISMATCH = 3,   /* a tensor whose shape is not the one the call needs */
  EK_DTYPE_MISMATCH = 4,   /* a tensor of the wrong element type */
  EK_OUT_OF_MEMORY = 5,    /* not enough memory, checked before allocating */
  EK_UNSUPPORTED = 6,      /* valid, but not available in this build or on this machine */
  EK_IO_ERROR = 7,         /* a file could not be read or written */
  EK_INTERNAL = 8,         /* a broken invariant: a bug in embedkit */
  EK_BUSY = 9              /* the table is in use in a way the call cannot wait out: a live weights view */
} ek_status;

/* The library version, "MAJOR.MINOR.PATCH". */
EMBEDKIT_API const char* ek_version(void);

/* The message of this thread's last failed call; a success leaves it as it was. Never NULL. */
EMBEDKIT_API const char* ek_last_error(void);

/* The status's name, e.g. "EK_OUT_OF_RANGE"; "EK_UNKNOWN_STATUS" for a value not in the enum. */
EMBEDKIT_API const char* ek_status_name(ek_status status);

/* The name of built-in optimizer `index` ("sgd", "adagrad", ...), as configs spell it, for
 * index = 0, 1, ...; NULL past the last one. Tools list the optimizers a config may name with it. */
EMBEDKIT_API const char* ek_optimizer_name(int index);

/* Creates a table from a JSON object of TableConfig fields ("input_dim" and "output_dim"
 * required). EK_INVALID_ARGUMENT for malformed JSON or fields, EK_OUT_OF_MEMORY when the weights
 * do not fit the memory available, EK_UNSUPPORTED for a device this build or machine lacks. */
EMBEDKIT_API ek_status ek_table_create(const char* config_json, ek_table** out);

/* Frees a table; NULL is a no-op. */
EMBEDKIT_API void ek_table_destroy(ek_table* table);

/* Gathers rows: `out` is float32 of shape indices.shape + (output_dim,); indices int32 or int64. */
EMBEDKIT_API ek_status ek_lookup(ek_table* t, const DLTensor* indices, DLTensor* out);

/* Pools bags of rows into `out`, float32 of shape (bags, output_dim). `indices` is 1-D int32 or
 * int64; `offsets` is 1-D int64 CSR with bags + 1 entries (first 0, non-decreasing, last the number
 * of indices); `per_sample_weights` is NULL or float32 of the indices' shape (not with "max");
 * `mode` is "sum", "mean", "max" or "sqrtn". Empty bags give zeros; padding_idx entries are
 * skipped and not counted (without a padding_idx no id is padding: -1 is out of range as any
 * other id outside the table). */
EMBEDKIT_API ek_status ek_lookup_pooled(ek_table* t, const DLTensor* indices, const DLTensor* offsets,
                                        const DLTensor* per_sample_weights, const char* mode, DLTensor* out);

/* ek_lookup into a new float32 host tensor the library allocates: on success *out is a
 * DLManagedTensor (kDLCPU, compact) the caller owns and frees by calling its deleter, which may run
 * on any thread and hands the memory back to embedkit's output cache for the next call's output.
 * A training loop that frees each step's output thus reuses mapped memory instead of faulting fresh
 * pages in. *out is left unchanged on failure. */
EMBEDKIT_API ek_status ek_lookup_new(ek_table* t, const DLTensor* indices, DLManagedTensor** out);

/* ek_lookup_pooled into a new (bags, output_dim) float32 host tensor, owned as ek_lookup_new's. */
EMBEDKIT_API ek_status ek_lookup_pooled_new(ek_table* t, const DLTensor* indices, const DLTensor* offsets,
                                            const DLTensor* per_sample_weights, const char* mode,
                                            DLManagedTensor** out);

/* Bytes of freed large outputs kept for reuse (default 1 GiB, or EMBEDKIT_OUTPUT_CACHE_BYTES);
 * 0 disables the cache and frees what it holds. */
EMBEDKIT_API ek_status ek_set_output_cache_capacity(size_t bytes);

/* mask = indices != 0 under mask_zero, all 1 otherwise; `mask` is uint8 (or DLPack bool,
 * code 6, 8 bits) of shape indices.shape. */
EMBEDKIT_API ek_status ek_compute_mask(ek_table* t, const DLTensor* indices, DLTensor* mask);

/* One training step: the sparse gradient of ek_lookup(indices) from `grad_out` (float32, shape
 * indices.shape + (output_dim,)), duplicates folded, then the table's optimizer on the touched rows.
 * The step count grows by one (also for an empty batch); a frozen table is left unchanged. On any
 * error the weights, optimizer state and step count are unchanged. */
EMBEDKIT_API ek_status ek_train_step(ek_table* t, const DLTensor* indices, const DLTensor* grad_out);

/* One training step of a pooled lookup: as ek_lookup_pooled's arguments, with `grad_out` float32 of
 * shape (bags, output_dim). */
EMBEDKIT_API ek_status ek_train_step_pooled(ek_table* t, const DLTensor* indices, const DLTensor* offsets,
                                            const DLTensor* per_sample_weights, const char* mode,
                                            const DLTensor* grad_out);

/* The calls that take CUDA tensors in place, with the call's CUDA work on `stream` (a cudaStream_t
 * the caller owns, e.g. the framework's current stream; NULL: as the functions without it): its
 * kernels and copies run on it, after the caller's work already queued there, and only it is
 * synchronised. Per call, so concurrent readers of one table may each use their own stream
 * (ek_table_set_cuda_stream is a writer call). A table on the CPU runs no CUDA work: the stream
 * orders only the copies of CUDA tensors across to the host. Otherwise each is its namesake. */
EMBEDKIT_API ek_status ek_lookup_on_stream(ek_table* t, const DLTensor* indices, DLTensor* out, void* stream);
EMBEDKIT_API ek_status ek_lookup_pooled_on_stream(ek_table* t, const DLTensor* indices, const DLTensor* offsets,
                                                  const DLTensor* per_sample_weights, const char* mode, DLTensor* out,
                                                  void* stream);
EMBEDKIT_API ek_status ek_train_step_on_stream(ek_table* t, const DLTensor* indices, const DLTensor* grad_out,
                                               void* stream);
EMBEDKIT_API ek_status ek_train_step_pooled_on_stream(ek_table* t, const DLTensor* indices, const DLTensor* offsets,
                                                      const DLTensor* per_sample_weights, const char* mode,
                                                      const DLTensor* grad_out, void* stream);
EMBEDKIT_API ek_status ek_lookup_new_on_stream(ek_table* t, const DLTensor* indices, DLManagedTensor** out,
                                               void* stream);
EMBEDKIT_API ek_status ek_lookup_pooled_new_on_stream(ek_table* t, const DLTensor* indices, const DLTensor* offsets,
                                                      const DLTensor* per_sample_weights, const char* mode,
                                                      DLManagedTensor** out, void* stream);
EMBEDKIT_API ek_status ek_compute_mask_on_stream(ek_table* t, const DLTensor* indices, DLTensor* mask, void* stream);
EMBEDKIT_API ek_status ek_sparse_grad_new_on_stream(ek_table* t, const DLTensor* indices, const DLTensor* grad_out,
                                                    DLManagedTensor** unique_ids, DLManagedTensor** rows, void* stream);
EMBEDKIT_API ek_status ek_sparse_grad_pooled_new_on_stream(ek_table* t, const DLTensor* indices,
                                                           const DLTensor* offsets, const DLTensor* per_sample_weights,
                                                           const char* mode, const DLTensor* grad_out,
                                                           DLManagedTensor** unique_ids, DLManagedTensor** rows,
                                                           void* stream);

/* Sets the learning rate of the next steps (finite, >= 0; > 0 for Ftrl). */
EMBEDKIT_API ek_status ek_set_learning_rate(ek_table* t, double lr);

/* Moves the table (weights, optimizer state, step count) to "cpu" or "cuda"; results before and after
 * are bitwise equal. EK_UNSUPPORTED when there is no such device or no kernels there,
 * EK_OUT_OF_MEMORY when the table does not fit; the table is unchanged then. */
EMBEDKIT_API ek_status ek_table_migrate(ek_table* t, const char* device);

/* Saves the table into `directory` (created if missing): manifest.json and .npy files, crash-safe
 * also over an existing checkpoint. EK_IO_ERROR naming the file, EK_UNSUPPORTED for a custom
 * optimizer. */
EMBEDKIT_API ek_status ek_save(ek_table* table, const char* directory);

/* Loads a checkpoint saved by ek_save into a new table, placed by today's policy; every checksum,
 * shape and file name is checked first. EK_IO_ERROR naming the file that fails. */
EMBEDKIT_API ek_status ek_load(const char* directory, ek_table** out);

/* Puts the table's CUDA work on `stream` (a cudaStream_t the caller owns, e.g. the framework's
 * current stream; NULL: the table's own). Only that stream is ever synchronised. EK_UNSUPPORTED
 * when the table is not on a CUDA device. */
EMBEDKIT_API ek_status ek_table_set_cuda_stream(ek_table* t, void* stream);

/* Lets a framework's caching allocator serve embedkit's CUDA memory (both NULL: cudaMallocAsync
 * again). Process-wide; set it before creating CUDA tables: EK_INVALID_ARGUMENT while embedkit
 * holds device memory or when only one function is given, EK_UNSUPPORTED in a CPU-only build. */
EMBEDKIT_API ek_status ek_set_cuda_allocator(void* (*alloc)(size_t, void* stream, void* ctx),
                                             void (*free)(void*, void* stream, void* ctx), void* ctx);

/* Copies the matrix into `out`, float32 of shape (input_dim, output_dim). */
EMBEDKIT_API ek_status ek_get_weights(ek_table* t, DLTensor* out);

/* Replaces the matrix from `weights`, float32 of shape (input_dim, output_dim). */
EMBEDKIT_API ek_status ek_set_weights(ek_table* t, const DLTensor* weights);

/* A view of a CPU table's weights in place, no copy: float32 (input_dim, output_dim), writable. It
 * keeps the table alive (ek_table_destroy may come first). Reads and writes through it take no lock,
 * so they may see or tear a concurrent train step: the caller orders them. While a view lives,
 * ek_table_migrate fails with EK_BUSY. Free it with (*out)->deleter(*out). EK_UNSUPPORTED for a
 * table in device memory (use ek_get_weights / ek_set_weights). */
EMBEDKIT_API ek_status ek_weights_view(ek_table* t, DLManagedTensor** out);

/* The name of the table's optimizer state slot `index` (0, 1, ...; e.g. "accumulator" for
 * Adagrad), or NULL past the last slot or for a NULL table; valid while the handle lives. */
EMBEDKIT_API const char* ek_optimizer_state_name(ek_table* t, int index);

/* Copies optimizer state slot `name` into `out`: float32 of shape (input_dim, output_dim), or
 * (input_dim,) for a per-row slot. EK_INVALID_ARGUMENT naming an unknown slot. */
EMBEDKIT_API ek_status ek_get_optimizer_state(ek_table* t, const char* name, DLTensor* out);

/* Replaces the optimizer's whole state and the step count, as loading a checkpoint would: `count`
 * float32 tensors `states`, slot names[i] in ek_get_optimizer_state's shape, every slot exactly
 * once. All or nothing: a missing, repeated or unknown slot, a wrong shape or step < 0 changes
 * nothing. */
EMBEDKIT_API ek_status ek_set_optimizer_state(ek_table* t, int64_t step, const char* const* names,
                                              const DLTensor* const* states, size_t count);

/* The sparse gradient ek_train_step would apply, without applying it: *unique_ids int64 (n,),
 * strictly increasing, and *rows float32 (n, output_dim), each row the sum of its id's gradient
 * rows in the library's canonical order; padding_idx and (under zero_fill) out-of-range ids left
 * out. Both are set or neither; free each with its deleter. The table is not changed. */
EMBEDKIT_API ek_status ek_sparse_grad_new(ek_table* t, const DLTensor* indices, const DLTensor* grad_out,
                                          DLManagedTensor** unique_ids, DLManagedTensor** rows);

/* As ek_sparse_grad_new, for ek_train_step_pooled's arguments. */
EMBEDKIT_API ek_status ek_sparse_grad_pooled_new(ek_table* t, const DLTensor* indices, const DLTensor* offsets,
                                                 const DLTensor* per_sample_weights, const char* mode,
                                                 const DLTensor* grad_out, DLManagedTensor** unique_ids,
                                                 DLManagedTensor** rows);

/* One optimizer step from a sparse gradient: `unique_ids` int32 or int64 (n,), strictly increasing,
 * in [0, input_dim); `rows` float32 (n, output_dim). The step count grows by one. */
EMBEDKIT_API ek_status ek_apply_sparse_grad(ek_table* t, const DLTensor* unique_ids, const DLTensor* rows);

/* Writes the table's description as JSON (name, dims, seed, step, placement, bytes) into
 * `buffer`. When `capacity` is too small (NULL with 0 included) it writes nothing, sets *length
 * to the size needed including the terminating NUL and returns EK_INVALID_ARGUMENT; on success
 * *length is the same size. The size does not change while the table trains (the text is padded
 * with trailing spaces for any step, counter, learning rate and trainable flag), so the size query
 * then fill works under a concurrent writer; only ek_table_migrate can change it. */
EMBEDKIT_API ek_status ek_table_info(ek_table* t, char* buffer, size_t capacity, size_t* length);

/* Writes the table's summary, the text of C++'s `summary().to_string()` (rows, dim, bytes, placement
 * and its reason; with `batch`, an int32 or int64 tensor of ids, also the output shape and bytes and,
 * under mask_zero, how many ids are padding), into `buffer`, sized as for ek_table_info. It holds no
 * value training changes, so its size too holds under a concurrent writer (except ek_table_migrate). */
EMBEDKIT_API ek_status ek_table_summary(ek_table* t, const DLTensor* batch, char* buffer, size_t capacity,
                                        size_t* length);

/* Writes what placement would decide for a table, without creating it: the text `embedkit plan`
 * prints, or its JSON form when `as_json` is non-zero. `request_json` is an object with "rows" and
 * "dim" (required), "dtype" ("float32", "float16", "bfloat16": the rows' storage type),
 * "optimizer" (a name or a Keras object), "max_batch_lookups", "gpu_memory" (a
 * hypothetical device's free memory, in bytes or a size such as "80GiB"; this machine's device when
 * absent), "gpu_memory_limit" and "gpu_memory_headroom". `buffer` is sized as for ek_table_info. */
EMBEDKIT_API ek_status ek_plan(const char* request_json, int as_json, char* buffer, size_t capacity, size_t* length);

#ifdef __cplusplus
}
#endif

#endif /* EMBEDKIT_C_API_H */
