#pragma once
// What a Context holds: its device backend (or why it has none) and the ledger of device bytes.

#include <embedkit/context.hpp>

#include "backend/backend.hpp"

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace embedkit {

struct Context::Impl {
  std::unique_ptr<detail::Backend> device;  // null: no usable device
  bool built_with_cuda = false;
  std::string no_device_reason;  // the runtime's words when the device query failed
  // Held while a table is placed on the device (decision, allocation, ledger entry), so tables
  // created or migrated from several threads at once never overcommit the device together.
  std::mutex placement_mutex;
  std::mutex mutex;  // guards the ledger below
  // The ledger: what tables of this context need on `device` (weights, state, and the workspace
  // of their largest batch), and the part of it they hold allocated (weights and state).
  std::uint64_t placed = 0;
  std::uint64_t resident = 0;

  void reserve(std::uint64_t needed, std::uint64_t allocated) {
    std::lock_guard lock(mutex);
    placed += needed;
    resident += allocated;
  }
  void release(std::uint64_t needed, std::uint64_t allocated) {
    std::lock_guard lock(mutex);
    placed -= needed;
    resident -= allocated;
  }
  std::uint64_t ledger() {
    std::lock_guard lock(mutex);
    return placed;
  }
  /// Bytes promised to tables but not allocated now: their workspaces, which the device's free
  /// memory does not show yet.
  std::uint64_t promised() {
    std::lock_guard lock(mutex);
    return placed - resident;
  }
};

}  // namespace embedkit
