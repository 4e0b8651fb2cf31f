// A StdioRelay destroyed right after Start (a create that fails once the relay
// of its never-started init runs; a task deleted before it started) must end
// promptly. Its streams never end on their own then: the agent's process never
// ran. The destructor cancels the streams; one whose thread had not yet
// registered its call was missed and blocked the join forever (~Task hung).
// The peer here answers nothing, so only cancellation can end a stream.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <string>

#include "agent_client.h"
#include "common/unique_fd.h"
#include "stdio_relay.h"
#include "silent_agent_socket.h"
#include "uvm/agent_channel.h"

namespace uvmshim::host {
namespace {

using namespace std::chrono_literals;

using test::SilentAgentSocket;

struct PipePair {
  PipePair() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
  }
  UniqueFd read_end;
  UniqueFd write_end;
};

TEST(StdioRelayTeardown, DestroyedRightAfterStartEndsPromptly) {
  SilentAgentSocket silent;
  AgentClient agent(uvm::MakeAgentChannel(silent.target()));
  PipePair in, out, err;
  constexpr int kRounds = 200;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    // The destructor runs on another thread so a hang fails the test instead of stalling it.
    auto done = std::async(std::launch::async, [&] {
      StdioRelay relay(agent, "c", "", StdioFds{in.read_end.get(), out.write_end.get(), err.write_end.get()}, false);
      relay.Start();
    });
    if (done.wait_for(10s) != std::future_status::ready) {
      ADD_FAILURE() << "~StdioRelay hung after Start: a stream it did not cancel";
      std::_Exit(1);  // the stuck thread cannot be joined; end before the test binary hangs
    }
  }
}

}  // namespace
}  // namespace uvmshim::host
