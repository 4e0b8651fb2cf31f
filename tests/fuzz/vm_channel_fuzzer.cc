// libFuzzer target: the agent's side of the utility VM channel. Host bytes
// over virtio-serial reach the serial bridge, which tracks the HTTP/2
// client's frames (guest-agent/vm/http2_frames.h) to tell a new connection's
// preface from the middle of a frame; and the agent's listen addresses come
// from the kernel command line (kernel_cmdline.h), parsed with
// ParseListenAddress. Input: byte 0 picks the read size; the bytes are fed in
// reads of that size, and a reference model (one byte at a time) must agree
// with the tracker after every read. The same bytes are parsed as a command line.
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include "guest-agent/listen_address.h"
#include "guest-agent/vm/http2_frames.h"
#include "guest-agent/vm/kernel_cmdline.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace uvmshim::agent;
using uvmshim::fuzz::Check;

// The same state machine, written the slow obvious way.
struct Reference {
  std::size_t preface_left = vm::kHttp2ClientPreface.size();
  std::size_t header_len = 0;
  unsigned char header[9] = {};
  std::size_t payload_left = 0;
  void Byte(unsigned char c) {
    if (preface_left > 0) {
      --preface_left;
    } else if (payload_left > 0) {
      --payload_left;
    } else {
      header[header_len++] = c;
      if (header_len == 9) {
        payload_left = (std::size_t{header[0]} << 16) | (std::size_t{header[1]} << 8) | header[2];
        header_len = 0;
      }
    }
  }
  bool AtBoundary() const { return preface_left == 0 && header_len == 0 && payload_left == 0; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t chunk = (data[0] & 0x3f) + 1;
  const char* bytes = reinterpret_cast<const char*>(data + 1);
  const std::size_t length = size - 1;
  vm::Http2ClientFrames frames;
  Reference reference;
  for (std::size_t at = 0; at < length; at += chunk) {
    const std::size_t n = std::min(chunk, length - at);
    // The bridge's rule: a read that starts with the preface at a frame
    // boundary is a new client.
    if (frames.AtFrameBoundary() && vm::StartsWithHttp2Preface(bytes + at, n)) {
      frames.StartConnection();
      reference = Reference();
    }
    frames.Consume(bytes + at, n);
    for (std::size_t i = 0; i < n; ++i) reference.Byte(static_cast<unsigned char>(bytes[at + i]));
    Check(frames.AtFrameBoundary() == reference.AtBoundary(), "frame tracker disagrees with the reference");
  }
  const std::string_view cmdline(bytes, length);
  (void)vm::SplitKernelCmdline(cmdline);
  try {
    const auto settings = vm::ParseVmSettings(cmdline);
    for (const auto& address : settings.listen) {
      try {
        ParseListenAddress(address);
      } catch (const std::invalid_argument&) {
      }
    }
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
