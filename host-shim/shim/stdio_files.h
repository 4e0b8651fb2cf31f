// Opens the stdio destinations containerd names for a process: FIFO paths
// (the client already opened its ends), file:///path, binary:///path?args.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/unique_fd.h"

namespace uvmshim::shim {

struct StdioPaths {
  std::string stdin_path;
  std::string stdout_path;
  std::string stderr_path;
  bool terminal = false;
};

class StdioFiles {
 public:
  // Throws std::runtime_error naming the path that failed.
  StdioFiles(const StdioPaths& paths, const std::string& container_id, const std::string& ns);
  ~StdioFiles();  // closes, ends a logging binary
  StdioFiles(const StdioFiles&) = delete;
  StdioFiles& operator=(const StdioFiles&) = delete;

  int stdin_fd() const { return stdin_.get(); }
  int stdout_fd() const { return stdout_.get(); }
  int stderr_fd() const { return stderr_.get(); }
  // Closes stdout/stderr so their readers see EOF (after the last byte). A
  // FIFO is closed once its client drained it (bounded): see stdio_files.cc.
  void CloseOutputs();

 private:
  void StartLoggingBinary(const std::string& uri, const std::string& container_id,
                          const std::string& ns);
  UniqueFd stdin_;
  UniqueFd stdout_;
  UniqueFd stderr_;
  pid_t logger_pid_ = -1;
  bool stdout_holds_read_end_ = false;  // opened O_RDWR: no client reader yet
  bool stderr_holds_read_end_ = false;
  std::string stdout_fifo_;  // FIFO paths ("" for files, pipes), for the drain on close
  std::string stderr_fifo_;
};

}  // namespace uvmshim::shim
