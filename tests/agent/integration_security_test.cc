// Seccomp (linux.seccomp) and the device allowlist (linux.resources.devices)
// on a real agent with real namespaces and this host's cgroups (v1 devices
// controller), plus the cgroup v2 device program on a cgroup2 mount of our
// own. The static syscall-probe is bind-mounted at /tmp/probe.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "guest-agent/cgroups.h"
#include "guest-agent/device_rules.h"
#include "tests/agent/integration_fixture.h"

namespace uvmshim::agent::testing {
namespace {

using nlohmann::json;

constexpr int kUnshareErrno = 77;  // distinct from the EPERM a missing capability gives
constexpr int kKeyctlErrno = 38;
constexpr int kPtraceErrno = 78;

void AddProbe(json& spec) {
  spec["mounts"].push_back({{"destination", "/tmp/probe"}, {"type", "bind"}, {"source", UVMSHIM_SYSCALL_PROBE},
                            {"options", {"bind", "ro"}}});
}

json TestProfile() {
  return {{"defaultAction", "SCMP_ACT_ALLOW"},
          {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
          {"syscalls",
           {{{"names", {"unshare"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", kUnshareErrno}},
            {{"names", {"keyctl", "add_key", "not_a_syscall_at_all"}}, {"action", "SCMP_ACT_ERRNO"},
             {"errnoRet", kKeyctlErrno}},
            {{"names", {"ptrace"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", kPtraceErrno}},
            // Calls no shell makes: vhangup (153) and uselib (134) on x86_64.
            {{"names", {"vhangup"}}, {"action", "SCMP_ACT_KILL_PROCESS"}},
            {{"names", {"uselib"}}, {"action", "SCMP_ACT_KILL"}}}}};
}

SpecOptions WithProfile(std::vector<std::string> args, json profile = TestProfile()) {
  SpecOptions options;
  options.args = std::move(args);
  options.customize = [profile](json& spec) {
    AddProbe(spec);
    spec["linux"]["seccomp"] = profile;
  };
  return options;
}

const char* kShowAndProbe = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; id -u; /tmp/probe unshare-user keyctl ptrace-1 getpid";

std::string Expected(bool nnp, uint32_t uid) {
  return std::string("NoNewPrivs:\t") + (nnp ? "1" : "0") + "\nSeccomp:\t2\n" + std::to_string(uid) +
         "\nunshare-user " + std::to_string(kUnshareErrno) + "\nkeyctl " + std::to_string(kKeyctlErrno) +
         "\nptrace-1 " + std::to_string(kPtraceErrno) + "\ngetpid 0\n";
}

class Seccomp : public AgentIntegrationTest {};

TEST_F(Seccomp, InitAndExecGetTheFilter) {
  auto r = RunContainer(agent(), "s1", WithProfile({"sh", "-c", kShowAndProbe}));
  EXPECT_EQ(r.exit_status, 0u) << r.err;
  EXPECT_EQ(r.out, Expected(true, 0));

  StartSleeper(agent(), "s2", WithProfile({}));
  auto e = RunExec(agent(), "s2", "e1", {"sh", "-c", kShowAndProbe});
  EXPECT_EQ(e.exit_status, 0u) << e.err;
  EXPECT_EQ(e.out, Expected(false, 0)) << "execs get the container's filter";  // the exec's process has no NNP
  auto u = RunExec(agent(), "s2", "e2", {"sh", "-c", kShowAndProbe}, 1000);
  EXPECT_EQ(u.exit_status, 0u) << u.err;
  EXPECT_EQ(u.out, Expected(false, 1000));
  DeleteContainer(agent(), "s2");
}

TEST_F(Seccomp, WithAndWithoutNoNewPrivilegesAndAsAUser) {
  for (bool nnp : {true, false}) {
    for (uint32_t uid : {0u, 1000u}) {
      SCOPED_TRACE("noNewPrivileges " + std::to_string(nnp) + " uid " + std::to_string(uid));
      SpecOptions options = WithProfile({"sh", "-c", kShowAndProbe});
      options.no_new_privileges = nnp;
      options.uid = options.gid = uid;
      std::string id = "n" + std::to_string(nnp) + "u" + std::to_string(uid);
      auto r = RunContainer(agent(), id, options);
      EXPECT_EQ(r.exit_status, 0u) << r.err;
      EXPECT_EQ(r.out, Expected(nnp, uid));
    }
  }
}

TEST_F(Seccomp, KillActionsEndWithSigsys) {
  // 159 = 128 + SIGSYS.
  auto r = RunContainer(agent(), "k1", WithProfile({"/tmp/probe", "raw:153"}));
  EXPECT_EQ(r.exit_status, 159u) << r.out << r.err;
  r = RunContainer(agent(), "k2", WithProfile({"/tmp/probe", "raw:134"}));
  EXPECT_EQ(r.exit_status, 159u) << r.out << r.err;
  StartSleeper(agent(), "k3", WithProfile({}));
  auto e = RunExec(agent(), "k3", "e1", {"/tmp/probe", "raw:153"});
  EXPECT_EQ(e.exit_status, 159u) << e.out << e.err;
  DeleteContainer(agent(), "k3");
}

TEST_F(Seccomp, ADefaultErrnoProfileStillRuns) {
  // Docker-style: everything denied (ENOSYS here) but what a shell needs.
  json profile = {{"defaultAction", "SCMP_ACT_ERRNO"},
                  {"defaultErrnoRet", 38},
                  {"syscalls",
                   {{{"names", {"execve", "brk", "arch_prctl", "set_tid_address", "set_robust_list", "rseq",
                                "prlimit64", "mmap", "munmap", "mprotect", "readlink", "getuid", "getpid",
                                "write", "writev", "exit", "exit_group", "fstat", "newfstatat", "ioctl", "read",
                                "getrandom", "readlinkat", "uname", "access", "openat", "close", "futex",
                                "rt_sigprocmask", "rt_sigaction", "sigaltstack"}},
                     {"action", "SCMP_ACT_ALLOW"}}}}};
  auto r = RunContainer(agent(), "d1", WithProfile({"/tmp/probe", "getpid", "unshare-user", "raw:110"}, profile));
  EXPECT_EQ(r.exit_status, 0u) << r.err;
  EXPECT_EQ(r.out, "getpid 0\nunshare-user 38\nraw:110 38\n");
}

TEST_F(Seccomp, BadProfilesAreRefusedNamingTheField) {
  struct Case {
    json profile;
    std::string message;
  } cases[] = {
      {{{"defaultAction", "SCMP_ACT_WHATEVER"}}, "spec: linux.seccomp.defaultAction is an unknown action"},
      {{{"defaultAction", "SCMP_ACT_ALLOW"}, {"architectures", {"SCMP_ARCH_Z80"}}},
       "spec: linux.seccomp.architectures[0] is an unknown architecture"},
      {{{"defaultAction", "SCMP_ACT_ALLOW"}, {"flags", {"SECCOMP_FILTER_FLAG_NEW_LISTENER"}}},
       "spec: linux.seccomp.flags[0] is an unknown or unsupported flag"},
      {{{"defaultAction", "SCMP_ACT_ALLOW"},
        {"syscalls", {{{"names", {"read"}}, {"action", "SCMP_ACT_ERRNO"},
                       {"args", {{{"index", 0}, {"value", 1}, {"op", "SCMP_CMP_ABOUT"}}}}}}}},
       "spec: linux.seccomp.syscalls[0].args[0].op is an unknown operator"},
      {{{"defaultAction", "SCMP_ACT_ALLOW"}, {"syscalls", {{{"names", {"read"}}, {"action", "SCMP_ACT_NOTIFY"}}}}},
       "spec: linux.seccomp.syscalls[0].action SCMP_ACT_NOTIFY is not supported"},
  };
  for (const auto& c : cases) {
    SpecOptions options = WithProfile({"true"}, c.profile);
    grpc::ClientContext context;
    pb::CreateContainerRequest request;
    request.set_container_id("bad");
    request.set_spec_json(MakeSpec(options));
    pb::CreateContainerResponse response;
    auto status = stub().CreateContainer(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.message;
    EXPECT_NE(status.error_message().find(c.message), std::string::npos) << status.error_message();
  }
  // Nothing was left behind: the id is free and the agent has no children.
  EXPECT_TRUE(agent().Children().empty());
  auto r = RunContainer(agent(), "bad", {"true"});
  EXPECT_EQ(r.exit_status, 0u);
}

// ------------------------------------------------------------ devices

json ContainerdDeviceRules() {
  // What containerd's default spec writes: deny all, then the usual nodes.
  auto allow = [](const char* type, int major, int minor, const char* access) {
    json rule = {{"allow", true}, {"type", type}, {"access", access}};
    if (major >= 0) rule["major"] = major;
    if (minor >= 0) rule["minor"] = minor;
    return rule;
  };
  return json::array({{{"allow", false}, {"access", "rwm"}}, allow("c", 1, 3, "rwm"), allow("c", 1, 8, "rwm"),
                      allow("c", 1, 7, "rwm"), allow("c", 5, 0, "rwm"), allow("c", 1, 5, "rwm"),
                      allow("c", 1, 9, "rwm"), allow("c", 5, 1, "rwm"), allow("c", 136, -1, "rwm"),
                      allow("c", 5, 2, "rwm"), allow("c", 10, 200, "rwm"), allow("c", -1, -1, "m"),
                      allow("b", -1, -1, "m")});
}

// mknod of host devices (kvm, mem, loop0, tun) in the container's /dev,
// then open of each; 1 = EPERM.
const char* kDeviceProbe =
    "mknod /dev/kvm c 10 232 && mknod /dev/mem c 1 1 && mknod /dev/loop0 b 7 0 && mkdir -p /dev/net && "
    "mknod /dev/net/tun c 10 200 && "
    "/tmp/probe open:/dev/kvm open:/dev/mem open:/dev/loop0 open:/dev/null open:/dev/zero open:/dev/net/tun "
    "open:/dev/ptmx";
const char* kDeviceExpected =
    "open:/dev/kvm 1\nopen:/dev/mem 1\nopen:/dev/loop0 1\nopen:/dev/null 0\nopen:/dev/zero 0\n"
    "open:/dev/net/tun 0\nopen:/dev/ptmx 0\n";

SpecOptions WithDevices(std::vector<std::string> args, json rules = ContainerdDeviceRules()) {
  SpecOptions options;
  options.args = std::move(args);
  options.customize = [rules](json& spec) {
    AddProbe(spec);
    if (!rules.is_null()) spec["linux"]["resources"]["devices"] = rules;
    // mknod needs CAP_MKNOD (in the default set) and a /dev without nodev.
  };
  return options;
}

class Devices : public AgentIntegrationTest {};

TEST_F(Devices, HostDevicesCannotBeOpenedInInitOrExec) {
  auto r = RunContainer(agent(), "d1", WithDevices({"sh", "-c", kDeviceProbe}));
  EXPECT_EQ(r.exit_status, 0u) << r.err;
  EXPECT_EQ(r.out, kDeviceExpected);

  StartSleeper(agent(), "d2", WithDevices({}));
  auto e = RunExec(agent(), "d2", "e1", {"sh", "-c", kDeviceProbe});
  EXPECT_EQ(e.exit_status, 0u) << e.err;
  EXPECT_EQ(e.out, kDeviceExpected);
  DeleteContainer(agent(), "d2");
}

TEST_F(Devices, DefaultsApplyWithoutRulesAndSpecDevicesStayAllowed) {
  auto options = WithDevices({"sh", "-c", std::string(kDeviceProbe) + " open:/dev/fuse"}, json());
  auto base = options.customize;
  options.customize = [base](json& spec) {
    base(spec);
    spec["linux"]["devices"] = {{{"path", "/dev/fuse"}, {"type", "c"}, {"major", 10}, {"minor", 229}, {"fileMode", 0666}}};
  };
  auto r = RunContainer(agent(), "d3", options);
  EXPECT_EQ(r.exit_status, 0u) << r.err;
  // /dev/fuse: allowed by the device cgroup; the driver may still refuse
  // (ENODEV 19 without the fuse module), but not with EPERM.
  EXPECT_EQ(r.out.rfind(kDeviceExpected, 0), 0u) << r.out;
  EXPECT_EQ(r.out.find("open:/dev/fuse 1\n"), std::string::npos) << r.out;
}

TEST(DevicesWithoutCgroups, ExplicitRulesAreRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  AgentProcess agent({"--cgroup-parent", ""});
  grpc::ClientContext context;
  pb::CreateContainerRequest request;
  request.set_container_id("nocg");
  request.set_spec_json(MakeSpec(WithDevices({"true"})));
  pb::CreateContainerResponse response;
  auto status = agent.stub().CreateContainer(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("spec: linux.resources.devices cannot be enforced"), std::string::npos)
      << status.error_message();
  EXPECT_TRUE(agent.WaitNoChildren(std::chrono::seconds(5)));
}

// cgroup v2 (as in the utility VM): the BPF program on this kernel, on a
// cgroup2 mount of the test's own.
TEST(DevicesCgroupV2, BpfProgramIsEnforcedByTheKernel) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  TempDir dir;
  std::string root = dir.path() + "/cgroup2";
  ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
  if (mount("cgroup2", root.c_str(), "cgroup2", 0, nullptr) != 0) GTEST_SKIP() << "cannot mount cgroup2";
  std::string parent = "uvmshim-devtest-" + std::to_string(getpid());
  // Runs at scope end, after the cgroup below is gone, also when an
  // assertion returned early.
  struct Cleanup {
    std::string parent, root;
    ~Cleanup() {
      Cgroup::RemoveParent(parent, root);
      EXPECT_EQ(umount2(root.c_str(), MNT_DETACH), 0);
    }
  } cleanup{parent, root};
  {
    std::string warning;
    auto cgroup = Cgroup::Create(parent, "c1", OciResources{}, &warning, root);
    ASSERT_TRUE(cgroup) << warning;
    ASSERT_TRUE(cgroup->is_v2());
    OciSpec spec;
    spec.resources.devices = ParseDeviceRules(ContainerdDeviceRules(), "x");
    ASSERT_EQ(cgroup->ApplyDeviceRules(EffectiveDeviceRules(spec)), "");
    std::string kvm = dir.path() + "/kvm";
    ASSERT_EQ(mknod(kvm.c_str(), S_IFCHR | 0600, makedev(10, 232)), 0);
    auto files = cgroup->OpenProcsFiles();
    pid_t pid = fork();
    if (pid == 0) {
      for (const auto& fd : files) [[maybe_unused]] auto n = write(fd.get(), "0", 1);
      int null_fd = open("/dev/null", O_RDWR);
      if (null_fd < 0) _exit(1);
      if (open(kvm.c_str(), O_RDWR) >= 0 || errno != EPERM) _exit(2);
      std::string mem = kvm + "-mem";
      if (mknod(mem.c_str(), S_IFCHR | 0600, makedev(1, 1)) != 0) _exit(3);  // "c *:* m"
      if (open(mem.c_str(), O_RDONLY) >= 0 || errno != EPERM) _exit(4);
      _exit(0);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    for (int i = 0; i < 100 && !cgroup->Remove(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace
}  // namespace uvmshim::agent::testing
