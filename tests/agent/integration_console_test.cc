// The Console rpc: a shell on a pty in the agent's own environment.
#include "tests/agent/integration_fixture.h"

namespace uvmshim::agent::testing {
namespace {

using Console = AgentIntegrationTest;

struct ConsoleResult {
  std::string output;
  bool exited = false;
  uint32_t exit_status = 0;
  grpc::Status status;
};

ConsoleResult RunConsole(AgentProcess& agent, const std::vector<std::string>& command,
                         const std::vector<std::string>& inputs, uint32_t width = 0, uint32_t height = 0) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto stream = agent.stub().Console(&context);
  pb::ConsoleInput first;
  for (const auto& c : command) first.add_command(c);
  first.set_width(width);
  first.set_height(height);
  stream->Write(first);
  for (const auto& input : inputs) {
    pb::ConsoleInput message;
    message.set_data(input);
    stream->Write(message);
  }
  ConsoleResult result;
  pb::ConsoleOutput output;
  while (stream->Read(&output)) {
    result.output += output.data();
    if (output.exited()) {
      result.exited = true;
      result.exit_status = output.exit_status();
      stream->WritesDone();
    }
  }
  result.status = stream->Finish();
  return result;
}

TEST_F(Console, ShellRunsCommandsAndReportsItsExit) {
  auto r = RunConsole(agent(), {}, {"echo $((6*7))\n", "exit 5\n"});
  EXPECT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_TRUE(r.exited);
  EXPECT_EQ(r.exit_status, 5u);
  EXPECT_NE(r.output.find("42"), std::string::npos) << r.output;
}

TEST_F(Console, CommandAndSizeFromTheFirstMessage) {
  auto r = RunConsole(agent(), {"sh", "-c", "stty size; tty"}, {}, 100, 30);
  EXPECT_TRUE(r.exited);
  EXPECT_EQ(r.exit_status, 0u);
  EXPECT_EQ(r.output.substr(0, 8), "30 100\r\n") << r.output;
  EXPECT_NE(r.output.find("/dev/pts/"), std::string::npos);
}

TEST_F(Console, RunsOutsideEveryContainer) {
  // The console sees the host's (agent's) filesystem, e.g. the agent's socket.
  auto r = RunConsole(agent(), {"sh", "-c", "test -S " + agent().socket_path() + " && echo outside"}, {});
  EXPECT_NE(r.output.find("outside"), std::string::npos) << r.output;
}

TEST_F(Console, ClosingInputSendsEof) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto stream = agent().stub().Console(&context);
  pb::ConsoleInput first;
  first.add_command("cat");
  first.set_data("hello\n");
  stream->Write(first);
  stream->WritesDone();
  std::string output;
  pb::ConsoleOutput message;
  bool exited = false;
  while (stream->Read(&message)) {
    output += message.data();
    exited |= message.exited();
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_TRUE(exited);
  EXPECT_NE(output.find("hello"), std::string::npos);
}

TEST_F(Console, MissingCommand) {
  auto r = RunConsole(agent(), {"/no/such/shell"}, {});
  EXPECT_TRUE(r.exited);
  EXPECT_EQ(r.exit_status, 127u);
  EXPECT_NE(r.output.find("uvm-agent: exec \"/no/such/shell\""), std::string::npos) << r.output;
}

}  // namespace
}  // namespace uvmshim::agent::testing
