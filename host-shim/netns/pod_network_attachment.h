// A hyperv pod's network namespace (CNI's, named by the sandbox spec's
// linux.namespaces network path) attached to its utility VM: what the agent
// must configure in the guest, and one tap + tc redirect per interface whose
// fds QEMU inherits (tap_redirect.h). Everything it creates lives in the
// pod's namespace: the taps end with QEMU, the filters with the namespace
// (and are removed here when the sandbox ends before it).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent.pb.h"
#include "common/netlink.h"
#include "uvm/utility_vm.h"

namespace uvmshim::host::netns {

// True when `path` names the network namespace of host PID 1 or of this
// process (the shim's own, where containerd runs): never given to a VM.
bool IsHostNetns(const std::string& path);

class PodNetworkAttachment {
 public:
  // Reads the namespace at `path` and, for each interface but loopback,
  // creates its tap and filters. `field` names the spec field in errors.
  // Throws std::invalid_argument (cannot be opened, the host's, an interface
  // without MAC, already attached to a VM) or std::runtime_error, leaving
  // nothing behind. No interface but loopback: an attachment with no NIC.
  static std::unique_ptr<PodNetworkAttachment> Attach(const std::string& path, const std::string& field);
  ~PodNetworkAttachment();  // closes the taps still held, removes the filters
  PodNetworkAttachment(const PodNetworkAttachment&) = delete;
  PodNetworkAttachment& operator=(const PodNetworkAttachment&) = delete;

  const std::string& path() const { return path_; }
  const uvmshim::agent::v1::PodNetwork& network() const { return network_; }
  bool has_interfaces() const { return !links_.empty(); }
  // The VM's cards (tap fds valid until CloseTapFds).
  std::vector<uvm::VmNic> nics() const;
  // Once QEMU holds the taps: from then on they live exactly as long as QEMU.
  void CloseTapFds();
  // Removes the redirect filters from the pod's interfaces (idempotent): once
  // the VM has ended they would steer frames to a tap that is gone.
  void RemoveFilters();

 private:
  struct Link {
    int veth_index = 0;
    std::string name;
    std::string mac;
    unsigned mtu = 0;
    int tap_fd = -1;
    bool filtered = false;  // its redirect filters are ours to remove
  };
  PodNetworkAttachment() = default;

  std::string path_;
  netlink::Socket socket_;  // opened inside the pod's namespace
  uvmshim::agent::v1::PodNetwork network_;
  std::vector<Link> links_;
};

}  // namespace uvmshim::host::netns
