#include "guest-agent/container_init.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "guest-agent/mounts.h"
#include "guest-agent/oci_spec.h"
#include "guest-agent/spawn.h"
#include "guest-agent/step_timer.h"

namespace uvmshim::agent {
namespace {

[[noreturn]] void Fail(const std::string& what, int error) {
  throw std::runtime_error(what + ": " + std::strerror(error));
}

std::string ReadAll(int fd) {
  std::string text;
  char buffer[65536];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n > 0) {
      text.append(buffer, static_cast<size_t>(n));
    } else if (n == 0) {
      return text;
    } else if (errno != EINTR) {
      Fail("read init config", errno);
    }
  }
}

void JoinNamespacePaths(const OciSpec& spec) {
  for (const auto& ns : spec.namespaces) {
    if (ns.path.empty()) continue;
    int fd = open(ns.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) Fail("open " + ns.type + " namespace " + ns.path, errno);
    int type = ns.type == "network" ? CLONE_NEWNET : ns.type == "ipc" ? CLONE_NEWIPC
               : ns.type == "pid"   ? CLONE_NEWPID : CLONE_NEWUTS;
    int result = setns(fd, type);
    int error = errno;
    close(fd);
    if (result != 0) Fail("join " + ns.type + " namespace " + ns.path, error);
  }
}

void BringUpLoopback() {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;  // no IPv4: nothing to bring up
  ifreq request{};
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFFLAGS, &request) == 0) {
    request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP);
    ioctl(fd, SIOCSIFFLAGS, &request);
  }
  close(fd);
}

void WriteSysctl(const std::string& key, const std::string& value) {
  std::string path = "/proc/sys/" + key;
  for (size_t i = 10; i < path.size(); ++i)
    if (path[i] == '.') path[i] = '/';
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) Fail("sysctl " + key, errno);
  ssize_t n = write(fd, value.data(), value.size());
  int error = errno;
  close(fd);
  if (n < 0) Fail("sysctl " + key + "=" + value, error);
}

// Everything up to (not including) the exec of the user's command.
// Returns the terminal's master (to send to the agent) or -1.
int SetUpContainer(const InitConfig& config, const OciSpec& spec, const ExecPlan& plan, StepTimer& steps) {
  if (!config.namespaces_joined) JoinNamespacePaths(spec);
  unsigned long propagation = MS_REC | MS_PRIVATE;
  if (spec.rootfs_propagation == "slave" || spec.rootfs_propagation == "rslave") propagation = MS_REC | MS_SLAVE;
  if (mount(nullptr, "/", nullptr, propagation, nullptr) != 0) Fail("make mounts private", errno);

  const std::string& rootfs = config.rootfs;
  struct stat st {};
  if (stat(rootfs.c_str(), &st) != 0) Fail("rootfs " + rootfs, errno);
  if (!S_ISDIR(st.st_mode)) Fail("rootfs " + rootfs, ENOTDIR);
  // pivot_root needs the new root to be a mount point.
  if (mount(rootfs.c_str(), rootfs.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
    Fail("bind mount rootfs " + rootfs, errno);
  steps.Mark("rootfs_bind");

  bool dev_is_tmpfs = false;
  for (const auto& m : spec.mounts) {
    MountInRootfs(rootfs, m);
    if (m.destination == "/dev" && m.type == "tmpfs") dev_is_tmpfs = true;
  }
  steps.Mark("mounts");
  if (dev_is_tmpfs || !spec.devices.empty()) PopulateDev(rootfs, spec.devices, dev_is_tmpfs);
  steps.Mark("dev");

  if (spec.rootfs_propagation == "shared" || spec.rootfs_propagation == "rshared") {
    if (mount(nullptr, rootfs.c_str(), nullptr, MS_SHARED | MS_REC, nullptr) != 0) Fail("make rootfs shared", errno);
  }
  PivotRoot(rootfs);
  steps.Mark("pivot_root");

  for (const auto& [key, value] : spec.sysctl) WriteSysctl(key, value);
  for (const auto& path : spec.readonly_paths) ReadonlyPath(path);
  steps.Mark("readonly_paths");
  for (const auto& path : spec.masked_paths) MaskPath(path);
  steps.Mark("masked_paths");
  if (spec.root_readonly) MakeRootReadonly();

  if (!spec.hostname.empty()) {
    const OciNamespace* uts = spec.FindNamespace("uts");
    if (!uts) throw std::runtime_error("hostname: the spec has no uts namespace");
    if (sethostname(spec.hostname.data(), spec.hostname.size()) != 0) Fail("sethostname " + spec.hostname, errno);
  }
  if (!spec.domainname.empty()) {
    if (!spec.FindNamespace("uts")) throw std::runtime_error("domainname: the spec has no uts namespace");
    if (setdomainname(spec.domainname.data(), spec.domainname.size()) != 0)
      Fail("setdomainname " + spec.domainname, errno);
  }
  if (config.new_network_namespace) BringUpLoopback();

  int master = -1;
  int in = 0, out = 1, err = 2;
  if (config.terminal) {
    master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) Fail("terminal: open /dev/ptmx in the container (does the spec mount devpts?)", errno);
    int slave = OpenPtySlave(master);
    if (slave < 0) Fail("terminal: open the pty slave", errno);
    if (spec.process.console_width != 0 && spec.process.console_height != 0) {
      winsize size{};
      size.ws_col = static_cast<unsigned short>(spec.process.console_width);
      size.ws_row = static_cast<unsigned short>(spec.process.console_height);
      ioctl(slave, TIOCSWINSZ, &size);
    }
    slave = fcntl(slave, F_DUPFD_CLOEXEC, 10);  // keep clear of 0..4 for the dup2s
    in = out = err = slave;
  }
  if (setsid() < 0) Fail("setsid", errno);
  if (config.terminal) {
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) Fail("dup2 terminal", errno);
    close(in);
    if (ioctl(0, TIOCSCTTY, 0) != 0) Fail("set controlling terminal", errno);
  }
  const char* step = nullptr;
  steps.Mark("uts_net_tty");
  if (int error = ApplyProcessIdentity(plan, &step); error != 0) Fail(step, error);
  steps.Mark("identity");
  return master;
}

}  // namespace

