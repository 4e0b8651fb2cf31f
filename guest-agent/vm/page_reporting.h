// Free page reporting granularity (issue #13, host memory of an idle UVM).
//
// virtio-balloon's free page reporting hands the host the guest's free
// blocks of 2^order pages. Linux 6.1's driver sets the order to pageblock
// order (9: 2 MiB blocks) when it registers, overwriting the kernel parameter
// page_reporting.page_reporting_order, so the memory left free in smaller
// blocks after boot (~18 MiB of an idle Debian-kernel UVM) stayed resident in
// QEMU. The host asks for an order on the kernel command line; the agent
// writes it back to the module parameter once the balloon has registered
// (after the modules load). Kernels that honour the parameter are unchanged.
#pragma once

#include <filesystem>
#include <optional>
#include <string_view>

namespace uvmshim::agent::vm {

inline constexpr const char* kPageReportingOrderParam = "/sys/module/page_reporting/parameters/page_reporting_order";

// The value of page_reporting.page_reporting_order= on `cmdline` (the last
// one wins, as for the kernel); nullopt if absent or not a number 0..10
// (MAX_ORDER on x86: a larger order would report nothing).
std::optional<unsigned> PageReportingOrderFromCmdline(std::string_view cmdline);

// Writes the order asked for on `cmdline` to `param`. Returns false (and
// logs why) if the parameter was given but could not be written; true when
// written or when nothing was asked.
bool ApplyPageReportingOrder(std::string_view cmdline,
                             const std::filesystem::path& param = kPageReportingOrderParam);

}  // namespace uvmshim::agent::vm
