// The host terminal for interactive sessions: raw mode while alive, and the
// current window size.
#pragma once

#include <termios.h>

#include <optional>
#include <utility>

namespace uvmshim::host {

class RawTerminal {
 public:
  // Puts fd in raw mode when it is a terminal; restores it on destruction.
  explicit RawTerminal(int fd);
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  int fd_;
  std::optional<termios> saved_;
};

// (columns, rows) of the terminal on fd, if it is one.
std::optional<std::pair<unsigned, unsigned>> WindowSize(int fd);

}  // namespace uvmshim::host
