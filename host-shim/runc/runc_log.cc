#include "runc/runc_log.h"

#include <nlohmann/json.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <mutex>

namespace uvmshim::runc {
namespace {

// One JSON object per line, as runc writes with --log-format json.
class JsonFileSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit JsonFileSink(const std::string& path) : file_(std::fopen(path.c_str(), "ae")) {}
  ~JsonFileSink() override {
    if (file_) std::fclose(file_);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (!file_) return;
    const auto level = spdlog::level::to_string_view(msg.level);
    const std::time_t seconds = std::chrono::system_clock::to_time_t(msg.time);
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    char time[32];
    std::strftime(time, sizeof time, "%Y-%m-%dT%H:%M:%SZ", &utc);
    nlohmann::json line = {{"level", std::string(level.data(), level.size())},
                           {"msg", std::string(msg.payload.data(), msg.payload.size())},
                           {"time", time}};
    const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::fwrite(text.data(), 1, text.size(), file_);
  }
  void flush_() override {
    if (file_) std::fflush(file_);
  }

 private:
  std::FILE* file_;
};

}  // namespace

void SetUpLogging(const GlobalOptions& global, bool to_stderr) {
  std::vector<spdlog::sink_ptr> sinks;
  if (!global.log_file.empty()) {
    if (global.log_format == "json")
      sinks.push_back(std::make_shared<JsonFileSink>(global.log_file));
    else
      sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(global.log_file));
  }
  if (to_stderr && global.log_file.empty()) sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (sinks.empty()) sinks.push_back(std::make_shared<spdlog::sinks::null_sink_mt>());
  auto logger = std::make_shared<spdlog::logger>("uvm-runc", sinks.begin(), sinks.end());
  logger->set_level(global.debug ? spdlog::level::debug : spdlog::level::info);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace uvmshim::runc
