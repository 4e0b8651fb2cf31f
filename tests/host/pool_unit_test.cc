// The warm pool's pure parts: the [pool] table, the configuration key, the
// key file and the pool dir listing (no VM).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "pool/pool_dir.h"
#include "sandbox_config.h"

namespace uvmshim::host {
namespace {
namespace fs = std::filesystem;
using namespace pool;

TEST(PoolConfigTest, OffByDefaultAndReadFromThePoolTable) {
  EXPECT_FALSE(ParseSandboxConfig("", "t").pool.enabled);
  const auto config = ParseSandboxConfig("[pool]\nenabled = true\nsize = 3\nmax_memory_mib = 900\n", "t");
  EXPECT_TRUE(config.pool.enabled);
  EXPECT_EQ(config.pool.size, 3u);
  EXPECT_EQ(config.pool.max_memory_mib, 900u);
  EXPECT_TRUE(config.pool.snapshot) << "snapshots are on by default";
  EXPECT_FALSE(ParseSandboxConfig("[pool]\nsnapshot = false\n", "t").pool.snapshot);
}

TEST(PoolConfigTest, BadValuesNameTheKey) {
  for (const auto& [text, key] : std::vector<std::pair<std::string, std::string>>{
           {"[pool]\nsize = 0\n", "\"size\""},
           {"[pool]\nenabled = \"yes\"\n", "\"enabled\""},
           {"[pool]\nmax_memory_mib = -5\n", "\"max_memory_mib\""},
           {"[pool]\nsizes = 2\n", "\"sizes\""},
           {"[pool]\nsnapshot = 1\n", "\"snapshot\""},
           {"pool = 3\n", "[pool]"}}) {
    try {
      ParseSandboxConfig(text, "rt.toml");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
}

TEST(PoolKeyTest, EveryBootInputChangesTheKey) {
  char pattern[] = "/tmp/pkt.XXXXXX";
  const fs::path dir = ::mkdtemp(pattern);
  std::ofstream(dir / "vmlinuz") << "k";
  std::ofstream(dir / "initrd.img") << "i";
  SandboxConfig config;
  config.kernel = dir / "vmlinuz";
  config.initrd = dir / "initrd.img";
  const PoolKey base = KeyFor(config);
  EXPECT_EQ(base.Hash(), KeyFor(config).Hash());
  EXPECT_EQ(base.Hash().size(), 16u);
  auto changed = [&](auto change) {
    SandboxConfig other = config;
    change(other);
    return KeyFor(other).Hash() != base.Hash();
  };
  EXPECT_TRUE(changed([](SandboxConfig& c) { c.memory_mb = 512; }));
  EXPECT_TRUE(changed([](SandboxConfig& c) { c.cpus = 2; }));
  EXPECT_TRUE(changed([](SandboxConfig& c) { c.kernel_cmdline_extra = "quiet"; }));
  EXPECT_TRUE(changed([](SandboxConfig& c) { c.agent_log_level = "debug"; }));
  // A rebuilt initrd (new size) never hands out VMs of the old one.
  // (Hash() reads the files when called: keep the old value.)
  const std::string before = base.Hash();
  std::ofstream(dir / "initrd.img") << "rebuilt";
  EXPECT_NE(KeyFor(config).Hash(), before);
  EXPECT_EQ(PoolKey::Parse(base.Serialize()).Serialize(), base.Serialize());
  EXPECT_THROW(PoolKey::Parse("kernel=/k\nbogus=1\n"), std::invalid_argument);
  EXPECT_THROW(PoolKey::Parse("kernel=/k\n"), std::invalid_argument);
  fs::remove_all(dir);
}

TEST(PoolDirTest, ListsVmsWithTheirStateAndSeesDeadKeepers) {
  char pattern[] = "/tmp/pdt.XXXXXX";
  const fs::path dir = ::mkdtemp(pattern);
  EXPECT_TRUE(ListVms(dir / "missing").empty());
  // A stand-in keeper: a process whose command line names the VM id.
  const pid_t keeper = ::fork();
  if (keeper == 0) {
    ::execl("/bin/sleep", "a-pool-vm", "60", static_cast<char*>(nullptr));  // argv[0] names the VM
    ::_exit(127);
  }
  for (int i = 0; i < 500 && ReadSmallFile("/proc/" + std::to_string(keeper) + "/cmdline").find("a-pool-vm") ==
                                 std::string::npos; ++i)
    ::usleep(10000);  // until the exec happened
  fs::create_directories(dir / "a-pool-vm");
  WriteFileAtomic(dir / "a-pool-vm/state", "ready\n");
  WriteFileAtomic(dir / "a-pool-vm/vm.conf",
                  "memory_mb=256\nkeeper_pid=" + std::to_string(keeper) + "\nqemu_pid=7\n");
  // Our own pid runs but does not name the VM: a reused pid, not its keeper.
  // Its id ("bin") is a substring of our command line (.../bin/host_unit_test)
  // but no argument of it: only a whole argument or a ".../<id>" path counts.
  fs::create_directories(dir / "bin");
  WriteFileAtomic(dir / "bin/state", "ready\n");
  WriteFileAtomic(dir / "bin/vm.conf", "keeper_pid=" + std::to_string(::getpid()) + "\n");
  fs::create_directories(dir / "b");
  WriteFileAtomic(dir / "b/state", "claimed\n");
  WriteFileAtomic(dir / "b/vm.conf", "memory_mb=512\nkeeper_pid=999999999\n");
  const auto vms = ListVms(dir);
  ::kill(keeper, SIGKILL);
  ::waitpid(keeper, nullptr, 0);
  ASSERT_EQ(vms.size(), 3u);
  EXPECT_FALSE(vms[2].keeper_alive) << "a reused pid was taken for the keeper";
  EXPECT_EQ(vms[0].state, VmState::kReady);
  EXPECT_EQ(vms[0].memory_mb, 256u);
  EXPECT_EQ(vms[0].qemu_pid, 7);
  EXPECT_TRUE(vms[0].keeper_alive);
  EXPECT_EQ(vms[1].state, VmState::kClaimed);
  EXPECT_FALSE(vms[1].keeper_alive);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace uvmshim::host
