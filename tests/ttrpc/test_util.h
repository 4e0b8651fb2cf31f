// Helpers for the ttrpc tests: a private temp dir, raw socket I/O with
// timeouts, and frame reading without the library's decoder.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "tests/support/temp_dir.h"
#include "ttrpc/frame.h"
#include "ttrpc/socket.h"

namespace uvmshim::ttrpc::testing {

// The shared private temp dir, plus a socket path inside it.
class TempDir : public uvmshim::testing::TempDir {
 public:
  TempDir() : uvmshim::testing::TempDir("ttrpc-test") {}
  std::string Socket(const std::string& name = "t.sock") const { return (path() / name).string(); }
};

// Reads exactly n bytes or returns nullopt on EOF/error/timeout.
inline std::optional<std::string> ReadExactly(int fd, std::size_t n,
                                              std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < n) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                              std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    char buf[65536];
    const ssize_t r = ::read(fd, buf, std::min(sizeof buf, n - out.size()));
    if (r <= 0) return std::nullopt;
    out.append(buf, static_cast<std::size_t>(r));
  }
  return out;
}

inline std::optional<Frame> ReadFrame(int fd, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto header = ReadExactly(fd, kFrameHeaderSize, timeout);
  if (!header) return std::nullopt;
  Frame f;
  f.header = DecodeFrameHeader(reinterpret_cast<const std::uint8_t*>(header->data()));
  auto body = ReadExactly(fd, f.header.length, timeout);
  if (!body) return std::nullopt;
  f.payload = std::move(*body);
  return f;
}

// True when the peer closed the connection within `timeout` (read returns 0 or an error).
inline bool PeerClosed(int fd, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                              std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[4096];
    const ssize_t r = ::read(fd, buf, sizeof buf);
    if (r <= 0) return true;  // other data (e.g. an error reply) is skipped
  }
}

inline void SendRaw(int fd, std::string_view bytes) { ASSERT_EQ(SendAll(fd, bytes), 0); }

}  // namespace uvmshim::ttrpc::testing
