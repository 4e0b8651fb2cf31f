#include "guest-agent/spec_policy.h"

#include <sys/stat.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "guest-agent/oci_spec.h"

namespace uvmshim::agent {
namespace {

using json = nlohmann::json;
using V = FieldVerdict;

// Paths of arrays of objects end in "[]"; their elements are checked under
// that path ("mounts[].uidMappings").
const std::vector<FieldPolicy> kTable = {
    {"ociVersion", V::kConditional, "1.x accepted; another major version is refused"},
    {"root", V::kObject, ""},
    {"root.path", V::kHonoured, "the bundle's rootfs (the shim's mount, or the virtiofs share in hyperv)"},
    {"root.readonly", V::kHonoured, "read-only remount of / after the mounts"},
    {"mounts[]", V::kObject, ""},
    {"mounts[].destination", V::kHonoured, "resolved inside the rootfs"},
    {"mounts[].source", V::kHonoured, ""},
    {"mounts[].type", V::kHonoured, ""},
    {"mounts[].options", V::kHonoured, "flags, propagation, bind/rbind, data"},
    {"mounts[].uidMappings", V::kRefused, "id-mapped mounts need user namespaces, which are not supported"},
    {"mounts[].gidMappings", V::kRefused, "id-mapped mounts need user namespaces, which are not supported"},
    {"process", V::kObject, ""},
    {"process.terminal", V::kHonoured, "a pty opened inside the container"},
    {"process.consoleSize", V::kObject, ""},
    {"process.consoleSize.height", V::kHonoured, ""},
    {"process.consoleSize.width", V::kHonoured, ""},
    {"process.cwd", V::kHonoured, ""},
    {"process.env", V::kHonoured, ""},
    {"process.args", V::kHonoured, ""},
    {"process.commandLine", V::kRefused, "Windows only"},
    {"process.user", V::kObject, ""},
    {"process.user.uid", V::kHonoured, ""},
    {"process.user.gid", V::kHonoured, ""},
    {"process.user.umask", V::kHonoured, ""},
    {"process.user.additionalGids", V::kHonoured, ""},
    {"process.user.username", V::kRefused, "Windows only"},
    {"process.capabilities", V::kObject, ""},
    {"process.capabilities.bounding", V::kHonoured, "capabilities this kernel lacks are skipped, as runc"},
    {"process.capabilities.effective", V::kHonoured, ""},
    {"process.capabilities.permitted", V::kHonoured, ""},
    {"process.capabilities.inheritable", V::kHonoured, ""},
    {"process.capabilities.ambient", V::kHonoured, ""},
    {"process.rlimits[]", V::kObject, ""},
    {"process.rlimits[].type", V::kHonoured, ""},
    {"process.rlimits[].soft", V::kHonoured, ""},
    {"process.rlimits[].hard", V::kHonoured, ""},
    {"process.noNewPrivileges", V::kHonoured, "prctl(PR_SET_NO_NEW_PRIVS)"},
    {"process.apparmorProfile", V::kConditional, "applied at exec where AppArmor is enabled; refused where it is not"},
    {"process.oomScoreAdj", V::kHonoured, "/proc/self/oom_score_adj"},
    {"process.selinuxLabel", V::kRefused, "SELinux labels are not supported"},
    {"process.ioPriority", V::kObject, ""},
    {"process.ioPriority.class", V::kHonoured, "ioprio_set(2): IOPRIO_CLASS_RT, _BE or _IDLE"},
    {"process.ioPriority.priority", V::kHonoured, "0-7"},
    {"process.scheduler", V::kRefused, "sched_setattr(2) policies are not supported"},
    {"process.execCPUAffinity", V::kRefused, "exec CPU affinity is not supported"},
    {"hostname", V::kHonoured, "needs a uts namespace"},
    {"domainname", V::kHonoured, "needs a uts namespace"},
    {"hooks", V::kObject, ""},
    {"hooks.prestart", V::kConditional, "process isolation: run by the agent on the host; hyperv: refused"},
    {"hooks.createRuntime", V::kConditional, "process isolation: run by the agent on the host; hyperv: refused"},
    {"hooks.createContainer", V::kRefused, "hooks in the container's namespaces are not supported"},
    {"hooks.startContainer", V::kRefused, "hooks in the container's namespaces are not supported"},
    {"hooks.poststart", V::kConditional, "process isolation: run by the agent on the host; hyperv: refused"},
    {"hooks.poststop", V::kConditional, "process isolation: run by the agent on the host; hyperv: refused"},
    {"annotations", V::kAccepted, "metadata (io.uvmshim.isolation is read by the shim)"},
    {"linux", V::kObject, ""},
    {"linux.namespaces[]", V::kObject, ""},
    {"linux.namespaces[].type", V::kHonoured, "pid network mount ipc uts cgroup; user and time are refused"},
    {"linux.namespaces[].path", V::kHonoured, "network, ipc and uts only"},
    {"linux.uidMappings", V::kRefused, "user namespaces are not supported"},
    {"linux.gidMappings", V::kRefused, "user namespaces are not supported"},
    {"linux.timeOffsets", V::kRefused, "time namespaces are not supported"},
    {"linux.devices[]", V::kObject, ""},
    {"linux.devices[].path", V::kHonoured, ""},
    {"linux.devices[].type", V::kHonoured, ""},
    {"linux.devices[].major", V::kHonoured, ""},
    {"linux.devices[].minor", V::kHonoured, ""},
    {"linux.devices[].fileMode", V::kHonoured, ""},
    {"linux.devices[].uid", V::kHonoured, ""},
    {"linux.devices[].gid", V::kHonoured, ""},
    {"linux.cgroupsPath", V::kAccepted, "placement only: containers live under the sandbox's own cgroup parent"},
    {"linux.resources", V::kObject, ""},
    {"linux.resources.devices", V::kHonoured, "device cgroup (v1 devices.allow/deny, v2 eBPF)"},
    {"linux.resources.memory", V::kObject, ""},
    {"linux.resources.memory.limit", V::kHonoured, ""},
    {"linux.resources.memory.reservation", V::kRefused, "soft limits are not applied"},
    {"linux.resources.memory.swap", V::kConditional, "-1 or equal to limit (no swap beyond it, as CRI sets) where the machine has no swap; refused otherwise"},
    {"linux.resources.memory.kernel", V::kRefused, "kernel memory limits are not applied"},
    {"linux.resources.memory.kernelTCP", V::kRefused, "kernel TCP memory limits are not applied"},
    {"linux.resources.memory.swappiness", V::kRefused, "not applied"},
    {"linux.resources.memory.disableOOMKiller", V::kRefused, "not applied (false is accepted)"},
    {"linux.resources.memory.useHierarchy", V::kRefused, "not applied (false is accepted)"},
    {"linux.resources.memory.checkBeforeUpdate", V::kAccepted, "only for updates, which are not implemented"},
    {"linux.resources.cpu", V::kObject, ""},
    {"linux.resources.cpu.shares", V::kHonoured, "cpu.shares / cpu.weight"},
    {"linux.resources.cpu.quota", V::kHonoured, "cfs quota / cpu.max"},
    {"linux.resources.cpu.period", V::kHonoured, ""},
    {"linux.resources.cpu.burst", V::kRefused, "not applied"},
    {"linux.resources.cpu.realtimeRuntime", V::kRefused, "real-time bandwidth is not applied"},
    {"linux.resources.cpu.realtimePeriod", V::kRefused, "real-time bandwidth is not applied"},
    {"linux.resources.cpu.cpus", V::kRefused, "cpusets are not applied"},
    {"linux.resources.cpu.mems", V::kRefused, "cpusets are not applied"},
    {"linux.resources.cpu.idle", V::kRefused, "not applied"},
    {"linux.resources.pids", V::kObject, ""},
    {"linux.resources.pids.limit", V::kHonoured, ""},
    {"linux.resources.blockIO", V::kRefused, "blkio weights and throttles are not applied (weight 0 = unset is accepted)"},
    {"linux.resources.hugepageLimits", V::kConditional, "accepted where the machine has no huge pages (nothing to limit); refused otherwise"},
    {"linux.resources.network", V::kRefused, "net_cls/net_prio are not applied"},
    {"linux.resources.rdma", V::kRefused, "not applied"},
    {"linux.resources.unified", V::kRefused, "raw cgroup v2 files are not applied"},
    {"linux.intelRdt", V::kRefused, "resctrl is not supported"},
    {"linux.sysctl", V::kConditional, "namespaced keys only, as runc: kernel.msg*/sem/shm*/fs.mqueue.* with a private ipc namespace, kernel.hostname/domainname with a private uts namespace, net.* with a private network namespace"},
    {"linux.seccomp", V::kHonoured, "libseccomp, loaded before exec"},
    {"linux.rootfsPropagation", V::kHonoured, ""},
    {"linux.maskedPaths", V::kHonoured, ""},
    {"linux.readonlyPaths", V::kHonoured, ""},
    {"linux.mountLabel", V::kRefused, "SELinux labels are not supported"},
    {"linux.personality", V::kObject, ""},
    {"linux.personality.domain", V::kHonoured, "LINUX or LINUX32, personality(2) before exec"},
    {"linux.personality.flags", V::kRefused, "personality flags are not supported"},
    {"linux.memoryPolicy", V::kRefused, "NUMA memory policy is not supported"},
    {"linux.netDevices", V::kRefused, "moving network devices is not supported"},
    {"solaris", V::kRefused, "another platform"},
    {"windows", V::kRefused, "another platform"},
    {"vm", V::kRefused, "uvmshim chooses the VM (kernel, image, hypervisor) from its runtime configuration"},
    {"zos", V::kRefused, "another platform"},
};

// Names fields in errors, as ParseOciSpec does ("spec: linux.sysctl ...").
struct Where {
  std::string prefix;  // "spec: " or "process: "
  std::string path;    // concrete: "mounts[2].uidMappings"
  [[noreturn]] void Fail(std::string_view what) const { throw SpecError(prefix + path + " " + std::string(what)); }
};

// Whether a value asks for anything: null, "", [], {} and false do not.
bool IsSet(const json& value) {
  if (value.is_null()) return false;
  if (value.is_boolean()) return value.get<bool>();
  // json::empty() is false for every string: compare the text itself.
  if (value.is_string()) return !value.get_ref<const std::string&>().empty();
  if (value.is_array() || value.is_object()) return !value.empty();
  return true;
}

struct Context {
  const PolicyEnvironment& environment;
  const json* spec;  // the whole spec; null for an exec's process
  std::vector<std::string>* warnings;
};

bool HasPrivateNamespace(const json& spec, std::string_view type, const PolicyEnvironment& environment) {
  const json* linux_obj = spec.contains("linux") ? &spec["linux"] : nullptr;
  if (!linux_obj || !linux_obj->is_object() || !linux_obj->contains("namespaces")) {
    return type != "network";  // ParseOciSpec's default: pid ipc uts mount
  }
  for (const auto& ns : (*linux_obj)["namespaces"]) {
    if (ns.value("type", "") != type) continue;
    std::string path = ns.value("path", "");
    if (path.empty()) return true;
    // Joined by path: private unless it is the agent's own (the host's).
    const auto& own = type == "network" ? environment.own_net : type == "ipc" ? environment.own_ipc : environment.own_uts;
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return true;  // the create reports the bad path
    return !(st.st_dev == own.dev && st.st_ino == own.ino);
  }
  return false;
}

void CheckSysctl(const json& value, const Context& context, const Where& where) {
  if (!value.is_object()) return;  // ParseOciSpec reports the type
  static const std::vector<std::string_view> kIpcKeys = {
      "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
      "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"};
  for (const auto& [key, ignored] : value.items()) {
    Where w{where.prefix, where.path + "." + key};
    std::string_view needs;
    bool ipc = key.rfind("fs.mqueue.", 0) == 0;
    for (auto k : kIpcKeys) ipc |= (key == k);
    if (ipc) needs = "ipc";
    else if (key == "kernel.hostname" || key == "kernel.domainname") needs = "uts";
    else if (key.rfind("net.", 0) == 0) needs = "network";
    else w.Fail("is not a namespaced sysctl: it would change the whole " +
                std::string(context.environment.in_utility_vm ? "utility VM" : "host"));
    if (!HasPrivateNamespace(*context.spec, needs, context.environment))
      w.Fail("needs a private " + std::string(needs) + " namespace (the spec shares the " +
             (context.environment.in_utility_vm ? "utility VM's" : "host's") + ")");
  }
}

void CheckSwap(const json& value, const Context& context, const Where& where) {
  if (!value.is_number_integer()) return;
  int64_t swap = value.get<int64_t>();
  if (swap == -1 || swap == 0) return;  // unlimited, or unset as some engines write it
  const json& memory = (*context.spec)["linux"]["resources"]["memory"];
  const json* limit = memory.contains("limit") ? &memory["limit"] : nullptr;
  if (!limit || !limit->is_number_integer() || limit->get<int64_t>() != swap)
    where.Fail("must be -1 or equal to memory.limit: swap limits beyond the memory limit are not applied");
  if (context.environment.swap_total_kb != 0)
    where.Fail("equal to memory.limit cannot be enforced: swap limits are not applied and this machine has swap");
}

void CheckConditional(std::string_view path, const json& value, const Context& context, const Where& where) {
  const auto& env = context.environment;
  if (path == "ociVersion") {
    if (value.is_string() && value.get<std::string>().rfind("1.", 0) != 0)
      where.Fail("\"" + value.get<std::string>() + "\" is not a 1.x runtime spec version");
  } else if (path == "process.apparmorProfile") {
    if (!env.apparmor)
      where.Fail("asks for AppArmor profile \"" + value.get<std::string>() + "\" but AppArmor is not enabled in the " +
                 (env.in_utility_vm ? "utility VM's kernel" : "host kernel"));
  } else if (path.rfind("hooks.", 0) == 0) {
    if (env.in_utility_vm)
      where.Fail("cannot run: in hyperv isolation the agent runs in the utility VM and hooks name host programs");
  } else if (path == "linux.resources.memory.swap") {
    CheckSwap(value, context, where);
  } else if (path == "linux.resources.hugepageLimits") {
    if (env.hugepages_total != 0)
      where.Fail("is not applied (no hugetlb limits) and this machine has huge pages");
  } else if (path == "linux.sysctl") {
    CheckSysctl(value, context, where);
  }
}

void CheckValue(std::string_view path, const json& value, const Context& context, const Where& where) {
  if (path == "linux.resources.blockIO" && value.is_object()) {
    // Docker writes {"weight": 0} for "no weight".
    bool set = false;
    for (const auto& [key, item] : value.items())
      set |= (key == "weight" || key == "leafWeight") ? (item.is_number() && item.get<double>() != 0) : IsSet(item);
    if (!set) return;
  } else if (path == "process.ioPriority.class" && value.is_string()) {
    auto c = value.get<std::string>();
    if (c != "IOPRIO_CLASS_RT" && c != "IOPRIO_CLASS_BE" && c != "IOPRIO_CLASS_IDLE")
      where.Fail("must be IOPRIO_CLASS_RT, IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE");
    return;
  } else if (path == "process.ioPriority.priority" && value.is_number_integer()) {
    if (value.get<int64_t>() < 0 || value.get<int64_t>() > 7) where.Fail("must be between 0 and 7");
    return;
  } else if (path == "linux.personality.domain") {
    if (!value.is_string() || (value != "LINUX" && value != "LINUX32")) where.Fail("must be LINUX or LINUX32");
    return;
  }
  if (!IsSet(value)) return;
  for (const auto& field : kTable) {
    if (field.path != path) continue;
    if (field.verdict == V::kRefused) where.Fail("is not supported: " + std::string(field.note));
    if (field.verdict == V::kConditional) CheckConditional(path, value, context, where);
    return;
  }
}

const FieldPolicy* Find(std::string_view path) {
  for (const auto& field : kTable)
    if (field.path == path) return &field;
  return nullptr;
}

// Walks `object` (at table path `path`, concrete path where.path).
void Walk(const json& object, const std::string& path, const Context& context, const Where& where) {
  if (!object.is_object()) return;  // ParseOciSpec reports wrong types
  for (const auto& [key, value] : object.items()) {
    std::string field_path = path.empty() ? key : path + "." + key;
    Where w{where.prefix, where.path.empty() ? key : where.path + "." + key};
    const FieldPolicy* field = Find(field_path);
    if (!field) {
      if (const FieldPolicy* array = Find(field_path + "[]"); array && value.is_array()) {
        for (size_t i = 0; i < value.size(); ++i)
          Walk(value[i], field_path + "[]", context, Where{w.prefix, w.path + "[" + std::to_string(i) + "]"});
        continue;
      }
      context.warnings->push_back(where.prefix + w.path + " is not a field this agent knows: ignored");
      continue;
    }
    if (field->verdict == V::kObject) {
      CheckValue(field_path, value, context, w);  // validations of the object's own (personality ...)
      Walk(value, field_path, context, w);
    } else {
      CheckValue(field_path, value, context, w);
    }
  }
}

json Parse(std::string_view text, const std::string& prefix) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 9E999
    throw SpecError(prefix + "invalid JSON: " + e.what());
  }
}

