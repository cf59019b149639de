// What the GPU suite covers on the CUDA backend (issue #26 item 5), and the tests of the CUDA memory
// paths that only a device can run. Skips without a device (fails under EMBEDKIT_REQUIRE_GPU=1).
//
// The audit: where each behaviour runs on CUDA in gpu_test. The conformance suites
// (tests/conformance/, on CUDA device 0 in gpu_test, on the CPU and the simulated device in
// backend_test) compare bit for bit with the CPU's table; "new" marks what this change added.
//
// | Behaviour                                 | Covered on CUDA by                                                   |
// |-------------------------------------------|----------------------------------------------------------------------|
// | Non-finite gradients, fused step          | new: NonFiniteConformance.TrainStepFusedAndUnfused, .TrainStepPooled |
// |   (CudaTable.OverflowingUpdates... covers | (skip / apply / error; NaN, ±inf in the first, a middle and the last |
// |   finite gradients whose update overflows)| column; dims 1, 5, 32, 33, 128, 257)                                 |
// | Non-finite gradients, unfused step        | new: NonFiniteConformance.ApplyOfASparseGradient, the dense-Adam,    |
// |                                           | "error" and dim-257 cases of .TrainStepFusedAndUnfused               |
// | Per-sample weights                        | PooledConformance.RandomBagsEveryModeAndDim, .AdversarialBags;       |
// |                                           | SparseGradConformance.PooledGradientEveryModeAndDim;                 |
// |                                           | FusedStepConformance.TrainStepPooledEveryMode                        |
// | int32 ids                                 | every conformance suite (for_each_index_type); FusedStepConformance  |
// |                                           | .TrainStepEveryOptimizer alternates int32 and int64 steps            |
// | lazy = false, every optimizer             | new: DenseStepConformance (train_step, pooled, apply, bitwise);      |
// |                                           | before: CudaTable.OverflowingUpdates... (overflowing rows, 1e-5)     |
// | Pooled gradient, every mode               | SparseGradConformance.PooledGradientEveryModeAndDim (sum, mean,      |
// |                                           | sqrtn, max); FusedStepConformance.TrainStepPooledEveryMode           |
// | apply from a sparse gradient              | OptimizerConformance.EveryOptimizerAgainstTheReference,              |
// |                                           | .EmptyGradientCountsAStep, .FailedStepChangesNothing                 |
// | penalty (regularization_loss)             | new: TableOpsConformance.RegularizationLossAtAndAroundItsChunks      |
// |                                           | (1, 127, 65 536, 65 537, 3·65 536 + 4097 weights, bitwise)           |
// | constrain_all (apply_constraints)         | new: TableOpsConformance.ApplyConstraintsEveryKindAndDim             |
// | id -1 without a padding_idx               | new: NoPaddingConformance.MinusOneIsOutOfRange (every entry point,   |
// |                                           | error and zero_fill); the other suites' -1 had a padding_idx of 5    |
// | Allocation failure in the fold: chunked   | new: AllocationFailureConformance (CUDA: a caller's allocator        |
// |   retry, table unchanged                  | failing the Nth allocation of a step); before: the simulated device  |
// |                                           | only (dispatch_test, backend_id_check_test)                          |
// | Caller's allocator leaving its CUDA error | new: CudaCoverage.PendingErrorOfAFailedAllocatorIsCleared            |
// |   pending                                 |                                                                      |
// | A table on a device other than 0          | new: CudaCoverage.TableOnTheSecondDeviceLeavesTheThreadOnItsOwn      |
// |                                           | (needs two devices; skips with one, even under REQUIRE_GPU)          |
// | Device tensors in and out on a caller's   | new: CudaCoverage.DeviceTensorsInAndOutOnTheCallersStream (C ABI,    |
// |   stream                                  | kDLCUDA ids, gradient and outputs written by the caller's stream);   |
// |                                           | before: CudaTableHooks.CallerStreamAndAllocatorAreHonoured (host     |
// |                                           | tensors on a caller's stream)                                        |
// | Default pool kept mapped; idle pool       | new: CudaCoverage.DefaultPoolKeepsItsMemoryAndCountsItFree           |
// |   memory counted free                     |                                                                      |
// | The conformance suites on CUDA            | gpu_test builds tests/conformance/ with EMBEDKIT_CONFORMANCE_CUDA=1  |
// |                                           | (tests/CMakeLists.txt), the new suites included                      |
//
// | Device tensors on a per-call stream, used  | new: CudaCoverage.DeviceTensorsOnPerCallStreams (the _on_stream      |
// |   in place                                | calls, two caller streams, no table stream); that nothing crosses to |
// |                                           | the host: tests/device_tensors_test.cpp on the simulated device      |
//
// Not covered: that a caller's stream is the only one synchronised (nothing observable from a test
// tells a device-wide synchronisation from a stream's).
#include <embedkit/c_api.h>
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include "kernels/cuda_backend.hpp"
#include "src/placement/context_impl.hpp"
#include "tests/support/gpu_device.hpp"
#include "tests/support/tables.hpp"

