#include "index_scan.hpp"

#include "parallel.hpp"

namespace embedkit::cpu {

template <class Index>
std::int64_t count_out_of_range(const Index* ids, std::int64_t count, std::int64_t input_dim) {
  std::int64_t bad = 0;
#pragma omp parallel for schedule(static) reduction(+ : bad) if (count >= kParallelMinIds)
  for (std::int64_t i = 0; i < count; ++i) bad += id_in_range(ids[i], input_dim) ? 0 : 1;
  return bad;
}

template <class Index>
std::int64_t first_out_of_range(const Index* ids, std::int64_t count, std::int64_t input_dim) {
  for (std::int64_t i = 0; i < count; ++i) {
    if (!id_in_range(ids[i], input_dim)) return i;
  }
  return -1;
}

template <class Index>
detail::IdCheck scan_ids(const Index* ids, std::int64_t count, std::int64_t input_dim) {
  detail::IdCheck check;
  check.out_of_range = count_out_of_range(ids, count, input_dim);
  if (check.out_of_range > 0) {
    check.first_position = first_out_of_range(ids, count, input_dim);
    check.first_id = static_cast<std::int64_t>(ids[check.first_position]);
  }
  return check;
}

template detail::IdCheck scan_ids(const std::int32_t*, std::int64_t, std::int64_t);
template detail::IdCheck scan_ids(const std::int64_t*, std::int64_t, std::int64_t);
template std::int64_t count_out_of_range(const std::int32_t*, std::int64_t, std::int64_t);
template std::int64_t count_out_of_range(const std::int64_t*, std::int64_t, std::int64_t);
template std::int64_t first_out_of_range(const std::int32_t*, std::int64_t, std::int64_t);
template std::int64_t first_out_of_range(const std::int64_t*, std::int64_t, std::int64_t);

}  // namespace embedkit::cpu
