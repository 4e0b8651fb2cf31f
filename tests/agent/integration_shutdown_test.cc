// How the agent ends: Shutdown's answer reaches the client once the
// containers are gone, then the agent exits by itself, without a graceful gRPC shutdown that would wait for its
// clients to hang up (the shim holds its channel until the agent is gone).
// And --listen-fd: a socket bound by the parent before the agent runs.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "tests/agent/integration_fixture.h"

namespace uvmshim::agent::testing {
namespace {

using Shutdown = AgentIntegrationTest;

UniqueFd ConnectRaw(const std::string& path) {
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size());
  if (!fd || connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
    throw std::runtime_error("connect " + path + ": " + std::strerror(errno));
  return fd;
}

// Reads what the agent sends on a raw HTTP/2 connection until `stop` says so
// or the connection ends; false when nothing came for 30 s (a hang).
template <class Stop>
bool ReadFrames(int fd, std::string& bytes, Stop stop) {
  char buffer[4096];
  while (!stop(bytes)) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 30000) != 1) return false;
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n <= 0) return true;  // EOF (or reset): the agent closed it
    bytes.append(buffer, static_cast<size_t>(n));
  }
  return true;
}

// HTTP/2 frame types in `bytes` (9-byte headers: 24-bit length, type, ...).
std::vector<int> FrameTypes(const std::string& bytes) {
  std::vector<int> types;
  for (size_t at = 0; at + 9 <= bytes.size();) {
    auto byte = [&](size_t i) { return static_cast<unsigned char>(bytes[at + i]); };
    size_t length = (size_t{byte(0)} << 16) | (size_t{byte(1)} << 8) | byte(2);
    types.push_back(byte(3));
    at += 9 + length;
  }
  return types;
}

constexpr int kSettings = 0x4;
constexpr int kGoAway = 0x7;

TEST_F(Shutdown, AnswersThenExitsWithoutWaitingForClientsToHangUp) {
  StartSleeper(agent(), "c1");
  // A second client that never hangs up and never answers a GOAWAY: it sends
  // the HTTP/2 preface and its SETTINGS, then only reads.
  UniqueFd raw = ConnectRaw(agent().socket_path());
  const std::string preface = std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + std::string("\0\0\0\4\0\0\0\0\0", 9);
  ASSERT_EQ(write(raw.get(), preface.data(), preface.size()), static_cast<ssize_t>(preface.size()));
  std::string received;
  auto has_settings = [](const std::string& bytes) {
    for (int type : FrameTypes(bytes))
      if (type == kSettings) return true;
    return false;
  };
  ASSERT_TRUE(ReadFrames(raw.get(), received, has_settings)) << "the agent did not adopt the raw connection";
  ASSERT_TRUE(has_settings(received));

  // The fixture's channel stays connected throughout.
  grpc::ClientContext context;
  pb::ShutdownResponse response;
  grpc::Status status = stub().Shutdown(&context, pb::ShutdownRequest(), &response);
  ASSERT_TRUE(status.ok()) << "Shutdown's answer was lost: " << status.error_message();

  // The agent ends the raw connection by exiting: no GOAWAY, which would mean
  // a graceful server shutdown waiting (up to its deadline) for us.
  ASSERT_TRUE(ReadFrames(raw.get(), received, [](const std::string&) { return false; }))
      << "the raw connection stayed open";
  for (int type : FrameTypes(received)) EXPECT_NE(type, kGoAway) << "the agent started a graceful shutdown";
  auto exit = agent().WaitExit(std::chrono::seconds(20));
  ASSERT_TRUE(exit.has_value()) << "the agent did not exit after Shutdown";
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << *exit;
  EXPECT_TRUE(agent().Children().empty());
}

