// `uvmctl run --network none|bridge [-p HOSTPORT:PORT]`: a container's
// network, the same in both isolation modes (the spec names the namespace; in
// hyperv the shim brings it into the UVM).
//   (default)  no network namespace in the spec: process isolation shares the
//              host's network, hyperv the utility VM's (no device: loopback)
//   none       a new, empty network namespace (loopback only)
//   bridge     a named network namespace <netns_dir>/uvm-<id> that the Debian
//              CNI plugins attach to uvmctl's bridge (bridge + host-local +
//              portmap, loopback), run from the network namespace uvmctl runs
//              in: the bridge, the host end of the veth and portmap's
//              iptables rules live there.
// With none or bridge the container gets /etc/resolv.conf and /etc/hosts from
// files uvmctl writes into its bundle. Everything set up is recorded in
// <RuntimeRoot>/networks/<id>.json before it is made, so `uvmctl rm` can undo
// it after a kill -9 of uvmctl at any point.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "uvmctl/network_config.h"

namespace uvmshim::uvmctl {

enum class NetworkMode { kDefault, kNone, kBridge };

struct NetworkRequest {
  NetworkMode mode = NetworkMode::kDefault;
  std::vector<PortMapping> ports;
  NetworkConfig config;  // loaded for bridge
};

// From --network ("" | none | bridge) and the -p values; loads uvmctl's
// config for bridge. Throws std::invalid_argument naming the flag or the
// config key, before anything exists.
NetworkRequest ParseNetworkRequest(const std::string& mode, const std::vector<std::string>& publish);

// The network of one `uvmctl run`: set up by the constructor (which undoes
// what it did and throws when a step fails), torn down by the destructor
// unless Keep() (run -d: `uvmctl rm` removes it).
class ContainerNetwork {
 public:
  ContainerNetwork(const NetworkRequest& request, const std::string& id, const std::string& hostname,
                   const std::filesystem::path& bundle);
  ~ContainerNetwork();
  ContainerNetwork(const ContainerNetwork&) = delete;
  ContainerNetwork& operator=(const ContainerNetwork&) = delete;

  // Names the network namespace in spec.linux.namespaces and binds
  // /etc/resolv.conf and /etc/hosts (unless the spec already mounts
  // something there: the user's -v wins).
  void ApplyToSpec(nlohmann::json& spec) const;
  void Keep() { keep_ = true; }

 private:
  NetworkMode mode_;
  std::string id_;
  std::filesystem::path bundle_;
  std::string netns_;
  bool keep_ = false;
};

// `uvmctl rm`'s side. The constructor checks, before the container is
// touched, that the network can be removed from here: CNI DEL must run in the
// network namespace where ADD ran (it holds the bridge and the iptables
// rules); elsewhere it throws, unless `force`, which then removes the
// container's namespace and record without CNI DEL (a warning says so).
class NetworkRemoval {
 public:
  NetworkRemoval(const std::string& id, bool force);
  // A network record of this container exists.
  bool pending() const { return pending_; }
  // CNI DEL of every attachment, then the namespace, then the record. When a
  // DEL fails the record stays (a later `uvmctl rm` retries) and this throws.
  void Complete();

 private:
  std::string id_;
  bool pending_ = false;
  bool skip_cni_ = false;
};

// The container's address for `uvmctl ps` ("-" when it has none).
std::string ContainerAddress(const std::string& id);

}  // namespace uvmshim::uvmctl
