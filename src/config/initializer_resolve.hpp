#pragma once
// Reduces a Keras initializer to the base distribution a (rows, dim) table draws from.

#include <embedkit/detail/init_sampler.hpp>
#include <embedkit/initializer.hpp>

#include <cstdint>

namespace embedkit::detail {

/// The base distribution and parameters `init` gives a table of (input_dim, output_dim).
InitSampler resolve_sampler(const Initializer& init, std::int64_t input_dim, std::int64_t output_dim);

/// A fresh seed for a table created without one: below 2^53, so every JSON reader (JavaScript's
/// included) keeps it exact.
std::uint64_t draw_seed();

}  // namespace embedkit::detail
