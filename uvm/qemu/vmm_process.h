// The host processes of a utility VM - QEMU and virtiofsd - and what the end
// of QEMU means (ExitReason). QemuVm (uvm/qemu_vm.h) drives them.
#pragma once

#include <sys/types.h>

#include <boost/process/child.hpp>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "uvm/utility_vm.h"

namespace uvmshim::uvm {

// Spawns `binary args...` with stdin from /dev/null and stdout+stderr into
// `log`. The child gets its own process group (a terminal's Ctrl-C for the
// shim is not for the VM), an empty signal mask and none of our descriptors,
// and is SIGKILLed when the spawning *thread* ends: spawn from a thread that
// lives exactly as long as the VM, so a killed host process leaves no VM
// behind. `inherit_fds` stay open in the child under the same numbers (a
// network card's tap). Throws VmError.
boost::process::child SpawnVmmProcess(const std::string& binary, const std::vector<std::string>& args,
                                      const std::filesystem::path& log, std::vector<int> inherit_fds = {});

struct VirtiofsdConfig {
  std::filesystem::path binary;
  std::filesystem::path socket;      // vhost-user socket QEMU connects to
  std::filesystem::path shared_dir;  // what the guest sees
  std::filesystem::path log;
};

// virtiofsd's arguments: confined to the share, spelled out rather than left
// to defaults.
std::vector<std::string> VirtiofsdArgs(const VirtiofsdConfig& config);

// Starts virtiofsd (SpawnVmmProcess) and waits up to 5 s for its socket;
// throws VmError with the end of its log otherwise (and ends it).
boost::process::child StartVirtiofsd(const VirtiofsdConfig& config);

// What is known when QEMU has ended.
struct QemuExitFacts {
  std::optional<ExitInfo> requested;  // set when we killed it or told it to quit
  int wait_errno = 0;                 // waitid() failed: no status
  int status = 0;                     // wait status
  pid_t pid = 0;
  std::string shutdown_reason;  // QMP SHUTDOWN event's "reason" ("" if none)
  bool agent_ready = false;     // the agent had answered
  std::string qemu_log_tail;
  std::string console_tail;
};

// Why the VM ended: what we asked for; a shutdown (the guest powered off
// after its agent answered); a boot failure (anything before the agent
// answered); a crash otherwise (QEMU killed or failing, a guest reset =
// a kernel panic with panic=-1 and -no-reboot). Crashes and boot failures
// carry the console's last lines.
ExitInfo ClassifyQemuExit(const QemuExitFacts& facts);

}  // namespace uvmshim::uvm
