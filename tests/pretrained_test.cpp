// Pretrained vectors: .npy matrices, GloVe and word2vec text with a vocabulary, coverage, and
// errors that name the file and line and change nothing.
#include <embedkit/embedkit.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
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
  expect_error(
      [&] {
        embedkit::load_pretrained_text(masked, write_temp("v.txt", "a 1 2 3\n"), write_temp("big.txt", "a\nb\nc\nd\n"));
      },
      Status::invalid_argument,
      "4 tokens after 0 reserved indices need input_dim 4, but the table has 3 (1 too "
      "many); mask_zero reserves index 0");
  expect_error(
      [&] {
        embedkit::load_pretrained_text(masked, write_temp("v2.txt", "a 1 2 3\n"), write_temp("big2.txt", "a\nb\nc\n"),
                                       1);
      },
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
  expect_error(
      [&] { embedkit::load_pretrained_npy(wrong, write_temp("bad.npy", "\x93NUMPY\x01\x00\x10\x00{'descr': '<f8'")); },
      Status::io_error, "bad.npy: ");
}

// Files that are truncated, have a wrong header, lie about their shape or are not what their name
// says: each refused with the file named, and the table unchanged.
TEST(Pretrained, HostileNpyFilesChangeNothing) {
  EmbeddingTable t = table(4, 3);
  const auto before = t.get_weights().values;
  std::string directory = "/tmp/embedkit-pretrained-hostile-";
  directory.append(std::to_string(::getpid()));
  table(4, 3).save(directory);
  std::string good;
  for (const auto& file : embedkit::inspect_checkpoint(directory).files) {
    if (file.role == "weights") {
      std::ifstream in(std::string(directory).append("/").append(file.name), std::ios::binary);
      good.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  ASSERT_FALSE(good.empty());
  const auto npy = [](const std::string& header, const std::string& payload) {
    std::string dict = header;
    while ((10 + dict.size() + 1) % 64 != 0) dict.push_back(' ');
    dict.push_back('\n');
    std::string bytes("\x93NUMPY\x01\x00", 8);
    bytes.push_back(static_cast<char>(dict.size() & 0xff));
    bytes.push_back(static_cast<char>(dict.size() >> 8));
    return bytes.append(dict).append(payload);
  };
  const std::string payload = good.substr(good.size() - 48);
  const struct {
    std::string name, bytes;
    Status status;
    std::string text;
  } cases[] = {
      {"cut.npy", good.substr(0, good.size() - 4), Status::io_error,
       "cut.npy: shape (4, 3) needs 48 bytes of data, the file holds 44"},
      {"cut_header.npy", good.substr(0, 30), Status::io_error, "cut_header.npy: the .npy header is truncated"},
      {"empty.npy", "", Status::io_error, "empty.npy: not a .npy file (wrong magic bytes)"},
      {"text.npy", "the 1 2 3\n", Status::io_error, "text.npy: not a .npy file (wrong magic bytes)"},
      {"f8.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4, 3), }", payload), Status::io_error,
       "f8.npy: dtype '<f8' is not float32 ('<f4')"},
      {"fortran.npy", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (4, 3), }", payload), Status::io_error,
       "fortran.npy: Fortran-ordered arrays are not supported"},
      {"lies.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4), }", payload), Status::io_error,
       "lies.npy: shape (4, 4) needs 64 bytes of data, the file holds 48"},
      {"huge.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 3), }", payload),
       Status::io_error,
       "huge.npy: the array shape (4611686018427387904, 3) has more elements than memory can address"},
      {"transposed.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", payload),
       Status::shape_mismatch, "weight shape (4, 3) is not compatible with provided weight shape (3, 4)"},
      {"flat.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (12,), }", payload), Status::shape_mismatch,
       "provided weight shape (12,)"},
  };
  for (const auto& c : cases) {
    expect_error([&] { embedkit::load_pretrained_npy(t, write_temp(c.name, c.bytes)); }, c.status, c.text);
  }
  expect_error([&] { embedkit::load_pretrained_npy(t, directory); }, Status::io_error, "not a regular file");
  EXPECT_EQ(t.get_weights().values, before);
}

