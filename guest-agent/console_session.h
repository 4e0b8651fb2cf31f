// The Console rpc: a shell on a new pty in the agent's own environment.
#pragma once

#include <grpcpp/grpcpp.h>

#include "agent.grpc.pb.h"
#include "guest-agent/reaper.h"

namespace uvmshim::agent {

// The first input message may carry the command (default /bin/sh) and the
// size; data is written to the pty, width+height resize it. Output is relayed
// until the shell exited and the pty was drained, then {exited, exit_status}
// is sent. The client then half-closes (WritesDone); a client that closes its
// input early sends EOF (^D) to the shell. Throws uvmshim::Error: the
// launch's failure, or kCancelled when the client went away first (the
// shell is ended then).
void RunConsoleSession(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<::uvmshim::agent::v1::ConsoleOutput, ::uvmshim::agent::v1::ConsoleInput>* stream,
    Reaper& reaper);

}  // namespace uvmshim::agent
