// Where the container rootfs of a utility VM comes from, as the kernel
// parameter uvm.rootfs names it. Three transports, one per hypervisor:
//   uvm.rootfs=TAG or virtiofs:TAG   QEMU: a virtiofs share with that tag
//   uvm.rootfs=9p:SHARE:PORT         HCS: the host's Plan9 server, reached by
//                                    dialing vsock CID 2 (the host) on PORT
//                                    (HCS serves 564); SHARE is the aname
//   uvm.rootfs=scsi:CONTROLLER:LUN   HCS: an ext4 VHD attached to that SCSI
//                                    controller (0-based) at that LUN
// uvm.rootfs_ro=1 mounts it read-only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace uvmshim::agent::vm {

struct RootfsSource {
  enum class Kind { kNone, kVirtiofs, kPlan9Vsock, kScsiDisk };
  Kind kind = Kind::kNone;
  std::string tag;                  // virtiofs tag, or the Plan9 share (aname)
  std::uint32_t vsock_port = 0;     // kPlan9Vsock
  unsigned scsi_controller = 0;     // kScsiDisk
  unsigned scsi_lun = 0;            // kScsiDisk
};

// Throws std::invalid_argument naming uvm.rootfs and what is wrong. An empty
// value is kNone.
RootfsSource ParseRootfsSource(std::string_view value);

// The value back in uvm.rootfs syntax (for log lines and error messages).
std::string Describe(const RootfsSource& source);

}  // namespace uvmshim::agent::vm
