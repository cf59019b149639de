// The CUDA sparse gradient: keys, CUB radix sort and run-length encoding, the canonical reduction.
#include <embedkit/detail/id_range.hpp>
#include <embedkit/detail/summation_order.hpp>

#include "cuda_try.hpp"
#include "segment_reduce.hpp"
#include "sparse_grad.hpp"

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_run_length_encode.cuh>
#include <cub/device/device_scan.cuh>
#include <cuda_runtime_api.h>

namespace embedkit::kernels {
namespace {

constexpr int kThreads = 256;

unsigned int blocks_for(std::int64_t items) { return static_cast<unsigned int>((items + kThreads - 1) / kThreads); }

// Left-out positions (bad ids, padding) get the key input_dim: they sort last, in one run dropped
// below. An out-of-range id also raises the bounds check's flag.
template <class Index>
__global__ void make_keys_kernel(const Index* ids, std::int64_t count, std::int64_t input_dim, detail::Padding padding,
                                 std::int64_t* keys, std::int64_t* positions, std::int64_t* out_of_range) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= count) return;
  const std::int64_t id = static_cast<std::int64_t>(ids[i]);
  const bool in_range = detail::id_in_range(id, input_dim);
  if (!in_range) *out_of_range = 1;  // every writer stores the same value
  keys[i] = in_range && !padding.is(id) ? id : input_dim;
  positions[i] = i;
}

__global__ void piece_counts_kernel(const std::int64_t* run_counts, std::int64_t runs, std::int64_t* pieces) {
  const std::int64_t u = static_cast<std::int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (u < runs) pieces[u] = detail::sum_piece_count(run_counts[u]);
}

template <class T>
T* at(void* workspace, std::size_t offset) {
  return reinterpret_cast<T*>(static_cast<unsigned char*>(workspace) + offset);
}

// The run total and the bounds check's flag, read back in one copy.
struct Tallies {
  std::int64_t runs;
  std::int64_t out_of_range;
};

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

FoldCubBytes query_fold_cub_bytes(std::int64_t count, std::int64_t input_dim, void* stream_handle) {
  const auto stream = static_cast<cudaStream_t>(stream_handle);
  FoldCubBytes bytes;
  if (count == 0) return bytes;
  expect_fold_count(count);
  // With no scratch pointer CUB only computes its size: nothing is read or written.
  std::int64_t* none = nullptr;
  EMBEDKIT_CUDA_TRY(cub::DeviceRadixSort::SortPairs(nullptr, bytes.sort, none, none, none, none, count, 0,
                                                    fold_key_bits(input_dim), stream));
  EMBEDKIT_CUDA_TRY(cub::DeviceRunLengthEncode::Encode(nullptr, bytes.encode, none, none, none, none,
                                                       static_cast<int>(count), stream));
  EMBEDKIT_CUDA_TRY(cub::DeviceScan::InclusiveSum(nullptr, bytes.scan, none, none, count, stream));
  return bytes;
}

