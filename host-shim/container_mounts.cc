#include "container_mounts.h"

#include "common/mount_flags.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace uvmshim::host {
namespace {

const char* FileKind(mode_t mode) {
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  return "a special file";
}

std::vector<std::string> OptionsOf(const nlohmann::json& mount, const std::string& where) {
  std::vector<std::string> options;
  if (!mount.contains("options")) return options;
  if (!mount["options"].is_array()) throw std::invalid_argument(where + ".options: not an array");
  for (const auto& option : mount["options"]) {
    if (!option.is_string()) throw std::invalid_argument(where + ".options: not all strings");
    options.push_back(option.get<std::string>());
    if (options.back().find('\0') != std::string::npos)
      throw std::invalid_argument(where + ".options: an option contains a NUL character");
  }
  return options;
}

// File systems the guest kernel makes up itself: nothing of the VM leaks
// through them (devtmpfs would: it is not here).
bool IsKernelFileSystem(const std::string& type) {
  for (const char* known : {"proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2"})
    if (type == known) return true;
  return false;
}

// A NUL would cut the path where the C APIs read it (stat, mount): refused.
std::string StringField(const nlohmann::json& mount, const char* key) {
  if (!mount.contains(key) || !mount[key].is_string()) return "";
  auto text = mount[key].get<std::string>();
  if (text.find('\0') != std::string::npos)
    throw std::invalid_argument(fmt::format("mounts[].{} \"{}\": contains a NUL character", key, text.c_str()));
  return text;
}

}  // namespace

std::string BindMount::Describe() const {
  return fmt::format("mounts[{}] (destination {})", index, destination);
}

std::vector<BindMount> BindMountsOf(const nlohmann::json& spec, bool for_utility_vm) {
  std::vector<BindMount> binds;
  if (!spec.contains("mounts")) return binds;
  if (!spec["mounts"].is_array()) throw std::invalid_argument("spec mounts: not an array");
  const auto& mounts = spec["mounts"];
  for (std::size_t i = 0; i < mounts.size(); ++i) {
    const std::string where = fmt::format("mounts[{}]", i);
    if (!mounts[i].is_object()) throw std::invalid_argument(where + ": not an object");
    BindMount bind;
    bind.index = i;
    bind.destination = StringField(mounts[i], "destination");
    bool is_bind = StringField(mounts[i], "type") == "bind";
    for (const auto& option : OptionsOf(mounts[i], where)) {
      if (option == "bind" || option == "rbind") is_bind = true;
      if (option == "rbind") bind.recursive = true;
      if (option == "ro") bind.readonly = true;
      if (option == "rw") bind.readonly = false;
    }
    if (!is_bind) {
      const std::string type = StringField(mounts[i], "type");
      if (for_utility_vm && !IsKernelFileSystem(type))
        throw std::invalid_argument(fmt::format(
            "mounts[{}] (destination {}): type \"{}\" is not supported in hyperv isolation (only binds of host "
            "files and directories and proc, sysfs, tmpfs, devpts, mqueue, cgroup)", i, bind.destination, type));
      continue;
    }
    if (bind.destination.empty() || bind.destination.front() != '/')
      throw std::invalid_argument(fmt::format("{}.destination \"{}\": must be an absolute path", where,
                                              bind.destination));
    bind.source = StringField(mounts[i], "source");
    if (bind.source.empty() || bind.source.front() != '/')
      throw std::invalid_argument(fmt::format("{}: bind source \"{}\": must be an absolute host path",
                                              bind.Describe(), bind.source));
    struct stat st {};
    if (::stat(bind.source.c_str(), &st) != 0)
      throw std::invalid_argument(fmt::format("{}: bind source {}: {}", bind.Describe(), bind.source,
                                              std::strerror(errno)));
    bind.directory = S_ISDIR(st.st_mode);
    if (for_utility_vm && !bind.directory && !S_ISREG(st.st_mode))
      throw std::invalid_argument(fmt::format(
          "{}: bind source {} is {}: hyperv isolation shares only files and directories with the "
          "utility VM", bind.Describe(), bind.source, FileKind(st.st_mode)));
    binds.push_back(std::move(bind));
  }
  return binds;
}

unsigned long MountFlagsOf(const std::filesystem::path& path) { return uvmshim::MountFlagsOf(path.string()); }

}  // namespace uvmshim::host
