#pragma once
// C++17, host and device. Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
// 1, 2, 3", SC'11): a counter-based generator, so a random value is a pure function of
// (key, counter) and any thread, device or shard can compute any value without shared state.

#include <embedkit/detail/host_device.hpp>

#include <cstdint>

namespace embedkit::detail {

struct Philox4x32 {
  std::uint32_t v[4];
};

// The round multipliers and the key's Weyl increments (cpu/philox_avx2.hpp runs the same rounds).
constexpr std::uint32_t kPhiloxMul0 = 0xD2511F53u, kPhiloxMul1 = 0xCD9E8D57u;
constexpr std::uint32_t kPhiloxWeyl0 = 0x9E3779B9u, kPhiloxWeyl1 = 0xBB67AE85u;
constexpr int kPhiloxRounds = 10;

EK_HOST_DEVICE inline void philox_mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi, std::uint32_t& lo) {
  const std::uint64_t product = static_cast<std::uint64_t>(a) * b;
  hi = static_cast<std::uint32_t>(product >> 32);
  lo = static_cast<std::uint32_t>(product);
}

/// Ten Philox rounds of `counter` under the 64-bit `key`.
EK_HOST_DEVICE inline Philox4x32 philox4x32_10(Philox4x32 counter, std::uint64_t key) {
  std::uint32_t k0 = static_cast<std::uint32_t>(key), k1 = static_cast<std::uint32_t>(key >> 32);
  for (int round = 0; round < kPhiloxRounds; ++round) {
    std::uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(kPhiloxMul0, counter.v[0], hi0, lo0);
    philox_mulhilo(kPhiloxMul1, counter.v[2], hi1, lo1);
    counter = Philox4x32{{hi1 ^ counter.v[1] ^ k0, lo1, hi0 ^ counter.v[3] ^ k1, lo0}};
    k0 += kPhiloxWeyl0;
    k1 += kPhiloxWeyl1;
  }
  return counter;
}

}  // namespace embedkit::detail
