// Agent logging: spdlog to stderr, one line per event in key=value form:
//   time=2026-11-27T10:00:00.123456Z level=info event=container_created id=c1 pid=42
// Call sites log "event=<name> key={} ...".
#pragma once

#include <string>
#include <string_view>

namespace uvmshim::agent {

// Level names as spdlog spells them: trace debug info warn error critical off.
// Throws std::invalid_argument for an unknown level.
void SetupLogging(std::string_view level);

// Quotes a value for a key=value log line when it contains spaces, quotes or
// control characters.
std::string LogQuote(std::string_view value);

}  // namespace uvmshim::agent
