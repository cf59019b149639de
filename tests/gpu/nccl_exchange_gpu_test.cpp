// NCCL's all-to-all of rows between the GPUs of MPI ranks (bootstrapped over MPI) against the
// rows every rank knows it should receive. Run under mpiexec, one GPU per rank (rank % devices);
// skips on every rank when a rank has no usable device.
#include <gtest/gtest.h>

#include "src/sharded/nccl_exchange.hpp"
#include "tests/support/gpu_device.hpp"

#include <cuda_runtime_api.h>
#include <mpi.h>

#include <cstdint>
#include <vector>

namespace {

constexpr std::int64_t kDim = 5;

// Row k that rank `from` sends to rank `to`: its values name both ranks and k.
float value(int from, int to, std::int64_t k, std::int64_t c) {
  return static_cast<float>(from * 1000 + to * 100 + k * 10 + c);
}

// Rank `from` sends (from + to + 1) rows to rank `to`: uneven counts, none empty.
std::int64_t rows_sent(int from, int to) { return from + to + 1; }

TEST(NcclExchangeGpu, EveryRankReceivesTheRowsSentToIt) {
  int rank = 0, size = 1, devices = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int usable = cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0 ? 1 : 0, all_usable = 0;
  MPI_Allreduce(&usable, &all_usable, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (all_usable == 0) {
    if (embedkit::testing::gpu_required()) FAIL() << "EMBEDKIT_REQUIRE_GPU=1, but no usable CUDA device on some rank";
    GTEST_SKIP() << "no usable CUDA device on some rank";
  }

  embedkit::detail::NcclExchange exchange(MPI_COMM_WORLD, rank % devices);
  std::vector<std::int64_t> send_counts, recv_counts;
  std::vector<float> send, expected;
  for (int r = 0; r < size; ++r) {
    send_counts.push_back(rows_sent(rank, r));
    recv_counts.push_back(rows_sent(r, rank));
    for (std::int64_t k = 0; k < rows_sent(rank, r); ++k) {
      for (std::int64_t c = 0; c < kDim; ++c) send.push_back(value(rank, r, k, c));
    }
    for (std::int64_t k = 0; k < rows_sent(r, rank); ++k) {
      for (std::int64_t c = 0; c < kDim; ++c) expected.push_back(value(r, rank, k, c));
    }
  }
  float *device_send = nullptr, *device_recv = nullptr;
  ASSERT_EQ(cudaMalloc(&device_send, send.size() * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&device_recv, expected.size() * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(device_send, send.data(), send.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  exchange.exchange_rows(device_send, send_counts, device_recv, recv_counts, kDim, stream);
  std::vector<float> received(expected.size());
  ASSERT_EQ(cudaMemcpy(received.data(), device_recv, received.size() * sizeof(float), cudaMemcpyDeviceToHost),
            cudaSuccess);
  EXPECT_EQ(received, expected);
  cudaStreamDestroy(stream);
  cudaFree(device_send);
  cudaFree(device_recv);
}

}  // namespace
