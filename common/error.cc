#include "common/error.h"

#include <cerrno>
#include <cstring>

namespace uvmshim {

const char* ToString(ErrorCode code) {
  switch (code) {
    case ErrorCode::kUnknown: return "unknown";
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kNotFound: return "not found";
    case ErrorCode::kAlreadyExists: return "already exists";
    case ErrorCode::kFailedPrecondition: return "failed precondition";
    case ErrorCode::kPermissionDenied: return "permission denied";
    case ErrorCode::kResourceExhausted: return "resource exhausted";
    case ErrorCode::kDeadlineExceeded: return "deadline exceeded";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kCancelled: return "cancelled";
    case ErrorCode::kUnimplemented: return "unimplemented";
    case ErrorCode::kInternal: return "internal";
  }
  return "unknown";
}

Error::Error(ErrorCode code, std::string message)
    : std::runtime_error(message), code_(code), message_(std::move(message)), what_(message_) {}

Error& Error::AddContext(std::string_view context) {
  context_.insert(context_.begin(), std::string(context));
  what_ = std::string(context) + ": " + what_;
  return *this;
}

ErrorCode CodeForErrno(int error_number) {
  switch (error_number) {
    case ENOENT: case ESRCH: return ErrorCode::kNotFound;
    case EEXIST: return ErrorCode::kAlreadyExists;
    case EACCES: case EPERM: return ErrorCode::kPermissionDenied;
    case EINVAL: case ENAMETOOLONG: case ENOTDIR: return ErrorCode::kInvalidArgument;
    case ENOMEM: case ENOSPC: case EMFILE: case ENFILE: case EAGAIN: return ErrorCode::kResourceExhausted;
    case ETIMEDOUT: return ErrorCode::kDeadlineExceeded;
    case EBUSY: return ErrorCode::kFailedPrecondition;
    default: return ErrorCode::kInternal;
  }
}

Error ErrnoError(std::string_view what, int error_number) {
  return Error(CodeForErrno(error_number), std::string(what) + ": " + std::strerror(error_number));
}

}  // namespace uvmshim
