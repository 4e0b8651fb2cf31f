// Many `docker exec` into one uvm-runc container: its monitor must not grow.
// Every exec is a control connection served by a thread of the monitor; the
// threads of finished ones are joined as new ones come (an unjoined thread
// keeps its stack), and each exec's descriptors end with it. ctest runs 50
// (a leak of one thread or descriptor per exec shows as 50); the soak runs
// UVMSHIM_SOAK_EXECS of them on demand (README, Reliability).
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "docker_fixture.h"

namespace uvmshim::e2e {
namespace {
namespace fs = std::filesystem;

struct MonitorUse {
  long threads = 0;
  long fds = 0;
  long vm_kib = 0;
};

MonitorUse UseOf(pid_t pid) {
  MonitorUse use;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("Threads:")) use.threads = std::stol(line.substr(8));
    if (line.starts_with("VmSize:")) use.vm_kib = std::stol(line.substr(7));
  }
  std::error_code ec;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec); !ec && it != fs::directory_iterator();
       it.increment(ec))
    ++use.fds;
  return use;
}

// The container's monitor: the uvm-runc process whose command line is `create ... <id>`.
std::optional<pid_t> MonitorOf(const std::string& id) {
  for (pid_t pid : AllPids()) {
    if (ProcessExeName(pid).value_or("") != "uvm-runc") continue;
    auto args = ProcessArgs(pid);
    bool create = false, ours = false;
    for (const auto& a : args) {
      create |= a == "create";
      ours |= a == id;
    }
    if (create && ours) return pid;
  }
  return std::nullopt;
}

int SoakExecs() {
  const char* count = std::getenv("UVMSHIM_SOAK_EXECS");
  return count && *count ? std::max(1, std::atoi(count)) : 50;
}

class DockerExecSoak : public DockerCase {};

TEST_P(DockerExecSoak, ManyExecsKeepTheMonitorFlat) {
  auto run = Run({"-d"}, {"sleep", "100000"});
  ASSERT_TRUE(run.ok()) << run.Describe() << docker().LogTail();
  const std::string id = run.out.substr(0, run.out.find('\n'));
  const auto monitor = MonitorOf(id);
  ASSERT_TRUE(monitor) << "no monitor process for " << id;
  auto exec = [&](int i) {
    auto r = docker().Docker({"exec", id, "sh", "-c", "echo " + std::to_string(i)},
                             CommandOptions().WithTimeout(rc().op_timeout()));
    EXPECT_TRUE(r.ok()) << r.Describe();
    EXPECT_EQ(r.out, std::to_string(i) + "\n");
    return r.ok();
  };
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(exec(i));  // warm: thread stacks cached, relays opened once
  const MonitorUse before = UseOf(*monitor);
  const int execs = SoakExecs();
  for (int i = 10; i < 10 + execs; ++i) ASSERT_TRUE(exec(i)) << "exec " << i;
  const MonitorUse after = UseOf(*monitor);
  std::cout << "monitor " << *monitor << " after 10 execs: " << before.threads << " threads, " << before.fds
            << " fds, " << before.vm_kib << " KiB; after " << 10 + execs << ": " << after.threads << ", "
            << after.fds << ", " << after.vm_kib << " KiB\n";
  // One finished exec's thread may wait for the next connection to be joined.
  EXPECT_LE(after.threads, before.threads + 1);
  EXPECT_LE(after.fds, before.fds + 2);
  EXPECT_LE(after.vm_kib, before.vm_kib + 16 * 1024) << "unjoined threads keep their stacks";
  EXPECT_TRUE(docker().Docker({"rm", "-f", id}, CommandOptions().WithTimeout(rc().op_timeout())).ok());
}

INSTANTIATE_TEST_SUITE_P(Runtimes, DockerExecSoak, ::testing::ValuesIn(UvmEngineCases()), EngineCaseName);

}  // namespace
}  // namespace uvmshim::e2e
