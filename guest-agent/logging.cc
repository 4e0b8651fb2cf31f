#include "guest-agent/logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <stdexcept>

namespace uvmshim::agent {

void SetupLogging(std::string_view level) {
  auto parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off")
    throw std::invalid_argument("unknown log level \"" + std::string(level) +
                                "\" (trace, debug, info, warn, error, critical, off)");
  spdlog::drop("uvm-agent");
  auto logger = spdlog::stderr_logger_mt("uvm-agent");
  logger->set_pattern("time=%Y-%m-%dT%H:%M:%S.%fZ level=%l %v", spdlog::pattern_time_type::utc);
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
}

std::string LogQuote(std::string_view value) {
  bool needs_quotes = value.empty();
  for (char c : value)
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) needs_quotes = true;
  if (!needs_quotes) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += '?';
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

}  // namespace uvmshim::agent
