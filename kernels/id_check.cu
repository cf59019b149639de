// The CUDA bounds check's second pass: a __global__ wrapper over out_of_range_position, folding
// the positions it finds into a count (atomicAdd) and the first (atomicMin), and its launcher.
#include "cuda_try.hpp"
#include "id_check.hpp"
#include "id_check_kernel.hpp"

#include <cuda_runtime_api.h>

namespace embedkit::kernels {
namespace {

// tallies[0]: how many; tallies[1]: the first position (count when none).
template <class Index>
__global__ void find_out_of_range_kernel(IdCheckArgs<Index> args, unsigned long long* tallies) {
  const std::int64_t position =
      out_of_range_position(static_cast<std::int64_t>(blockIdx.x), static_cast<int>(threadIdx.x), args);
  if (position < 0) return;
  atomicAdd(&tallies[0], 1ull);
  atomicMin(&tallies[1], static_cast<unsigned long long>(position));
}

}  // namespace

template <class Index>
OutOfRangeIds run_find_out_of_range(const Index* ids, std::int64_t count, std::int64_t input_dim, void* scratch,
                                    void* stream_handle) {
  const auto stream = static_cast<cudaStream_t>(stream_handle);
  OutOfRangeIds found;
  if (count == 0) return found;
  auto* tallies = static_cast<unsigned long long*>(scratch);
  const unsigned long long initial[2] = {0ull, static_cast<unsigned long long>(count)};
  EMBEDKIT_CUDA_TRY(cudaMemcpyAsync(tallies, initial, sizeof initial, cudaMemcpyHostToDevice, stream));
  const auto blocks = static_cast<unsigned int>((count + kIdCheckBlockThreads - 1) / kIdCheckBlockThreads);
  find_out_of_range_kernel<<<blocks, kIdCheckBlockThreads, 0, stream>>>(IdCheckArgs<Index>{ids, count, input_dim},
                                                                        tallies);
  EMBEDKIT_CUDA_TRY(cudaPeekAtLastError());
  unsigned long long result[2] = {};
  EMBEDKIT_CUDA_TRY(cudaMemcpyAsync(result, tallies, sizeof result, cudaMemcpyDeviceToHost, stream));
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(stream));
  found.count = static_cast<std::int64_t>(result[0]);
  if (found.count == 0) return found;
  found.first_position = static_cast<std::int64_t>(result[1]);
  Index id{};
  EMBEDKIT_CUDA_TRY(cudaMemcpyAsync(&id, ids + found.first_position, sizeof id, cudaMemcpyDeviceToHost, stream));
  EMBEDKIT_CUDA_TRY(cudaStreamSynchronize(stream));
  found.first_id = static_cast<std::int64_t>(id);
  return found;
}

template OutOfRangeIds run_find_out_of_range(const std::int32_t*, std::int64_t, std::int64_t, void*, void*);
template OutOfRangeIds run_find_out_of_range(const std::int64_t*, std::int64_t, std::int64_t, void*, void*);

}  // namespace embedkit::kernels
