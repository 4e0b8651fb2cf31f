#include "ttrpc/frame.h"

#include <algorithm>
#include <stdexcept>

namespace uvmshim::ttrpc {
namespace {

void PutBigEndian32(std::uint8_t* out, std::uint32_t v) {
  out[0] = static_cast<std::uint8_t>(v >> 24);
  out[1] = static_cast<std::uint8_t>(v >> 16);
  out[2] = static_cast<std::uint8_t>(v >> 8);
  out[3] = static_cast<std::uint8_t>(v);
}

std::uint32_t GetBigEndian32(const std::uint8_t* in) {
  return (static_cast<std::uint32_t>(in[0]) << 24) | (static_cast<std::uint32_t>(in[1]) << 16) |
         (static_cast<std::uint32_t>(in[2]) << 8) | static_cast<std::uint32_t>(in[3]);
}

}  // namespace

std::array<std::uint8_t, kFrameHeaderSize> EncodeFrameHeader(const FrameHeader& header) {
  std::array<std::uint8_t, kFrameHeaderSize> out{};
  PutBigEndian32(out.data(), header.length);
  PutBigEndian32(out.data() + 4, header.stream_id);
  out[8] = header.type;
  out[9] = header.flags;
  return out;
}

FrameHeader DecodeFrameHeader(const std::uint8_t* bytes) {
  FrameHeader h;
  h.length = GetBigEndian32(bytes);
  h.stream_id = GetBigEndian32(bytes + 4);
  h.type = bytes[8];
  h.flags = bytes[9];
  return h;
}

std::string EncodeFrame(std::uint32_t stream_id, FrameType type, std::string_view payload,
                        std::uint8_t flags) {
  if (payload.size() > kMaxMessageSize) {
    throw std::length_error("ttrpc frame for stream " + std::to_string(stream_id) + ": message length " +
                            std::to_string(payload.size()) + " exceeds maximum message size of " +
                            std::to_string(kMaxMessageSize));
  }
  FrameHeader h{static_cast<std::uint32_t>(payload.size()), stream_id, static_cast<std::uint8_t>(type),
                flags};
  auto header = EncodeFrameHeader(h);
  std::string out;
  out.reserve(kFrameHeaderSize + payload.size());
  out.append(reinterpret_cast<const char*>(header.data()), header.size());
  out.append(payload);
  return out;
}

void FrameDecoder::Compact() {
  if (read_pos_ == 0) return;
  if (read_pos_ >= buffer_.size()) {
    buffer_.clear();
    read_pos_ = 0;
  } else if (read_pos_ >= buffer_.size() / 2) {
    buffer_.erase(0, read_pos_);
    read_pos_ = 0;
  }
}

void FrameDecoder::Feed(std::string_view bytes) {
  // Drop oversized data straight from the input when nothing is queued ahead
  // of it, so a huge frame never lands in the buffer.
  if (skip_remaining_ > 0 && buffered() == 0) {
    auto n = static_cast<std::size_t>(std::min<std::uint64_t>(skip_remaining_, bytes.size()));
    skip_remaining_ -= n;
    bytes.remove_prefix(n);
  }
  if (bytes.empty()) return;
  Compact();
  buffer_.append(bytes);
}

std::optional<DecodedFrame> FrameDecoder::Next() {
  if (skip_remaining_ > 0) {
    auto n = static_cast<std::size_t>(std::min<std::uint64_t>(skip_remaining_, buffered()));
    read_pos_ += n;
    skip_remaining_ -= n;
    if (skip_remaining_ > 0) {
      Compact();
      return std::nullopt;
    }
  }
  if (buffered() < kFrameHeaderSize) {
    Compact();
    return std::nullopt;
  }
  auto header = DecodeFrameHeader(reinterpret_cast<const std::uint8_t*>(buffer_.data() + read_pos_));
  if (header.length > max_message_size_) {
    read_pos_ += kFrameHeaderSize;
    skip_remaining_ = header.length;
    auto n = static_cast<std::size_t>(std::min<std::uint64_t>(skip_remaining_, buffered()));
    read_pos_ += n;
    skip_remaining_ -= n;
    Compact();
    return OversizedFrame{header};
  }
  if (buffered() < kFrameHeaderSize + header.length) {
    // Grow once to the announced size instead of doubling through a large frame.
    buffer_.reserve(read_pos_ + kFrameHeaderSize + header.length);
    return std::nullopt;
  }
  Frame frame{header, buffer_.substr(read_pos_ + kFrameHeaderSize, header.length)};
  read_pos_ += kFrameHeaderSize + header.length;
  Compact();
  return frame;
}

}  // namespace uvmshim::ttrpc
