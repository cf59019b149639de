#pragma once
// Whether a CUDA device is usable here, and what a GPU test does when none is: skip, saying why;
// or, under EMBEDKIT_REQUIRE_GPU=1 (scripts/gpu_check.sh sets it), fail, so a GPU machine whose
// driver cannot run this build reports failures instead of zero tests run.

#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cstdlib>
#include <string>

namespace embedkit::testing {

/// Why no CUDA device is usable ("" when one is), in words with the runtime's error name.
inline std::string cuda_device_unusable_reason() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();  // not left pending for the next check
    return std::string("no usable CUDA device (") + cudaGetErrorName(status) + ": " + cudaGetErrorString(status) + ")";
  }
  return count == 0 ? "no CUDA device present" : "";
}

/// How many CUDA devices are usable (0 when none is).
inline int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

/// Whether EMBEDKIT_REQUIRE_GPU=1 asks that a missing GPU fail the GPU tests instead of skipping them.
inline bool gpu_required() {
  const char* value = std::getenv("EMBEDKIT_REQUIRE_GPU");
  return value != nullptr && std::string(value) == "1";
}

}  // namespace embedkit::testing

/// In a test body or SetUp: skips (or fails under EMBEDKIT_REQUIRE_GPU=1) when no device is usable.
#define EMBEDKIT_NEEDS_CUDA_DEVICE()                                                                  \
  do {                                                                                                \
    const std::string unusable_ = ::embedkit::testing::cuda_device_unusable_reason();                 \
    if (!unusable_.empty()) {                                                                         \
      if (::embedkit::testing::gpu_required()) FAIL() << "EMBEDKIT_REQUIRE_GPU=1, but " << unusable_; \
      GTEST_SKIP() << unusable_;                                                                      \
    }                                                                                                 \
  } while (0)

/// As EMBEDKIT_NEEDS_CUDA_DEVICE, for a test that needs `count` devices: with fewer it skips, even
/// under EMBEDKIT_REQUIRE_GPU=1 (a one-GPU machine is a valid GPU machine).
#define EMBEDKIT_NEEDS_CUDA_DEVICES(count)                                                                 \
  do {                                                                                                     \
    EMBEDKIT_NEEDS_CUDA_DEVICE();                                                                          \
    if (::embedkit::testing::cuda_device_count() < (count))                                                \
      GTEST_SKIP() << "needs " << (count) << " CUDA devices, " << ::embedkit::testing::cuda_device_count() \
                   << " present";                                                                          \
  } while (0)
