// main() of uvm-agent when it is PID 1 of a utility VM (called from
// guest-agent/main.cc): settings from the kernel command line, guest setup,
// gRPC on the virtio-serial ports / vsock, power-off after Shutdown.
#pragma once

namespace uvmshim::agent::vm {

// Never returns: the VM powers off when the agent ends, also after a fatal
// error (logged on the console first).
[[noreturn]] void RunAsPid1();

}  // namespace uvmshim::agent::vm
