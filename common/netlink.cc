#include "common/netlink.h"

#include <net/if.h>  // before linux/*.h: they defer to it
#include <arpa/inet.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sched.h>

#include <cerrno>
#include <cstdio>
#include <exception>
#include <thread>
#include <cstring>
#include <utility>

namespace uvmshim::netlink {

namespace {

std::string WithErrno(const std::string& what, int error) { return what + ": " + std::strerror(error); }

}  // namespace

Message::Message(std::uint16_t type, std::uint16_t flags) {
  Reserve(NLMSG_HDRLEN);
  header()->nlmsg_type = type;
  header()->nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | flags);
}

std::size_t Message::Reserve(std::size_t size) {
  const std::size_t at = buffer_.size();
  buffer_.resize(at + NLMSG_ALIGN(size), 0);
  header()->nlmsg_len = static_cast<std::uint32_t>(buffer_.size());
  return at;
}

void Message::Put(std::uint16_t type, const void* data, std::size_t size) {
  const std::size_t at = Reserve(RTA_LENGTH(size));
  auto* attr = reinterpret_cast<rtattr*>(buffer_.data() + at);
  attr->rta_type = type;
  attr->rta_len = static_cast<unsigned short>(RTA_LENGTH(size));
  if (size) std::memcpy(RTA_DATA(attr), data, size);
}

void Message::PutString(std::uint16_t type, std::string_view text) {
  std::string copy(text);
  Put(type, copy.c_str(), copy.size() + 1);
}

std::size_t Message::Begin(std::uint16_t type) {
  const std::size_t at = buffer_.size();
  Put(static_cast<std::uint16_t>(type | NLA_F_NESTED), nullptr, 0);
  return at;
}

void Message::End(std::size_t begin) {
  auto* attr = reinterpret_cast<rtattr*>(buffer_.data() + begin);
  attr->rta_len = static_cast<unsigned short>(buffer_.size() - begin);
}

Attributes ParseAttributes(const void* data, std::size_t size) {
  Attributes out;
  auto* attr = static_cast<const rtattr*>(data);
  int remaining = static_cast<int>(size);
  for (; RTA_OK(attr, remaining); attr = RTA_NEXT(attr, remaining))
    out[static_cast<std::uint16_t>(attr->rta_type & NLA_TYPE_MASK)] =
        std::string_view(static_cast<const char*>(RTA_DATA(attr)), RTA_PAYLOAD(attr));
  return out;
}

Attributes AttributesOf(const nlmsghdr* message, std::size_t header_size) {
  const std::size_t offset = NLMSG_HDRLEN + NLMSG_ALIGN(header_size);
  if (message->nlmsg_len < offset) return {};
  return ParseAttributes(reinterpret_cast<const char*>(message) + offset, message->nlmsg_len - offset);
}

std::uint32_t U32Of(std::string_view payload) {
  std::uint32_t value = 0;
  if (payload.size() >= sizeof value) std::memcpy(&value, payload.data(), sizeof value);
  return value;
}

std::string StringOf(std::string_view payload) { return std::string(payload.substr(0, payload.find('\0'))); }

Socket::Socket() {
  fd_ = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd_ < 0) throw NetlinkError(WithErrno("netlink socket", errno), errno);
  // Errors carry only the header of the failed request, not a copy of it.
  const int one = 1;
  ::setsockopt(fd_, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  ::setsockopt(fd_, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
}

Socket::~Socket() {
  if (fd_ >= 0) ::close(fd_);
}

Socket::Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)), sequence_(other.sequence_) {}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    sequence_ = other.sequence_;
  }
  return *this;
}

void Socket::Send(Message& message, const std::string& what) {
  message.header()->nlmsg_seq = ++sequence_;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  for (;;) {
    const ssize_t sent = ::sendto(fd_, message.header(), message.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
                                  sizeof kernel);
    if (sent >= 0) return;
    if (errno != EINTR) throw NetlinkError(WithErrno(what, errno), errno);
  }
}

