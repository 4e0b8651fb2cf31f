#include "shim/agent_status.h"

namespace uvmshim::shim {

ttrpc::Code TtrpcCodeFor(grpc::StatusCode code) {
  using ttrpc::Code;
  switch (code) {
    case grpc::StatusCode::OK: return Code::kOk;
    case grpc::StatusCode::CANCELLED: return Code::kCanceled;
    case grpc::StatusCode::UNKNOWN: return Code::kUnknown;
    case grpc::StatusCode::INVALID_ARGUMENT: return Code::kInvalidArgument;
    case grpc::StatusCode::DEADLINE_EXCEEDED: return Code::kDeadlineExceeded;
    case grpc::StatusCode::NOT_FOUND: return Code::kNotFound;
    case grpc::StatusCode::ALREADY_EXISTS: return Code::kAlreadyExists;
    case grpc::StatusCode::PERMISSION_DENIED: return Code::kPermissionDenied;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return Code::kResourceExhausted;
    case grpc::StatusCode::FAILED_PRECONDITION: return Code::kFailedPrecondition;
    case grpc::StatusCode::ABORTED: return Code::kAborted;
    case grpc::StatusCode::OUT_OF_RANGE: return Code::kOutOfRange;
    case grpc::StatusCode::UNIMPLEMENTED: return Code::kUnimplemented;
    case grpc::StatusCode::INTERNAL: return Code::kInternal;
    case grpc::StatusCode::UNAVAILABLE: return Code::kUnavailable;
    case grpc::StatusCode::DATA_LOSS: return Code::kDataLoss;
    case grpc::StatusCode::UNAUTHENTICATED: return Code::kUnauthenticated;
    default: return Code::kUnknown;  // gRPC's internal DO_NOT_USE and anything newer
  }
}

ttrpc::Status FromAgentError(const host::AgentError& error) {
  return ttrpc::Status(TtrpcCodeFor(error.code()), error.what());
}

}  // namespace uvmshim::shim
