#include "mask.hpp"

#include "parallel.hpp"

namespace embedkit::cpu {

template <class Index>
void nonzero_mask(const Index* ids, std::int64_t count, std::uint8_t* mask) {
#pragma omp parallel for schedule(static) if (count >= kParallelMinIds)
  for (std::int64_t i = 0; i < count; ++i) mask[i] = ids[i] != 0 ? 1 : 0;
}

template void nonzero_mask(const std::int32_t*, std::int64_t, std::uint8_t*);
template void nonzero_mask(const std::int64_t*, std::int64_t, std::uint8_t*);

}  // namespace embedkit::cpu
