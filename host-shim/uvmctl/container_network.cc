#include "uvmctl/container_network.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <stdexcept>

#include "common/ids.h"
#include "common/private_dir.h"
#include "paths.h"
#include "uvmctl/cni.h"
#include "uvmctl/netns.h"
#include "uvmctl/network_files.h"

namespace uvmshim::uvmctl {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// What a bridge network consists of, written before each step is taken:
// {"id", "netns", "caller_netns", "cni_path": [...], "address",
//  "attachments": [{"ifname", "conflist", "capability_args", "started", "result"}]}
fs::path RecordDir() { return host::RuntimeRoot() / "networks"; }
fs::path RecordPath(const std::string& id) { return RecordDir() / (id + ".json"); }

void WriteRecord(const json& record) {
  CreatePrivateDir(RecordDir());
  const fs::path path = RecordPath(record["id"].get<std::string>());
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << record.dump(2) << '\n';
    out.flush();
    if (!out) throw std::runtime_error(fmt::format("write {}: failed", tmp.string()));
  }
  fs::rename(tmp, path);
}

std::optional<json> ReadRecord(const std::string& id) {
  if (!::uvmshim::IsValidId(id)) return std::nullopt;  // never a path outside RecordDir()
  std::ifstream in(RecordPath(id));
  if (!in) return std::nullopt;
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw std::runtime_error(fmt::format("{}: not a network record: {}", RecordPath(id).string(), e.what()));
  }
}

void DropRecord(const std::string& id) {
  std::error_code ignored;
  fs::remove(RecordPath(id), ignored);
  fs::remove(RecordDir(), ignored);  // once empty
}

CniRuntime RuntimeFor(const json& record, const json& attachment) {
  CniRuntime runtime;
  runtime.container_id = record.at("id").get<std::string>();
  runtime.netns = record.at("netns").get<std::string>();
  runtime.ifname = attachment.at("ifname").get<std::string>();
  for (const auto& dir : record.at("cni_path")) runtime.plugin_dirs.emplace_back(dir.get<std::string>());
  runtime.capability_args = attachment.value("capability_args", json::object());
  return runtime;
}

// CNI DEL of every attachment ADD was started for (in reverse), unless
// skip_cni; then the namespace; then the record. Every step is tried; the
// record stays when a DEL failed, and the failures are thrown together.
void TearDown(json record, bool skip_cni) {
  const std::string id = record.at("id").get<std::string>();
  std::string failures;
  auto& attachments = record.at("attachments");
  for (auto it = attachments.rbegin(); it != attachments.rend() && !skip_cni; ++it) {
    if (!it->value("started", false)) continue;
    try {
      DelNetworkList(it->at("conflist"), RuntimeFor(record, *it), it->value("result", json(nullptr)));
      (*it)["started"] = false;
    } catch (const std::exception& e) {
      failures += (failures.empty() ? "" : "; ") + std::string(e.what());
    }
  }
  try {
    if (!record.at("netns").get<std::string>().empty()) RemoveNamedNetns(record["netns"].get<std::string>());
  } catch (const std::exception& e) {
    failures += (failures.empty() ? "" : "; ") + std::string(e.what());
  }
  if (failures.empty()) {
    DropRecord(id);
    return;
  }
  WriteRecord(record);  // what is left to undo, for the next `uvmctl rm`
  throw std::runtime_error(fmt::format("removing the network of {}: {} (record kept in {}; `uvmctl rm {}` retries)",
                                       id, failures, RecordPath(id).string(), id));
}

void WriteBundleFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.flush();
  if (!out) throw std::runtime_error(fmt::format("write {}: failed", path.string()));
}

}  // namespace

NetworkRequest ParseNetworkRequest(const std::string& mode, const std::vector<std::string>& publish) {
  NetworkRequest request;
  if (mode == "none") request.mode = NetworkMode::kNone;
  else if (mode == "bridge") request.mode = NetworkMode::kBridge;
  else if (!mode.empty())
    throw std::invalid_argument(fmt::format("--network \"{}\": expected none or bridge", mode));
  request.ports = ParsePortMappings(publish);
  if (!request.ports.empty() && request.mode != NetworkMode::kBridge)
    throw std::invalid_argument("-p: publishing a port needs --network bridge");
  if (request.mode != NetworkMode::kDefault) request.config = LoadNetworkConfig();
  return request;
}

