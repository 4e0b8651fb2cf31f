// uvm-pool-keeper --dir <vm dir> --size N --max-memory-mib M [--claim-nice N]
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
  int claim_nice = 0;
  auto* nice_option = app.add_option("--claim-nice", claim_nice, "nice value to return to when claimed");
  CLI11_PARSE(app, argc, argv);
  if (nice_option->count() > 0) options.claim_nice = claim_nice;
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l keeper[%P] %v");
  return uvmshim::host::pool::RunKeeper(options);
}
