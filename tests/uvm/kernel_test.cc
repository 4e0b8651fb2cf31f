// Our own utility VM kernel (images/build-kernel.sh) and the image built on
// it: no modules, the size cap, the build cache and its input checks. The
// boots themselves are the rest of the vm suite, which runs on this kernel.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "vm_test_support.h"

namespace uvmshim::uvm {
namespace {

namespace fs = std::filesystem;
using test::Shell;
using test::ReadFile;
using test::TempDir;

const fs::path kKernelDir = UVMSHIM_KERNEL_DIR;

std::string BuildKernelCommand(const fs::path& out, const fs::path& fragment, const fs::path& cache,
                               const fs::path& log) {
  return std::string("bash ") + UVMSHIM_BUILD_KERNEL_SCRIPT + " --out " + out.string() + " --fragment " +
         fragment.string() + " --cache " + cache.string() + " --source " + UVMSHIM_KERNEL_SOURCE + " >" +
         log.string() + " 2>&1";
}

TEST(OwnKernel, TheImageOnItHasNoModulesAndTheSameKernelBytes) {
  if (!fs::exists(kKernelDir / "vmlinuz")) GTEST_SKIP() << "our kernel is not built (UVMSHIM_UVM_KERNEL=debian)";
  TempDir dir("uvm-kernel-test");
  const fs::path out = dir.path() / "image";
  // Module names are ignored: everything is built in.
  ASSERT_EQ(Shell(std::string("SOURCE_DATE_EPOCH=0 bash ") + UVMSHIM_BUILD_IMAGE_SCRIPT + " --out " +
                  out.string() + " --cache " + (dir.path() / "cache").string() + " --kernel-dir " +
                  kKernelDir.string() + " --init " + UVMSHIM_BARE_INIT +
                  " --modules 'virtio_pci overlay' --hyperv-modules 'hv_sock' --compression lz4 >/dev/null"),
            0);
  EXPECT_TRUE(ReadFile(out / "vmlinuz") == ReadFile(kKernelDir / "vmlinuz"));
  EXPECT_EQ(ReadFile(out / "kernel-release"), ReadFile(kKernelDir / "kernel-release"));
  const fs::path extract = dir.path() / "extract";
  fs::create_directories(extract);
  ASSERT_EQ(Shell("cd " + extract.string() + " && lz4 -dc " + (out / "initrd.img").string() +
                  " | cpio -id --quiet"),
            0);
  EXPECT_TRUE(fs::exists(extract / "lib/modules/load-order"));
  EXPECT_EQ(ReadFile(extract / "lib/modules/load-order"), "") << "a module list on an all built-in kernel";
  EXPECT_FALSE(fs::exists(extract / "lib/modules/load-order.hyperv"));
  for (const auto& entry : fs::recursive_directory_iterator(extract))
    EXPECT_NE(entry.path().extension(), ".ko") << entry.path();
}

// --pvh: the image's kernel is the uncompressed ELF with the PVH entry note
// (XEN_ELFNOTE_PHYS32_ENTRY, type 18) that QEMU's -kernel starts directly;
// refused without our kernel (Debian's bzImage has no such entry).
TEST(OwnKernel, PvhImageHoldsTheElfWithItsEntryNote) {
  if (!fs::exists(kKernelDir / "vmlinux")) GTEST_SKIP() << "our kernel is not built (UVMSHIM_UVM_KERNEL=debian)";
  TempDir dir("uvm-kernel-pvh-test");
  const fs::path out = dir.path() / "image";
  const std::string build = std::string("SOURCE_DATE_EPOCH=0 bash ") + UVMSHIM_BUILD_IMAGE_SCRIPT + " --out " +
                            out.string() + " --cache " + (dir.path() / "cache").string() + " --init " +
                            UVMSHIM_BARE_INIT + " --compression lz4";
  ASSERT_EQ(Shell(build + " --kernel-dir " + kKernelDir.string() + " --pvh >/dev/null"), 0);
  EXPECT_EQ(ReadFile(out / "vmlinuz").substr(0, 4), "\x7f" "ELF");
  EXPECT_EQ(Shell("readelf -n " + (out / "vmlinuz").string() + " | grep -q 'Xen.*0x00000012'"), 0)
      << "no PVH entry note";
  const fs::path log = dir.path() / "refused.log";
  EXPECT_NE(Shell(build + " --pvh >" + log.string() + " 2>&1"), 0);
  EXPECT_NE(ReadFile(log).find("--pvh needs --kernel-dir"), std::string::npos) << ReadFile(log);
}

// --busybox-compression: busybox and its applet links in an archive of their
// own, compressed apart, before the main one (the kernel unpacks concatenated
// archives; an LZ4 legacy stream has no end, so it must come last). The boot
// of the real image on it is the vm suite's (uvmctl console runs its shell).
TEST(OwnKernel, BusyboxArchiveOfItsOwnPrecedesTheMainOne) {
  if (!fs::exists(kKernelDir / "vmlinuz")) GTEST_SKIP() << "our kernel is not built (UVMSHIM_UVM_KERNEL=debian)";
  TempDir dir("uvm-kernel-busybox-test");
  const fs::path out = dir.path() / "image";
  ASSERT_EQ(Shell(std::string("SOURCE_DATE_EPOCH=0 bash ") + UVMSHIM_BUILD_IMAGE_SCRIPT + " --out " + out.string() +
                  " --cache " + (dir.path() / "cache").string() + " --kernel-dir " + kKernelDir.string() +
                  " --init " + UVMSHIM_BARE_INIT + " --busybox " + UVMSHIM_BUSYBOX +
                  " --compression lz4 --busybox-compression xz >/dev/null"),
            0);
  const std::string initrd = ReadFile(out / "initrd.img");
  ASSERT_EQ(initrd.rfind(std::string("\xfd" "7zXZ\0", 6), 0), 0u) << "the initrd does not start with xz";
  // The LZ4 legacy magic (0x184c2102, little-endian) after the xz stream.
  const std::size_t lz4_start = initrd.find(std::string("\x02\x21\x4c\x18", 4));
  ASSERT_NE(lz4_start, std::string::npos) << "no LZ4 archive in the initrd";
  ASSERT_EQ(lz4_start % 4, 0u);
  std::ofstream(dir.path() / "busybox.xz") << initrd.substr(0, lz4_start);
  std::ofstream(dir.path() / "main.lz4") << initrd.substr(lz4_start);
  const fs::path main_list = dir.path() / "main.list", busybox_list = dir.path() / "busybox.list";
  ASSERT_EQ(Shell("lz4 -dc " + (dir.path() / "main.lz4").string() + " | cpio -it --quiet >" + main_list.string()), 0);
  ASSERT_EQ(Shell("xz -dc " + (dir.path() / "busybox.xz").string() + " | cpio -itv --quiet >" +
                  busybox_list.string()),
            0);
  const std::string main_entries = ReadFile(main_list), busybox_entries = ReadFile(busybox_list);
  EXPECT_NE(main_entries.find("init\n"), std::string::npos) << main_entries;
  EXPECT_NE(main_entries.find("etc/passwd\n"), std::string::npos) << main_entries;
  EXPECT_EQ(main_entries.find("bin/busybox"), std::string::npos) << main_entries;
  EXPECT_NE(busybox_entries.find(" bin/busybox\n"), std::string::npos) << busybox_entries;
  EXPECT_NE(busybox_entries.find(" bin/sh -> /bin/busybox\n"), std::string::npos) << busybox_entries;
  EXPECT_EQ(busybox_entries.find(" init\n"), std::string::npos) << busybox_entries;
  for (const auto& entry : fs::directory_iterator(out))
    EXPECT_EQ(entry.path().filename().string().rfind(".staging", 0), std::string::npos) << entry.path();
}

TEST(OwnKernel, ConfigHasWhatTheAgentAndContainersNeed) {
  if (!fs::exists(kKernelDir / "kernel-config")) GTEST_SKIP() << "our kernel is not built";
  const std::string config = ReadFile(kKernelDir / "kernel-config");
  // No modules at all; the options whose absence would only show at run time.
  EXPECT_NE(config.find("# CONFIG_MODULES is not set"), std::string::npos);
  // sit would put a sit0 device in every network namespace (a container with
  // --network none must see lo only); an oops must end the VM.
  EXPECT_NE(config.find("\n# CONFIG_IPV6_SIT is not set\n"), std::string::npos);
  EXPECT_NE(config.find("\nCONFIG_PANIC_ON_OOPS=y\n"), std::string::npos);
  for (const char* option :
       {"CONFIG_VIRTIO_PCI=y", "CONFIG_VIRTIO_CONSOLE=y", "CONFIG_VIRTIO_FS=y", "CONFIG_VIRTIO_NET=y",
        "CONFIG_VIRTIO_BLK=y", "CONFIG_SCSI_VIRTIO=y", "CONFIG_VIRTIO_VSOCKETS=y", "CONFIG_VIRTIO_BALLOON=y", "CONFIG_PAGE_REPORTING=y",
        "CONFIG_HYPERV=y", "CONFIG_HYPERV_VSOCKETS=y", "CONFIG_HYPERV_STORAGE=y", "CONFIG_HYPERV_UTILS=y",
        "CONFIG_NET_9P_FD=y", "CONFIG_USER_NS=y", "CONFIG_TIME_NS=y", "CONFIG_CGROUP_BPF=y",
        "CONFIG_SECCOMP_FILTER=y", "CONFIG_KEYS=y", "CONFIG_OVERLAY_FS=y", "CONFIG_EXT4_FS=y",
        "CONFIG_POSIX_MQUEUE=y", "CONFIG_TUN=y", "CONFIG_IPV6=y", "CONFIG_PVH=y"})
    EXPECT_NE(config.find(std::string("\n") + option + "\n"), std::string::npos) << option;
}

TEST(OwnKernel, KernelPlusInitrdOfTheUtilityVmFitIn8MiB) {
  const fs::path image = test::UvmImageDir();
  if (ReadFile(image / "kernel-release") != ReadFile(kKernelDir / "kernel-release"))
    GTEST_SKIP() << "the utility VM image is not on our kernel";
  // What is shipped: the compressed kernel (an image booting the PVH ELF
  // holds 18 MiB uncompressed; its bzImage is the same kernel) + the initrd.
  const auto total = fs::file_size(kKernelDir / "vmlinuz") + fs::file_size(image / "initrd.img");
  EXPECT_LE(total, 8u << 20) << "bzImage + initrd.img = " << total << " bytes";
}

// A second build of the same inputs only copies the cached kernel; bad input
// is refused with the field named, and a refused configuration leaves no
// kernel-<hash> directory behind. Uses a private cache sharing the extracted
// source of the configured one (extracting it again takes a minute).
TEST(OwnKernel, BuildIsCachedAndBadInputIsRefusedCleanly) {
  if (!fs::exists(kKernelDir / "vmlinuz")) GTEST_SKIP() << "our kernel is not built";
  TempDir dir("uvm-kernel-build-test");
  const fs::path log = dir.path() / "log";

  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(Shell(BuildKernelCommand(dir.path() / "out", UVMSHIM_KERNEL_FRAGMENT, UVMSHIM_KERNEL_CACHE, log)), 0)
      << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("cached:"), std::string::npos) << ReadFile(log);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
  EXPECT_TRUE(ReadFile(dir.path() / "out" / "vmlinuz") == ReadFile(kKernelDir / "vmlinuz"));

