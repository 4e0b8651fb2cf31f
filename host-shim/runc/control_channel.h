// The monitor's control socket, <root>/<id>/control.sock: one JSON message
// per SOCK_SEQPACKET record, optionally carrying file descriptors
// (SCM_RIGHTS: an exec's stdio or pty). The directory is 0700, so only root
// reaches it; paths go through /proc/self/fd/<dir> because a --root can make
// the socket path longer than sun_path holds.
#pragma once

#include <filesystem>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/unique_fd.h"

namespace uvmshim::runc {

inline constexpr const char* kControlSocketName = "control.sock";

struct Message {
  nlohmann::json body;
  std::vector<UniqueFd> fds;
};

// Binds and listens at <dir>/control.sock. Throws std::runtime_error.
UniqueFd ListenControl(const std::filesystem::path& dir);
// Connects to <dir>/control.sock; throws std::runtime_error ("container not running" when refused).
UniqueFd ConnectControl(const std::filesystem::path& dir);

// Throws std::runtime_error on a send failure.
void SendMessage(int fd, const nlohmann::json& body, const std::vector<int>& fds = {});
// nullopt at EOF; throws std::runtime_error on errors or a malformed message.
std::optional<Message> ReceiveMessage(int fd);

// One request and its answer; throws std::runtime_error with the monitor's error text.
nlohmann::json Call(const std::filesystem::path& dir, const nlohmann::json& request, const std::vector<int>& fds = {});

// Sends `fd` over the Unix socket at `socket_path` (runc's --console-socket).
void SendFdToSocketPath(const std::filesystem::path& socket_path, int fd);

}  // namespace uvmshim::runc
