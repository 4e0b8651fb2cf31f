#include "terminal.h"

#include <sys/ioctl.h>
#include <unistd.h>

namespace uvmshim::host {

RawTerminal::RawTerminal(int fd) : fd_(fd) {
  termios mode{};
  if (!::isatty(fd) || ::tcgetattr(fd, &mode) != 0) return;
  saved_ = mode;
  ::cfmakeraw(&mode);
  ::tcsetattr(fd, TCSANOW, &mode);
}

RawTerminal::~RawTerminal() {
  if (saved_) ::tcsetattr(fd_, TCSANOW, &*saved_);
}

std::optional<std::pair<unsigned, unsigned>> WindowSize(int fd) {
  winsize size{};
  if (::ioctl(fd, TIOCGWINSZ, &size) != 0 || size.ws_col == 0) return std::nullopt;
  return std::make_pair(unsigned{size.ws_col}, unsigned{size.ws_row});
}

}  // namespace uvmshim::host
