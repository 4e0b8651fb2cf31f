// Bad input gets a clear gRPC error, the agent keeps serving and nothing leaks.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <random>

#include <nlohmann/json.hpp>

#include "tests/agent/integration_fixture.h"

namespace uvmshim::agent::testing {
namespace {

using BadInput = AgentIntegrationTest;

grpc::Status Create(AgentProcess& agent, const std::string& id, const std::string& spec_json,
                    const std::string& rootfs = "") {
  grpc::ClientContext context;
  pb::CreateContainerRequest request;
  request.set_container_id(id);
  request.set_spec_json(spec_json);
  request.set_rootfs_path(rootfs);
  pb::CreateContainerResponse response;
  return agent.stub().CreateContainer(&context, request, &response);
}

std::string SleepSpec() {
  SpecOptions options;
  options.args = {"sleep", "1000"};
  return MakeSpec(options);
}

void ExpectError(const grpc::Status& status, grpc::StatusCode code, const std::string& text) {
  EXPECT_EQ(status.error_code(), code) << status.error_message();
  EXPECT_NE(status.error_message().find(text), std::string::npos) << status.error_message();
}

void ExpectServing(AgentProcess& agent) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  pb::PingResponse response;
  EXPECT_TRUE(agent.stub().Ping(&context, pb::PingRequest(), &response).ok());
}

TEST_F(BadInput, MalformedSpecJson) {
  ExpectError(Create(agent(), "c1", "{\"process\": {"), grpc::StatusCode::INVALID_ARGUMENT, "spec: invalid JSON");
  ExpectError(Create(agent(), "c1", ""), grpc::StatusCode::INVALID_ARGUMENT, "spec: invalid JSON");
  ExpectError(Create(agent(), "c1", "\x01\x02garbage"), grpc::StatusCode::INVALID_ARGUMENT, "spec: invalid JSON");
  auto spec = nlohmann::json::parse(SleepSpec());
  spec["process"]["args"] = nlohmann::json::array();
  ExpectError(Create(agent(), "c1", spec.dump()), grpc::StatusCode::INVALID_ARGUMENT,
              "spec: process.args must be a non-empty array of strings");
  ExpectServing(agent());
}

TEST_F(BadInput, OversizedSpec) {
  auto spec = nlohmann::json::parse(SleepSpec());
  spec["annotations"] = {{"big", std::string(2 << 20, 'a')}};
  ExpectError(Create(agent(), "c1", spec.dump()), grpc::StatusCode::RESOURCE_EXHAUSTED, "more than the limit");
  ExpectServing(agent());
}

TEST_F(BadInput, InvalidIds) {
  for (const std::string& id : {std::string("a/b"), std::string(".."), std::string("../x"), std::string(77, 'a'),
                                std::string(""), std::string("a b")}) {
    EXPECT_EQ(Create(agent(), id, SleepSpec()).error_code(), grpc::StatusCode::INVALID_ARGUMENT) << id;
  }
  StartSleeper(agent(), "c1");
  grpc::ClientContext context;
  pb::ExecProcessRequest request;
  request.set_container_id("c1");
  request.set_exec_id("../../etc");
  request.set_process_json(MakeProcessJson({"true"}));
  pb::ExecProcessResponse response;
  ExpectError(agent().stub().ExecProcess(&context, request, &response), grpc::StatusCode::INVALID_ARGUMENT,
              "exec id");
  DeleteContainer(agent(), "c1");
}

TEST_F(BadInput, DuplicateIds) {
  ASSERT_TRUE(Create(agent(), "c1", SleepSpec()).ok());
  ExpectError(Create(agent(), "c1", SleepSpec()), grpc::StatusCode::ALREADY_EXISTS, "c1 already exists");
  grpc::ClientContext start_context;
  pb::StartContainerRequest start;
  start.set_container_id("c1");
  pb::StartContainerResponse started;
  ASSERT_TRUE(agent().stub().StartContainer(&start_context, start, &started).ok());
  grpc::ClientContext again_context;
  ExpectError(agent().stub().StartContainer(&again_context, start, &started), grpc::StatusCode::FAILED_PRECONDITION,
              "already started");
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext context;
    pb::ExecProcessRequest request;
    request.set_container_id("c1");
    request.set_exec_id("e1");
    request.set_process_json(MakeProcessJson({"sleep", "1000"}));
    pb::ExecProcessResponse response;
    auto status = agent().stub().ExecProcess(&context, request, &response);
    if (i == 0) EXPECT_TRUE(status.ok()) << status.error_message();
    else ExpectError(status, grpc::StatusCode::ALREADY_EXISTS, "exec e1 already exists");
  }
  DeleteContainer(agent(), "c1");
}

