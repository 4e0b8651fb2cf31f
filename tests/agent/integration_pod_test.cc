// Pods at the agent level: a container joining another's pid, ipc and uts
// namespaces by path (as CRI asks for a pod sharing its process namespace),
// bad namespace paths, UpdateContainer limits and OOM kills reported by
// WaitProcess.
#include <unistd.h>

#include <string>

#include "tests/agent/integration_fixture.h"

namespace uvmshim::agent::testing {
namespace {

using Pod = AgentIntegrationTest;

std::string Readlink(const std::string& path) {
  char target[256];
  ssize_t n = readlink(path.c_str(), target, sizeof target - 1);
  return n > 0 ? std::string(target, static_cast<size_t>(n)) : std::string();
}

grpc::Status Create(AgentProcess& agent, const std::string& id, const SpecOptions& options) {
  grpc::ClientContext context;
  pb::CreateContainerRequest request;
  request.set_container_id(id);
  request.set_spec_json(MakeSpec(options));
  pb::CreateContainerResponse response;
  return agent.stub().CreateContainer(&context, request, &response);
}

TEST_F(Pod, ContainerJoinsAnotherContainersPidIpcAndUtsNamespaces) {
  SpecOptions pause;
  pause.args = {"sleep", "100000"};
  pause.hostname = "pod-host";
  const uint32_t pid = CreateAndStart(agent(), "pause", pause);
  ASSERT_GT(pid, 0u);
  const std::string ns = "/proc/" + std::to_string(pid) + "/ns/";
  SpecOptions app;
  app.args = {"sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname; readlink /proc/self/ns/ipc; readlink /proc/self/ns/pid"};
  app.namespace_paths = {{"pid", ns + "pid"}, {"ipc", ns + "ipc"}, {"uts", ns + "uts"}};
  auto r = RunContainer(agent(), "app", app);
  EXPECT_EQ(r.exit_status, 0u) << r.err;
  EXPECT_EQ(r.out, "sleep 100000 \npod-host\n" + Readlink(ns + "ipc") + "\n" + Readlink(ns + "pid") + "\n") << r.err;
  DeleteContainer(agent(), "pause");
}

TEST_F(Pod, BadNamespacePathsAreRefused) {
  SpecOptions pause;
  pause.args = {"sleep", "100000"};
  const uint32_t pid = CreateAndStart(agent(), "pause", pause);
  SpecOptions app;
  app.args = {"true"};
  app.namespace_paths = {{"pid", "/proc/" + std::to_string(pid) + "/ns/ipc"}};
  auto status = Create(agent(), "app1", app);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("not a pid namespace"), std::string::npos) << status.error_message();
  app.namespace_paths = {{"ipc", "/nonexistent/ns"}};
  status = Create(agent(), "app2", app);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_NE(status.error_message().find("linux.namespaces[1].path \"/nonexistent/ns\""), std::string::npos)
      << status.error_message();
  DeleteContainer(agent(), "pause");
}

TEST_F(Pod, UpdateSetsTheMemoryLimitAndAnOomKillIsReported) {
  SpecOptions options;
  // 64 MiB: above what the waiting init helper holds (the agent binary
  // itself in the sanitizer build, whose ASan runtime pushed a 32 MiB limit
  // into EBUSY), below the 128 MiB dd then asks for.
  options.args = {"sh", "-c", "exec dd if=/dev/zero of=/dev/null bs=128M count=1"};
  ASSERT_TRUE(Create(agent(), "oom", options).ok());
  {
    grpc::ClientContext context;
    pb::UpdateContainerRequest request;
    request.set_container_id("oom");
    request.set_resources_json(R"({"memory": {"limit": 67108864}, "pids": {"limit": 64}})");
    pb::UpdateContainerResponse response;
    auto status = stub().UpdateContainer(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  {
    grpc::ClientContext context;
    pb::StatsRequest request;
    request.set_container_id("oom");
    pb::StatsResponse stats;
    ASSERT_TRUE(stub().Stats(&context, request, &stats).ok());
    EXPECT_EQ(stats.memory_limit_bytes(), 67108864u);
    EXPECT_EQ(stats.pids_limit(), 64u);
  }
  {
    grpc::ClientContext context;
    pb::UpdateContainerRequest request;
    request.set_container_id("oom");
    request.set_resources_json(R"({"memory": {"limit": "lots"}})");
    pb::UpdateContainerResponse response;
    auto status = stub().UpdateContainer(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(status.error_message().find("resources: memory.limit"), std::string::npos) << status.error_message();
  }
  {
    grpc::ClientContext context;
    pb::StartContainerRequest request;
    request.set_container_id("oom");
    pb::StartContainerResponse response;
    ASSERT_TRUE(stub().StartContainer(&context, request, &response).ok());
  }
  pb::WaitProcessResponse wait;
  ASSERT_TRUE(Wait(agent(), "oom", "", &wait).ok());
  EXPECT_EQ(wait.exit_status(), 137u);
  EXPECT_TRUE(wait.oom_killed());
  DeleteContainer(agent(), "oom");

  // A container that ends normally reports no OOM kill.
  SpecOptions fine;
  fine.args = {"true"};
  ASSERT_TRUE(Create(agent(), "fine", fine).ok());
  {
    grpc::ClientContext context;
    pb::StartContainerRequest request;
    request.set_container_id("fine");
    pb::StartContainerResponse response;
    ASSERT_TRUE(stub().StartContainer(&context, request, &response).ok());
  }
  ASSERT_TRUE(Wait(agent(), "fine", "", &wait).ok());
  EXPECT_EQ(wait.exit_status(), 0u);
  EXPECT_FALSE(wait.oom_killed());
  DeleteContainer(agent(), "fine");
}

}  // namespace
}  // namespace uvmshim::agent::testing
