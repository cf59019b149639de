// gpu_probe: what scripts/gpu_check.sh asks first: is a CUDA device usable here? Prints each device
// (name, compute capability, memory) and the driver's and the runtime's CUDA versions; exits 0 when
// a device is usable, 2 when none is (saying why, with the runtime's error name), within seconds
// either way. (The device's copy bandwidth is gpu_bench's to measure, beside what it compares.)
#include <cuda_runtime_api.h>

#include <cstdio>

int main() {
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
  return 0;
}
