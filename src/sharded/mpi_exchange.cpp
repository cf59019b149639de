#include "sharded/mpi_exchange.hpp"

#include <fmt/format.h>

#include <climits>

namespace embedkit::detail {
namespace {

// Adds the seconds spent in an MPI call to the call's account.
class CommunicationTimer {
 public:
  explicit CommunicationTimer(double& seconds) : seconds_(seconds), started_(MPI_Wtime()) {}
  ~CommunicationTimer() { seconds_ += MPI_Wtime() - started_; }
  CommunicationTimer(const CommunicationTimer&) = delete;
  CommunicationTimer& operator=(const CommunicationTimer&) = delete;

 private:
  double& seconds_;
  double started_;
};

std::vector<int> displacements(const std::vector<int>& counts) {
  std::vector<int> displs(counts.size(), 0);
  for (std::size_t r = 1; r < counts.size(); ++r) displs[r] = displs[r - 1] + counts[r - 1];
  return displs;
}

std::size_t total(const std::vector<int>& counts) {
  std::size_t sum = 0;
  for (const int c : counts) sum += static_cast<std::size_t>(c);
  return sum;
}

// MPI reads no element of an empty buffer, but some MPIs check the pointer.
template <class T>
const T* data_or_dummy(const std::vector<T>& v) {
  static const T dummy{};
  return v.empty() ? &dummy : v.data();
}
template <class T>
T* data_or_dummy(std::vector<T>& v) {
  static T dummy{};
  return v.empty() ? &dummy : v.data();
}

}  // namespace

std::optional<Error> error_of(std::exception_ptr thrown) {
  if (!thrown) return std::nullopt;
  try {
    std::rethrow_exception(thrown);
  } catch (const Error& e) {
    return e;
  } catch (const std::bad_alloc&) {
    return Error(Status::out_of_memory, "out of host memory");
  } catch (const std::exception& e) {
    return Error(Status::internal, fmt::format("internal error: {}", e.what()));
  } catch (...) {
    return Error(Status::internal, "internal error: unknown exception");
  }
}

MpiExchange::MpiExchange(MPI_Comm parent) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized == 0 || finalized != 0) {
    throw Error(Status::invalid_argument,
                "a sharded table needs MPI: call MPI_Init before creating it and "
                "MPI_Finalize only after destroying it");
  }
  MPI_Comm_dup(parent, &comm_);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

void MpiExchange::set_row_width(std::int64_t dim) {
  dim_ = dim;
  MPI_Type_contiguous(static_cast<int>(dim), MPI_FLOAT, &row_type_);
  MPI_Type_commit(&row_type_);
}

MpiExchange::~MpiExchange() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized != 0) return;  // MPI has already released everything
  if (row_type_ != MPI_DATATYPE_NULL) MPI_Type_free(&row_type_);
  MPI_Comm_free(&comm_);
}

std::int64_t MpiExchange::agree_on(const std::optional<Error>& local, std::int64_t value) {
  // One reduction carries both: the lowest failing rank (as size - rank, so MAX finds it) and the
  // largest value.
  std::int64_t mine[2] = {local ? size_ - rank_ : 0, value}, all[2] = {0, 0};
  {
    const CommunicationTimer timer(stats_.seconds_communicating);
    MPI_Allreduce(mine, all, 2, MPI_INT64_T, MPI_MAX, comm_);
  }
  if (all[0] == 0) return all[1];
  const int failed = size_ - static_cast<int>(all[0]);
  int status = 0;
  std::string message;
  if (failed == rank_) {
    status = static_cast<int>(local->status());
    message = local->what();
  }
  int length = static_cast<int>(message.size());
  {
    const CommunicationTimer timer(stats_.seconds_communicating);
    MPI_Bcast(&status, 1, MPI_INT, failed, comm_);
    MPI_Bcast(&length, 1, MPI_INT, failed, comm_);
    message.resize(static_cast<std::size_t>(length));
    MPI_Bcast(message.data(), length, MPI_CHAR, failed, comm_);
  }
  throw Error(static_cast<Status>(status), fmt::format("rank {}: {}", failed, message));
}

