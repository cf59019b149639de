#pragma once
// C++17, host and device. The one order in which every backend folds the gradient rows of a
// duplicated id: the id's positions in increasing order are cut into consecutive pieces of
// kSumPieceSize; each piece is summed left to right starting from its first row; the piece sums
// are then added left to right starting from the first. Floating-point addition is not
// associative, so fixing this order is what makes results bitwise equal for any thread count,
// chunking or device layout, while a hot id still splits into independent pieces.

#include <embedkit/detail/host_device.hpp>

#include <cstdint>

namespace embedkit::detail {

/// Positions summed sequentially before a piece sum is formed.
constexpr std::int64_t kSumPieceSize = 32;

/// Pieces an id that occurs `count` times is cut into.
EK_HOST_DEVICE inline std::int64_t sum_piece_count(std::int64_t count) {
  return (count + kSumPieceSize - 1) / kSumPieceSize;
}

}  // namespace embedkit::detail
