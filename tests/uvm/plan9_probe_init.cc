// /init of a throwaway QEMU guest that checks the agent's 9p-over-fd mount
// (MountPlan9OverFd, what a Plan9 rootfs under HCS uses) against a real 9P
// server: Debian's diod, started on one end of a socketpair this program
// provides, while the kernel mounts through the other end. Prints one
// "PLAN9_PROBE ..." line on the console and powers the guest off.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "guest-agent/vm/rootfs_mount.h"

namespace {

void Report(const std::string& line) {
  std::printf("PLAN9_PROBE %s\n", line.c_str());
  std::fflush(stdout);
}

[[noreturn]] void PowerOff() {
  ::sync();
  ::reboot(RB_POWER_OFF);
  ::_exit(1);
}

void LoadModules() {
  std::ifstream list("/lib/modules/load-order");
  std::string path;
  while (std::getline(list, path)) {
    if (path.empty()) continue;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || (::syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST))
      Report("module " + path + ": " + std::strerror(errno));
    if (fd >= 0) ::close(fd);
  }
}

}  // namespace

int main() {
  ::mount("proc", "/proc", "proc", 0, nullptr);
  ::mount("sysfs", "/sys", "sysfs", 0, nullptr);
  ::mount("devtmpfs", "/dev", "devtmpfs", 0, nullptr);
  ::mount("tmp", "/tmp", "tmpfs", 0, nullptr);
  LoadModules();

  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    Report(std::string("FAIL socketpair: ") + std::strerror(errno));
    PowerOff();
  }
  const pid_t server = ::fork();
  if (server == 0) {
    ::dup2(pair[1], 3);  // clears FD_CLOEXEC on 3
    const char* argv[] = {"/usr/sbin/diod", "--foreground", "--no-auth", "--rfdno", "3", "--wfdno", "3",
                          "--export", "/export", "--logdest", "stderr", "--config-file", "/dev/null", nullptr};
    ::execv(argv[0], const_cast<char* const*>(argv));
    std::printf("PLAN9_PROBE FAIL exec diod: %s\n", std::strerror(errno));
    ::_exit(127);
  }
  ::close(pair[1]);

  try {
    uvmshim::agent::vm::MountPlan9OverFd(pair[0], "/export", "/mnt", MS_RDONLY);
    ::close(pair[0]);  // the mount keeps its own reference
    std::ifstream marker("/mnt/marker");
    std::stringstream text;
    text << marker.rdbuf();
    struct stat info {};
    ::stat("/mnt/dir/file", &info);
    Report("mounted marker=" + text.str().substr(0, text.str().find('\n')) +
           " file_size=" + std::to_string(info.st_size));
    ::umount2("/mnt", MNT_DETACH);
  } catch (const std::exception& error) {
    Report(std::string("FAIL ") + error.what());
  }
  ::kill(server, SIGKILL);
  ::waitpid(server, nullptr, 0);
  PowerOff();
}
