#include "shim/shim_args.h"

#include <stdexcept>

#include "common/ids.h"

namespace uvmshim::shim {

ShimArgs ParseShimArgs(const std::vector<std::string>& args) {
  ShimArgs out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() < 2 || arg[0] != '-') {
      if (!out.action.empty())
        throw std::invalid_argument("unexpected argument \"" + arg + "\" after \"" + out.action + "\"");
      out.action = arg;
      continue;
    }
    std::string name = arg.substr(arg[1] == '-' ? 2 : 1);
    std::string value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    if (name == "debug" || name == "v") {
      out.debug = !has_value || value == "true" || value == "1";
      continue;
    }
    std::string* target = name == "namespace"        ? &out.ns
                          : name == "address"        ? &out.address
                          : name == "publish-binary" ? &out.publish_binary
                          : name == "id"             ? &out.id
                          : name == "bundle"         ? &out.bundle
                                                     : nullptr;
    if (target == nullptr) throw std::invalid_argument("unknown flag \"" + arg + "\"");
    if (!has_value) {
      if (i + 1 >= args.size()) throw std::invalid_argument("flag \"" + arg + "\" needs a value");
      value = args[++i];
    }
    *target = value;
  }
  if (!out.action.empty() && out.action != "start" && out.action != "delete")
    throw std::invalid_argument("unknown action \"" + out.action + "\" (expected start or delete)");
  // Both name directories and sockets (<root>/<ns>/<id>): containerd's
  // identifier rule, so "..", "/" and the like never reach a path.
  if (!out.ns.empty())
    if (auto error = IdError("-namespace", out.ns); !error.empty()) throw std::invalid_argument(error);
  if (!out.id.empty())
    if (auto error = IdError("-id", out.id); !error.empty()) throw std::invalid_argument(error);
  return out;
}

std::vector<std::string> DaemonArgs(const ShimArgs& args) {
  std::vector<std::string> out = {"-namespace", args.ns, "-id", args.id, "-address", args.address};
  if (!args.publish_binary.empty()) out.insert(out.end(), {"-publish-binary", args.publish_binary});
  if (!args.bundle.empty()) out.insert(out.end(), {"-bundle", args.bundle});
  if (args.debug) out.push_back("-debug");
  return out;
}

}  // namespace uvmshim::shim
