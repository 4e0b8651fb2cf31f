// agent-bench: agent-level figures of process isolation, each measured side
// by side with its anchor in the same run (interleaved, medians):
//   exec_roundtrip_process  ExecProcess+stdio+Wait of /bin/true   vs fork/exec+wait
//   stdout_process_agent    dd 512 MiB to stdout via ReadOutput  vs a plain pipe
// Output lines: NAME VALUE UNIT ANCHOR_VALUE RATIO
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <vector>

#include "agent_client.h"
#include "oci_spec.h"
#include "paths.h"
#include "process_agent_host.h"
#include "stdio_relay.h"

namespace fs = std::filesystem;
using namespace uvmshim::host;
using Clock = std::chrono::steady_clock;

namespace {

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const auto n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

double Millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Runs argv with stdout to a pipe read (and discarded) by us; returns bytes read.
std::uint64_t SpawnAndDrain(const std::vector<std::string>& argv, int stdout_fd_or_pipe) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int pipe_fds[2] = {-1, -1};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdout_fd_or_pipe < 0) {
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    ::fcntl(pipe_fds[0], F_SETPIPE_SZ, 1 << 20);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  } else {
    posix_spawn_file_actions_adddup2(&actions, stdout_fd_or_pipe, STDOUT_FILENO);
  }
  pid_t pid = 0;
  if (posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ) != 0)
    throw std::runtime_error("posix_spawn " + argv[0]);
  posix_spawn_file_actions_destroy(&actions);
  std::uint64_t total = 0;
  if (pipe_fds[0] >= 0) {
    ::close(pipe_fds[1]);
    std::vector<char> buffer(1 << 20);
    for (ssize_t n; (n = ::read(pipe_fds[0], buffer.data(), buffer.size())) > 0;) total += n;
    ::close(pipe_fds[0]);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return total;
}

struct Bench {
  AgentClient& agent;
  std::string container;
  int devnull;
  int counter = 0;

  // One exec through the agent, with its output relayed and its exit awaited.
  std::uint64_t Exec(const std::vector<std::string>& args) {
    const std::string exec_id = fmt::format("e{}", counter++);
    agentpb::ExecProcessRequest request;
    request.set_container_id(container);
    request.set_exec_id(exec_id);
    ProcessOptions process;
    process.args = args;
    request.set_process_json(BuildProcessJson(process));
    agent.ExecProcess(request);
    StdioRelay relay(agent, container, exec_id, {-1, devnull, devnull}, false);
    relay.Start();
    relay.WaitOutputDone();
    agent.WaitProcess(container, exec_id);
    return relay.bytes_out();
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"agent-level benchmarks (process isolation)"};
  std::string rootfs;
  int exec_runs = 41;
  int stdout_runs = 5;
  std::vector<std::string> figures;
  app.add_option("--rootfs", rootfs, "busybox rootfs (default: the build's test fixture)");
  app.add_option("--exec-runs", exec_runs);
  app.add_option("--stdout-runs", stdout_runs);
  app.add_option("figures", figures, "exec_roundtrip_process stdout_process_agent");
  CLI11_PARSE(app, argc, argv);
  if (const char* runs = std::getenv("BENCH_RUNS"); runs && std::atoi(runs) > 0) {
    stdout_runs = std::max(3, std::atoi(runs));
    exec_runs = std::max(11, 6 * std::atoi(runs));
  }
  if (rootfs.empty()) {
    const char* env = std::getenv("UVMSHIM_BUSYBOX_ROOTFS");
    rootfs = env && *env ? env : (SelfDir() / ".." / "tests" / "fixtures" / "busybox-rootfs").string();
  }
  if (!fs::exists(fs::path(rootfs) / "bin" / "busybox")) {
    std::fprintf(stderr, "agent-bench: no busybox rootfs at %s (build target uvmshim_busybox_rootfs)\n",
                 rootfs.c_str());
    return 2;
  }
  auto want = [&](const std::string& name) {
    return figures.empty() || std::find(figures.begin(), figures.end(), name) != figures.end();
  };

  char tmpl[] = "/tmp/uvmshim-agent-bench-XXXXXX";
  const fs::path state_dir = ::mkdtemp(tmpl);
  ProcessAgentConfig config;
  config.agent_binary = FindTool("uvm-agent", "UVMSHIM_AGENT");
  config.state_dir = state_dir / "agent";
  config.log_level = "warn";
  int rc = 0;
  {
    ProcessAgentHost host(config);
    AgentClient agent(host.channel());
    SpecOptions spec;
    spec.process.args = {"/bin/sleep", "100000"};
    agentpb::CreateContainerRequest create;
    create.set_container_id("bench");
    create.set_spec_json(BuildSpecJson(spec));
    create.set_rootfs_path(fs::absolute(rootfs).string());
    agent.CreateContainer(create);
    agent.StartContainer("bench");
    Bench bench{agent, "bench", ::open("/dev/null", O_WRONLY | O_CLOEXEC)};
    const std::string busybox = (fs::path(rootfs) / "bin" / "busybox").string();

    if (want("exec_roundtrip_process")) {
      std::vector<double> subject, anchor;
      for (int i = 0; i < exec_runs; ++i) {
        auto t0 = Clock::now();
        bench.Exec({"/bin/true"});
        auto t1 = Clock::now();
        SpawnAndDrain({busybox, "true"}, bench.devnull);
        auto t2 = Clock::now();
        if (i > 0) {  // the first of each warms caches
          subject.push_back(Millis(t1 - t0));
          anchor.push_back(Millis(t2 - t1));
        }
      }
      double s = Median(subject), a = Median(anchor);
      std::printf("exec_roundtrip_process %.3f ms %.3f %.2f\n", s, a, s / a);
    }
    if (want("stdout_process_agent")) {
      std::vector<double> subject, anchor;
      const double mib = 512;
      for (int i = 0; i < stdout_runs; ++i) {
        auto t0 = Clock::now();
        auto bytes = bench.Exec({"/bin/sh", "-c", "exec dd if=/dev/zero bs=1M count=512 2>/dev/null"});
        auto t1 = Clock::now();
        auto plain = SpawnAndDrain({busybox, "sh", "-c", "exec dd if=/dev/zero bs=1M count=512 2>/dev/null"}, -1);
        auto t2 = Clock::now();
        if (bytes != (512u << 20) || plain != (512u << 20)) {
          std::fprintf(stderr, "agent-bench: short read: agent %llu, pipe %llu bytes\n",
                       static_cast<unsigned long long>(bytes),
                       static_cast<unsigned long long>(plain));
          rc = 1;
        }
        subject.push_back(mib * 1.048576 / (Millis(t1 - t0) / 1000));
        anchor.push_back(mib * 1.048576 / (Millis(t2 - t1) / 1000));
      }
      double s = Median(subject), a = Median(anchor);
      std::printf("stdout_process_agent %.0f MB/s %.0f %.2f\n", s, a, s / a);
    }
    ::close(bench.devnull);
    agent.DeleteContainer("bench", true);
    try {
      agent.Shutdown(std::chrono::seconds(5));
    } catch (const std::exception&) {
    }
    host.WaitEnded(std::chrono::seconds(5));
  }
  fs::remove_all(state_dir);
  return rc;
}
