#include "renorm.hpp"

#include "parallel.hpp"

#include <type_traits>
#include <vector>

namespace embedkit::cpu {

float renorm_norm(const float* row, std::int64_t dim, const detail::RenormRule& rule) {
  float largest = 0.0f;
  if (detail::needs_largest(rule)) {
    for (std::int64_t c = 0; c < dim; ++c) largest = detail::larger_magnitude(largest, detail::magnitude(row[c]));
  }
  double sum = 0.0;
  if (rule.kind != detail::NormKind::infinity) {
    for (std::int64_t c = 0; c < dim; ++c) sum += detail::norm_term(row[c], largest, rule);
  }
  return detail::finish_norm(sum, largest, rule);
}

void renorm_row(float* row, std::int64_t dim, const detail::RenormRule& rule) {
  const float norm = renorm_norm(row, dim, rule);
  if (!detail::exceeds_max_norm(norm, rule)) return;
  const float scale = detail::renorm_scale(norm, rule);
  for (std::int64_t c = 0; c < dim; ++c) row[c] *= scale;
}

template <class T>
void renorm_rows(T* weights, std::int64_t dim, const std::int64_t* ids, std::int64_t count,
                 const detail::RenormRule& rule) {
  if constexpr (std::is_same_v<T, float>) {
#pragma omp parallel for schedule(static) if (count * dim >= kParallelMinFloats)
    for (std::int64_t k = 0; k < count; ++k) renorm_row(weights + ids[k] * dim, dim, rule);
  } else {
    // Narrow rows: the norm and the scaling in float32, a scaled row rounded back to nearest.
#pragma omp parallel if (count * dim >= kParallelMinFloats)
    {
      std::vector<float> wide(static_cast<std::size_t>(dim));
#pragma omp for schedule(static)
      for (std::int64_t k = 0; k < count; ++k) {
        T* row = weights + ids[k] * dim;
        for (std::int64_t c = 0; c < dim; ++c) wide[c] = detail::widen(row[c]);
        const float norm = renorm_norm(wide.data(), dim, rule);
        if (!detail::exceeds_max_norm(norm, rule)) continue;
        const float scale = detail::renorm_scale(norm, rule);
        for (std::int64_t c = 0; c < dim; ++c) row[c] = detail::narrow_nearest<T>(wide[c] * scale);
      }
    }
  }
}

template void renorm_rows(float*, std::int64_t, const std::int64_t*, std::int64_t, const detail::RenormRule&);
template void renorm_rows(detail::float16*, std::int64_t, const std::int64_t*, std::int64_t, const detail::RenormRule&);
template void renorm_rows(detail::bfloat16*, std::int64_t, const std::int64_t*, std::int64_t,
                          const detail::RenormRule&);

}  // namespace embedkit::cpu
