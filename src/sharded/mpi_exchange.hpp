#pragma once
// The MPI steps a sharded table's calls are made of, on a communicator of its own: agreeing on
// errors, exchanging counts, and all-to-all exchanges of ids and rows, each timed and its bytes
// counted into the call's ExchangeStats.

#include <embedkit/sharded_table.hpp>
#include <embedkit/status.hpp>

#include <mpi.h>

#include <cstdint>
#include <exception>
#include <new>
#include <optional>
#include <string>
#include <vector>

namespace embedkit::detail {

/// The error a body threw, as an Error (what crosses ranks is a status and a message).
std::optional<Error> error_of(std::exception_ptr thrown);

class MpiExchange {
 public:
  /// Duplicates `parent` (collective). Throws Error(invalid_argument) when MPI is not initialised.
  explicit MpiExchange(MPI_Comm parent);
  ~MpiExchange();
  MpiExchange(const MpiExchange&) = delete;
  MpiExchange& operator=(const MpiExchange&) = delete;

  /// Sets the width of the rows exchanged, once every rank has agreed on it.
  void set_row_width(std::int64_t dim);

  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }
  MPI_Comm comm() const noexcept { return comm_; }

  /// Collective. Runs `body` here; when it threw on any rank, every rank throws the error of the
  /// lowest such rank, its message prefixed with "rank R: ". Returns the largest `body` result
  /// over the ranks (a size every rank must plan for).
  template <class Body>
  std::int64_t agree(Body&& body) {
    std::int64_t value = 0;
    std::exception_ptr thrown;
    try {
      value = body();
    } catch (...) {
      thrown = std::current_exception();
    }
    return agree_on(error_of(thrown), value);
  }

  /// Collective: recv[r] = what rank r sends here, given send[r] = what this rank sends to r.
  std::vector<int> exchange_counts(const std::vector<int>& send);
  /// Collective all-to-all of int64 ids: send[] grouped by destination rank in send_counts.
  std::vector<std::int64_t> exchange_ids(const std::vector<std::int64_t>& send, const std::vector<int>& send_counts,
                                         const std::vector<int>& recv_counts);
  /// Collective all-to-all of rows of dim floats, counted in rows.
  std::vector<float> exchange_rows(const std::vector<float>& send, const std::vector<int>& send_counts,
                                   const std::vector<int>& recv_counts);
  /// Collective: every rank's rows, counts[r] rows from rank r, in rank order.
  std::vector<float> gather_rows(const std::vector<float>& local, const std::vector<int>& counts);
  /// Collective: every rank's value of `value`.
  std::vector<std::uint64_t> gather(std::uint64_t value);
  /// Collective: rank 0's value.
  std::uint64_t broadcast(std::uint64_t value);

  /// Starts the account of a new call.
  void begin_call();
  /// Closes the account of the current call: its elapsed time.
  void end_call();
  /// The last call's account.
  const ExchangeStats& stats() const noexcept { return stats_; }

 private:
  std::int64_t agree_on(const std::optional<Error>& local, std::int64_t value);
  // Adds the bytes of an exchange with these counts (of `item_bytes` each) to other ranks.
  void count_bytes(const std::vector<int>& send_counts, const std::vector<int>& recv_counts, std::size_t item_bytes);

  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Datatype row_type_ = MPI_DATATYPE_NULL;
  std::int64_t dim_ = 0;
  int rank_ = 0;
  int size_ = 1;
  ExchangeStats stats_;
  double call_started_ = 0;
};

}  // namespace embedkit::detail
