// A unix socket that is listened on but never accepted or answered: an agent
// that took the connection and went silent (a stopped VM's chardev socket, a
// frozen agent). Lives in its own temp dir, removed with it.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "common/unique_fd.h"

namespace uvmshim::host::test {

class SilentAgentSocket {
 public:
  SilentAgentSocket() {
    char dir_template[] = "/tmp/uvmshim-silent.XXXXXX";
    dir_ = ::mkdtemp(dir_template);
    path_ = dir_ + "/agent.sock";
    fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path_.c_str(), sizeof address.sun_path - 1);
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(::listen(fd_.get(), 64), 0);  // many clients may connect at once, none is accepted
  }
  ~SilentAgentSocket() { std::filesystem::remove_all(dir_); }
  SilentAgentSocket(const SilentAgentSocket&) = delete;
  SilentAgentSocket& operator=(const SilentAgentSocket&) = delete;
  std::string target() const { return "unix:" + path_; }

 private:
  std::string dir_;
  std::string path_;
  UniqueFd fd_;
};

}  // namespace uvmshim::host::test
