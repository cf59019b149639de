#pragma once
// C++17, host and device. Σ x² kept finite where float32's squares overflow, shared by the norms of
// the CPU path and the CUDA kernels: the sqrtn pooling denominator and the MaxNorm / UnitNorm
// constraints. A value of 1e20 squares past float32's 3.4e38, and a norm of ∞ turned a finite bag
// or row into zeros.

#include <embedkit/detail/host_device.hpp>

#include <cmath>

namespace embedkit::detail {

/// The running Σ x² of a row or a bag: the plain sum, and Σ (x·2^-64)², which holds any float32
/// values without overflow and is used only where the plain sum overflowed. Both scalings are
/// exact powers of two.
struct SquareSum {
  static constexpr float kDown = 5.42101086242752217e-20f, kUp = 18446744073709551616.0f;  // 2^-64, 2^64
  float plain = 0.0f;   // Σ x², in the order the values were added
  float scaled = 0.0f;  // Σ (x·2^-64)²
  EK_HOST_DEVICE void add(float x) {
    plain += x * x;
    const float down = x * kDown;
    scaled += down * down;
  }
  /// Two partial sums added, each part by itself (a lane group's collective adds them so).
  EK_HOST_DEVICE SquareSum operator+(const SquareSum& other) const {
    SquareSum sum;
    sum.plain = plain + other.plain;
    sum.scaled = scaled + other.scaled;
    return sum;
  }
  /// √Σx²: sqrtf(Σx²) bit for bit where Σx² is finite, 2^64·√Σ(x·2^-64)² where it overflowed.
  EK_HOST_DEVICE float root() const {
    if (plain <= 3.40282347e38f) return ::sqrtf(plain);
    return kUp * ::sqrtf(scaled);
  }
};

}  // namespace embedkit::detail
