// Linux host only (gRPC): a fresh connection to an agent's virtio-serial port
// (QEMU's chardev socket) that starts with the reset handshake of
// common/serial_reset.h, so nothing an earlier connection left in the stream
// reaches the new gRPC client. For the debug port, whose clients (uvmctl
// console, tests) come and go.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

namespace uvmshim::uvm {

// `target` is "unix://PATH" or "unix:PATH". Waits up to `timeout` for the
// guest's READY (QEMU serves one host connection at a time: a port in use
// times out). Throws std::runtime_error naming the target and what failed.
// The channel owns the connection; it does not reconnect.
std::shared_ptr<grpc::Channel> ConnectSerialChannel(const std::string& target, std::chrono::milliseconds timeout,
                                                    const grpc::ChannelArguments& args = {});

}  // namespace uvmshim::uvm
