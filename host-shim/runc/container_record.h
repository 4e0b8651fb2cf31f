// What uvm-runc keeps of one container in <root>/<id>/state.json, written by
// its monitor at each change and read by every other command. `state` prints
// the OCI subset; the rest lets `delete` clean up after a monitor that was
// killed (its sandbox's agent host, cgroups, mounts).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace uvmshim::runc {

struct ContainerRecord {
  std::string id;
  std::string bundle;
  std::string rootfs;
  std::string created;          // RFC 3339, UTC
  std::map<std::string, std::string> annotations;
  std::string isolation;        // process | hyperv
  std::string status = "creating";  // creating | created | running | stopped
  pid_t monitor_pid = 0;        // the pid in --pid-file: the caller waits on it
  std::uint64_t monitor_start_time = 0;  // /proc/<pid>/stat field 22: tells a reused pid apart
  std::int64_t container_pid = 0;  // the init as the agent sees it (a guest pid in hyperv)
  std::int64_t host_pid = 0;     // the agent host: QEMU or the host agent
  std::string sandbox_dir;       // the sandbox's state dir
  std::string cgroup_parent;     // host cgroups of a process-isolation sandbox
  int exit_status = -1;
};

std::filesystem::path ContainerDir(const std::string& root, const std::string& id);
std::filesystem::path RecordPath(const std::string& root, const std::string& id);

void WriteRecord(const std::string& root, const ContainerRecord& record);  // atomic
// nullopt when the container does not exist.
std::optional<ContainerRecord> ReadRecord(const std::string& root, const std::string& id);
// Throws std::runtime_error("container ID does not exist").
ContainerRecord RequireRecord(const std::string& root, const std::string& id);

// Field 22 of /proc/<pid>/stat, 0 when the process is gone or a zombie.
std::uint64_t ProcessStartTime(pid_t pid);
// Is the recorded monitor still that process?
bool MonitorAlive(const ContainerRecord& record);
// The status as callers must see it: "stopped" once the monitor is gone.
std::string EffectiveStatus(const ContainerRecord& record);
// runc's `state` JSON: ociVersion, id, pid, status, bundle, rootfs, created, owner, annotations.
nlohmann::json OciState(const ContainerRecord& record);

}  // namespace uvmshim::runc
