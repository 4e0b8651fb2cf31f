// Starting processes: a container's init (through the `__init` helper, see
// container_init.h) and execs into a running container (forked children that
// join the init's namespaces with raw system calls only, see spawn.h).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "guest-agent/oci_spec.h"
#include "guest-agent/process.h"
#include "guest-agent/reaper.h"
#include "guest-agent/seccomp.h"
#include "guest-agent/step_timer.h"
#include "common/error.h"
#include "common/unique_fd.h"

namespace uvmshim::agent {

// Launch failures are thrown as uvmshim::Error (common/error.h): a code
// (kInvalidArgument for a bad process spec, kNotFound/kPermissionDenied/
// kFailedPrecondition from the child's setup errno, kInternal for the
// agent's own system calls) and the message; agent_service.cc maps them.
struct InitLaunch {
  std::string spec_json;
  const OciSpec* spec = nullptr;
  std::string rootfs;
  bool terminal = false;
  bool open_stdin = false;
  std::vector<UniqueFd> cgroup_procs;  // joined by the child before it execs
  std::shared_ptr<const SeccompProgram> seccomp;  // the compiled linux.seccomp, or null
  // linux.namespaces[].path, opened (and checked) by the agent: an
  // intermediate child joins them, then clones the init (CLONE_PARENT), so a
  // joined pid namespace applies to the init itself.
  std::vector<UniqueFd> namespace_fds;
  StepTimer* steps = nullptr;  // gets the launch's steps and the helper's, if set
  int init_helper_fd = -1;     // uvm-init (init_helper_exe.h), or -1: re-execute the agent
};

// Clones the init helper into the spec's new namespaces and waits until it is
// set up. Sets the process's pid and stdio and registers its exit with the
// reaper. Returns the sync socket StartContainerInit needs.
UniqueFd LaunchContainerInit(InitLaunch launch, const std::shared_ptr<Process>& process, Reaper& reaper);

// Lets the helper exec the user's command; returns once it did.
void StartContainerInit(UniqueFd sync, Process& process);

struct ExecLaunch {
  pid_t init_pid = 0;
  std::vector<std::string> namespaces;  // /proc/<pid>/ns names to join: ipc uts net pid mnt cgroup
  const OciProcess* process = nullptr;
  bool terminal = false;
  bool open_stdin = false;
  std::vector<UniqueFd> cgroup_procs;
  std::shared_ptr<const SeccompProgram> seccomp;  // the container's filter, or null
  long personality = -1;  // the container's linux.personality, -1 = none
};

// Starts a process in the namespaces of a running container's init.
// `ns_fds` come from OpenNamespaces (opened while the init is known alive).
void LaunchExec(ExecLaunch launch, std::vector<UniqueFd> ns_fds, const std::shared_ptr<Process>& process,
                Reaper& reaper);

// Opens /proc/<pid>/ns/<name> for each name (close-on-exec).
std::vector<UniqueFd> OpenNamespaces(pid_t pid, const std::vector<std::string>& names);

// Starts `command` on a new pty in the agent's own environment (the debug
// console); the process gets the pty master as its stdio (terminal).
void LaunchConsole(const std::vector<std::string>& command, uint32_t width, uint32_t height,
                       const std::shared_ptr<Process>& process, Reaper& reaper);

}  // namespace uvmshim::agent
