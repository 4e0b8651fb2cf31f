// The boot image build: reproducible bytes, dependency-ordered module list,
// the size cap of the real initrd.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "vm_test_support.h"

namespace uvmshim::uvm {
namespace {

namespace fs = std::filesystem;
using test::Shell;
using test::ReadFile;
using test::TempDir;

std::string BuildCommand(const fs::path& out) {
  return std::string("SOURCE_DATE_EPOCH=0 bash ") + UVMSHIM_BUILD_IMAGE_SCRIPT + " --out " + out.string() +
         " --cache " + UVMSHIM_IMAGE_CACHE + " --kernel-package " + UVMSHIM_KERNEL_PACKAGE + " --init " +
         UVMSHIM_BARE_INIT + " --busybox " + UVMSHIM_BUSYBOX + " --modules '" + UVMSHIM_UVM_MODULES +
         "' --hyperv-modules 'hv_vmbus hv_sock' --compression lz4 >/dev/null";
}

TEST(BootImage, TwoBuildsOfTheSameInputsAreByteIdentical) {
  TempDir dir("uvm-image-test");
  ASSERT_EQ(Shell(BuildCommand(dir.path() / "a")), 0);
  ASSERT_EQ(Shell(BuildCommand(dir.path() / "b")), 0);
  const std::string a = ReadFile(dir.path() / "a" / "initrd.img");
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == ReadFile(dir.path() / "b" / "initrd.img")) << "initrd.img differs between two builds";
  EXPECT_TRUE(ReadFile(dir.path() / "a" / "vmlinuz") == ReadFile(dir.path() / "b" / "vmlinuz"));
  // No staging leftovers.
  for (const auto& entry : fs::directory_iterator(dir.path() / "a"))
    EXPECT_EQ(entry.path().filename().string().rfind(".staging", 0), std::string::npos) << entry.path();

  // The archive: /init, modules in dependency order, fixed owner and mtime.
  const fs::path listing = dir.path() / "listing";
  ASSERT_EQ(Shell("lz4 -dc " + (dir.path() / "a" / "initrd.img").string() + " | cpio -itv --quiet > " +
                  listing.string()),
            0);
  const std::string entries = ReadFile(listing);
  EXPECT_NE(entries.find(" init\n"), std::string::npos);
  EXPECT_NE(entries.find("bin/busybox"), std::string::npos);
  EXPECT_EQ(entries.find("1000"), std::string::npos) << "a non-root owner in the archive";
  const fs::path order_dir = dir.path() / "extract";
  fs::create_directories(order_dir);
  ASSERT_EQ(Shell("cd " + order_dir.string() + " && lz4 -dc " + (dir.path() / "a" / "initrd.img").string() +
                  " | cpio -id --quiet lib/modules/load-order lib/modules/load-order.hyperv"),
            0);
  const std::string order = ReadFile(order_dir / "lib/modules/load-order");
  ASSERT_NE(order.find("virtio_ring.ko"), std::string::npos) << order;
  EXPECT_LT(order.find("virtio_ring.ko"), order.find("virtio_pci.ko")) << order;
  EXPECT_LT(order.find("virtio.ko"), order.find("virtio_console.ko")) << order;
  EXPECT_LT(order.find("fuse.ko"), order.find("virtiofs.ko")) << order;
  const std::string hyperv = ReadFile(order_dir / "lib/modules/load-order.hyperv");
  EXPECT_LT(hyperv.find("hv_vmbus.ko"), hyperv.find("hv_sock.ko")) << hyperv;
  EXPECT_EQ(hyperv.find("vsock.ko\n"), std::string::npos) << "vsock is already in the main list";
}

TEST(BootImage, TheUtilityVmInitrdStaysUnderTheCap) {
  const fs::path initrd = test::UvmImageDir() / "initrd.img";
  ASSERT_TRUE(fs::exists(initrd));
  EXPECT_LE(fs::file_size(initrd), 8u << 20) << "initrd.img exceeds 8 MiB";
}

}  // namespace
}  // namespace uvmshim::uvm