std::vector<int> MpiExchange::exchange_counts(const std::vector<int>& send) {
  std::vector<int> recv(static_cast<std::size_t>(size_));
  const CommunicationTimer timer(stats_.seconds_communicating);
  MPI_Alltoall(send.data(), 1, MPI_INT, recv.data(), 1, MPI_INT, comm_);
  return recv;
}

std::vector<std::int64_t> MpiExchange::exchange_ids(const std::vector<std::int64_t>& send,
                                                    const std::vector<int>& send_counts,
                                                    const std::vector<int>& recv_counts) {
  std::vector<std::int64_t> recv(total(recv_counts));
  const std::vector<int> send_displs = displacements(send_counts), recv_displs = displacements(recv_counts);
  count_bytes(send_counts, recv_counts, sizeof(std::int64_t));
  const CommunicationTimer timer(stats_.seconds_communicating);
  MPI_Alltoallv(data_or_dummy(send), send_counts.data(), send_displs.data(), MPI_INT64_T, data_or_dummy(recv),
                recv_counts.data(), recv_displs.data(), MPI_INT64_T, comm_);
  return recv;
}

std::vector<float> MpiExchange::exchange_rows(const std::vector<float>& send, const std::vector<int>& send_counts,
                                              const std::vector<int>& recv_counts) {
  std::vector<float> recv(total(recv_counts) * static_cast<std::size_t>(dim_));
  const std::vector<int> send_displs = displacements(send_counts), recv_displs = displacements(recv_counts);
  count_bytes(send_counts, recv_counts, static_cast<std::size_t>(dim_) * sizeof(float));
  const CommunicationTimer timer(stats_.seconds_communicating);
  MPI_Alltoallv(data_or_dummy(send), send_counts.data(), send_displs.data(), row_type_, data_or_dummy(recv),
                recv_counts.data(), recv_displs.data(), row_type_, comm_);
  return recv;
}

std::vector<float> MpiExchange::gather_rows(const std::vector<float>& local, const std::vector<int>& counts) {
  std::vector<float> all(total(counts) * static_cast<std::size_t>(dim_));
  const std::vector<int> displs = displacements(counts);
  const CommunicationTimer timer(stats_.seconds_communicating);
  MPI_Allgatherv(data_or_dummy(local), counts[static_cast<std::size_t>(rank_)], row_type_, data_or_dummy(all),
                 counts.data(), displs.data(), row_type_, comm_);
  return all;
}

std::vector<std::uint64_t> MpiExchange::gather(std::uint64_t value) {
  std::vector<std::uint64_t> all(static_cast<std::size_t>(size_));
  const CommunicationTimer timer(stats_.seconds_communicating);
  MPI_Allgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, comm_);
  return all;
}

std::uint64_t MpiExchange::broadcast(std::uint64_t value) {
  const CommunicationTimer timer(stats_.seconds_communicating);
  MPI_Bcast(&value, 1, MPI_UINT64_T, 0, comm_);
  return value;
}

void MpiExchange::begin_call() {
  stats_ = ExchangeStats{};
  call_started_ = MPI_Wtime();
}

void MpiExchange::end_call() { stats_.seconds = MPI_Wtime() - call_started_; }

void MpiExchange::count_bytes(const std::vector<int>& send_counts, const std::vector<int>& recv_counts,
                              std::size_t item_bytes) {
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) continue;
    stats_.bytes_sent += static_cast<std::uint64_t>(send_counts[static_cast<std::size_t>(r)]) * item_bytes;
    stats_.bytes_received += static_cast<std::uint64_t>(recv_counts[static_cast<std::size_t>(r)]) * item_bytes;
  }
}

}  // namespace embedkit::detail
