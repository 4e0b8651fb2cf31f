#include "runc/container_record.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace uvmshim::runc {
namespace fs = std::filesystem;
using nlohmann::json;

fs::path ContainerDir(const std::string& root, const std::string& id) { return fs::path(root) / id; }
fs::path RecordPath(const std::string& root, const std::string& id) { return ContainerDir(root, id) / "state.json"; }

void WriteRecord(const std::string& root, const ContainerRecord& r) {
  json j = {{"id", r.id},
            {"bundle", r.bundle},
            {"rootfs", r.rootfs},
            {"created", r.created},
            {"annotations", r.annotations},
            {"isolation", r.isolation},
            {"status", r.status},
            {"monitor_pid", r.monitor_pid},
            {"monitor_start_time", r.monitor_start_time},
            {"container_pid", r.container_pid},
            {"host_pid", r.host_pid},
            {"sandbox_dir", r.sandbox_dir},
            {"cgroup_parent", r.cgroup_parent},
            {"exit_status", r.exit_status}};
  const fs::path path = RecordPath(root, r.id);
  const fs::path temp = path.string() + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << j.dump(2) << "\n";
    if (!out.flush()) throw std::runtime_error(fmt::format("writing {}", temp.string()));
  }
  fs::rename(temp, path);
}

std::optional<ContainerRecord> ReadRecord(const std::string& root, const std::string& id) {
  std::ifstream in(RecordPath(root, id));
  if (!in) return std::nullopt;
  const json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  ContainerRecord r;
  r.id = j.value("id", id);
  r.bundle = j.value("bundle", "");
  r.rootfs = j.value("rootfs", "");
  r.created = j.value("created", "");
  r.annotations = j.value("annotations", std::map<std::string, std::string>{});
  r.isolation = j.value("isolation", "");
  r.status = j.value("status", "");
  r.monitor_pid = j.value("monitor_pid", 0);
  r.monitor_start_time = j.value("monitor_start_time", std::uint64_t{0});
  r.container_pid = j.value("container_pid", std::int64_t{0});
  r.host_pid = j.value("host_pid", std::int64_t{0});
  r.sandbox_dir = j.value("sandbox_dir", "");
  r.cgroup_parent = j.value("cgroup_parent", "");
  r.exit_status = j.value("exit_status", -1);
  return r;
}

ContainerRecord RequireRecord(const std::string& root, const std::string& id) {
  auto record = ReadRecord(root, id);
  if (!record) throw std::runtime_error(fmt::format("container {} does not exist", id));
  return *record;
}

std::uint64_t ProcessStartTime(pid_t pid) {
  if (pid <= 0) return 0;
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string text((std::istreambuf_iterator<char>(in)), {});
  auto paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 >= text.size()) return 0;
  if (text[paren + 2] == 'Z' || text[paren + 2] == 'X') return 0;
  std::istringstream fields(text.substr(paren + 2));
  std::string field;
  for (int n = 3; n <= 22 && fields >> field; ++n)
    if (n == 22) return std::stoull(field);
  return 0;
}

bool MonitorAlive(const ContainerRecord& record) {
  return record.monitor_pid > 0 && record.monitor_start_time != 0 &&
         ProcessStartTime(record.monitor_pid) == record.monitor_start_time;
}

std::string EffectiveStatus(const ContainerRecord& record) {
  if (!MonitorAlive(record)) return "stopped";
  return record.status == "creating" ? "creating" : record.status;
}

json OciState(const ContainerRecord& record) {
  const std::string status = EffectiveStatus(record);
  return {{"ociVersion", "1.0.2"},
          {"id", record.id},
          {"pid", status == "stopped" ? 0 : record.monitor_pid},
          {"status", status},
          {"bundle", record.bundle},
          {"rootfs", record.rootfs},
          {"created", record.created},
          {"owner", ""},
          {"annotations", record.annotations}};
}

}  // namespace uvmshim::runc
