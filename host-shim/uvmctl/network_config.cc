#include "uvmctl/network_config.h"

#include <arpa/inet.h>

#include <cpptoml.h>
#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "toml_reader.h"

namespace uvmshim::uvmctl {
namespace fs = std::filesystem;
using host::Read;
using host::ReadStrings;
using nlohmann::json;

namespace {

constexpr const char* kDefaultConfigFile = "/etc/uvmshim/uvmctl.toml";
constexpr const char* kCniVersion = "1.0.0";

std::invalid_argument Bad(const std::string& where, const std::string& key, const std::string& why) {
  return std::invalid_argument(fmt::format("{}: \"{}\" {}", where, key, why));
}

bool IsIpv4(const std::string& text) {
  in_addr address{};
  return ::inet_pton(AF_INET, text.c_str(), &address) == 1;
}

bool IsIp(const std::string& text) {
  in6_addr address{};
  return IsIpv4(text) || ::inet_pton(AF_INET6, text.c_str(), &address) == 1;
}

// "a.b.c.d/n" with host bits zero and room for a gateway and containers.
void CheckSubnet(const std::string& subnet, const std::string& where) {
  const auto slash = subnet.find('/');
  unsigned prefix = 0;
  const std::string length = slash == std::string::npos ? "" : subnet.substr(slash + 1);
  auto [end, ec] = std::from_chars(length.data(), length.data() + length.size(), prefix);
  if (slash == std::string::npos || !IsIpv4(subnet.substr(0, slash)) || ec != std::errc() ||
      end != length.data() + length.size() || length.empty() || prefix < 8 || prefix > 30)
    throw Bad(where, "subnet", fmt::format("= \"{}\": expected an IPv4 CIDR a.b.c.d/8..30", subnet));
  in_addr base{};
  ::inet_pton(AF_INET, subnet.substr(0, slash).c_str(), &base);
  if (ntohl(base.s_addr) & ((1u << (32 - prefix)) - 1))
    throw Bad(where, "subnet", fmt::format("= \"{}\": host bits are set", subnet));
}

// Linux interface names: at most 15 bytes, no '/', ':' or blanks.
void CheckInterfaceName(const std::string& name, const std::string& where) {
  const bool bad_char = name.find_first_of("/: \t\n") != std::string::npos;
  if (name.empty() || name.size() > 15 || bad_char || name == "." || name == "..")
    throw Bad(where, "bridge", fmt::format("= \"{}\": not a Linux interface name (1..15 chars, no / : or blanks)", name));
}

// CNI network names: [a-zA-Z0-9][a-zA-Z0-9_.-]* (the spec's rule).
void CheckNetworkName(const std::string& name, const std::string& where) {
  bool ok = !name.empty() && std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-');
  if (!ok) throw Bad(where, "name", fmt::format("= \"{}\": a CNI network name is [A-Za-z0-9][A-Za-z0-9_.-]*", name));
}

std::uint16_t ParsePort(const std::string& digits, const std::string& text, const char* which) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || value == 0 || value > 65535)
    throw std::invalid_argument(
        fmt::format("-p \"{}\": {} \"{}\" is not a port 1..65535 (expected HOSTPORT:PORT[/tcp|udp])", text, which, digits));
  return static_cast<std::uint16_t>(value);
}

}  // namespace

NetworkConfig ParseNetworkConfig(const std::string& toml_text, const std::string& origin) {
  const std::shared_ptr<cpptoml::table> root = host::ParseTomlDocument(toml_text, origin);
  NetworkConfig config;
  host::RejectUnknown(*root, {"network"}, origin);
  if (!root->contains("network")) return config;
  auto table = root->get_table("network");
  const std::string where = origin + " [network]";
  if (!table) throw std::invalid_argument(where + ": must be a table");
  host::RejectUnknown(*table, {"name", "bridge", "subnet", "gateway", "mtu", "cni_path", "netns_dir",
                              "ipam_data_dir", "dns", "host_resolv_conf"}, where);
  Read(*table, "name", config.name, where);
  Read(*table, "bridge", config.bridge, where);
  Read(*table, "subnet", config.subnet, where);
  Read(*table, "gateway", config.gateway, where);
  std::int64_t mtu = config.mtu;
  Read(*table, "mtu", mtu, where);
  if (mtu != 0 && (mtu < 576 || mtu > 65535)) throw Bad(where, "mtu", fmt::format("= {}: expected 0 or 576..65535", mtu));
  config.mtu = static_cast<unsigned>(mtu);
  std::vector<std::string> cni_path;
  for (const auto& dir : config.cni_path) cni_path.push_back(dir.string());
  cni_path = ReadStrings(*table, "cni_path", cni_path, where);
  config.cni_path.assign(cni_path.begin(), cni_path.end());
  std::string netns_dir = config.netns_dir.string(), ipam = config.ipam_data_dir.string(),
              resolv = config.host_resolv_conf.string();
  Read(*table, "netns_dir", netns_dir, where);
  Read(*table, "ipam_data_dir", ipam, where);
  Read(*table, "host_resolv_conf", resolv, where);
  config.netns_dir = netns_dir;
  config.ipam_data_dir = ipam;
  config.host_resolv_conf = resolv;
  config.dns = ReadStrings(*table, "dns", config.dns, where);

  CheckNetworkName(config.name, where);
  CheckInterfaceName(config.bridge, where);
  CheckSubnet(config.subnet, where);
  if (!config.gateway.empty() && !IsIpv4(config.gateway))
    throw Bad(where, "gateway", fmt::format("= \"{}\": not an IPv4 address", config.gateway));
  if (config.cni_path.empty()) throw Bad(where, "cni_path", "must name at least one directory");
  for (const auto& [key, path] : {std::pair{"netns_dir", config.netns_dir}, {"ipam_data_dir", config.ipam_data_dir},
                                  {"host_resolv_conf", config.host_resolv_conf}})
    if (!path.empty() && !path.is_absolute()) throw Bad(where, key, fmt::format("= \"{}\": must be absolute", path.string()));
  for (const auto& dir : config.cni_path)
    if (!dir.is_absolute()) throw Bad(where, "cni_path", fmt::format("entry \"{}\": must be absolute", dir.string()));
  if (config.netns_dir.empty()) throw Bad(where, "netns_dir", "must not be empty");
  for (const auto& server : config.dns)
    if (!IsIp(server)) throw Bad(where, "dns", fmt::format("entry \"{}\": not an IP address", server));
  return config;
}

