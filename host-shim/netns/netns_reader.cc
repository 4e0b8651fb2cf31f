#include "netns/netns_reader.h"

#include <net/if.h>  // before linux/*.h: they defer to it
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <stdexcept>

namespace uvmshim::host::netns {
namespace nl = ::uvmshim::netlink;
namespace agentpb = ::uvmshim::agent::v1;

namespace {

// The kind of a link ("veth", "tun", ...) from IFLA_LINKINFO; "" for hardware.
std::string LinkKind(const nl::Attributes& attrs) {
  auto info = attrs.find(IFLA_LINKINFO);
  if (info == attrs.end()) return {};
  auto nested = nl::ParseAttributes(info->second.data(), info->second.size());
  auto kind = nested.find(IFLA_INFO_KIND);
  return kind == nested.end() ? std::string() : nl::StringOf(kind->second);
}

std::vector<PodLink> ReadLinks(nl::Socket& socket) {
  std::vector<PodLink> links;
  std::string refused;
  nl::Message dump(RTM_GETLINK, 0);
  dump.Fixed(ifinfomsg{});
  socket.Dump(dump, "list the pod's interfaces", [&](const nlmsghdr* message) {
    const auto* info = static_cast<const ifinfomsg*>(NLMSG_DATA(message));
    if (info->ifi_flags & IFF_LOOPBACK) return;
    auto attrs = nl::AttributesOf(message, sizeof(ifinfomsg));
    PodLink link;
    link.index = info->ifi_index;
    if (auto it = attrs.find(IFLA_IFNAME); it != attrs.end()) link.name = nl::StringOf(it->second);
    const std::string kind = LinkKind(attrs);
    // A tap is a VM's side of a link (ours, or another runtime's): never a pod interface.
    if (kind == "tun") return;
    if (auto it = attrs.find(IFLA_ADDRESS); it != attrs.end()) link.mac = nl::FormatMac(it->second);
    if (auto it = attrs.find(IFLA_MTU); it != attrs.end()) link.mtu = nl::U32Of(it->second);
    if (link.mac.empty() && refused.empty())
      refused = fmt::format("interface {} ({}) has no Ethernet address: a utility VM cannot carry it", link.name,
                            kind.empty() ? "no link kind" : kind);
    links.push_back(link);
  });
  if (!refused.empty()) throw std::invalid_argument(refused);
  return links;
}

void ReadAddresses(nl::Socket& socket, const std::map<int, agentpb::NetInterface*>& by_index) {
  nl::Message dump(RTM_GETADDR, 0);
  dump.Fixed(ifaddrmsg{});
  socket.Dump(dump, "list the pod's addresses", [&](const nlmsghdr* message) {
    const auto* info = static_cast<const ifaddrmsg*>(NLMSG_DATA(message));
    auto nic = by_index.find(static_cast<int>(info->ifa_index));
    if (nic == by_index.end()) return;
    // Link-local addresses come from the MAC: the guest makes the same ones.
    if (info->ifa_scope == RT_SCOPE_LINK || info->ifa_scope == RT_SCOPE_HOST) return;
    auto attrs = nl::AttributesOf(message, sizeof(ifaddrmsg));
    auto it = attrs.find(IFA_LOCAL);
    if (it == attrs.end()) it = attrs.find(IFA_ADDRESS);
    if (it == attrs.end()) return;
    const std::string text = nl::FormatIp(info->ifa_family, it->second);
    if (text.empty()) return;
    auto* address = nic->second->add_addresses();
    address->set_address(text);
    address->set_prefix_length(info->ifa_prefixlen);
  });
}

void ReadRoutes(nl::Socket& socket, const std::map<int, agentpb::NetInterface*>& by_index,
                agentpb::PodNetwork& network) {
  nl::Message dump(RTM_GETROUTE, 0);
  dump.Fixed(rtmsg{});
  socket.Dump(dump, "list the pod's routes", [&](const nlmsghdr* message) {
    const auto* info = static_cast<const rtmsg*>(NLMSG_DATA(message));
    auto attrs = nl::AttributesOf(message, sizeof(rtmsg));
    std::uint32_t table = info->rtm_table;
    if (auto it = attrs.find(RTA_TABLE); it != attrs.end()) table = nl::U32Of(it->second);
    // The kernel makes the prefix routes of the addresses itself (proto kernel).
    if (table != RT_TABLE_MAIN || info->rtm_type != RTN_UNICAST || info->rtm_protocol == RTPROT_KERNEL) return;
    if (info->rtm_family != AF_INET && info->rtm_family != AF_INET6) return;
    agentpb::NetRoute route;
    route.set_ipv6(info->rtm_family == AF_INET6);
    if (auto it = attrs.find(RTA_OIF); it != attrs.end()) {
      auto nic = by_index.find(static_cast<int>(nl::U32Of(it->second)));
      if (nic == by_index.end()) return;  // through loopback or a tap: not the pod's
      route.set_device(nic->second->name());
    }
    if (auto it = attrs.find(RTA_DST); it != attrs.end()) {
      route.set_destination(nl::FormatIp(info->rtm_family, it->second));
      route.set_prefix_length(info->rtm_dst_len);
    }
    if (auto it = attrs.find(RTA_GATEWAY); it != attrs.end())
      route.set_gateway(nl::FormatIp(info->rtm_family, it->second));
    if (auto it = attrs.find(RTA_PRIORITY); it != attrs.end()) route.set_metric(nl::U32Of(it->second));
    if (info->rtm_scope != RT_SCOPE_UNIVERSE) route.set_scope(info->rtm_scope);
    if (route.gateway().empty() && route.device().empty()) return;  // multipath: not carried
    *network.add_routes() = route;
  });
}

}  // namespace

PodNetnsContents ReadPodNetns(nl::Socket& socket) {
  PodNetnsContents contents;
  contents.links = ReadLinks(socket);
  std::map<int, agentpb::NetInterface*> by_index;
  for (const auto& link : contents.links) {
    auto* nic = contents.network.add_interfaces();
    nic->set_name(link.name);
    nic->set_mac(link.mac);
    nic->set_mtu(link.mtu);
    by_index[link.index] = nic;
  }
  ReadAddresses(socket, by_index);
  ReadRoutes(socket, by_index, contents.network);
  // Routes through a gateway need the on-link routes before them.
  std::stable_partition(contents.network.mutable_routes()->begin(), contents.network.mutable_routes()->end(),
                        [](const agentpb::NetRoute& route) { return route.gateway().empty(); });
  return contents;
}

}  // namespace uvmshim::host::netns
