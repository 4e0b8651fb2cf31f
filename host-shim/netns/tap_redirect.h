// The host side of a hyperv pod's link, all inside the pod's network
// namespace (Kata's "tcfilter" design): per pod interface (CNI's veth) a tap
// device whose fd QEMU holds, and two tc ingress filters (u32 match-all +
// mirred egress redirect) passing every frame veth -> tap and tap -> veth.
// The tap is not persistent: it goes away when QEMU's fd closes (kill -9
// included); the filters live on the veth, which dies with the namespace.
#pragma once

#include <string>

#include "common/netlink.h"

namespace uvmshim::host::netns {

// Creates tap `tap_name` (IFF_VNET_HDR, so QEMU can pass offloaded frames)
// in the calling thread's network namespace, with `mtu`, no IPv6 address of
// its own, up. Returns its fd (close-on-exec). Throws std::runtime_error.
int CreateTap(netlink::Socket& socket, const std::string& tap_name, unsigned mtu);

// An ingress qdisc on each side and the two redirect filters. Throws
// NetlinkError ("... File exists" when the link already has an ingress qdisc,
// e.g. it is already attached to another VM), leaving nothing of its own.
void RedirectBothWays(netlink::Socket& socket, int veth_index, int tap_index, const std::string& what);

// Removes the ingress qdisc (and so its filters) of a link; false when it had none.
bool RemoveIngress(netlink::Socket& socket, int index);

}  // namespace uvmshim::host::netns