#include <cuda_runtime_api.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using embedkit::testing::uniform_floats;

using embedkit::Context;
using embedkit::EmbeddingTable;
using embedkit::IndexTensor;
using embedkit::OptimizerKind;
using embedkit::TableConfig;

#define CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call

std::unique_ptr<Context> cuda_context(int ordinal) {
  auto impl = std::make_unique<Context::Impl>();
  impl->built_with_cuda = true;
  impl->device = std::make_unique<embedkit::kernels::CudaBackend>(ordinal, true);
  return std::make_unique<Context>(std::move(impl));
}

TableConfig config_for(std::int64_t dim, bool on_device) {
  TableConfig config;
  config.input_dim = 3000;
  config.output_dim = dim;
  config.seed = 29;
  config.optimizer = embedkit::OptimizerConfig::defaults(OptimizerKind::adam);
  config.optimizer.learning_rate = 0.05;
  config.embeddings_regularizer = embedkit::Regularizer{0.001, 0.002};
  config.placement = on_device ? embedkit::PlacementPolicy::cuda : embedkit::PlacementPolicy::cpu;
  config.gpu_memory_headroom = 0;
  return config;
}

std::vector<std::int64_t> random_ids(std::size_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int64_t> ids(count);
  for (auto& id : ids) id = rng() % 3 == 0 ? 11 : static_cast<std::int64_t>(rng() % 3000);
  return ids;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

int current_device() {
  int device = -1;
  if (cudaGetDevice(&device) != cudaSuccess) (void)cudaGetLastError();
  return device;
}

// A caller's allocator over cudaMalloc that, when armed, fails as a framework's might: it asks for
// more than any device has, leaving cudaErrorMemoryAllocation pending, and returns NULL, once.
struct PendingErrorAllocator {
  bool armed = false;
  bool left_pending = false;  // whether the armed failure really left the error pending
  static void* allocate(std::size_t bytes, void*, void* context) {
    auto* self = static_cast<PendingErrorAllocator*>(context);
    void* data = nullptr;
    if (self->armed) {
      self->armed = false;
      const cudaError_t status = cudaMalloc(&data, std::size_t{1} << 62);
      self->left_pending = status == cudaErrorMemoryAllocation && cudaPeekAtLastError() == cudaErrorMemoryAllocation;
      return nullptr;
    }
    return cudaMalloc(&data, bytes) == cudaSuccess ? data : nullptr;
  }
  static void release(void* data, void*, void*) { (void)cudaFree(data); }
};

TEST(CudaCoverage, PendingErrorOfAFailedAllocatorIsCleared) {
  EMBEDKIT_NEEDS_CUDA_DEVICE();
  PendingErrorAllocator allocator;
  ASSERT_EQ(ek_set_cuda_allocator(&PendingErrorAllocator::allocate, &PendingErrorAllocator::release, &allocator), EK_OK)
      << ek_last_error();
  {
    auto context = cuda_context(0);
    EmbeddingTable gpu(config_for(32, true), *context);
    EmbeddingTable cpu(config_for(32, false));
    const auto ids = random_ids(2000, 1);
    const auto grad = uniform_floats(ids.size() * 32, 2);
    ASSERT_TRUE(same_bits(gpu.lookup(IndexTensor(ids)).values, cpu.lookup(IndexTensor(ids)).values));

    // A lookup whose allocation fails: out of memory, or served; the next one is right either way.
    allocator.armed = true;
    try {
      (void)gpu.lookup(IndexTensor(ids));
    } catch (const embedkit::Error& e) {
      EXPECT_EQ(e.status(), embedkit::Status::out_of_memory) << e.what();
    }
    ASSERT_FALSE(allocator.armed) << "the lookup allocated nothing";
    ASSERT_TRUE(allocator.left_pending) << "the runtime did not leave the error pending: the test proves nothing";
    EXPECT_TRUE(same_bits(gpu.lookup(IndexTensor(ids)).values, cpu.lookup(IndexTensor(ids)).values));

    // A train step: its retry launches kernels right after the failure, which a pending error
    // would fail as "internal".
    for (int step = 0; step < 3; ++step) {
      allocator.armed = true;
      allocator.left_pending = false;
      try {
        gpu.train_step(IndexTensor(ids), grad);
      } catch (const embedkit::Error& e) {
        EXPECT_EQ(e.status(), embedkit::Status::out_of_memory) << e.what();
        gpu.train_step(IndexTensor(ids), grad);
      }
      EXPECT_TRUE(allocator.left_pending) << "step " << step;
      cpu.train_step(IndexTensor(ids), grad);
      EXPECT_TRUE(same_bits(gpu.get_weights().values, cpu.get_weights().values)) << "step " << step;
    }
    allocator.armed = false;
    EXPECT_EQ(cudaPeekAtLastError(), cudaSuccess) << "embedkit left a CUDA error pending";
  }
  EXPECT_EQ(ek_set_cuda_allocator(nullptr, nullptr, nullptr), EK_OK) << ek_last_error();
}

TEST(CudaCoverage, TableOnTheSecondDeviceLeavesTheThreadOnItsOwn) {
  EMBEDKIT_NEEDS_CUDA_DEVICES(2);
  CUDA_OK(cudaSetDevice(0));
  const auto ids = random_ids(1500, 3);
  const auto grad = uniform_floats(ids.size() * 16, 4);
  EmbeddingTable cpu(config_for(16, false));
  {
    auto context = cuda_context(1);
    EXPECT_EQ(current_device(), 0) << "opening cuda:1";
    {
      EmbeddingTable gpu(config_for(16, true), *context);
      ASSERT_EQ(gpu.placement().device_name(), "cuda:1") << gpu.placement().reason;
      EXPECT_EQ(current_device(), 0) << "creating the table";
      EXPECT_TRUE(same_bits(gpu.lookup(IndexTensor(ids)).values, cpu.lookup(IndexTensor(ids)).values));
      EXPECT_EQ(current_device(), 0) << "lookup";
      gpu.train_step(IndexTensor(ids), grad);
      cpu.train_step(IndexTensor(ids), grad);
      EXPECT_EQ(current_device(), 0) << "train_step";
      EXPECT_TRUE(same_bits(gpu.get_weights().values, cpu.get_weights().values));
      EXPECT_EQ(current_device(), 0) << "get_weights";
      (void)gpu.regularization_loss();
      EXPECT_EQ(current_device(), 0) << "regularization_loss";
      gpu.migrate("cpu");
      EXPECT_EQ(current_device(), 0) << "migrate to the CPU";
      gpu.migrate("cuda:1");
      EXPECT_EQ(gpu.placement().device_name(), "cuda:1");
      EXPECT_EQ(current_device(), 0) << "migrate to cuda:1";
      gpu.train_step(IndexTensor(ids), grad);
      cpu.train_step(IndexTensor(ids), grad);
      EXPECT_TRUE(same_bits(gpu.get_weights().values, cpu.get_weights().values));
      // An operation that fails (a bad id) restores the device too.
      const std::vector<std::int64_t> bad = {1, 3000};
      EXPECT_THROW(gpu.lookup(IndexTensor(bad)), embedkit::Error);
      EXPECT_EQ(current_device(), 0) << "a failed lookup";
    }
    EXPECT_EQ(current_device(), 0) << "destroying the table";
  }
  EXPECT_EQ(current_device(), 0) << "closing cuda:1";
}

TEST(CudaCoverage, DefaultPoolKeepsItsMemoryAndCountsItFree) {
  EMBEDKIT_NEEDS_CUDA_DEVICE();
  int pools = 0;
  CUDA_OK(cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, 0));
  if (pools == 0) GTEST_SKIP() << "device 0 has no memory pools: embedkit uses cudaMalloc there";
  auto context = cuda_context(0);
  EmbeddingTable table(config_for(64, true), *context);
  const auto ids = random_ids(20000, 5);
  const auto grad = uniform_floats(ids.size() * 64, 6);
  for (int step = 0; step < 2; ++step) table.train_step(IndexTensor(ids), grad);
  CUDA_OK(cudaDeviceSynchronize());  // where a pool without the threshold gives its memory back
  cudaMemPool_t pool = nullptr;
  CUDA_OK(cudaDeviceGetDefaultMemPool(&pool, 0));
  std::uint64_t threshold = 0, reserved = 0, used = 0;
  CUDA_OK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  CUDA_OK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved));
  CUDA_OK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &used));
  EXPECT_EQ(threshold, std::numeric_limits<std::uint64_t>::max());
  EXPECT_GT(reserved, used) << "the step's temporaries were unmapped at its synchronisation";
  const embedkit::detail::MemoryInfo info = context->impl().device->memory_info();
  std::size_t free_bytes = 0, total_bytes = 0;
  CUDA_OK(cudaMemGetInfo(&free_bytes, &total_bytes));
  EXPECT_GE(info.free_bytes, free_bytes);
  EXPECT_LE(info.free_bytes, total_bytes);
  if (reserved > used && free_bytes < total_bytes) {
    EXPECT_GT(info.free_bytes, free_bytes) << "idle pool memory";
  }
}

