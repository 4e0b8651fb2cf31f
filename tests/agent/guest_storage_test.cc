// GuestStorage (MountGuestStorage's core) without a VM: the checks that come
// before any mount, and the bounded wait for a SCSI disk against a sysfs
// tree of the test's own (no controller at all). The mount itself runs in a
// QEMU guest: tests/uvm/guest_storage_test.sh.
#include "guest-agent/guest_storage.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "common/error.h"

namespace uvmshim::agent {
namespace {

namespace fs = std::filesystem;

class GuestStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("guest-storage-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "sys/class/scsi_host");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The error Mount throws, or a default one (kUnknown) when it did not.
  Error MountError(GuestStorage& storage, const pb::MountGuestStorageRequest& request) {
    try {
      storage.Mount(request);
    } catch (const Error& e) {
      return e;
    }
    return Error(ErrorCode::kUnknown, "no error");
  }

  pb::MountGuestStorageRequest ScsiRequest(unsigned lun, const std::string& target) {
    pb::MountGuestStorageRequest request;
    request.mutable_scsi()->set_controller(0);
    request.mutable_scsi()->set_lun(lun);
    request.set_target(target);
    request.set_wait_ms(50);
    return request;
  }

  fs::path dir_;
};

TEST_F(GuestStorageTest, AHostProcessAgentAnswersUnimplemented) {
  GuestStorage storage(/*in_utility_vm=*/false, dir_ / "storage", dir_ / "sys");
  const Error error = MountError(storage, ScsiRequest(1, (dir_ / "storage/d").string()));
  EXPECT_EQ(error.code(), ErrorCode::kUnimplemented) << error.what();
  EXPECT_NE(std::string(error.what()).find("only in a utility VM"), std::string::npos) << error.what();
}

TEST_F(GuestStorageTest, TargetsOutsideTheStorageRootAreRefusedNamingTheField) {
  GuestStorage storage(true, dir_ / "storage", dir_ / "sys");
  for (const std::string& target : {std::string("/etc"), (dir_ / "storage").string(), (dir_ / "other").string(),
                                   (dir_ / "storage/../other").string(), std::string("storage/d"), std::string()}) {
    const Error error = MountError(storage, ScsiRequest(1, target));
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument) << target << ": " << error.what();
    EXPECT_EQ(std::string(error.what()).rfind("target", 0), 0u) << error.what();
  }
  EXPECT_FALSE(fs::exists(dir_ / "storage")) << "nothing created for a refused request";
}

TEST_F(GuestStorageTest, BadSourcesNameTheirField) {
  GuestStorage storage(true, dir_ / "storage", dir_ / "sys");
  const std::string target = (dir_ / "storage/d").string();
  pb::MountGuestStorageRequest none;
  none.set_target(target);
  EXPECT_NE(std::string(MountError(storage, none).what()).find("source"), std::string::npos);
  EXPECT_NE(std::string(MountError(storage, ScsiRequest(64, target)).what()).find("scsi.lun"), std::string::npos);
  pb::MountGuestStorageRequest share;
  share.mutable_plan9()->set_share("a,b");
  share.mutable_plan9()->set_vsock_port(564);
  share.set_target(target);
  EXPECT_NE(std::string(MountError(storage, share).what()).find("plan9.share"), std::string::npos);
  share.mutable_plan9()->set_share("s1");
  share.mutable_plan9()->set_vsock_port(0);
  EXPECT_NE(std::string(MountError(storage, share).what()).find("plan9.vsock_port"), std::string::npos);
  auto long_wait = ScsiRequest(1, target);
  long_wait.set_wait_ms(300001);
  EXPECT_EQ(MountError(storage, long_wait).code(), ErrorCode::kInvalidArgument);
}

// A snapshot-restored VM's share: only where the cold path mounts it, read-write, a real tag.
TEST_F(GuestStorageTest, AVirtiofsShareMountsOnlyAtTheSharePath) {
  GuestStorage storage(true, dir_ / "storage", dir_ / "sys");
  pb::MountGuestStorageRequest share;
  share.mutable_virtiofs()->set_tag("share");
  share.set_target((dir_ / "storage/d").string());
  Error error = MountError(storage, share);
  EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument) << error.what();
  EXPECT_NE(std::string(error.what()).find("only at /run/share"), std::string::npos) << error.what();
  share.set_target("/run/share");
  share.set_read_only(true);
  EXPECT_NE(std::string(MountError(storage, share).what()).find("read_only"), std::string::npos);
  share.set_read_only(false);
  share.mutable_virtiofs()->set_tag("");
  error = MountError(storage, share);
  EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(std::string(error.what()).find("virtiofs.tag"), std::string::npos) << error.what();
  share.mutable_virtiofs()->set_tag("a,b");
  EXPECT_NE(std::string(MountError(storage, share).what()).find("virtiofs.tag"), std::string::npos);
  GuestStorage host_agent(false, dir_ / "storage", dir_ / "sys");
  share.mutable_virtiofs()->set_tag("share");
  EXPECT_EQ(MountError(host_agent, share).code(), ErrorCode::kUnimplemented);
}

TEST_F(GuestStorageTest, AMissingDiskIsNotFoundAfterTheBoundedWait) {
  GuestStorage storage(true, dir_ / "storage", dir_ / "sys");
  const auto start = std::chrono::steady_clock::now();
  const Error error = MountError(storage, ScsiRequest(3, (dir_ / "storage/d").string()));
  EXPECT_EQ(error.code(), ErrorCode::kNotFound) << error.what();
  EXPECT_NE(std::string(error.what()).find("SCSI controller 0 LUN 3"), std::string::npos) << error.what();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  EXPECT_FALSE(fs::exists(dir_ / "storage/d"));
}

TEST_F(GuestStorageTest, UnmountingWhatWasNotMountedIsNotFound) {
  GuestStorage storage(true, dir_ / "storage", dir_ / "sys");
  try {
    storage.Unmount((dir_ / "storage/d").string());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound) << e.what();
  }
}

}  // namespace
}  // namespace uvmshim::agent
