// The golden HCS documents (tests/hcs/golden/*.json), embedded at configure
// time so the Windows test exe needs no access to the source tree.
#pragma once

#include <optional>
#include <string>

namespace uvmshim::uvm::hcs::testing {

// nullopt when tests/hcs/golden/<name>.json did not exist at configure time.
std::optional<std::string> GoldenDocument(const std::string& name);

}  // namespace uvmshim::uvm::hcs::testing
