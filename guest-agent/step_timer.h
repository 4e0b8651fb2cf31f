// Durations of the steps of one create, start or exit, logged as one
// "event=... step=ms ..." line: under TCG the guest's work is 10-60x what it
// is natively, and these lines show which step pays (issue #15,
// tests/bench/pool_breakdown). Usable after fork in the init helper: it
// allocates only in Mark (the helper is a normal process until its exec).
#pragma once

#include <time.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <exception>

namespace uvmshim::agent {

// CLOCK_MONOTONIC in ns: one clock for the agent and its init helper.
inline std::int64_t MonotonicNs() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

inline std::string FormatMs(std::int64_t ns) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", static_cast<double>(ns) / 1e6);
  return text;
}

class StepTimer {
 public:
  StepTimer() : start_(MonotonicNs()), last_(start_) {}
  explicit StepTimer(std::int64_t start_ns) : start_(start_ns), last_(start_ns) {}

  // Records the time since the previous mark (or the start) as `step`.
  void Mark(std::string_view step) {
    const std::int64_t now = MonotonicNs();
    Append(step, now - last_);
    last_ = now;
  }
  // Adds a step measured elsewhere ("name=value" already formatted).
  void AddText(std::string_view text) {
    if (text.empty()) return;
    if (!text_.empty()) text_ += ' ';
    text_ += text;
  }
  std::int64_t start_ns() const { return start_; }
  std::int64_t TotalNs() const { return MonotonicNs() - start_; }
  // "step=ms step=ms ..."
  const std::string& text() const { return text_; }

 private:
  void Append(std::string_view step, std::int64_t ns) {
    if (!text_.empty()) text_ += ' ';
    text_ += step;
    text_ += '=';
    text_ += FormatMs(ns);
  }

  std::int64_t start_;
  std::int64_t last_;
  std::string text_;
};

// The init helper's kReady text is "helper_start_ns=N step=ms ...": N
// against the agent's spawn gives the helper's exec and start-up (static
// initialisers included); its steps are added as "helper.<step>=ms".
inline void AddHelperSteps(const std::string& text, std::int64_t spawned_ns, StepTimer& steps) {
  constexpr std::string_view kStart = "helper_start_ns=";
  if (text.compare(0, kStart.size(), kStart) != 0) return;
  const size_t end = text.find(' ');
  try {
    const std::int64_t helper_start = std::stoll(text.substr(kStart.size(), end - kStart.size()));
    steps.AddText("helper.exec_to_main=" + FormatMs(helper_start - spawned_ns));
  } catch (const std::exception&) {
    return;
  }
  if (end == std::string::npos) return;
  std::string rest;
  for (size_t at = end + 1; at < text.size();) {
    size_t next = text.find(' ', at);
    if (next == std::string::npos) next = text.size();
    rest += (rest.empty() ? "helper." : " helper.") + text.substr(at, next - at);
    at = next + 1;
  }
  steps.AddText(rest);
}

}  // namespace uvmshim::agent
