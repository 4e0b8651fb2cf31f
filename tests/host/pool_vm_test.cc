// The warm utility VM pool (issue #15) with real QEMU, virtiofsd, keepers and
// mounts: claims never share a VM, a killed claimer's VM dies with it, the
// pool refills, an idle VM that died is replaced and never handed out, and a
// disabled pool boots cold as before. Needs root and the boot image; each
// test has its own $UVMSHIM_ROOT, so copies of the suite can run together.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "agent.grpc.pb.h"
#include "agent_client.h"
#include "agent_host_factory.h"
#include "oci_spec.h"
#include "paths.h"
#include "pool/pool_dir.h"
#include "pool/pool_fill.h"
#include "sandbox_share.h"
#include "vm_test_support.h"

extern char** environ;

namespace uvmshim::host {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace pool;

using test_support::ReadFile;

// The raw call, so the test sees the agent's status code.
grpc::Status CallSetIdentity(AgentHost& host, const agentpb::SetIdentityRequest& request) {
  auto stub = agentpb::Agent::NewStub(host.channel());
  agentpb::SetIdentityResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 60s);
  return stub->SetIdentity(&context, request, &response);
}

bool Alive(pid_t pid) { return pid > 0 && ::kill(pid, 0) == 0; }

class PoolVmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = test_support::MissingVmPrerequisite()) GTEST_SKIP() << *why;
    dir_ = test_support::MakeDirWithRootfs("pvt", UVMSHIM_BUSYBOX_ROOTFS);
    ::setenv("UVMSHIM_ROOT", (dir_ / "root").c_str(), 1);
    ::setenv("UVMSHIM_POOL_KEEPER", UVMSHIM_POOL_KEEPER_PATH, 1);
    config_.isolation = Isolation::kHyperv;
    config_.pool.enabled = true;
    config_.pool.size = 1;
    key_ = KeyFor(config_);
  }
  void TearDown() override {
    if (dir_.empty()) return;
    // Every keeper removes its VM dir last: the pool root empties when all
    // have ended. Drained again on each look: a keeper still booting ends
    // once it is up (its SIGTERM waits for the boot).
    EXPECT_TRUE(WaitFor([&] { DrainPool(); return ListVms(KeyDir(key_)).empty(); }, 300s)) << "pool VMs left behind";
    EXPECT_TRUE(MountPointsUnder(dir_).empty()) << "mounts left under " << dir_;
    fs::remove_all(dir_);
    ::unsetenv("UVMSHIM_ROOT");
  }

  // Keepers are other processes that publish their state in files: polled.
  static bool WaitFor(const std::function<bool()>& done, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return done();
  }
  std::vector<PoolVm> Ready() {
    std::vector<PoolVm> ready;
    for (auto& vm : ListVms(KeyDir(key_)))
      if (vm.state == VmState::kReady && vm.keeper_alive) ready.push_back(vm);
    return ready;
  }
  bool WaitReady(std::size_t count) {
    return WaitFor([&] { return Ready().size() >= count; }, 300s);
  }

  SandboxSpec Spec(const std::string& id) {
    SandboxSpec spec;
    spec.id = id;
    spec.config = config_;
    spec.state_dir = dir_ / id;
    spec.socket_dir = SocketDirFor(spec.state_dir);
    return spec;
  }

  // Runs `script` in a container of `host`; returns its /out (a volume).
  std::string RunScript(AgentHost& host, const std::string& id, const std::string& script) {
    AgentClient agent(host.channel());
    const fs::path out = dir_ / ("out-" + id);
    fs::create_directories(out);
    SpecOptions options;
    options.process.args = {"sh", "-c", script};
    options.volumes = {{out.string(), "/out", false}};
    test_support::StartContainerIn(host, agent, id, dir_ / "rootfs", options);
    EXPECT_EQ(agent.WaitProcess(id, "").exit_status, 0u) << ReadFile(host.console_log());
    agent.DeleteContainer(id, true);
    host.ReleaseContainer(id);
    return ReadFile(out / "result");
  }

  fs::path dir_;
  SandboxConfig config_;
  PoolKey key_;
};