ContainerNetwork::ContainerNetwork(const NetworkRequest& request, const std::string& id, const std::string& hostname,
                                   const fs::path& bundle)
    : mode_(request.mode), id_(id), bundle_(bundle) {
  if (mode_ == NetworkMode::kDefault) return;
  const NetworkConfig& config = request.config;
  const std::string host_resolv = ReadTextFile(config.host_resolv_conf);
  if (mode_ == NetworkMode::kNone) {
    WriteBundleFile(bundle_ / "resolv.conf", ContainerResolvConf(host_resolv, config.dns));
    WriteBundleFile(bundle_ / "hosts", ContainerHosts(hostname, ""));
    return;
  }
  const fs::path netns = config.netns_dir / ("uvm-" + id);
  if (fs::exists(netns) || ReadRecord(id))
    throw std::runtime_error(fmt::format("network of {}: {} or its record already exists", id, netns.string()));
  json record = {{"id", id}, {"netns", netns.string()}, {"caller_netns", CurrentNetnsInode()},
                 {"cni_path", json::array()}, {"address", ""}, {"attachments", json::array()}};
  for (const auto& dir : config.cni_path) record["cni_path"].push_back(dir.string());
  record["attachments"].push_back({{"ifname", "lo"}, {"conflist", LoopbackConflist()}, {"started", false}});
  json bridge = {{"ifname", "eth0"}, {"conflist", BridgeConflist(config, !request.ports.empty())}, {"started", false}};
  if (!request.ports.empty()) bridge["capability_args"] = {{"portMappings", PortMappingsArg(request.ports)}};
  record["attachments"].push_back(bridge);
  for (const auto& attachment : record["attachments"])
    CheckPluginsInstalled(attachment["conflist"], config.cni_path);  // before anything exists
  WriteRecord(record);  // before the namespace exists: a kill -9 from here on leaves a record for `rm`
  try {
    netns_ = CreateNamedNetns(config.netns_dir, "uvm-" + id).string();
    for (auto& attachment : record["attachments"]) {
      attachment["started"] = true;  // a failed or interrupted ADD still needs its DEL
      WriteRecord(record);
      attachment["result"] = AddNetworkList(attachment["conflist"], RuntimeFor(record, attachment));
      WriteRecord(record);
    }
    const json& result = record["attachments"].back()["result"];
    record["address"] = FirstAddress(result);
    WriteRecord(record);
    WriteBundleFile(bundle_ / "resolv.conf",
                    ContainerResolvConf(host_resolv, config.dns, result.value("dns", json(nullptr))));
    WriteBundleFile(bundle_ / "hosts", ContainerHosts(hostname, record["address"].get<std::string>()));
  } catch (const std::exception& e) {
    const std::string error = fmt::format("--network bridge for {}: {}", id, e.what());
    try {
      TearDown(record, false);
    } catch (const std::exception& undo) {
      throw std::runtime_error(error + "; undoing it: " + undo.what());
    }
    throw std::runtime_error(error);
  }
}

ContainerNetwork::~ContainerNetwork() {
  if (keep_ || mode_ != NetworkMode::kBridge) return;
  try {
    if (auto record = ReadRecord(id_)) TearDown(*record, false);
  } catch (const std::exception& e) {
    spdlog::warn("{}", e.what());
  }
}

void ContainerNetwork::ApplyToSpec(json& spec) const {
  if (mode_ == NetworkMode::kDefault) return;
  json& namespaces = spec["linux"]["namespaces"];
  if (!namespaces.is_array()) namespaces = json::array();
  for (auto it = namespaces.begin(); it != namespaces.end();)
    it = it->value("type", "") == "network" ? namespaces.erase(it) : it + 1;
  json network = {{"type", "network"}};
  if (!netns_.empty()) network["path"] = netns_;
  namespaces.push_back(network);

  json& mounts = spec["mounts"];
  if (!mounts.is_array()) mounts = json::array();
  for (const char* name : {"resolv.conf", "hosts"}) {
    const std::string destination = std::string("/etc/") + name;
    bool taken = false;
    for (const auto& mount : mounts) taken = taken || mount.value("destination", "") == destination;
    if (taken) continue;
    mounts.push_back({{"destination", destination}, {"type", "bind"}, {"source", (bundle_ / name).string()},
                      {"options", {"rbind", "rw"}}});
  }
}

NetworkRemoval::NetworkRemoval(const std::string& id, bool force) : id_(id) {
  auto record = ReadRecord(id);
  if (!record) return;
  pending_ = true;
  const unsigned long where = record->value("caller_netns", 0ul);
  const unsigned long here = CurrentNetnsInode();
  if (where == here) return;
  if (!force)
    throw std::runtime_error(fmt::format(
        "container {}: its network (bridge port, iptables rules) was set up from network namespace net:[{}], "
        "this is net:[{}]: run `uvmctl rm` there (rm -f removes it without CNI DEL)", id, where, here));
  skip_cni_ = true;
  spdlog::warn("container {}: not in network namespace net:[{}] where its network was set up: removing its "
               "namespace without CNI DEL (its bridge port, iptables rules and address reservation stay there)",
               id, where);
}

void NetworkRemoval::Complete() {
  if (!pending_) return;
  if (auto record = ReadRecord(id_)) TearDown(*record, skip_cni_);
  pending_ = false;
}

std::string ContainerAddress(const std::string& id) {
  try {
    auto record = ReadRecord(id);
    if (record && record->contains("address") && (*record)["address"].is_string() &&
        !(*record)["address"].get<std::string>().empty())
      return (*record)["address"].get<std::string>();
  } catch (const std::exception&) {
  }
  return "-";
}

}  // namespace uvmshim::uvmctl
