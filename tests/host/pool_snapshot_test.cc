// Warm pool VMs restored from a memory snapshot (issue #15, item 2) with real
// QEMU, virtiofsd and keepers: clones serve containers through the share
// hot-added after the restore, two clones differ in boot id and randomness,
// a corrupt snapshot is discarded and replaced (never served), and a
// snapshot of an older image is not restored. Root and the boot image; each
// test has its own $UVMSHIM_ROOT, so copies of the suite can run together.
#include <signal.h>
#include <sys/stat.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "agent_client.h"
#include "agent_host_factory.h"
#include "oci_spec.h"
#include "paths.h"
#include "pool/pool_dir.h"
#include "pool/pool_fill.h"
#include "sandbox_share.h"
#include "vm_test_support.h"

namespace uvmshim::host {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace pool;
using test_support::ReadFile;

class PoolSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = test_support::MissingVmPrerequisite()) GTEST_SKIP() << *why;
    dir_ = test_support::MakeDirWithRootfs("pst", UVMSHIM_BUSYBOX_ROOTFS);
    ::setenv("UVMSHIM_ROOT", (dir_ / "root").c_str(), 1);
    ::setenv("UVMSHIM_POOL_KEEPER", UVMSHIM_POOL_KEEPER_PATH, 1);
    config_.isolation = Isolation::kHyperv;
    config_.pool.enabled = true;
    config_.pool.size = 1;
    key_ = KeyFor(config_);
  }
  void TearDown() override {
    if (dir_.empty()) return;
    EXPECT_TRUE(DrainAll()) << "pool VMs left behind";
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
  // Every keeper of every key has ended (a booting one ends once it is up).
  static bool DrainAll() {
    return WaitFor([] {
      DrainPool();
      for (const auto& key_dir : ListKeyDirs())
        if (!ListVms(key_dir).empty()) return false;
      return true;
    }, 300s);
  }
  std::vector<PoolVm> Ready() {
    std::vector<PoolVm> ready;
    for (auto& vm : ListVms(KeyDir(key_)))
      if (vm.state == VmState::kReady && vm.keeper_alive) ready.push_back(vm);
    return ready;
  }
  bool WaitReady(std::size_t count) { return WaitFor([&] { return Ready().size() >= count; }, 300s); }
  std::string Failure() { return ReadFile(KeyDir(key_) / "last-failure.log"); }

  SandboxSpec Spec(const std::string& id) {
    SandboxSpec spec;
    spec.id = id;
    spec.config = config_;
    spec.state_dir = dir_ / id;
    spec.socket_dir = SocketDirFor(spec.state_dir);
    return spec;
  }

  // Runs `script` in a container of `host`; returns its /out/result (a volume).
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

  fs::path Snapshot() { return KeyDir(key_) / "snapshot.bin"; }

  fs::path dir_;
  SandboxConfig config_;
  PoolKey key_;
};

TEST_F(PoolSnapshotTest, ClonesServeContainersWithTheirOwnBootIdAndRandomness) {
  FillPool(key_, {2, 4096});
  ASSERT_TRUE(WaitReady(2)) << Failure();
  for (const auto& vm : Ready()) EXPECT_EQ(ReadFile(vm.dir / "origin"), "snapshot\n") << ReadFile(vm.dir / "keeper.log");
  struct stat st {};
  ASSERT_EQ(::stat(Snapshot().c_str(), &st), 0) << "no snapshot made";
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat(KeyDir(key_).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);

  // Back to back: both clones come from the same memory image.
  auto first = StartAgentHost(Spec("sa"));
  auto second = StartAgentHost(Spec("sb"));
  const std::string script =
      "cat /proc/sys/kernel/random/boot_id > /out/result && "
      "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' >> /out/result";
  const std::string a = RunScript(*first, "ca", script);
  const std::string b = RunScript(*second, "cb", script);
  std::istringstream in_a(a), in_b(b);
  std::string boot_a, boot_b, random_a, random_b;
  std::getline(in_a, boot_a);
  std::getline(in_a, random_a);
  std::getline(in_b, boot_b);
  std::getline(in_b, random_b);
  EXPECT_EQ(boot_a.size(), 36u) << a;
  EXPECT_EQ(random_a.size(), 64u) << a;
  EXPECT_NE(boot_a, boot_b) << "two snapshot clones saw the same boot id";
  EXPECT_NE(random_a, random_b) << "two snapshot clones drew the same random bytes";

  // The share the clone got after its restore is the sandbox's: a file the
  // container writes into its rootfs is on the host.
  EXPECT_EQ(RunScript(*first, "cc", "echo hot > /hot-added && cat /hot-added > /out/result"), "hot\n");
  first->Kill();
  second->Kill();
}

