#include "tests/agent/agent_test_support.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include <gtest/gtest.h>

#include "common/oci_defaults.h"

extern char** environ;

namespace uvmshim::agent::testing {

std::string AgentBinary() {
  if (const char* env = std::getenv("UVMSHIM_AGENT")) return env;
  return UVMSHIM_AGENT_BINARY;
}

std::string BusyboxRootfs() { return UVMSHIM_BUSYBOX_ROOTFS; }

TempDir::TempDir() {
  char pattern[] = "/tmp/uvm-agent-test.XXXXXX";
  if (!mkdtemp(pattern)) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::shared_ptr<grpc::Channel> ConnectUnix(const std::string& socket_path) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 8 << 20);
  args.SetInt(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, 4 << 20);
  if (!std::getenv("UVMSHIM_TEST_SMALL_READS")) {
    args.SetInt(GRPC_ARG_TCP_READ_CHUNK_SIZE, 1 << 20);
    args.SetInt(GRPC_ARG_TCP_MIN_READ_CHUNK_SIZE, 256 << 10);
    args.SetInt(GRPC_ARG_TCP_MAX_READ_CHUNK_SIZE, 4 << 20);
  }
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 20);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 20);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
  return grpc::CreateCustomChannel("unix:" + socket_path, grpc::InsecureChannelCredentials(), args);
}

pid_t SpawnAgentLoggingTo(std::vector<std::string> args, const std::string& log_path, int fd_as_3) {
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 2, 1);
  if (fd_as_3 >= 0) posix_spawn_file_actions_adddup2(&actions, fd_as_3, 3);
  pid_t pid = -1;
  const int error = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) throw std::runtime_error("spawn " + args[0] + ": " + std::strerror(error));
  return pid;
}

AgentProcess::AgentProcess(std::vector<std::string> extra_args) {
  static std::atomic<int> counter{0};
  socket_path_ = dir_.path() + "/run/agent.sock";  // run/ does not exist yet: the agent makes it
  log_path_ = dir_.path() + "/agent.log";
  cgroup_parent_ = "uvmshim-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  std::vector<std::string> args = {AgentBinary(), "--listen", "unix://" + socket_path_, "--log-level", "debug",
                                   "--cgroup-parent", cgroup_parent_};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  pid_ = SpawnAgentLoggingTo(args, log_path_);
  auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(20);
  // Connect once the socket exists: an early failed connect would put the
  // channel into reconnect backoff.
  while (access(socket_path_.c_str(), F_OK) != 0 && std::chrono::system_clock::now() < deadline) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("uvm-agent exited at start: " + Log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  channel_ = ConnectUnix(socket_path_);
  stub_ = pb::Agent::NewStub(channel_);
  while (std::chrono::system_clock::now() < deadline) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("uvm-agent exited at start: " + Log());
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    context.set_wait_for_ready(true);
    pb::PingResponse response;
    if (stub_->Ping(&context, pb::PingRequest(), &response).ok()) return;
  }
  Stop(SIGKILL);
  throw std::runtime_error("uvm-agent did not answer Ping: " + Log());
}

AgentProcess::~AgentProcess() {
  // Close our connection first: the agent's graceful stop waits for it.
  stub_.reset();
  channel_.reset();
  if (pid_ > 0) Stop(SIGTERM);
  // The agent removes its cgroup parent at exit; this catches a crash.
  for (const char* root : {"/sys/fs/cgroup", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpuacct",
                           "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids"})
    rmdir((std::string(root) + "/" + cgroup_parent_).c_str());
}

int AgentProcess::Stop(int signal) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  int status = 0;
  for (int i = 0; i < 500; ++i) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

std::optional<int> AgentProcess::WaitExit(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (pid_ > 0) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    if (std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return std::nullopt;
}

std::string AgentProcess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<pid_t> AgentProcess::Children() const {
  std::vector<pid_t> children;
  DIR* dir = opendir("/proc");
  if (!dir) return children;
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    std::ifstream in(std::string("/proc/") + entry->d_name + "/stat");
    std::string stat;
    std::getline(in, stat);
    auto paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream fields(stat.substr(paren + 2));
    char state;
    pid_t ppid;
    if (fields >> state >> ppid && ppid == pid_) children.push_back(static_cast<pid_t>(pid));
  }
  closedir(dir);
  return children;
}

