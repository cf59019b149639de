// The C ABI from several threads: ek_last_error() belongs to the calling thread, and one table
// driven through the ABI by reader threads and a writer thread gives whole rows from one step.
#include <embedkit/c_api.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <latch>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

// A borrowed, compact host tensor over `data`.
template <class T>
DLTensor tensor(T* data, std::vector<std::int64_t>& shape) {
  DLTensor t{};
  t.data = data;
  t.device = {kDLCPU, 0};
  t.ndim = static_cast<std::int32_t>(shape.size());
  t.dtype = {static_cast<std::uint8_t>(std::is_floating_point_v<T> ? kDLFloat : kDLInt),
             static_cast<std::uint8_t>(sizeof(T) * 8), 1};
  t.shape = shape.data();
  return t;
}

ek_table* create(const char* json) {
  ek_table* table = nullptr;
  EXPECT_EQ(ek_table_create(json, &table), EK_OK) << ek_last_error();
  return table;
}

TEST(CApiThreads, LastErrorIsPerThread) {
  // Each thread fails on its own id, over and over, and must always read its own message back;
  // a process-wide last error would hand it another thread's message.
  constexpr int kThreads = 4, kCalls = 300;
  ek_table* table = create(R"({"input_dim": 10, "output_dim": 4})");
  std::atomic<int> wrong{0};
  std::string first_wrong;
  std::mutex first_wrong_mutex;
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::int64_t bad_id = 1000 + t;
      std::vector<std::int64_t> ids_shape = {1}, out_shape = {1, 4};
      float out[4];
      DLTensor ids = tensor(&bad_id, ids_shape), output = tensor(out, out_shape);
      const std::string expected = "indices[0] = " + std::to_string(bad_id) + " is not in [0, 10)";
      start.arrive_and_wait();
      for (int call = 0; call < kCalls; ++call) {
        const ek_status status = ek_lookup(table, &ids, &output);
        const std::string message = ek_last_error();
        if (status != EK_OUT_OF_RANGE || message != expected) {
          std::lock_guard lock(first_wrong_mutex);
          if (wrong++ == 0) first_wrong = "thread " + std::to_string(t) + " read '" + message + "'";
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0) << first_wrong;
  ek_table_destroy(table);
}

TEST(CApiThreads, AnotherThreadsFailureLeavesThisThreadsMessage) {
  // Ordered with latches: thread A fails, then thread B fails differently and succeeds once; A's
  // message, and the pointer it got, still say A's failure.
  ek_table* table = create(R"({"input_dim": 10, "output_dim": 4})");
  std::latch a_failed(1), b_done(1);
  std::string a_message, a_message_after, b_message;
  std::thread a([&] {
    EXPECT_EQ(ek_set_learning_rate(table, -1.0), EK_INVALID_ARGUMENT);
    const char* pointer = ek_last_error();
    a_message = pointer;
    a_failed.count_down();
    b_done.wait();
    a_message_after = ek_last_error();
    EXPECT_EQ(std::string(pointer), a_message);
  });
  std::thread b([&] {
    a_failed.wait();
    EXPECT_EQ(ek_table_migrate(table, "tpu"), EK_INVALID_ARGUMENT);
    b_message = ek_last_error();
    EXPECT_EQ(ek_set_learning_rate(table, 0.5), EK_OK);  // a success keeps this thread's message
    EXPECT_EQ(std::string(ek_last_error()), b_message);
    b_done.count_down();
  });
  a.join();
  b.join();
  EXPECT_NE(a_message.find("learning_rate"), std::string::npos) << a_message;
  EXPECT_NE(b_message.find("'tpu'"), std::string::npos) << b_message;
  EXPECT_EQ(a_message_after, a_message);
  ek_table_destroy(table);
}

TEST(CApiThreads, LookupsSeeWholeRowsWhileAnotherThreadTrains) {
  // SGD with learning rate 1 and gradient -1 on every entry: each step adds 1 to every column of
  // every row, and set_weights writes the next such state whole, so every row of every read holds
  // one value, and all rows of one read the same value.
  constexpr std::int64_t kRows = 32, kDim = 64;
  constexpr int kReaders = 3, kSteps = 300;
  ek_table* table = create(R"({"input_dim": 32, "output_dim": 64, "embeddings_initializer": "zeros",
                                "optimizer": {"class_name": "SGD", "config": {"learning_rate": 1.0}}})");
  std::vector<std::int64_t> ids(kRows);
  for (std::int64_t r = 0; r < kRows; ++r) ids[r] = r;
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::string first_failure;
  std::mutex first_failure_mutex;
  const auto fail = [&](const std::string& what) {
    std::lock_guard lock(first_failure_mutex);
    if (failures++ == 0) first_failure = what;
  };
  const auto check = [&](const std::vector<float>& values, float& last, const char* what) {
    for (std::int64_t r = 0; r < kRows; ++r) {
      const float* row = values.data() + r * kDim;
      if (!std::all_of(row, row + kDim, [&](float v) { return v == values[0]; })) {
        return fail(std::string(what) + ": row " + std::to_string(r) + " is torn or from another step");
      }
    }
    if (values[0] < last) return fail(std::string(what) + ": went back from " + std::to_string(last));
    last = values[0];
  };
  std::latch start(kReaders + 1);
  std::vector<std::thread> readers;
  for (int t = 0; t < kReaders; ++t) {
    readers.emplace_back([&] {
      std::vector<std::int64_t> ids_shape = {kRows}, out_shape = {kRows, kDim}, weights_shape = {kRows, kDim};
      std::vector<std::int64_t> pooled_ids = ids, offsets(kRows + 1), offsets_shape = {kRows + 1};
      for (std::int64_t b = 0; b <= kRows; ++b) offsets[b] = b;
      std::vector<float> out(kRows * kDim);
      std::vector<char> info(4096);
      DLTensor ids_tensor = tensor(pooled_ids.data(), ids_shape), out_tensor = tensor(out.data(), out_shape);
      DLTensor offsets_tensor = tensor(offsets.data(), offsets_shape), weights = tensor(out.data(), weights_shape);
      float last = 0;
      start.arrive_and_wait();
      for (int op = 0; !done.load() && failures.load() == 0; ++op) {
        std::size_t length = 0;
        switch (op % 4) {
          case 0:
            if (ek_lookup(table, &ids_tensor, &out_tensor) != EK_OK) fail(ek_last_error());
            check(out, last, "ek_lookup");
            break;
          case 1:
            if (ek_lookup_pooled(table, &ids_tensor, &offsets_tensor, nullptr, "mean", &out_tensor) != EK_OK) {
              fail(ek_last_error());
            }
            check(out, last, "ek_lookup_pooled");
            break;
          case 2:
            if (ek_get_weights(table, &weights) != EK_OK) fail(ek_last_error());
            check(out, last, "ek_get_weights");
            break;
          case 3:
            if (ek_table_info(table, info.data(), info.size(), &length) != EK_OK) fail(ek_last_error());
            break;
        }
      }
    });
  }
  std::vector<std::int64_t> ids_shape = {kRows}, grad_shape = {kRows, kDim};
  std::vector<float> minus_one(kRows * kDim, -1.0f), next(kRows * kDim);
  DLTensor ids_tensor = tensor(ids.data(), ids_shape), grad = tensor(minus_one.data(), grad_shape);
  DLTensor next_tensor = tensor(next.data(), grad_shape);
  start.arrive_and_wait();
  for (int step = 1; step <= kSteps && failures.load() == 0; ++step) {
    std::fill(next.begin(), next.end(), static_cast<float>(step));
    ek_status status = EK_OK;
    if (step % 50 == 1) status = ek_set_learning_rate(table, 1.0);  // a writer that changes no value
    if (status == EK_OK) {
      status = step % 3 == 0 ? ek_set_weights(table, &next_tensor) : ek_train_step(table, &ids_tensor, &grad);
    }
    if (status != EK_OK) fail("writer: " + std::string(ek_last_error()));
  }
  done.store(true);
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(failures.load(), 0) << first_failure;
  std::vector<std::int64_t> weights_shape = {kRows, kDim};
  DLTensor weights = tensor(next.data(), weights_shape);
  ASSERT_EQ(ek_get_weights(table, &weights), EK_OK);
  EXPECT_EQ(next, std::vector<float>(kRows * kDim, static_cast<float>(kSteps)));
  ek_table_destroy(table);
}

}  // namespace
