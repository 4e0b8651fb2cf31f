// The one place the agent's domain errors become gRPC statuses (as Kata's
// agent converts in rpc.rs): the core (container.cc, launcher.cc,
// request_checks.cc, pod_network_setup.cc) throws uvmshim::Error, a code plus
// a message with context (common/error.h); the service (agent_service.cc)
// runs each RPC's body through ServeRpc.
#pragma once

#include <grpcpp/support/status.h>

#include <stdexcept>
#include <string>

#include "common/error.h"

namespace uvmshim::agent {

grpc::StatusCode ToGrpcCode(ErrorCode code);
grpc::Status ToGrpcStatus(const Error& error);

// Runs `body` (returning grpc::Status): an Error becomes its status,
// std::invalid_argument INVALID_ARGUMENT, any other exception INTERNAL, each
// with `context` ("create container c1") before its message.
template <typename Body>
grpc::Status ServeRpc(const std::string& context, Body&& body) {
  try {
    return body();
  } catch (Error& e) {
    if (!context.empty()) e.AddContext(context);
    return ToGrpcStatus(e);
  } catch (const std::invalid_argument& e) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, context.empty() ? e.what() : context + ": " + e.what());
  } catch (const std::exception& e) {
    return grpc::Status(grpc::StatusCode::INTERNAL, context.empty() ? e.what() : context + ": " + e.what());
  }
}

}  // namespace uvmshim::agent
