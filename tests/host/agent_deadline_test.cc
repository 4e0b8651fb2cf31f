// Agent calls carry deadlines: an agent that accepted the connection but never
// answers (a stopped VM's chardev socket, a frozen agent) turns into an error
// within the call's deadline, never a hang.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "agent_client.h"
#include "uvm/agent_channel.h"

namespace uvmshim::host {
namespace {

using namespace std::chrono_literals;

// A unix socket that is listened on but never accepted or answered.
class SilentSocket {
 public:
  SilentSocket() {
    char dir_template[] = "/tmp/uvmshim-deadline.XXXXXX";
    dir_ = ::mkdtemp(dir_template);
    path_ = dir_ + "/agent.sock";
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path_.c_str(), sizeof address.sun_path - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
  }
  ~SilentSocket() {
    ::close(fd_);
    std::filesystem::remove_all(dir_);
  }
  std::string target() const { return "unix:" + path_; }

 private:
  std::string dir_;
  std::string path_;
  int fd_ = -1;
};

TEST(AgentDeadline, EveryKindOfCallEndsWithinItsDeadline) {
  SilentSocket silent;
  AgentClient agent(uvm::MakeAgentChannel(silent.target()), AgentDeadlines{300ms, 600ms});
  auto expect_unanswered = [](const char* what, auto&& call, std::chrono::milliseconds deadline) {
    const auto start = std::chrono::steady_clock::now();
    try {
      call();
      ADD_FAILURE() << what << ": answered by a silent socket";
    } catch (const AgentError& e) {
      EXPECT_TRUE(IsUnanswered(e)) << what << ": " << e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, deadline + 2s) << what;
  };
  expect_unanswered("SignalProcess", [&] { agent.SignalProcess("c", "", 9, false); }, 300ms);
  expect_unanswered("ListProcesses", [&] { agent.ListProcesses("c"); }, 300ms);
  expect_unanswered("Stats", [&] { agent.Stats("c"); }, 300ms);
  expect_unanswered("DeleteContainer", [&] { agent.DeleteContainer("c", true); }, 300ms);
  expect_unanswered("StartContainer", [&] { agent.StartContainer("c"); }, 600ms);
  agentpb::ExecProcessRequest exec;
  exec.set_container_id("c");
  exec.set_exec_id("e");
  expect_unanswered("ExecProcess", [&] { agent.ExecProcess(exec); }, 600ms);
}

TEST(AgentDeadline, DeadlineErrorsSayTheAgentDidNotAnswer) {
  SilentSocket silent;
  AgentClient agent(uvm::MakeAgentChannel(silent.target()), AgentDeadlines{200ms, 200ms});
  try {
    agent.ListProcesses("c1");
    FAIL() << "answered by a silent socket";
  } catch (const AgentError& e) {
    if (e.code() == grpc::StatusCode::DEADLINE_EXCEEDED)
      EXPECT_NE(std::string(e.what()).find("did not answer in time"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("ListProcesses c1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace uvmshim::host
