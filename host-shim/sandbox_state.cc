#include "sandbox_state.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "common/ids.h"
#include "paths.h"

namespace uvmshim::host {
namespace fs = std::filesystem;
using nlohmann::json;

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(SandboxState, id, ns, bundle, isolation,
                                                shim_address, debug_target, console_log, status,
                                                shim_pid, host_pid, task_pid, created_unix,
                                                sandbox_id)

fs::path StateDir(const std::string& ns, const std::string& id) {
  return RuntimeRoot() / ns / id;
}

void WriteState(const fs::path& dir, const SandboxState& state) {
  fs::create_directories(dir);
  const fs::path tmp = dir / "state.json.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << json(state).dump(2) << '\n';
    // The bytes reach the file only at the flush: a full disk fails there
    // (checking before it let a create succeed with an empty state.json).
    out.close();
    if (!out) {
      const int error = errno;
      std::error_code ignored;
      fs::remove(tmp, ignored);
      throw std::runtime_error(fmt::format("write {}: {}", tmp.string(), error ? std::strerror(error) : "failed"));
    }
  }
  fs::rename(tmp, dir / "state.json");
}

std::optional<SandboxState> ReadState(const fs::path& dir) {
  std::ifstream in(dir / "state.json");
  if (!in) return std::nullopt;
  try {
    return json::parse(in).get<SandboxState>();
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

std::vector<SandboxState> ListStates() {
  std::vector<SandboxState> out;
  std::error_code ec;
  for (const auto& ns_dir : fs::directory_iterator(RuntimeRoot(), ec)) {
    if (!ns_dir.is_directory()) continue;
    for (const auto& dir : fs::directory_iterator(ns_dir.path(), ec)) {
      if (auto state = ReadState(dir.path())) out.push_back(std::move(*state));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.created_unix < b.created_unix; });
  return out;
}

std::string SandboxCgroupParent(const std::string& ns, const std::string& id) {
  return "uvmshim/" + ns + "-" + id;
}

int KillSandboxCgroups(const std::string& cgroup_parent) {
  std::vector<fs::path> roots;
  std::error_code ec;
  if (fs::exists("/sys/fs/cgroup/cgroup.controllers")) {
    roots.push_back(fs::path("/sys/fs/cgroup") / cgroup_parent);
  } else {
    for (const auto& hierarchy : fs::directory_iterator("/sys/fs/cgroup", ec))
      if (fs::exists(hierarchy.path() / cgroup_parent)) roots.push_back(hierarchy.path() / cgroup_parent);
  }
  int killed = 0;
  for (int round = 0; round < 50; ++round) {
    int seen = 0;
    for (const auto& root : roots) {
      if (!fs::exists(root)) continue;
      for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::recursive_directory_iterator(); ++it) {
        if (it->path().filename() != "cgroup.procs") continue;
        std::ifstream procs(it->path());
        for (long pid; procs >> pid;) {
          ::kill(static_cast<pid_t>(pid), SIGKILL);
          ++seen;
        }
      }
      std::ifstream procs(root / "cgroup.procs");
      for (long pid; procs >> pid;) {
        ::kill(static_cast<pid_t>(pid), SIGKILL);
        ++seen;
      }
    }
    if (round == 0) killed = seen;
    if (seen == 0) break;
    ::usleep(20000);
  }
  // Deepest first: a cgroup is removable once empty and childless.
  for (const auto& root : roots) {
    std::vector<fs::path> dirs;
    for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::recursive_directory_iterator(); ++it)
      if (it->is_directory()) dirs.push_back(it->path());
    std::sort(dirs.rbegin(), dirs.rend());
    for (const auto& dir : dirs) ::rmdir(dir.c_str());
    ::rmdir(root.c_str());
  }
  return killed;
}

SandboxState FindState(const std::string& id, const std::string& ns) {
  if (auto error = ::uvmshim::IdError("container id", id); !error.empty()) throw std::invalid_argument(error);
  std::vector<SandboxState> found;
  for (auto& state : ListStates()) {
    if (state.id == id && (ns.empty() || state.ns == ns)) found.push_back(std::move(state));
  }
  if (found.empty())
    throw std::runtime_error(fmt::format("no container {} (looked in {})", id, RuntimeRoot().string()));
  if (found.size() > 1)
    throw std::runtime_error(fmt::format("container {} exists in several namespaces; pass --namespace", id));
  return found.front();
}

}  // namespace uvmshim::host
