// One container: its spec, init process, execs and cgroup.
#pragma once

#include <sys/types.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "agent.pb.h"
#include "guest-agent/cgroups.h"
#include "guest-agent/hooks.h"
#include "guest-agent/oci_spec.h"
#include "guest-agent/process.h"
#include "guest-agent/reaper.h"
#include "common/error.h"
#include "common/unique_fd.h"

namespace uvmshim::agent {

namespace pb = ::uvmshim::agent::v1;

struct ContainerOptions {
  std::string cgroup_parent = "uvmshim";
  // In a utility VM the host cannot name guest paths freely: a
  // linux.namespaces[].path must be /proc/<pid>/ns/<type> of a running
  // container init this agent created (never PID 1, the agent itself).
  bool container_namespace_paths_only = false;
  std::function<bool(pid_t)> is_container_init;
  bool in_utility_vm = false;  // for spec_policy.h: what the machine offers, hooks refused
  int init_helper_fd = -1;     // the init helper's executable (init_helper_exe.h), -1: the agent
};

class Container {
 public:
  // Exited execs kept for WaitProcess before the oldest are forgotten.
  static constexpr size_t kMaxExitedExecs = 256;

  // Every method reports failure by throwing uvmshim::Error (common/error.h):
  // a code (kInvalidArgument, kNotFound, kFailedPrecondition, ...) and a
  // message naming the container; the gRPC service maps it (rpc_status.h).

  // Validates, creates the cgroup and launches the init helper (ready to
  // start).
  static std::shared_ptr<Container> Create(const pb::CreateContainerRequest& request, Reaper& reaper,
                                           const ContainerOptions& options);

  const std::string& id() const { return id_; }
  const std::shared_ptr<Process>& init() const { return init_; }

  // Lets the init exec the user's command; returns its pid. The reaper runs
  // poststart hooks.
  pid_t Start(Reaper& reaper);
  // Starts a process in the running container; returns its pid.
  pid_t Exec(const pb::ExecProcessRequest& request, Reaper& reaper);
  // "" = init. kNotFound when unknown.
  std::shared_ptr<Process> FindProcess(const std::string& exec_id);
  void Signal(const pb::SignalProcessRequest& request, Reaper& reaper);
  void Stats(pb::StatsResponse* response);
  // New cgroup limits from an OCI LinuxResources JSON object.
  void Update(const std::string& resources_json);
  // The kernel's OOM killer killed a process of this container.
  bool OomKilled() const;
  void ListProcesses(pb::ListProcessesResponse* response);
  // Kills what is left, waits for it and removes the cgroup.
  // kFailedPrecondition while the init runs unless force.
  void Destroy(bool force, Reaper& reaper);

 private:
  Container(std::string id, OciSpec spec) : id_(std::move(id)), spec_(std::move(spec)) {}
  std::vector<std::string> ExecNamespaces() const;
  std::vector<pid_t> Pids();
  void ForgetOldExecsLocked();

  const std::string id_;
  const OciSpec spec_;
  bool in_utility_vm_ = false;
  OciHooks hooks_;      // process isolation only
  std::string bundle_;  // for the hooks' state: the rootfs's parent directory
  bool poststop_ran_ = false;
  std::shared_ptr<Process> init_;
  std::unique_ptr<Cgroup> cgroup_;
  std::shared_ptr<const SeccompProgram> seccomp_;  // compiled linux.seccomp, shared with execs

  std::mutex mu_;
  UniqueFd init_sync_;  // until StartContainer
  bool starting_ = false;
  std::map<std::string, std::shared_ptr<Process>> execs_;
  std::deque<std::string> exec_order_;  // oldest first
};

}  // namespace uvmshim::agent
