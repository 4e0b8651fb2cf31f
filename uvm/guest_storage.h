// Storage the host hot-adds to a running utility VM (issue #16) and where the
// guest then finds it: the hypervisor half (UtilityVm::AttachStorage) hands
// back a GuestStorageLocation that the agent's MountGuestStorage takes
// (guest_storage_mount.h builds the request). Platform-neutral.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace uvmshim::uvm {

struct HostStorage {
  enum class Kind { kDirectory, kDisk };
  Kind kind = Kind::kDirectory;
  std::filesystem::path host_path;  // a directory, or an ext4 VHD/VHDX
  bool read_only = true;
  std::string share_name;           // kDirectory: the share (aname) to publish it as
  unsigned lun = 0;                 // kDisk: the LUN on SCSI controller 0
};

struct GuestStorageLocation {
  enum class Kind { kPlan9Share, kScsiDisk };
  Kind kind = Kind::kPlan9Share;
  std::string share;              // kPlan9Share: the aname
  std::uint32_t vsock_port = 0;   // kPlan9Share: the host's Plan9 server port
  unsigned controller = 0;        // kScsiDisk
  unsigned lun = 0;               // kScsiDisk
};

}  // namespace uvmshim::uvm
