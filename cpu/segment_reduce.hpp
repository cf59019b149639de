#pragma once
// Folds each id's gradient rows into one, in the canonical summation order
// (include/embedkit/detail/summation_order.hpp), in parallel over ids and over the pieces of hot ids,
// in one parallel region.

#include <embedkit/detail/summation_order.hpp>

#include "parallel.hpp"
#include "prefetch.hpp"
#include "segments.hpp"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace embedkit::cpu {

/// The canonical sum, for each segment u, over its sorted slots k (slot k holds position
/// segments.positions[k], or that position's bag for group_bags' segments) of the gradient row of slot k, which
/// `accumulate(k, acc, first)` writes (first: acc = row) or adds (acc += row) into `acc`. `prefetch(k)` is called
/// kPrefetchDistance slots ahead of `accumulate(k, ...)`, so the gradient rows, read in id order and so at random,
/// arrive before they are needed. Each finished row goes to `finish(u, row)`, once per segment,
/// from any thread: with `rows`, row is rows + u·dim; without (NULL), a scratch row of the calling
/// thread, reused once finish returns (the fused step applies it there). Scratch follows the
/// batch (one dim-row per piece of the ids that span several pieces) and is all allocated before
/// the first finish, so a failed allocation leaves nothing half done.
template <class Accumulate, class Prefetch, class Finish>
void reduce_segments(const Segments& segments, std::int64_t dim, const Accumulate& accumulate, const Prefetch& prefetch,
                     float* rows, const Finish& finish) {
  constexpr std::int64_t kPiece = detail::kSumPieceSize;
  const std::int64_t unique = segments.size();
  const auto total = static_cast<std::int64_t>(segments.positions.size());
  const auto sum_piece = [&](std::int64_t begin, std::int64_t end, float* acc) {
    for (std::int64_t k = begin; k < end; ++k) {
      if (k + kPrefetchDistance < total) prefetch(k + kPrefetchDistance);
      accumulate(k, acc, k == begin);
    }
  };
  // Ids that fit one piece sum straight into their row; the others are listed for the piece pass.
  std::vector<std::int64_t> hot;
  for (std::int64_t u = 0; u < unique; ++u) {
    if (segments.run_begin[u + 1] - segments.run_begin[u] > kPiece) hot.push_back(u);
  }
  std::vector<std::int64_t> first_piece(hot.size() + 1, 0);
  for (std::size_t h = 0; h < hot.size(); ++h) {
    const std::int64_t count = segments.run_begin[hot[h] + 1] - segments.run_begin[hot[h]];
    first_piece[h + 1] = first_piece[h] + detail::sum_piece_count(count);
  }
  detail::RecycledVector<float> piece_sums(static_cast<std::size_t>(first_piece.back() * dim));
  std::vector<float> scratch(rows != nullptr ? 0 : static_cast<std::size_t>(omp_get_max_threads() * dim));
  const auto row_of = [&](std::int64_t u) {
    return rows != nullptr ? rows + u * dim : scratch.data() + omp_get_thread_num() * dim;
  };
  // One parallel region: the short ids need no barrier before the hot ids' pieces, so a thread
  // done with its share moves on to pieces (nowait); only the pieces must all be summed before
  // any hot id adds them up.
  const bool has_hot = !hot.empty();
#pragma omp parallel if (total * dim >= kParallelMinFloats)
  {
#pragma omp for schedule(dynamic, 256) nowait
    for (std::int64_t u = 0; u < unique; ++u) {
      const std::int64_t begin = segments.run_begin[u], end = segments.run_begin[u + 1];
      if (end - begin > kPiece) continue;
      float* row = row_of(u);
      sum_piece(begin, end, row);
      finish(u, static_cast<const float*>(row));
    }
    if (has_hot) {
#pragma omp for schedule(dynamic, 16)
      for (std::int64_t p = 0; p < first_piece.back(); ++p) {
        const auto h = static_cast<std::size_t>(std::upper_bound(first_piece.begin(), first_piece.end(), p) -
                                                first_piece.begin() - 1);
        const std::int64_t run_begin = segments.run_begin[hot[h]], run_end = segments.run_begin[hot[h] + 1];
        const std::int64_t begin = run_begin + (p - first_piece[h]) * kPiece;
        sum_piece(begin, std::min(begin + kPiece, run_end), piece_sums.data() + p * dim);
      }
#pragma omp for schedule(dynamic, 16) nowait
      for (std::size_t h = 0; h < hot.size(); ++h) {
        float* row = row_of(hot[h]);
        const float* piece = piece_sums.data() + first_piece[h] * dim;
        std::copy(piece, piece + dim, row);
        for (std::int64_t p = first_piece[h] + 1; p < first_piece[h + 1]; ++p) {
          piece = piece_sums.data() + p * dim;
          for (std::int64_t c = 0; c < dim; ++c) row[c] += piece[c];
        }
        finish(hot[h], static_cast<const float*>(row));
      }
    }
  }
}

/// reduce_segments into rows[u, :] for every segment u.
template <class Accumulate, class Prefetch>
void reduce_segments(const Segments& segments, std::int64_t dim, const Accumulate& accumulate, const Prefetch& prefetch,
                     float* rows) {
  reduce_segments(segments, dim, accumulate, prefetch, rows, [](std::int64_t, const float*) {});
}

}  // namespace embedkit::cpu
