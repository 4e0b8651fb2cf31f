// The parts of containerd's default OCI spec (what `ctr run` sends) that more
// than one place writes: uvmctl's specs, the agent's warm-up container and the
// agent tests. One list, so the three cannot drift apart.
#pragma once

#include <nlohmann/json.hpp>

namespace uvmshim::oci {

// /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue and a read-only /sys, with
// containerd's options. Callers append their own (/tmp, volumes, cgroup).
inline nlohmann::json DefaultMounts() {
  using nlohmann::json;
  return json::array({
      {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}, {"options", {"nosuid", "noexec", "nodev"}}},
      {{"destination", "/dev"}, {"type", "tmpfs"}, {"source", "tmpfs"},
       {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
      {{"destination", "/dev/pts"}, {"type", "devpts"}, {"source", "devpts"},
       {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}}},
      {{"destination", "/dev/shm"}, {"type", "tmpfs"}, {"source", "shm"},
       {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
      {{"destination", "/dev/mqueue"}, {"type", "mqueue"}, {"source", "mqueue"},
       {"options", {"nosuid", "noexec", "nodev"}}},
      {{"destination", "/sys"}, {"type", "sysfs"}, {"source", "sysfs"}, {"options", {"nosuid", "noexec", "nodev", "ro"}}},
  });
}

// The capabilities a container gets by default (Docker's and containerd's set).
inline nlohmann::json DefaultCapabilities() {
  return nlohmann::json::array({"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"});
}

// Paths hidden from the container (kernel memory, keys, timers, firmware).
inline nlohmann::json DefaultMaskedPaths() {
  return {"/proc/acpi", "/proc/asound", "/proc/kcore",  "/proc/keys",   "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"};
}

// Paths the container may read but not write (kernel tunables, sysrq).
inline nlohmann::json DefaultReadonlyPaths() {
  return {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};
}

}  // namespace uvmshim::oci