TEST(Pretrained, HostileTextFilesChangeNothing) {
  EmbeddingTable t = table(6, 3);
  const auto before = t.get_weights().values;
  const std::string vocabulary = write_temp("hostile_vocab.txt", "a\nb\nc\n");
  const struct {
    std::string name, text, error;
  } cases[] = {
      {"binary.txt", std::string("\x93NUMPY\x01\x00v\x00{'descr'", 18), "binary.txt:1: expected 3 values, got 0"},
      {"token_only.txt", "a 1 2 3\nb\n", "token_only.txt:2: expected 3 values, got 0"},
      {"long.txt", "a 1 2 3 4\n", "long.txt:1: expected 3 values, got 4"},
      {"range.txt", "a 1 1e400 3\n", "range.txt:1: '1e400' is outside the range of float32"},
      {"float_range.txt", "a 1 3.5e38 3\n", "float_range.txt:1: '3.5e38' is outside the range of float32"},
      {"nan.txt", "a 1 nan 3\n", "nan.txt:1: 'nan' is not a finite number"},
      {"inf.txt", "a -inf 2 3\n", "inf.txt:1: '-inf' is not a finite number"},
      {"suffix.txt", "a 1 2 3x\n", "suffix.txt:1: '3x' is not a finite number"},
      {"nul.txt", std::string("a 1 2\0 3\n", 10), "nul.txt:1: '2"},
      {"header.txt", "3 4\na 1 2 3\n",
       "header.txt:1: the word2vec header says 4 values per vector, the table has output_dim 3"},
      {"late_error.txt", "a 1 2 3\nb 4 5 6\nc 7 8\n", "late_error.txt:3: expected 3 values, got 2"},
  };
  for (const auto& c : cases) {
    expect_error([&] { embedkit::load_pretrained_text(t, write_temp(c.name, c.text), vocabulary); }, Status::io_error,
                 c.error);
  }
  expect_error([&] { embedkit::load_pretrained_text(t, "/tmp", vocabulary); }, Status::io_error,
               "/tmp: not a regular file");
  expect_error([&] { embedkit::load_pretrained_text(t, write_temp("ok.txt", "a 1 2 3\n"), "/tmp"); }, Status::io_error,
               "/tmp: not a regular file");
  expect_error([&] { embedkit::load_pretrained_text(t, write_temp("ok.txt", "a 1 2 3\n"), vocabulary, -1); },
               Status::invalid_argument, "reserved leading indices must be in [0, 6), got -1");
  expect_error([&] { embedkit::load_pretrained_text(t, write_temp("ok.txt", "a 1 2 3\n"), vocabulary, 4); },
               Status::invalid_argument, "3 tokens after 4 reserved indices need input_dim 7, but the table has 6");
  EXPECT_EQ(t.get_weights().values, before);

  // What is odd but not wrong loads: an empty file, a word2vec header whose count lies, CRLF line
  // ends, blank lines, a token twice (the last line wins), vectors of tokens not in the vocabulary,
  // and values that underflow float32 (strtof's ERANGE), which round to a subnormal or zero.
  const auto coverage = embedkit::load_pretrained_text(
      t, write_temp("odd.txt", "100 3\r\n\r\nb 1 2 3\r\nzzz 9 9 9\n\nb 4 5 6\nc 1e-40 -1e-400 1e-38\n"), vocabulary);
  EXPECT_EQ(coverage.found, 2);
  EXPECT_EQ(t.row(1), (std::vector<float>{4, 5, 6}));
  EXPECT_EQ(t.row(2), (std::vector<float>{1e-40f, -0.0f, 1e-38f}));
  EXPECT_EQ(embedkit::load_pretrained_text(t, write_temp("empty.txt", ""), vocabulary).found, 0);
}

}  // namespace
