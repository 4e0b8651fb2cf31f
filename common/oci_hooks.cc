#include "common/oci_hooks.h"

#include <sys/wait.h>

#include <cstdint>
#include <nlohmann/json.hpp>

#include "common/error.h"

namespace uvmshim {
namespace {

using nlohmann::json;

[[noreturn]] void Refuse(const std::string& field, const char* why) {
  throw Error(ErrorCode::kInvalidArgument, field + " " + why);
}

bool HasValue(const json& object, const char* key) { return object.contains(key) && !object[key].is_null(); }

std::vector<std::string> StringsOf(const json& hook, const char* key, const std::string& where) {
  std::vector<std::string> out;
  if (!HasValue(hook, key)) return out;
  const std::string field = where + "." + key;
  if (!hook[key].is_array()) Refuse(field, "must be an array of strings");
  for (const auto& item : hook[key]) {
    if (!item.is_string()) Refuse(field, "must be an array of strings");
    out.push_back(item.get<std::string>());
    if (out.back().find('\0') != std::string::npos) Refuse(field, "must not contain a NUL character");
  }
  return out;
}

OciHook ParseOne(const json& item, const std::string& where) {
  if (!item.is_object()) Refuse(where, "must be an object");
  OciHook hook;
  if (!item.contains("path") || !item["path"].is_string() || !item["path"].get<std::string>().starts_with('/'))
    Refuse(where + ".path", "must be an absolute path");
  hook.path = item["path"].get<std::string>();
  if (hook.path.find('\0') != std::string::npos) Refuse(where + ".path", "must not contain a NUL character");
  hook.args = StringsOf(item, "args", where);
  hook.env = StringsOf(item, "env", where);
  if (HasValue(item, "timeout")) {
    const json& timeout = item["timeout"];
    // A day at most: larger values are typos, and int holds it.
    if (!timeout.is_number_integer() || timeout.get<std::int64_t>() <= 0 || timeout.get<std::int64_t>() > 86400)
      Refuse(where + ".timeout", "must be a positive number of seconds");
    hook.timeout_seconds = timeout.get<int>();
  }
  return hook;
}

}  // namespace

std::vector<OciHook> ParseOciHookList(const json& list, const std::string& field) {
  std::vector<OciHook> out;
  if (list.is_null()) return out;
  if (!list.is_array()) Refuse(field, "must be an array");
  for (std::size_t i = 0; i < list.size(); ++i) out.push_back(ParseOne(list[i], field + "[" + std::to_string(i) + "]"));
  return out;
}

OciHookStages ParseOciHookStages(const json& hooks) {
  OciHookStages stages;
  if (hooks.is_null()) return stages;
  if (!hooks.is_object()) Refuse("hooks", "must be an object");
  std::vector<OciHook>* targets[] = {&stages.prestart, &stages.create_runtime, &stages.poststart, &stages.poststop};
  for (std::size_t i = 0; i < std::size(kOciHookStageKeys); ++i) {
    const char* key = kOciHookStageKeys[i];
    if (hooks.contains(key)) *targets[i] = ParseOciHookList(hooks[key], std::string("hooks.") + key);
  }
  return stages;
}

HookExecArgs::HookExecArgs(const OciHook& hook)
    : args_(hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args), env_(hook.env) {
  for (auto& a : args_) argv_.push_back(a.data());
  argv_.push_back(nullptr);
  for (auto& e : env_) envp_.push_back(e.data());
  envp_.push_back(nullptr);
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return "exit status " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return "killed by signal " + std::to_string(WTERMSIG(wait_status));
  return "wait status " + std::to_string(wait_status);
}

}  // namespace uvmshim
