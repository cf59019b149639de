#pragma once
// C++17, host and device. torch's max_norm for lookups (torch.embedding_renorm_): before a lookup
// reads them, each distinct row it looks up whose p-norm exceeds max_norm is scaled, in the table,
// by max_norm / (norm + 1e-7). The norm and the scale are written here once, for the CPU loop
// (cpu/renorm.cpp) and the CUDA kernel (kernels/renorm_kernel.hpp).
//
// A row's norm is taken in two passes a lane group can share: its largest magnitude M, then
// Σ term(x, M) in double. For p = 1 and 2 the terms are |x| and x² (no float32 value overflows a
// double square); for another finite p they are (|x|/M)^p and the norm M·(Σ)^(1/p), so a large
// p or large values do not overflow to an infinite norm (which would scale the row to zeros); for
// p = ∞ the norm is M. The norm is then rounded to float32, as torch's norm of a float32 row is.

#include <embedkit/detail/host_device.hpp>

#include <cmath>
#include <cstdint>

namespace embedkit::detail {

/// The p-norms with arithmetic of their own; every other p is `general`.
enum class NormKind { one, two, general, infinity };

/// torch's epsilon in the renorm scale.
constexpr double kRenormEpsilon = 1e-7;

/// What a renormalising lookup does to each row it looks up, as the loops take it.
struct RenormRule {
  double max_norm = 0.0;  // > 0
  double p = 2.0;         // norm_type, > 0; infinity for the maximum norm
  NormKind kind = NormKind::two;
};

/// The rule for a table's max_norm and norm_type (checked by TableConfig::validate).
inline RenormRule renorm_rule(double max_norm, double norm_type) {
  RenormRule rule;
  rule.max_norm = max_norm;
  rule.p = norm_type;
  rule.kind = norm_type == 1.0        ? NormKind::one
              : norm_type == 2.0      ? NormKind::two
              : std::isinf(norm_type) ? NormKind::infinity
                                      : NormKind::general;
  return rule;
}

/// Words of the bitmap a device renorm marks the rows it has claimed in: a bit a row, 32 a word.
/// The CUDA backend keeps it in a table's workspace, which placement sizes for it.
EK_HOST_DEVICE inline std::int64_t renorm_claim_words(std::int64_t input_dim) { return (input_dim + 31) / 32; }

/// Whether the norm needs the row's largest magnitude (the first pass).
EK_HOST_DEVICE inline bool needs_largest(const RenormRule& rule) {
  return rule.kind == NormKind::general || rule.kind == NormKind::infinity;
}

/// The larger of two magnitudes, NaN winning: a row holding NaN has a NaN norm, as in torch, and
/// is left as it is.
EK_HOST_DEVICE inline float larger_magnitude(float a, float b) { return (a != a || a > b) ? a : b; }

/// |x| without a libm call the host and device spell differently.
EK_HOST_DEVICE inline float magnitude(float x) { return x < 0.0f ? -x : x; }

/// Whether M scales the terms: positive and finite (a row of zeros, an infinity or a NaN has the
/// norm M itself).
EK_HOST_DEVICE inline bool scales_terms(float largest) { return largest > 0.0f && largest <= 3.40282347e38f; }

/// One value's term of the second pass, given the row's largest magnitude (0 when not needed).
EK_HOST_DEVICE inline double norm_term(float x, float largest, const RenormRule& rule) {
  const double a = static_cast<double>(magnitude(x));
  switch (rule.kind) {
    case NormKind::one: return a;
    case NormKind::two: return a * a;
    case NormKind::general: return scales_terms(largest) ? ::pow(a / static_cast<double>(largest), rule.p) : 0.0;
    case NormKind::infinity: return 0.0;
  }
  return 0.0;
}

/// The row's p-norm as float32 from the sum of its terms and its largest magnitude.
EK_HOST_DEVICE inline float finish_norm(double sum, float largest, const RenormRule& rule) {
  switch (rule.kind) {
    case NormKind::one: return static_cast<float>(sum);
    case NormKind::two: return static_cast<float>(::sqrt(sum));
    case NormKind::general:
      if (!scales_terms(largest)) return largest;
      return static_cast<float>(static_cast<double>(largest) * ::pow(sum, 1.0 / rule.p));
    case NormKind::infinity: return largest;
  }
  return largest;
}

/// Whether a row of norm `norm` is renormalised: norm > max_norm (never for a NaN norm).
EK_HOST_DEVICE inline bool exceeds_max_norm(float norm, const RenormRule& rule) {
  return static_cast<double>(norm) > rule.max_norm;
}

/// torch's factor for such a row: max_norm / (norm + 1e-7) in double, applied as a float multiply.
EK_HOST_DEVICE inline float renorm_scale(float norm, const RenormRule& rule) {
  return static_cast<float>(rule.max_norm / (static_cast<double>(norm) + kRenormEpsilon));
}

}  // namespace embedkit::detail
