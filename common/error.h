// The project's error type: a code that says what kind of failure it is (so
// that each wire - gRPC, ttrpc, a CLI's exit - can map it in one place) and
// a message with the context added on the way up, outermost first:
//   "create container c1: mount /proc: Operation not permitted"
// Std-only: the agent, the host, the VM manager and the Windows build share it.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace uvmshim {

// The kinds of failure the parts report; the names follow gRPC's codes
// because every wire we speak has the same set (ttrpc reuses them).
enum class ErrorCode {
  kUnknown,
  kInvalidArgument,     // the caller's input is wrong (names the field)
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,  // not in a state where this is possible
  kPermissionDenied,
  kResourceExhausted,
  kDeadlineExceeded,
  kUnavailable,         // the other side is gone or not there yet
  kCancelled,
  kUnimplemented,
  kInternal,            // a system call or a tool failed
};

const char* ToString(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string message);
  explicit Error(std::string message) : Error(ErrorCode::kInternal, std::move(message)) {}

  ErrorCode code() const { return code_; }
  // The innermost message, without context.
  const std::string& message() const { return message_; }
  // Context added by callers, outermost first.
  const std::vector<std::string>& context() const { return context_; }
  // "context: ... : message".
  const char* what() const noexcept override { return what_.c_str(); }

  // Prepends one level of context ("start VM vm1"); returns *this to rethrow.
  Error& AddContext(std::string_view context);

 private:
  ErrorCode code_;
  std::string message_;
  std::vector<std::string> context_;
  std::string what_;
};

// "what: strerror(error_number)" with the code errno implies (ENOENT ->
// kNotFound, EACCES/EPERM -> kPermissionDenied, ...).
Error ErrnoError(std::string_view what, int error_number);
ErrorCode CodeForErrno(int error_number);

}  // namespace uvmshim