TEST_F(PoolVmTest, ClaimsNeverShareAVmAndThePoolRefills) {
  FillPool(key_, {2, 4096});
  ASSERT_TRUE(WaitReady(2)) << ReadFile(KeyDir(key_) / "last-failure.log");
  std::set<pid_t> pooled;
  for (const auto& vm : Ready()) pooled.insert(vm.qemu_pid);

  auto first = StartAgentHost(Spec("pa"));
  auto second = StartAgentHost(Spec("pb"));
  EXPECT_TRUE(pooled.contains(static_cast<pid_t>(first->pid()))) << "the first sandbox booted cold";
  EXPECT_TRUE(pooled.contains(static_cast<pid_t>(second->pid()))) << "the second sandbox booted cold";
  EXPECT_NE(first->pid(), second->pid());

  const std::string script = "cat /proc/sys/kernel/random/boot_id > /out/result";
  const std::string boot_a = RunScript(*first, "ca", script);
  const std::string boot_b = RunScript(*second, "cb", script);
  EXPECT_EQ(boot_a.size(), 37u) << boot_a;
  EXPECT_NE(boot_a, boot_b) << "two claims saw the same boot id";

  // SetIdentity checks every field before applying any.
  {
    agentpb::SetIdentityRequest request;
    request.set_machine_id("not-hex");
    const auto status = CallSetIdentity(*first, request);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(status.error_message().find("machine_id"), std::string::npos) << status.error_message();
  }

  // Size 1: after the two claims a replacement boots; it is none of the used VMs.
  ASSERT_TRUE(WaitReady(1)) << "the pool did not refill";
  for (const auto& vm : Ready()) EXPECT_FALSE(pooled.contains(vm.qemu_pid)) << "a used VM is offered again";

  const pid_t qemu_a = static_cast<pid_t>(first->pid());
  AgentClient(first->channel()).Shutdown(10s);
  first->WaitEnded(60s);
  first.reset();
  second->Kill();
  second.reset();
  EXPECT_FALSE(Alive(qemu_a));
}