TEST_F(BadInput, UnknownContainerAndExec) {
  grpc::ClientContext c1;
  pb::StartContainerRequest start;
  start.set_container_id("nosuch");
  pb::StartContainerResponse started;
  ExpectError(agent().stub().StartContainer(&c1, start, &started), grpc::StatusCode::NOT_FOUND, "container nosuch not found");
  pb::WaitProcessResponse wait;
  EXPECT_EQ(Wait(agent(), "nosuch", "", &wait).error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext c2;
  pb::DeleteContainerRequest del;
  del.set_container_id("nosuch");
  pb::DeleteContainerResponse deleted;
  EXPECT_EQ(agent().stub().DeleteContainer(&c2, del, &deleted).error_code(), grpc::StatusCode::NOT_FOUND);
  StartSleeper(agent(), "c1");
  ExpectError(Wait(agent(), "c1", "nosuch", &wait), grpc::StatusCode::NOT_FOUND, "exec nosuch not found");
  grpc::ClientContext c3;
  pb::SignalProcessRequest signal;
  signal.set_container_id("c1");
  signal.set_exec_id("nosuch");
  signal.set_signal(SIGTERM);
  pb::SignalProcessResponse signalled;
  EXPECT_EQ(agent().stub().SignalProcess(&c3, signal, &signalled).error_code(), grpc::StatusCode::NOT_FOUND);
  OutputReader reader(agent().stub(), "c1", "nosuch", pb::STDOUT);
  ASSERT_TRUE(reader.Ended(std::chrono::seconds(5)));
  EXPECT_EQ(reader.status().error_code(), grpc::StatusCode::NOT_FOUND);
  DeleteContainer(agent(), "c1");
}

TEST_F(BadInput, MissingRootfs) {
  ExpectError(Create(agent(), "c1", SleepSpec(), "/nonexistent/rootfs"), grpc::StatusCode::NOT_FOUND,
              "rootfs /nonexistent/rootfs: No such file or directory");
  ExpectError(Create(agent(), "c1", SleepSpec(), "relative/rootfs"), grpc::StatusCode::INVALID_ARGUMENT,
              "not an absolute path");
  ExpectServing(agent());
}

TEST_F(BadInput, BadCwdIsASetupError) {
  SpecOptions options;
  options.args = {"true"};
  options.cwd = "/does/not/exist";
  ExpectError(Create(agent(), "c1", MakeSpec(options)), grpc::StatusCode::FAILED_PRECONDITION,
              "cwd /does/not/exist: No such file or directory");
  StartSleeper(agent(), "c2");
  grpc::ClientContext context;
  pb::ExecProcessRequest request;
  request.set_container_id("c2");
  request.set_exec_id("e1");
  auto process = nlohmann::json::parse(MakeProcessJson({"true"}));
  process["cwd"] = "/nope";
  request.set_process_json(process.dump());
  pb::ExecProcessResponse response;
  ExpectError(agent().stub().ExecProcess(&context, request, &response), grpc::StatusCode::INVALID_ARGUMENT,
              "cwd /nope: No such file or directory");
  DeleteContainer(agent(), "c2");
}

TEST_F(BadInput, BadMountIsASetupError) {
  auto spec = nlohmann::json::parse(SleepSpec());
  spec["mounts"].push_back({{"destination", "/data"}, {"type", "bind"}, {"source", "/nonexistent-source"},
                            {"options", {"rbind"}}});
  ExpectError(Create(agent(), "c1", spec.dump()), grpc::StatusCode::FAILED_PRECONDITION, "/nonexistent-source");
  ExpectServing(agent());
}

TEST_F(BadInput, SignalToAnExitedProcess) {
  auto r = RunContainer(agent(), "c0", {"true"});
  StartSleeper(agent(), "c1");
  auto e = RunExec(agent(), "c1", "e1", {"true"});
  EXPECT_EQ(e.exit_status, 0u);
  grpc::ClientContext context;
  pb::SignalProcessRequest signal;
  signal.set_container_id("c1");
  signal.set_exec_id("e1");
  signal.set_signal(SIGTERM);
  pb::SignalProcessResponse signalled;
  ExpectError(agent().stub().SignalProcess(&context, signal, &signalled), grpc::StatusCode::NOT_FOUND,
              "process c1/e1 has exited");
  DeleteContainer(agent(), "c1");
}

TEST_F(BadInput, ExecIntoAStoppedContainer) {
  SpecOptions options;
  options.args = {"true"};
  ASSERT_TRUE(Create(agent(), "c1", MakeSpec(options)).ok());
  grpc::ClientContext context;
  pb::ExecProcessRequest request;
  request.set_container_id("c1");
  request.set_exec_id("e1");
  request.set_process_json(MakeProcessJson({"true"}));
  pb::ExecProcessResponse response;
  ExpectError(agent().stub().ExecProcess(&context, request, &response), grpc::StatusCode::FAILED_PRECONDITION,
              "not running");
  grpc::ClientContext bad_context;
  request.set_process_json("{\"args\": 5}");
  ExpectError(agent().stub().ExecProcess(&bad_context, request, &response), grpc::StatusCode::INVALID_ARGUMENT,
              "process: args must be a non-empty array of strings");
  DeleteContainer(agent(), "c1");
}

TEST_F(BadInput, GarbageBytesOnTheSocket) {
  std::mt19937 random(42);
  for (int round = 0; round < 5; ++round) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, agent().socket_path().c_str(), sizeof address.sun_path - 1);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    std::string junk(4096 * (round + 1), '\0');
    for (auto& c : junk) c = static_cast<char>(random());
    if (round == 0) junk = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + junk;  // a valid preface, then junk
    [[maybe_unused]] auto n = write(fd, junk.data(), junk.size());
    close(fd);
  }
  ExpectServing(agent());
  auto r = RunContainer(agent(), "c1", {"echo", "still"});
  EXPECT_EQ(r.out, "still\n");
}

}  // namespace
}  // namespace uvmshim::agent::testing
