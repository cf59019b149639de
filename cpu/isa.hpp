#pragma once
// Run-time choice of an instruction set for the few loops whose speed depends on it. The library
// is built for baseline x86-64 (SSE2, unless the builder adds -march to the flags) so that it loads
// on every x86-64 CPU; a loop compiled a
// second time with EMBEDKIT_TARGET_AVX2 runs where the CPU supports AVX2. Neither clone contracts
// a multiply and an add (-ffp-contract=off, and AVX2 alone has no FMA), so both give the same bits.

namespace embedkit::cpu {

/// The instruction sets the clones are compiled for.
enum class Isa { baseline, avx2 };

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define EMBEDKIT_HAVE_AVX2_CLONES 1
#define EMBEDKIT_TARGET_AVX2 __attribute__((target("avx2")))
#else
#define EMBEDKIT_HAVE_AVX2_CLONES 0
#endif

/// Whether this CPU executes `isa` (and this build has clones for it).
inline bool supports(Isa isa) {
#if EMBEDKIT_HAVE_AVX2_CLONES
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return isa == Isa::baseline || avx2;
#else
  return isa == Isa::baseline;
#endif
}

/// The widest instruction set this CPU executes.
inline Isa best_isa() { return supports(Isa::avx2) ? Isa::avx2 : Isa::baseline; }

}  // namespace embedkit::cpu
