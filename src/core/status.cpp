#include <embedkit/status.hpp>

namespace embedkit {

const char* status_name(Status status) noexcept {
  switch (status) {
    case Status::ok: return "EK_OK";
    case Status::invalid_argument: return "EK_INVALID_ARGUMENT";
    case Status::out_of_range: return "EK_OUT_OF_RANGE";
    case Status::shape_mismatch: return "EK_SHAPE_MISMATCH";
    case Status::dtype_mismatch: return "EK_DTYPE_MISMATCH";
    case Status::out_of_memory: return "EK_OUT_OF_MEMORY";
    case Status::unsupported: return "EK_UNSUPPORTED";
    case Status::io_error: return "EK_IO_ERROR";
    case Status::internal: return "EK_INTERNAL";
    case Status::busy: return "EK_BUSY";
  }
  return "EK_UNKNOWN_STATUS";
}

}  // namespace embedkit
