#include "guest-agent/oci_spec.h"

#include <sys/resource.h>

#include <array>
#include <limits>
#include <nlohmann/json.hpp>

namespace uvmshim::agent {
namespace {

using json = nlohmann::json;

// Names fields in errors: prefix + path, e.g. "spec: " + "process.args".
class Where {
 public:
  Where(std::string prefix, std::string path) : prefix_(std::move(prefix)), path_(std::move(path)) {}
  Where Field(std::string_view name) const {
    return Where(prefix_, path_.empty() ? std::string(name) : path_ + "." + std::string(name));
  }
  Where Index(size_t i) const { return Where(prefix_, path_ + "[" + std::to_string(i) + "]"); }
  [[noreturn]] void Fail(std::string_view what) const {
    throw SpecError(prefix_ + path_ + " " + std::string(what));
  }

 private:
  std::string prefix_;
  std::string path_;
};

const json* Member(const json& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

void RequireObject(const json& value, const Where& where) {
  if (!value.is_object()) where.Fail("must be an object");
}

// Paths, arguments and options end up in C APIs, which would cut a string at
// a NUL: refused (runc's Go syscalls refuse them with EINVAL).
std::string AsString(const json& value, const Where& where) {
  if (!value.is_string()) where.Fail("must be a string");
  auto text = value.get<std::string>();
  if (text.find('\0') != std::string::npos) where.Fail("must not contain a NUL character");
  return text;
}

bool AsBool(const json& value, const Where& where) {
  if (!value.is_boolean()) where.Fail("must be a boolean");
  return value.get<bool>();
}

template <typename Int>
Int AsInteger(const json& value, const Where& where) {
  if (!value.is_number_integer()) where.Fail("must be an integer");
  if (value.is_number_unsigned()) {
    auto v = value.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<Int>::max())) where.Fail("is out of range");
    return static_cast<Int>(v);
  }
  auto v = value.get<int64_t>();
  if (v < static_cast<int64_t>(std::numeric_limits<Int>::min()) ||
      (v > 0 && static_cast<uint64_t>(v) > static_cast<uint64_t>(std::numeric_limits<Int>::max())))
    where.Fail("is out of range");
  return static_cast<Int>(v);
}

std::vector<std::string> AsStringArray(const json& value, const Where& where, bool non_empty) {
  const char* what = non_empty ? "must be a non-empty array of strings" : "must be an array of strings";
  if (!value.is_array() || (non_empty && value.empty())) where.Fail(what);
  std::vector<std::string> out;
  out.reserve(value.size());
  for (const auto& item : value) {
    if (!item.is_string()) where.Fail(what);
    out.push_back(item.get<std::string>());
    if (out.back().find('\0') != std::string::npos) where.Index(out.size() - 1).Fail("must not contain a NUL character");
  }
  return out;
}

std::optional<std::string> OptionalString(const json& object, std::string_view key, const Where& where) {
  const json* value = Member(object, key);
  if (!value) return std::nullopt;
  return AsString(*value, where.Field(key));
}

bool OptionalBool(const json& object, std::string_view key, const Where& where) {
  const json* value = Member(object, key);
  return value ? AsBool(*value, where.Field(key)) : false;
}

std::vector<int> ParseCapabilityList(const json& value, const Where& where) {
  std::vector<int> caps;
  for (const auto& name : AsStringArray(value, where, false)) {
    int cap = CapabilityFromName(name);
    if (cap < 0) where.Fail("names an unknown capability \"" + name + "\"");
    caps.push_back(cap);
  }
  return caps;
}

// IOPRIO_PRIO_VALUE of linux/ioprio.h (not in every libc's headers).
void ParseIoPriority(const json& value, const Where& where, OciProcess& process) {
  RequireObject(value, where);
  auto klass = OptionalString(value, "class", where).value_or("");
  int class_number = klass == "IOPRIO_CLASS_RT" ? 1 : klass == "IOPRIO_CLASS_BE" ? 2 : klass == "IOPRIO_CLASS_IDLE" ? 3 : 0;
  if (class_number == 0) where.Field("class").Fail("must be IOPRIO_CLASS_RT, IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE");
  int priority = 0;
  if (const json* p = Member(value, "priority")) priority = AsInteger<int>(*p, where.Field("priority"));
  if (priority < 0 || priority > 7) where.Field("priority").Fail("must be between 0 and 7");
  process.io_priority = (class_number << 13) | priority;
}

OciProcess ParseProcessObject(const json& object, const Where& where) {
  RequireObject(object, where);
  OciProcess process;
  process.terminal = OptionalBool(object, "terminal", where);
  if (const json* size = Member(object, "consoleSize")) {
    Where w = where.Field("consoleSize");
    RequireObject(*size, w);
    if (const json* h = Member(*size, "height")) process.console_height = AsInteger<uint16_t>(*h, w.Field("height"));
    if (const json* wd = Member(*size, "width")) process.console_width = AsInteger<uint16_t>(*wd, w.Field("width"));
  }
  if (const json* user = Member(object, "user")) {
    Where w = where.Field("user");
    RequireObject(*user, w);
    if (const json* uid = Member(*user, "uid")) process.user.uid = AsInteger<uint32_t>(*uid, w.Field("uid"));
    if (const json* gid = Member(*user, "gid")) process.user.gid = AsInteger<uint32_t>(*gid, w.Field("gid"));
    if (const json* umask = Member(*user, "umask")) process.user.umask = AsInteger<uint32_t>(*umask, w.Field("umask"));
    if (const json* gids = Member(*user, "additionalGids")) {
      Where wg = w.Field("additionalGids");
      if (!gids->is_array()) wg.Fail("must be an array of integers");
      for (size_t i = 0; i < gids->size(); ++i)
        process.user.additional_gids.push_back(AsInteger<uint32_t>((*gids)[i], wg.Index(i)));
    }
  }
  const json* args = Member(object, "args");
  if (!args) where.Field("args").Fail("must be a non-empty array of strings");
  process.args = AsStringArray(*args, where.Field("args"), true);
  if (const json* env = Member(object, "env")) {
    process.env = AsStringArray(*env, where.Field("env"), false);
    for (size_t i = 0; i < process.env.size(); ++i)
      if (process.env[i].find('=') == std::string::npos || process.env[i].front() == '=')
        where.Field("env").Index(i).Fail("must have the form NAME=value");
  }
  if (auto cwd = OptionalString(object, "cwd", where)) {
    if (cwd->empty() || cwd->front() != '/') where.Field("cwd").Fail("must be an absolute path");
    process.cwd = *cwd;
  }
  if (const json* caps = Member(object, "capabilities")) {
    Where w = where.Field("capabilities");
    RequireObject(*caps, w);
    OciCapabilities parsed;
    auto set = [&](std::string_view key, std::optional<std::vector<int>>& out) {
      if (const json* list = Member(*caps, key)) out = ParseCapabilityList(*list, w.Field(key));
    };
    set("bounding", parsed.bounding);
    set("effective", parsed.effective);
    set("permitted", parsed.permitted);
    set("inheritable", parsed.inheritable);
    set("ambient", parsed.ambient);
    process.capabilities = std::move(parsed);
  }
  if (const json* rlimits = Member(object, "rlimits")) {
    Where w = where.Field("rlimits");
    if (!rlimits->is_array()) w.Fail("must be an array");
    for (size_t i = 0; i < rlimits->size(); ++i) {
      const json& item = (*rlimits)[i];
      Where wi = w.Index(i);
      RequireObject(item, wi);
      OciRlimit limit;
      const json* type = Member(item, "type");
      if (!type) wi.Field("type").Fail("is required");
      std::string name = AsString(*type, wi.Field("type"));
      limit.resource = RlimitFromName(name);
      if (limit.resource < 0) wi.Field("type").Fail("names an unknown rlimit \"" + name + "\"");
      const json* soft = Member(item, "soft");
      const json* hard = Member(item, "hard");
      if (!soft) wi.Field("soft").Fail("is required");
      if (!hard) wi.Field("hard").Fail("is required");
      limit.soft = AsInteger<uint64_t>(*soft, wi.Field("soft"));
      limit.hard = AsInteger<uint64_t>(*hard, wi.Field("hard"));
      if (limit.soft > limit.hard) wi.Fail("has soft > hard");
      process.rlimits.push_back(limit);
    }
  }
  process.no_new_privileges = OptionalBool(object, "noNewPrivileges", where);
  if (const json* adj = Member(object, "oomScoreAdj")) {
    process.oom_score_adj = AsInteger<int>(*adj, where.Field("oomScoreAdj"));
    if (*process.oom_score_adj < -1000 || *process.oom_score_adj > 1000)
      where.Field("oomScoreAdj").Fail("must be between -1000 and 1000");
  }
  process.apparmor_profile = OptionalString(object, "apparmorProfile", where).value_or("");
  if (const json* io = Member(object, "ioPriority")) ParseIoPriority(*io, where.Field("ioPriority"), process);
  return process;
}

json ParseJsonText(std::string_view text, std::string_view prefix) {
  if (text.size() > kMaxSpecBytes)
    throw SpecTooLarge(std::string(prefix) + "JSON is " + std::to_string(text.size()) +
                       " bytes, more than the limit of " + std::to_string(kMaxSpecBytes));
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 9E999
    throw SpecError(std::string(prefix) + "invalid JSON: " + e.what());
  }
}

