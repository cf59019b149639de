#pragma once
// How the row gather writes its output: through the cache (plain stores), or streamed past it
// with non-temporal stores, which skip reading each output line from memory before writing it.
// Streaming measured faster only for long rows into outputs far beyond the cache (row_stores.cpp);
// an output that fits the last-level cache keeps plain stores, so it stays there for its reader.

#include <cstdint>

namespace embedkit::cpu {

/// The two ways of writing output rows.
enum class RowStores { cached, streaming };

/// The shortest row worth streaming, in bytes (192 floats).
constexpr std::int64_t kStreamingMinRowBytes = 768;

/// The last-level cache as the system reports it (sysconf), or 32 MiB where it reports none.
std::int64_t last_level_cache_bytes();

/// Whether rows of `dim` floats written from `out` can be streamed: this build has streaming
/// stores (x86 SSE2), `out` starts on a cache line and a row is a whole number of lines.
bool can_stream_rows(const float* out, std::int64_t dim);

/// The stores for `count` rows of `dim` floats written from `out`: streaming where
/// can_stream_rows, rows are at least kStreamingMinRowBytes and the output is larger than
/// `cache_bytes`; cached otherwise.
RowStores choose_row_stores(const float* out, std::int64_t dim, std::int64_t count, std::int64_t cache_bytes);

}  // namespace embedkit::cpu
