// What uvmctl does with a shim: start one for a new container, attach the
// caller's stdio through FIFOs (as containerd's clients do), run processes.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <functional>
#include <thread>
#include <vector>

#include "shim/task_client.h"
#include "common/unique_fd.h"

namespace uvmshim::uvmctl {

// stdio of one process, relayed between this terminal and FIFOs the shim writes.
class FifoStdio {
 public:
  // Creates the FIFOs in dir; with detach_to set, output goes to that file
  // instead (file://), nothing is attached.
  FifoStdio(const std::filesystem::path& dir, const std::string& prefix, bool stdin_wanted,
            bool terminal);
  ~FifoStdio();
  std::string stdin_path() const { return stdin_path_; }
  std::string stdout_path() const { return stdout_path_; }
  std::string stderr_path() const { return stderr_path_; }
  // After the shim opened its ends (after Create/Exec): starts copying.
  // on_stdin_eof is called once our stdin is exhausted (send CloseIO then).
  void Attach(std::function<void()> on_stdin_eof);
  // Waits until the shim closed the outputs (all output written).
  void WaitOutputs();

 private:
  std::string stdin_path_, stdout_path_, stderr_path_;
  UniqueFd stdout_read_, stderr_read_;
  UniqueFd stdin_write_;
  UniqueFd stop_;
  std::vector<std::thread> outputs_;
  std::thread input_;
};

}  // namespace uvmshim::uvmctl
