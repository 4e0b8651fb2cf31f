#include "ttrpc/protocol.h"

#include "containerd/ttrpc/ttrpc.pb.h"

namespace uvmshim::ttrpc {

std::optional<std::string> FindMetadata(const Metadata& metadata, std::string_view key) {
  for (const auto& [k, v] : metadata) {
    if (k == key) return v;
  }
  return std::nullopt;
}

std::string EncodeRequest(const RequestMessage& request) {
  ::ttrpc::Request msg;
  msg.set_service(request.service);
  msg.set_method(request.method);
  msg.set_payload(request.payload);
  msg.set_timeout_nano(request.timeout_nano);
  for (const auto& [k, v] : request.metadata) {
    auto* kv = msg.add_metadata();
    kv->set_key(k);
    kv->set_value(v);
  }
  return msg.SerializeAsString();
}

std::optional<RequestMessage> DecodeRequest(std::string_view bytes) {
  ::ttrpc::Request msg;
  if (!msg.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return std::nullopt;
  RequestMessage out;
  out.service = std::move(*msg.mutable_service());
  out.method = std::move(*msg.mutable_method());
  out.payload = std::move(*msg.mutable_payload());
  out.timeout_nano = msg.timeout_nano();
  out.metadata.reserve(static_cast<std::size_t>(msg.metadata_size()));
  for (auto& kv : *msg.mutable_metadata()) {
    out.metadata.emplace_back(std::move(*kv.mutable_key()), std::move(*kv.mutable_value()));
  }
  return out;
}

std::string EncodeResponse(const Result& result) {
  ::ttrpc::Response msg;
  if (!result.ok()) {
    auto* status = msg.mutable_status();
    status->set_code(result.status.code);
    status->set_message(result.status.message);
  } else {
    msg.set_payload(result.payload);
  }
  return msg.SerializeAsString();
}

std::optional<Result> DecodeResponse(std::string_view bytes) {
  ::ttrpc::Response msg;
  if (!msg.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return std::nullopt;
  Result out;
  if (msg.has_status() && msg.status().code() != 0) {
    out.status.code = msg.status().code();
    out.status.message = msg.status().message();
    return out;
  }
  out.payload = std::move(*msg.mutable_payload());
  return out;
}

Status OversizedStatus(std::uint64_t length, std::uint32_t max) {
  return Status(Code::kResourceExhausted, "message length " + std::to_string(length) +
                                              " exceed maximum message size of " + std::to_string(max));
}

ServerFrameAction ClassifyServerFrame(const DecodedFrame& decoded) {
  if (const auto* oversized = std::get_if<OversizedFrame>(&decoded)) {
    // An oversized request is answered and skipped; a header that is not a
    // request at all (HTTP, TLS, random bytes read as a length) ends the
    // connection rather than making us skip gigabytes of garbage.
    if (oversized->header.type != static_cast<std::uint8_t>(FrameType::kRequest))
      return ServerProtocolError{"garbage: frame type " + std::to_string(oversized->header.type) +
                                     " announcing " + std::to_string(oversized->header.length) + " bytes",
                                 std::nullopt};
    return ServerReply{oversized->header.stream_id, OversizedStatus(oversized->header.length)};
  }
  const auto& frame = std::get<Frame>(decoded);
  const auto id = frame.header.stream_id;
  if (frame.header.type != static_cast<std::uint8_t>(FrameType::kRequest)) {
    return ServerProtocolError{"unexpected frame type " + std::to_string(frame.header.type) +
                                   " on stream " + std::to_string(id),
                               std::nullopt};
  }
  auto request = DecodeRequest(frame.payload);
  if (!request) {
    return ServerProtocolError{
        "undecodable ttrpc.Request on stream " + std::to_string(id),
        ServerReply{id, Status(Code::kInvalidArgument, "unmarshal request error: invalid ttrpc.Request")}};
  }
  if (id % 2 != 1) {
    // Client-initiated streams are odd; answer but keep serving.
    return ServerReply{id, Status(Code::kInvalidArgument,
                                  "StreamID must be odd for client initiated streams")};
  }
  return ServerRequest{id, std::move(*request)};
}

}  // namespace uvmshim::ttrpc
