#include "pooled.hpp"

#include <embedkit/detail/pooling_math.hpp>
#include <embedkit/detail/stored_row.hpp>
#include <embedkit/status.hpp>

#include "bag_ranges.hpp"
#include "index_scan.hpp"
#include "isa.hpp"
#include "parallel.hpp"
#include "prefetch.hpp"

#include <omp.h>

#include <algorithm>
#include <vector>

namespace embedkit::cpu {
namespace {

// Columns a bag accumulates at a time, in eight vectors of eight floats that the compiler keeps in
// registers (AVX2: eight of its sixteen) instead of loading and storing the output row for every
// entry. Named variables, not an array: GCC kept a zeroed array in memory as well, clearing it with
// a microcoded `rep stos` for every bag (a standalone copy of the loop, bags of one entry: 80 ms
// with the array against 34 without). With the ranges below, against the old kernel in one
// process, alternating: bags of one 98.4 -> 46.5 ms, of 32 27.3 -> 23.1 (2 GiB table, dim 64).
constexpr std::int64_t kTile = 64;
using Lanes = float __attribute__((vector_size(32)));

// A pooled lookup's inputs, as pooled_lookup takes them: rows of T (float, float16, bfloat16).
template <class T, class Index>
struct Batch {
  const T* weights;
  std::int64_t input_dim, dim;
  detail::PooledBatch<Index> bags;
  std::int64_t entries;  // bags.entries(), for the prefetch ahead
  float* out;
  std::int64_t out_stride;  // floats from one bag's output row to the next (dim, or a collection's width)
};

// The row of entry j, or NULL for padding (skipped) and ids outside the table (zeros). With
// `prefetch` (a bag's first tile), asks for the row kPrefetchDistance entries ahead.
template <class T, class Index>
[[gnu::always_inline]] inline const T* entry_row(const Batch<T, Index>& batch, std::int64_t j, bool prefetch) {
  if (prefetch && j + kPrefetchDistance < batch.entries) {
    const std::int64_t ahead = batch.bags.id(j + kPrefetchDistance);
    if (id_in_range(ahead, batch.input_dim)) {
      const std::size_t row_bytes = static_cast<std::size_t>(batch.dim) * sizeof(T);
      prefetch_row<CacheLevel::l2>(batch.weights + ahead * batch.dim, row_bytes);
    }
  }
  const std::int64_t id = batch.bags.id(j);
  if (!batch.bags.counted(j) || !id_in_range(id, batch.input_dim)) return nullptr;
  return batch.weights + id * batch.dim;
}

// Eight floats from `from`, unaligned; an out parameter, as returning a 32-byte vector would be an
// ABI question where AVX is off.
[[gnu::always_inline]] inline void load_lanes(Lanes& lanes, const float* from) {
  __builtin_memcpy(&lanes, from, sizeof lanes);
}
// Eight stored values widened to float (exact).
template <class T>
[[gnu::always_inline]] inline void load_lanes(Lanes& lanes, const T* from) {
  float wide[8];
  for (int k = 0; k < 8; ++k) wide[k] = detail::widen(from[k]);
  __builtin_memcpy(&lanes, wide, sizeof lanes);
}

// Columns [tile, tile + kTile) of the Σ wᵢ·rowᵢ of entries [begin, end), left to right from 0.0f,
// divided by `denominator`, into pooled.
template <class T, class Index>
[[gnu::always_inline]] inline void sum_full_tile(const Batch<T, Index>& batch, std::int64_t begin, std::int64_t end,
                                                 std::int64_t tile, float denominator, float* pooled) {
  Lanes a0{}, a1{}, a2{}, a3{}, a4{}, a5{}, a6{}, a7{};
  for (std::int64_t j = begin; j < end; ++j) {
    const T* row = entry_row(batch, j, tile == 0);
    if (row == nullptr) continue;
    row += tile;
    Lanes r0, r1, r2, r3, r4, r5, r6, r7;
    load_lanes(r0, row), load_lanes(r1, row + 8), load_lanes(r2, row + 16), load_lanes(r3, row + 24);
    load_lanes(r4, row + 32), load_lanes(r5, row + 40), load_lanes(r6, row + 48), load_lanes(r7, row + 56);
    if (batch.bags.sample_weights != nullptr) {
      const float w = batch.bags.sample_weights[j];
      a0 += w * r0, a1 += w * r1, a2 += w * r2, a3 += w * r3, a4 += w * r4, a5 += w * r5, a6 += w * r6, a7 += w * r7;
    } else {
      a0 += r0, a1 += r1, a2 += r2, a3 += r3, a4 += r4, a5 += r5, a6 += r6, a7 += r7;
    }
  }
  float* to = pooled + tile;
  __builtin_memcpy(to, &a0, sizeof a0), __builtin_memcpy(to + 8, &a1, sizeof a1);
  __builtin_memcpy(to + 16, &a2, sizeof a2), __builtin_memcpy(to + 24, &a3, sizeof a3);
  __builtin_memcpy(to + 32, &a4, sizeof a4), __builtin_memcpy(to + 40, &a5, sizeof a5);
  __builtin_memcpy(to + 48, &a6, sizeof a6), __builtin_memcpy(to + 56, &a7, sizeof a7);
  if (denominator != 1.0f) {
    for (std::int64_t c = 0; c < kTile; ++c) to[c] = detail::pool_finish(to[c], denominator);
  }
}

// The last `width` (< kTile) columns from `tile` on, as sum_full_tile, accumulated in the output
// row itself (in L1 after the first entry).
template <class T, class Index>
[[gnu::always_inline]] inline void sum_partial_tile(const Batch<T, Index>& batch, std::int64_t begin, std::int64_t end,
                                                    std::int64_t tile, std::int64_t width, float denominator,
                                                    float* pooled) {
  float* acc = pooled + tile;
  for (std::int64_t c = 0; c < width; ++c) acc[c] = 0.0f;
  for (std::int64_t j = begin; j < end; ++j) {
    const T* row = entry_row(batch, j, tile == 0);
    if (row == nullptr) continue;
    row += tile;
    if (batch.bags.sample_weights != nullptr) {
      const float w = batch.bags.sample_weights[j];
      for (std::int64_t c = 0; c < width; ++c) acc[c] += w * detail::widen(row[c]);
    } else {
      for (std::int64_t c = 0; c < width; ++c) acc[c] += detail::widen(row[c]);
    }
  }
  if (denominator != 1.0f) {
    for (std::int64_t c = 0; c < width; ++c) acc[c] = detail::pool_finish(acc[c], denominator);
  }
}

// Sum, mean and sqrtn of bags [first, last): Σ wᵢ·rowᵢ left to right in position order from 0.0f,
// then divided by the mode's denominator: the same operations in the same order as the CUDA kernel.
template <class T, class Index>
[[gnu::always_inline]] inline void weighted_bags(const Batch<T, Index>& shared, std::int64_t first, std::int64_t last) {
  const Batch<T, Index> batch = shared;  // a local copy: the compiler keeps the fields in registers
  for (std::int64_t bag = first; bag < last; ++bag) {
    const std::int64_t begin = batch.bags.offsets[bag], end = batch.bags.offsets[bag + 1];
    const float denominator = batch.bags.denominator(bag);
    float* pooled = batch.out + bag * batch.out_stride;
    for (std::int64_t tile = 0; tile < batch.dim; tile += kTile) {
      const std::int64_t width = std::min(kTile, batch.dim - tile);
      if (width == kTile) {
        sum_full_tile(batch, begin, end, tile, denominator, pooled);
      } else {
        sum_partial_tile(batch, begin, end, tile, width, denominator, pooled);
      }
    }
  }
}

// weighted_bags compiled for SSE2 and for AVX2, called once per range of bags. With the row
// prefetches hiding most of the memory latency, the loop's own work shows. The 64-column
// accumulator: AVX2's 16 registers of 8 floats hold it with room for the row; SSE2's 16 of 4
// would all go to it, so the loop loads and stores it for every entry; pooled sums of bags of 32
// at dim 64 over a 2 GiB table, the two alternating call by call in one process (30 calls each,
// 2 threads, AMD EPYC), took 28.7 ms best and 32.7 median with AVX2 against 36.3 and 44.6 with
// SSE2 (AVX-512 was level with AVX2 in a standalone copy of the loop); measured while the
// accumulator was still an array.
template <class T, class Index>
void weighted_bags_baseline(const Batch<T, Index>& batch, std::int64_t first, std::int64_t last) {
  weighted_bags(batch, first, last);
}

#if EMBEDKIT_HAVE_AVX2_CLONES
template <class T, class Index>
EMBEDKIT_TARGET_AVX2 void weighted_bags_avx2(const Batch<T, Index>& batch, std::int64_t first, std::int64_t last) {
  weighted_bags(batch, first, last);
}
#endif

template <class T, class Index>
using WeightedBags = void (*)(const Batch<T, Index>&, std::int64_t, std::int64_t);

// The clone compiled for `isa`.
template <class T, class Index>
WeightedBags<T, Index> weighted_bags_for(Isa isa) {
  if (!supports(isa)) throw Error(Status::internal, "pooled lookup asked for an instruction set this CPU lacks");
#if EMBEDKIT_HAVE_AVX2_CLONES
  if (isa == Isa::avx2) return weighted_bags_avx2<T, Index>;
#endif
  return weighted_bags_baseline<T, Index>;
}

// Max (a mode that picks entries) of one bag: element-wise, each column keeping the entry
// detail::replaces_pick chooses, the first counted entry initialising; ids outside the table are
// rows of zeros; an empty bag is zeros.
template <class T, class Index>
void pick_bag(const T* weights, std::int64_t input_dim, std::int64_t dim, const detail::PooledBatch<Index>& batch,
              std::int64_t bag, float* pooled) {
  std::fill(pooled, pooled + dim, 0.0f);
  bool seen = false;
  for (std::int64_t j = batch.offsets[bag]; j < batch.offsets[bag + 1]; ++j) {
    if (!batch.counted(j)) continue;
    const std::int64_t id = batch.id(j);
    const T* row = id_in_range(id, input_dim) ? weights + id * dim : nullptr;
    for (std::int64_t c = 0; c < dim; ++c) {
      const float v = row != nullptr ? detail::widen(row[c]) : 0.0f;
      pooled[c] = detail::replaces_pick(batch.mode, v, pooled[c], !seen) ? v : pooled[c];
    }
    seen = true;
  }
}

}  // namespace

template <class T, class Index>
void pooled_lookup(const T* weights, std::int64_t input_dim, std::int64_t dim, const detail::PooledBatch<Index>& bags,
                   float* out, Isa isa) {
  const std::int64_t entries = bags.entries();
  if (detail::picks_entry(bags.mode)) {  // bags differ in size: small dynamic chunks of them
#pragma omp parallel for schedule(dynamic, 64) if (entries * dim >= kParallelMinFloats)
    for (std::int64_t bag = 0; bag < bags.bags; ++bag) pick_bag(weights, input_dim, dim, bags, bag, out + bag * dim);
    return;
  }
  const Batch<T, Index> batch{weights, input_dim, dim, bags, entries, out, dim};
  const WeightedBags<T, Index> weighted_bags_clone = weighted_bags_for<T, Index>(isa);
  // Contiguous ranges of about equal work, kRangesPerThread times the team in all, handed out
  // dynamically (a thread the host preempts holds up one range, not half the batch). Chunks of 64
  // bags instead left the prefetch behind at every chunk (a copy of this kernel, bags of one entry,
  // in one process: 61.8 ms best against 43.0 for one static range per thread). Each bag's
  // arithmetic is sequential, so the result does not depend on the schedule.
  constexpr std::int64_t kRangesPerThread = 8;
  const std::int64_t ranges = std::min<std::int64_t>(bags.bags, kRangesPerThread * omp_get_max_threads());
#pragma omp parallel for schedule(dynamic, 1) if (entries * dim >= kParallelMinFloats)
  for (std::int64_t range = 0; range < ranges; ++range) {
    weighted_bags_clone(batch, bag_range_begin(bags.offsets, bags.bags, range, ranges),
                        bag_range_begin(bags.offsets, bags.bags, range + 1, ranges));
  }
}

template <class Index>
void pooled_lookup_many(std::span<const detail::PooledJob<Index>> jobs, Isa isa) {
  if (jobs.empty()) return;
  const std::int64_t samples = jobs[0].batch.bags;
  for (const detail::PooledJob<Index>& job : jobs) {
    if (job.batch.bags != samples) throw Error(Status::internal, "pooled_lookup_many: jobs of different batch sizes");
  }
  // Work by bytes: sample s costs, over every job, a row read per entry and a row written. Ranges
  // of samples of about equal bytes over all jobs, every job cut at the same samples: one 10M-row
  // table's feature and 25 small ones share one team.
  std::vector<std::int64_t> work(static_cast<std::size_t>(samples) + 1, 0);
  for (std::int64_t s = 0; s < samples; ++s) {
    std::int64_t bytes = 0;
    for (const detail::PooledJob<Index>& job : jobs) {
      bytes += (job.batch.offsets[s + 1] - job.batch.offsets[s] + 1) * job.rows.dim;
    }
    work[s + 1] = work[s] + bytes;
  }
  const std::int64_t total = work[static_cast<std::size_t>(samples)] * static_cast<std::int64_t>(sizeof(float));
  constexpr std::int64_t kRangesPerThread = 8;  // as pooled_lookup
  const std::int64_t ranges =
      std::clamp<std::int64_t>(kRangesPerThread * omp_get_max_threads(), 1, std::max<std::int64_t>(samples, 1));
  // The first sample of range r: where the work before it reaches r/ranges of the total.
  const auto range_begin = [&](std::int64_t r) {
    if (r == ranges) return samples;
    const std::int64_t share = work.back() / ranges * r + work.back() % ranges * r / ranges;
    return static_cast<std::int64_t>(std::lower_bound(work.begin(), work.end() - 1, share) - work.begin());
  };
  std::vector<std::int64_t> bounds(static_cast<std::size_t>(ranges) + 1);
  for (std::int64_t r = 0; r <= ranges; ++r) bounds[r] = range_begin(r);
  const WeightedBags<float, Index> weighted_bags_clone = weighted_bags_for<float, Index>(isa);
  // A job whose rows go into a wider matrix (out_stride > dim) pools into contiguous scratch first,
  // copied into the matrix sample by sample afterwards: writing the wide rows in order costs a third
  // of writing each job's columns down the whole matrix (26 features of dim 16, 16384 samples, one
  // thread: 26 ms against 13.5 plus the copy; bench/collection_bench.cpp). The scratch stays with
  // the calling thread for its next call.
  thread_local std::vector<float> scratch;
  std::vector<std::int64_t> scratch_at(jobs.size(), -1);
  std::int64_t scratch_floats = 0;
  for (std::size_t k = 0; k < jobs.size(); ++k) {
    if (jobs[k].out_stride == jobs[k].rows.dim) continue;
    scratch_at[k] = scratch_floats;
    scratch_floats += samples * jobs[k].rows.dim;
  }
  if (static_cast<std::int64_t>(scratch.size()) < scratch_floats)
    scratch.resize(static_cast<std::size_t>(scratch_floats));
  float* const staged = scratch.data();  // the calling thread's: inside the region `scratch` is each thread's own
  // Items job-major: a thread pools a run of bags of one table before the next, so its rows stay
  // in the TLB and the prefetch runs ahead; interleaving the tables sample by sample instead (every
  // table's rows for a few samples) took three times as long at 26 tables.
  const auto items = static_cast<std::int64_t>(jobs.size()) * ranges;
#pragma omp parallel if (total >= kParallelMinFloats * static_cast <std::int64_t>(sizeof(float)))
  {
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t item = 0; item < items; ++item) {
      const std::size_t k = static_cast<std::size_t>(item / ranges);
      detail::PooledJob<Index> job = jobs[k];
      if (scratch_at[k] >= 0) {
        job.out = staged + scratch_at[k];
        job.out_stride = job.rows.dim;
      }
      const std::int64_t first = bounds[item % ranges], last = bounds[item % ranges + 1];
      if (detail::picks_entry(job.batch.mode)) {
        for (std::int64_t bag = first; bag < last; ++bag) {
          pick_bag(job.rows.data, job.rows.count, job.rows.dim, job.batch, bag, job.out + bag * job.out_stride);
        }
      } else {
        const Batch<float, Index> batch{job.rows.data,       job.rows.count, job.rows.dim,  job.batch,
                                        job.batch.entries(), job.out,        job.out_stride};
        weighted_bags_clone(batch, first, last);
      }
    }
    if (scratch_floats > 0) {
#pragma omp for schedule(static)
      for (std::int64_t sample = 0; sample < samples; ++sample) {
        for (std::size_t k = 0; k < jobs.size(); ++k) {
          if (scratch_at[k] < 0) continue;
          const std::int64_t dim = jobs[k].rows.dim;
          std::copy_n(staged + scratch_at[k] + sample * dim, dim, jobs[k].out + sample * jobs[k].out_stride);
        }
      }
    }
  }
}

#define EMBEDKIT_POOLED_LOOKUP(T)                                                                                     \
  template void pooled_lookup(const T*, std::int64_t, std::int64_t, const detail::PooledBatch<std::int32_t>&, float*, \
                              Isa);                                                                                   \
  template void pooled_lookup(const T*, std::int64_t, std::int64_t, const detail::PooledBatch<std::int64_t>&, float*, \
                              Isa);
EMBEDKIT_POOLED_LOOKUP(float)
EMBEDKIT_POOLED_LOOKUP(detail::float16)
EMBEDKIT_POOLED_LOOKUP(detail::bfloat16)
#undef EMBEDKIT_POOLED_LOOKUP

template void pooled_lookup_many(std::span<const detail::PooledJob<std::int32_t>>, Isa);
template void pooled_lookup_many(std::span<const detail::PooledJob<std::int64_t>>, Isa);

}  // namespace embedkit::cpu
