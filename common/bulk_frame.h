// The wire format of the bulk stdio port ("uvmshim.stdio", one virtio-serial
// port per QEMU utility VM, next to the agent channel). The agent moves a
// process's output there with splice() instead of copying it into gRPC
// messages; the host grants credit back on the same port.
//
// Every frame starts with a fixed 16-byte header, little-endian:
//   u32 magic  kBulkFrameMagic (resynchronising is not attempted: a bad
//              header means the stream is corrupt, and says so)
//   u32 stream the id the host chose in ReadOutputRequest.bulk_stream_id
//   u32 length data: payload bytes that follow; credit: bytes granted
//   u16 kind   BulkFrameKind
//   u16 flags  0 (reserved)
// guest -> host: kData (length bytes follow), kEnd (no payload: every byte
// of the stream was sent). host -> guest: kCredit (no payload).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace uvmshim {

inline constexpr std::uint32_t kBulkFrameMagic = 0x46425655;  // "UVBF"
inline constexpr std::size_t kBulkHeaderBytes = 16;
// A data frame never carries more (the agent's private pipe is 1 MiB); a
// larger length is a corrupt stream, not a large allocation.
inline constexpr std::uint32_t kBulkMaxPayload = 4u << 20;

enum class BulkFrameKind : std::uint16_t { kData = 1, kEnd = 2, kCredit = 3 };

struct BulkFrameHeader {
  std::uint32_t stream = 0;
  std::uint32_t length = 0;
  BulkFrameKind kind = BulkFrameKind::kData;
};

// The 16 bytes of `header`.
std::string EncodeBulkHeader(const BulkFrameHeader& header);

// A push parser for one direction of the port: bytes in any slicing, frames
// out. Data payloads are handed out in the pieces they arrive in (nothing is
// buffered beyond a partial header). After an error the parser stays failed:
// a byte stream with a bad header cannot be trusted again.
class BulkFrameParser {
 public:
  struct Handler {
    std::function<void(std::uint32_t stream, std::string_view payload_piece)> data;
    std::function<void(std::uint32_t stream)> end;
    std::function<void(std::uint32_t stream, std::uint32_t granted)> credit;
  };
  explicit BulkFrameParser(Handler handler) : handler_(std::move(handler)) {}

  // Consumes `bytes`; false once the stream is corrupt (see error()).
  bool Feed(std::string_view bytes);
  bool failed() const { return !error_.empty(); }
  // What was wrong and at which byte offset of the stream.
  const std::string& error() const { return error_; }
  // Inside a frame (a partial header or an unfinished payload).
  bool mid_frame() const { return header_fill_ > 0 || payload_left_ > 0; }

 private:
  bool Fail(std::string what);
  bool DecodeHeader();

  Handler handler_;
  unsigned char header_[kBulkHeaderBytes] = {};
  std::size_t header_fill_ = 0;
  std::uint32_t payload_stream_ = 0;
  std::uint32_t payload_left_ = 0;
  std::uint64_t offset_ = 0;  // bytes consumed so far, for error texts
  std::string error_;
};

}  // namespace uvmshim
