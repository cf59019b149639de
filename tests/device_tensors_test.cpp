// A caller's tensors in device memory (a framework's CUDA tensors), on the simulated device: a
// table on the device uses them in place (no byte crosses to or from the host beyond what the
// host-side checks read), a table on the CPU copies them across and back, and both give what the
// same call on host tensors gives. The C ABI's staging hands such tensors on in place.
#include <embedkit/cuda_stream.hpp>
#include <embedkit/status.hpp>
#include <embedkit/table.hpp>

#include <gtest/gtest.h>

#include "src/capi/dlpack_view.hpp"
#include "src/core/call_stream.hpp"
#include "tests/sim_context.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace {

using embedkit::Error;
using embedkit::IndexTensor;
using embedkit::OptimizerConfig;
using embedkit::OptimizerKind;
using embedkit::PoolingMode;
using embedkit::Status;
using embedkit::TableConfig;
using embedkit::detail::SimDeviceBackend;
using embedkit::testing::sim_context;
using embedkit::testing::sim_of;

constexpr std::uint64_t kMiB = 1 << 20;

TableConfig config_for(std::int64_t rows, std::int64_t dim, embedkit::PlacementPolicy where) {
  TableConfig config;
  config.name = "items";
  config.input_dim = rows;
  config.output_dim = dim;
  config.seed = 11;
  config.max_batch_lookups = 4096;
  config.gpu_memory_headroom = 0;
  config.placement = where;
  config.optimizer = OptimizerConfig::defaults(OptimizerKind::adagrad);
  config.optimizer.learning_rate = 0.05;
  return config;
}

// Values copied into memory of the simulated device, as a framework's CUDA tensor holds them.
template <class T>
struct DeviceArray {
  DeviceArray(SimDeviceBackend& owner, const std::vector<T>& values)
      : device(owner),
        memory(owner.allocate(std::max<std::size_t>(values.size(), 1) * sizeof(T), "caller tensor")),
        size(values.size()) {
    owner.copy_from_host(memory.as<void>(), values.data(), values.size() * sizeof(T));
  }
  T* data() const { return memory.as<T>(); }
  std::span<T> span() const { return {data(), size}; }
  std::vector<T> read() const {
    std::vector<T> values(size);
    device.copy_to_host(values.data(), data(), size * sizeof(T));
    return values;
  }
  SimDeviceBackend& device;
  embedkit::detail::DeviceBuffer memory;
  std::size_t size;
};

// Bytes the simulated device moved to and from the host while `call` ran.
template <class Call>
std::pair<std::uint64_t, std::uint64_t> traffic(SimDeviceBackend& device, Call&& call) {
  const std::uint64_t to_device = device.bytes_to_device(), to_host = device.bytes_to_host();
  call();
  return {device.bytes_to_device() - to_device, device.bytes_to_host() - to_host};
}

template <class T>
std::vector<T> values_of(const embedkit::Array<T>& array) {
  return array.values;
}

struct Batch {
  std::vector<std::int64_t> ids;
  std::vector<std::int64_t> offsets;
  std::vector<float> weights;
  std::vector<float> grad_rows;  // ids.size() x dim
  std::vector<float> grad_bags;  // bags x dim
};

// Duplicates, a hot row, an empty bag and the first and last rows.
Batch batch_for(std::int64_t rows, std::int64_t dim, std::uint32_t seed) {
  std::mt19937 rng(seed);
  Batch batch;
  for (int k = 0; k < 300; ++k) {
    batch.ids.push_back(k % 5 == 0 ? 7 : std::uniform_int_distribution<std::int64_t>(0, rows - 1)(rng));
  }
  batch.ids[1] = 0;
  batch.ids[2] = rows - 1;
  batch.offsets = {0, 10, 10, 120, 300};
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  for (std::size_t k = 0; k < batch.ids.size(); ++k) batch.weights.push_back(value(rng));
  batch.grad_rows.resize(batch.ids.size() * dim);
  for (float& g : batch.grad_rows) g = value(rng);
  batch.grad_bags.resize((batch.offsets.size() - 1) * dim);
  for (float& g : batch.grad_bags) g = value(rng);
  return batch;
}

