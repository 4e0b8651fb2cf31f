// A booted utility VM's QEMU keeps none of the boot files' pages resident
// (QemuOptions::release_boot_files, uvm/qemu/boot_file_release.h).
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "uvm/qemu_vm.h"
#include "vm_test_support.h"

namespace uvmshim::uvm {
namespace {

namespace fs = std::filesystem;

// Summed Rss (KiB) of `pid`'s mappings of `file`.
long MappedRssKib(pid_t pid, const fs::path& file) {
  std::ifstream smaps("/proc/" + std::to_string(pid) + "/smaps");
  const std::string path = fs::canonical(file).string();
  std::string line;
  bool in_file = false;
  long kib = 0;
  while (std::getline(smaps, line)) {
    const bool header = !line.empty() && (std::isdigit(static_cast<unsigned char>(line[0])) ||
                                          (line[0] >= 'a' && line[0] <= 'f'));
    if (header) {
      const auto slash = line.find('/');
      in_file = slash != std::string::npos && line.substr(slash) == path;
    } else if (in_file && line.rfind("Rss:", 0) == 0) {
      kib += std::stol(line.substr(4));
    }
  }
  return kib;
}

TEST(BootFileReleaseVmTest, AReadyVmsQemuHoldsNoPagesOfTheKernelOrInitrd) {
  if (::access("/usr/bin/qemu-system-x86_64", X_OK) != 0) GTEST_SKIP() << "qemu-system-x86_64 not installed";
  test::TempDir dir("uvm-boot-release");
  VmConfig config = test::ImageConfig("boot-release", dir.path() / "state");
  // Private copies: pages another VM of the image maps at the same time
  // (a parallel test) are shared, and the kernel may leave those in place.
  for (fs::path* file : {&config.kernel, &config.initrd}) {
    const fs::path copy = dir.path() / file->filename();
    fs::copy_file(*file, copy);
    *file = copy;
  }
  QemuVm vm(config);
  vm.Create();
  vm.Start();
  vm.WaitAgentReady();
  const auto pid = static_cast<pid_t>(vm.vmm_pid());
  ASSERT_GT(pid, 0);
  // Megabytes before the release: the kernel is 18 MB (PVH vmlinux) or a
  // 3-7 MB bzImage, the initrd ~6 MB. A page or two may fault back in.
  EXPECT_LT(MappedRssKib(pid, config.kernel), 512) << config.kernel;
  EXPECT_LT(MappedRssKib(pid, config.initrd), 512) << config.initrd;
  vm.Stop(std::chrono::seconds(30));
}

}  // namespace
}  // namespace uvmshim::uvm
