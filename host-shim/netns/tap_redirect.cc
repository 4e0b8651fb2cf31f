#include "netns/tap_redirect.h"

#include <net/if.h>  // before linux/*.h: they defer to it
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <arpa/inet.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace uvmshim::host::netns {
namespace nl = ::uvmshim::netlink;

namespace {

constexpr std::uint32_t kIngressHandle = 0xFFFF0000U;  // "ffff:"
constexpr std::uint32_t kFilterPriority = 49152;        // tc's default for the first filter

void SetLink(nl::Socket& socket, int index, unsigned mtu, const std::string& what) {
  nl::Message message = nl::LinkUpMessage(index, mtu);
  // The tap only carries the pod's frames: no link-local address, no router
  // solicitations of its own towards the VM.
  const auto spec = message.Begin(IFLA_AF_SPEC);
  const auto inet6 = message.Begin(AF_INET6);
  const std::uint8_t none = IN6_ADDR_GEN_MODE_NONE;
  message.Put(IFLA_INET6_ADDR_GEN_MODE, &none, sizeof none);
  message.End(inet6);
  message.End(spec);
  socket.Request(message, what);
}

// A request about link `index`'s ingress qdisc ("ffff:").
nl::Message IngressQdiscMessage(std::uint16_t type, std::uint16_t flags, int index) {
  nl::Message message(type, flags);
  tcmsg tc{};
  tc.tcm_family = AF_UNSPEC;
  tc.tcm_ifindex = index;
  tc.tcm_handle = kIngressHandle;
  tc.tcm_parent = TC_H_INGRESS;
  message.Fixed(tc);
  return message;
}

void AddIngress(nl::Socket& socket, int index, const std::string& what) {
  nl::Message message = IngressQdiscMessage(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, index);
  message.PutString(TCA_KIND, "ingress");
  socket.Request(message, what);
}

// tc filter add dev <from> parent ffff: protocol all u32 match u8 0 0
//   action mirred egress redirect dev <to>
void AddRedirect(nl::Socket& socket, int from, int to, const std::string& what) {
  nl::Message message(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL);
  tcmsg tc{};
  tc.tcm_family = AF_UNSPEC;
  tc.tcm_ifindex = from;
  tc.tcm_parent = kIngressHandle;
  tc.tcm_info = TC_H_MAKE(kFilterPriority << 16, htons(ETH_P_ALL));
  message.Fixed(tc);
  message.PutString(TCA_KIND, "u32");
  const auto options = message.Begin(TCA_OPTIONS);
  // One key with mask 0 and value 0 ("match u8 0 0"): every frame matches.
  unsigned char selector[sizeof(tc_u32_sel) + sizeof(tc_u32_key)] = {};
  tc_u32_sel sel{};
  sel.flags = TC_U32_TERMINAL;
  sel.nkeys = 1;
  std::memcpy(selector, &sel, sizeof sel);
  message.Put(TCA_U32_SEL, selector, sizeof selector);
  const auto actions = message.Begin(TCA_U32_ACT);
  const auto first = message.Begin(1);
  message.PutString(TCA_ACT_KIND, "mirred");
  const auto action_options = message.Begin(TCA_ACT_OPTIONS);
  tc_mirred mirred{};
  mirred.action = TC_ACT_STOLEN;
  mirred.eaction = TCA_EGRESS_REDIR;
  mirred.ifindex = static_cast<std::uint32_t>(to);
  message.Put(TCA_MIRRED_PARMS, &mirred, sizeof mirred);
  message.End(action_options);
  message.End(first);
  message.End(actions);
  message.End(options);
  socket.Request(message, what);
}

}  // namespace

int CreateTap(nl::Socket& socket, const std::string& tap_name, unsigned mtu) {
  const int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(fmt::format("open /dev/net/tun: {}", std::strerror(errno)));
  ifreq request{};
  std::strncpy(request.ifr_name, tap_name.c_str(), IFNAMSIZ - 1);
  request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (::ioctl(fd, TUNSETIFF, &request) != 0) {
    const int error = errno;
    ::close(fd);
    throw std::runtime_error(fmt::format("create tap {}: {}", tap_name, std::strerror(error)));
  }
  try {
    const int index = static_cast<int>(::if_nametoindex(request.ifr_name));
    if (index <= 0) throw std::runtime_error(fmt::format("tap {}: {}", tap_name, std::strerror(errno)));
    SetLink(socket, index, mtu, fmt::format("tap {}: set mtu {} and up", tap_name, mtu));
  } catch (...) {
    ::close(fd);
    throw;
  }
  return fd;
}

void RedirectBothWays(nl::Socket& socket, int veth_index, int tap_index, const std::string& what) {
  AddIngress(socket, veth_index, what + ": ingress qdisc on the interface");
  try {
    AddIngress(socket, tap_index, what + ": ingress qdisc on the tap");
    AddRedirect(socket, veth_index, tap_index, what + ": redirect interface -> tap");
    AddRedirect(socket, tap_index, veth_index, what + ": redirect tap -> interface");
  } catch (...) {
    RemoveIngress(socket, veth_index);  // ours: it was created above (the tap's goes with the tap)
    throw;
  }
}

bool RemoveIngress(nl::Socket& socket, int index) {
  nl::Message message = IngressQdiscMessage(RTM_DELQDISC, 0, index);
  try {
    socket.Request(message, "remove the ingress qdisc");
    return true;
  } catch (const nl::NetlinkError&) {
    return false;  // none, or the link is gone
  }
}

}  // namespace uvmshim::host::netns
