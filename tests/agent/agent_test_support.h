// Helpers for tests that talk to a real uvm-agent process.
//
//   AgentProcess agent;                 // uvm-agent on <tmp>/agent.sock, killed by pid at scope end
//   auto r = RunContainer(agent, "c1", {"sh", "-c", "echo hi"});
//   EXPECT_EQ(r.out, "hi\n");
//
// The busybox rootfs comes from tests/fixtures/make-busybox-rootfs.sh, built
// by the CMake target uvmshim_busybox_rootfs (BusyboxRootfs()).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "agent.grpc.pb.h"

namespace uvmshim::agent::testing {

namespace pb = ::uvmshim::agent::v1;

std::string AgentBinary();
// Spawns ARGS with stdin from /dev/null, stdout and stderr to LOG_PATH and,
// when FD_AS_3 >= 0, that fd as fd 3; throws if the spawn fails.
pid_t SpawnAgentLoggingTo(std::vector<std::string> args, const std::string& log_path, int fd_as_3 = -1);
std::string BusyboxRootfs();

// mkdtemp under /tmp; removed (rm -rf) at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A uvm-agent process listening on a unix socket in its own temp dir, with a
// cgroup parent of its own (so parallel suites do not collide).
class AgentProcess {
 public:
  explicit AgentProcess(std::vector<std::string> extra_args = {});
  ~AgentProcess();  // SIGTERM, wait (5 s), else SIGKILL; by pid
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& socket_path() const { return socket_path_; }
  const std::string& dir() const { return dir_.path(); }
  const std::string& cgroup_parent() const { return cgroup_parent_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  pb::Agent::Stub& stub() { return *stub_; }
  std::string Log() const;  // the agent's stderr so far

  // Direct children of the agent (none should remain after a test).
  std::vector<pid_t> Children() const;
  // Waits until the agent has no children (up to `timeout`).
  bool WaitNoChildren(std::chrono::milliseconds timeout) const;
  // Stops the agent now and returns its exit status (as waitpid reports).
  int Stop(int signal = SIGTERM);
  // Waits for the agent to exit by itself; its wait status, or nullopt.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout);

 private:
  TempDir dir_;
  std::string socket_path_;
  std::string log_path_;
  std::string cgroup_parent_;
  pid_t pid_ = -1;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::Agent::Stub> stub_;
};

std::shared_ptr<grpc::Channel> ConnectUnix(const std::string& socket_path);

struct SpecOptions {
  std::vector<std::string> args;
  std::vector<std::string> env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                  "HOME=/root"};
  std::string cwd = "/";
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string hostname;
  bool terminal = false;
  bool readonly_root = true;  // the fixture is shared: containers must not write to it
  bool network_namespace = false;
  bool no_new_privileges = true;
  std::function<void(nlohmann::json&)> customize;  // edits the spec last (seccomp, devices, mounts)
  // linux.namespaces entries to join by path: {type, path}.
  std::vector<std::pair<std::string, std::string>> namespace_paths;
};

// An OCI config.json like `runc spec` writes, with a tmpfs on /tmp.
std::string MakeSpec(const SpecOptions& options);
// An OCI Process object for ExecProcess.
std::string MakeProcessJson(const std::vector<std::string>& args, bool terminal = false, uint32_t uid = 0);

// Reads one output stream of a process on a thread; Start() returns once the
// agent acknowledged the attach (the empty first chunk).
class OutputReader {
 public:
  OutputReader(pb::Agent::Stub& stub, std::string container_id, std::string exec_id, pb::OutputStream stream);
  ~OutputReader();
  OutputReader(const OutputReader&) = delete;
  OutputReader& operator=(const OutputReader&) = delete;

  // Blocks until attached; false when the call ended before (status()).
  bool WaitAttached(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Blocks until the stream ended; returns all data.
  std::string Finish();
  bool Ended(std::chrono::milliseconds timeout);
  grpc::Status status() const { return status_; }
  std::string data_so_far();
  size_t chunks() const { return chunks_; }
  void Cancel() { context_.TryCancel(); }

 private:
  grpc::ClientContext context_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool attached_ = false;
  bool ended_ = false;
  std::string data_;
  size_t chunks_ = 0;
  grpc::Status status_;
  std::thread thread_;
};

struct RunResult {
  uint32_t exit_status = 0;
  std::string out;
  std::string err;
};

// Create, attach stdout+stderr, start, wait, delete. Fails the test on RPC errors.
RunResult RunContainer(AgentProcess& agent, const std::string& id, const SpecOptions& options);
RunResult RunContainer(AgentProcess& agent, const std::string& id, const std::vector<std::string>& args);

// Exec in a running container, attach, wait.
RunResult RunExec(AgentProcess& agent, const std::string& container_id, const std::string& exec_id,
                  const std::vector<std::string>& args, uint32_t uid = 0);

// Creates and starts a long-running container (`sleep 100000` as init).
void StartSleeper(AgentProcess& agent, const std::string& id);
void StartSleeper(AgentProcess& agent, const std::string& id, SpecOptions options);
// Creates and starts a container running options.args; its pid (0 after a failure, reported).
uint32_t CreateAndStart(AgentProcess& agent, const std::string& id, const SpecOptions& options);
void DeleteContainer(AgentProcess& agent, const std::string& id, bool force = true);

grpc::Status Wait(AgentProcess& agent, const std::string& container_id, const std::string& exec_id,
                  pb::WaitProcessResponse* response, std::chrono::milliseconds timeout = std::chrono::seconds(30));

// True when /proc/self/mountinfo mentions `text`.
bool HostMountsMention(const std::string& text);

}  // namespace uvmshim::agent::testing
