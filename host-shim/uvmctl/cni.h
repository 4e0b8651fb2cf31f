// A small CNI runtime (the caller's side of the CNI 1.0 exec protocol): a
// plugin is the executable named by its "type" in one of the CNI_PATH
// directories; the operation and the container travel in environment
// variables (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH),
// the network configuration as JSON on stdin, the result (or an error object)
// as JSON on stdout. A network list ("conflist") chains plugins: each ADD gets
// the previous plugin's result as "prevResult"; DEL runs them in reverse.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace uvmshim::uvmctl {

struct CniRuntime {
  std::string container_id;
  std::string netns;   // path of the container's network namespace
  std::string ifname;  // the interface the plugins create in it ("eth0", "lo")
  std::vector<std::filesystem::path> plugin_dirs;  // CNI_PATH
  // Values for the plugins that declare the capability ({"portMappings": [...]}).
  nlohmann::json capability_args = nlohmann::json::object();
  std::chrono::seconds timeout{60};  // per plugin call: a hung plugin is killed
};

// Runs one plugin. `config` is the complete per-plugin configuration (with
// name, cniVersion and, where due, prevResult and runtimeConfig). Returns its
// parsed stdout (an empty object when it printed nothing, as DEL may). Throws
// std::runtime_error naming the plugin, the command and the plugin's own
// error message when it fails, times out or prints something that is not JSON.
nlohmann::json InvokeCniPlugin(const std::string& command, const nlohmann::json& config,
                               const CniRuntime& runtime);

// ADD of every plugin of `conflist` ({"cniVersion", "name", "plugins": [...]})
// in order; returns the last result. Throws on the first failure (the caller
// then runs DelNetworkList, as the CNI spec asks).
nlohmann::json AddNetworkList(const nlohmann::json& conflist, const CniRuntime& runtime);

// DEL of every plugin in reverse order, each given `previous` (the ADD's
// result, or null when the ADD did not complete). Every plugin is called even
// when one fails; then the failures are thrown together. A plugin that is no
// longer installed is skipped with a warning: no retry could run it.
void DelNetworkList(const nlohmann::json& conflist, const CniRuntime& runtime,
                    const nlohmann::json& previous);

// The first IPv4 address of a CNI result without its prefix length
// ("10.89.0.2"), else the first address of any family; empty when none.
std::string FirstAddress(const nlohmann::json& result);

// Throws std::runtime_error naming the first plugin of `conflist` that is not
// an executable in `plugin_dirs` (checked before anything is set up).
void CheckPluginsInstalled(const nlohmann::json& conflist, const std::vector<std::filesystem::path>& plugin_dirs);

// Checks a conflist's shape (the fields this runtime relies on); throws
// std::invalid_argument naming the field.
void ValidateConflist(const nlohmann::json& conflist);

}  // namespace uvmshim::uvmctl