void ParseMounts(const json& value, const Where& where, OciSpec& spec) {
  if (!value.is_array()) where.Fail("must be an array");
  for (size_t i = 0; i < value.size(); ++i) {
    const json& item = value[i];
    Where wi = where.Index(i);
    RequireObject(item, wi);
    OciMount mount;
    auto destination = OptionalString(item, "destination", wi);
    if (!destination || destination->empty() || destination->front() != '/')
      wi.Field("destination").Fail("must be an absolute path");
    mount.destination = *destination;
    mount.type = OptionalString(item, "type", wi).value_or("");
    mount.source = OptionalString(item, "source", wi).value_or("");
    if (const json* options = Member(item, "options"))
      mount.options = AsStringArray(*options, wi.Field("options"), false);
    spec.mounts.push_back(std::move(mount));
  }
}

void ParseResources(const json& resources_obj, const Where& w, OciResources& out) {
  const json* resources = &resources_obj;
  RequireObject(*resources, w);
  if (const json* memory = Member(*resources, "memory")) {
    Where wm = w.Field("memory");
    RequireObject(*memory, wm);
    if (const json* v = Member(*memory, "limit")) out.memory_limit = AsInteger<int64_t>(*v, wm.Field("limit"));
  }
  if (const json* pids = Member(*resources, "pids")) {
    Where wp = w.Field("pids");
    RequireObject(*pids, wp);
    if (const json* v = Member(*pids, "limit")) out.pids_limit = AsInteger<int64_t>(*v, wp.Field("limit"));
  }
  if (const json* cpu = Member(*resources, "cpu")) {
    Where wc = w.Field("cpu");
    RequireObject(*cpu, wc);
    if (const json* v = Member(*cpu, "shares")) out.cpu_shares = AsInteger<uint64_t>(*v, wc.Field("shares"));
    if (const json* v = Member(*cpu, "quota")) out.cpu_quota = AsInteger<int64_t>(*v, wc.Field("quota"));
    if (const json* v = Member(*cpu, "period")) out.cpu_period = AsInteger<uint64_t>(*v, wc.Field("period"));
  }
}

