// Interop with the real containerd 1.6 ttrpc peer: a private containerd
// (own root, state and sockets in a temp dir) receives Events.Forward from our
// client, and `ctr events` must show the event. Label: containerd.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <google/protobuf/timestamp.pb.h>

#include "containerd/events/task.pb.h"
#include "containerd/services/events/ttrpc/v1/events.pb.h"
#include "containerd/task/v2/shim.pb.h"
#include "test_util.h"
#include "ttrpc/client.h"
#include "ttrpc/server.h"
#include "ttrpc/typed.h"

extern char** environ;

namespace uvmshim::ttrpc {
namespace {

using namespace std::chrono_literals;

// A child process killed (SIGTERM, then SIGKILL) and reaped on destruction.
class Child {
 public:
  // stdout+stderr go to `output_path`.
  Child(const std::vector<std::string>& argv, const std::string& output_path) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int rc = posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) pid_ = -1;
  }
  ~Child() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(50ms);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool OnPath(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

TEST(ContainerdInterop, ForwardedEventShowsUpInCtrEvents) {
  if (::geteuid() != 0) GTEST_SKIP() << "containerd needs root";
  if (!OnPath("containerd") || !OnPath("ctr")) GTEST_SKIP() << "containerd/ctr not installed";

  testing::TempDir dir;
  const auto sock = (dir.path() / "c.sock").string();
  const auto ttrpc_sock = sock + ".ttrpc";
  const auto config = dir.path() / "config.toml";
  {
    std::ofstream c(config);
    c << "version = 2\n"
      << "root = \"" << (dir.path() / "root").string() << "\"\n"
      << "state = \"" << (dir.path() / "state").string() << "\"\n"
      << "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"
      << "[grpc]\n  address = \"" << sock << "\"\n"
      << "[ttrpc]\n  address = \"" << ttrpc_sock << "\"\n";
  }
  Child containerd({"containerd", "--config", config.string()}, (dir.path() / "containerd.log").string());
  ASSERT_GT(containerd.pid(), 0);
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!(std::filesystem::exists(ttrpc_sock) && std::filesystem::exists(sock)) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(std::filesystem::exists(ttrpc_sock)) << ReadFile(dir.path() / "containerd.log");

  const auto events_out = dir.path() / "events.out";
  Child ctr({"ctr", "-a", sock, "events"}, events_out.string());
  ASSERT_GT(ctr.pid(), 0);

  auto client = Client::Connect("unix://" + ttrpc_sock);

  // A method containerd does not have: its ttrpc answers Unimplemented (12).
  auto unknown = client->Call("containerd.services.events.ttrpc.v1.Events", "NoSuchMethod", "",
                              CallOptions::ForNamespace("default", 5s));
  EXPECT_EQ(unknown.status.code, 12) << unknown.status.ToString();

  containerd::events::TaskExit exit_event;
  exit_event.set_container_id("interop-c1");
  exit_event.set_id("interop-c1");
  exit_event.set_pid(4242);
  exit_event.set_exit_status(7);
  exit_event.mutable_exited_at()->set_seconds(1700000000);

  containerd::services::events::ttrpc::v1::ForwardRequest forward;
  auto* env = forward.mutable_envelope();
  env->set_namespace_("default");
  env->set_topic("/tasks/exit");
  env->mutable_event()->set_type_url(exit_event.GetTypeName());
  env->mutable_event()->set_value(exit_event.SerializeAsString());

  // `ctr events` subscribes asynchronously: forward until it reports the event.
  std::string seen;
  deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    env->mutable_timestamp()->set_seconds(std::chrono::duration_cast<std::chrono::seconds>(now).count());
    google::protobuf::Empty empty;
    const Status st = CallTyped(*client, "containerd.services.events.ttrpc.v1.Events", "Forward", forward,
                                empty, CallOptions::ForNamespace("default", 5s));
    ASSERT_TRUE(st.ok()) << st.ToString();
    std::this_thread::sleep_for(300ms);
    seen = ReadFile(events_out);
    if (seen.find("interop-c1") != std::string::npos) break;
  }
  EXPECT_NE(seen.find("/tasks/exit"), std::string::npos) << seen;
  EXPECT_NE(seen.find("\"pid\":4242"), std::string::npos) << seen;
  EXPECT_NE(seen.find("\"exit_status\":7"), std::string::npos) << seen;
}

// The other direction: containerd's Go ttrpc client (`ctr shim state`) calls
// our server. ctr 1.6 also dials the abstract socket
// "\0/containerd-shim/<ns>/<id>/shim.sock", which needs no containerd daemon.
TEST(ContainerdInterop, CtrShimStateCallsOurServer) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (ctr and peer uid)";
  if (!OnPath("ctr")) GTEST_SKIP() << "ctr not installed";
  testing::TempDir dir;
  const std::string id = "ttrpc-interop-" + std::to_string(::getpid());
  Server server;
  RegisterTyped<containerd::task::v2::StateRequest, containerd::task::v2::StateResponse>(
      server, "containerd.task.v2.Task", "State",
      [](const RequestContext&, const containerd::task::v2::StateRequest& req,
          containerd::task::v2::StateResponse& resp) {
        resp.set_id(req.id());
        resp.set_bundle("/interop/bundle");
        resp.set_pid(31337);
        resp.set_status(containerd::v1::types::RUNNING);
        return Status::Ok();
      });
  // ctr's Go dials this abstract name with a trailing NUL in the address (strace shows
  // sun_path=@"/containerd-shim/default/<id>/shim.sock\0"), so bind it with one.
  server.Listen("@/containerd-shim/default/" + id + "/shim.sock" + std::string(1, '\0'));
  const auto out = dir.path() / "ctr.out";
  // A missing daemon socket makes ctr fall back to the abstract one.
  const std::string cmd = "ctr -a " + (dir.path() / "none.sock").string() + " -n default shim --id " + id +
                          " state > " + out.string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  const std::string text = ReadFile(out);
  EXPECT_EQ(rc, 0) << text;
  EXPECT_NE(text.find("31337"), std::string::npos) << text;
  EXPECT_NE(text.find("/interop/bundle"), std::string::npos) << text;
  // (ctr shim calls with a bare context: no containerd-namespace-ttrpc metadata to check here.)
}

}  // namespace
}  // namespace uvmshim::ttrpc
