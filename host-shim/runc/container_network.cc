#include "runc/container_network.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace uvmshim::runc {

using nlohmann::json;

namespace {

// The spec's linux.namespaces entry of type network and its index, or null.
json* NetworkEntry(json& spec, std::size_t& index) {
  if (!spec.contains("linux") || !spec["linux"].is_object() || !spec["linux"].contains("namespaces") ||
      !spec["linux"]["namespaces"].is_array())
    return nullptr;
  auto& namespaces = spec["linux"]["namespaces"];
  for (index = 0; index < namespaces.size(); ++index)
    if (namespaces[index].is_object() && namespaces[index].value("type", "") == "network") return &namespaces[index];
  return nullptr;
}

UniqueFd OpenNetns(const std::string& path, const std::string& what) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw std::invalid_argument(fmt::format("{} \"{}\": {}", what, path, std::strerror(errno)));
  return fd;
}

// Puts the calling thread back into `own`'s network namespace when it ends.
class ReturnToNetns {
 public:
  explicit ReturnToNetns(int own) : own_(own) {}
  ~ReturnToNetns() {
    if (::setns(own_, CLONE_NEWNET) != 0)  // cannot happen as root; would leave the monitor astray
      spdlog::critical("returning to the monitor's network namespace: {}", std::strerror(errno));
  }
  ReturnToNetns(const ReturnToNetns&) = delete;
  ReturnToNetns& operator=(const ReturnToNetns&) = delete;

 private:
  int own_;
};

}  // namespace

ContainerNetwork ContainerNetwork::Prepare(json& spec, host::Isolation isolation, const HostHooks& hooks,
                                           const std::string& state_json) {
  ContainerNetwork network;
  std::size_t index = 0;
  json* entry = NetworkEntry(spec, index);
  const std::string field = fmt::format("linux.namespaces[{}].path", index);
  const std::string path = entry && entry->contains("path") && (*entry)["path"].is_string()
                               ? (*entry)["path"].get<std::string>()
                               : std::string();
  if (hooks.BeforeStart()) {
    // A hook sees the container's network as /proc/<state pid>/ns/net: this
    // thread (the monitor's main thread: its pid is the state's) enters it.
    const UniqueFd own = OpenNetns("/proc/thread-self/ns/net", "the monitor's network namespace");
    std::optional<ReturnToNetns> back;
    if (entry && path.empty()) {
      if (::unshare(CLONE_NEWNET) != 0)
        throw std::runtime_error(fmt::format("a new network namespace for the hooks: {}", std::strerror(errno)));
      back.emplace(own.get());
      network.made_ = OpenNetns("/proc/thread-self/ns/net", "the new network namespace");
    } else if (entry) {
      const UniqueFd target = OpenNetns(path, field);
      if (::setns(target.get(), CLONE_NEWNET) != 0)
        throw std::invalid_argument(fmt::format("{} \"{}\": {}", field, path, std::strerror(errno)));
      back.emplace(own.get());
    }
    // Hooks run as runc runs them: in the runtime's own namespaces.
    RunHostHooks(hooks.prestart, "prestart", state_json, own.get());
    RunHostHooks(hooks.create_runtime, "createRuntime", state_json, own.get());
  }
  if (network.made_) {
    const std::string held = fmt::format("/proc/{}/fd/{}", ::getpid(), network.made_.get());
    if (isolation == host::Isolation::kProcess) {
      (*entry)["path"] = held;  // the container joins what the hooks filled
    } else if (!shim::NetnsHasOnlyLoopback(held)) {
      network.vm_network_ = shim::PodNetnsRef{held, fmt::format("linux.namespaces[{}] (filled by hooks.prestart)", index)};
    }
  }
  if (isolation == host::Isolation::kHyperv) {
    // No task runs yet: a /proc/<pid>/ns path names nothing the VM has.
    auto named = shim::ResolveNamespacePaths(spec, isolation, [](std::uint32_t) { return false; });
    if (named) network.vm_network_ = std::move(named);
  }
  return network;
}

}  // namespace uvmshim::runc
