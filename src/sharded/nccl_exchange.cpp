#include "sharded/nccl_exchange.hpp"

#include <embedkit/status.hpp>

#include <fmt/format.h>

namespace embedkit::detail {
namespace {

void nccl_try(ncclResult_t result, const char* call) {
  if (result != ncclSuccess) {
    throw Error(Status::internal, fmt::format("{} failed: {}", call, ncclGetErrorString(result)));
  }
}

void cuda_try(cudaError_t result, const char* call) {
  if (result != cudaSuccess) {
    throw Error(Status::internal,
                fmt::format("{} failed: {}: {}", call, cudaGetErrorName(result), cudaGetErrorString(result)));
  }
}

}  // namespace

NcclExchange::NcclExchange(MPI_Comm comm, int device) : device_(device) {
  MPI_Comm_rank(comm, &rank_);
  MPI_Comm_size(comm, &size_);
  ncclUniqueId id{};
  if (rank_ == 0) nccl_try(ncclGetUniqueId(&id), "ncclGetUniqueId");
  MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, comm);
  cuda_try(cudaSetDevice(device_), "cudaSetDevice");
  nccl_try(ncclCommInitRank(&comm_, size_, id, rank_), "ncclCommInitRank");
}

NcclExchange::~NcclExchange() {
  if (comm_ != nullptr) ncclCommDestroy(comm_);
}

void NcclExchange::exchange_rows(const float* send, std::span<const std::int64_t> send_counts, float* recv,
                                 std::span<const std::int64_t> recv_counts, std::int64_t dim, cudaStream_t stream) {
  cuda_try(cudaSetDevice(device_), "cudaSetDevice");
  const auto row = static_cast<std::size_t>(dim);
  std::size_t sent = 0, received = 0;
  // One group: NCCL pairs every send with its peer's receive without deadlocking on the order.
  nccl_try(ncclGroupStart(), "ncclGroupStart");
  for (int r = 0; r < size_; ++r) {
    const auto out = static_cast<std::size_t>(send_counts[static_cast<std::size_t>(r)]) * row;
    const auto in = static_cast<std::size_t>(recv_counts[static_cast<std::size_t>(r)]) * row;
    if (out > 0) nccl_try(ncclSend(send + sent, out, ncclFloat32, r, comm_, stream), "ncclSend");
    if (in > 0) nccl_try(ncclRecv(recv + received, in, ncclFloat32, r, comm_, stream), "ncclRecv");
    sent += out;
    received += in;
  }
  nccl_try(ncclGroupEnd(), "ncclGroupEnd");
  cuda_try(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
}

}  // namespace embedkit::detail
