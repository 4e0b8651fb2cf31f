// The container never reaches its agent or the debug console (issue #8), with
// containerd's default spec (ctr run: CAP_MKNOD, a writable /dev tmpfs), in
// every runtime case; runc is the reference the harness is checked against.
//   - no device node of the agent's channels (virtio-serial ports, hvc, ttyS,
//     vsock, vhost) in the container's /dev;
//   - no Unix socket (the agent's, in process isolation) in the container's root;
//   - the container's pid namespace shows neither the agent (PID 1 of the
//     UVM, or a host process) nor the shim or QEMU;
//   - a node the container makes itself for a virtio-serial port (numbers read
//     from /sys) cannot be opened: the agent holds both ports open for its
//     whole life (virtio_console admits one opener), and the device cgroup
//     denies unlisted devices.
#include <gtest/gtest.h>

#include <iostream>

#include "ctr_fixture.h"

namespace uvmshim::e2e {
namespace {

constexpr const char* kProbe = R"SH(
for n in /dev/vport* /dev/virtio-ports /dev/hvc* /dev/ttyS* /dev/vsock /dev/vhost-vsock /dev/vhost-net /dev/mem /dev/kmsg; do
  [ -e "$n" ] && echo "node:$n"
done
for p in /proc/[0-9]*; do
  c=$(cat $p/comm 2>/dev/null)
  case "$c" in uvm-agent*|containerd*|qemu*|virtiofsd*) echo "proc:$c";; esac
done
echo "pid1:$(cat /proc/1/comm)"
for s in $(find / -xdev -type s 2>/dev/null); do echo "sock:$s"; done
ports=0
for d in /sys/class/virtio-ports/*; do
  [ -r "$d/dev" ] || continue
  ports=$((ports+1))
  IFS=: read ma mi < "$d/dev"
  if ! mknod /dev/probe-port c "$ma" "$mi" 2>/dev/null; then echo "mknod-denied:$d"; continue; fi
  if why=$( (exec 3<>/dev/probe-port) 2>&1 ); then echo "opened:$d"; else echo "open-denied:$d: $why"; fi
  rm -f /dev/probe-port
done
echo "ports:$ports"
)SH";

class CtrIsolation : public CtrFixture, public ::testing::TestWithParam<RuntimeCase> {
 protected:
  void SetUp() override {
    if (auto why = MissingPrerequisite(GetParam())) GTEST_SKIP() << *why;
    ASSERT_NO_THROW(StartContainerd());
  }
  void TearDown() override { StopContainerd(); }
};

TEST_P(CtrIsolation, ContainerCannotReachTheAgentChannel) {
  const RuntimeCase& rc = GetParam();
  auto r = CtrRunAnswer(rc, {"--rm"}, "reach", {"sh", "-c", kProbe});
  ASSERT_EQ(r.exit_code, 0) << r.Describe() << env().LogTail();
  std::cout << "probe (" << rc.name << "):\n" << r.out;  // what the container saw, for the log
  EXPECT_EQ(r.out.find("node:"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("proc:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pid1:sh\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("sock:"), std::string::npos) << "a Unix socket is visible in the container: " << r.out;
  EXPECT_EQ(r.out.find("opened:"), std::string::npos) << "a container opened an agent port: " << r.out;
  // In a UVM the ports exist (agent, debug): the mknod/open probe really ran.
  if (rc.is_hyperv()) {
    EXPECT_EQ(r.out.find("ports:0"), std::string::npos) << r.out;
  }
  ExpectNothingLeftOf("reach");
}

std::string Name(const ::testing::TestParamInfo<RuntimeCase>& info) { return info.param.name; }

INSTANTIATE_TEST_SUITE_P(Runtimes, CtrIsolation, ::testing::ValuesIn(AllRuntimeCases()), Name);

}  // namespace
}  // namespace uvmshim::e2e
