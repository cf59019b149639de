#pragma once
/// @file context.hpp
/// @brief A Context: the device tables may be placed on, and the ledger of what is placed there.

#include <embedkit/export.h>

#include <cstdint>
#include <memory>
#include <string>

namespace embedkit {

/// @brief Tables created in one Context share a device and a ledger, so ten tables that each fit
/// alone never overcommit the device together. Tables must not outlive their Context.
class EMBEDKIT_API Context {
 public:
  /// @brief The process-wide context (the C ABI's): CUDA device 0 when the library has CUDA and a
  /// device is usable, else none.
  static Context& default_context();

  struct Impl;  ///< Opaque; defined inside the library.
  explicit Context(std::unique_ptr<Impl> impl);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  /// @brief "cuda:0" (or a test device's name), or "" when the context has no device.
  std::string device_name() const;
  /// @brief Bytes that tables of this context hold on its device now.
  std::uint64_t device_bytes_placed() const;

  Impl& impl() noexcept { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedkit
