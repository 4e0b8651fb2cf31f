// uvm-runc's log: --log FILE in runc's formats (--log-format text|json; json
// lines are {"level","msg","time"}, which containerd's runc shim and conmon
// read back to report a failed create). Without --log, commands log to
// stderr; the monitor never does (its stderr is the container's).
#pragma once

#include <string>

#include "runc/cli.h"

namespace uvmshim::runc {

// `to_stderr`: also (or, without --log, only) to stderr.
void SetUpLogging(const GlobalOptions& global, bool to_stderr);

}  // namespace uvmshim::runc
