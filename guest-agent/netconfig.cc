#include "guest-agent/netconfig.h"

#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>

#include "common/netlink.h"
#include "common/unique_fd.h"

namespace uvmshim::agent {
namespace nl = ::uvmshim::netlink;
using PodNetworkMsg = ::uvmshim::agent::v1::PodNetwork;

namespace {

std::invalid_argument Bad(const std::string& field, const std::string& why) {
  return std::invalid_argument("network." + field + ": " + why);
}

bool ValidInterfaceName(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ || name == "." || name == ".." || name == "lo") return false;
  for (char c : name)
    if (c == '/' || c == ':' || c <= ' ' || c == 0x7f) return false;
  return true;
}

void CheckAddress(const std::string& field, const std::string& text, std::uint32_t prefix, bool allow_empty) {
  if (text.empty() && allow_empty) return;
  auto ip = nl::ParseIp(text);
  if (!ip) throw Bad(field, "\"" + text + "\" is not an IPv4 or IPv6 address");
  if (prefix > ip->size() * 8)
    throw Bad(field, "prefix length " + std::to_string(prefix) + " is out of range for " + text);
}

// The links of the calling thread's namespace: MAC -> ifindex.
std::map<std::string, int> LinksByMac(nl::Socket& socket) {
  std::map<std::string, int> links;
  nl::Message dump(RTM_GETLINK, 0);
  dump.Fixed(ifinfomsg{});
  socket.Dump(dump, "list network interfaces", [&](const nlmsghdr* message) {
    const auto* info = static_cast<const ifinfomsg*>(NLMSG_DATA(message));
    auto attrs = nl::AttributesOf(message, sizeof(ifinfomsg));
    if (auto it = attrs.find(IFLA_ADDRESS); it != attrs.end())
      if (auto mac = nl::FormatMac(it->second); !mac.empty()) links.emplace(mac, info->ifi_index);
  });
  return links;
}

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

void SetUp(nl::Socket& socket, int index, std::uint32_t mtu, const std::string& what) {
  nl::Message message = nl::LinkUpMessage(index, mtu);
  socket.Request(message, what);
}

void AddAddress(nl::Socket& socket, int index, const v1::IpAddress& address, const std::string& what) {
  const auto ip = *nl::ParseIp(address.address());
  nl::Message message(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
  ifaddrmsg header{};
  header.ifa_family = static_cast<unsigned char>(ip.family);
  header.ifa_prefixlen = static_cast<unsigned char>(address.prefix_length());
  header.ifa_index = static_cast<unsigned>(index);
  message.Fixed(header);
  message.Put(IFA_LOCAL, ip.bytes.data(), ip.size());
  message.Put(IFA_ADDRESS, ip.bytes.data(), ip.size());
  // The address is the pod's, already checked by CNI on the host's side of
  // the link: no duplicate address detection delaying the first packets.
  if (ip.family == AF_INET6) message.PutU32(IFA_FLAGS, IFA_F_NODAD);
  socket.Request(message, what);
}

void AddRoute(nl::Socket& socket, const v1::NetRoute& route, int oif, const std::string& what) {
  std::optional<nl::IpAddressBytes> destination, gateway;
  if (!route.destination().empty()) destination = nl::ParseIp(route.destination());
  if (!route.gateway().empty()) gateway = nl::ParseIp(route.gateway());
  const int family = destination ? destination->family : gateway ? gateway->family : route.ipv6() ? AF_INET6 : AF_INET;
  nl::Message message(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
  rtmsg header{};
  header.rtm_family = static_cast<unsigned char>(family);
  header.rtm_dst_len = static_cast<unsigned char>(destination ? route.prefix_length() : 0);
  header.rtm_table = RT_TABLE_MAIN;
  header.rtm_protocol = RTPROT_BOOT;
  header.rtm_scope = static_cast<unsigned char>(route.scope() ? route.scope() : RT_SCOPE_UNIVERSE);
  header.rtm_type = RTN_UNICAST;
  message.Fixed(header);
  if (destination) message.Put(RTA_DST, destination->bytes.data(), destination->size());
  if (gateway) message.Put(RTA_GATEWAY, gateway->bytes.data(), gateway->size());
  if (oif) message.PutU32(RTA_OIF, static_cast<std::uint32_t>(oif));
  if (route.metric()) message.PutU32(RTA_PRIORITY, route.metric());
  socket.Request(message, what);
}

std::string RouteText(const v1::NetRoute& route) {
  std::string text = route.destination().empty() ? "default"
                                                  : route.destination() + "/" + std::to_string(route.prefix_length());
  if (!route.gateway().empty()) text += " via " + route.gateway();
  if (!route.device().empty()) text += " dev " + route.device();
  return text;
}

}  // namespace

void ValidatePodNetwork(const PodNetworkMsg& network) {
  std::set<std::string> names, macs;
  for (int i = 0; i < network.interfaces_size(); ++i) {
    const auto& nic = network.interfaces(i);
    const std::string field = "interfaces[" + std::to_string(i) + "]";
    if (!ValidInterfaceName(nic.name()))
      throw Bad(field + ".name", "\"" + nic.name() + "\" is not a valid interface name (1-15 characters, not lo)");
    if (!names.insert(nic.name()).second) throw Bad(field + ".name", "\"" + nic.name() + "\" appears twice");
    if (!nl::ParseMac(nic.mac())) throw Bad(field + ".mac", "\"" + nic.mac() + "\" is not a MAC address");
    if (!macs.insert(Lower(nic.mac())).second) throw Bad(field + ".mac", nic.mac() + " appears twice");
    if (nic.mtu() != 0 && (nic.mtu() < 68 || nic.mtu() > 65535))
      throw Bad(field + ".mtu", std::to_string(nic.mtu()) + " is out of range (68-65535)");
    for (int a = 0; a < nic.addresses_size(); ++a)
      CheckAddress(field + ".addresses[" + std::to_string(a) + "]", nic.addresses(a).address(),
                   nic.addresses(a).prefix_length(), false);
  }
  for (int i = 0; i < network.routes_size(); ++i) {
    const auto& route = network.routes(i);
    const std::string field = "routes[" + std::to_string(i) + "]";
    CheckAddress(field + ".destination", route.destination(), route.prefix_length(), true);
    CheckAddress(field + ".gateway", route.gateway(), 0, true);
    if (!route.device().empty() && !names.count(route.device()))
      throw Bad(field + ".device", "\"" + route.device() + "\" is none of the interfaces");
    if (route.gateway().empty() && route.device().empty())
      throw Bad(field, "needs a gateway or a device");
    if (!route.destination().empty() && !route.gateway().empty() &&
        nl::ParseIp(route.destination())->family != nl::ParseIp(route.gateway())->family)
      throw Bad(field, "destination and gateway are of different families");
    if (route.scope() > 255) throw Bad(field + ".scope", std::to_string(route.scope()) + " is out of range");
  }
}

void ConfigurePodNetwork(const PodNetworkMsg& network, pid_t pid) {
  ValidatePodNetwork(network);
  const std::string netns_path = "/proc/" + std::to_string(pid) + "/ns/net";
  UniqueFd netns(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!netns) throw std::runtime_error("open " + netns_path + ": " + std::strerror(errno));

  // In the agent's (the VM's root) namespace: find each NIC by MAC and move
  // it into the pod's namespace under the pod's name.
  nl::Socket root;
  const auto links = LinksByMac(root);
  for (int i = 0; i < network.interfaces_size(); ++i) {
    const auto& nic = network.interfaces(i);
    auto it = links.find(Lower(nic.mac()));
    if (it == links.end())
      throw Bad("interfaces[" + std::to_string(i) + "].mac",
                "no network device with MAC " + nic.mac() + " in the utility VM");
    nl::Message move(RTM_NEWLINK, 0);
    ifinfomsg info{};
    info.ifi_index = it->second;
    move.Fixed(info);
    move.PutU32(IFLA_NET_NS_FD, static_cast<std::uint32_t>(netns.get()));
    move.PutString(IFLA_IFNAME, nic.name());
    root.Request(move, "move " + nic.mac() + " into the pod's network namespace as " + nic.name());
  }

  // In the pod's namespace: MTU, addresses, up, then routes (a gateway must
  // be reachable through an address of an interface that is up).
  nl::RunInNetworkNamespace(netns.get(), [&] {
    nl::Socket pod;
    std::map<std::string, int> index_of;
    const int lo = static_cast<int>(::if_nametoindex("lo"));
    if (lo > 0) SetUp(pod, lo, 0, "bring lo up");
    for (const auto& nic : network.interfaces()) {
      const int index = static_cast<int>(::if_nametoindex(nic.name().c_str()));
      if (index <= 0) throw std::runtime_error("interface " + nic.name() + ": not found after the move");
      index_of[nic.name()] = index;
      for (const auto& address : nic.addresses())
        AddAddress(pod, index, address,
                   "interface " + nic.name() + ": add " + address.address() + "/" +
                       std::to_string(address.prefix_length()));
      SetUp(pod, index, nic.mtu(), "interface " + nic.name() + ": set mtu " + std::to_string(nic.mtu()) + " and up");
    }
    for (const auto& route : network.routes())
      AddRoute(pod, route, route.device().empty() ? 0 : index_of.at(route.device()), "route " + RouteText(route));
  });
  for (const auto& nic : network.interfaces())
    spdlog::info("event=pod_interface_configured name={} mac={} mtu={} addresses={}", nic.name(), nic.mac(), nic.mtu(),
                 nic.addresses_size());
}

}  // namespace uvmshim::agent
