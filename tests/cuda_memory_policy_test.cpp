// The CUDA backend's memory and device rules, checked without a GPU: the device scope every call
// runs in (kernels/device_scope.hpp) over a fake runtime that records what it is asked, the
// allocator's decisions (kernels/allocation_policy.hpp) and the fold's 32-bit count guard
// (kernels/fold_workspace.hpp).
#include <embedkit/status.hpp>

#include <gtest/gtest.h>

#include "kernels/allocation_policy.hpp"
#include "kernels/device_scope.hpp"
#include "kernels/fold_workspace.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using embedkit::kernels::AllocationRoute;
using embedkit::kernels::DeviceScope;
using embedkit::kernels::PoolFailure;
using embedkit::kernels::PoolFailureAction;

// A runtime with a current device per "thread" and a log of the calls made to it.
struct FakeRuntime {
  int current = 0;
  int fail_select = 0;  // the error select() answers (0: it works)
  int fail_current = 0;
  std::vector<std::string> calls;
};

struct FakeDevices {
  using Stream = const void*;
  FakeRuntime* runtime;
  int current(int* ordinal) const noexcept {
    runtime->calls.push_back("current");
    if (runtime->fail_current != 0) return runtime->fail_current;
    *ordinal = runtime->current;
    return 0;
  }
  int select(int ordinal) const noexcept {
    runtime->calls.push_back("select " + std::to_string(ordinal));
    if (runtime->fail_select != 0) return runtime->fail_select;
    runtime->current = ordinal;
    return 0;
  }
  int synchronize(Stream stream) const noexcept {
    runtime->calls.push_back(std::string("synchronize ") + static_cast<const char*>(stream));
    return 0;
  }
};

constexpr const char* kStream = "s";

TEST(DeviceScope, SelectsTheDeviceAndGivesTheCallersBack) {
  FakeRuntime runtime;
  {
    const DeviceScope<FakeDevices> scope(FakeDevices{&runtime}, 1, kStream);
    EXPECT_EQ(scope.error(), 0);
    EXPECT_EQ(runtime.current, 1);
  }
  EXPECT_EQ(runtime.current, 0);  // a table on cuda:1 leaves the thread on its own device
  EXPECT_EQ(runtime.calls, (std::vector<std::string>{"current", "select 1", "select 0"}));
}

TEST(DeviceScope, OnItsOwnDeviceAlreadyItSwitchesNothing) {
  FakeRuntime runtime;
  runtime.current = 2;
  { const DeviceScope<FakeDevices> scope(FakeDevices{&runtime}, 2, kStream); }
  EXPECT_EQ(runtime.calls, (std::vector<std::string>{"current"}));
}

TEST(DeviceScope, NestedScopesRestoreInTurn) {
  FakeRuntime runtime;
  {
    const DeviceScope<FakeDevices> outer(FakeDevices{&runtime}, 1);
    {
      const DeviceScope<FakeDevices> inner(FakeDevices{&runtime}, 3);
      EXPECT_EQ(runtime.current, 3);
    }
    EXPECT_EQ(runtime.current, 1);
  }
  EXPECT_EQ(runtime.current, 0);
}

TEST(DeviceScope, LeftByAnExceptionItWaitsForItsStreamBeforeRestoring) {
  FakeRuntime runtime;
  EXPECT_THROW(
      {
        const DeviceScope<FakeDevices> scope(FakeDevices{&runtime}, 1, kStream);
        throw std::runtime_error("out of memory after queueing work");
      },
      std::runtime_error);
  EXPECT_EQ(runtime.calls, (std::vector<std::string>{"current", "select 1", "synchronize s", "select 0"}));
  EXPECT_EQ(runtime.current, 0);
}

TEST(DeviceScope, LeftNormallyItDoesNotWait) {
  FakeRuntime runtime;
  { const DeviceScope<FakeDevices> scope(FakeDevices{&runtime}, 1, kStream); }
  for (const std::string& call : runtime.calls) EXPECT_EQ(call.find("synchronize"), std::string::npos) << call;
}