template <class Index>
FoldPieces run_fold_pieces(const Index* ids, std::int64_t count, std::int64_t input_dim, detail::Padding padding,
                           const float* grad_rows, std::int64_t dim, void* workspace, const FoldWorkspace& layout,
                           void* stream_handle) {
  const auto stream = static_cast<cudaStream_t>(stream_handle);
  FoldPieces out;
  if (count == 0) return out;
  expect_fold_count(count);  // before anything is queued: the run-length encode takes an int
  auto* keys = at<std::int64_t>(workspace, layout.keys);
  auto* positions = at<std::int64_t>(workspace, layout.positions);
  auto* sorted_keys = at<std::int64_t>(workspace, layout.sorted_keys);
  auto* sorted_positions = at<std::int64_t>(workspace, layout.sorted_positions);
  void* scratch = at<void>(workspace, layout.cub_scratch);
  std::size_t scratch_bytes = layout.cub_scratch_bytes;
  auto* tallies = at<std::int64_t>(workspace, layout.run_total);  // the run total, then the flag
  EMBEDKIT_CUDA_TRY(cudaMemsetAsync(tallies, 0, 2 * sizeof(std::int64_t), stream));
  make_keys_kernel<<<blocks_for(count), kThreads, 0, stream>>>(ids, count, input_dim, padding, keys, positions,
                                                               tallies + 1);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
  EMBEDKIT_CUDA_TRY(cub::DeviceRadixSort::SortPairs(scratch, scratch_bytes, keys, sorted_keys, positions,
                                                    sorted_positions, count, 0, fold_key_bits(input_dim), stream));

  auto* unique = at<std::int64_t>(workspace, layout.unique);
  auto* run_counts = at<std::int64_t>(workspace, layout.run_counts);
  scratch_bytes = layout.cub_scratch_bytes;
  EMBEDKIT_CUDA_TRY(cub::DeviceRunLengthEncode::Encode(scratch, scratch_bytes, sorted_keys, unique, run_counts, tallies,
                                                       static_cast<int>(count), stream));
  const Tallies read = read_back(reinterpret_cast<const Tallies*>(tallies), stream);
  out.out_of_range = read.out_of_range != 0;
  std::int64_t runs = read.runs;
  if (runs > 0 && read_back(unique + runs - 1, stream) == input_dim) --runs;  // the left-out positions
  out.ids = unique;
  out.runs = runs;
  if (runs == 0) return out;

  // run_begin and first_piece: inclusive scans written one past a leading zero.
  auto* run_begin = at<std::int64_t>(workspace, layout.run_begin);
  auto* first_piece = at<std::int64_t>(workspace, layout.first_piece);
  auto* piece_counts = at<std::int64_t>(workspace, layout.piece_counts);
  EMBEDKIT_CUDA_TRY(cudaMemsetAsync(run_begin, 0, sizeof(std::int64_t), stream));
  EMBEDKIT_CUDA_TRY(cudaMemsetAsync(first_piece, 0, sizeof(std::int64_t), stream));
  piece_counts_kernel<<<blocks_for(runs), kThreads, 0, stream>>>(run_counts, runs, piece_counts);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
  scratch_bytes = layout.cub_scratch_bytes;
  EMBEDKIT_CUDA_TRY(cub::DeviceScan::InclusiveSum(scratch, scratch_bytes, run_counts, run_begin + 1, runs, stream));
  scratch_bytes = layout.cub_scratch_bytes;
  EMBEDKIT_CUDA_TRY(cub::DeviceScan::InclusiveSum(scratch, scratch_bytes, piece_counts, first_piece + 1, runs, stream));
  const std::int64_t pieces = read_back(first_piece + runs, stream);

  auto* piece_begin = at<std::int64_t>(workspace, layout.piece_begin);
  auto* piece_end = at<std::int64_t>(workspace, layout.piece_end);
  auto* piece_sums = at<float>(workspace, layout.piece_sums);
  run_piece_layout(PieceLayoutArgs{run_begin, first_piece, runs, piece_begin, piece_end}, stream);
  run_piece_sums(PieceSumArgs{sorted_positions, piece_begin, piece_end, pieces, grad_rows, dim, piece_sums}, stream);
  out.first_piece = first_piece;
  out.piece_sums = piece_sums;
  return out;
}

void run_fold_rows(const FoldPieces& pieces, std::int64_t dim, std::int64_t* ids, float* rows, void* stream_handle) {
  if (pieces.runs == 0) return;
  const auto stream = static_cast<cudaStream_t>(stream_handle);
  EMBEDKIT_CUDA_TRY(cudaMemcpyAsync(ids, pieces.ids, static_cast<std::size_t>(pieces.runs) * sizeof(std::int64_t),
                                    cudaMemcpyDeviceToDevice, stream));
  run_combine(CombineArgs{pieces.first_piece, pieces.runs, pieces.piece_sums, dim, rows}, stream);
}

template FoldPieces run_fold_pieces(const std::int32_t*, std::int64_t, std::int64_t, detail::Padding, const float*,
                                    std::int64_t, void*, const FoldWorkspace&, void*);
template FoldPieces run_fold_pieces(const std::int64_t*, std::int64_t, std::int64_t, detail::Padding, const float*,
                                    std::int64_t, void*, const FoldWorkspace&, void*);

}  // namespace embedkit::kernels
