#pragma once
// C++17, host only, no CUDA header: the RAII scope every CUDA backend call runs in, written over a
// small device interface so tests drive it with a fake (tests/device_scope_test.cpp); the CUDA
// runtime's interface is cuda_device_scope.hpp's.
//
// A scope selects a device for its length and gives the caller's back on the way out (a table on
// cuda:1 never leaves the calling thread on another device), and, when it is left by an exception,
// first waits for the work queued on its stream: an exception skips the call's own
// synchronisation, and the buffers freed while unwinding (staged ids and gradients, temporaries)
// may still be read by kernels queued before the throw.

#include <exception>

namespace embedkit::kernels {

/// `Devices` provides, all noexcept, with 0 for success and the runtime's error code otherwise:
///   using Stream = ...;                   a stream handle (value-initialised: none)
///   int current(int* ordinal);            the calling thread's device
///   int select(int ordinal);              makes `ordinal` the thread's device
///   int synchronize(Stream stream);       waits for the work queued on `stream`
template <class Devices>
class DeviceScope {
 public:
  using Stream = typename Devices::Stream;

  /// Selects `ordinal` (nothing to do when it is the thread's device already); `unwind_stream` is
  /// the stream waited for when the scope is left by an exception. error() says whether it failed.
  DeviceScope(Devices devices, int ordinal, Stream unwind_stream = Stream{}) noexcept
      : devices_(devices), unwind_stream_(unwind_stream), exceptions_(std::uncaught_exceptions()) {
    error_ = devices_.current(&previous_);
    if (error_ != 0 || previous_ == ordinal) return;
    error_ = devices_.select(ordinal);
    switched_ = error_ == 0;
  }
  ~DeviceScope() {
    if (error_ == 0 && unwind_stream_ != Stream{} && std::uncaught_exceptions() > exceptions_) {
      (void)devices_.synchronize(unwind_stream_);  // the error, if any, is the runtime's to report next
    }
    if (switched_) (void)devices_.select(previous_);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

  /// 0 when the device is selected, else the runtime's error (nothing is restored then).
  int error() const noexcept { return error_; }

 private:
  Devices devices_;
  Stream unwind_stream_;
  int exceptions_;
  int previous_ = -1;
  int error_ = 0;
  bool switched_ = false;
};

}  // namespace embedkit::kernels
