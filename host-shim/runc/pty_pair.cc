#include "runc/pty_pair.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <termios.h>

#include <fmt/format.h>

#include "runc/control_channel.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace uvmshim::runc {

PtyPair OpenRawPty() {
  PtyPair pty;
  pty.master = UniqueFd(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!pty.master || ::grantpt(pty.master.get()) != 0 || ::unlockpt(pty.master.get()) != 0)
    throw std::runtime_error(fmt::format("opening a pty: {}", std::strerror(errno)));
  char name[128];
  if (::ptsname_r(pty.master.get(), name, sizeof name) != 0)
    throw std::runtime_error(fmt::format("ptsname: {}", std::strerror(errno)));
  pty.slave = UniqueFd(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!pty.slave) throw std::runtime_error(fmt::format("open {}: {}", name, std::strerror(errno)));
  termios attrs{};
  if (::tcgetattr(pty.slave.get(), &attrs) == 0) {
    ::cfmakeraw(&attrs);
    ::tcsetattr(pty.slave.get(), TCSANOW, &attrs);
  }
  return pty;
}

void AcquireControllingTerminal(int slave_fd) { ::ioctl(slave_fd, TIOCSCTTY, 0); }

void DetachStdio() {
  const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) return;
  for (int fd = 0; fd <= 2; ++fd) ::dup2(null, fd);
  ::close(null);
}

std::pair<unsigned, unsigned> WindowSize(int fd) {
  winsize size{};
  if (::ioctl(fd, TIOCGWINSZ, &size) != 0) return {0, 0};
  return {size.ws_col, size.ws_row};
}

PtyPair HandOverConsole(const std::filesystem::path& console_socket) {
  PtyPair pty = OpenRawPty();
  AcquireControllingTerminal(pty.slave.get());
  SendFdToSocketPath(console_socket, pty.master.get());
  pty.master.reset();  // the caller's now: ours would keep its reads from ending
  return pty;
}

}  // namespace uvmshim::runc
