// Where uvm-agent listens: `unix:///path`, `vsock://PORT`, `serial:///dev/vportNpM`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace uvmshim::agent {

struct ListenAddress {
  enum class Kind { kUnix, kVsock, kSerial };
  Kind kind = Kind::kUnix;
  std::string path;    // kUnix: socket file; kSerial: character device
  uint32_t port = 0;   // kVsock
};

// Throws std::invalid_argument with a message naming the address.
ListenAddress ParseListenAddress(std::string_view text);

std::string ToString(const ListenAddress& address);

}  // namespace uvmshim::agent
