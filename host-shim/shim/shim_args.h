// The shim binary's command line, as containerd passes it (Go flag syntax:
// -x v, -x=v, --x, bool flags without a value), followed by the action.
#pragma once

#include <string>
#include <vector>

namespace uvmshim::shim {

struct ShimArgs {
  std::string ns;              // -namespace
  std::string address;         // -address: containerd's gRPC socket
  std::string publish_binary;  // -publish-binary
  std::string id;              // -id
  std::string bundle;          // -bundle (delete); else the cwd
  bool debug = false;          // -debug
  std::string action;          // start | delete | "" (serve: the daemon)
};

// Throws std::invalid_argument naming the offending argument.
ShimArgs ParseShimArgs(const std::vector<std::string>& args);
// The daemon's arguments: the same flags, no action.
std::vector<std::string> DaemonArgs(const ShimArgs& args);

}  // namespace uvmshim::shim
