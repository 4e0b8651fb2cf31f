// The messages inside ttrpc frames (ttrpc.Request / ttrpc.Response from
// proto/containerd/ttrpc/ttrpc.proto) as plain C++ values, and the checks a
// server applies to an incoming frame. No I/O: shared by server, client and
// the fuzz target.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "ttrpc/frame.h"
#include "ttrpc/status.h"

namespace uvmshim::ttrpc {

// Request metadata in wire order; a key may repeat.
using Metadata = std::vector<std::pair<std::string, std::string>>;

// Carries the containerd namespace on calls in both directions.
inline constexpr std::string_view kNamespaceMetadataKey = "containerd-namespace-ttrpc";

// First value for `key`, if any.
std::optional<std::string> FindMetadata(const Metadata& metadata, std::string_view key);

struct RequestMessage {
  std::string service;  // e.g. "containerd.task.v2.Task"
  std::string method;   // e.g. "Create"
  std::string payload;  // serialized request message
  std::int64_t timeout_nano = 0;  // 0 = none
  Metadata metadata;
};

std::string EncodeRequest(const RequestMessage& request);
// nullopt when `bytes` is not a valid ttrpc.Request.
std::optional<RequestMessage> DecodeRequest(std::string_view bytes);

// Success: no status field (what containerd's own ttrpc sends); failure: a
// google.rpc.Status with code and message.
std::string EncodeResponse(const Result& result);
std::optional<Result> DecodeResponse(std::string_view bytes);

// "message length N exceed maximum message size of M": the text containerd's
// ttrpc uses for ResourceExhausted.
Status OversizedStatus(std::uint64_t length, std::uint32_t max = kMaxMessageSize);

// What a server makes of one decoded frame.
struct ServerRequest {  // a well-formed request to dispatch
  std::uint32_t stream_id = 0;
  RequestMessage request;
};
struct ServerReply {  // answer this stream directly with `status`, keep the connection
  std::uint32_t stream_id = 0;
  Status status;
};
struct ServerProtocolError {  // the peer does not speak ttrpc: close the connection
  std::string reason;
  std::optional<ServerReply> last_reply;  // send this first, if present
};
using ServerFrameAction = std::variant<ServerRequest, ServerReply, ServerProtocolError>;

ServerFrameAction ClassifyServerFrame(const DecodedFrame& frame);

}  // namespace uvmshim::ttrpc
