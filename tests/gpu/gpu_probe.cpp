// gpu_probe: what scripts/gpu_check.sh asks first: is a CUDA device usable here? Prints each device
// (name, compute capability, memory), the driver's and the runtime's CUDA versions, and the device's
// copy bandwidth (device to device, counting bytes read and written); exits 0 when a device is
// usable, 2 when none is (saying why, with the runtime's error name), within seconds either way.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstring>

namespace {

// Device-to-device copy bandwidth of device 0 in GB/s (bytes read + written), the best of 10 copies
// of 1 GiB (or a quarter of free memory when smaller); 0 when it cannot be measured.
double copy_bandwidth_gbs() {
  std::size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) return 0.0;
  std::size_t bytes = std::size_t{1} << 30;
  if (bytes > free_bytes / 4) bytes = free_bytes / 4;
  void* from = nullptr;
  void* to = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  double best = 0.0;
  if (cudaMalloc(&from, bytes) == cudaSuccess && cudaMalloc(&to, bytes) == cudaSuccess &&
      cudaEventCreate(&start) == cudaSuccess && cudaEventCreate(&stop) == cudaSuccess) {
    cudaMemset(from, 1, bytes);
    for (int k = 0; k < 11; ++k) {
      cudaEventRecord(start);
      cudaMemcpy(to, from, bytes, cudaMemcpyDeviceToDevice);
      cudaEventRecord(stop);
      cudaEventSynchronize(stop);
      float ms = 0;
      cudaEventElapsedTime(&ms, start, stop);
      const double gbs = 2.0 * static_cast<double>(bytes) / (static_cast<double>(ms) * 1e6);
      if (k > 0 && gbs > best) best = gbs;  // the first copy warms up
    }
  }
  if (start != nullptr) cudaEventDestroy(start);
  if (stop != nullptr) cudaEventDestroy(stop);
  cudaFree(from);
  cudaFree(to);
  (void)cudaGetLastError();
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const bool measure = argc > 1 && std::strcmp(argv[1], "--bandwidth") == 0;
  int driver = 0, runtime = 0, count = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  std::printf("cuda driver %d.%d, runtime %d.%d\n", driver / 1000, driver % 1000 / 10, runtime / 1000,
              runtime % 1000 / 10);
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    std::printf("no usable CUDA device: %s\n",
                status != cudaSuccess ? cudaGetErrorName(status) : "cudaGetDeviceCount reports 0 devices");
    return 2;
  }
  for (int device = 0; device < count; ++device) {
    cudaDeviceProp properties{};
    if (cudaGetDeviceProperties(&properties, device) != cudaSuccess) continue;
    std::printf("device %d: %s, sm_%d%d, %.1f GiB, %d multiprocessors\n", device, properties.name, properties.major,
                properties.minor, static_cast<double>(properties.totalGlobalMem) / (1 << 30),
                properties.multiProcessorCount);
  }
  if (measure) std::printf("copy bandwidth: %.1f GB/s\n", copy_bandwidth_gbs());
  return 0;
}
