/* Test-only interposer (LD_PRELOAD) for test_zero_copy.py: each C ABI entry point that takes
 * arrays appends "function tensor address" lines to $EK_TRACE_FILE, the address being the first
 * byte the library reads (data + byte_offset), then calls libembedkit's own function (for the
 * entry points that allocate their output, the output is recorded after the call). It shows
 * which memory the library was handed, without any hook inside the library or the package. */
#define _GNU_SOURCE
#include <embedkit/c_api.h>

#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int find_embedkit(struct dl_phdr_info* info, size_t size, void* found) {
  (void)size;
  if (strstr(info->dlpi_name, "libembedkit.so") == NULL) return 0;
  *(void**)found = dlopen(info->dlpi_name, RTLD_NOLOAD | RTLD_LAZY);
  return 1;
}

/* libembedkit's definition of `name` (loaded by the extension module, outside the global scope). */
static void* real(const char* name) {
  void* library = NULL;
  dl_iterate_phdr(find_embedkit, &library);
  if (library == NULL) {
    fprintf(stderr, "c_abi_trace: libembedkit.so is not loaded\n");
    abort();
  }
  return dlsym(library, name);
}

static void record(const char* function, const char* tensor, const DLTensor* t) {
  FILE* trace = fopen(getenv("EK_TRACE_FILE"), "a");
  if (trace == NULL) abort();
  fprintf(trace, "%s %s %p\n", function, tensor, t == NULL ? NULL : (void*)((char*)t->data + t->byte_offset));
  fclose(trace);
}

typedef ek_status (*lookup_on_stream_fn)(ek_table*, const DLTensor*, DLTensor*, void*);
typedef ek_status (*pooled_fn)(ek_table*, const DLTensor*, const DLTensor*, const DLTensor*, const char*, DLTensor*,
                               void*);
typedef ek_status (*train_fn)(ek_table*, const DLTensor*, const DLTensor*, void*);
typedef ek_status (*train_pooled_fn)(ek_table*, const DLTensor*, const DLTensor*, const DLTensor*, const char*,
                                     const DLTensor*, void*);
typedef ek_status (*weights_fn)(ek_table*, DLTensor*);
typedef ek_status (*lookup_new_fn)(ek_table*, const DLTensor*, DLManagedTensor**, void*);
typedef ek_status (*pooled_new_fn)(ek_table*, const DLTensor*, const DLTensor*, const DLTensor*, const char*,
                                   DLManagedTensor**, void*);
typedef ek_status (*set_weights_fn)(ek_table*, const DLTensor*);

ek_status ek_lookup_on_stream(ek_table* t, const DLTensor* indices, DLTensor* out, void* stream) {
  record(__func__, "indices", indices);
  record(__func__, "out", out);
  return ((lookup_on_stream_fn)real(__func__))(t, indices, out, stream);
}

ek_status ek_compute_mask_on_stream(ek_table* t, const DLTensor* indices, DLTensor* mask, void* stream) {
  record(__func__, "indices", indices);
  record(__func__, "mask", mask);
  return ((lookup_on_stream_fn)real(__func__))(t, indices, mask, stream);
}

ek_status ek_lookup_pooled_on_stream(ek_table* t, const DLTensor* indices, const DLTensor* offsets,
                                     const DLTensor* per_sample_weights, const char* mode, DLTensor* out,
                                     void* stream) {
  record(__func__, "indices", indices);
  record(__func__, "offsets", offsets);
  record(__func__, "per_sample_weights", per_sample_weights);
  record(__func__, "out", out);
  return ((pooled_fn)real(__func__))(t, indices, offsets, per_sample_weights, mode, out, stream);
}

ek_status ek_train_step_on_stream(ek_table* t, const DLTensor* indices, const DLTensor* grad_out, void* stream) {
  record(__func__, "indices", indices);
  record(__func__, "grad_out", grad_out);
  return ((train_fn)real(__func__))(t, indices, grad_out, stream);
}

ek_status ek_train_step_pooled_on_stream(ek_table* t, const DLTensor* indices, const DLTensor* offsets,
                                         const DLTensor* per_sample_weights, const char* mode, const DLTensor* grad_out,
                                         void* stream) {
  record(__func__, "indices", indices);
  record(__func__, "offsets", offsets);
  record(__func__, "per_sample_weights", per_sample_weights);
  record(__func__, "grad_out", grad_out);
  return ((train_pooled_fn)real(__func__))(t, indices, offsets, per_sample_weights, mode, grad_out, stream);
}

ek_status ek_get_weights(ek_table* t, DLTensor* out) {
  record(__func__, "out", out);
  return ((weights_fn)real(__func__))(t, out);
}

ek_status ek_set_weights(ek_table* t, const DLTensor* weights) {
  record(__func__, "weights", weights);
  return ((set_weights_fn)real(__func__))(t, weights);
}

ek_status ek_lookup_new_on_stream(ek_table* t, const DLTensor* indices, DLManagedTensor** out, void* stream) {
  record(__func__, "indices", indices);
  const ek_status status = ((lookup_new_fn)real(__func__))(t, indices, out, stream);
  if (status == EK_OK) record(__func__, "out", &(*out)->dl_tensor);
  return status;
}

ek_status ek_lookup_pooled_new_on_stream(ek_table* t, const DLTensor* indices, const DLTensor* offsets,
                                         const DLTensor* per_sample_weights, const char* mode, DLManagedTensor** out,
                                         void* stream) {
  record(__func__, "indices", indices);
  record(__func__, "offsets", offsets);
  record(__func__, "per_sample_weights", per_sample_weights);
  const ek_status status = ((pooled_new_fn)real(__func__))(t, indices, offsets, per_sample_weights, mode, out, stream);
  if (status == EK_OK) record(__func__, "out", &(*out)->dl_tensor);
  return status;
}
