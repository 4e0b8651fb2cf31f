#include "guest-agent/sandbox_shm.h"

#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <regex>
#include <stdexcept>
#include <string>

namespace uvmshim::agent {

void SandboxShm::EnsureFor(const OciSpec& spec) {
  const OciMount* shm = nullptr;
  for (const auto& mount : spec.mounts)
    if (mount.source == kSandboxShmPath) shm = &mount;
  if (!shm) return;
  std::string size = kDefaultSandboxShmSize;
  for (const auto& option : shm->options) {
    if (!option.starts_with("size=")) continue;
    size = option.substr(5);
    static const std::regex kSize("[0-9]{1,15}[kmgKMG]?");
    if (!std::regex_match(size, kSize))
      throw std::invalid_argument("mount " + shm->destination + ": option size=" + size +
                                  ": expected a number with an optional k, m or g suffix");
  }
  std::lock_guard lock(mu_);
  if (mounted_) return;
  if (::mkdir(kSandboxShmPath, 0755) != 0 && errno != EEXIST)
    throw std::runtime_error(std::string("mkdir ") + kSandboxShmPath + ": " + std::strerror(errno));
  const std::string data = "mode=1777,size=" + size;
  if (::mount("shm", kSandboxShmPath, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, data.c_str()) != 0)
    throw std::runtime_error(std::string("mount the sandbox's /dev/shm (tmpfs ") + data + ") at " +
                             kSandboxShmPath + ": " + std::strerror(errno));
  mounted_ = true;
}

}  // namespace uvmshim::agent
