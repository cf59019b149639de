#include "buffers.hpp"

#include <algorithm>
#include <cstring>
#include <new>

namespace embedkit::bench {
namespace {
constexpr std::size_t kAlignment = 64;
constexpr std::int64_t kTouchBlock = 1 << 16;  // floats zeroed per loop iteration
}  // namespace

Floats::Floats(std::int64_t count) : count_(count) {
  const std::size_t bytes = std::max<std::size_t>(
      kAlignment, (static_cast<std::size_t>(count) * sizeof(float) + kAlignment - 1) / kAlignment * kAlignment);
  data_.reset(static_cast<float*>(std::aligned_alloc(kAlignment, bytes)));
  if (!data_) throw std::bad_alloc();
  float* data = data_.get();
#pragma omp parallel for schedule(static)
  for (std::int64_t begin = 0; begin < count; begin += kTouchBlock) {
    const std::int64_t end = std::min(count, begin + kTouchBlock);
    std::memset(data + begin, 0, static_cast<std::size_t>(end - begin) * sizeof(float));
  }
}

}  // namespace embedkit::bench
