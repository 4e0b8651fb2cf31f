// A stand-in for a shim in the pool tests: claims a warm VM exactly as the
// shim's Sandbox does (StartAgentHost with [pool] enabled), prints
// "claimed <VMM pid>" and waits to be killed (kill -9 by the test).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "agent_host_factory.h"
#include "paths.h"

int main(int argc, char** argv) {
  using namespace uvmshim::host;
  if (argc != 3) {
    std::fprintf(stderr, "usage: pool_claim_helper SANDBOX_ID STATE_DIR\n");
    return 2;
  }
  SandboxSpec spec;
  spec.id = argv[1];
  spec.state_dir = argv[2];
  spec.socket_dir = SocketDirFor(spec.state_dir);
  spec.config.isolation = Isolation::kHyperv;
  spec.config.pool.enabled = true;
  spec.config.pool.size = 1;
  try {
    auto host = StartAgentHost(spec);
    std::printf("claimed %lld\n", static_cast<long long>(host->pid()));
    std::fflush(stdout);
    for (;;) ::pause();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pool_claim_helper: %s\n", e.what());
    return 1;
  }
}
