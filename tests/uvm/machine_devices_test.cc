// The devices of a utility VM's machine, as QEMU itself reports them: the
// QEMU of QemuVm's real command line, started paused (-S, nothing boots),
// asked over QMP. Every device QEMU emulates costs host memory per VM
// (issue #13), so one the guest never uses must not come back unnoticed.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "uvm/qemu_vm.h"
#include "uvm/qmp_client.h"
#include "vm_test_support.h"

namespace uvmshim::uvm {
namespace {

namespace fs = std::filesystem;

// A QEMU started from an argument vector, killed and reaped when it goes out of scope.
class PausedQemu {
 public:
  explicit PausedQemu(std::vector<std::string> args) {
    args.push_back("-S");
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~PausedQemu() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  PausedQemu(const PausedQemu&) = delete;
  PausedQemu& operator=(const PausedQemu&) = delete;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// PCI class codes (class << 8 | subclass) of every device on bus 0.
std::multiset<int> PciClasses(QmpClient& qmp) {
  std::multiset<int> classes;
  for (const auto& bus : qmp.Execute("query-pci"))
    for (const auto& device : bus.at("devices")) classes.insert(device.at("class_info").at("class").get<int>());
  return classes;
}

TEST(MachineDevicesTest, TheMachineHasTheVirtioDevicesAndNoSataController) {
  test::TempDir dir("uvm-machine");
  VmConfig config = test::ImageConfig("machine", dir.path() / "state");
  QemuVm vm(config);
  vm.Create();  // the command line only: nothing is started
  std::vector<std::string> args = vm.command_line();
  // QemuVm searches QEMU in PATH; execv wants the path.
  if (args[0].find('/') == std::string::npos) args[0] = "/usr/bin/" + args[0];
  if (::access(args[0].c_str(), X_OK) != 0) GTEST_SKIP() << args[0] << " not installed";
  PausedQemu qemu(args);
  ASSERT_GT(qemu.pid(), 0);
  const fs::path qmp_socket = config.state_dir / "qmp.sock";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!fs::exists(qmp_socket) && std::chrono::steady_clock::now() < deadline) {
    ASSERT_EQ(::waitpid(qemu.pid(), nullptr, WNOHANG), 0) << "QEMU exited: " << vm.console_log();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  QmpClient qmp(qmp_socket, std::chrono::seconds(10));
  const auto classes = PciClasses(qmp);
  constexpr int kSata = 0x0106, kHostBridge = 0x0600, kIsaBridge = 0x0601, kSmbus = 0x0c05;
  EXPECT_EQ(classes.count(kSata), 0u) << "q35's AHCI controller is back: sata=off dropped from the machine?";
  EXPECT_EQ(classes.count(kHostBridge), 1u);
  EXPECT_EQ(classes.count(kIsaBridge), 1u);  // ICH9's LPC: the ACPI power-off and the HPET
  EXPECT_EQ(classes.count(kSmbus), 1u);
  // virtio-serial (agent and debug ports: class "communication"), the balloon (free page reporting).
  constexpr int kCommunication = 0x0780, kBalloon = 0x00ff;
  EXPECT_EQ(classes.count(kCommunication), 1u);
  EXPECT_EQ(classes.count(kBalloon), 1u);
}

}  // namespace
}  // namespace uvmshim::uvm
