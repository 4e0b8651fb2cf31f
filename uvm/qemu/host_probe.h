// What the QEMU backend checks on the host before a VM is created: boot
// files, programs in PATH, memory, KVM.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace uvmshim::uvm {

// Throws VmError "kernel /x: No such file or directory" (or "not a regular
// file") unless `path` is a readable regular file; `what` names the input.
void CheckReadableFile(const char* what, const std::filesystem::path& path);

// `program` itself when it contains a '/', else the first executable
// PATH/<program>; nullopt when there is none.
std::optional<std::string> FindInPath(const std::string& program);

std::uint64_t HostMemoryMb();

// KVM needs /dev/kvm (read-write) and hardware virtualisation. A /dev/kvm
// without vmx/svm (e.g. kvm-pvm in a nested sandbox) runs only guests made
// for it, so it does not count. False with `why_not` set otherwise.
bool KvmUsable(std::string& why_not);

}  // namespace uvmshim::uvm
