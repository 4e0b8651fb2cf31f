// Protobuf-typed convenience over Server::Register and Client::Call.
#pragma once

#include <functional>
#include <string>
#include <type_traits>

#include <google/protobuf/message_lite.h>

#include "ttrpc/client.h"
#include "ttrpc/server.h"

namespace uvmshim::ttrpc {

// Registers `fn(ctx, request, response&) -> Status`. An undecodable request
// gets InvalidArgument; a non-OK Status is sent as-is (response ignored).
template <class Request, class Response>
void RegisterTyped(Server& server, std::string service, std::string method,
                   std::function<Status(const RequestContext&, const Request&, Response&)> fn) {
  static_assert(std::is_base_of_v<google::protobuf::MessageLite, Request>);
  static_assert(std::is_base_of_v<google::protobuf::MessageLite, Response>);
  server.Register(std::move(service), std::move(method),
                  [fn = std::move(fn)](const RequestContext& ctx, const std::string& payload) -> Result {
                    Request request;
                    if (!request.ParseFromString(payload)) {
                      return Status(Code::kInvalidArgument, "cannot decode " + request.GetTypeName() +
                                                                " for " + ctx.service + "/" + ctx.method);
                    }
                    Response response;
                    Status status = fn(ctx, request, response);
                    if (!status.ok()) return status;
                    return Result::Ok(response.SerializeAsString());
                  });
}

// Calls and decodes the answer into `response`. Returns the call's Status;
// an undecodable answer gives Internal.
inline Status CallTyped(Client& client, std::string_view service, std::string_view method,
                        const google::protobuf::MessageLite& request, google::protobuf::MessageLite& response,
                        const CallOptions& options = {}) {
  Result result = client.Call(service, method, request.SerializeAsString(), options);
  if (!result.ok()) return result.status;
  if (!response.ParseFromString(result.payload)) {
    return Status(Code::kInternal, "cannot decode " + response.GetTypeName() + " from " +
                                       std::string(service) + "/" + std::string(method));
  }
  return Status::Ok();
}

}  // namespace uvmshim::ttrpc
