// Reads what CNI put into a pod's network namespace: its interfaces (MAC,
// MTU, addresses) and routes, as the agent takes them (agent.proto
// PodNetwork). Run with a netlink socket opened inside that namespace.
#pragma once

#include <string>
#include <vector>

#include "agent.pb.h"
#include "common/netlink.h"

namespace uvmshim::host::netns {

struct PodLink {
  int index = 0;
  std::string name;
  std::string mac;
  unsigned mtu = 0;
};

struct PodNetnsContents {
  std::vector<PodLink> links;             // every interface but loopback
  uvmshim::agent::v1::PodNetwork network; // the same, for the agent
};

// Throws std::invalid_argument naming an interface a VM cannot carry (no
// Ethernet address), NetlinkError when the kernel cannot be asked.
PodNetnsContents ReadPodNetns(netlink::Socket& socket);

}  // namespace uvmshim::host::netns
