// The stdio rules: all output before the exit reaches the reader before Wait
// answers, background children cannot hang an exit, stdin EOF arrives,
// terminals resize, big outputs arrive intact.
#include <cstdio>
#include <fstream>
#include <thread>

#include "tests/agent/integration_fixture.h"

namespace uvmshim::agent::testing {
namespace {

using Stdio = AgentIntegrationTest;

void CreateContainer(AgentProcess& agent, const std::string& id, const SpecOptions& options, bool stdin_open) {
  grpc::ClientContext context;
  pb::CreateContainerRequest request;
  request.set_container_id(id);
  request.set_spec_json(MakeSpec(options));
  request.set_terminal(options.terminal);
  request.set_stdin(stdin_open);
  pb::CreateContainerResponse response;
  auto status = agent.stub().CreateContainer(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
}

void Start(AgentProcess& agent, const std::string& id) {
  grpc::ClientContext context;
  pb::StartContainerRequest request;
  request.set_container_id(id);
  pb::StartContainerResponse response;
  auto status = agent.stub().StartContainer(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
}

void Exec(AgentProcess& agent, const std::string& id, const std::string& exec_id,
          const std::vector<std::string>& args, bool terminal = false, bool stdin_open = false) {
  grpc::ClientContext context;
  pb::ExecProcessRequest request;
  request.set_container_id(id);
  request.set_exec_id(exec_id);
  request.set_process_json(MakeProcessJson(args, terminal));
  request.set_terminal(terminal);
  request.set_stdin(stdin_open);
  pb::ExecProcessResponse response;
  auto status = agent.stub().ExecProcess(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
}

grpc::Status WriteStdin(AgentProcess& agent, const std::string& id, const std::string& exec_id,
                        const std::vector<std::string>& data, bool eof) {
  grpc::ClientContext context;
  pb::WriteStdinResponse response;
  auto writer = agent.stub().WriteStdin(&context, &response);
  for (size_t i = 0; i < data.size() || (i == 0 && data.empty()); ++i) {
    pb::StdinChunk chunk;
    if (i == 0) {
      chunk.set_container_id(id);
      chunk.set_exec_id(exec_id);
    }
    if (i < data.size()) chunk.set_data(data[i]);
    chunk.set_eof(eof && i + 1 >= data.size());
    if (!writer->Write(chunk)) break;
  }
  writer->WritesDone();
  return writer->Finish();
}

grpc::Status Resize(AgentProcess& agent, const std::string& id, const std::string& exec_id, uint32_t w, uint32_t h) {
  grpc::ClientContext context;
  pb::ResizePtyRequest request;
  request.set_container_id(id);
  request.set_exec_id(exec_id);
  request.set_width(w);
  request.set_height(h);
  pb::ResizePtyResponse response;
  return agent.stub().ResizePty(&context, request, &response);
}

std::string Sha256(const std::string& data, const std::string& dir) {
  std::string path = dir + "/sha-input";
  {
    std::ofstream out(path, std::ios::binary);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
  }
  FILE* pipe = popen(("sha256sum " + path).c_str(), "r");
  char line[200] = {};
  if (!fgets(line, sizeof line, pipe)) line[0] = '\0';
  pclose(pipe);
  return std::string(line).substr(0, 64);
}

TEST_F(Stdio, EveryByteBeforeExitArrivesBeforeWaitAnswers) {
  // Short-lived processes that write a lot right before exiting, repeatedly.
  StartSleeper(agent(), "c1");
  for (int i = 0; i < 20; ++i) {
    std::string exec_id = "e" + std::to_string(i);
    auto r = RunExec(agent(), "c1", exec_id, {"sh", "-c", "seq 1 20000; echo last >&2"});
    ASSERT_EQ(r.exit_status, 0u);
    ASSERT_EQ(r.out.size(), 108894u) << "round " << i;  // bytes of `seq 1 20000`
    ASSERT_EQ(r.out.substr(r.out.size() - 6), "20000\n");
    ASSERT_EQ(r.err, "last\n");
  }
  DeleteContainer(agent(), "c1");
}

TEST_F(Stdio, WaitReturnsAfterAttachedReadersDelivered) {
  StartSleeper(agent(), "c1");
  Exec(agent(), "c1", "e1", {"sh", "-c", "head -c 3000000 /dev/zero"});
  OutputReader out(agent().stub(), "c1", "e1", pb::STDOUT);
  ASSERT_TRUE(out.WaitAttached());
  pb::WaitProcessResponse wait;
  ASSERT_TRUE(Wait(agent(), "c1", "e1", &wait).ok());
  // Wait answered only after the agent handed over every byte.
  EXPECT_TRUE(out.Ended(std::chrono::seconds(5)));
  EXPECT_EQ(out.Finish().size(), 3000000u);
  DeleteContainer(agent(), "c1");
}

TEST_F(Stdio, BackgroundChildDoesNotHangTheExit) {
  StartSleeper(agent(), "c1");
  auto start = std::chrono::steady_clock::now();
  auto r = RunExec(agent(), "c1", "e1", {"sh", "-c", "sleep 1000 & echo done"});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(r.out, "done\n");
  EXPECT_EQ(r.exit_status, 0u);
  DeleteContainer(agent(), "c1");
}

TEST_F(Stdio, BackgroundChildOfInitDoesNotHangTheExit) {
  auto start = std::chrono::steady_clock::now();
  auto r = RunContainer(agent(), "c1", {"sh", "-c", "sleep 1000 & echo done"});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(r.out, "done\n");
}

TEST_F(Stdio, StdinEofReachesTheProcess) {
  SpecOptions options;
  options.args = {"cat"};
  CreateContainer(agent(), "c1", options, true);
  OutputReader out(agent().stub(), "c1", "", pb::STDOUT);
  ASSERT_TRUE(out.WaitAttached());
  Start(agent(), "c1");
  auto status = WriteStdin(agent(), "c1", "", {"abc\n"}, true);
  EXPECT_TRUE(status.ok()) << status.error_message();
  pb::WaitProcessResponse wait;
  ASSERT_TRUE(Wait(agent(), "c1", "", &wait, std::chrono::seconds(10)).ok());
  EXPECT_EQ(wait.exit_status(), 0u);
  EXPECT_EQ(out.Finish(), "abc\n");
  DeleteContainer(agent(), "c1");
}

TEST_F(Stdio, StdinOfAnExecAndCloseStdin) {
  StartSleeper(agent(), "c1");
  Exec(agent(), "c1", "e1", {"sh", "-c", "wc -c"}, false, true);
  OutputReader out(agent().stub(), "c1", "e1", pb::STDOUT);
  ASSERT_TRUE(out.WaitAttached());
  std::string big(3 << 20, 'z');  // more than the pipe holds: backpressure
  EXPECT_TRUE(WriteStdin(agent(), "c1", "e1", {big, "tail"}, false).ok());
  grpc::ClientContext context;
  pb::CloseStdinRequest request;
  request.set_container_id("c1");
  request.set_exec_id("e1");
  pb::CloseStdinResponse response;
  ASSERT_TRUE(agent().stub().CloseStdin(&context, request, &response).ok());
  pb::WaitProcessResponse wait;
  ASSERT_TRUE(Wait(agent(), "c1", "e1", &wait, std::chrono::seconds(10)).ok());
  EXPECT_EQ(out.Finish(), std::to_string((3 << 20) + 4) + "\n");
  DeleteContainer(agent(), "c1");
}

TEST_F(Stdio, WithoutStdinTheProcessReadsDevNull) {
  auto r = RunContainer(agent(), "c1", {"sh", "-c", "cat; echo eof"});
  EXPECT_EQ(r.out, "eof\n");
}

TEST_F(Stdio, SixteenMebibytesArriveIntact) {
  auto r = RunContainer(agent(), "c1",
                        {"sh", "-c", "head -c 16777216 /dev/urandom > /tmp/f; cat /tmp/f; sha256sum /tmp/f >&2"});
  ASSERT_EQ(r.exit_status, 0u) << r.err;
  ASSERT_EQ(r.out.size(), 16777216u);
  ASSERT_GE(r.err.size(), 64u);
  EXPECT_EQ(Sha256(r.out, agent().dir()), r.err.substr(0, 64));
}

TEST_F(Stdio, TerminalInitWithResize) {
  SpecOptions options;
  options.terminal = true;
  options.args = {"sh", "-c", "stty size; tty; test -t 0 && echo tty0"};
  CreateContainer(agent(), "c1", options, false);
  OutputReader out(agent().stub(), "c1", "", pb::STDOUT);
  ASSERT_TRUE(out.WaitAttached());
  ASSERT_TRUE(Resize(agent(), "c1", "", 132, 50).ok());
  Start(agent(), "c1");
  pb::WaitProcessResponse wait;
  ASSERT_TRUE(Wait(agent(), "c1", "", &wait).ok());
  EXPECT_EQ(wait.exit_status(), 0u);
  EXPECT_EQ(out.Finish(), "50 132\r\n/dev/pts/0\r\ntty0\r\n");
  DeleteContainer(agent(), "c1");
}

TEST_F(Stdio, TerminalExecResizeWhileRunningAndEof) {
  StartSleeper(agent(), "c1");
  Exec(agent(), "c1", "t1", {"sh", "-c", "stty -echo; read line; stty size; cat; echo end"}, true, true);
  OutputReader out(agent().stub(), "c1", "t1", pb::STDOUT);
  ASSERT_TRUE(out.WaitAttached());
  ASSERT_TRUE(Resize(agent(), "c1", "t1", 100, 40).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let stty -echo run first
  EXPECT_TRUE(WriteStdin(agent(), "c1", "t1", {"go\n", "partial"}, true).ok());
  pb::WaitProcessResponse wait;
  ASSERT_TRUE(Wait(agent(), "c1", "t1", &wait, std::chrono::seconds(10)).ok());
  EXPECT_EQ(wait.exit_status(), 0u);
  std::string text = out.Finish();
  EXPECT_NE(text.find("40 100"), std::string::npos) << text;
  EXPECT_NE(text.find("partial"), std::string::npos) << text;  // VEOF flushed the partial line
  EXPECT_NE(text.find("end"), std::string::npos) << text;      // and a second VEOF ended cat
  grpc::ClientContext context;
  pb::ReadOutputRequest request;  // a terminal has no separate stderr: empty stream
  EXPECT_EQ(Resize(agent(), "c1", "nosuch", 10, 10).error_code(), grpc::StatusCode::NOT_FOUND);
  DeleteContainer(agent(), "c1");
}

TEST_F(Stdio, ResizeWithoutTerminalFails) {
  StartSleeper(agent(), "c1");
  EXPECT_EQ(Resize(agent(), "c1", "", 80, 24).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  DeleteContainer(agent(), "c1");
}

TEST_F(Stdio, WaitBeforeStartWaitsAndManyWaitersGetTheSameStatus) {
  SpecOptions options;
  options.args = {"sh", "-c", "exit 42"};
  CreateContainer(agent(), "c1", options, false);
  pb::WaitProcessResponse early;
  EXPECT_EQ(Wait(agent(), "c1", "", &early, std::chrono::milliseconds(300)).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  std::vector<std::thread> waiters;
  std::vector<uint32_t> statuses(8, 0);
  for (size_t i = 0; i < statuses.size(); ++i)
    waiters.emplace_back([&, i] {
      pb::WaitProcessResponse wait;
      if (Wait(agent(), "c1", "", &wait).ok()) statuses[i] = wait.exit_status();
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  Start(agent(), "c1");
  for (auto& t : waiters) t.join();
  for (auto s : statuses) EXPECT_EQ(s, 42u);
  pb::WaitProcessResponse again;
  ASSERT_TRUE(Wait(agent(), "c1", "", &again).ok());
  EXPECT_EQ(again.exit_status(), 42u);
  DeleteContainer(agent(), "c1");
}

TEST_F(Stdio, ASecondReaderOfTheSameStreamIsRefused) {
  StartSleeper(agent(), "c1");
  Exec(agent(), "c1", "e1", {"sleep", "1000"});
  OutputReader first(agent().stub(), "c1", "e1", pb::STDOUT);
  ASSERT_TRUE(first.WaitAttached());
  OutputReader second(agent().stub(), "c1", "e1", pb::STDOUT);
  ASSERT_TRUE(second.Ended(std::chrono::seconds(5)));
  EXPECT_EQ(second.status().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  DeleteContainer(agent(), "c1");
}

TEST_F(Stdio, SlowReaderSlowsTheWriterWithoutLosingData) {
  StartSleeper(agent(), "c1");
  Exec(agent(), "c1", "e1", {"sh", "-c", "head -c 20000000 /dev/zero; echo finished >&2"});
  OutputReader err(agent().stub(), "c1", "e1", pb::STDERR);
  ASSERT_TRUE(err.WaitAttached());
  // No stdout reader yet: the writer must block (pipe + nothing read).
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(err.data_so_far(), "");
  OutputReader out(agent().stub(), "c1", "e1", pb::STDOUT);
  pb::WaitProcessResponse wait;
  ASSERT_TRUE(Wait(agent(), "c1", "e1", &wait).ok());
  EXPECT_EQ(out.Finish().size(), 20000000u);
  EXPECT_EQ(err.Finish(), "finished\n");
  DeleteContainer(agent(), "c1");
}

}  // namespace
}  // namespace uvmshim::agent::testing