void ParseLinux(const json& linux_obj, const Where& where, OciSpec& spec) {
  RequireObject(linux_obj, where);
  if (const json* namespaces = Member(linux_obj, "namespaces")) {
    Where w = where.Field("namespaces");
    if (!namespaces->is_array()) w.Fail("must be an array");
    spec.has_namespaces = true;
    static constexpr std::array<std::string_view, 8> kKnown = {
        "pid", "network", "mount", "ipc", "uts", "cgroup", "user", "time"};
    for (size_t i = 0; i < namespaces->size(); ++i) {
      const json& item = (*namespaces)[i];
      Where wi = w.Index(i);
      RequireObject(item, wi);
      OciNamespace ns;
      auto type = OptionalString(item, "type", wi);
      if (!type) wi.Field("type").Fail("is required");
      bool known = false;
      for (auto k : kKnown) known |= (k == *type);
      if (!known) wi.Field("type").Fail("is an unknown namespace type \"" + *type + "\"");
      if (*type == "user" || *type == "time")
        wi.Field("type").Fail("\"" + *type + "\" namespaces are not supported");
      ns.type = *type;
      ns.path = OptionalString(item, "path", wi).value_or("");
      if (!ns.path.empty() && ns.type != "network" && ns.type != "ipc" && ns.type != "uts" && ns.type != "pid")
        wi.Field("path").Fail("is only supported for network, ipc, uts and pid namespaces");
      if (spec.HasNamespace(ns.type)) wi.Fail("repeats namespace type \"" + ns.type + "\"");
      spec.namespaces.push_back(std::move(ns));
    }
    if (!spec.HasNamespace("mount") || !spec.FindNamespace("mount")->path.empty())
      w.Fail("must contain a new mount namespace (the agent pivots into the rootfs)");
  }
  if (const json* devices = Member(linux_obj, "devices")) {
    Where w = where.Field("devices");
    if (!devices->is_array()) w.Fail("must be an array");
    for (size_t i = 0; i < devices->size(); ++i) {
      const json& item = (*devices)[i];
      Where wi = w.Index(i);
      RequireObject(item, wi);
      OciDevice device;
      auto path = OptionalString(item, "path", wi);
      if (!path || path->rfind("/dev/", 0) != 0 || path->find("..") != std::string::npos)
        wi.Field("path").Fail("must be a path under /dev");
      device.path = *path;
      auto type = OptionalString(item, "type", wi).value_or("c");
      if (type.size() != 1 || std::string_view("cbup").find(type[0]) == std::string_view::npos)
        wi.Field("type").Fail("must be one of c, b, u, p");
      device.type = type[0];
      if (const json* v = Member(item, "major")) device.major = AsInteger<int64_t>(*v, wi.Field("major"));
      if (const json* v = Member(item, "minor")) device.minor = AsInteger<int64_t>(*v, wi.Field("minor"));
      if (const json* v = Member(item, "fileMode")) device.file_mode = AsInteger<uint32_t>(*v, wi.Field("fileMode"));
      if (const json* v = Member(item, "uid")) device.uid = AsInteger<uint32_t>(*v, wi.Field("uid"));
      if (const json* v = Member(item, "gid")) device.gid = AsInteger<uint32_t>(*v, wi.Field("gid"));
      spec.devices.push_back(std::move(device));
    }
  }
  if (const json* resources = Member(linux_obj, "resources"))
    ParseResources(*resources, where.Field("resources"), spec.resources);
  if (const json* resources = Member(linux_obj, "resources"); resources && Member(*resources, "devices"))
    spec.resources.devices = ParseDeviceRules(*Member(*resources, "devices"), "spec: linux.resources.devices");
  if (const json* seccomp = Member(linux_obj, "seccomp"))
    spec.seccomp = ParseSeccompProfile(*seccomp, "spec: linux.seccomp");
  if (const json* masked = Member(linux_obj, "maskedPaths"))
    spec.masked_paths = AsStringArray(*masked, where.Field("maskedPaths"), false);
  if (const json* readonly = Member(linux_obj, "readonlyPaths"))
    spec.readonly_paths = AsStringArray(*readonly, where.Field("readonlyPaths"), false);
  if (const json* sysctl = Member(linux_obj, "sysctl")) {
    Where w = where.Field("sysctl");
    RequireObject(*sysctl, w);
    for (const auto& [key, value] : sysctl->items()) {
      if (key.empty() || key.find("..") != std::string::npos || key.find('/') != std::string::npos)
        w.Fail("has an invalid key \"" + key + "\"");
      spec.sysctl[key] = AsString(value, w.Field(key));
    }
  }
  if (const json* personality = Member(linux_obj, "personality")) {
    Where w = where.Field("personality");
    RequireObject(*personality, w);
    auto domain = OptionalString(*personality, "domain", w).value_or("");
    if (domain == "LINUX") spec.personality = 0x0000;         // PER_LINUX
    else if (domain == "LINUX32") spec.personality = 0x0008;  // PER_LINUX32
    else w.Field("domain").Fail("must be LINUX or LINUX32");
  }
  if (auto propagation = OptionalString(linux_obj, "rootfsPropagation", where)) {
    static constexpr std::array<std::string_view, 7> kAllowed = {
        "", "private", "rprivate", "slave", "rslave", "shared", "rshared"};
    bool ok = false;
    for (auto a : kAllowed) ok |= (a == *propagation);
    if (!ok) where.Field("rootfsPropagation").Fail("has an unknown value \"" + *propagation + "\"");
    spec.rootfs_propagation = *propagation;
  }
}

}  // namespace