// The answer means the agent has nothing left to do: its containers are gone
// by then (the shim ends a utility VM as soon as it has the answer, without
// waiting for the guest's power-off: host-shim/vm_agent_host.cc).
TEST_F(Shutdown, AnswersOnlyOnceItsContainersAreGone) {
  StartSleeper(agent(), "c1");
  StartSleeper(agent(), "c2");
  ASSERT_FALSE(agent().Children().empty());
  grpc::ClientContext context;
  pb::ShutdownResponse response;
  ASSERT_TRUE(stub().Shutdown(&context, pb::ShutdownRequest(), &response).ok());
  EXPECT_TRUE(agent().Children().empty()) << "Shutdown answered while a container still ran";
  auto exit = agent().WaitExit(std::chrono::seconds(20));
  ASSERT_TRUE(exit.has_value()) << "the agent did not exit after Shutdown";
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << *exit;
}

// Runs uvm-agent with `listener` (or an fd that is not one) as --listen-fd 3.
pid_t SpawnWithListenFd(const std::string& socket_path, int fd, const std::string& log_path,
                        const std::string& cgroup_parent) {
  std::vector<std::string> args = {AgentBinary(), "--listen", "unix://" + socket_path, "--listen-fd", "3",
                                   "--cgroup-parent", cgroup_parent};
  return SpawnAgentLoggingTo(args, log_path, fd);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(ListenFd, ServesAConnectionMadeBeforeTheAgentRan) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (cgroups)";
  TempDir dir;
  const std::string socket_path = dir.path() + "/agent.sock";
  const std::string cgroup_parent = "uvmshim-test-listenfd-" + std::to_string(getpid());
  UniqueFd listener(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size());
  ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(listen(listener.get(), 4), 0);
  // Connected before the agent exists: the kernel queues it, the agent serves it.
  UniqueFd early = ConnectRaw(socket_path);
  pid_t pid = SpawnWithListenFd(socket_path, listener.get(), dir.path() + "/agent.log", cgroup_parent);
  listener.reset();
  const std::string preface = std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + std::string("\0\0\0\4\0\0\0\0\0", 9);
  ASSERT_EQ(write(early.get(), preface.data(), preface.size()), static_cast<ssize_t>(preface.size()));
  std::string received;
  auto has_settings = [](const std::string& bytes) {
    for (int type : FrameTypes(bytes))
      if (type == kSettings) return true;
    return false;
  };
  EXPECT_TRUE(ReadFrames(early.get(), received, has_settings) && has_settings(received))
      << "the early connection was not served\n" << ReadFile(dir.path() + "/agent.log");
  auto channel = ConnectUnix(socket_path);
  auto stub = pb::Agent::NewStub(channel);
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    context.set_wait_for_ready(true);
    pb::PingResponse pong;
    grpc::Status ping = stub->Ping(&context, pb::PingRequest(), &pong);
    EXPECT_TRUE(ping.ok()) << ping.error_message() << "\n" << ReadFile(dir.path() + "/agent.log");
  }
  grpc::ClientContext context;
  pb::ShutdownResponse response;
  EXPECT_TRUE(stub->Shutdown(&context, pb::ShutdownRequest(), &response).ok());
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);  // ends by itself, or the test hangs (ctest's timeout)
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_NE(access(socket_path.c_str(), F_OK), 0) << "the agent left its socket behind";
}

TEST(ListenFd, RefusesAnFdThatIsNotAListeningSocket) {
  TempDir dir;
  UniqueFd not_a_socket(open("/dev/null", O_RDONLY | O_CLOEXEC));
  const std::string log_path = dir.path() + "/agent.log";
  pid_t pid = SpawnWithListenFd(dir.path() + "/agent.sock", not_a_socket.get(), log_path, "");
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << status;
  std::string log = ReadFile(log_path);
  EXPECT_NE(log.find("--listen-fd 3"), std::string::npos) << log;
  EXPECT_NE(log.find("not a listening socket"), std::string::npos) << log;
}

}  // namespace
}  // namespace uvmshim::agent::testing
