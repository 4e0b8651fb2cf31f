#include "guest-agent/listen_address.h"

#include <charconv>
#include <stdexcept>

namespace uvmshim::agent {
namespace {

bool ConsumePrefix(std::string_view& text, std::string_view prefix) {
  if (text.substr(0, prefix.size()) != prefix) return false;
  text.remove_prefix(prefix.size());
  return true;
}

[[noreturn]] void Fail(std::string_view text, std::string_view why) {
  throw std::invalid_argument("listen address \"" + std::string(text) + "\": " + std::string(why));
}

}  // namespace

ListenAddress ParseListenAddress(std::string_view text) {
  std::string_view rest = text;
  ListenAddress address;
  if (ConsumePrefix(rest, "unix://")) {
    address.kind = ListenAddress::Kind::kUnix;
    if (rest.empty() || rest.front() != '/') Fail(text, "expected unix:///absolute/path");
    if (rest.size() > 107) Fail(text, "socket path longer than 107 bytes");
    address.path = rest;
  } else if (ConsumePrefix(rest, "vsock://")) {
    address.kind = ListenAddress::Kind::kVsock;
    uint32_t port = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), port);
    if (rest.empty() || ec != std::errc() || end != rest.data() + rest.size())
      Fail(text, "expected vsock://PORT with a decimal port");
    address.port = port;
  } else if (ConsumePrefix(rest, "serial://")) {
    address.kind = ListenAddress::Kind::kSerial;
    if (rest.empty() || rest.front() != '/') Fail(text, "expected serial:///dev/DEVICE");
    address.path = rest;
  } else {
    Fail(text, "unknown scheme (use unix:///path, vsock://PORT or serial:///dev/vportNpM)");
  }
  return address;
}

std::string ToString(const ListenAddress& address) {
  switch (address.kind) {
    case ListenAddress::Kind::kUnix: return "unix://" + address.path;
    case ListenAddress::Kind::kVsock: return "vsock://" + std::to_string(address.port);
    case ListenAddress::Kind::kSerial: return "serial://" + address.path;
  }
  return {};
}

}  // namespace uvmshim::agent
