#pragma once
// Rows moved between the GPUs of MPI ranks by NCCL: a communicator over the same ranks, one device
// per rank, bootstrapped over MPI (rank 0 makes NCCL's unique id and broadcasts it), and an
// all-to-all of rows in device memory. Built with CUDA, MPI and NCCL; its test runs on GPUs only.

#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>

#include <cstdint>
#include <span>

namespace embedkit::detail {

class NcclExchange {
 public:
  /// Collective over `comm`: an NCCL communicator over its ranks, this rank on CUDA device `device`.
  /// Throws Error(internal) naming the NCCL or CUDA call that fails.
  NcclExchange(MPI_Comm comm, int device);
  ~NcclExchange();
  NcclExchange(const NcclExchange&) = delete;
  NcclExchange& operator=(const NcclExchange&) = delete;

  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }

  /// Collective all-to-all of rows of `dim` floats in this rank's device memory, on `stream`: `send`
  /// holds send_counts[r] rows for each rank r, rank after rank; `recv` gets recv_counts[r] rows
  /// from each rank r likewise. Returns once the stream has finished the exchange.
  void exchange_rows(const float* send, std::span<const std::int64_t> send_counts, float* recv,
                     std::span<const std::int64_t> recv_counts, std::int64_t dim, cudaStream_t stream);

 private:
  ncclComm_t comm_ = nullptr;
  int device_ = 0;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace embedkit::detail