// A scope opened while another exception unwinds (a destructor's, say) waits only when it is left
// by an exception of its own.
TEST(DeviceScope, AScopeInsideAnUnwindingDestructorWaitsOnlyForItsOwnException) {
  FakeRuntime runtime;
  struct Freer {
    FakeRuntime* runtime;
    ~Freer() { const DeviceScope<FakeDevices> scope(FakeDevices{runtime}, 1, kStream); }
  };
  EXPECT_THROW(
      {
        const Freer freer{&runtime};
        throw std::runtime_error("unwinding");
      },
      std::runtime_error);
  EXPECT_EQ(runtime.calls, (std::vector<std::string>{"current", "select 1", "select 0"}));
}

TEST(DeviceScope, AFailedSelectionIsReportedAndNothingIsRestoredOrAwaited) {
  FakeRuntime runtime;
  runtime.fail_select = 101;  // cudaErrorInvalidDevice
  EXPECT_THROW(
      {
        const DeviceScope<FakeDevices> scope(FakeDevices{&runtime}, 7, kStream);
        EXPECT_EQ(scope.error(), 101);
        throw std::runtime_error("the caller throws on error()");
      },
      std::runtime_error);
  EXPECT_EQ(runtime.calls, (std::vector<std::string>{"current", "select 7"}));
  runtime.calls.clear();
  runtime.fail_select = 0;
  runtime.fail_current = 4;  // cudaErrorCudartUnloading: the process is exiting
  {
    const DeviceScope<FakeDevices> scope(FakeDevices{&runtime}, 1, kStream);
    EXPECT_EQ(scope.error(), 4);
  }
  EXPECT_EQ(runtime.calls, (std::vector<std::string>{"current"}));
}

TEST(AllocationPolicy, ADeviceWithoutPoolsUsesCudaMalloc) {
  EXPECT_EQ(embedkit::kernels::probed_route(true), AllocationRoute::pool);
  EXPECT_EQ(embedkit::kernels::probed_route(false), AllocationRoute::plain);
}

TEST(AllocationPolicy, PoolsUnsupportedFallBackToCudaMallocNotOutOfMemory) {
  using embedkit::kernels::after_pool_failure;
  EXPECT_EQ(after_pool_failure(PoolFailure::not_supported, false, 0), PoolFailureAction::use_plain);
  EXPECT_EQ(after_pool_failure(PoolFailure::not_supported, true, 0), PoolFailureAction::use_plain);
  // Buffers of the pool go back through cudaFreeAsync: the route cannot change under them.
  EXPECT_EQ(after_pool_failure(PoolFailure::not_supported, false, 3), PoolFailureAction::error);
}

TEST(AllocationPolicy, OutOfMemoryTrimsThePoolOnceThenReportsIt) {
  using embedkit::kernels::after_pool_failure;
  EXPECT_EQ(after_pool_failure(PoolFailure::out_of_memory, false, 5), PoolFailureAction::trim_and_retry);
  EXPECT_EQ(after_pool_failure(PoolFailure::out_of_memory, true, 5), PoolFailureAction::out_of_memory);
  EXPECT_EQ(after_pool_failure(PoolFailure::other, false, 0), PoolFailureAction::error);
}

TEST(AllocationPolicy, ThePoolKeepsItsMemoryAcrossSynchronisations) {
  EXPECT_EQ(embedkit::kernels::kPoolReleaseThreshold, UINT64_MAX);
}

TEST(FoldCount, TheRunLengthEncodesCountFitsAnInt) {
  using embedkit::kernels::expect_fold_count;
  using embedkit::kernels::kFoldMaxCount;
  EXPECT_EQ(kFoldMaxCount, 2147483647);
  EXPECT_NO_THROW(expect_fold_count(0));
  EXPECT_NO_THROW(expect_fold_count(kFoldMaxCount));
  for (const std::int64_t count : {kFoldMaxCount + 1, std::int64_t{3} << 31, std::int64_t{1} << 40}) {
    try {
      expect_fold_count(count);
      ADD_FAILURE() << count << " positions were accepted";
    } catch (const embedkit::Error& e) {
      EXPECT_EQ(e.status(), embedkit::Status::unsupported);
      EXPECT_NE(std::string(e.what()).find(std::to_string(count)), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("2147483647"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
