// uvm-pool-keeper --dir <vm dir> --size N --max-memory-mib M --snapshots 1|0
// Started detached by pool::FillPool, never by hand (see pool_keeper.h).
#include <CLI/CLI.hpp>

#include <spdlog/spdlog.h>

#include "pool/pool_keeper.h"

int main(int argc, char** argv) {
  uvmshim::host::pool::KeeperOptions options;
  CLI::App app{"uvm-pool-keeper: owns one warm utility VM of the uvmshim pool"};
  app.add_option("--dir", options.vm_dir, "the VM's pool dir")->required();
  app.add_option("--size", options.limits.size, "pool size (for refills)");
  app.add_option("--max-memory-mib", options.limits.max_memory_mib, "pool memory cap (for refills)");
  app.add_option("--snapshots", options.limits.snapshots, "restore VMs from the pool's memory snapshot (1/0)");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l keeper[%P] %v");
  return uvmshim::host::pool::RunKeeper(options);
}
