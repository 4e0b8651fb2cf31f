// What `uvmctl run --network bridge` attaches a container to: uvmctl's own
// configuration file ([network] table: bridge name, subnet, CNI plugin
// directories, ...), the published ports (-p) and the CNI network lists built
// from them for the Debian CNI plugins (bridge + host-local + portmap,
// loopback).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace uvmshim::uvmctl {

struct NetworkConfig {
  std::string name = "uvmshim";           // CNI network name (iptables comments, IPAM store)
  std::string bridge = "uvmshim0";        // Linux bridge the containers' veths join
  std::string subnet = "10.89.0.0/16";    // IPv4 CIDR host-local allocates from
  std::string gateway;                    // default: the subnet's first address (the bridge)
  unsigned mtu = 0;                       // 0: the bridge plugin's default
  std::vector<std::filesystem::path> cni_path = {"/usr/lib/cni"};
  std::filesystem::path netns_dir = "/run/netns";
  std::filesystem::path ipam_data_dir;    // default: host-local's /var/lib/cni/networks
  std::vector<std::string> dns = {"8.8.8.8", "8.8.4.4"};  // when the host's resolver is loopback only
  std::filesystem::path host_resolv_conf = "/etc/resolv.conf";
};

// TOML text -> config; unknown keys and bad values are std::invalid_argument
// naming `origin`, the table and the key.
NetworkConfig ParseNetworkConfig(const std::string& toml_text, const std::string& origin);
// $UVMCTL_CONFIG (must exist when set), else /etc/uvmshim/uvmctl.toml when it
// exists, else the defaults.
NetworkConfig LoadNetworkConfig();

struct PortMapping {
  std::uint16_t host_port = 0;
  std::uint16_t container_port = 0;
  std::string protocol = "tcp";  // tcp | udp
};

// "HOSTPORT:PORT[/tcp|udp]" each; throws std::invalid_argument naming the -p
// value (also for a host port and protocol given twice).
std::vector<PortMapping> ParsePortMappings(const std::vector<std::string>& texts);

// The list for the container's eth0: bridge (gateway, masquerade, hairpin)
// with host-local IPAM and a default route, then portmap when ports are published.
nlohmann::json BridgeConflist(const NetworkConfig& config, bool with_portmap);
// The list for its lo.
nlohmann::json LoopbackConflist();
// portmap's "portMappings" capability value.
nlohmann::json PortMappingsArg(const std::vector<PortMapping>& ports);

}  // namespace uvmshim::uvmctl
