// Linux host only (gRPC): the gRPC channel to a utility VM's agent.
//
// A virtio-serial port carries one connection at a time, so the host should
// keep using the connection WaitAgentReady() proved instead of opening new
// ones. AgentChannel(vm) returns that channel for backends that keep one
// (QemuVm) and a fresh channel to vm.AgentTarget() otherwise.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "uvm/utility_vm.h"

namespace uvmshim::uvm {

// A channel tuned for a local agent link: fast reconnects (100 ms .. 1 s back
// off instead of gRPC's 1 s .. 120 s), a 30 s connect timeout (a connection
// to the VM's port is accepted by QEMU at once and answered by the agent only
// after the guest booted), unlimited message sizes.
std::shared_ptr<grpc::Channel> MakeAgentChannel(const std::string& target);

// The channel of a VM whose agent is ready (after WaitAgentReady()).
std::shared_ptr<grpc::Channel> AgentChannel(UtilityVm& vm);

}  // namespace uvmshim::uvm
