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
#include "silent_agent_socket.h"
#include "uvm/agent_channel.h"

namespace uvmshim::host {
namespace {

using namespace std::chrono_literals;

using test::SilentAgentSocket;

TEST(AgentDeadline, LifecycleDeadlineScalesWithTheMeasuredStartup) {
  const AgentDeadlines configured{30s, 120s};
  // A quick start (KVM, an idle machine, a warm VM): the configured deadlines.
  auto quick = ScaledForStartup(configured, 2s);
  EXPECT_EQ(quick.call, 30s);
  EXPECT_EQ(quick.lifecycle, 120s);
  // A boot that took 70 s (TCG on a loaded machine): create/start/exec get 3x that, the short
  // calls keep theirs (a stalled agent must still fail them quickly).
  auto slow = ScaledForStartup(configured, 70s);
  EXPECT_EQ(slow.call, 30s);
  EXPECT_EQ(slow.lifecycle, 210s);
}

TEST(AgentDeadline, EveryKindOfCallEndsWithinItsDeadline) {
  SilentAgentSocket silent;
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
  SilentAgentSocket silent;
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