bool OciSpec::HasNamespace(std::string_view type) const { return FindNamespace(type) != nullptr; }

const OciNamespace* OciSpec::FindNamespace(std::string_view type) const {
  for (const auto& ns : namespaces)
    if (ns.type == type) return &ns;
  return nullptr;
}

OciSpec ParseOciSpec(std::string_view json_text) {
  json doc = ParseJsonText(json_text, "spec: ");
  Where root("spec: ", "");
  if (!doc.is_object()) throw SpecError("spec: the document must be a JSON object");
  OciSpec spec;
  const json* process = Member(doc, "process");
  if (!process) throw SpecError("spec: process is required");
  spec.process = ParseProcessObject(*process, root.Field("process"));
  if (const json* root_obj = Member(doc, "root")) {
    Where w = root.Field("root");
    RequireObject(*root_obj, w);
    spec.root_path = OptionalString(*root_obj, "path", w).value_or("");
    spec.root_readonly = OptionalBool(*root_obj, "readonly", w);
  }
  spec.hostname = OptionalString(doc, "hostname", root).value_or("");
  if (spec.hostname.size() > 64) root.Field("hostname").Fail("is longer than 64 bytes");
  spec.domainname = OptionalString(doc, "domainname", root).value_or("");
  if (spec.domainname.size() > 64) root.Field("domainname").Fail("is longer than 64 bytes");
  if (const json* mounts = Member(doc, "mounts")) {
    spec.has_mounts = true;
    ParseMounts(*mounts, root.Field("mounts"), spec);
  } else {
    spec.mounts = DefaultMounts();
  }
  if (const json* linux_obj = Member(doc, "linux")) ParseLinux(*linux_obj, root.Field("linux"), spec);
  if (!spec.has_namespaces) {
    for (const char* type : {"pid", "ipc", "uts", "mount"}) spec.namespaces.push_back({type, ""});
  }
  return spec;
}

