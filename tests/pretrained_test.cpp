// Pretrained vectors: .npy matrices, GloVe and word2vec text with a vocabulary, coverage, and
// errors that name the file and line and change nothing.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

using embedkit::EmbeddingTable;
using embedkit::Error;
using embedkit::Status;
using embedkit::TableConfig;

// A file of `content` in a directory of this process's own (appends only: GCC 12 warns falsely
// about concatenated temporaries).
std::string write_temp(const std::string& name, const std::string& content) {
  std::string path = "/tmp/embedkit-pretrained-";
  path.append(std::to_string(::getpid())).append("-").append(name);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  return path;
}

EmbeddingTable table(std::int64_t rows, std::int64_t dim, bool mask_zero = false) {
  TableConfig config;
  config.input_dim = rows;
  config.output_dim = dim;
  config.mask_zero = mask_zero;
  config.seed = 1;
  return EmbeddingTable(config);
}

void expect_error(const std::function<void()>& call, Status status, const std::string& text) {
  try {
    call();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), status) << e.what();
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

TEST(Pretrained, GloveTextWithReservedPaddingIndex) {
  EmbeddingTable t = table(5, 3, true);
  const auto before = t.get_weights().values;
  const std::string vocabulary = write_temp("vocab.txt", "the\ncat\nsat\nmat\n");
  const std::string vectors = write_temp("glove.txt", "cat 1 2 3\nunused 9 9 9\nthe 0.5 -0.5 1e-2\nmat 4 5 6\n");
  const auto coverage = embedkit::load_pretrained_text(t, vectors, vocabulary, 1);
  EXPECT_EQ(coverage.found, 3);
  EXPECT_EQ(coverage.vocabulary, 4);
  EXPECT_EQ(coverage.missing_examples, (std::vector<std::string>{"sat"}));
  EXPECT_EQ(t.row(1), (std::vector<float>{0.5f, -0.5f, 0.01f}));  // "the": line 1 -> index 1
  EXPECT_EQ(t.row(2), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(t.row(4), (std::vector<float>{4, 5, 6}));
  EXPECT_EQ(t.row(0), std::vector<float>(before.begin(), before.begin() + 3));       // padding kept
  EXPECT_EQ(t.row(3), std::vector<float>(before.begin() + 9, before.begin() + 12));  // "sat": no vector
}

TEST(Pretrained, Word2vecHeaderAndManyMissingTokens) {
  EmbeddingTable t = table(20, 2);
  std::string vocabulary_text;
  for (int k = 0; k < 15; ++k) vocabulary_text.append("w").append(std::to_string(k)).append("\n");
  const std::string vocabulary = write_temp("vocab2.txt", vocabulary_text);
  const std::string vectors = write_temp("w2v.txt", "2 2\nw3 1 1\nw7 2 2\n");
  const auto coverage = embedkit::load_pretrained_text(t, vectors, vocabulary);
  EXPECT_EQ(coverage.found, 2);
  EXPECT_EQ(coverage.missing_examples.size(), 10u);  // at most 10 named
  EXPECT_EQ(coverage.missing_examples.front(), "w0");
  EXPECT_EQ(t.row(7), (std::vector<float>{2, 2}));
}

TEST(Pretrained, ErrorsNameFileAndLineAndChangeNothing) {
  EmbeddingTable t = table(5, 3);
  const auto before = t.get_weights().values;
  const std::string vocabulary = write_temp("vocab3.txt", "a\nb\n");
  expect_error([&] { embedkit::load_pretrained_text(t, write_temp("short.txt", "a 1 2 3\nb 1 2\n"), vocabulary); },
               Status::io_error, "short.txt:2: expected 3 values, got 2");
  expect_error([&] { embedkit::load_pretrained_text(t, write_temp("nan.txt", "a 1 x 3\n"), vocabulary); },
               Status::io_error, "nan.txt:1: 'x' is not a finite number");
  expect_error([&] { embedkit::load_pretrained_text(t, write_temp("inf.txt", "a 1 inf 3\n"), vocabulary); },
               Status::io_error, "'inf' is not a finite number");
  expect_error([&] { embedkit::load_pretrained_text(t, write_temp("hdr.txt", "2 4\na 1 2 3\n"), vocabulary); },
               Status::io_error, "hdr.txt:1: the word2vec header says 4 values per vector");
  expect_error([&] { embedkit::load_pretrained_text(t, "/no/such/file.txt", vocabulary); }, Status::io_error,
               "/no/such/file.txt: cannot open");
  EXPECT_EQ(t.get_weights().values, before);
  // A vocabulary larger than the table, and the mask_zero hint.
  EmbeddingTable masked = table(3, 3, true);
  expect_error([&] { embedkit::load_pretrained_text(masked, write_temp("v.txt", "a 1 2 3\n"), write_temp("big.txt", "a\nb\nc\nd\n")); },
               Status::invalid_argument, "4 tokens after 0 reserved indices need input_dim 4, but the table has 3 (1 too "
                                         "many); mask_zero reserves index 0");
  expect_error([&] { embedkit::load_pretrained_text(masked, write_temp("v2.txt", "a 1 2 3\n"), write_temp("big2.txt", "a\nb\nc\n"), 1); },
               Status::invalid_argument, "(1 too many)");
}

TEST(Pretrained, NpyMatrixAndItsShape) {
  EmbeddingTable source = table(4, 3);
  std::string directory = "/tmp/embedkit-pretrained-npy-";
  directory.append(std::to_string(::getpid()));
  source.save(directory);
  std::string weights_file;
  for (const auto& file : embedkit::inspect_checkpoint(directory).files) {
    if (file.role == "weights") weights_file = std::string(directory).append("/").append(file.name);
  }
  EmbeddingTable target = table(4, 3);
  target.set_weights(std::vector<float>(12, 0.0f), std::vector<std::int64_t>{4, 3});
  embedkit::load_pretrained_npy(target, weights_file);
  EXPECT_EQ(target.get_weights().values, source.get_weights().values);
  EmbeddingTable wrong = table(5, 3);
  expect_error([&] { embedkit::load_pretrained_npy(wrong, weights_file); }, Status::shape_mismatch,
               "weight shape (5, 3) is not compatible with provided weight shape (4, 3)");
  expect_error([&] { embedkit::load_pretrained_npy(wrong, write_temp("bad.npy", "\x93NUMPY\x01\x00\x10\x00{'descr': '<f8'")); },
               Status::io_error, "bad.npy: ");
}

}  // namespace
