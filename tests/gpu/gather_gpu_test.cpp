// The CUDA gather on a real device against the CPU gather. Skips when no device is usable (fails
// under EMBEDKIT_REQUIRE_GPU=1).
#include <gtest/gtest.h>

#include "cpu/gather.hpp"
#include "kernels/gather.hpp"
#include "tests/support/gpu_device.hpp"

#include <cuda_runtime_api.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace {

#define CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call

template <class T>
T* device_alloc(std::size_t count) {
  void* device = nullptr;
  return cudaMalloc(&device, count * sizeof(T)) == cudaSuccess ? static_cast<T*>(device) : nullptr;
}

template <class T>
T* device_copy(const std::vector<T>& host) {
  T* device = device_alloc<T>(host.size());
  if (device != nullptr) cudaMemcpy(device, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice);
  return device;
}

class GatherGpu : public ::testing::TestWithParam<std::int64_t> {
 protected:
  void SetUp() override { EMBEDKIT_NEEDS_CUDA_DEVICE(); }
};

TEST_P(GatherGpu, MatchesCpuGather) {
  const std::int64_t dim = GetParam();
  constexpr std::int64_t kRows = 5000, kCount = 100000;
  std::mt19937 rng(1);
  std::vector<float> weights(static_cast<std::size_t>(kRows * dim));
  for (auto& w : weights) w = std::uniform_real_distribution<float>(-1, 1)(rng);
  std::vector<std::int32_t> ids(kCount);
  for (auto& id : ids) id = std::uniform_int_distribution<std::int32_t>(0, kRows - 1)(rng);
  ids[0] = 7;  // padding row
  std::vector<float> expected(static_cast<std::size_t>(kCount * dim));
  embedkit::cpu::gather_rows(weights.data(), kRows, dim, ids.data(), kCount, {true, 7}, expected.data());

  float* d_weights = device_copy(weights);
  std::int32_t* d_ids = device_copy(ids);
  float* d_out = device_alloc<float>(expected.size());
  unsigned int* d_flag = device_alloc<unsigned int>(1);
  ASSERT_TRUE(d_weights && d_ids && d_out && d_flag) << "cudaMalloc failed";
  CUDA_OK(cudaMemset(d_flag, 0, sizeof(unsigned int)));
  embedkit::kernels::run_gather(d_weights, kRows, dim, d_ids, kCount, {true, 7}, d_out, d_flag, nullptr);
  CUDA_OK(cudaDeviceSynchronize());
  std::vector<float> got(expected.size());
  unsigned int flag = 7;
  CUDA_OK(cudaMemcpy(got.data(), d_out, got.size() * sizeof(float), cudaMemcpyDeviceToHost));
  CUDA_OK(cudaMemcpy(&flag, d_flag, sizeof(flag), cudaMemcpyDeviceToHost));
  cudaFree(d_weights);
  cudaFree(d_ids);
  cudaFree(d_out);
  cudaFree(d_flag);
  EXPECT_EQ(flag, 0u);
  EXPECT_EQ(got, expected);
}

INSTANTIATE_TEST_SUITE_P(Dims, GatherGpu, ::testing::Values(1, 3, 4, 64, 129, 512));

}  // namespace
