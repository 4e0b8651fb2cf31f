// agent_perf_probe: measures what the agent adds over plain processes, for
// tuning (the benchmark harness proper is tests/bench). Needs root.
//   agent_perf_probe [--execs N] [--mib M]
// Prints medians of: spawn+wait of `busybox true` vs ExecProcess+ReadOutput
// (stdout, stderr)+WaitProcess of the same through uvm-agent; and stdout
// throughput of `dd if=/dev/zero bs=1M count=M` through a plain pipe vs through
// ReadOutput.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tests/agent/agent_test_support.h"

extern char** environ;

namespace t = uvmshim::agent::testing;
namespace pb = uvmshim::agent::v1;
using Clock = std::chrono::steady_clock;

namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

pid_t Spawn(const std::vector<std::string>& args, int stdout_fd) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdout_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1);
  pid_t pid = -1;
  posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

double PlainPipeMBps(const std::string& busybox, int mib) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return 0;
  fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
  auto start = Clock::now();
  pid_t pid = Spawn({busybox, "dd", "if=/dev/zero", "bs=1M", "count=" + std::to_string(mib)}, fds[1]);
  close(fds[1]);
  std::vector<char> buffer(256 * 1024);
  size_t total = 0;
  ssize_t n;
  while ((n = read(fds[0], buffer.data(), buffer.size())) > 0) total += static_cast<size_t>(n);
  close(fds[0]);
  waitpid(pid, nullptr, 0);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return static_cast<double>(total) / (1 << 20) / seconds;
}

// utime+stime of a process in seconds.
double CpuSeconds(pid_t pid) {
  std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (!f) return 0;
  char buffer[2048] = {};
  size_t n = std::fread(buffer, 1, sizeof buffer - 1, f);
  std::fclose(f);
  std::string stat(buffer, n);
  auto paren = stat.rfind(')');
  unsigned long utime = 0, stime = 0;
  std::sscanf(stat.c_str() + paren + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime);
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double AgentMBps(t::AgentProcess& agent, const std::string& id, int mib) {
  t::SpecOptions options;
  options.args = {"dd", "if=/dev/zero", "bs=1M", "count=" + std::to_string(mib)};
  grpc::ClientContext create_context;
  pb::CreateContainerRequest create;
  create.set_container_id(id);
  create.set_spec_json(t::MakeSpec(options));
  pb::CreateContainerResponse created;
  if (!agent.stub().CreateContainer(&create_context, create, &created).ok()) return 0;
  grpc::ClientContext read_context;
  pb::ReadOutputRequest read_request;
  read_request.set_container_id(id);
  auto reader = agent.stub().ReadOutput(&read_context, read_request);
  pb::OutputChunk chunk;
  reader->Read(&chunk);  // attach ack
  double agent_cpu0 = CpuSeconds(agent.pid()), self_cpu0 = CpuSeconds(getpid());
  auto start = Clock::now();
  grpc::ClientContext start_context;
  pb::StartContainerRequest start_request;
  start_request.set_container_id(id);
  pb::StartContainerResponse started;
  agent.stub().StartContainer(&start_context, start_request, &started);
  size_t total = 0;
  while (reader->Read(&chunk)) total += chunk.data().size();
  reader->Finish();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (std::getenv("PROBE_CPU"))
    std::fprintf(stderr, "  wall %.3f s, agent cpu %.3f s, client cpu %.3f s\n", seconds,
                 CpuSeconds(agent.pid()) - agent_cpu0, CpuSeconds(getpid()) - self_cpu0);
  t::DeleteContainer(agent, id);
  return static_cast<double>(total) / (1 << 20) / seconds;
}

}  // namespace

int Probe(int argc, char** argv) {
  int execs = 200, mib = 512;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--execs") == 0) execs = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--mib") == 0) mib = std::atoi(argv[i + 1]);
  }
  std::string busybox = t::BusyboxRootfs() + "/bin/busybox";
  t::AgentProcess agent({"--log-level", "warn"});

  std::vector<double> plain;
  for (int i = 0; i < execs; ++i) {
    auto start = Clock::now();
    pid_t pid = Spawn({busybox, "true"}, -1);
    waitpid(pid, nullptr, 0);
    plain.push_back(Ms(Clock::now() - start));
  }

  t::StartSleeper(agent, "perf");
  std::vector<double> full, bare;
  for (int i = 0; i < execs; ++i) {
    std::string exec_id = "x" + std::to_string(i);
    auto start = Clock::now();
    auto r = t::RunExec(agent, "perf", exec_id, {"true"});
    full.push_back(Ms(Clock::now() - start));
    if (r.exit_status != 0) std::fprintf(stderr, "exec %d: status %u\n", i, r.exit_status);
  }
  for (int i = 0; i < execs; ++i) {
    std::string exec_id = "y" + std::to_string(i);
    auto start = Clock::now();
    grpc::ClientContext context;
    pb::ExecProcessRequest request;
    request.set_container_id("perf");
    request.set_exec_id(exec_id);
    request.set_process_json(t::MakeProcessJson({"true"}));
    pb::ExecProcessResponse response;
    agent.stub().ExecProcess(&context, request, &response);
    pb::WaitProcessResponse wait;
    t::Wait(agent, "perf", exec_id, &wait);
    bare.push_back(Ms(Clock::now() - start));
  }
  t::DeleteContainer(agent, "perf");
  std::printf("exec round trip (median of %d): plain spawn+wait %.3f ms | agent Exec+Wait %.3f ms | "
              "agent Exec+2xReadOutput+Wait %.3f ms | overhead %.3f ms\n",
              execs, Median(plain), Median(bare), Median(full), Median(full) - Median(plain));

  std::vector<double> pipe_rates, agent_rates;
  int rounds = std::getenv("PROBE_ROUNDS") ? std::atoi(std::getenv("PROBE_ROUNDS")) : 3;
  for (int i = 0; i < rounds; ++i) {
    pipe_rates.push_back(PlainPipeMBps(busybox, mib));
    agent_rates.push_back(AgentMBps(agent, "tp" + std::to_string(i), mib));
  }
  double pipe_rate = Median(pipe_rates), agent_rate = Median(agent_rates);
  std::printf("stdout throughput (dd bs=1M count=%d, median of %d): plain pipe %.0f MiB/s | agent %.0f MiB/s | "
              "ratio %.2f (best: %.0f vs %.0f)\n",
              mib, rounds, pipe_rate, agent_rate, pipe_rate > 0 ? agent_rate / pipe_rate : 0,
              *std::max_element(pipe_rates.begin(), pipe_rates.end()),
              *std::max_element(agent_rates.begin(), agent_rates.end()));
  return 0;
}

int main(int argc, char** argv) {
  try {
    return Probe(argc, argv);  // unwinds: the agent and its temp dir are cleaned up
  } catch (const std::exception& e) {
    std::fprintf(stderr, "agent_perf_probe: %s\n", e.what());
    return 1;
  }
}