TEST(DeviceTensors, TableOnTheDeviceLooksUpInPlace) {
  auto context = sim_context(64 * kMiB);
  SimDeviceBackend& device = sim_of(*context);
  constexpr std::int64_t kRows = 500, kDim = 16;
  const embedkit::EmbeddingTable table(config_for(kRows, kDim, embedkit::PlacementPolicy::cuda), *context);
  const Batch batch = batch_for(kRows, kDim, 1);
  const std::vector<float> expected = values_of(table.lookup(IndexTensor(batch.ids)));

  const DeviceArray<std::int64_t> ids(device, batch.ids);
  const DeviceArray<float> out(device, std::vector<float>(expected.size(), -1.0f));
  const auto [to_device, to_host] = traffic(device, [&] {
    table.lookup(IndexTensor(ids.data(), {static_cast<std::int64_t>(batch.ids.size())}), out.span());
  });
  EXPECT_EQ(to_device, 0u);
  EXPECT_EQ(to_host, 0u);
  EXPECT_EQ(out.read(), expected);

  const std::vector<float> pooled =
      values_of(table.lookup_pooled(IndexTensor(batch.ids), batch.offsets, PoolingMode::mean, {}));
  const DeviceArray<std::int64_t> offsets(device, batch.offsets);
  const DeviceArray<float> pooled_out(device, std::vector<float>(pooled.size(), -1.0f));
  const auto [pooled_to_device, pooled_to_host] = traffic(device, [&] {
    table.lookup_pooled(IndexTensor(ids.data(), {static_cast<std::int64_t>(batch.ids.size())}), offsets.span(),
                        PoolingMode::mean, {}, pooled_out.span());
  });
  EXPECT_EQ(pooled_to_device, 0u);
  EXPECT_EQ(pooled_to_host, batch.offsets.size() * sizeof(std::int64_t));  // the offsets' check reads a copy
  EXPECT_EQ(pooled_out.read(), pooled);
}

TEST(DeviceTensors, TrainStepsInPlaceEqualHostSteps) {
  auto context = sim_context(64 * kMiB);
  SimDeviceBackend& device = sim_of(*context);
  constexpr std::int64_t kRows = 400, kDim = 8;
  for (const bool fused : {true, false}) {
    device.offer_fused_steps(fused);
    embedkit::EmbeddingTable on_host(config_for(kRows, kDim, embedkit::PlacementPolicy::cuda), *context);
    embedkit::EmbeddingTable in_place(config_for(kRows, kDim, embedkit::PlacementPolicy::cuda), *context);
    for (std::uint32_t step = 0; step < 3; ++step) {
      const Batch batch = batch_for(kRows, kDim, 10 + step);
      const DeviceArray<std::int64_t> ids(device, batch.ids), offsets(device, batch.offsets);
      const DeviceArray<float> weights(device, batch.weights), grad_rows(device, batch.grad_rows),
          grad_bags(device, batch.grad_bags);
      const IndexTensor device_ids(ids.data(), {static_cast<std::int64_t>(batch.ids.size())});
      // The step's own traffic (the unfused step's row flags) is the same; the inputs never cross.
      const auto [host_to_device, host_to_host] =
          traffic(device, [&] { on_host.train_step(IndexTensor(batch.ids), batch.grad_rows); });
      const auto [to_device, to_host] = traffic(device, [&] { in_place.train_step(device_ids, grad_rows.span()); });
      EXPECT_EQ(host_to_device - to_device,
                batch.ids.size() * sizeof(std::int64_t) + batch.grad_rows.size() * sizeof(float))
          << "fused " << fused;
      EXPECT_EQ(to_host, host_to_host);
      on_host.train_step_pooled(IndexTensor(batch.ids), batch.offsets, PoolingMode::sum, batch.weights,
                                batch.grad_bags);
      in_place.train_step_pooled(device_ids, offsets.span(), PoolingMode::sum, weights.span(), grad_bags.span());
    }
    EXPECT_EQ(values_of(in_place.get_weights()), values_of(on_host.get_weights())) << fused;
    EXPECT_EQ(values_of(in_place.optimizer_state("accumulator")), values_of(on_host.optimizer_state("accumulator")));
  }
  device.offer_fused_steps(true);
}