bool AgentProcess::WaitNoChildren(std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!Children().empty()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

std::string MakeSpec(const SpecOptions& options) {
  using nlohmann::json;
  json caps = oci::DefaultCapabilities();
  json spec = {
      {"ociVersion", "1.0.2"},
      {"process",
       {{"terminal", options.terminal},
        {"user", {{"uid", options.uid}, {"gid", options.gid}}},
        {"args", options.args},
        {"env", options.env},
        {"cwd", options.cwd},
        {"capabilities",
         {{"bounding", caps}, {"effective", caps}, {"permitted", caps}, {"inheritable", json::array()}}},
        {"rlimits", json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}})},
        {"noNewPrivileges", options.no_new_privileges}}},
      {"root", {{"path", BusyboxRootfs()}, {"readonly", options.readonly_root}}},
      {"mounts",
       [] {
         json mounts = oci::DefaultMounts();
         mounts.push_back({{"destination", "/tmp"}, {"type", "tmpfs"}, {"source", "tmpfs"},
                           {"options", {"nosuid", "nodev", "mode=1777", "size=65536k"}}});
         return mounts;
       }()},
      {"linux",
       {{"namespaces", json::array({{{"type", "pid"}}, {{"type", "ipc"}}, {{"type", "uts"}}, {{"type", "mount"}}})},
        {"maskedPaths", {"/proc/kcore", "/proc/keys", "/sys/firmware"}},
        {"readonlyPaths", {"/proc/sys", "/proc/sysrq-trigger"}}}},
  };
  if (!options.hostname.empty()) spec["hostname"] = options.hostname;
  if (options.network_namespace) spec["linux"]["namespaces"].push_back({{"type", "network"}});
  for (const auto& [type, path] : options.namespace_paths) {
    bool found = false;
    for (auto& ns : spec["linux"]["namespaces"])
      if (ns["type"] == type) ns["path"] = path, found = true;
    if (!found) spec["linux"]["namespaces"].push_back({{"type", type}, {"path", path}});
  }
  if (options.customize) options.customize(spec);
  return spec.dump();
}

std::string MakeProcessJson(const std::vector<std::string>& args, bool terminal, uint32_t uid) {
  nlohmann::json process = {
      {"terminal", terminal},
      {"user", {{"uid", uid}, {"gid", uid}}},
      {"args", args},
      {"env", {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}},
      {"cwd", "/"},
  };
  return process.dump();
}

OutputReader::OutputReader(pb::Agent::Stub& stub, std::string container_id, std::string exec_id,
                           pb::OutputStream stream) {
  pb::ReadOutputRequest request;
  request.set_container_id(std::move(container_id));
  request.set_exec_id(std::move(exec_id));
  request.set_stream(stream);
  thread_ = std::thread([this, &stub, request] {
    auto reader = stub.ReadOutput(&context_, request);
    pb::OutputChunk chunk;
    bool first = true;
    while (reader->Read(&chunk)) {
      std::lock_guard lock(mu_);
      if (first && chunk.data().empty()) {
        attached_ = true;
        cv_.notify_all();
      }
      first = false;
      data_ += chunk.data();
      ++chunks_;
    }
    grpc::Status status = reader->Finish();
    std::lock_guard lock(mu_);
    status_ = status;
    ended_ = true;
    cv_.notify_all();
  });
}

OutputReader::~OutputReader() {
  context_.TryCancel();
  thread_.join();
}

bool OutputReader::WaitAttached(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return attached_ || ended_; });
  return attached_;
}

bool OutputReader::Ended(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return ended_; });
}

std::string OutputReader::Finish() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return ended_; });
  return data_;
}

std::string OutputReader::data_so_far() {
  std::lock_guard lock(mu_);
  return data_;
}

grpc::Status Wait(AgentProcess& agent, const std::string& container_id, const std::string& exec_id,
                  pb::WaitProcessResponse* response, std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  pb::WaitProcessRequest request;
  request.set_container_id(container_id);
  request.set_exec_id(exec_id);
  return agent.stub().WaitProcess(&context, request, response);
}

