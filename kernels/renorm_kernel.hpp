#pragma once
// C++17, host and device. The body of kernels/renorm.cu's kernel, torch's max_norm before a
// lookup: one lane group per position of the batch. The group whose lane 0 claims its id's bit in
// a bitmap renormalises that row; the others (later copies of the id, out-of-range ids) do nothing,
// so each distinct row is read and written by one group alone. The phases between the collectives
// are functions of (group, lane), replayed on the CPU by tests/renorm_kernel_host_test.cpp; the
// norm and the scale are detail/renorm_math.hpp's, as on the CPU.

#include <embedkit/detail/host_device.hpp>
#include <embedkit/detail/id_range.hpp>
#include <embedkit/detail/renorm_math.hpp>

#include <cstdint>

namespace embedkit::kernels {

using detail::renorm_claim_words;

template <class Index>
struct RenormArgs {
  float* weights;          // (input_dim, dim)
  std::int64_t input_dim;  //
  std::int64_t dim;        //
  const Index* ids;        // the batch, duplicates and out-of-range ids included
  std::int64_t count;      //
  unsigned int* claimed;   // detail::renorm_claim_words(input_dim) words, zero before the launch
  detail::RenormRule rule;
};

/// Phase 1, lane 0 of group `group`: the row the group renormalises, or -1 when its position is
/// past the batch, its id out of range, or its row claimed by another group.
template <class Index>
EK_HOST_DEVICE inline std::int64_t renorm_claim_phase(std::int64_t group, const RenormArgs<Index>& args) {
  if (group >= args.count) return -1;
  const auto id = static_cast<std::int64_t>(args.ids[group]);
  if (!detail::id_in_range(id, args.input_dim)) return -1;
  unsigned int* word = args.claimed + id / 32;
  const unsigned int bit = 1u << static_cast<unsigned int>(id % 32);
#if defined(__CUDA_ARCH__)
  const unsigned int before = atomicOr(word, bit);
#else
  const unsigned int before = *word;  // the host replay runs the groups one after another
  *word = before | bit;
#endif
  return (before & bit) != 0 ? -1 : id;
}

/// Phase 2: the largest magnitude of this lane's columns of row `id` (< 0: none), when the norm
/// needs it (0 otherwise); the group combines the lanes' (group_max_magnitude).
template <class Index>
EK_HOST_DEVICE inline float renorm_largest_phase(std::int64_t id, int lane, int lanes, const RenormArgs<Index>& args) {
  float largest = 0.0f;
  if (id < 0 || !detail::needs_largest(args.rule)) return largest;
  const float* w = args.weights + id * args.dim;
  for (std::int64_t c = lane; c < args.dim; c += lanes) {
    largest = detail::larger_magnitude(largest, detail::magnitude(w[c]));
  }
  return largest;
}

/// Phase 3: this lane's share of the row's sum of norm terms, given the row's largest magnitude;
/// the group adds the shares (group_sum).
template <class Index>
EK_HOST_DEVICE inline double renorm_terms_phase(std::int64_t id, int lane, int lanes, const RenormArgs<Index>& args,
                                                float largest) {
  double sum = 0.0;
  if (id < 0 || args.rule.kind == detail::NormKind::infinity) return sum;
  const float* w = args.weights + id * args.dim;
  for (std::int64_t c = lane; c < args.dim; c += lanes) sum += detail::norm_term(w[c], largest, args.rule);
  return sum;
}

/// Phase 4: this lane's columns of row `id` scaled when the row's norm exceeds max_norm. Each lane
/// writes only the columns it read, so no lane sees another's write.
template <class Index>
EK_HOST_DEVICE inline void renorm_scale_phase(std::int64_t id, int lane, int lanes, const RenormArgs<Index>& args,
                                              double sum, float largest) {
  if (id < 0) return;
  const float norm = detail::finish_norm(sum, largest, args.rule);
  if (!detail::exceeds_max_norm(norm, args.rule)) return;
  const float scale = detail::renorm_scale(norm, args.rule);
  float* w = args.weights + id * args.dim;
  for (std::int64_t c = lane; c < args.dim; c += lanes) w[c] *= scale;
}

}  // namespace embedkit::kernels