NetworkConfig LoadNetworkConfig() {
  fs::path file = kDefaultConfigFile;
  const char* env = std::getenv("UVMCTL_CONFIG");
  if (env && *env) {
    file = env;
    if (!fs::exists(file)) throw std::invalid_argument(fmt::format("UVMCTL_CONFIG={}: no such file", file.string()));
  } else if (!fs::exists(file)) {
    return {};
  }
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) throw std::invalid_argument(fmt::format("{}: cannot read", file.string()));
  return ParseNetworkConfig(text.str(), file.string());
}

std::vector<PortMapping> ParsePortMappings(const std::vector<std::string>& texts) {
  std::vector<PortMapping> ports;
  std::set<std::pair<std::uint16_t, std::string>> seen;
  for (const auto& text : texts) {
    PortMapping port;
    std::string rest = text;
    if (const auto slash = rest.find('/'); slash != std::string::npos) {
      port.protocol = rest.substr(slash + 1);
      rest = rest.substr(0, slash);
      if (port.protocol != "tcp" && port.protocol != "udp")
        throw std::invalid_argument(fmt::format("-p \"{}\": protocol \"{}\" is neither tcp nor udp", text, port.protocol));
    }
    const auto colon = rest.find(':');
    if (colon == std::string::npos || rest.find(':', colon + 1) != std::string::npos)
      throw std::invalid_argument(fmt::format("-p \"{}\": expected HOSTPORT:PORT[/tcp|udp]", text));
    port.host_port = ParsePort(rest.substr(0, colon), text, "host port");
    port.container_port = ParsePort(rest.substr(colon + 1), text, "container port");
    if (!seen.insert({port.host_port, port.protocol}).second)
      throw std::invalid_argument(fmt::format("-p \"{}\": host port {}/{} is published twice", text, port.host_port,
                                              port.protocol));
    ports.push_back(port);
  }
  return ports;
}

json BridgeConflist(const NetworkConfig& config, bool with_portmap) {
  json range = {{"subnet", config.subnet}};
  if (!config.gateway.empty()) range["gateway"] = config.gateway;
  json ipam = {{"type", "host-local"}, {"ranges", json::array({json::array({range})})},
               {"routes", json::array({{{"dst", "0.0.0.0/0"}}})}};
  if (!config.ipam_data_dir.empty()) ipam["dataDir"] = config.ipam_data_dir.string();
  json bridge = {{"type", "bridge"}, {"bridge", config.bridge}, {"isGateway", true}, {"ipMasq", true},
                 {"hairpinMode", true}, {"ipam", ipam}};
  if (config.mtu) bridge["mtu"] = config.mtu;
  json plugins = json::array({bridge});
  if (with_portmap)
    plugins.push_back({{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}, {"snat", true}});
  return {{"cniVersion", kCniVersion}, {"name", config.name}, {"plugins", plugins}};
}

json LoopbackConflist() {
  return {{"cniVersion", kCniVersion}, {"name", "uvmshim-loopback"}, {"plugins", json::array({{{"type", "loopback"}}})}};
}

json PortMappingsArg(const std::vector<PortMapping>& ports) {
  json mappings = json::array();
  for (const auto& port : ports)
    mappings.push_back({{"hostPort", port.host_port}, {"containerPort", port.container_port}, {"protocol", port.protocol}});
  return mappings;
}

}  // namespace uvmshim::uvmctl