  EXPECT_NE(Shell(BuildKernelCommand(dir.path() / "out2", dir.path() / "no-such.config", UVMSHIM_KERNEL_CACHE, log)),
            0);
  EXPECT_NE(ReadFile(log).find("--fragment"), std::string::npos) << ReadFile(log);

  const fs::path cache = dir.path() / "cache";
  fs::create_directories(cache);
  for (const auto& entry : fs::directory_iterator(UVMSHIM_KERNEL_CACHE))
    if (entry.path().filename().string().rfind("src-", 0) == 0)
      fs::create_directory_symlink(entry.path(), cache / entry.path().filename());
  const fs::path bad = dir.path() / "bad.config";
  std::ofstream(bad) << ReadFile(UVMSHIM_KERNEL_FRAGMENT) << "CONFIG_UVMSHIM_NO_SUCH_OPTION=y\n";
  EXPECT_NE(Shell(BuildKernelCommand(dir.path() / "out3", bad, cache, log)), 0);
  EXPECT_NE(ReadFile(log).find("CONFIG_UVMSHIM_NO_SUCH_OPTION=y not in the final config"), std::string::npos)
      << ReadFile(log);
  for (const auto& entry : fs::directory_iterator(cache))
    EXPECT_EQ(entry.path().filename().string().rfind("kernel-", 0), std::string::npos) << entry.path();
}

}  // namespace
}  // namespace uvmshim::uvm