namespace {

// Reads answers to `sequence` and hands them to `each`; returns at the ack
// (NLMSG_ERROR with 0) or NLMSG_DONE, throws on an error answer.
void Receive(int fd, std::uint32_t sequence, const std::string& what,
             const std::function<void(const nlmsghdr*)>& each) {
  std::vector<char> buffer(64 * 1024);
  for (;;) {
    const ssize_t got = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw NetlinkError(WithErrno(what, errno), errno);
    }
    int remaining = static_cast<int>(got);
    for (auto* message = reinterpret_cast<const nlmsghdr*>(buffer.data()); NLMSG_OK(message, remaining);
         message = NLMSG_NEXT(message, remaining)) {
      if (message->nlmsg_seq != sequence) continue;  // a late answer to an earlier request
      if (message->nlmsg_type == NLMSG_DONE) return;
      if (message->nlmsg_type == NLMSG_ERROR) {
        const auto* error = static_cast<const nlmsgerr*>(NLMSG_DATA(message));
        if (error->error == 0) return;
        std::string text = WithErrno(what, -error->error);
        // The kernel's own words (extended ack), e.g. "Device does not exist".
        if (message->nlmsg_flags & NLM_F_ACK_TLVS) {
          const std::size_t offset = NLMSG_HDRLEN + sizeof(nlmsgerr);
          if (message->nlmsg_len > offset) {
            auto attrs = ParseAttributes(reinterpret_cast<const char*>(message) + offset, message->nlmsg_len - offset);
            if (auto it = attrs.find(NLMSGERR_ATTR_MSG); it != attrs.end()) text += " (" + StringOf(it->second) + ")";
          }
        }
        throw NetlinkError(text, -error->error);
      }
      each(message);
    }
  }
}

}  // namespace

void Socket::Request(Message& message, const std::string& what) {
  message.header()->nlmsg_flags |= NLM_F_ACK;
  Send(message, what);
  Receive(fd_, sequence_, what, [](const nlmsghdr*) {});
}

void Socket::Dump(Message& message, const std::string& what, const std::function<void(const nlmsghdr*)>& each) {
  message.header()->nlmsg_flags |= NLM_F_DUMP;
  Send(message, what);
  Receive(fd_, sequence_, what, each);
}

std::optional<Mac> ParseMac(std::string_view text) {
  Mac mac{};
  if (text.size() != 17) return std::nullopt;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < 6; ++i) {
    const int high = hex(text[i * 3]), low = hex(text[i * 3 + 1]);
    if (high < 0 || low < 0 || (i < 5 && text[i * 3 + 2] != ':')) return std::nullopt;
    mac[i] = static_cast<unsigned char>(high * 16 + low);
  }
  return mac;
}

std::string FormatMac(std::string_view bytes) {
  if (bytes.size() != 6) return {};
  char text[18];
  std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", static_cast<unsigned char>(bytes[0]),
                static_cast<unsigned char>(bytes[1]), static_cast<unsigned char>(bytes[2]),
                static_cast<unsigned char>(bytes[3]), static_cast<unsigned char>(bytes[4]),
                static_cast<unsigned char>(bytes[5]));
  return text;
}

std::optional<IpAddressBytes> ParseIp(const std::string& text) {
  IpAddressBytes ip;
  for (int family : {AF_INET, AF_INET6}) {
    if (::inet_pton(family, text.c_str(), ip.bytes.data()) == 1) {
      ip.family = family;
      return ip;
    }
  }
  return std::nullopt;
}

std::string FormatIp(int family, std::string_view bytes) {
  if (bytes.size() != (family == AF_INET6 ? 16u : family == AF_INET ? 4u : 0u)) return {};
  char text[INET6_ADDRSTRLEN];
  return ::inet_ntop(family, bytes.data(), text, sizeof text) ? text : "";
}

void RunInNetworkNamespace(int netns_fd, const std::function<void()>& work) {
  std::exception_ptr failure;
  std::thread([&] {
    try {
      if (::setns(netns_fd, CLONE_NEWNET) != 0) throw NetlinkError(WithErrno("join network namespace", errno), errno);
      work();
    } catch (...) {
      failure = std::current_exception();
    }
  }).join();
  if (failure) std::rethrow_exception(failure);
}

Message LinkUpMessage(int index, std::uint32_t mtu) {
  Message message(RTM_NEWLINK, 0);
  ifinfomsg info{};
  info.ifi_index = index;
  info.ifi_flags = IFF_UP;
  info.ifi_change = IFF_UP;
  message.Fixed(info);
  if (mtu) message.PutU32(IFLA_MTU, mtu);
  return message;
}

}  // namespace uvmshim::netlink
