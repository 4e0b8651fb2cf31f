// measure: the bare-floor anchor. Boots the bare-floor image N times through
// QemuVm and prints the median time from QEMU start to the marker line:
//   median_ms 2034.5
// Per-run times go to stderr.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <spdlog/spdlog.h>

#include "boot_measure.h"

int main(int argc, char** argv) {
  using namespace uvmshim::bench;
  CLI::App app{"Median boot time of the bare-floor image (QEMU start -> marker on the serial console)"};
  unsigned runs = 5;
  BootOptions options;
  options.image_dir = DefaultBareImageDir();
  app.add_option("--runs", runs, "number of boots")->check(CLI::Range(1u, 1000u));
  app.add_option("--image-dir", options.image_dir, "directory with vmlinuz and initrd.img");
  app.add_option("--memory", options.memory_mb, "guest memory in MiB");
  app.add_option("--cpus", options.cpus, "guest vCPUs");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  try {
    std::vector<double> samples;
    for (unsigned i = 0; i < runs; ++i) {
      samples.push_back(BootBareFloorOnce(options).ms);
      std::fprintf(stderr, "run %u: %.1f ms\n", i + 1, samples.back());
    }
    std::printf("median_ms %.1f\n", Median(samples));
  } catch (const std::exception& error) {
    std::fprintf(stderr, "measure: %s\n", error.what());
    return 1;
  }
  return 0;
}
