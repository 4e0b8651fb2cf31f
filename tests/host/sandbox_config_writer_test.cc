// FormatSandboxConfig: what it writes, ParseSandboxConfig reads back unchanged.
#include <gtest/gtest.h>

#include "sandbox_config.h"

using namespace uvmshim::host;

TEST(SandboxConfigWriter, RoundTripsEveryField) {
  SandboxConfig written;
  written.isolation = Isolation::kProcess;
  written.memory_mb = 768;
  written.memory_overhead_mb = 0;
  written.cpus = 3;
  written.kernel = "/images/a \"quoted\" dir\\vmlinuz";
  written.initrd = "/images/initrd.img";
  written.kernel_cmdline_extra = "loglevel=7 quiet";
  written.boot_timeout = std::chrono::seconds(45);
  written.console_log = false;
  written.agent_log_level = "debug";
  written.agent_call_timeout = std::chrono::seconds(9);
  written.agent_lifecycle_timeout = std::chrono::seconds(99);
  written.pool = {true, 3, 777, false};

  const SandboxConfig read = ParseSandboxConfig(FormatSandboxConfig(written), "written.toml");
  EXPECT_EQ(read.isolation, written.isolation);
  EXPECT_EQ(read.memory_mb, written.memory_mb);
  EXPECT_EQ(read.memory_overhead_mb, written.memory_overhead_mb);
  EXPECT_EQ(read.cpus, written.cpus);
  EXPECT_EQ(read.kernel, written.kernel);
  EXPECT_EQ(read.initrd, written.initrd);
  EXPECT_EQ(read.kernel_cmdline_extra, written.kernel_cmdline_extra);
  EXPECT_EQ(read.boot_timeout, written.boot_timeout);
  EXPECT_EQ(read.console_log, written.console_log);
  EXPECT_EQ(read.agent_log_level, written.agent_log_level);
  EXPECT_EQ(read.agent_call_timeout, written.agent_call_timeout);
  EXPECT_EQ(read.agent_lifecycle_timeout, written.agent_lifecycle_timeout);
  EXPECT_EQ(read.pool.enabled, written.pool.enabled);
  EXPECT_EQ(read.pool.size, written.pool.size);
  EXPECT_EQ(read.pool.max_memory_mib, written.pool.max_memory_mib);
  EXPECT_EQ(read.pool.snapshot, written.pool.snapshot);
}

TEST(SandboxConfigWriter, DefaultsReadBackAsDefaults) {
  const SandboxConfig defaults;
  const SandboxConfig read = ParseSandboxConfig(FormatSandboxConfig(defaults), "defaults.toml");
  EXPECT_EQ(read.isolation, defaults.isolation);
  EXPECT_EQ(read.memory_mb, defaults.memory_mb);
  EXPECT_TRUE(read.kernel.empty());
  EXPECT_TRUE(read.initrd.empty());
  EXPECT_EQ(read.boot_timeout, defaults.boot_timeout);
}
