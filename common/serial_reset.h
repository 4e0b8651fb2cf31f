// The reset handshake that starts a host connection on a virtio-serial port.
//
// Why: a port is one byte stream shared by every host connection in turn.
// Bytes the guest's previous gRPC connection wrote after its host left can
// reach the next host (QEMU queues them once the new host is connected), so
// the new client's first "server" bytes are the tail of an old connection and
// its HTTP/2 handshake fails; each retry can meet the tail of the attempt
// before. With the handshake the host writes
//     "UVMSHIM-RESET <16 hex digits>\n"
// and reads, discarding everything before it, up to
//     "UVMSHIM-READY <the same digits>\n"
// which the guest's bridge writes only after it closed the old gRPC
// connection and before the new one's first byte: what follows is the new
// connection's and nothing else. (A client without the handshake still works
// as before; the shim's own agent connection, the first on its port, needs
// none.)
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace uvmshim::serial {

inline constexpr std::string_view kResetPrefix = "UVMSHIM-RESET ";
inline constexpr std::string_view kReadyPrefix = "UVMSHIM-READY ";
inline constexpr std::size_t kNonceDigits = 16;
inline constexpr std::size_t kLineSize = kResetPrefix.size() + kNonceDigits + 1;  // same for READY

inline std::string ResetLine(std::string_view nonce) { return std::string(kResetPrefix).append(nonce) + "\n"; }
inline std::string ReadyLine(std::string_view nonce) { return std::string(kReadyPrefix).append(nonce) + "\n"; }

// The nonce of a reset line at the start of `data`, if there is one.
inline std::optional<std::string> ParseResetLine(const char* data, std::size_t size) {
  if (size < kLineSize || std::string_view(data, kResetPrefix.size()) != kResetPrefix) return std::nullopt;
  if (data[kLineSize - 1] != '\n') return std::nullopt;
  std::string nonce(data + kResetPrefix.size(), kNonceDigits);
  for (char c : nonce)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  return nonce;
}

}  // namespace uvmshim::serial
