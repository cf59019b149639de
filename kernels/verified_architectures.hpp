#pragma once
// The GPU architectures on which embedkit's CUDA table kernels have passed the GPU suite
// (scripts/gpu_check.sh, its report recorded in docs/status.md). Auto placement puts tables on a
// device of such an architecture; elsewhere it keeps them on the CPU unless EMBEDKIT_CUDA_TABLES=1.
// An architecture joins the list only with the report of a passing run on it.

#include <array>

namespace embedkit::kernels {

/// Compute capabilities (major * 10 + minor) verified so far: none yet, no GPU has run the suite.
inline constexpr std::array<int, 0> kVerifiedArchitectures{};

/// Whether the kernels have passed the GPU suite on compute capability major.minor.
constexpr bool architecture_verified(int major, int minor) {
  for (const int verified : kVerifiedArchitectures) {
    if (verified == major * 10 + minor) return true;
  }
  return false;
}

}  // namespace embedkit::kernels
