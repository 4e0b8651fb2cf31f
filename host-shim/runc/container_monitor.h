// The body of the monitor process (see monitor.h): boots the sandbox, creates
// the container, reports readiness on `ready` ("ok" or the error text), serves
// the control socket and returns the container's exit status.
#pragma once

#include "runc/monitor.h"
#include "common/unique_fd.h"

namespace uvmshim::runc {

int RunContainerMonitor(const ContainerLaunch& launch, UniqueFd ready);

}  // namespace uvmshim::runc
