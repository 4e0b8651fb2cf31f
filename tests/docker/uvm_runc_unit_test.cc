// uvm-runc's pieces without a container: the command line as Docker's and
// Podman's callers write it, signal names, the state record, and the control
// channel's descriptor passing.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

#include "runc/cli.h"
#include "runc/commands.h"
#include "runc/container_record.h"
#include "runc/control_channel.h"
#include "e2e_support.h"

namespace uvmshim::runc {
namespace {

TEST(UvmRuncCli, ParsesWhatContainerdsRuncShimPasses) {
  auto cl = ParseCommandLine({"--root", "/run/x/moby", "--log", "/b/log.json", "--log-format", "json",
                              "--systemd-cgroup", "--isolation=hyperv", "create", "--bundle", "/b", "--pid-file",
                              "/b/init.pid", "--console-socket=/tmp/c.sock", "--no-pivot", "abc"});
  EXPECT_EQ(cl.global.root, "/run/x/moby");
  EXPECT_EQ(cl.global.log_file, "/b/log.json");
  EXPECT_EQ(cl.global.log_format, "json");
  EXPECT_TRUE(cl.global.systemd_cgroup);
  EXPECT_EQ(cl.global.isolation, "hyperv");
  EXPECT_EQ(cl.command, "create");
  EXPECT_EQ(cl.Get("bundle"), "/b");
  EXPECT_EQ(cl.Get("pid-file"), "/b/init.pid");
  EXPECT_EQ(cl.Get("console-socket"), "/tmp/c.sock");
  EXPECT_TRUE(cl.Has("no-pivot"));
  EXPECT_EQ(cl.Id(), "abc");
}

TEST(UvmRuncCli, ExecArgumentsAfterTheIdBelongToTheCommand) {
  auto cl = ParseCommandLine({"exec", "-t", "abc", "ls", "-la"});
  EXPECT_TRUE(cl.Has("t"));
  EXPECT_EQ(cl.positionals, (std::vector<std::string>{"abc", "ls", "-la"}));
}

TEST(UvmRuncCli, BadInputIsNamed) {
  EXPECT_THROW(ParseCommandLine({"--isolation=vm", "state", "x"}), std::invalid_argument);
  EXPECT_THROW(ParseCommandLine({"--log-format", "xml", "state", "x"}), std::invalid_argument);
  EXPECT_THROW(ParseCommandLine({"--bogus", "state", "x"}), std::invalid_argument);
  EXPECT_THROW(ParseCommandLine({"create", "--bundle"}), std::invalid_argument);
  EXPECT_THROW(ParseCommandLine({"state"}).Id(), std::invalid_argument);
}

TEST(UvmRuncCli, Signals) {
  EXPECT_EQ(ParseSignal("KILL"), SIGKILL);
  EXPECT_EQ(ParseSignal("SIGTERM"), SIGTERM);
  EXPECT_EQ(ParseSignal("9"), 9);
  EXPECT_THROW(ParseSignal("SIGNOPE"), std::invalid_argument);
  EXPECT_THROW(ParseSignal("0"), std::invalid_argument);
}

TEST(UvmRuncRecord, RoundTripsAndIsStoppedWithoutItsMonitor) {
  e2e::TempDir root("uvm-runc-unit");
  std::filesystem::create_directories(ContainerDir(root.path().string(), "c1"));
  ContainerRecord r;
  r.id = "c1";
  r.bundle = "/b";
  r.status = "running";
  r.monitor_pid = ::getpid();
  r.monitor_start_time = ProcessStartTime(::getpid());
  r.annotations = {{"a", "b"}};
  WriteRecord(root.path().string(), r);
  auto back = ReadRecord(root.path().string(), "c1");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->bundle, "/b");
  EXPECT_EQ(EffectiveStatus(*back), "running");
  EXPECT_EQ(OciState(*back)["pid"], ::getpid());
  back->monitor_start_time += 1;  // a reused pid is not our monitor
  EXPECT_EQ(EffectiveStatus(*back), "stopped");
  EXPECT_EQ(OciState(*back)["pid"], 0);
  EXPECT_FALSE(ReadRecord(root.path().string(), "nope"));
  EXPECT_THROW(RequireRecord(root.path().string(), "nope"), std::runtime_error);
}

TEST(UvmRuncControl, CarriesMessagesAndDescriptorsThroughALongPath) {
  e2e::TempDir base("uvm-runc-unit");
  auto dir = base.path() / std::string(120, 'd');  // longer than sun_path alone would hold
  std::filesystem::create_directories(dir);
  auto listener = ListenControl(dir);
  auto client = ConnectControl(dir);
  UniqueFd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(server);
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  SendMessage(client.get(), {{"op", "exec"}}, {pipe_fds[1]});
  ::close(pipe_fds[1]);
  auto m = ReceiveMessage(server.get());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->body["op"], "exec");
  ASSERT_EQ(m->fds.size(), 1u);
  ASSERT_EQ(::write(m->fds[0].get(), "x", 1), 1);  // the passed pipe end works
  char c = 0;
  EXPECT_EQ(::read(pipe_fds[0], &c, 1), 1);
  EXPECT_EQ(c, 'x');
  ::close(pipe_fds[0]);
  client.reset();
  EXPECT_FALSE(ReceiveMessage(server.get()));  // EOF
  listener.reset();
  std::filesystem::remove(dir / kControlSocketName);
  EXPECT_THROW(ConnectControl(dir), std::runtime_error);
}

}  // namespace
}  // namespace uvmshim::runc
