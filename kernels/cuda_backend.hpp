#pragma once
// The CUDA backend: device memory (cudaMallocAsync on the backend's stream), copies through a
// pinned staging buffer, memory information and device discovery. Its table operations are not
// written yet: each throws Error(unsupported), and runs_table_ops() says false so that automatic
// placement keeps tables on the CPU until they are.

#include "../src/backend/backend.hpp"

#include <cuda_runtime_api.h>

#include <mutex>

namespace embedkit::kernels {

class CudaBackend final : public detail::Backend {
 public:
  /// Opens device `ordinal` with a stream of its own. Throws Error when the runtime refuses.
  explicit CudaBackend(int ordinal);
  ~CudaBackend() override;

  std::string name() const override { return "cuda:" + std::to_string(ordinal_); }
  DeviceKind kind() const override { return DeviceKind::cuda; }
  detail::MemoryInfo memory_info() const override;
  bool runs_table_ops() const override { return false; }
  bool host_accessible() const override { return false; }
  detail::DeviceBuffer allocate(std::size_t bytes, std::string_view what) override;
  void deallocate(void* data, std::size_t bytes) noexcept override;
  void copy_from_host(void* destination, const void* host, std::size_t bytes) override;
  void copy_to_host(void* host, const void* source, std::size_t bytes) override;
  bool owns(const void* data, std::size_t bytes) const override;

  void fill_initial(float*, std::int64_t, std::int64_t, const detail::InitSampler&, std::uint64_t) override;
  void fill(float*, std::int64_t, float) override;
  void gather(const detail::TableView&, const detail::DeviceIds&, float*) override;
  void pooled(const detail::TableView&, const detail::DeviceIds&, const std::int64_t*, std::int64_t, const float*,
              PoolingMode, float*) override;
  detail::FoldedGrad fold_lookup_grad(const detail::TableView&, const detail::DeviceIds&, const float*) override;
  detail::FoldedGrad fold_pooled_grad(const detail::TableView&, const detail::DeviceIds&, const std::int64_t*,
                                      std::int64_t, const float*, PoolingMode, const float*) override;
  std::int64_t mark_nonfinite(const detail::FoldedGrad&, std::int64_t, std::uint8_t*) override;
  void apply(const detail::TableView&, const detail::FoldedGrad&, const std::uint8_t*, const detail::StepPlan&) override;
  void constrain_all(const detail::TableView&, const Constraint&) override;
  double penalty(const float*, std::int64_t, double, double) override;

 private:
  void* pinned(std::size_t bytes);  // the staging buffer, grown to at least `bytes`

  int ordinal_;
  cudaStream_t stream_ = nullptr;
  std::mutex staging_mutex_;
  void* staging_ = nullptr;
  std::size_t staging_bytes_ = 0;
};

}  // namespace embedkit::kernels
