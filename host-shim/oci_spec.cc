#include "oci_spec.h"

#include <nlohmann/json.hpp>

#include <charconv>
#include <filesystem>
#include <stdexcept>

#include "common/oci_defaults.h"

namespace uvmshim::host {
namespace {

using nlohmann::json;

json ProcessObject(const ProcessOptions& p) {
  std::vector<std::string> env = {
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  if (p.terminal) env.push_back("TERM=xterm");
  for (const auto& kv : p.env) {
    auto key = kv.substr(0, kv.find('=') + 1);
    std::erase_if(env, [&](const std::string& e) { return e.starts_with(key); });
    env.push_back(kv);
  }
  json caps = oci::DefaultCapabilities();
  return {{"terminal", p.terminal},
          {"user", {{"uid", p.uid}, {"gid", p.gid}}},
          {"args", p.args},
          {"env", env},
          {"cwd", p.cwd},
          {"capabilities",
           {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
          {"rlimits", json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}})},
          {"noNewPrivileges", true}};
}

}  // namespace

std::string BuildProcessJson(const ProcessOptions& options) {
  return ProcessObject(options).dump();
}

std::string BuildSpecJson(const SpecOptions& options) {
  json mounts = oci::DefaultMounts();
  for (const auto& volume : options.volumes)
    mounts.push_back({{"destination", volume.destination}, {"type", "bind"}, {"source", volume.source},
                      {"options", {"rbind", volume.readonly ? "ro" : "rw"}}});
  json spec = {
      {"ociVersion", "1.0.2"},
      {"process", ProcessObject(options.process)},
      {"root", {{"path", "rootfs"}, {"readonly", options.readonly_rootfs}}},
      {"mounts", mounts},
      {"linux",
       {{"namespaces", json::array({{{"type", "pid"}}, {{"type", "ipc"}},
                                    {{"type", "uts"}}, {{"type", "mount"}}})},
        {"maskedPaths", oci::DefaultMaskedPaths()},
        {"readonlyPaths", oci::DefaultReadonlyPaths()}}},
  };
  if (!options.hostname.empty()) spec["hostname"] = options.hostname;
  return spec.dump();
}

VolumeOption ParseVolume(const std::string& text) {
  auto fail = [&](const std::string& why) {
    return std::invalid_argument("-v \"" + text + "\": " + why + " (expected HOST:DEST[:ro|rw])");
  };
  VolumeOption volume;
  std::vector<std::string> parts;
  for (std::size_t start = 0;;) {
    const auto colon = text.find(':', start);
    parts.push_back(text.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (parts.size() < 2 || parts.size() > 3) throw fail("wrong number of fields");
  if (parts.size() == 3) {
    if (parts[2] != "ro" && parts[2] != "rw") throw fail("mode \"" + parts[2] + "\" is neither ro nor rw");
    volume.readonly = parts[2] == "ro";
  }
  volume.source = parts[0];
  volume.destination = parts[1];
  if (volume.source.empty() || volume.source.front() != '/') throw fail("HOST must be an absolute path");
  if (volume.destination.empty() || volume.destination.front() != '/') throw fail("DEST must be an absolute path");
  return volume;
}

std::vector<VolumeOption> ParseVolumes(const std::vector<std::string>& texts) {
  std::vector<VolumeOption> volumes;
  for (const auto& text : texts) {
    volumes.push_back(ParseVolume(text));
    std::error_code ec;
    if (!std::filesystem::exists(volumes.back().source, ec))
      throw std::invalid_argument("-v \"" + text + "\": host path " + volumes.back().source +
                                  ": no such file or directory");
  }
  return volumes;
}

std::pair<unsigned, unsigned> ParseUser(const std::string& text) {
  auto parse = [&](std::string_view part) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (part.empty() || ec != std::errc() || end != part.data() + part.size())
      throw std::invalid_argument("--user \"" + text + "\": expected UID or UID:GID (numbers)");
    return value;
  };
  auto colon = text.find(':');
  if (colon == std::string::npos) {
    unsigned uid = parse(text);
    return {uid, 0u};  // as docker: a bare UID runs with group 0
  }
  return {parse(std::string_view(text).substr(0, colon)),
          parse(std::string_view(text).substr(colon + 1))};
}

}  // namespace uvmshim::host
