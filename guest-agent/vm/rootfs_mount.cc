#include "guest-agent/vm/rootfs_mount.h"

#include <linux/vm_sockets.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

namespace uvmshim::agent::vm {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void ThrowErrno(int error, const std::string& what) {
  throw std::system_error(error, std::generic_category(), what);
}

void MountOrThrow(const std::string& source, const fs::path& target, const char* type,
                  unsigned long flags, const std::string& data, const std::string& what) {
  std::error_code ignored;
  fs::create_directories(target, ignored);
  if (::mount(source.c_str(), target.c_str(), type, flags, data.empty() ? nullptr : data.c_str()) != 0)
    ThrowErrno(errno, what);
}

std::string ReadFirstLine(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// SCSI host numbers of disk controllers, ascending.
std::vector<unsigned> DiskControllerHosts(const fs::path& sysfs_root) {
  std::vector<unsigned> hosts;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(sysfs_root / "class/scsi_host", error)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("host", 0) != 0) continue;
    const std::string driver = ReadFirstLine(entry.path() / "proc_name");
    if (driver != "storvsc_host" && driver != "virtio_scsi") continue;
    try {
      hosts.push_back(static_cast<unsigned>(std::stoul(name.substr(4))));
    } catch (const std::exception&) {
    }
  }
  std::sort(hosts.begin(), hosts.end());
  return hosts;
}

// The block device name under .../H:0:0:LUN/block/, or "".
std::string BlockDeviceOf(const fs::path& sysfs_root, unsigned host, unsigned lun) {
  const fs::path block = sysfs_root / "bus/scsi/devices" /
                         (std::to_string(host) + ":0:0:" + std::to_string(lun)) / "block";
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(block, error)) return entry.path().filename().string();
  return "";
}

}  // namespace

std::string Plan9MountData(int fd, std::string_view share, unsigned msize) {
  return "trans=fd,rfdno=" + std::to_string(fd) + ",wfdno=" + std::to_string(fd) +
         ",msize=" + std::to_string(msize) + ",aname=" + std::string(share);
}

void MountPlan9OverFd(int fd, std::string_view share, const fs::path& target, unsigned long flags) {
  if (share.find(',') != std::string_view::npos)
    throw std::invalid_argument("Plan9 share \"" + std::string(share) + "\": a comma would end the aname option");
  try {
    MountOrThrow(std::string(share), target, "9p", flags, Plan9MountData(fd, share),
                 "mount 9p share \"" + std::string(share) + "\" on " + target.string());
  } catch (const std::system_error& error) {
    if (error.code().value() != ENODEV) throw;
    throw std::system_error(error.code(), std::string(error.what()) +
                                              " (this guest kernel has no 9p filesystem: Debian's cloud "
                                              "kernel lacks it, our own kernel and linux-image-amd64 have it)");
  }
}

UniqueFd DialHostVsock(std::uint32_t port) {
  UniqueFd fd(::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) ThrowErrno(errno, "socket(AF_VSOCK) for host port " + std::to_string(port));
  sockaddr_vm address{};
  address.svm_family = AF_VSOCK;
  address.svm_cid = VMADDR_CID_HOST;
  address.svm_port = port;
  int result;
  do {
    result = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  } while (result != 0 && errno == EINTR);
  if (result != 0) ThrowErrno(errno, "connect vsock host (CID 2) port " + std::to_string(port));
  return fd;
}

fs::path FindScsiDisk(unsigned controller, unsigned lun, const fs::path& sysfs_root,
                      std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  auto pause = std::chrono::milliseconds(5);
  while (true) {
    const auto hosts = DiskControllerHosts(sysfs_root);
    if (controller < hosts.size()) {
      const std::string name = BlockDeviceOf(sysfs_root, hosts[controller], lun);
      if (!name.empty()) return fs::path("/dev") / name;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      const std::string where = "SCSI controller " + std::to_string(controller) + " LUN " + std::to_string(lun);
      if (controller >= hosts.size())
        throw std::runtime_error("no " + where + ": the guest has " + std::to_string(hosts.size()) +
                                 " SCSI disk controller(s) (storvsc or virtio_scsi) after " +
                                 std::to_string(wait.count()) + " ms");
      throw std::runtime_error("no disk at " + where + " (SCSI host " + std::to_string(hosts[controller]) +
                               ") after " + std::to_string(wait.count()) + " ms");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(100));
  }
}

void MountRootfsSource(const RootfsSource& source, const fs::path& target, const RootfsMountOptions& options) {
  const unsigned long flags = options.extra_flags | (options.read_only ? MS_RDONLY : 0);
  switch (source.kind) {
    case RootfsSource::Kind::kNone:
      return;
    case RootfsSource::Kind::kVirtiofs:
      MountOrThrow(source.tag, target, "virtiofs", flags, "",
                   "mount virtiofs tag \"" + source.tag + "\" on " + target.string());
      return;
    case RootfsSource::Kind::kPlan9Vsock: {
      UniqueFd connection = DialHostVsock(source.vsock_port);
      MountPlan9OverFd(connection.get(), source.tag, target, flags);
      return;  // the mount holds its own reference to the socket
    }
    case RootfsSource::Kind::kScsiDisk: {
      const fs::path device =
          FindScsiDisk(source.scsi_controller, source.scsi_lun, options.sysfs_root, options.scsi_wait);
      MountOrThrow(device.string(), target, "ext4", flags, "",
                   "mount ext4 " + device.string() + " (" + Describe(source) + ") on " + target.string());
      return;
    }
  }
}

}  // namespace uvmshim::agent::vm
