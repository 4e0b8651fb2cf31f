// CheckCreateRequest's mount checks: what the agent cannot honour is refused
// before the container exists, with the mount and the field named; the specs
// containerd, CRI and Docker really send pass.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "guest-agent/launcher.h"
#include "guest-agent/request_checks.h"

namespace uvmshim::agent {
namespace {

using json = nlohmann::json;

json MinimalSpec() {
  return json{{"ociVersion", "1.0.2"},
              {"process", {{"args", {"sh"}}, {"cwd", "/"}}},
              {"root", {{"path", "/rootfs"}}},
              {"linux", {{"namespaces", {{{"type", "mount"}}, {{"type", "pid"}}}}}}};
}

pb::CreateContainerRequest Request(const json& spec) {
  pb::CreateContainerRequest request;
  request.set_container_id("c1");
  request.set_spec_json(spec.dump());
  return request;
}

// The message of the refusal, "" when the request is accepted.
std::string Refusal(const json& spec) {
  try {
    CheckCreateRequest(Request(spec), PolicyEnvironment{});
    return "";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    return e.what();
  }
}

json WithMount(json mount) {
  json spec = MinimalSpec();
  spec["mounts"] = json::array({{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}}, std::move(mount)});
  return spec;
}

TEST(RequestChecksMounts, ValidMountsOfEveryKindPass) {
  EXPECT_EQ(Refusal(WithMount({{"destination", "/data"}, {"type", "bind"}, {"source", "/srv/data"},
                               {"options", {"rbind", "rprivate", "ro", "nosuid", "nodev", "noexec"}}})), "");
  EXPECT_EQ(Refusal(WithMount({{"destination", "/data"}, {"type", "none"}, {"source", "/srv/data"},
                               {"options", {"bind"}}})), "");
  EXPECT_EQ(Refusal(WithMount({{"destination", "/dev"}, {"type", "tmpfs"}, {"source", "tmpfs"},
                               {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}})), "");
}

TEST(RequestChecksMounts, RealRuntimeSpecsPass) {
  for (const char* name : {"containerd-1.6-ctr-default.json", "cri-1.6-besteffort.json",
                           "cri-1.6-guaranteed.json", "docker-20.10-run.json"}) {
    std::ifstream in(std::string(UVMSHIM_SPEC_FIXTURES) + "/" + name);
    ASSERT_TRUE(in) << name;
    std::stringstream text;
    text << in.rdbuf();
    json spec = json::parse(text.str());
    spec["root"]["path"] = "/rootfs";
    std::string refusal;
    try {
      CheckCreateRequest(Request(spec), PolicyEnvironment{});
    } catch (const Error& e) {
      refusal = e.what();
    }
    EXPECT_EQ(refusal.find("mounts["), std::string::npos) << name << ": " << refusal;
  }
}

TEST(RequestChecksMounts, BindMountWithoutAbsoluteSourceIsRefusedByField) {
  std::string missing = Refusal(WithMount({{"destination", "/data"}, {"type", "bind"}, {"options", {"rbind"}}}));
  EXPECT_NE(missing.find("mounts[1].source"), std::string::npos) << missing;
  EXPECT_NE(missing.find("/data"), std::string::npos) << missing;
  std::string relative = Refusal(WithMount({{"destination", "/data"}, {"type", "none"}, {"source", "data"},
                                            {"options", {"bind"}}}));
  EXPECT_NE(relative.find("mounts[1].source"), std::string::npos) << relative;
  EXPECT_NE(relative.find("absolute"), std::string::npos) << relative;
}

TEST(RequestChecksMounts, DataOptionsOnABindMountAreRefusedNotDropped) {
  std::string refusal = Refusal(WithMount({{"destination", "/data"}, {"type", "bind"}, {"source", "/srv"},
                                           {"options", {"rbind", "mode=700"}}}));
  EXPECT_NE(refusal.find("mounts[1].options"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("mode=700"), std::string::npos) << refusal;
}

TEST(RequestChecksMounts, UnimplementedRuncOptionsAreRefusedByName) {
  for (const char* option : {"rro", "rnosuid", "idmap", "tmpcopyup", "nosymfollow", "remount"}) {
    std::string refusal = Refusal(WithMount({{"destination", "/run"}, {"type", "tmpfs"}, {"source", "tmpfs"},
                                             {"options", {"nosuid", option}}}));
    EXPECT_NE(refusal.find("mounts[1].options"), std::string::npos) << option << ": " << refusal;
    EXPECT_NE(refusal.find(std::string("\"") + option + "\""), std::string::npos) << refusal;
  }
}

TEST(RequestChecksMounts, MountWithoutTypeIsRefused) {
  std::string refusal = Refusal(WithMount({{"destination", "/x"}, {"source", "tmpfs"}}));
  EXPECT_NE(refusal.find("mounts[1].type"), std::string::npos) << refusal;
}

}  // namespace
}  // namespace uvmshim::agent
