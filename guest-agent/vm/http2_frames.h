// Follows the frames of the client side of an HTTP/2 byte stream (the
// 24-byte connection preface, then 9-byte frame headers and their payloads)
// so the serial bridge knows where frames begin.
//
// Why: virtio_console reports a host disconnect only as a state (POLLHUP while
// no host is connected). When a host client closes and the next one connects
// before the bridge polls again, the guest never sees the gap and the new
// client's bytes simply continue the stream. A new client always starts with
// the preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", and QEMU puts the first bytes
// of a new chardev connection at the start of a fresh virtqueue buffer, i.e.
// at the start of a read() from the port. A read that starts with the preface
// where a frame header is due is therefore a new connection: as a frame
// header, "PRI" would announce a 5 MiB frame, over the 4 MiB the agent allows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace uvmshim::agent::vm {

inline constexpr std::string_view kHttp2ClientPreface{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24};

class Http2ClientFrames {
 public:
  // A new connection: the next bytes are the preface.
  void StartConnection() { *this = Http2ClientFrames(); }
  void Consume(const char* data, std::size_t size);
  // After the preface, between two frames.
  bool AtFrameBoundary() const { return preface_left_ == 0 && header_len_ == 0 && payload_left_ == 0; }

 private:
  std::size_t preface_left_ = kHttp2ClientPreface.size();
  unsigned char header_[9] = {};
  std::size_t header_len_ = 0;
  std::size_t payload_left_ = 0;
};

// Whether `chunk` begins with the HTTP/2 client preface.
bool StartsWithHttp2Preface(const char* chunk, std::size_t size);

}  // namespace uvmshim::agent::vm