// A host function queued on a stream: holds the stream back a while, so that what follows it on
// that stream (the caller writing a device tensor) happens late, after the embedkit call has begun.
void CUDART_CB hold_back(void*) { std::this_thread::sleep_for(std::chrono::milliseconds(200)); }

DLTensor device_tensor(void* data, DLDataType dtype, int ndim, std::int64_t* shape) {
  DLTensor tensor{};
  tensor.data = data;
  tensor.device = {kDLCUDA, 0};
  tensor.ndim = ndim;
  tensor.dtype = dtype;
  tensor.shape = shape;
  return tensor;
}

TEST(CudaCoverage, DeviceTensorsInAndOutOnTheCallersStream) {
  EMBEDKIT_NEEDS_CUDA_DEVICE();
  // The C ABI's tables live in the default context, whose kernels placement opens only under
  // EMBEDKIT_CUDA_TABLES=1 (scripts/gpu_check.sh sets it) or on a verified architecture.
  const auto& device = Context::default_context().impl().device;
  if (!device || !device->capabilities().kernels_verified) {
    if (embedkit::testing::gpu_required()) FAIL() << "the default context's CUDA tables are closed";
    GTEST_SKIP() << "CUDA tables are closed in the default context: run with EMBEDKIT_CUDA_TABLES=1";
  }
  constexpr std::int64_t kDim = 32, kCount = 4096;
  ek_table* gpu = nullptr;
  ek_table* cpu = nullptr;
  const std::string config = R"({"input_dim": 3000, "output_dim": 32, "seed": 31, "optimizer": "adagrad", )";
  ASSERT_EQ(ek_table_create((config + R"("placement": "cuda"})").c_str(), &gpu), EK_OK) << ek_last_error();
  ASSERT_EQ(ek_table_create((config + R"("placement": "cpu"})").c_str(), &cpu), EK_OK) << ek_last_error();
  cudaStream_t stream = nullptr;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));  // not ordered with the legacy stream
  ASSERT_EQ(ek_table_set_cuda_stream(gpu, stream), EK_OK) << ek_last_error();

  std::vector<std::int64_t> ids = random_ids(kCount, 7);
  std::vector<float> grad = uniform_floats(kCount * kDim, 8);
  std::int64_t* pinned_ids = nullptr;
  float* pinned_grad = nullptr;
  float* pinned_out = nullptr;
  CUDA_OK(cudaMallocHost(reinterpret_cast<void**>(&pinned_ids), kCount * sizeof(std::int64_t)));
  CUDA_OK(cudaMallocHost(reinterpret_cast<void**>(&pinned_grad), kCount * kDim * sizeof(float)));
  CUDA_OK(cudaMallocHost(reinterpret_cast<void**>(&pinned_out), kCount * kDim * sizeof(float)));  // >= 3000 rows
  std::memcpy(pinned_ids, ids.data(), kCount * sizeof(std::int64_t));
  std::memcpy(pinned_grad, grad.data(), grad.size() * sizeof(float));
  void* device_ids = nullptr;
  void* device_grad = nullptr;
  void* device_out = nullptr;
  CUDA_OK(cudaMalloc(&device_ids, kCount * sizeof(std::int64_t)));
  CUDA_OK(cudaMalloc(&device_grad, kCount * kDim * sizeof(float)));
  CUDA_OK(cudaMalloc(&device_out, kCount * kDim * sizeof(float)));  // the lookup rows, then the 3000 rows
  // Until the caller's stream writes them: ids of -1 (out of range) and a NaN gradient.
  CUDA_OK(cudaMemset(device_ids, 0xff, kCount * sizeof(std::int64_t)));
  CUDA_OK(cudaMemset(device_grad, 0xff, kCount * kDim * sizeof(float)));
  CUDA_OK(cudaDeviceSynchronize());

  std::int64_t ids_shape[] = {kCount}, out_shape[] = {kCount, kDim}, weights_shape[] = {3000, kDim};
  DLTensor ids_tensor = device_tensor(device_ids, {kDLInt, 64, 1}, 1, ids_shape);
  DLTensor grad_tensor = device_tensor(device_grad, {kDLFloat, 32, 1}, 2, out_shape);
  DLTensor out_tensor = device_tensor(device_out, {kDLFloat, 32, 1}, 2, out_shape);
  DLTensor weights_tensor = device_tensor(device_out, {kDLFloat, 32, 1}, 2, weights_shape);
  std::vector<float> expected_rows(kCount * kDim), expected(3000 * kDim);
  DLTensor host_ids{}, host_grad{}, host_out{};
  host_ids = ids_tensor;
  host_ids.data = ids.data();
  host_ids.device = {kDLCPU, 0};
  host_grad = grad_tensor;
  host_grad.data = grad.data();
  host_grad.device = {kDLCPU, 0};
  host_out = out_tensor;
  host_out.data = expected_rows.data();
  host_out.device = {kDLCPU, 0};

  // Lookup: the ids written late by the caller's stream, the rows read back on it.
  CUDA_OK(cudaLaunchHostFunc(stream, &hold_back, nullptr));
  CUDA_OK(cudaMemcpyAsync(device_ids, pinned_ids, kCount * sizeof(std::int64_t), cudaMemcpyHostToDevice, stream));
  ASSERT_EQ(ek_lookup(gpu, &ids_tensor, &out_tensor), EK_OK) << ek_last_error();
  CUDA_OK(cudaMemcpyAsync(pinned_out, device_out, kCount * kDim * sizeof(float), cudaMemcpyDeviceToHost, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  ASSERT_EQ(ek_lookup(cpu, &host_ids, &host_out), EK_OK) << ek_last_error();
  EXPECT_EQ(std::memcmp(pinned_out, expected_rows.data(), expected_rows.size() * sizeof(float)), 0) << "lookup";

  // Train step: the gradient written late by the caller's stream; the weights read into a device
  // tensor and back on it.
  CUDA_OK(cudaLaunchHostFunc(stream, &hold_back, nullptr));
  CUDA_OK(cudaMemcpyAsync(device_grad, pinned_grad, grad.size() * sizeof(float), cudaMemcpyHostToDevice, stream));
  ASSERT_EQ(ek_train_step(gpu, &ids_tensor, &grad_tensor), EK_OK) << ek_last_error();
  ASSERT_EQ(ek_train_step(cpu, &host_ids, &host_grad), EK_OK) << ek_last_error();
  ASSERT_EQ(ek_get_weights(gpu, &weights_tensor), EK_OK) << ek_last_error();
  CUDA_OK(cudaMemcpyAsync(pinned_out, device_out, expected.size() * sizeof(float), cudaMemcpyDeviceToHost, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  DLTensor host_weights = weights_tensor;
  host_weights.data = expected.data();
  host_weights.device = {kDLCPU, 0};
  ASSERT_EQ(ek_get_weights(cpu, &host_weights), EK_OK) << ek_last_error();
  EXPECT_EQ(std::memcmp(pinned_out, expected.data(), expected.size() * sizeof(float)), 0) << "weights after the step";

  ek_table_destroy(gpu);
  ek_table_destroy(cpu);
  CUDA_OK(cudaStreamDestroy(stream));
  cudaFree(device_ids);
  cudaFree(device_grad);
  cudaFree(device_out);
  cudaFreeHost(pinned_ids);
  cudaFreeHost(pinned_grad);
  cudaFreeHost(pinned_out);
}

}  // namespace

TEST(CudaCoverage, DeviceTensorsOnPerCallStreams) {
  EMBEDKIT_NEEDS_CUDA_DEVICE();
  const auto& device = Context::default_context().impl().device;
  if (!device || !device->capabilities().kernels_verified) {
    if (embedkit::testing::gpu_required()) FAIL() << "the default context's CUDA tables are closed";
    GTEST_SKIP() << "CUDA tables are closed in the default context: run with EMBEDKIT_CUDA_TABLES=1";
  }
  constexpr std::int64_t kDim = 64, kCount = 2048, kBags = 256;
  ek_table* gpu = nullptr;
  ek_table* cpu = nullptr;
  const std::string config = R"({"input_dim": 5000, "output_dim": 64, "seed": 41, "optimizer": "adam", )";
  ASSERT_EQ(ek_table_create((config + R"("placement": "cuda"})").c_str(), &gpu), EK_OK) << ek_last_error();
  ASSERT_EQ(ek_table_create((config + R"("placement": "cpu"})").c_str(), &cpu), EK_OK) << ek_last_error();
  cudaStream_t reader = nullptr, trainer = nullptr;  // two callers' streams; the table keeps its own
  CUDA_OK(cudaStreamCreateWithFlags(&reader, cudaStreamNonBlocking));
  CUDA_OK(cudaStreamCreateWithFlags(&trainer, cudaStreamNonBlocking));

  const std::vector<std::int64_t> ids = random_ids(kCount, 17);
  std::vector<std::int64_t> offsets(kBags + 1);
  for (std::int64_t b = 0; b <= kBags; ++b) offsets[b] = b * kCount / kBags;
  const std::vector<float> grad = uniform_floats(kBags * kDim, 18);
  void *device_ids = nullptr, *device_offsets = nullptr, *device_grad = nullptr, *device_out = nullptr;
  CUDA_OK(cudaMalloc(&device_ids, kCount * sizeof(std::int64_t)));
  CUDA_OK(cudaMalloc(&device_offsets, offsets.size() * sizeof(std::int64_t)));
  CUDA_OK(cudaMalloc(&device_grad, grad.size() * sizeof(float)));
  CUDA_OK(cudaMalloc(&device_out, kBags * kDim * sizeof(float)));
  CUDA_OK(cudaMemset(device_ids, 0xff, kCount * sizeof(std::int64_t)));  // -1 until the caller writes them
  CUDA_OK(cudaMemset(device_grad, 0xff, grad.size() * sizeof(float)));   // NaN until then
  CUDA_OK(cudaMemcpy(device_offsets, offsets.data(), offsets.size() * sizeof(std::int64_t), cudaMemcpyHostToDevice));
  CUDA_OK(cudaDeviceSynchronize());

  std::int64_t ids_shape[] = {kCount}, offsets_shape[] = {kBags + 1}, out_shape[] = {kBags, kDim};
  DLTensor ids_tensor = device_tensor(device_ids, {kDLInt, 64, 1}, 1, ids_shape);
  DLTensor offsets_tensor = device_tensor(device_offsets, {kDLInt, 64, 1}, 1, offsets_shape);
  DLTensor grad_tensor = device_tensor(device_grad, {kDLFloat, 32, 1}, 2, out_shape);
  DLTensor out_tensor = device_tensor(device_out, {kDLFloat, 32, 1}, 2, out_shape);
  const auto on_host = [](DLTensor tensor, const void* data) {
    tensor.data = const_cast<void*>(data);
    tensor.device = {kDLCPU, 0};
    return tensor;
  };
  std::vector<float> expected(kBags * kDim), got(kBags * kDim);
  DLTensor host_ids = on_host(ids_tensor, ids.data()), host_offsets = on_host(offsets_tensor, offsets.data());
  DLTensor host_grad = on_host(grad_tensor, grad.data()), host_out = on_host(out_tensor, expected.data());

  // The reader's stream writes the ids late; the pooled lookup on that stream must see them.
  CUDA_OK(cudaLaunchHostFunc(reader, &hold_back, nullptr));
  CUDA_OK(cudaMemcpyAsync(device_ids, ids.data(), kCount * sizeof(std::int64_t), cudaMemcpyHostToDevice, reader));
  ASSERT_EQ(ek_lookup_pooled_on_stream(gpu, &ids_tensor, &offsets_tensor, nullptr, "mean", &out_tensor, reader), EK_OK)
      << ek_last_error();
  CUDA_OK(cudaMemcpyAsync(got.data(), device_out, got.size() * sizeof(float), cudaMemcpyDeviceToHost, reader));
  CUDA_OK(cudaStreamSynchronize(reader));
  ASSERT_EQ(ek_lookup_pooled(cpu, &host_ids, &host_offsets, nullptr, "mean", &host_out), EK_OK) << ek_last_error();
  for (std::size_t k = 0; k < got.size(); ++k) ASSERT_NEAR(got[k], expected[k], 1e-6f) << "pooled " << k;

  // The trainer's stream writes the gradient late; the step on that stream must see it.
  CUDA_OK(cudaLaunchHostFunc(trainer, &hold_back, nullptr));
  CUDA_OK(cudaMemcpyAsync(device_grad, grad.data(), grad.size() * sizeof(float), cudaMemcpyHostToDevice, trainer));
  ASSERT_EQ(ek_train_step_pooled_on_stream(gpu, &ids_tensor, &offsets_tensor, nullptr, "mean", &grad_tensor, trainer),
            EK_OK)
      << ek_last_error();
  ASSERT_EQ(ek_train_step_pooled(cpu, &host_ids, &host_offsets, nullptr, "mean", &host_grad), EK_OK) << ek_last_error();
  std::vector<float> gpu_weights(5000 * kDim), cpu_weights(5000 * kDim);
  std::int64_t weights_shape[] = {5000, kDim};
  DLTensor gpu_out{gpu_weights.data(), {kDLCPU, 0}, 2, {kDLFloat, 32, 1}, weights_shape, nullptr, 0};
  DLTensor cpu_out{cpu_weights.data(), {kDLCPU, 0}, 2, {kDLFloat, 32, 1}, weights_shape, nullptr, 0};
  ASSERT_EQ(ek_get_weights(gpu, &gpu_out), EK_OK) << ek_last_error();
  ASSERT_EQ(ek_get_weights(cpu, &cpu_out), EK_OK) << ek_last_error();
  for (std::size_t k = 0; k < gpu_weights.size(); ++k) ASSERT_NEAR(gpu_weights[k], cpu_weights[k], 1e-6f) << k;

  ek_table_destroy(gpu);
  ek_table_destroy(cpu);
  CUDA_OK(cudaStreamDestroy(reader));
  CUDA_OK(cudaStreamDestroy(trainer));
  cudaFree(device_ids);
  cudaFree(device_offsets);
  cudaFree(device_grad);
  cudaFree(device_out);
}
