// libFuzzer target: arbitrary bytes from a peer through the ttrpc frame
// decoder and the server's frame classification, fed in chunks the way a
// socket delivers them. The first input byte picks the chunk size and
// whether a tiny message limit is used (to reach the oversized path often).
#include <google/protobuf/stubs/logging.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <variant>

#include "ttrpc/frame.h"
#include "ttrpc/protocol.h"

namespace {

using namespace uvmshim::ttrpc;

void Check(bool ok) {
  if (!ok) std::abort();
}

void Inspect(const DecodedFrame& decoded, std::uint32_t max) {
  if (const auto* frame = std::get_if<Frame>(&decoded)) {
    Check(frame->header.length <= max);
    Check(frame->payload.size() == frame->header.length);
    // Whatever the server makes of it must be one of its three actions, and a
    // request it accepts must survive a re-encode unchanged.
    auto action = ClassifyServerFrame(decoded);
    if (auto* req = std::get_if<ServerRequest>(&action)) {
      Check(req->stream_id % 2 == 1);
      auto again = DecodeRequest(EncodeRequest(req->request));
      Check(again.has_value());
      Check(again->service == req->request.service && again->method == req->request.method &&
            again->payload == req->request.payload && again->timeout_nano == req->request.timeout_nano &&
            again->metadata == req->request.metadata);
    }
    if (auto response = DecodeResponse(frame->payload)) {
      auto again = DecodeResponse(EncodeResponse(*response));
      Check(again.has_value() && again->status.code == response->status.code);
    }
  } else {
    const auto& over = std::get<OversizedFrame>(decoded);
    Check(over.header.length > max);
    // An oversized request is answered; anything else that large is garbage
    // and ends the connection.
    auto action = ClassifyServerFrame(decoded);
    const bool request = over.header.type == static_cast<std::uint8_t>(FrameType::kRequest);
    Check(request ? std::holds_alternative<ServerReply>(action) : std::holds_alternative<ServerProtocolError>(action));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Invalid UTF-8 in proto3 strings is an expected parse failure, not news.
  static const bool kQuiet = [] {
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)kQuiet;
  if (size == 0) return 0;
  const std::size_t chunk = (data[0] & 0x3f) + 1;
  const std::uint32_t max = (data[0] & 0x40) ? 64 : kMaxMessageSize;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  FrameDecoder decoder(max);
  while (!input.empty()) {
    const auto piece = input.substr(0, chunk);
    input.remove_prefix(piece.size());
    decoder.Feed(piece);
    while (auto decoded = decoder.Next()) Inspect(*decoded, max);
    // Whatever stays buffered is less than one complete frame.
    Check(decoder.buffered() < kFrameHeaderSize + static_cast<std::size_t>(max));
  }
  return 0;
}
