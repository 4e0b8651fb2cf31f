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

#include "pool_test_fixture.h"

namespace uvmshim::host {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace pool;
using test_support::ReadFile;

class PoolSnapshotTest : public PoolFixture {
 protected:
  PoolSnapshotTest() : PoolFixture("pst") {}
  std::filesystem::path Snapshot() { return KeyDir(key_) / "snapshot.bin"; }
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
