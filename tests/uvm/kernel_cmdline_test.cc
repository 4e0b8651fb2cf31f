#include "guest-agent/vm/kernel_cmdline.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "guest-agent/vm/pid1.h"
#include "uvm/utility_vm.h"

namespace uvmshim::agent::vm {
namespace {

TEST(KernelCmdline, SplitsOnSpacesAndKeepsQuotedSpaces) {
  EXPECT_EQ(SplitKernelCmdline("  console=ttyS0 panic=-1\n"),
            (std::vector<std::string>{"console=ttyS0", "panic=-1"}));
  EXPECT_EQ(SplitKernelCmdline("a=\"b c\" d"), (std::vector<std::string>{"a=b c", "d"}));
  EXPECT_TRUE(SplitKernelCmdline("").empty());
}

TEST(KernelCmdline, ReadsUvmParametersAndIgnoresOthers) {
  const auto settings = ParseVmSettings(
      "console=ttyS0 panic=-1 quiet uvm.listen=serial:///dev/virtio-ports/agent,serial:///dev/virtio-ports/debug "
      "uvm.listen=vsock://1024 uvm.log=debug uvm.rootfs=rootfs uvm.share=share uvm.unknown=x\n");
  EXPECT_EQ(settings.listen, (std::vector<std::string>{"serial:///dev/virtio-ports/agent",
                                                       "serial:///dev/virtio-ports/debug", "vsock://1024"}));
  EXPECT_EQ(settings.log_level, "debug");
  EXPECT_EQ(settings.rootfs_tag, "rootfs");
  EXPECT_EQ(settings.share_tag, "share");
  EXPECT_TRUE(settings.load_modules);
}

TEST(KernelCmdline, DefaultsWithoutUvmParameters) {
  const auto settings = ParseVmSettings("console=ttyS0");
  EXPECT_TRUE(settings.listen.empty());
  EXPECT_EQ(settings.log_level, "info");
  EXPECT_TRUE(settings.rootfs_tag.empty());
}

TEST(KernelCmdline, RejectsMalformedValuesNamingTheParameter) {
  try {
    ParseVmSettings("uvm.listen=");
    FAIL() << "accepted an empty uvm.listen";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("uvm.listen"), std::string::npos) << error.what();
  }
  EXPECT_THROW(ParseVmSettings("uvm.modules=maybe"), std::invalid_argument);
  EXPECT_FALSE(ParseVmSettings("uvm.modules=off").load_modules);
  EXPECT_THROW(ParseVmSettings("uvm.share="), std::invalid_argument);
}

TEST(KernelCmdline, WarmUpOnlyWhenAsked) {
  EXPECT_FALSE(ParseVmSettings("console=ttyS0").warm_up);
  EXPECT_TRUE(ParseVmSettings("uvm.warmup=1").warm_up);
  EXPECT_FALSE(ParseVmSettings("uvm.warmup=0").warm_up);
  try {
    ParseVmSettings("uvm.warmup=yes");
    FAIL() << "accepted uvm.warmup=yes";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("uvm.warmup"), std::string::npos) << error.what();
  }
}

TEST(GuestRootfsPath, HostAndGuestAgree) {
  EXPECT_STREQ(kGuestRootfsPath, uvm::kGuestRootfsPath);
  EXPECT_STREQ(kGuestSharePath, uvm::kGuestSharePath);
}

}  // namespace
}  // namespace uvmshim::agent::vm