TEST(DeviceTensors, SparseGradAndMaskReadDeviceIds) {
  auto context = sim_context(64 * kMiB);
  SimDeviceBackend& device = sim_of(*context);
  constexpr std::int64_t kRows = 300, kDim = 4;
  TableConfig config = config_for(kRows, kDim, embedkit::PlacementPolicy::cuda);
  config.mask_zero = true;
  config.max_norm = 0.01;  // the lookup renormalises: its ids are checked on the host from a copy
  embedkit::EmbeddingTable table(config, *context);
  embedkit::EmbeddingTable twin(config, *context);
  const Batch batch = batch_for(kRows, kDim, 3);
  const DeviceArray<std::int64_t> ids(device, batch.ids);
  const IndexTensor device_ids(ids.data(), {static_cast<std::int64_t>(batch.ids.size())});
  const DeviceArray<float> grad_rows(device, batch.grad_rows);

  const embedkit::SparseGrad expected = twin.sparse_grad(IndexTensor(batch.ids), batch.grad_rows);
  const embedkit::SparseGrad got = table.sparse_grad(device_ids, grad_rows.span());
  EXPECT_EQ(got.unique_ids, expected.unique_ids);
  EXPECT_EQ(got.rows, expected.rows);

  const DeviceArray<std::uint8_t> mask(device, std::vector<std::uint8_t>(batch.ids.size(), 7));
  table.compute_mask(device_ids, mask.span());
  EXPECT_EQ(mask.read(), values_of(table.compute_mask(IndexTensor(batch.ids))));

  const DeviceArray<float> out(device, std::vector<float>(batch.ids.size() * kDim));
  const auto [to_device, to_host] = traffic(device, [&] { table.lookup(device_ids, out.span()); });
  EXPECT_EQ(to_host, batch.ids.size() * sizeof(std::int64_t));  // max_norm's check of the ids
  EXPECT_EQ(out.read(), values_of(twin.lookup(IndexTensor(batch.ids))));
  EXPECT_EQ(values_of(table.get_weights()), values_of(twin.get_weights()));
}

TEST(DeviceTensors, TableOnTheCpuCopiesThemAcrossAndBack) {
  auto context = sim_context(64 * kMiB);
  SimDeviceBackend& device = sim_of(*context);
  constexpr std::int64_t kRows = 200, kDim = 8;
  embedkit::EmbeddingTable table(config_for(kRows, kDim, embedkit::PlacementPolicy::cpu), *context);
  embedkit::EmbeddingTable twin(config_for(kRows, kDim, embedkit::PlacementPolicy::cpu), *context);
  const Batch batch = batch_for(kRows, kDim, 4);
  const DeviceArray<std::int32_t> ids(device, std::vector<std::int32_t>(batch.ids.begin(), batch.ids.end()));
  const IndexTensor device_ids(ids.data(), {static_cast<std::int64_t>(batch.ids.size())});
  const DeviceArray<float> out(device, std::vector<float>(batch.ids.size() * kDim));
  const auto [to_device, to_host] = traffic(device, [&] { table.lookup(device_ids, out.span()); });
  // The ids cross twice (the CPU's host-side check reads a copy, the lookup another), the rows once.
  EXPECT_EQ(to_host, 2 * batch.ids.size() * sizeof(std::int32_t));
  EXPECT_EQ(to_device, out.size * sizeof(float));
  EXPECT_EQ(out.read(), values_of(twin.lookup(IndexTensor(batch.ids))));

  const DeviceArray<std::int64_t> offsets(device, batch.offsets);
  const DeviceArray<float> weights(device, batch.weights), grad_bags(device, batch.grad_bags);
  table.train_step_pooled(device_ids, offsets.span(), PoolingMode::sqrtn, {}, grad_bags.span());
  twin.train_step_pooled(IndexTensor(batch.ids), batch.offsets, PoolingMode::sqrtn, {}, batch.grad_bags);
  EXPECT_EQ(values_of(table.get_weights()), values_of(twin.get_weights()));
}

TEST(DeviceTensors, BadIdsInDeviceMemoryAreNamedAndChangeNoTable) {
  auto context = sim_context(64 * kMiB);
  SimDeviceBackend& device = sim_of(*context);
  for (const auto where : {embedkit::PlacementPolicy::cuda, embedkit::PlacementPolicy::cpu}) {
    embedkit::EmbeddingTable table(config_for(50, 4, where), *context);
    const std::vector<float> before = values_of(table.get_weights());
    const DeviceArray<std::int64_t> ids(device, {3, 9, 50, 1});
    const IndexTensor device_ids(ids.data(), {2, 2});
    const DeviceArray<float> grad(device, std::vector<float>(16, 1.0f));
    try {
      table.train_step(device_ids, grad.span());
      FAIL() << "an id past the table was taken";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), Status::out_of_range);
      EXPECT_NE(std::string(e.what()).find("indices[1,0] = 50 is not in [0, 50)"), std::string::npos) << e.what();
    }
    const DeviceArray<std::int64_t> offsets(device, {0, 3, 2});  // decreasing: refused from its copy
    const DeviceArray<float> out(device, std::vector<float>(8));
    EXPECT_THROW(table.lookup_pooled(IndexTensor(ids.data(), {4}), offsets.span(), PoolingMode::sum, {}, out.span()),
                 Error);
    EXPECT_EQ(values_of(table.get_weights()), before);
    EXPECT_EQ(table.step(), 0);
  }
}

