#include "common/bulk_frame.h"

#include <algorithm>

namespace uvmshim {
namespace {

void PutU32(std::string& out, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void PutU16(std::string& out, std::uint16_t value) {
  out.push_back(static_cast<char>(value & 0xff));
  out.push_back(static_cast<char>(value >> 8));
}

std::uint32_t GetU32(const unsigned char* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24;
}

std::uint16_t GetU16(const unsigned char* p) { return static_cast<std::uint16_t>(p[0] | p[1] << 8); }

}  // namespace

std::string EncodeBulkHeader(const BulkFrameHeader& header) {
  std::string out;
  out.reserve(kBulkHeaderBytes);
  PutU32(out, kBulkFrameMagic);
  PutU32(out, header.stream);
  PutU32(out, header.length);
  PutU16(out, static_cast<std::uint16_t>(header.kind));
  PutU16(out, 0);
  return out;
}

bool BulkFrameParser::Fail(std::string what) {
  error_ = "bulk stdio frame at byte " + std::to_string(offset_) + ": " + std::move(what);
  return false;
}

bool BulkFrameParser::DecodeHeader() {
  const std::uint32_t magic = GetU32(header_);
  const std::uint32_t stream = GetU32(header_ + 4);
  const std::uint32_t length = GetU32(header_ + 8);
  const std::uint16_t kind = GetU16(header_ + 12);
  const std::uint16_t flags = GetU16(header_ + 14);
  if (magic != kBulkFrameMagic) return Fail("bad magic " + std::to_string(magic) + " (corrupt stream)");
  if (flags != 0) return Fail("reserved flags " + std::to_string(flags) + " are not 0");
  if (stream == 0) return Fail("stream id 0 is not a stream");
  switch (static_cast<BulkFrameKind>(kind)) {
    case BulkFrameKind::kData:
      if (length == 0) return Fail("empty data frame of stream " + std::to_string(stream));
      if (length > kBulkMaxPayload)
        return Fail("data frame of stream " + std::to_string(stream) + " claims " + std::to_string(length) +
                    " bytes, over the limit of " + std::to_string(kBulkMaxPayload));
      payload_stream_ = stream;
      payload_left_ = length;
      return true;
    case BulkFrameKind::kEnd:
      if (length != 0) return Fail("end frame of stream " + std::to_string(stream) + " has a length");
      if (handler_.end) handler_.end(stream);
      return true;
    case BulkFrameKind::kCredit:
      if (length == 0) return Fail("credit frame of stream " + std::to_string(stream) + " grants nothing");
      if (handler_.credit) handler_.credit(stream, length);
      return true;
  }
  return Fail("unknown frame kind " + std::to_string(kind));
}

bool BulkFrameParser::Feed(std::string_view bytes) {
  if (failed()) return false;
  while (!bytes.empty()) {
    if (payload_left_ > 0) {
      const std::size_t take = std::min<std::size_t>(payload_left_, bytes.size());
      if (handler_.data) handler_.data(payload_stream_, bytes.substr(0, take));
      payload_left_ -= static_cast<std::uint32_t>(take);
      offset_ += take;
      bytes.remove_prefix(take);
      continue;
    }
    const std::size_t take = std::min(kBulkHeaderBytes - header_fill_, bytes.size());
    std::copy_n(bytes.data(), take, header_ + header_fill_);
    header_fill_ += take;
    bytes.remove_prefix(take);
    if (header_fill_ < kBulkHeaderBytes) break;
    header_fill_ = 0;
    if (!DecodeHeader()) return false;
    offset_ += kBulkHeaderBytes;
  }
  return true;
}

}  // namespace uvmshim
