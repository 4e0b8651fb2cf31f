// `uvmctl update ID --memory-limit BYTES ...`: new resource limits for a
// running container, through its shim's Update (what CRI's
// UpdateContainerResources and `runc update` do).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace uvmshim::uvmctl {

struct UpdateOptions {
  std::string id;
  std::optional<std::int64_t> memory_limit;  // bytes, -1 = unlimited
  std::optional<std::int64_t> cpu_quota;     // microseconds per period, -1 = unlimited
  std::optional<std::uint64_t> cpu_period;   // microseconds
  std::optional<std::int64_t> pids_limit;    // -1 = unlimited
};

CLI::App* AddUpdateCommand(CLI::App& app, UpdateOptions& options);
int RunUpdate(const UpdateOptions& options);

}  // namespace uvmshim::uvmctl
