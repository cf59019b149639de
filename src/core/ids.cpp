#include "core/ids.hpp"

#include <embedkit/detail/id_range.hpp>

#include <algorithm>

namespace embedkit::detail {

template <class Index>
std::vector<std::int64_t> distinct_in_range(const Index* ids, std::int64_t count, std::int64_t input_dim) {
  std::vector<std::int64_t> distinct;
  for (std::int64_t p = 0; p < count; ++p) {
    const auto id = static_cast<std::int64_t>(ids[p]);
    if (id_in_range(id, input_dim)) distinct.push_back(id);
  }
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  return distinct;
}

template std::vector<std::int64_t> distinct_in_range(const std::int32_t*, std::int64_t, std::int64_t);
template std::vector<std::int64_t> distinct_in_range(const std::int64_t*, std::int64_t, std::int64_t);

std::vector<std::int64_t> distinct_in_range(const IndexTensor& indices, std::int64_t input_dim) {
  return with_ids(indices, [&](const auto* ids) { return distinct_in_range(ids, indices.size(), input_dim); });
}

std::int64_t slot_in(std::span<const std::int64_t> sorted, std::int64_t id) {
  const auto found = std::lower_bound(sorted.begin(), sorted.end(), id);
  return found != sorted.end() && *found == id ? found - sorted.begin() : -1;
}

DistinctIds distinct_ids(const IndexTensor& indices, std::int64_t input_dim) {
  return with_ids(indices, [&](const auto* ids) {
    DistinctIds distinct;
    const std::int64_t count = indices.size();
    distinct.ids = distinct_in_range(ids, count, input_dim);
    distinct.slot_of.resize(static_cast<std::size_t>(count));
    for (std::int64_t p = 0; p < count; ++p) {
      distinct.slot_of[static_cast<std::size_t>(p)] = slot_in(distinct.ids, static_cast<std::int64_t>(ids[p]));
    }
    return distinct;
  });
}

}  // namespace embedkit::detail
