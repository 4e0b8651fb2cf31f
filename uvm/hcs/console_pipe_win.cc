#include "uvm/hcs/console_pipe_win.h"

#include <windows.h>

#include <spdlog/spdlog.h>

#include <fstream>
#include <thread>

#include "uvm/hcs/computecore_api.h"

namespace uvmshim::uvm::hcs {
namespace {

// Owns a Win32 HANDLE (INVALID_HANDLE_VALUE and NULL both mean none).
class UniqueHandle {
 public:
  UniqueHandle() = default;
  explicit UniqueHandle(HANDLE handle) : handle_(handle) {}
  ~UniqueHandle() { Reset(); }
  UniqueHandle(const UniqueHandle&) = delete;
  UniqueHandle& operator=(const UniqueHandle&) = delete;
  HANDLE get() const { return handle_; }
  bool valid() const { return handle_ != nullptr && handle_ != INVALID_HANDLE_VALUE; }
  void Reset(HANDLE handle = nullptr) {
    if (valid()) CloseHandle(handle_);
    handle_ = handle;
  }

 private:
  HANDLE handle_ = nullptr;
};

constexpr DWORD kRetryMs = 50;

class PipeCapture final : public ConsoleCapture {
 public:
  PipeCapture(const std::string& pipe, const std::filesystem::path& log,
              std::function<void()> on_first_byte)
      : pipe_(Utf8ToWide(pipe)),
        pipe_name_(pipe),
        log_(log),
        on_first_byte_(std::move(on_first_byte)),
        stop_(CreateEventW(nullptr, TRUE, FALSE, nullptr)) {
    if (!stop_.valid()) throw VmError("console capture: CreateEvent failed");
    thread_ = std::thread([this] { Run(); });
  }

  ~PipeCapture() override {
    SetEvent(stop_.get());
    thread_.join();
  }

 private:
  bool Stopping() const { return WaitForSingleObject(stop_.get(), 0) == WAIT_OBJECT_0; }

  // Opens the pipe once HCS has created it; invalid handle when stopping.
  UniqueHandle Connect() {
    while (!Stopping()) {
      HANDLE handle = CreateFileW(pipe_.c_str(), GENERIC_READ, 0, nullptr, OPEN_EXISTING,
                                  FILE_FLAG_OVERLAPPED, nullptr);
      if (handle != INVALID_HANDLE_VALUE) return UniqueHandle(handle);
      const DWORD error = GetLastError();
      if (error == ERROR_PIPE_BUSY) {
        WaitNamedPipeW(pipe_.c_str(), kRetryMs);
      } else if (error != ERROR_FILE_NOT_FOUND) {
        spdlog::warn("console {}: CreateFile failed: error {}", pipe_name_, error);
        WaitForSingleObject(stop_.get(), 10 * kRetryMs);
      } else {
        WaitForSingleObject(stop_.get(), kRetryMs);
      }
    }
    return UniqueHandle();
  }

  void Run() {
    UniqueHandle pipe = Connect();
    if (!pipe.valid()) return;
    std::ofstream out(log_, std::ios::binary | std::ios::app);
    if (!out) {
      spdlog::warn("console {}: cannot open log {}", pipe_name_, log_.string());
      return;
    }
    UniqueHandle read_done(CreateEventW(nullptr, TRUE, FALSE, nullptr));
    if (!read_done.valid()) return;
    char buf[4096];
    bool first = true;
    for (;;) {
      OVERLAPPED overlapped{};
      overlapped.hEvent = read_done.get();
      ResetEvent(read_done.get());
      DWORD got = 0;
      if (!ReadFile(pipe.get(), buf, sizeof buf, nullptr, &overlapped) &&
          GetLastError() != ERROR_IO_PENDING) {
        break;  // ERROR_BROKEN_PIPE: the VM is gone
      }
      HANDLE waits[2] = {read_done.get(), stop_.get()};
      const DWORD which = WaitForMultipleObjects(2, waits, FALSE, INFINITE);
      if (which != WAIT_OBJECT_0) {
        // Stopping: cancel, then wait for the read to finish - `buf` and
        // `overlapped` must outlive it.
        CancelIoEx(pipe.get(), &overlapped);
        GetOverlappedResult(pipe.get(), &overlapped, &got, TRUE);
        if (got > 0) out.write(buf, got);
        break;
      }
      if (!GetOverlappedResult(pipe.get(), &overlapped, &got, FALSE)) break;
      if (got == 0) continue;
      out.write(buf, got);
      out.flush();
      if (first) {
        first = false;
        if (on_first_byte_) on_first_byte_();
      }
    }
    out.flush();
  }

  const std::wstring pipe_;
  const std::string pipe_name_;
  const std::filesystem::path log_;
  const std::function<void()> on_first_byte_;
  UniqueHandle stop_;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<ConsoleCapture> StartConsolePipeCapture(const std::string& pipe,
                                                        const std::filesystem::path& log,
                                                        std::function<void()> on_first_byte) {
  return std::make_unique<PipeCapture>(pipe, log, std::move(on_first_byte));
}

}  // namespace uvmshim::uvm::hcs
