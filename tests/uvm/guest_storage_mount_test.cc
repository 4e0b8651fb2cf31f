// The host half of hot-added storage (issue #16): the agent request built
// from where the VM put the storage, and QEMU's refusal (it shares the pod
// through virtiofs, nothing is hot-added).
#include "uvm/guest_storage_mount.h"

#include <gtest/gtest.h>

#include "uvm/qemu_vm.h"

namespace uvmshim::uvm {
namespace {

TEST(GuestStorageMountTest, Plan9LocationBecomesAPlan9Request) {
  GuestStorageLocation location;
  location.kind = GuestStorageLocation::Kind::kPlan9Share;
  location.share = "data1";
  location.vsock_port = 564;
  const auto request = MountGuestStorageRequestFor(location, "/run/storage/data1", true);
  ASSERT_TRUE(request.has_plan9());
  EXPECT_EQ(request.plan9().share(), "data1");
  EXPECT_EQ(request.plan9().vsock_port(), 564u);
  EXPECT_EQ(request.target(), "/run/storage/data1");
  EXPECT_TRUE(request.read_only());
}

TEST(GuestStorageMountTest, ScsiLocationBecomesAScsiRequest) {
  GuestStorageLocation location;
  location.kind = GuestStorageLocation::Kind::kScsiDisk;
  location.controller = 0;
  location.lun = 5;
  const auto request = MountGuestStorageRequestFor(location, "/run/storage/d5", false);
  ASSERT_TRUE(request.has_scsi());
  EXPECT_EQ(request.scsi().controller(), 0u);
  EXPECT_EQ(request.scsi().lun(), 5u);
  EXPECT_FALSE(request.read_only());
  EXPECT_EQ(request.wait_ms(), 0u) << "the agent's default wait";
}

TEST(GuestStorageMountTest, QemuDoesNotHotAddStorage) {
  VmConfig config;
  config.id = "storage-test";
  QemuVm vm(config);
  HostStorage disk;
  disk.kind = HostStorage::Kind::kDisk;
  disk.host_path = "/nonexistent.img";
  disk.lun = 1;
  try {
    static_cast<UtilityVm&>(vm).AttachStorage(disk);
    FAIL() << "no exception";
  } catch (const VmError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnimplemented) << e.what();
  }
}

}  // namespace
}  // namespace uvmshim::uvm
