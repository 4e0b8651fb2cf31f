#include "guest-agent/vm/http2_frames.h"

#include <algorithm>
#include <cstring>

namespace uvmshim::agent::vm {

void Http2ClientFrames::Consume(const char* data, std::size_t size) {
  std::size_t i = 0;
  while (i < size) {
    if (preface_left_ > 0) {
      const std::size_t take = std::min(preface_left_, size - i);
      preface_left_ -= take;
      i += take;
    } else if (payload_left_ > 0) {
      const std::size_t take = std::min(payload_left_, size - i);
      payload_left_ -= take;
      i += take;
    } else {
      header_[header_len_++] = static_cast<unsigned char>(data[i++]);
      if (header_len_ == sizeof header_) {
        payload_left_ = (std::size_t{header_[0]} << 16) | (std::size_t{header_[1]} << 8) | header_[2];
        header_len_ = 0;
      }
    }
  }
}

bool StartsWithHttp2Preface(const char* chunk, std::size_t size) {
  return size >= kHttp2ClientPreface.size() &&
         std::memcmp(chunk, kHttp2ClientPreface.data(), kHttp2ClientPreface.size()) == 0;
}

}  // namespace uvmshim::agent::vm
