// ENOSYS for system calls newer than a seccomp profile, as runc 1.1 does: a
// profile denies what it does not name with its default errno (EPERM), but a
// program probing a syscall the profile's authors had never heard of (glibc
// trying clone3 or close_range, then falling back) must see ENOSYS, the
// answer of a kernel that lacks it. So, when the default action is an errno,
// a stub in front of libseccomp's program answers ENOSYS for every syscall
// number above the highest one the profile names for that architecture.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <vector>

namespace uvmshim::agent {

struct SeccompProfile;

// The stub (empty when the default action is not an errno or no profile
// architecture has a named syscall); its last jump lands just past its end,
// where the caller puts libseccomp's program. `architectures`: libseccomp
// tokens of the filter (the native one included).
std::vector<sock_filter> EnosysStubFor(const SeccompProfile& profile, const std::vector<uint32_t>& architectures);

}  // namespace uvmshim::agent
