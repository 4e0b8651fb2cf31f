#include "uvmctl/shim_calls.h"

#include <unistd.h>

#include <boost/process.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "containerd/runtimeoptions/v1/options.pb.h"
#include "containerd/task/v2/shim.pb.h"
#include "paths.h"
#include "terminal.h"

namespace uvmshim::uvmctl {

namespace fs = std::filesystem;
namespace bp = boost::process;
namespace taskpb = ::containerd::task::v2;

fs::path BundleDir(const std::string& ns, const std::string& id) {
  return host::RuntimeRoot() / "bundles" / ns / id;
}

void RemoveBundle(const fs::path& bundle) {
  std::error_code ignored;
  fs::remove_all(bundle, ignored);
  fs::remove(bundle.parent_path(), ignored);                // bundles/<ns>, once empty
  fs::remove(bundle.parent_path().parent_path(), ignored);  // bundles, once empty
}

std::string StartShim(const std::string& ns, const std::string& id, const fs::path& bundle) {
  const fs::path shim = host::FindTool("containerd-shim-uvm-v1", "UVMSHIM_SHIM");
  bp::ipstream out;
  auto env = boost::this_process::environment();
  env.erase("TTRPC_ADDRESS");  // no containerd to publish events to
  bp::child child(shim.string(), bp::args({"-namespace", ns, "-id", id, "-address", "", "start"}),
                  bp::start_dir = bundle.string(), bp::std_out > out, bp::std_err > bp::null, env);
  std::string address;
  std::getline(out, address);
  child.wait();
  if (child.exit_code() != 0 || !address.starts_with("unix://"))
    throw std::runtime_error(fmt::format("starting {} failed (exit {}): {}", shim.string(),
                                         child.exit_code(), address));
  return address;
}

google::protobuf::Any RuntimeOptions(const fs::path& config) {
  runtimeoptions::v1::Options options;
  options.set_config_path(config.string());
  google::protobuf::Any any;
  any.set_type_url("runtimeoptions.v1.Options");
  any.set_value(options.SerializeAsString());
  return any;
}

void SendWindowSize(shim::TaskClient& task, const std::string& id, const std::string& exec_id) {
  if (auto size = host::WindowSize(STDIN_FILENO)) {
    taskpb::ResizePtyRequest resize;
    resize.set_id(id);
    resize.set_exec_id(exec_id);
    resize.set_width(size->first);
    resize.set_height(size->second);
    task.Call("ResizePty", resize);
  }
}

void CloseStdin(shim::TaskClient& task, const std::string& id, const std::string& exec_id) {
  taskpb::CloseIORequest close;
  close.set_id(id);
  close.set_exec_id(exec_id);
  close.set_stdin(true);
  try {
    task.Call("CloseIO", close);
  } catch (const std::exception& e) {
    spdlog::debug("CloseIO: {}", e.what());
  }
}

void DeleteAndShutdown(shim::TaskClient& task, const std::string& id) {
  taskpb::DeleteRequest del;
  del.set_id(id);
  task.Call<taskpb::DeleteResponse>("Delete", del);
  taskpb::ShutdownRequest shutdown;
  shutdown.set_id(id);
  try {
    task.Call("Shutdown", shutdown);
  } catch (const std::exception&) {
    // The daemon exits while answering; a lost answer is fine.
  }
}

}  // namespace uvmshim::uvmctl
