// Linux host only (gRPC): the one recipe for a gRPC channel to an agent,
// whether it runs as a host process (a Unix socket) or in a utility VM (a
// virtio-serial port QEMU exposes as a Unix socket). Every channel to an
// agent - the shim's, uvmctl console's, a VM's readiness probe - is made
// here, so they all have the same windows, limits and reconnect timing.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace uvmshim::uvm {

// Large HTTP/2 windows (stdio throughput), 16 MiB message limits, fast
// reconnects with a 30 s connect timeout (a VM's agent answers only once the
// guest booted), one connection per agent.
grpc::ChannelArguments AgentChannelArguments();

std::shared_ptr<grpc::Channel> MakeAgentChannel(const std::string& target);

}  // namespace uvmshim::uvm