uint64_t MeminfoValue(const std::string& meminfo, std::string_view key) {
  std::istringstream in(meminfo);
  std::string name;
  uint64_t value = 0;
  std::string rest;
  while (in >> name >> value) {
    std::getline(in, rest);
    if (name == std::string(key) + ":") return value;
  }
  return 0;
}

}  // namespace

const std::vector<FieldPolicy>& SpecFieldTable() { return kTable; }

PolicyEnvironment PolicyEnvironment::Probe(bool in_utility_vm) {
  PolicyEnvironment env;
  env.in_utility_vm = in_utility_vm;
  std::ifstream apparmor("/sys/module/apparmor/parameters/enabled");
  char enabled = 'N';
  env.apparmor = (apparmor >> enabled) && enabled == 'Y';
  struct stat st {};
  env.selinux = stat("/sys/fs/selinux/enforce", &st) == 0;
  std::ifstream meminfo_file("/proc/meminfo");
  std::stringstream meminfo;
  meminfo << meminfo_file.rdbuf();
  env.swap_total_kb = MeminfoValue(meminfo.str(), "SwapTotal");
  env.hugepages_total = MeminfoValue(meminfo.str(), "HugePages_Total");
  for (auto [name, id] : {std::pair{"net", &env.own_net}, std::pair{"ipc", &env.own_ipc}, std::pair{"uts", &env.own_uts}}) {
    if (stat((std::string("/proc/self/ns/") + name).c_str(), &st) == 0) *id = {st.st_dev, st.st_ino};
  }
  return env;
}

std::vector<std::string> CheckSpecPolicy(std::string_view spec_json, const PolicyEnvironment& environment) {
  json doc = Parse(spec_json, "spec: ");
  std::vector<std::string> warnings;
  Context context{environment, &doc, &warnings};
  Walk(doc, "", context, Where{"spec: ", ""});
  return warnings;
}

std::vector<std::string> CheckProcessPolicy(std::string_view process_json, const PolicyEnvironment& environment) {
  json doc = Parse(process_json, "process: ");
  std::vector<std::string> warnings;
  Context context{environment, nullptr, &warnings};
  // The table's paths start at the spec's root: check the object as "process".
  json wrapped = {{"process", std::move(doc)}};
  Walk(wrapped["process"], "process", context, Where{"process: ", ""});
  return warnings;
}

}  // namespace uvmshim::agent
