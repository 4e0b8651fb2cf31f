// Building CRI pod and container configs the way kubelet fills them, and reading back what
// containerd reports (its verbose info JSON), for the CRI suite and cri-bench.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cri_env.h"

namespace uvmshim::cri {

struct PodOptions {
  std::string name;                       // metadata.name (and the cgroup leaf)
  std::string hostname;                   // empty: none
  bool share_pid = false;                 // NamespaceOption pid = POD
  std::vector<std::string> dns_servers;
  std::vector<std::string> dns_searches;
  std::vector<std::string> dns_options;
  std::map<std::string, std::string> annotations;
};

// A kubelet-like PodSandboxConfig: uid, namespace, log_directory under env.work_dir()/logs/<name>
// (created), the env's cgroup parent, pod network (CNI), ipc and uts of the pod.
v1::PodSandboxConfig MakePodConfig(CriEnv& env, const PodOptions& options);

struct ContainerOptions {
  std::string name;
  std::vector<std::string> command;       // full argv (CRI command; args empty)
  std::vector<v1::Mount> mounts;
  int64_t memory_limit_bytes = 0;         // 0: none
  std::map<std::string, std::string> annotations;
};

// ContainerConfig with image kBusyboxImage, log_path "<name>.log" (relative to the pod's
// log_directory) and the pod's namespace options, as kubelet derives them from the pod.
v1::ContainerConfig MakeContainerConfig(const ContainerOptions& options, const v1::PodSandboxConfig& pod);

v1::Mount BindMount(const std::filesystem::path& host, const std::string& container, bool readonly);

// containerd's verbose info ("info" key, JSON): its "pid" field, the task's pid as the runtime
// reported it (a guest pid in hyperv).
std::optional<long> InfoPid(const google::protobuf::Map<std::string, std::string>& info);
// The netns path containerd created for the pod (from the sandbox's runtime spec), if any.
std::optional<std::string> PodNetnsPath(const v1::PodSandboxStatusResponse& verbose_status);

// Processes whose executable's name starts with `exe_prefix` and whose command line or cwd
// refers to `dir` (the env dir); a process forked by another such one (virtiofsd's sandbox child)
// is not counted: one per running instance.
std::vector<pid_t> PidsNamedUnder(const std::filesystem::path& dir, const std::string& exe_prefix);
inline std::vector<pid_t> QemuPidsUnder(const std::filesystem::path& dir) { return PidsNamedUnder(dir, "qemu-system"); }

// Lines of a CRI log file: "<RFC3339Nano time> <stream> <P|F> <text>".
struct CriLogLine {
  std::string time, stream, tag, text;
};
std::vector<CriLogLine> ReadCriLog(const std::filesystem::path& file);

}  // namespace uvmshim::cri
