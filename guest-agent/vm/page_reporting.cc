#include "guest-agent/vm/page_reporting.h"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>

#include "common/unique_fd.h"
#include "guest-agent/vm/kernel_cmdline.h"

namespace uvmshim::agent::vm {
namespace {

constexpr std::string_view kOrderKey = "page_reporting.page_reporting_order=";
constexpr unsigned kMaxReportingOrder = 10;

}  // namespace

std::optional<unsigned> PageReportingOrderFromCmdline(std::string_view cmdline) {
  std::optional<unsigned> order;
  for (const std::string& token : SplitKernelCmdline(cmdline)) {
    if (!token.starts_with(kOrderKey)) continue;
    const std::string_view value = std::string_view(token).substr(kOrderKey.size());
    unsigned parsed = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
    if (ec != std::errc() || end != value.data() + value.size() || value.empty() || parsed > kMaxReportingOrder) {
      order.reset();  // as the kernel: a bad value leaves the default
      continue;
    }
    order = parsed;
  }
  return order;
}

bool ApplyPageReportingOrder(std::string_view cmdline, const std::filesystem::path& param) {
  const auto order = PageReportingOrderFromCmdline(cmdline);
  if (!order) return true;
  const std::string value = std::to_string(*order) + "\n";
  UniqueFd fd(::open(param.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd || ::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    spdlog::warn("event=page_reporting_order_not_set order={} param={} error=\"{}\"", *order, param.string(),
                 std::strerror(errno));
    return false;
  }
  spdlog::info("event=page_reporting_order_set order={}", *order);
  return true;
}

}  // namespace uvmshim::agent::vm
