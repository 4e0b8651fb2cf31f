// uvm.rootfs in all its forms, the 9p mount data, and the SCSI disk lookup by
// controller and LUN against a sysfs tree laid out as the kernel does.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <fstream>
#include <stdexcept>
#include <thread>

#include "guest-agent/vm/kernel_cmdline.h"
#include "guest-agent/vm/rootfs_mount.h"
#include "guest-agent/vm/rootfs_source.h"

namespace uvmshim::agent::vm {
namespace {

namespace fs = std::filesystem;
using Kind = RootfsSource::Kind;

TEST(RootfsSource, EveryTransport) {
  auto virtiofs = ParseRootfsSource("rootfs");
  EXPECT_EQ(virtiofs.kind, Kind::kVirtiofs);
  EXPECT_EQ(virtiofs.tag, "rootfs");
  EXPECT_EQ(ParseRootfsSource("virtiofs:share2").tag, "share2");

  auto plan9 = ParseRootfsSource("9p:rootfs:564");
  EXPECT_EQ(plan9.kind, Kind::kPlan9Vsock);
  EXPECT_EQ(plan9.tag, "rootfs");
  EXPECT_EQ(plan9.vsock_port, 564u);
  EXPECT_EQ(Describe(plan9), "9p:rootfs:564");

  auto scsi = ParseRootfsSource("scsi:0:1");
  EXPECT_EQ(scsi.kind, Kind::kScsiDisk);
  EXPECT_EQ(scsi.scsi_controller, 0u);
  EXPECT_EQ(scsi.scsi_lun, 1u);
  EXPECT_EQ(Describe(scsi), "scsi:0:1");
  EXPECT_EQ(ParseRootfsSource("").kind, Kind::kNone);
}

TEST(RootfsSource, MalformedValuesNameTheParameterAndTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {"9p:rootfs", "expected 9p:SHARE:PORT"},
      {"9p::564", "empty Plan9 share name"},
      {"9p:rootfs:x", "vsock port \"x\""},
      {"9p:rootfs:0", "vsock port 0"},
      {"9p:rootfs:4294967296", "vsock port"},
      {"scsi:0", "expected scsi:CONTROLLER:LUN"},
      {"scsi:4:0", "SCSI controller \"4\""},
      {"scsi:0:64", "SCSI LUN \"64\""},
      {"scsi:0:-1", "SCSI LUN \"-1\""},
      {"nfs:server:/x", "unknown transport \"nfs\""},
      {"virtiofs:", "expected virtiofs:TAG"},
  };
  for (const auto& [value, fragment] : cases) {
    try {
      ParseRootfsSource(value);
      ADD_FAILURE() << "accepted uvm.rootfs=" << value;
    } catch (const std::invalid_argument& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(std::string("uvm.rootfs=") + value), std::string::npos) << message;
      EXPECT_NE(message.find(fragment), std::string::npos) << message;
    }
  }
}

TEST(RootfsSource, ReadOnlyFlagFromTheCommandLine) {
  EXPECT_TRUE(ParseVmSettings("uvm.rootfs=scsi:0:0 uvm.rootfs_ro=1").rootfs_read_only);
  EXPECT_FALSE(ParseVmSettings("uvm.rootfs=scsi:0:0").rootfs_read_only);
  EXPECT_THROW(ParseVmSettings("uvm.rootfs_ro=yes"), std::invalid_argument);
  // A bad source is not fatal at parse time: PID 1 reports it when mounting.
  EXPECT_EQ(ParseVmSettings("uvm.rootfs=scsi:9:9").rootfs_tag, "scsi:9:9");
}

TEST(Plan9Mount, DataIsTheFdTransportHcsshimUses) {
  EXPECT_EQ(Plan9MountData(7, "rootfs"), "trans=fd,rfdno=7,wfdno=7,msize=65536,aname=rootfs");
  EXPECT_THROW(MountPlan9OverFd(7, "a,b", "/nonexistent", 0), std::invalid_argument);
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "scsi-sysfs-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp " + pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// sysfs as the SCSI midlayer lays it out: class/scsi_host/hostN/proc_name
// and bus/scsi/devices/H:C:T:L/block/NAME.
class FakeSysfs {
 public:
  explicit FakeSysfs(const fs::path& root) : root_(root) {}
  void AddHost(unsigned host, const std::string& driver) {
    const fs::path dir = root_ / "class/scsi_host" / ("host" + std::to_string(host));
    fs::create_directories(dir);
    std::ofstream(dir / "proc_name") << driver << "\n";
  }
  void AddDisk(unsigned host, unsigned lun, const std::string& name) {
    fs::create_directories(root_ / "bus/scsi/devices" / (std::to_string(host) + ":0:0:" + std::to_string(lun)) /
                           "block" / name);
  }

 private:
  fs::path root_;
};

TEST(ScsiDisk, ControllerCountsDiskControllersOnlyInHostOrder) {
  TempDir dir;
  FakeSysfs sysfs(dir.path());
  sysfs.AddHost(0, "ata_piix");  // not a disk controller HCS or QEMU attaches to
  sysfs.AddHost(2, "storvsc_host");
  sysfs.AddHost(10, "storvsc_host");  // numerically after host2, not between host1x
  sysfs.AddHost(1, "virtio_scsi");
  sysfs.AddDisk(0, 1, "sda");
  sysfs.AddDisk(1, 1, "sdb");
  sysfs.AddDisk(2, 0, "sdc");
  sysfs.AddDisk(10, 5, "sdd");
  const auto no_wait = std::chrono::milliseconds(0);
  EXPECT_EQ(FindScsiDisk(0, 1, dir.path(), no_wait), "/dev/sdb");
  EXPECT_EQ(FindScsiDisk(1, 0, dir.path(), no_wait), "/dev/sdc");
  EXPECT_EQ(FindScsiDisk(2, 5, dir.path(), no_wait), "/dev/sdd");
}

TEST(ScsiDisk, MissingControllerOrLunSaysWhichAndHowLongItWaited) {
  TempDir dir;
  FakeSysfs sysfs(dir.path());
  sysfs.AddHost(0, "virtio_scsi");
  sysfs.AddDisk(0, 0, "sda");
  try {
    FindScsiDisk(0, 2, dir.path(), std::chrono::milliseconds(30));
    FAIL() << "found a disk at LUN 2";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "no disk at SCSI controller 0 LUN 2 (SCSI host 0) after 30 ms");
  }
  try {
    FindScsiDisk(1, 0, dir.path(), std::chrono::milliseconds(0));
    FAIL() << "found controller 1";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no SCSI controller 1 LUN 0: the guest has 1 SCSI disk controller(s)"),
              std::string::npos)
        << e.what();
  }
}

TEST(ScsiDisk, WaitsForADiskTheScanAddsLater) {
  TempDir dir;
  FakeSysfs sysfs(dir.path());
  sysfs.AddHost(0, "virtio_scsi");
  std::thread scan([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the asynchronous scan
    sysfs.AddDisk(0, 3, "sdq");
  });
  EXPECT_EQ(FindScsiDisk(0, 3, dir.path(), std::chrono::seconds(10)), "/dev/sdq");
  scan.join();
}

}  // namespace
}  // namespace uvmshim::agent::vm
