#include "renorm.hpp"

#include "parallel.hpp"

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

void renorm_rows(float* weights, std::int64_t dim, const std::int64_t* ids, std::int64_t count,
                 const detail::RenormRule& rule) {
#pragma omp parallel for schedule(static) if (count * dim >= kParallelMinFloats)
  for (std::int64_t k = 0; k < count; ++k) renorm_row(weights + ids[k] * dim, dim, rule);
}

}  // namespace embedkit::cpu
