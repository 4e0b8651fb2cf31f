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
#include "pool_test_fixture.h"

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

class PoolVmTest : public PoolFixture {
 protected:
  PoolVmTest() : PoolFixture("pvt") {}
};

TEST_F(PoolVmTest, ClaimsNeverShareAVmAndThePoolRefills) {
  FillPool(key_, {2, 4096});
  ASSERT_TRUE(WaitReady(2)) << Failure();
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
  ASSERT_TRUE(WaitReady(1)) << Failure();
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
  ASSERT_TRUE(WaitReady(1)) << Failure();
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
  ASSERT_TRUE(WaitReady(1)) << Failure();
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
  ASSERT_TRUE(WaitReady(1)) << Failure();
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