TEST(DeviceTensors, ChunkedRetrySplitsDeviceInputsFromHostCopies) {
  auto context = sim_context(64 * kMiB);
  SimDeviceBackend& device = sim_of(*context);
  constexpr std::int64_t kRows = 300, kDim = 8;
  device.offer_fused_steps(false);
  embedkit::EmbeddingTable table(config_for(kRows, kDim, embedkit::PlacementPolicy::cuda), *context);
  embedkit::EmbeddingTable twin(config_for(kRows, kDim, embedkit::PlacementPolicy::cuda), *context);
  const Batch batch = batch_for(kRows, kDim, 6);
  const DeviceArray<std::int64_t> ids(device, batch.ids);
  const DeviceArray<float> grad(device, batch.grad_rows);
  twin.train_step(IndexTensor(batch.ids), batch.grad_rows);
  device.fail_allocation_in(1);  // the whole batch's fold: retried in chunks
  table.train_step(IndexTensor(ids.data(), {static_cast<std::int64_t>(batch.ids.size())}), grad.span());
  EXPECT_EQ(values_of(table.get_weights()), values_of(twin.get_weights()));
  device.offer_fused_steps(true);
}

TEST(DeviceTensors, PooledRetryReadsDeviceInputsFromHostCopies) {
  auto context = sim_context(64 * kMiB);
  SimDeviceBackend& device = sim_of(*context);
  constexpr std::int64_t kRows = 300, kDim = 8;
  device.offer_fused_steps(false);
  embedkit::EmbeddingTable table(config_for(kRows, kDim, embedkit::PlacementPolicy::cuda), *context);
  embedkit::EmbeddingTable twin(config_for(kRows, kDim, embedkit::PlacementPolicy::cuda), *context);
  const Batch batch = batch_for(kRows, kDim, 8);
  const DeviceArray<std::int64_t> ids(device, batch.ids), offsets(device, batch.offsets);
  const DeviceArray<float> weights(device, batch.weights), grad(device, batch.grad_bags);
  twin.train_step_pooled(IndexTensor(batch.ids), batch.offsets, PoolingMode::mean, batch.weights, batch.grad_bags);
  device.fail_allocation_in(1);  // the pooled fold: retried as per-entry rows made on the host
  table.train_step_pooled(IndexTensor(ids.data(), {static_cast<std::int64_t>(batch.ids.size())}), offsets.span(),
                          PoolingMode::mean, weights.span(), grad.span());
  EXPECT_EQ(values_of(table.get_weights()), values_of(twin.get_weights()));
  device.offer_fused_steps(true);
}

TEST(DeviceTensors, StreamScopesNestAndRestore) {
  int first = 0, second = 0;
  EXPECT_EQ(embedkit::detail::call_stream(), nullptr);
  {
    const embedkit::CudaStreamScope outer(&first);
    EXPECT_EQ(embedkit::detail::call_stream(), &first);
    {
      const embedkit::CudaStreamScope inner(&second);
      EXPECT_EQ(embedkit::detail::call_stream(), &second);
      const embedkit::CudaStreamScope none(nullptr);  // NULL keeps the enclosing stream
      EXPECT_EQ(embedkit::detail::call_stream(), &second);
    }
    EXPECT_EQ(embedkit::detail::call_stream(), &first);
  }
  EXPECT_EQ(embedkit::detail::call_stream(), nullptr);
}

TEST(DeviceTensors, CApiStagingHandsDeviceTensorsOnInPlace) {
  SimDeviceBackend device(kMiB);
  const std::vector<std::int64_t> values = {2, 0, 1};
  const DeviceArray<std::int64_t> ids(device, values);
  std::int64_t shape[] = {3};
  DLTensor tensor{ids.data(), {kDLCUDA, 0}, 1, {kDLInt, 64, 1}, shape, nullptr, 0};
  embedkit::detail::TensorStaging staging(&device, nullptr, embedkit::detail::DeviceTensors::in_place);
  const auto [to_device, to_host] = traffic(device, [&] { EXPECT_EQ(staging.indices(&tensor).data(), ids.data()); });
  EXPECT_EQ(to_host, 0u);
  // A host pointer that claims to be device memory is still caught.
  std::int64_t host_ids[] = {1, 2, 3};
  DLTensor liar{host_ids, {kDLCUDA, 0}, 1, {kDLInt, 64, 1}, shape, nullptr, 0};
  EXPECT_THROW(staging.indices(&liar), Error);
}

}  // namespace
