#pragma once
// Float buffers for the benchmarks: cache-line aligned like the table's weights, and first touched by
// the threads of a static schedule, so on NUMA machines their pages lie where the loops use them.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>

namespace embedkit::bench {

struct FreeDeleter {
  void operator()(float* p) const noexcept { std::free(p); }
};

/// An aligned, zeroed array of floats, freed with std::free.
class Floats {
 public:
  Floats() = default;
  /// `count` zeroed floats. @throws std::bad_alloc.
  explicit Floats(std::int64_t count);

  float* data() const noexcept { return data_.get(); }
  std::int64_t size() const noexcept { return count_; }
  std::span<float> span() const noexcept { return {data_.get(), static_cast<std::size_t>(count_)}; }

 private:
  std::unique_ptr<float[], FreeDeleter> data_;
  std::int64_t count_ = 0;
};

}  // namespace embedkit::bench
