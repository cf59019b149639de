#pragma once
/// @file pretrained.hpp
/// @brief Pretrained vectors into a table: a .npy matrix, or GloVe / word2vec text with a vocabulary.

#include <embedkit/export.h>
#include <embedkit/table.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace embedkit {

/// @brief How much of a vocabulary the vectors covered.
struct PretrainedCoverage {
  std::int64_t found = 0;                     ///< vocabulary tokens that had a vector
  std::int64_t vocabulary = 0;                ///< tokens in the vocabulary file
  std::vector<std::string> missing_examples;  ///< up to 10 tokens without a vector, in vocabulary order
};

/// @brief Replaces the table's weights by the float32 matrix in a .npy file.
/// @throws Error: io_error (unreadable or malformed file, named), shape_mismatch (Keras's words;
///         checked on the file's header, before its matrix is read).
EMBEDKIT_API void load_pretrained_npy(EmbeddingTable& table, const std::string& npy_path);

/// @brief Sets the rows of the tokens of `vocabulary_path` (one token per line; line k is index
/// reserved + k, so `reserved` = 1 keeps index 0 for padding under mask_zero) from GloVe or word2vec
/// text (`token v1 ... vD` per line; word2vec's "count dim" header line accepted). Rows of tokens
/// without a vector keep their values; the coverage is returned and logged. The files are read
/// and checked whole before any row changes.
/// @throws Error: io_error naming file and line (`glove.txt:1234: expected 100 values, got 99`, a
///         value that is not a finite number or overflows float32; one that underflows reads as its
///         subnormal or zero), invalid_argument (a vocabulary larger than the table, by how
///         much), out_of_memory (a file larger than the host memory available, named, before it
///         is read).
EMBEDKIT_API PretrainedCoverage load_pretrained_text(EmbeddingTable& table, const std::string& vectors_path,
                                                     const std::string& vocabulary_path, std::int64_t reserved = 0);

}  // namespace embedkit