TEST_F(PoolVmTest, AKilledClaimersVmDiesWithIt) {
  FillPool(key_, {1, 4096});
  ASSERT_TRUE(WaitReady(1)) << ReadFile(KeyDir(key_) / "last-failure.log");
  const PoolVm vm = Ready().front();

  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  const std::string state = (dir_ / "helper").string();
  char* argv[] = {const_cast<char*>(UVMSHIM_POOL_CLAIM_HELPER), const_cast<char*>("pk"),
                  const_cast<char*>(state.c_str()), nullptr};
  pid_t helper = 0;
  ASSERT_EQ(posix_spawn(&helper, argv[0], &actions, nullptr, argv, environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  // The helper's log lines share its stdout: the answer is the "claimed" line.
  std::string line;
  for (char c = 0; ::read(out[0], &c, 1) == 1;) {
    if (c != '\n') {
      line += c;
    } else if (line.starts_with("claimed ")) {
      break;
    } else {
      line.clear();
    }
  }
  ::close(out[0]);
  EXPECT_EQ(line, "claimed " + std::to_string(vm.qemu_pid));

  ASSERT_EQ(::kill(helper, SIGKILL), 0);
  ::waitpid(helper, nullptr, 0);
  EXPECT_TRUE(WaitFor([&] { return !Alive(vm.qemu_pid); }, 60s)) << "QEMU outlived its killed claimer";
  EXPECT_TRUE(WaitFor([&] { return !fs::exists(vm.dir); }, 60s)) << "the claimed VM's dir stayed";
  EXPECT_TRUE(MountPointsUnder(vm.dir).empty());
}

TEST_F(PoolVmTest, AnIdleVmThatDiedIsReplacedNotHandedOut) {
  FillPool(key_, {1, 4096});
  ASSERT_TRUE(WaitReady(1)) << ReadFile(KeyDir(key_) / "last-failure.log");
  const PoolVm dead = Ready().front();
  ASSERT_EQ(::kill(dead.qemu_pid, SIGKILL), 0);

  // Claimed right away, the dead VM must not come back: a warm VM that works or a cold boot.
  auto host = StartAgentHost(Spec("pd"));
  EXPECT_NE(host->pid(), dead.qemu_pid);
  EXPECT_EQ(RunScript(*host, "cd", "echo ok > /out/result"), "ok\n");
  host->Kill();
  host.reset();

  EXPECT_TRUE(WaitFor([&] { return !fs::exists(dead.dir); }, 60s)) << "the dead VM's dir stayed";
  ASSERT_TRUE(WaitReady(1)) << "no replacement for the dead VM";
  for (const auto& vm : Ready()) EXPECT_NE(vm.id, dead.id);
}

TEST_F(PoolVmTest, ThePoolTurnedOffBootsColdAsBefore) {
  FillPool(key_, {1, 4096});
  ASSERT_TRUE(WaitReady(1)) << ReadFile(KeyDir(key_) / "last-failure.log");
  const PoolVm warm = Ready().front();
  config_.pool.enabled = false;
  auto host = StartAgentHost(Spec("po"));
  EXPECT_NE(host->pid(), warm.qemu_pid);
  EXPECT_TRUE(fs::exists(dir_ / "po" / "share")) << "the cold path's own share is missing";
  EXPECT_EQ(RunScript(*host, "co", "echo cold > /out/result"), "cold\n");
  EXPECT_EQ(ReadFile(host->console_log()).find("event=warmup"), std::string::npos) << "a cold VM warmed up";
  host->Kill();
  host.reset();
  const auto still = Ready();
  ASSERT_EQ(still.size(), 1u);
  EXPECT_EQ(still.front().id, warm.id) << "the disabled pool was used";
}

// With uvm.warmup=1 (opt-in) a pooled VM runs one throw-away container
// before it reports ready (guest-agent/vm/warm_up.h, issue #15) and keeps
// nothing of it: the warm-up's container id is free again and the claimer's
// container runs as on any VM.
TEST_F(PoolVmTest, APooledVmWarmsUpBeforeItIsReadyAndKeepsNothingOfIt) {
  config_.kernel_cmdline_extra = "uvm.warmup=1";
  // Booted, not restored: the warm-up's lines are in the booting VM's console
  // (a restored VM's log starts after the snapshot), and TCG's translations,
  // the warm-up's point, are not part of a memory snapshot.
  config_.pool.snapshot = false;
  key_ = KeyFor(config_);
  FillPool(key_, {1, 4096, /*snapshots=*/false});
  ASSERT_TRUE(WaitReady(1)) << ReadFile(KeyDir(key_) / "last-failure.log");
  const PoolVm warm = Ready().front();
  auto host = StartAgentHost(Spec("pw"));
  EXPECT_EQ(host->pid(), warm.qemu_pid) << "the sandbox booted cold";
  const std::string console = ReadFile(host->console_log());
  EXPECT_NE(console.find("event=warmup_done ok=true"), std::string::npos) << console;
  EXPECT_EQ(console.find("event=warmup_failed"), std::string::npos) << console;
  EXPECT_EQ(console.find("event=warmup_cleanup_failed"), std::string::npos) << console;
  EXPECT_EQ(RunScript(*host, "uvm-warmup", "echo warm > /out/result"), "warm\n");
  host->Kill();
  host.reset();
}

// An agent running on the host (process isolation) must never take an
// identity: it would rename the host.
TEST(PoolIdentityTest, AHostAgentRefusesSetIdentity) {
  char pattern[] = "/tmp/pit.XXXXXX";
  const fs::path dir = ::mkdtemp(pattern);
  SandboxSpec spec;
  spec.id = "pit" + std::to_string(::getpid());
  spec.state_dir = dir / "state";
  spec.socket_dir = SocketDirFor(spec.state_dir);
  spec.config.isolation = Isolation::kProcess;
  spec.cgroup_parent = "";
  char before[256] = {};
  ::gethostname(before, sizeof before - 1);
  {
    auto host = StartAgentHost(spec);
    agentpb::SetIdentityRequest request;
    request.set_hostname("renamed-by-a-test");
    const auto status = CallSetIdentity(*host, request);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
    host->Kill();
  }
  char after[256] = {};
  ::gethostname(after, sizeof after - 1);
  EXPECT_STREQ(before, after);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace uvmshim::host
