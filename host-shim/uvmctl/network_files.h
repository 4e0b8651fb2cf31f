// The /etc/resolv.conf and /etc/hosts a container gets with --network none or
// bridge, as Docker and containerd's CRI write them: the host's resolver
// settings minus loopback name servers (they would point into the container's
// own namespace), and the hosts file with localhost and the container's name.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace uvmshim::uvmctl {

// resolv.conf text from the host's (`host_text`): nameserver lines naming a
// loopback address (127.0.0.0/8, ::1) are dropped; when none is left,
// `fallback_servers` are used. search/domain/options lines are kept. A CNI
// result's "dns" (nameservers, search, options), when it names servers,
// replaces the host's settings.
std::string ContainerResolvConf(const std::string& host_text, const std::vector<std::string>& fallback_servers,
                                const nlohmann::json& cni_dns = nullptr);

// hosts text: localhost entries for IPv4 and IPv6, then "ADDRESS HOSTNAME"
// when the container has an address.
std::string ContainerHosts(const std::string& hostname, const std::string& address);

// The file's text, or empty when it cannot be read (a host without resolv.conf).
std::string ReadTextFile(const std::filesystem::path& path);

}  // namespace uvmshim::uvmctl