RunResult RunContainer(AgentProcess& agent, const std::string& id, const SpecOptions& options) {
  RunResult result;
  {
    grpc::ClientContext context;
    pb::CreateContainerRequest request;
    request.set_container_id(id);
    request.set_spec_json(MakeSpec(options));
    request.set_terminal(options.terminal);
    pb::CreateContainerResponse response;
    auto status = agent.stub().CreateContainer(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    if (!status.ok()) return result;
  }
  OutputReader out(agent.stub(), id, "", pb::STDOUT);
  std::unique_ptr<OutputReader> err;
  if (!options.terminal) err = std::make_unique<OutputReader>(agent.stub(), id, "", pb::STDERR);
  EXPECT_TRUE(out.WaitAttached());
  if (err) {
    EXPECT_TRUE(err->WaitAttached());
  }
  {
    grpc::ClientContext context;
    pb::StartContainerRequest request;
    request.set_container_id(id);
    pb::StartContainerResponse response;
    auto status = agent.stub().StartContainer(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
  pb::WaitProcessResponse wait;
  auto status = Wait(agent, id, "", &wait);
  EXPECT_TRUE(status.ok()) << status.error_message();
  result.exit_status = wait.exit_status();
  result.out = out.Finish();
  if (err) result.err = err->Finish();
  DeleteContainer(agent, id);
  return result;
}

RunResult RunContainer(AgentProcess& agent, const std::string& id, const std::vector<std::string>& args) {
  SpecOptions options;
  options.args = args;
  return RunContainer(agent, id, options);
}

RunResult RunExec(AgentProcess& agent, const std::string& container_id, const std::string& exec_id,
                  const std::vector<std::string>& args, uint32_t uid) {
  RunResult result;
  {
    grpc::ClientContext context;
    pb::ExecProcessRequest request;
    request.set_container_id(container_id);
    request.set_exec_id(exec_id);
    request.set_process_json(MakeProcessJson(args, false, uid));
    pb::ExecProcessResponse response;
    auto status = agent.stub().ExecProcess(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    if (!status.ok()) return result;
  }
  OutputReader out(agent.stub(), container_id, exec_id, pb::STDOUT);
  OutputReader err(agent.stub(), container_id, exec_id, pb::STDERR);
  EXPECT_TRUE(out.WaitAttached());
  EXPECT_TRUE(err.WaitAttached());
  pb::WaitProcessResponse wait;
  auto status = Wait(agent, container_id, exec_id, &wait);
  EXPECT_TRUE(status.ok()) << status.error_message();
  result.exit_status = wait.exit_status();
  result.out = out.Finish();
  result.err = err.Finish();
  return result;
}

void StartSleeper(AgentProcess& agent, const std::string& id) { StartSleeper(agent, id, SpecOptions{}); }

void StartSleeper(AgentProcess& agent, const std::string& id, SpecOptions options) {
  options.args = {"sleep", "100000"};
  CreateAndStart(agent, id, options);
}

uint32_t CreateAndStart(AgentProcess& agent, const std::string& id, const SpecOptions& options) {
  grpc::ClientContext create_context;
  pb::CreateContainerRequest create;
  create.set_container_id(id);
  create.set_spec_json(MakeSpec(options));
  pb::CreateContainerResponse created;
  auto status = agent.stub().CreateContainer(&create_context, create, &created);
  EXPECT_TRUE(status.ok()) << "CreateContainer " << id << ": " << status.error_message();
  if (!status.ok()) return 0;
  grpc::ClientContext start_context;
  pb::StartContainerRequest start;
  start.set_container_id(id);
  pb::StartContainerResponse started;
  status = agent.stub().StartContainer(&start_context, start, &started);
  EXPECT_TRUE(status.ok()) << "StartContainer " << id << ": " << status.error_message();
  return started.pid();
}

void DeleteContainer(AgentProcess& agent, const std::string& id, bool force) {
  grpc::ClientContext context;
  pb::DeleteContainerRequest request;
  request.set_container_id(id);
  request.set_force(force);
  pb::DeleteContainerResponse response;
  auto status = agent.stub().DeleteContainer(&context, request, &response);
  EXPECT_TRUE(status.ok()) << "delete " << id << ": " << status.error_message();
}

bool HostMountsMention(const std::string& text) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.find(text) != std::string::npos) return true;
  return false;
}

}  // namespace uvmshim::agent::testing
