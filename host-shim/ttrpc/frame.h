// ttrpc framing: a 10-byte header (u32 BE data length, u32 BE stream id,
// u8 type, u8 flags) followed by the data. Pure byte handling, no I/O, so it
// can be unit-tested byte-exactly and fuzzed.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace uvmshim::ttrpc {

inline constexpr std::size_t kFrameHeaderSize = 10;
inline constexpr std::uint32_t kMaxMessageSize = 4u << 20;  // data bytes, header excluded

enum class FrameType : std::uint8_t {
  kRequest = 1,
  kResponse = 2,
  kData = 3,  // streaming (ttrpc >= 1.2); containerd 1.6 never sends it
};

struct FrameHeader {
  std::uint32_t length = 0;
  std::uint32_t stream_id = 0;
  std::uint8_t type = 0;
  std::uint8_t flags = 0;

  bool operator==(const FrameHeader&) const = default;
};

std::array<std::uint8_t, kFrameHeaderSize> EncodeFrameHeader(const FrameHeader& header);
// `bytes` must hold at least kFrameHeaderSize bytes.
FrameHeader DecodeFrameHeader(const std::uint8_t* bytes);

// Header + payload in one buffer, ready for a single write. Throws
// std::length_error when the payload exceeds kMaxMessageSize.
std::string EncodeFrame(std::uint32_t stream_id, FrameType type, std::string_view payload,
                        std::uint8_t flags = 0);

struct Frame {
  FrameHeader header;
  std::string payload;
};

// A header announced more than the maximum: its data is skipped (never
// buffered) and the receiver answers ResourceExhausted on that stream id.
struct OversizedFrame {
  FrameHeader header;
};

using DecodedFrame = std::variant<Frame, OversizedFrame>;

// Incremental decoder: Feed() bytes as they arrive, then call Next() until it
// returns nullopt. Every byte sequence is acceptable input; it never throws
// on content.
class FrameDecoder {
 public:
  explicit FrameDecoder(std::uint32_t max_message_size = kMaxMessageSize)
      : max_message_size_(max_message_size) {}

  void Feed(std::string_view bytes);
  std::optional<DecodedFrame> Next();

  // True when no partial frame is pending (a clean point for the peer to close).
  bool AtFrameBoundary() const { return buffered() == 0 && skip_remaining_ == 0; }
  std::size_t buffered() const { return buffer_.size() - read_pos_; }

 private:
  void Compact();

  std::uint32_t max_message_size_;
  std::string buffer_;
  std::size_t read_pos_ = 0;
  std::uint64_t skip_remaining_ = 0;  // data bytes of an oversized frame still to drop
};

}  // namespace uvmshim::ttrpc
