#pragma once
// What every file of the C ABI shares: the thread-local last error, the catch-all wrapper that turns
// exceptions into statuses, the device CUDA tensors are staged through, and pooled arguments.

#include <embedkit/c_api.h>
#include <embedkit/pooling.hpp>
#include <embedkit/status.hpp>
#include <embedkit/table.hpp>
#include <embedkit/tensor.hpp>

#include "capi/dlpack_view.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <new>
#include <span>
#include <string>

namespace embedkit::detail {

/// This thread's last error message (ek_last_error).
std::string& c_api_last_error();

inline ek_status c_api_fail(Status status, std::string message) {
  c_api_last_error() = std::move(message);
  return static_cast<ek_status>(status);
}

/// Runs `body`, turning every exception into a status and this thread's last error.
template <class Body>
ek_status guarded(const char* function, Body&& body) noexcept {
  try {
    body();
    return EK_OK;
  } catch (const Error& e) {
    return c_api_fail(e.status(), e.what());
  } catch (const std::bad_alloc&) {
    return c_api_fail(Status::out_of_memory, fmt::format("{}: out of host memory", function));
  } catch (const std::exception& e) {
    return c_api_fail(Status::internal, fmt::format("{}: internal error: {}", function, e.what()));
  } catch (...) {
    return c_api_fail(Status::internal, fmt::format("{}: internal error: unknown exception", function));
  }
}

/// The device the C ABI's tensors in CUDA memory belong to: the default context's.
Backend* c_api_device();

/// The table behind a C ABI handle (not NULL), for internal code and the tests that reach its
/// memory; the handle's layout stays private to c_api.cpp.
EmbeddingTable& table_of_handle(ek_table* handle);

/// The checked arguments of a pooled call (the tensors stay the caller's).
struct PooledArguments {
  IndexTensor ids;
  std::span<const std::int64_t> offsets;
  std::span<const float> sample_weights;
  PoolingMode mode;
  std::int64_t bags;
};

PooledArguments pooled_arguments(TensorStaging& staging, const DLTensor* indices, const DLTensor* offsets,
                                 const DLTensor* per_sample_weights, const char* mode);

// The checked tensors of the four calls every table type has, for a table of `dim` columns: the
// ids (or a pooled call's arguments) and an output or gradient of the shape the call needs (a row
// per id, or per bag). The caller then checks that outputs lie apart from what it reads.

struct LookupArguments {
  IndexTensor ids;
  std::span<float> out;
};
LookupArguments lookup_arguments(TensorStaging& staging, const DLTensor* indices, DLTensor* out, std::int64_t dim);

struct TrainArguments {
  IndexTensor ids;
  std::span<const float> grad;
};
TrainArguments train_arguments(TensorStaging& staging, const DLTensor* indices, const DLTensor* grad_out,
                               std::int64_t dim);

struct PooledLookupArguments {
  PooledArguments pooled;
  std::span<float> out;
};
PooledLookupArguments pooled_lookup_arguments(TensorStaging& staging, const DLTensor* indices, const DLTensor* offsets,
                                              const DLTensor* per_sample_weights, const char* mode, DLTensor* out,
                                              std::int64_t dim);

struct PooledTrainArguments {
  PooledArguments pooled;
  std::span<const float> grad;
};
PooledTrainArguments pooled_train_arguments(TensorStaging& staging, const DLTensor* indices, const DLTensor* offsets,
                                            const DLTensor* per_sample_weights, const char* mode,
                                            const DLTensor* grad_out, std::int64_t dim);

}  // namespace embedkit::detail
