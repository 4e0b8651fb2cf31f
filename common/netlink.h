// A small rtnetlink (NETLINK_ROUTE) client shared by the shim (reading a
// pod's network namespace, tap + tc redirect) and the guest agent
// (configuring the pod's NIC). Std and Linux headers only: the static agent
// links it too.
//
// A netlink socket belongs to the network namespace its creator was in when
// it was created: open the Socket inside the namespace (a thread that
// setns()), then use it from any thread.
#pragma once

#include <linux/netlink.h>

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <cstring>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace uvmshim::netlink {

// what() names the request; error() is the kernel's errno (0 for protocol errors).
class NetlinkError : public std::runtime_error {
 public:
  NetlinkError(const std::string& what, int error) : std::runtime_error(what), error_(error) {}
  int error() const { return error_; }

 private:
  int error_;
};

// One request being built: nlmsghdr, a fixed header (ifinfomsg, tcmsg...),
// then attributes, nested ones through Begin/End.
class Message {
 public:
  Message(std::uint16_t type, std::uint16_t flags);
  // Call once, right after construction, with the header filled in.
  template <class Header>
  void Fixed(const Header& header) {
    const std::size_t at = Reserve(sizeof(Header));
    std::memcpy(buffer_.data() + at, &header, sizeof(Header));
  }
  void Put(std::uint16_t type, const void* data, std::size_t size);
  void PutU32(std::uint16_t type, std::uint32_t value) { Put(type, &value, sizeof value); }
  void PutString(std::uint16_t type, std::string_view text);  // NUL-terminated
  std::size_t Begin(std::uint16_t type);                      // a nested attribute
  void End(std::size_t begin);
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buffer_.data()); }
  std::size_t size() const { return buffer_.size(); }

 private:
  std::size_t Reserve(std::size_t size);  // aligned, zeroed; returns its offset
  std::vector<unsigned char> buffer_;
};

// RTM_NEWLINK bringing link `index` up, with IFLA_MTU when mtu != 0; callers
// may add attributes before sending it.
Message LinkUpMessage(int index, std::uint32_t mtu);

// The attributes of a message body (after its fixed header): type -> payload.
using Attributes = std::map<std::uint16_t, std::string_view>;
Attributes ParseAttributes(const void* data, std::size_t size);
// Attributes following the fixed header `header_size` of `message`.
Attributes AttributesOf(const nlmsghdr* message, std::size_t header_size);
std::uint32_t U32Of(std::string_view payload);  // 0 when too short
std::string StringOf(std::string_view payload);  // up to the NUL

class Socket {
 public:
  Socket();  // NETLINK_ROUTE in the calling thread's network namespace
  ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  Socket(Socket&& other) noexcept;
  Socket& operator=(Socket&& other) noexcept;

  // Sends with NLM_F_ACK and waits for it; throws NetlinkError "<what>: <strerror>".
  void Request(Message& message, const std::string& what);
  // A NLM_F_DUMP request: calls `each` for every answer until NLMSG_DONE.
  void Dump(Message& message, const std::string& what, const std::function<void(const nlmsghdr*)>& each);

 private:
  void Send(Message& message, const std::string& what);
  int fd_ = -1;
  std::uint32_t sequence_ = 0;
};

// Text forms of link-layer and IP addresses.
using Mac = std::array<unsigned char, 6>;
std::optional<Mac> ParseMac(std::string_view text);  // "02:42:0a:58:00:05"
std::string FormatMac(std::string_view bytes);       // IFLA_ADDRESS payload; "" unless 6 bytes
struct IpAddressBytes {
  int family = 0;                        // AF_INET or AF_INET6
  std::array<unsigned char, 16> bytes{};
  std::size_t size() const { return family == AF_INET6 ? 16 : 4; }
};
std::optional<IpAddressBytes> ParseIp(const std::string& text);
std::string FormatIp(int family, std::string_view bytes);  // "" for a wrong size

// Runs `work` on a new thread that first joins the network namespace
// `netns_fd` (setns), so no other thread of the process ever changes
// namespace; rethrows what `work` threw. Sockets `work` creates stay in that
// namespace after the thread ended.
void RunInNetworkNamespace(int netns_fd, const std::function<void()>& work);

}  // namespace uvmshim::netlink
