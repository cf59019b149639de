// An allocation that fails inside a train step, after the step has queued work, on every device
// backend present: the simulated device's injected failure, and on CUDA a caller's allocator
// (ek_set_cuda_allocator) that refuses the Nth allocation. Whichever allocation fails, the step
// either retries (in chunks, or unfused) and lands on the CPU's bits, or fails with out_of_memory
// and leaves the table bit for bit as it was; the steps after it are the CPU's. At least one
// failure must be survived by a retry, or the retry was never exercised.
#include "tests/conformance/optimizer_cases.hpp"
#include "tests/sim_context.hpp"

#if EMBEDKIT_CONFORMANCE_CUDA
#include <embedkit/c_api.h>

#include <cuda_runtime_api.h>
#endif

namespace {

using namespace embedkit::testing::conformance;
using embedkit::EmbeddingTable;
using embedkit::TableConfig;

#if EMBEDKIT_CONFORMANCE_CUDA
// A caller's allocator over cudaMalloc that refuses, once, the allocation `armed` allocations from
// now. Installed for the life of the object: it must be made before any device table exists.
class FailingCudaAllocator {
 public:
  FailingCudaAllocator() : installed_(ek_set_cuda_allocator(&allocate, &release, this) == EK_OK) {}
  ~FailingCudaAllocator() {
    if (installed_) (void)ek_set_cuda_allocator(nullptr, nullptr, nullptr);
  }
  FailingCudaAllocator(const FailingCudaAllocator&) = delete;
  FailingCudaAllocator& operator=(const FailingCudaAllocator&) = delete;
  bool installed() const { return installed_; }
  void arm(std::int64_t n) { countdown_ = n; }
  bool fired() const { return fired_; }
  void reset() {
    countdown_ = 0;
    fired_ = false;
  }

 private:
  static void* allocate(std::size_t bytes, void*, void* context) {
    auto* self = static_cast<FailingCudaAllocator*>(context);
    if (self->countdown_ > 0 && --self->countdown_ == 0) {
      self->fired_ = true;
      return nullptr;
    }
    void* data = nullptr;
    return cudaMalloc(&data, bytes) == cudaSuccess ? data : nullptr;
  }
  static void release(void* data, void*, void*) { (void)cudaFree(data); }

  bool installed_;
  std::int64_t countdown_ = 0;
  bool fired_ = false;
};
#endif

class AllocationFailureConformance : public OnBackend {
 protected:
  void SetUp() override {
    OnBackend::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (GetParam().name == "cpu") GTEST_SKIP() << "the CPU's allocations are not injected";
#if EMBEDKIT_CONFORMANCE_CUDA
    cuda_ = std::make_unique<FailingCudaAllocator>();
    ASSERT_TRUE(cuda_->installed()) << "ek_set_cuda_allocator: " << ek_last_error();
#endif
  }
  void TearDown() override {
    OnBackend::TearDown();  // the tables are gone: the allocator may go
#if EMBEDKIT_CONFORMANCE_CUDA
    cuda_.reset();
#endif
  }
  // Fails the allocation `n` allocations from now, once.
  void fail_allocation_in(std::int64_t n) {
#if EMBEDKIT_CONFORMANCE_CUDA
    cuda_->reset();
    cuda_->arm(n);
#else
    embedkit::testing::sim_of(context()).fail_allocation_in(n);
    sim_allocations_before_ = embedkit::testing::sim_of(context()).allocations();
    sim_armed_ = n;
#endif
  }
  // Whether the armed failure happened (and disarms it).
  bool failure_fired() {
#if EMBEDKIT_CONFORMANCE_CUDA
    const bool fired = cuda_->fired();
    cuda_->reset();
    return fired;
#else
    const std::int64_t made = embedkit::testing::sim_of(context()).allocations() - sim_allocations_before_;
    if (made < sim_armed_) embedkit::testing::sim_of(context()).fail_allocation_in(1 << 30);  // effectively disarmed
    return made >= sim_armed_;
#endif
  }

 private:
#if EMBEDKIT_CONFORMANCE_CUDA
  std::unique_ptr<FailingCudaAllocator> cuda_;
#else
  std::int64_t sim_allocations_before_ = 0;
  std::int64_t sim_armed_ = 0;
#endif
};

TEST_P(AllocationFailureConformance, EveryAllocationOfAStepRetriesOrChangesNothing) {
  struct Case {
    const char* name;
    std::int64_t dim;
    bool pooled;
    bool lazy;
  };
  // Fused dims (the fused step falls back to the unfused one), a dim too wide to fuse, dense Adam,
  // and a pooled step (which retries as per-entry rows).
  const Case cases[] = {{"fused", 16, false, true},
                        {"unfused", 300, false, true},
                        {"dense adam", 8, false, false},
                        {"pooled", 16, true, true}};
  for (const Case& c : cases) {
    int survived = 0;
    for (std::int64_t n = 1; n <= 10; ++n) {
      TableConfig config = optimizer_config(kOptimizers[5], c.dim);  // adam
      config.optimizer.lazy = c.lazy;
      auto table = on_backend(config);
      auto cpu = on_cpu(config);
      const auto offsets = random_offsets(40, 20, 3);
      const auto ids = random_ids<std::int64_t>(c.pooled ? static_cast<std::size_t>(offsets.back()) : 700, 4);
      const auto grad = random_values((c.pooled ? 40 : ids.size()) * static_cast<std::size_t>(c.dim), 5);
      const auto weights = random_values(ids.size(), 6, 0.5f, 2.0f);
      const auto step = [&](EmbeddingTable& t) {
        if (c.pooled) {
          t.train_step_pooled(IndexTensor(ids), offsets, PoolingMode::mean, weights, grad);
        } else {
          t.train_step(IndexTensor(ids), grad);
        }
      };
      const std::string what = std::string(c.name) + ", allocation " + std::to_string(n);
      step(table);  // the table's workspace is grown by now
      step(cpu);
      const TableState before = state_of(table);
      fail_allocation_in(n);
      bool failed = false;
      try {
        step(table);
      } catch (const Error& e) {
        EXPECT_EQ(e.status(), Status::out_of_memory) << what << ": " << e.what();
        failed = true;
      }
      const bool fired = failure_fired();
      if (failed) {
        EXPECT_TRUE(fired) << what << ": the step failed, but not from the injected failure";
        EXPECT_TRUE(same_bits(state_of(table), before)) << what << ": a failed step changed the table";
        step(table);  // the same step again, now that memory is there
      } else if (fired) {
        ++survived;
      }
      step(cpu);
      EXPECT_TRUE(same_bits(state_of(table), state_of(cpu))) << what;
      step(table);
      step(cpu);
      EXPECT_TRUE(same_bits(state_of(table), state_of(cpu))) << what << ", the step after";
    }
    EXPECT_GT(survived, 0) << c.name << ": no injected failure was retried";
  }
}

INSTANTIATE_TEST_SUITE_P(On, AllocationFailureConformance, ::testing::ValuesIn(present_backends()), backend_name);

}  // namespace
