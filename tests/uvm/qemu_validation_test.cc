// QemuVm::Create() refuses bad configurations with clear errors, before
// anything is started.
#include <stdlib.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <algorithm>
#include <functional>

#include "uvm/qemu_vm.h"
#include "uvm/vm_factory.h"
#include "tests/support/temp_dir.h"

namespace uvmshim::uvm {
namespace {

namespace fs = std::filesystem;

class QemuValidation : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_ / "vmlinuz") << "not really a kernel";
    std::ofstream(dir_ / "initrd.img") << "not really an initrd";
    config_.id = "validate";
    config_.kernel = dir_ / "vmlinuz";
    config_.initrd = dir_ / "initrd.img";
    config_.state_dir = dir_ / "state";
  }

  // Create() must throw a VmError whose text contains `expected`.
  void ExpectCreateError(const std::string& expected) {
    QemuVm vm(config_);
    try {
      vm.Create();
      FAIL() << "Create() accepted the config; expected an error containing: " << expected;
    } catch (const VmError& error) {
      EXPECT_NE(std::string(error.what()).find(expected), std::string::npos) << error.what();
    }
    EXPECT_EQ(vm.vmm_pid(), 0);
  }

  uvmshim::testing::TempDir temp_{"uvm-validate"};
  const std::filesystem::path dir_ = temp_.path();
  VmConfig config_;
};

TEST_F(QemuValidation, AcceptsAGoodConfigAndBuildsTheCommandLine) {
  QemuVm vm(config_);
  vm.Create();
  const auto& cmd = vm.command_line();
  auto has = [&cmd](const std::string& item) { return std::find(cmd.begin(), cmd.end(), item) != cmd.end(); };
  EXPECT_TRUE(has("-no-reboot"));
  EXPECT_TRUE(has("-nodefaults"));
  EXPECT_TRUE(has(config_.kernel.string()));
  EXPECT_EQ(vm.AgentTarget(), "unix://" + (config_.state_dir / "agent.sock").string());
  EXPECT_EQ(vm.DebugAgentTarget(), "unix://" + (config_.state_dir / "debug.sock").string());
  EXPECT_EQ(fs::status(config_.state_dir).permissions() & fs::perms::all, fs::perms::owner_all);
  const auto append = std::find(cmd.begin(), cmd.end(), "-append");
  ASSERT_NE(append, cmd.end());
  EXPECT_NE((append + 1)->find("panic=-1"), std::string::npos);
  EXPECT_NE((append + 1)->find("uvm.listen=serial:///dev/virtio-ports/agent"), std::string::npos);
  EXPECT_EQ(vm.exit_info().reason, ExitReason::kRunning);
}

// The one id rule (common/ids.h): what the shim accepts, the VM accepts too.
TEST_F(QemuValidation, AcceptsTheLongestValidId) {
  config_.id = std::string(76, 'v');
  QemuVm vm(config_);
  EXPECT_NO_THROW(vm.Create());
  config_.id = std::string(77, 'v');
  ExpectCreateError("longer than 76 characters");
}

TEST_F(QemuValidation, FactoryMakesAQemuVm) {
  auto vm = MakeUtilityVm(config_);
  EXPECT_NE(dynamic_cast<QemuVm*>(vm.get()), nullptr);
}

TEST_F(QemuValidation, MissingKernel) {
  config_.kernel = "/nonexistent/vmlinuz";
  ExpectCreateError("kernel /nonexistent/vmlinuz: No such file or directory");
}

TEST_F(QemuValidation, MissingInitrd) {
  config_.initrd = dir_ / "nope.img";
  ExpectCreateError("initrd " + (dir_ / "nope.img").string() + ": No such file or directory");
}

TEST_F(QemuValidation, KernelIsADirectory) {
  config_.kernel = dir_;
  ExpectCreateError("not a regular file");
}

TEST_F(QemuValidation, TooLittleMemory) {
  config_.memory_mb = 32;
  ExpectCreateError("memory_mb 32 is below the minimum of 64 MiB");
}

TEST_F(QemuValidation, MoreMemoryThanTheHost) {
  config_.memory_mb = 1u << 30;
  ExpectCreateError("exceeds the host's");
}

TEST_F(QemuValidation, ZeroCpus) {
  config_.cpus = 0;
  ExpectCreateError("cpus 0 out of range");
}

TEST_F(QemuValidation, MoreCpusThanTheHost) {
  config_.cpus = 4096;
  ExpectCreateError("cpus 4096 out of range");
}

TEST_F(QemuValidation, BadId) {
  config_.id = "has space";
  ExpectCreateError("utility VM: id \"has space\" is invalid");
}

TEST_F(QemuValidation, CriLengthIdIsFine) {
  config_.id = std::string(64, 'a');
  QemuVm vm(config_);
  EXPECT_NO_THROW(vm.Create());
}

TEST_F(QemuValidation, RelativeStateDir) {
  config_.state_dir = "relative/state";
  ExpectCreateError("must be an absolute path");
}

TEST_F(QemuValidation, StateDirTooLongForSockets) {
  config_.state_dir = dir_ / std::string(120, 'x');
  ExpectCreateError("too long for Unix sockets");
}

TEST_F(QemuValidation, ShortSocketDirMakesALongStateDirWork) {
  config_.state_dir = dir_ / std::string(120, 'x');
  config_.socket_dir = dir_ / "s";
  QemuVm vm(config_);
  EXPECT_NO_THROW(vm.Create());
  EXPECT_EQ(vm.AgentTarget(), "unix://" + (config_.socket_dir / "agent.sock").string());
  EXPECT_EQ(fs::status(config_.socket_dir).permissions() & fs::perms::all, fs::perms::owner_all);
}

TEST_F(QemuValidation, ShareMustBeADirectory) {
  config_.share_dir = dir_ / "vmlinuz";
  ExpectCreateError("share_dir");
}

TEST_F(QemuValidation, RootfsDirIsForHcsOnly) {
  config_.rootfs_dir = dir_;
  ExpectCreateError("shares share_dir instead");
}

TEST_F(QemuValidation, MissingQemuBinary) {
  QemuOptions options;
  options.qemu_binary = "qemu-system-uvmshim-does-not-exist";
  QemuVm vm(config_, options);
  try {
    vm.Create();
    FAIL() << "Create() accepted a missing QEMU";
  } catch (const VmError& error) {
    EXPECT_NE(std::string(error.what()).find("not found in PATH"), std::string::npos) << error.what();
  }
}

TEST_F(QemuValidation, StartBeforeCreateIsRefused) {
  QemuVm vm(config_);
  EXPECT_THROW(vm.Start(), VmError);
  EXPECT_THROW(vm.WaitAgentReady(), VmError);
}

}  // namespace
}  // namespace uvmshim::uvm
