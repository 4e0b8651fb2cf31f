// Helpers of the QEMU tests: private temp dirs, the image under test, leak
// checks (child processes, sockets).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"
#include "uvm/utility_vm.h"

namespace uvmshim::uvm::test {

using TempDir = uvmshim::testing::TempDir;

std::filesystem::path UvmImageDir();
std::filesystem::path BareImageDir();

// A config booting the uvm-image with its state in `state_dir`.
VmConfig ImageConfig(const std::string& id, const std::filesystem::path& state_dir);

// Pids whose parent is this process (QEMU, virtiofsd...).
std::vector<pid_t> ChildPids();
bool ProcessExists(pid_t pid);
// Socket files left in `dir` (recursively).
std::vector<std::filesystem::path> SocketsIn(const std::filesystem::path& dir);

// Runs a shell command; returns its exit status.
int Shell(const std::string& command);

// The whole file as bytes ("" when it cannot be read).
std::string ReadFile(const std::filesystem::path& path);

// Waits until the file (a log another process appends to) contains `text`;
// false after `timeout`. Wakes on each write (inotify), not on a sleep.
bool WaitForFileText(const std::filesystem::path& path, const std::string& text, std::chrono::seconds timeout);

}  // namespace uvmshim::uvm::test
