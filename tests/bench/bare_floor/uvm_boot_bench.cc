// uvm-boot-bench: boot_to_agent_ready of the real utility VM image against the
// bare floor, interleaved (bare, agent, bare, agent, ...) so both see the same
// machine load. Prints the bench line
//   boot_to_agent_ready VALUE ms ANCHOR_VALUE RATIO
// and, unless --debian-bare-image-dir is empty, the same agent boots against
// the Debian kernel's bare floor (a fourth kind of boot in each round):
//   boot_to_agent_ready_vs_debian_floor VALUE ms ANCHOR_VALUE RATIO
// and the same in QEMU's CPU time (load-independent: QEMU at the agent's
// answer against QEMU at the floor's marker):
//   boot_to_agent_ready_vmm_cpu VALUE ms ANCHOR_VALUE RATIO
// and, on stderr, each run's timeline (QEMU monitor up, first console byte,
// agent ready) and the agent's guest-side pid1 lines.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <spdlog/spdlog.h>

#include "boot_measure.h"

int main(int argc, char** argv) {
  using namespace uvmshim::bench;
  CLI::App app{"Boot to agent ready vs the bare floor (medians)"};
  unsigned runs = 5;
  BootOptions uvm_options;
  uvm_options.image_dir = DefaultUvmImageDir();
  BootOptions bare_options;
  bare_options.image_dir = DefaultBareImageDir();
  BootOptions debian_options;
  debian_options.image_dir = DefaultDebianBareImageDir();
  bool verbose = false;
  app.add_option("--runs", runs, "boots of each kind")->check(CLI::Range(1u, 1000u));
  app.add_option("--image-dir", uvm_options.image_dir, "the utility VM image (vmlinuz, initrd.img)");
  app.add_option("--bare-image-dir", bare_options.image_dir, "the bare-floor image");
  app.add_option("--debian-bare-image-dir", debian_options.image_dir,
                 "the bare floor on Debian's kernel (\"\" to skip)");
  app.add_option("--memory", uvm_options.memory_mb, "guest memory in MiB (both)");
  app.add_option("--cpus", uvm_options.cpus, "guest vCPUs (both)");
  unsigned tb_size_mb = uvm_options.qemu.tcg_tb_size_mb;
  app.add_option("--tb-size", tb_size_mb, "TCG translation cache in MiB for every boot (0: QEMU's default)");
  app.add_flag("-v,--verbose", verbose, "print the agent's guest-side timings");
  CLI11_PARSE(app, argc, argv);
  bare_options.memory_mb = uvm_options.memory_mb;
  bare_options.cpus = uvm_options.cpus;
  debian_options.memory_mb = uvm_options.memory_mb;
  debian_options.cpus = uvm_options.cpus;
  for (BootOptions* options : {&uvm_options, &bare_options, &debian_options})
    options->qemu.tcg_tb_size_mb = tb_size_mb;
  const bool with_debian = !debian_options.image_dir.empty();
  spdlog::set_level(spdlog::level::warn);
  try {
    std::vector<double> bare, debian_bare, ready, monitor, console, bare_cpu, ready_cpu;
    for (unsigned i = 0; i < runs; ++i) {
      const BareFloorBoot floor = BootBareFloorOnce(bare_options);
      bare.push_back(floor.ms);
      bare_cpu.push_back(floor.vmm_cpu_ms);
      if (with_debian) {
        debian_bare.push_back(BootBareFloorOnce(debian_options).ms);
        std::fprintf(stderr, "run %u: debian bare_floor %.1f ms\n", i + 1, debian_bare.back());
      }
      const AgentBoot boot = BootAgentOnce(uvm_options);
      ready.push_back(Millis(*boot.timeline.agent_ready));
      const double agent_cpu = boot.vmm_cpu_ms;
      ready_cpu.push_back(agent_cpu);
      if (boot.timeline.process_started) monitor.push_back(Millis(*boot.timeline.process_started));
      if (boot.timeline.kernel_started) console.push_back(Millis(*boot.timeline.kernel_started));
      std::fprintf(stderr,
                   "run %u: bare_floor %.1f ms (QEMU CPU %.0f ms) | qemu_monitor_up %.1f ms, first_console_byte %.1f ms, "
                   "agent_ready %.1f ms (QEMU CPU %.0f ms) | graceful stop %.1f ms\n",
                   i + 1, bare.back(), floor.vmm_cpu_ms, monitor.empty() ? 0.0 : monitor.back(),
                   console.empty() ? 0.0 : console.back(), ready.back(), agent_cpu, boot.stop_ms);
      if (verbose) std::fprintf(stderr, "%s", boot.guest_lines.c_str());
    }
    const double anchor = Median(bare);
    const double value = Median(ready);
    std::fprintf(stderr, "medians: qemu_monitor_up %.1f ms, first_console_byte %.1f ms\n", Median(monitor),
                 Median(console));
    std::printf("boot_to_agent_ready %.1f ms %.1f %.3f\n", value, anchor, anchor > 0 ? value / anchor : 0.0);
    // The same in QEMU's CPU time: what the boot costs, whatever the load.
    const double cpu_anchor = Median(bare_cpu);
    const double cpu_value = Median(ready_cpu);
    std::printf("boot_to_agent_ready_vmm_cpu %.1f ms %.1f %.3f\n", cpu_value, cpu_anchor,
                cpu_anchor > 0 ? cpu_value / cpu_anchor : 0.0);
    if (with_debian) {
      const double debian = Median(debian_bare);
      std::printf("boot_to_agent_ready_vs_debian_floor %.1f ms %.1f %.3f\n", value, debian,
                  debian > 0 ? value / debian : 0.0);
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "uvm-boot-bench: %s\n", error.what());
    return 1;
  }
  return 0;
}