OciProcess ParseOciProcess(std::string_view json_text) {
  json doc = ParseJsonText(json_text, "process: ");
  return ParseProcessObject(doc, Where("process: ", ""));
}

OciResources ParseOciResources(std::string_view json_text) {
  json doc = ParseJsonText(json_text, "resources: ");
  OciResources resources;
  ParseResources(doc, Where("resources: ", ""), resources);
  return resources;
}

std::vector<OciMount> DefaultMounts() {
  return {
      {"/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}},
      {"/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}},
      {"/dev/pts", "devpts", "devpts", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
      {"/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
      {"/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}},
      {"/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}},
  };
}

std::optional<std::string> EnvLookup(const std::vector<std::string>& env, std::string_view name) {
  for (auto it = env.rbegin(); it != env.rend(); ++it) {
    std::string_view entry = *it;
    if (entry.size() > name.size() && entry.substr(0, name.size()) == name && entry[name.size()] == '=')
      return std::string(entry.substr(name.size() + 1));
  }
  return std::nullopt;
}

int CapabilityFromName(std::string_view name) {
  static constexpr std::array<std::string_view, 41> kNames = {
      "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
      "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
      "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
      "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
      "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
      "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
      "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
      "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
      "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"};
  for (size_t i = 0; i < kNames.size(); ++i)
    if (kNames[i] == name) return static_cast<int>(i);
  return -1;
}

int RlimitFromName(std::string_view name) {
  struct Entry {
    std::string_view name;
    int resource;
  };
  static constexpr std::array<Entry, 16> kTable = {{
      {"RLIMIT_CPU", RLIMIT_CPU}, {"RLIMIT_FSIZE", RLIMIT_FSIZE}, {"RLIMIT_DATA", RLIMIT_DATA},
      {"RLIMIT_STACK", RLIMIT_STACK}, {"RLIMIT_CORE", RLIMIT_CORE}, {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_NPROC", RLIMIT_NPROC}, {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_AS", RLIMIT_AS}, {"RLIMIT_LOCKS", RLIMIT_LOCKS},
      {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
      {"RLIMIT_NICE", RLIMIT_NICE}, {"RLIMIT_RTPRIO", RLIMIT_RTPRIO}, {"RLIMIT_RTTIME", RLIMIT_RTTIME},
  }};
  for (const auto& entry : kTable)
    if (entry.name == name) return entry.resource;
  return -1;
}

}  // namespace uvmshim::agent