std::string InitConfig::ToJson() const {
  nlohmann::json doc = {{"spec_json", spec_json},
                        {"rootfs", rootfs},
                        {"terminal", terminal},
                        {"new_network_namespace", new_network_namespace},
                        {"seccomp_hex", seccomp_hex},
                        {"seccomp_flags", seccomp_flags},
                        {"namespaces_joined", namespaces_joined}};
  return doc.dump();
}

InitConfig InitConfig::FromJson(const std::string& text) {
  auto doc = nlohmann::json::parse(text);
  InitConfig config;
  config.spec_json = doc.at("spec_json").get<std::string>();
  config.rootfs = doc.at("rootfs").get<std::string>();
  config.terminal = doc.at("terminal").get<bool>();
  config.new_network_namespace = doc.at("new_network_namespace").get<bool>();
  config.seccomp_hex = doc.value("seccomp_hex", std::string());
  config.seccomp_flags = doc.value("seccomp_flags", 0u);
  config.namespaces_joined = doc.value("namespaces_joined", false);
  return config;
}

int RunContainerInitHelper() {
  StepTimer steps;  // from the helper's main: the agent knows when it spawned us
  // Only fds 0-4 are ours; anything else would leak into the container.
  syscall(SYS_close_range, 5u, ~0u, 0u);
  fcntl(kInitSyncFd, F_SETFD, FD_CLOEXEC);
  ResetSignalsForExec();
  umask(022);
  std::unique_ptr<ExecPlan> plan;
  std::string ready_text;
  try {
    InitConfig config = InitConfig::FromJson(ReadAll(kInitConfigFd));
    close(kInitConfigFd);
    OciSpec spec = ParseOciSpec(config.spec_json);
    plan = MakeExecPlan(spec.process);
    if (!config.seccomp_hex.empty()) plan->seccomp = SeccompProgramFromHex(config.seccomp_hex, config.seccomp_flags);
    if (spec.personality) plan->personality = static_cast<long>(*spec.personality);
    steps.Mark("parse");
    int master = SetUpContainer(config, spec, *plan, steps);
    ready_text = "helper_start_ns=" + std::to_string(steps.start_ns()) + " " + steps.text();
    if (master >= 0) {
      if (!SendSyncMessage(kInitSyncFd, SyncKind::kPtyMaster, 0, 0, nullptr, master)) return 1;
      close(master);
    }
  } catch (const std::exception& e) {
    SendSyncMessage(kInitSyncFd, SyncKind::kError, 0, 0, e.what());
    return 1;
  }
  // kReady's text: the helper's own step timings (LaunchContainerInit logs them).
  if (!SendSyncMessage(kInitSyncFd, SyncKind::kReady, 0, 0, ready_text.c_str())) return 1;
  SyncMessage message;
  try {
    // EOF: the agent deleted the container before starting it (or died).
    if (!ReceiveSyncMessage(kInitSyncFd, message) || message.kind != SyncKind::kStart) return 0;
  } catch (const std::exception&) {
    return 1;
  }
  if (int error = LoadLateSeccomp(*plan); error != 0) {
    SendSyncMessage(kInitSyncFd, SyncKind::kError, 0, error, "load the seccomp filter");
    return 1;
  }
  ExecUserCommand(*plan);
}

}  // namespace uvmshim::agent
