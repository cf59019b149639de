// The CUDA sparse gradient: keys, CUB radix sort and run-length encoding, the canonical reduction.
#include "cuda_try.hpp"
#include "segment_reduce.hpp"
#include "sparse_grad.hpp"

#include <embedkit/detail/summation_order.hpp>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_run_length_encode.cuh>
#include <cub/device/device_scan.cuh>
#include <cuda_runtime_api.h>

namespace embedkit::kernels {
namespace {

constexpr int kThreads = 256;

unsigned int blocks_for(std::int64_t items) { return static_cast<unsigned int>((items + kThreads - 1) / kThreads); }

// Left-out positions (bad ids, padding) get the key input_dim: they sort last, in one run dropped
// below.
template <class Index>
__global__ void make_keys_kernel(const Index* ids, std::int64_t count, std::int64_t input_dim,
                                 std::int64_t padding_idx, std::int64_t* keys, std::int64_t* positions) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= count) return;
  const std::int64_t id = static_cast<std::int64_t>(ids[i]);
  const bool kept = static_cast<std::uint64_t>(id) < static_cast<std::uint64_t>(input_dim) && id != padding_idx;
  keys[i] = kept ? id : input_dim;
  positions[i] = i;
}

__global__ void piece_counts_kernel(const std::int64_t* run_counts, std::int64_t runs, std::int64_t* pieces) {
  const std::int64_t u = static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (u < runs) pieces[u] = detail::sum_piece_count(run_counts[u]);
}

template <class T>
T* take(const DeviceAllocator& allocator, std::int64_t count) {
  return static_cast<T*>(allocator.allocate(static_cast<std::size_t>(count > 0 ? count : 1) * sizeof(T), allocator.context));
}

template <class T>
T read_back(const T* device, cudaStream_t stream) {
  T value{};
  EMBEDKIT_CUDA_TRY(cudaMemcpyAsync(&value, device, sizeof(T), cudaMemcpyDeviceToHost, stream));
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(stream));
  return value;
}

}  // namespace

int fold_key_bits(std::int64_t input_dim) {
  int bits = 1;
  while (bits < 63 && (std::int64_t{1} << bits) <= input_dim) ++bits;
  return bits;
}

