// Mounting the container rootfs the way each hypervisor offers it
// (rootfs_source.h): virtiofs (QEMU), Plan9 over a Hyper-V socket and an
// ext4 VHD on SCSI (HCS). The pieces take their inputs explicitly (a
// connected fd, a sysfs root) so tests can drive them with a real 9P server
// on a socket of their own and a real QEMU SCSI disk.
//
// No logging and no agent dependencies here: a static test /init links this
// file alone.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/unique_fd.h"
#include "guest-agent/vm/rootfs_source.h"

namespace uvmshim::agent::vm {

// hcsshim's msize for Plan9 shares: HCS's server handles 64 KiB messages.
inline constexpr unsigned kPlan9Msize = 65536;

// The mount data for 9p over `fd`: trans=fd,rfdno=N,wfdno=N,msize=...,aname=SHARE.
std::string Plan9MountData(int fd, std::string_view share, unsigned msize = kPlan9Msize);

// Mounts the 9P2000.L server on the other end of the connected stream `fd`
// at `target` (created if missing). The kernel keeps its own reference to
// the socket, so the caller may close `fd` afterwards. Throws
// std::system_error naming the share and the target.
void MountPlan9OverFd(int fd, std::string_view share, const std::filesystem::path& target,
                      unsigned long flags);

// Connects AF_VSOCK to the host (CID 2) on `port`: under Hyper-V this is a
// Hyper-V socket to the service GUID <port>-facb-11e6-bd58-64006a7986d3.
// Throws std::system_error naming the port.
UniqueFd DialHostVsock(std::uint32_t port);

// The block device (/dev/NAME) of the disk at SCSI `controller`:`lun`. The
// controller index counts the SCSI hosts of disk controllers (Hyper-V's
// storvsc, virtio-scsi) in host number order, as Hyper-V numbers its
// controllers; the disk is target 0, channel 0 as both attach it. Waits up
// to `wait` for the disk to appear (the SCSI scan runs asynchronously after
// the driver loads; sysfs has no change notification short of uevents).
// Throws std::runtime_error saying what was missing.
std::filesystem::path FindScsiDisk(unsigned controller, unsigned lun,
                                   const std::filesystem::path& sysfs_root,
                                   std::chrono::milliseconds wait);

// Mounts `source` at `target`. Throws (std::system_error or
// std::runtime_error) with the reason; nothing stays mounted on failure.
struct RootfsMountOptions {
  bool read_only = false;
  unsigned long extra_flags = 0;             // e.g. MS_NODEV for the sandbox share
  std::filesystem::path sysfs_root = "/sys";
  std::chrono::milliseconds scsi_wait{std::chrono::seconds(30)};  // TCG boots are slow
};
void MountRootfsSource(const RootfsSource& source, const std::filesystem::path& target,
                       const RootfsMountOptions& options);

}  // namespace uvmshim::agent::vm