TEST_F(PoolSnapshotTest, ACorruptSnapshotIsReplacedAndNeverServed) {
  FillPool(key_, {1, 4096});
  ASSERT_TRUE(WaitReady(1)) << Failure();
  ASSERT_TRUE(DrainAll());
  const auto size = fs::file_size(Snapshot());
  {
    // Same size, garbage where QEMU's stream header is: QEMU refuses it.
    std::fstream file(Snapshot(), std::ios::in | std::ios::out | std::ios::binary);
    file.write(std::string(4096, '\x5a').data(), 4096);
  }
  FillPool(key_, {1, 4096});
  ASSERT_TRUE(WaitReady(1)) << Failure();
  const PoolVm vm = Ready().front();
  const std::string log = ReadFile(vm.dir / "keeper.log");
  EXPECT_NE(log.find("event=pool_snapshot_discarded"), std::string::npos) << log;
  EXPECT_NE(log.find("event=pool_snapshot_made"), std::string::npos) << log;
  EXPECT_EQ(ReadFile(vm.dir / "origin"), "snapshot\n") << log;
  std::ifstream file(Snapshot(), std::ios::binary);
  std::string head(4096, '\0');
  file.read(head.data(), 4096);
  EXPECT_NE(head, std::string(4096, '\x5a')) << "the corrupt snapshot stayed";

  auto host = StartAgentHost(Spec("sd"));
  EXPECT_EQ(host->pid(), vm.qemu_pid);
  EXPECT_EQ(RunScript(*host, "cd", "echo ok > /out/result"), "ok\n");
  host->Kill();
  // A cut file is refused before QEMU sees it (its size is recorded).
  ASSERT_TRUE(DrainAll());
  fs::resize_file(Snapshot(), size / 2);
  FillPool(key_, {1, 4096});
  ASSERT_TRUE(WaitReady(1)) << Failure();
  EXPECT_EQ(ReadFile(Ready().front().dir / "origin"), "snapshot\n");
  EXPECT_GT(fs::file_size(Snapshot()), size / 2);
}

TEST_F(PoolSnapshotTest, ASnapshotOfAnOldImageIsNotUsed) {
  // Our own copy of the image, so that "rebuilding" it touches nobody else's pool.
  const fs::path images = dir_ / "images";
  fs::create_directories(images);
  fs::copy_file(key_.kernel, images / "vmlinuz");
  fs::copy_file(key_.initrd, images / "initrd.img");
  config_.kernel = images / "vmlinuz";
  config_.initrd = images / "initrd.img";
  key_ = KeyFor(config_);
  FillPool(key_, {1, 4096});
  ASSERT_TRUE(WaitReady(1)) << Failure();
  ASSERT_TRUE(DrainAll());
  const fs::path old_key_dir = KeyDir(key_);

  // The image is rebuilt (new mtime): a new key. The old snapshot planted in
  // the new key's dir must still not be restored (its identity names the old files).
  fs::last_write_time(config_.initrd, fs::last_write_time(config_.initrd) + 2s);
  key_ = KeyFor(config_);
  ASSERT_NE(KeyDir(key_), old_key_dir);
  fs::create_directories(KeyDir(key_));
  ::chmod(KeyDir(key_).c_str(), 0700);
  fs::copy_file(old_key_dir / "snapshot.bin", KeyDir(key_) / "snapshot.bin");
  fs::copy_file(old_key_dir / "snapshot.id", KeyDir(key_) / "snapshot.id");
  const std::string old_id = ReadFile(old_key_dir / "snapshot.id");
  FillPool(key_, {1, 4096});
  ASSERT_TRUE(WaitReady(1)) << Failure();
  const PoolVm vm = Ready().front();
  const std::string log = ReadFile(vm.dir / "keeper.log");
  EXPECT_NE(log.find("event=pool_snapshot_made"), std::string::npos) << "the old image's snapshot was restored: " << log;
  EXPECT_EQ(log.find("event=pool_snapshot_discarded"), std::string::npos) << "it was tried: " << log;
  EXPECT_NE(ReadFile(KeyDir(key_) / "snapshot.id"), old_id);
  EXPECT_FALSE(fs::exists(old_key_dir / "snapshot.bin")) << "the old image's snapshot was kept";

  auto host = StartAgentHost(Spec("si"));
  EXPECT_EQ(host->pid(), vm.qemu_pid);
  EXPECT_EQ(RunScript(*host, "ci", "echo new > /out/result"), "new\n");
  host->Kill();
}

// The share hot-added after a restore is watched as the boot's: when its
// virtiofsd dies the VM ends (a guest without its share hangs on every file
// access) and the keeper replaces it.
TEST_F(PoolSnapshotTest, TheHotAddedSharesVirtiofsdDyingEndsTheVm) {
  FillPool(key_, {1, 4096});
  ASSERT_TRUE(WaitReady(1)) << Failure();
  const PoolVm vm = Ready().front();
  pid_t virtiofsd = 0;
  for (const auto& task : fs::directory_iterator(fmt::format("/proc/{}/task", vm.keeper_pid))) {
    std::istringstream children(ReadFile(task.path() / "children"));
    for (pid_t child; children >> child;)
      if (ReadFile(fmt::format("/proc/{}/comm", child)).starts_with("virtiofsd")) virtiofsd = child;
  }
  ASSERT_GT(virtiofsd, 0) << "no virtiofsd under keeper " << vm.keeper_pid;
  ASSERT_EQ(::kill(virtiofsd, SIGKILL), 0);
  EXPECT_TRUE(WaitFor([&] { return ::kill(vm.qemu_pid, 0) != 0; }, 60s)) << "QEMU outlived its share's virtiofsd";
  ASSERT_TRUE(WaitFor([&] {
    const auto ready = Ready();
    return !ready.empty() && ready.front().id != vm.id;
  }, 300s)) << "no replacement";
}

}  // namespace
}  // namespace uvmshim::host
