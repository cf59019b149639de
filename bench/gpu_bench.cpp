// gpu_bench: the CUDA backend's lookup, pooled lookup and fused train step on device-resident data,
// at dims 64, 128 and 256, as GB/s and as fractions of (a) the device's copy bandwidth measured in
// this run (device-to-device cudaMemcpy, bytes read + written) and (b) the HBM roofline from the
// device's memory clock and bus width. Run by scripts/gpu_check.sh after the GPU suite; the targets
// (issue #26): gather >= 85% and pooled >= 80% of copy bandwidth at dim >= 128, the train step
// >= 50% of its byte roofline. Bytes counted are the bytes each operation must move at least:
//   gather   ids + rows read + rows written
//   pooled   ids + offsets + rows read + one row per bag written
//   step     ids + gradient rows read + each distinct row's weights and optimizer state read and
//            written (the sort's and the fold's scratch traffic is not counted: it is overhead)
// Prints a table and, with --json FILE, one JSON object per measurement. Exits 2 without a device.
#include <embedkit/config.hpp>

#include "config/initializer_resolve.hpp"
#include "config/optimizer_rules.hpp"
#include "config/optimizer_state.hpp"
#include "kernels/cuda_backend.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using embedkit::OptimizerConfig;
using embedkit::OptimizerKind;
using embedkit::PoolingMode;
using embedkit::TableConfig;
namespace detail = embedkit::detail;

constexpr std::int64_t kRows = std::int64_t{1} << 22;     // 4M rows: 1-4 GiB of weights, far beyond L2
constexpr std::int64_t kLookups = std::int64_t{1} << 20;  // ids per batch
constexpr std::int64_t kBagSize = 32;
constexpr int kRepeats = 20;

struct Device {
  std::string name;
  double copy_gbs = 0;      // measured: bytes read + written per second, device to device
  double roofline_gbs = 0;  // memory clock × bus width × 2 (double data rate); 0 when unknown
};

double seconds_of(cudaEvent_t start, cudaEvent_t stop) {
  float ms = 0;
  cudaEventElapsedTime(&ms, start, stop);
  return static_cast<double>(ms) / 1e3;
}

// Times `body` (which queues work on the default stream) kRepeats times after one warm-up; the
// median's seconds.
template <class Body>
double median_seconds(Body&& body) {
  cudaEvent_t start = nullptr, stop = nullptr;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  body();
  cudaDeviceSynchronize();
  std::vector<double> times;
  for (int k = 0; k < kRepeats; ++k) {
    cudaEventRecord(start);
    body();
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    times.push_back(seconds_of(start, stop));
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::nth_element(times.begin(), times.begin() + kRepeats / 2, times.end());
  return times[kRepeats / 2];
}

Device describe_device() {
  Device device;
  cudaDeviceProp properties{};
  cudaGetDeviceProperties(&properties, 0);
  device.name = properties.name;
  int clock_khz = 0, bus_bits = 0;
  if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, 0) == cudaSuccess &&
      cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, 0) == cudaSuccess) {
    device.roofline_gbs = 2.0 * clock_khz * 1e3 * (bus_bits / 8.0) / 1e9;
  }
  (void)cudaGetLastError();
  const std::size_t bytes = std::size_t{1} << 30;
  void* from = nullptr;
  void* to = nullptr;
  if (cudaMalloc(&from, bytes) == cudaSuccess && cudaMalloc(&to, bytes) == cudaSuccess) {
    cudaMemset(from, 1, bytes);
    const double seconds = median_seconds([&] { cudaMemcpy(to, from, bytes, cudaMemcpyDeviceToDevice); });
    device.copy_gbs = 2.0 * static_cast<double>(bytes) / seconds / 1e9;
  }
  cudaFree(from);
  cudaFree(to);
  (void)cudaGetLastError();
  return device;
}

template <class T>
detail::DeviceBuffer upload(detail::Backend& backend, const std::vector<T>& host, const char* what) {
  detail::DeviceBuffer buffer = backend.allocate(host.size() * sizeof(T), what);
  backend.copy_from_host(buffer.as<void>(), host.data(), host.size() * sizeof(T));
  return buffer;
}

struct Result {
  std::string operation;
  std::string optimizer;
  std::int64_t dim = 0;
  double seconds = 0;
  double bytes = 0;
};

// One table on the device: weights and optimizer state filled as a new table's, and its view.
struct DeviceTable {
  TableConfig config;
  detail::DeviceBuffer weights;
  std::vector<detail::DeviceBuffer> slots;
  std::unique_ptr<detail::TableResources> resources;
  detail::TableView view;

  DeviceTable(detail::Backend& backend, std::int64_t dim, OptimizerKind optimizer) {
    config.input_dim = kRows;
    config.output_dim = dim;
    config.seed = 1;
    config.max_batch_lookups = kLookups;
    config.optimizer = OptimizerConfig::defaults(optimizer);
    const auto rows = static_cast<std::size_t>(kRows);
    weights = backend.allocate(rows * static_cast<std::size_t>(dim) * sizeof(float), "weights");
    const std::vector<detail::SlotSpec> specs = detail::slot_specs(config.optimizer, dim);
    for (const detail::SlotSpec& spec : specs) {
      slots.push_back(backend.allocate(rows * static_cast<std::size_t>(spec.width) * sizeof(float), spec.name));
      backend.fill(slots.back().as<float>(), kRows * spec.width, spec.initial);
    }
    resources = backend.open_table();
    view.weights = {weights.as<void>(), detail::StorageType::float32};
    view.state.slot0 = slots.size() > 0 ? slots[0].as<float>() : nullptr;
    view.state.slot1 = slots.size() > 1 ? slots[1].as<float>() : nullptr;
    view.input_dim = kRows;
    view.dim = dim;
    view.resources = resources.get();
    backend.fill_initial(view.weights, kRows, dim, detail::resolve_sampler(config.embeddings_initializer, kRows, dim),
                         *config.seed);
  }
  /// Bytes of one row's weights and optimizer state.
  double row_bytes() const {
    double bytes = static_cast<double>(config.output_dim) * sizeof(float);
    for (const detail::SlotSpec& spec : detail::slot_specs(config.optimizer, config.output_dim)) {
      bytes += static_cast<double>(spec.width) * sizeof(float);
    }
    return bytes;
  }
};

