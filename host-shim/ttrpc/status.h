// Call outcome of a ttrpc request: gRPC status codes carried as
// google.rpc.Status in ttrpc.Response, plus the serialized response payload.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace uvmshim::ttrpc {

// google.rpc.Code values (the subset of meaning containerd relies on is
// NotFound, AlreadyExists, InvalidArgument, FailedPrecondition, Unimplemented,
// Unavailable; everything else becomes "unknown" on its side).
enum class Code : std::int32_t {
  kOk = 0,
  kCanceled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// "NotFound" etc.; "Code(<n>)" for values outside the table.
std::string CodeName(std::int32_t code);

struct Status {
  std::int32_t code = 0;  // a Code value; kept as int32 because peers may send others
  std::string message;

  Status() = default;
  Status(Code c, std::string msg) : code(static_cast<std::int32_t>(c)), message(std::move(msg)) {}

  static Status Ok() { return {}; }
  bool ok() const { return code == 0; }
  bool Is(Code c) const { return code == static_cast<std::int32_t>(c); }
  // "NotFound: container x not found" (or "OK").
  std::string ToString() const;
};

// What a handler returns and what Client::Call yields: either a success with
// the serialized response message, or a non-OK status (payload then unused).
struct Result {
  Status status;
  std::string payload;

  Result() = default;
  Result(Status s) : status(std::move(s)) {}  // NOLINT: implicit so handlers can `return Status{...}`
  static Result Ok(std::string payload) {
    Result r;
    r.payload = std::move(payload);
    return r;
  }
  bool ok() const { return status.ok(); }
};

}  // namespace uvmshim::ttrpc
