// The keeper's control socket: one text line per message.
//   claimer -> keeper  "CLAIM <sandbox id>"  answer "OK <qemu pid>" or "NO <why>"
//                      then the connection IS the claim: "KILL" or its close
//                      ends the VM; the keeper writes "EXIT <reason> <detail>"
//                      when the VM has ended and closes.
//   anyone  -> keeper  "DRAIN" (idle VMs only)  answer "OK"
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "common/unique_fd.h"

namespace uvmshim::host::pool {

std::filesystem::path KeeperSocketPath(const std::filesystem::path& vm_dir);

// Throws std::runtime_error naming the socket when nobody listens.
UniqueFd ConnectKeeper(const std::filesystem::path& vm_dir);
bool SendLine(int fd, const std::string& line);
// One line without its '\n'; nullopt on EOF, error or timeout (-1 = none).
std::optional<std::string> ReadLine(int fd, int timeout_ms);

// Removes what a keeper killed with -9 left: detaches mounts, kills the VM's
// QEMU and virtiofsd if they still run (pids in vm.conf, checked against
// their command lines), removes the dir and its socket dir.
void KeeperLeftovers(const std::filesystem::path& vm_dir);

}  // namespace uvmshim::host::pool