void print(const Result& result, const Device& device, std::ofstream* json) {
  const double gbs = result.bytes / result.seconds / 1e9;
  const double of_copy = device.copy_gbs > 0 ? gbs / device.copy_gbs : 0;
  const double of_roofline = device.roofline_gbs > 0 ? gbs / device.roofline_gbs : 0;
  std::printf("%-8s %-16s dim %4lld  %9.3f ms  %8.1f GB/s  %5.1f%% of copy  %5.1f%% of HBM roofline\n",
              result.operation.c_str(), result.optimizer.c_str(), static_cast<long long>(result.dim),
              result.seconds * 1e3, gbs, 100 * of_copy, 100 * of_roofline);
  if (json != nullptr) {
    *json << "{\"operation\": \"" << result.operation << "\", \"optimizer\": \"" << result.optimizer
          << "\", \"dim\": " << result.dim << ", \"seconds\": " << result.seconds << ", \"bytes\": " << result.bytes
          << ", \"gb_per_s\": " << gbs << ", \"of_copy\": " << of_copy << ", \"of_roofline\": " << of_roofline << "}\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<std::ofstream> json;
  if (argc == 3 && std::strcmp(argv[1], "--json") == 0) json = std::make_unique<std::ofstream>(argv[2]);
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("no usable CUDA device\n");
    return 2;
  }
  const Device device = describe_device();
  std::printf("%s: copy %.1f GB/s (device to device, read + written), HBM roofline %.1f GB/s\n", device.name.c_str(),
              device.copy_gbs, device.roofline_gbs);
  if (json) {
    *json << "{\"device\": \"" << device.name << "\", \"copy_gb_per_s\": " << device.copy_gbs
          << ", \"roofline_gb_per_s\": " << device.roofline_gbs << "}\n";
  }
  embedkit::kernels::CudaBackend backend(0, true);

  // Uniform ids over the whole table: every lookup a fresh row (the bandwidth-bound case).
  std::mt19937_64 rng(7);
  std::vector<std::int64_t> ids(static_cast<std::size_t>(kLookups));
  for (auto& id : ids) id = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(kRows));
  std::vector<std::int64_t> sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  const auto distinct = static_cast<double>(std::unique(sorted.begin(), sorted.end()) - sorted.begin());
  const std::int64_t bags = kLookups / kBagSize;
  std::vector<std::int64_t> offsets(static_cast<std::size_t>(bags + 1));
  for (std::int64_t b = 0; b <= bags; ++b) offsets[static_cast<std::size_t>(b)] = b * kBagSize;
  const detail::DeviceBuffer device_ids = upload(backend, ids, "ids");
  const detail::DeviceBuffer device_offsets = upload(backend, offsets, "offsets");
  const detail::DeviceIds batch{device_ids.as<void>(), embedkit::IndexType::int64, kLookups};
  const double id_bytes = static_cast<double>(kLookups) * sizeof(std::int64_t);

  for (const std::int64_t dim : {64, 128, 256}) {
    const double row = static_cast<double>(dim) * sizeof(float);
    {
      DeviceTable table(backend, dim, OptimizerKind::sgd);
      detail::DeviceBuffer out = backend.allocate(static_cast<std::size_t>(kLookups * dim) * sizeof(float), "out");
      const double gather = median_seconds([&] { backend.gather(table.view, batch, out.as<float>(), nullptr); });
      print({"gather", "-", dim, gather, id_bytes + 2 * kLookups * row}, device, json.get());
      const double pooled = median_seconds([&] {
        backend.pooled(table.view, batch, device_offsets.as<std::int64_t>(), bags, nullptr, PoolingMode::sum,
                       out.as<float>(), nullptr);
      });
      print({"pooled", "-", dim, pooled, id_bytes + (bags + 1) * 8.0 + kLookups * row + bags * row}, device,
            json.get());
    }
    std::vector<float> grad(static_cast<std::size_t>(kLookups * dim));
    std::normal_distribution<float> normal(0.0f, 1e-3f);
    for (float& g : grad) g = normal(rng);
    const detail::DeviceBuffer device_grad = upload(backend, grad, "grad");
    for (const OptimizerKind optimizer :
         {OptimizerKind::sgd, OptimizerKind::adagrad, OptimizerKind::rowwise_adagrad, OptimizerKind::adam}) {
      DeviceTable table(backend, dim, optimizer);
      embedkit::detail::FusedStep* fused = backend.fused_step();
      if (fused == nullptr || !fused->fuses(dim)) continue;
      std::int64_t step = 0;
      const double seconds = median_seconds([&] {
        detail::StepPlan plan;
        plan.rule = detail::step_rule(table.config, ++step);
        plan.dense = false;
        plan.row_end = kRows;
        (void)fused->fold_and_apply(table.view, batch, device_grad.as<float>(), plan, true, nullptr);
      });
      const double bytes = id_bytes + kLookups * row + 2 * distinct * table.row_bytes();
      print({"step", embedkit::to_string(optimizer), dim, seconds, bytes}, device, json.get());
    }
  }
  cudaDeviceSynchronize();
  return 0;
}