template <class Index>
FoldPieces run_fold_pieces(const Index* ids, std::int64_t count, std::int64_t input_dim, std::int64_t padding_idx,
                           const float* grad_rows, std::int64_t dim, const DeviceAllocator& allocator,
                           void* stream_handle) {
  const auto stream = static_cast<cudaStream_t>(stream_handle);
  FoldPieces out;
  if (count == 0) return out;
  std::int64_t* keys = take<std::int64_t>(allocator, count);
  std::int64_t* positions = take<std::int64_t>(allocator, count);
  std::int64_t* sorted_keys = take<std::int64_t>(allocator, count);
  std::int64_t* sorted_positions = take<std::int64_t>(allocator, count);
  make_keys_kernel<<<blocks_for(count), kThreads, 0, stream>>>(ids, count, input_dim, padding_idx, keys, positions);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());

  // Each CUB call sizes its scratch first (the two-phase query), then runs.
  const int key_bits = fold_key_bits(input_dim);
  std::size_t scratch_bytes = 0;
  EMBEDKIT_CUDA_TRY(cub::DeviceRadixSort::SortPairs(nullptr, scratch_bytes, keys, sorted_keys, positions,
                                                    sorted_positions, count, 0, key_bits, stream));
  void* scratch = allocator.allocate(scratch_bytes, allocator.context);
  EMBEDKIT_CUDA_TRY(cub::DeviceRadixSort::SortPairs(scratch, scratch_bytes, keys, sorted_keys, positions,
                                                    sorted_positions, count, 0, key_bits, stream));

  std::int64_t* unique = take<std::int64_t>(allocator, count);
  std::int64_t* run_counts = take<std::int64_t>(allocator, count);
  std::int64_t* run_total = take<std::int64_t>(allocator, 1);
  scratch_bytes = 0;
  EMBEDKIT_CUDA_TRY(cub::DeviceRunLengthEncode::Encode(nullptr, scratch_bytes, sorted_keys, unique, run_counts,
                                                       run_total, count, stream));
  scratch = allocator.allocate(scratch_bytes, allocator.context);
  EMBEDKIT_CUDA_TRY(cub::DeviceRunLengthEncode::Encode(scratch, scratch_bytes, sorted_keys, unique, run_counts,
                                                       run_total, count, stream));
  std::int64_t runs = read_back(run_total, stream);
  if (runs > 0 && read_back(unique + runs - 1, stream) == input_dim) --runs;  // the left-out positions
  out.ids = unique;
  out.runs = runs;
  if (runs == 0) return out;

  // run_begin and first_piece: inclusive scans written one past a leading zero.
  std::int64_t* run_begin = take<std::int64_t>(allocator, runs + 1);
  std::int64_t* first_piece = take<std::int64_t>(allocator, runs + 1);
  std::int64_t* piece_counts = take<std::int64_t>(allocator, runs);
  EMBEDKIT_CUDA_TRY(cudaMemsetAsync(run_begin, 0, sizeof(std::int64_t), stream));
  EMBEDKIT_CUDA_TRY(cudaMemsetAsync(first_piece, 0, sizeof(std::int64_t), stream));
  piece_counts_kernel<<<blocks_for(runs), kThreads, 0, stream>>>(run_counts, runs, piece_counts);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
  scratch_bytes = 0;
  EMBEDKIT_CUDA_TRY(cub::DeviceScan::InclusiveSum(nullptr, scratch_bytes, run_counts, run_begin + 1, runs, stream));
  std::size_t piece_scratch_bytes = 0;
  EMBEDKIT_CUDA_TRY(
      cub::DeviceScan::InclusiveSum(nullptr, piece_scratch_bytes, piece_counts, first_piece + 1, runs, stream));
  scratch_bytes = scratch_bytes > piece_scratch_bytes ? scratch_bytes : piece_scratch_bytes;
  scratch = allocator.allocate(scratch_bytes, allocator.context);
  EMBEDKIT_CUDA_TRY(cub::DeviceScan::InclusiveSum(scratch, scratch_bytes, run_counts, run_begin + 1, runs, stream));
  EMBEDKIT_CUDA_TRY(cub::DeviceScan::InclusiveSum(scratch, scratch_bytes, piece_counts, first_piece + 1, runs, stream));
  const std::int64_t pieces = read_back(first_piece + runs, stream);

  std::int64_t* piece_begin = take<std::int64_t>(allocator, pieces);
  std::int64_t* piece_end = take<std::int64_t>(allocator, pieces);
  float* piece_sums = take<float>(allocator, pieces * dim);
  run_piece_layout(PieceLayoutArgs{run_begin, first_piece, runs, piece_begin, piece_end}, stream);
  run_piece_sums(PieceSumArgs{sorted_positions, piece_begin, piece_end, pieces, grad_rows, dim, piece_sums}, stream);
  out.first_piece = first_piece;
  out.piece_sums = piece_sums;
  return out;
}

template <class Index>
FoldOutput run_fold(const Index* ids, std::int64_t count, std::int64_t input_dim, std::int64_t padding_idx,
                    const float* grad_rows, std::int64_t dim, const DeviceAllocator& allocator, void* stream) {
  const FoldPieces pieces = run_fold_pieces(ids, count, input_dim, padding_idx, grad_rows, dim, allocator, stream);
  FoldOutput out;
  out.ids = pieces.ids;
  out.count = pieces.runs;
  if (count == 0) return out;
  out.rows = take<float>(allocator, pieces.runs * dim);
  if (pieces.runs > 0) {
    run_combine(CombineArgs{pieces.first_piece, pieces.runs, pieces.piece_sums, dim, out.rows}, stream);
  }
  return out;
}

template FoldPieces run_fold_pieces(const std::int32_t*, std::int64_t, std::int64_t, std::int64_t, const float*,
                                    std::int64_t, const DeviceAllocator&, void*);
template FoldPieces run_fold_pieces(const std::int64_t*, std::int64_t, std::int64_t, std::int64_t, const float*,
                                    std::int64_t, const DeviceAllocator&, void*);
template FoldOutput run_fold(const std::int32_t*, std::int64_t, std::int64_t, std::int64_t, const float*,
                             std::int64_t, const DeviceAllocator&, void*);
template FoldOutput run_fold(const std::int64_t*, std::int64_t, std::int64_t, std::int64_t, const float*,
                             std::int64_t, const DeviceAllocator&, void*);

}  // namespace embedkit::kernels
