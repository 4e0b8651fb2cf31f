// A private containerd 1.6 with its CRI plugin, set up as a Kubernetes node would run it with
// uvmshim: three runtime handlers (runc, uvm-process, uvm-hyperv), an offline sandbox image, a
// loopback-only CNI network, and a CriClient on its socket. Each object owns its own containerd,
// dirs and namespace; the destructor removes every pod left and then everything else
// (tests/e2e/containerd-env.sh stop).
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "cri_client.h"
#include "e2e_support.h"

namespace uvmshim::cri {

// CRI runtime handler names, as a node's config.toml declares them (tests/cri/README.md).
inline constexpr const char* kRuncHandler = "runc";
inline constexpr const char* kUvmProcessHandler = "uvm-process";
inline constexpr const char* kUvmHypervHandler = "uvm-hyperv";

// Images imported into containerd's k8s.io namespace (registry-qualified so CRI's reference
// normalisation leaves them alone).
inline constexpr const char* kPauseImage = "uvmshim.test/pause:latest";
inline constexpr const char* kBusyboxImage = "uvmshim.test/busybox:latest";

bool IsUvmHandler(const std::string& handler);
bool IsHypervHandler(const std::string& handler);
// Why `handler` cannot run on this build (shim or boot files missing), or nullopt.
std::optional<std::string> MissingPrerequisite(const std::string& handler);
// Deadline of one CRI call for this handler (hyperv boots a VM under emulation here).
std::chrono::milliseconds CallTimeout(const std::string& handler);

// A CNI bridge network (bridge + host-local + portmap, Debian's plugins) instead of the
// loopback-only one: containerd runs in the network namespace `netns_path` (the test's own), so
// the bridge, its gateway address, portmap's iptables rules and every pod packet stay there.
struct CriBridgeNetwork {
  std::string netns_path;               // e.g. /run/netns/<test's own>
  std::string subnet = "10.88.7.0/24";  // the bridge's gateway is its .1
};

class CriEnv {
 public:
  CriEnv();   // throws std::runtime_error naming the step that failed
  explicit CriEnv(const CriBridgeNetwork& bridge);
  ~CriEnv();
  CriEnv(const CriEnv&) = delete;
  CriEnv& operator=(const CriEnv&) = delete;

  CriClient& client() { return *client_; }
  e2e::ContainerdEnv& containerd() { return *containerd_; }
  // Our own files: handler configs, CNI config and plugin dir, runc root, and a place for
  // pods' log dirs and volume sources (under files_dir()/work).
  const std::filesystem::path& files_dir() const { return files_.path(); }
  std::filesystem::path work_dir() const { return files_.path() / "work"; }
  // The cgroup parent every pod of this env should use (cleaned by containerd-env.sh).
  std::string CgroupParent(const std::string& pod_name) const;
  // containerd's CRI state dir (sandboxes/, containers/ per id).
  std::filesystem::path CriStateDir() const;
  std::filesystem::path CriRootDir() const;
  // Bundle dir of a task in the k8s.io namespace.
  std::filesystem::path TaskBundleDir(const std::string& id) const;

  // Stops and removes every pod (containers first), as kubelet does; errors are logged.
  void RemoveAllPods();

 private:
  void Start();
  void WriteFiles();
  void ImportImage(const std::filesystem::path& archive, const std::string& ref);

  std::optional<CriBridgeNetwork> bridge_;
  e2e::TempDir files_{"uvmshim-cri"};
  std::unique_ptr<e2e::ContainerdEnv> containerd_;
  std::unique_ptr<CriClient> client_;
};

}  // namespace uvmshim::cri
