// Private container engines for tests: a dockerd from Debian's docker.io (its
// own data root, exec root, socket, pid file and containerd; no bridge, no
// iptables) and Podman (its own storage and run root). Each is an RAII object
// that ends everything it started by pid and leaves nothing behind, so several
// copies of the suite can run at once. The busybox image is loaded offline
// from the archive CMake builds (make-docker-archive.sh).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "e2e_support.h"

namespace uvmshim::e2e {

inline constexpr const char* kDockerd = "/usr/sbin/dockerd";    // Debian's, never another one on PATH
inline constexpr const char* kDockerCli = "/usr/bin/docker";    // docker.io's client (20.10)
inline constexpr const char* kPodman = "/usr/bin/podman";
inline constexpr const char* kEngineImage = "local/busybox:latest";
inline constexpr const char* kPodmanImage = "localhost/busybox:latest";  // short names need a registry
// Every podman run needs these here (this-machine.md: the default limits fail).
inline const std::vector<std::string> kPodmanRunLimits{"--pull", "never", "--network", "none", "--ulimit", "nofile=1024:1024",
                                                       "--ulimit", "nproc=1024:1024"};

// A runc-compatible runtime as daemon.json declares it.
struct OciRuntime {
  std::filesystem::path path;
  std::vector<std::string> args;  // runtimeArgs, e.g. --isolation=hyperv
};

// Why engine tests cannot run here (no dockerd/podman, not root), or nullopt.
std::optional<std::string> MissingEngine(const char* binary);
// <build>/bin/uvm-runc if built.
std::optional<std::filesystem::path> UvmRuncBinary();
// The docker-loadable busybox archive built by CMake.
std::filesystem::path EngineImageArchive();

class DockerEnv {
 public:
  // Starts dockerd with these extra runtimes (daemon.json "runtimes") and loads
  // the busybox image. Throws std::runtime_error with the daemon's log tail.
  explicit DockerEnv(const std::map<std::string, OciRuntime>& runtimes);
  ~DockerEnv();  // rm -f every container, SIGTERM then SIGKILL dockerd, kill/unmount leftovers
  DockerEnv(const DockerEnv&) = delete;
  DockerEnv& operator=(const DockerEnv&) = delete;

  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path exec_root() const { return dir() / "x"; }
  std::filesystem::path data_root() const { return dir() / "data"; }
  std::string host() const { return "unix://" + (dir() / "docker.sock").string(); }
  std::optional<pid_t> DaemonPid() const;

  CommandResult Docker(const std::vector<std::string>& args, const CommandOptions& options = {}) const;
  std::vector<std::string> DockerArgv(const std::vector<std::string>& args) const;
  std::string LogTail(int lines = 30) const;

 private:
  TempDir dir_{"uvmshim-dk"};
  std::optional<BackgroundCommand> daemon_;
};

class PodmanEnv {
 public:
  // Loads the busybox image into a private store. Throws std::runtime_error.
  PodmanEnv();
  ~PodmanEnv();  // rm -f every container, unmount and remove the store
  PodmanEnv(const PodmanEnv&) = delete;
  PodmanEnv& operator=(const PodmanEnv&) = delete;

  const std::filesystem::path& dir() const { return dir_.path(); }
  // podman with the private store; `runtime` (empty = Podman's default runc)
  // and its flags (--runtime-flag, without the leading dashes) first.
  std::vector<std::string> PodmanArgv(const std::vector<std::string>& args, const OciRuntime& runtime = {}) const;
  CommandResult Podman(const std::vector<std::string>& args, const OciRuntime& runtime = {},
                       const CommandOptions& options = {}) const;

 private:
  TempDir dir_{"uvmshim-pm"};
};

}  // namespace uvmshim::e2e
