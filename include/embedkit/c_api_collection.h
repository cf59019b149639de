/* embedkit C ABI: table collections (TableCollection in C++), under c_api.h's conventions.
 *
 * A batch is TorchRec's KeyedJaggedTensor: `keys` (num_keys feature names), `values` (1-D int32 or
 * int64 ids, feature after feature in keys order), `lengths` (1-D int64, num_keys × batch ids per
 * sample) and/or `offsets` (1-D int64, num_keys × batch + 1, from 0; used when given), `weights`
 * (NULL or float32 shaped as values). Keys the collection does not serve are ignored by the pooled
 * calls and refused by the plain ones. A failed call names the feature and position (`feature 'f7'
 * sample 12: indices[3] = 5000 is not in [0, 4000)`) and changes no table. */
#ifndef EMBEDKIT_C_API_COLLECTION_H
#define EMBEDKIT_C_API_COLLECTION_H

#include <embedkit/c_api.h>

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Tables looked up and trained together; create with ek_collection_create, free with
 * ek_collection_destroy. */
typedef struct ek_collection ek_collection;

/* Creates a collection from `{"tables": [{<table config>, "feature_names": [...], "pooling": "sum"}]}`
 * (CollectionConfig::from_json). Errors as ek_table_create, naming the table. */
EMBEDKIT_API ek_status ek_collection_create(const char* config_json, ek_collection** out);

/* Frees a collection; NULL is a no-op. Table handles from ek_collection_table stay valid. */
EMBEDKIT_API void ek_collection_destroy(ek_collection* collection);

/* Saves the collection into `directory` (TableCollection::save: one manifest, collection.json, over
 * a crash-safe checkpoint of each table). EK_IO_ERROR naming the file that fails. */
EMBEDKIT_API ek_status ek_collection_save(const ek_collection* collection, const char* directory);

/* Loads a collection saved by ek_collection_save, its tables placed anew. EK_IO_ERROR naming the file
 * that fails (a checksum, a missing table folder, a manifest of another format). */
EMBEDKIT_API ek_status ek_collection_load(const char* directory, ek_collection** out);

/* The number of tables and the width of a pooled lookup (the sum of every feature's dim). */
EMBEDKIT_API ek_status ek_collection_shape(const ek_collection* collection, size_t* tables, int64_t* pooled_width);

/* A handle of table `index` (config order), for every ek_* table call (weights, optimizer state,
 * learning rate, save); free it with ek_table_destroy. EK_OUT_OF_RANGE past the last table. */
EMBEDKIT_API ek_status ek_collection_table(ek_collection* collection, size_t index, ek_table** out);

/* Pooled lookup into `out`, float32 (batch, pooled_width): each feature's block of columns in the
 * collection's feature order, pooled with its table's pooling. */
EMBEDKIT_API ek_status ek_collection_lookup_pooled(ek_collection* collection, const char* const* keys, size_t num_keys,
                                                   const DLTensor* values, const DLTensor* lengths,
                                                   const DLTensor* offsets, const DLTensor* weights, DLTensor* out);

/* One optimizer step of every table from `grad`, float32 (batch, pooled_width), the upstream
 * gradient of ek_collection_lookup_pooled's output. */
EMBEDKIT_API ek_status ek_collection_train_step_pooled(ek_collection* collection, const char* const* keys,
                                                       size_t num_keys, const DLTensor* values, const DLTensor* lengths,
                                                       const DLTensor* offsets, const DLTensor* weights,
                                                       const DLTensor* grad);

/* Plain lookup: one row per value, in values' order, each of its feature's dim, into `out`, 1-D
 * float32 of ek_collection_lookup_size floats. `weights` must be NULL. */
EMBEDKIT_API ek_status ek_collection_lookup(ek_collection* collection, const char* const* keys, size_t num_keys,
                                            const DLTensor* values, const DLTensor* lengths, const DLTensor* offsets,
                                            DLTensor* out);

/* The floats ek_collection_lookup writes for this batch. */
EMBEDKIT_API ek_status ek_collection_lookup_size(ek_collection* collection, const char* const* keys, size_t num_keys,
                                                 const DLTensor* values, const DLTensor* lengths,
                                                 const DLTensor* offsets, int64_t* size);

/* One optimizer step from `grad`, 1-D float32 of ek_collection_lookup_size floats. */
EMBEDKIT_API ek_status ek_collection_train_step(ek_collection* collection, const char* const* keys, size_t num_keys,
                                                const DLTensor* values, const DLTensor* lengths,
                                                const DLTensor* offsets, const DLTensor* grad);

#ifdef __cplusplus
}
#endif

#endif
