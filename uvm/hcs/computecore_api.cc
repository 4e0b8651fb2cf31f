#include "uvm/hcs/computecore_api.h"

#include <windows.h>
#include <computecore.h>

#include <spdlog/spdlog.h>

namespace uvmshim::uvm::hcs {
namespace {

std::string Win32ErrorText(DWORD error) {
  wchar_t buf[512] = {};
  DWORD len = FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr,
                             error, 0, buf, static_cast<DWORD>(std::size(buf)), nullptr);
  std::wstring text(buf, len);
  while (!text.empty() && (text.back() == L'\n' || text.back() == L'\r' || text.back() == L'.')) {
    text.pop_back();
  }
  std::string out;
  try {
    out = WideToUtf8(text);
  } catch (const std::exception&) {
  }
  if (out.empty()) out = "Win32 error";
  return out + " (" + std::to_string(error) + ")";
}

// A PWSTR owned by us after an HCS call; released with LocalFree (see the
// header for why).
class HcsString {
 public:
  HcsString() = default;
  ~HcsString() {
    if (text_ != nullptr) LocalFree(text_);
  }
  HcsString(const HcsString&) = delete;
  HcsString& operator=(const HcsString&) = delete;
  PWSTR* out() { return &text_; }
  std::string Utf8() const { return text_ == nullptr ? std::string() : WideToUtf8(text_); }

 private:
  PWSTR text_ = nullptr;
};

HCS_OPERATION AsOperation(HcsHandle handle) { return static_cast<HCS_OPERATION>(handle); }
HCS_SYSTEM AsSystem(HcsHandle handle) { return static_cast<HCS_SYSTEM>(handle); }

// nullptr for "", as the optional PCWSTR parameters expect.
const wchar_t* OptionalString(const std::wstring& text) {
  return text.empty() ? nullptr : text.c_str();
}

void CALLBACK EventTrampoline(HCS_EVENT* event, void* context) {
  // No exception may cross back into computecore.dll.
  try {
    if (event == nullptr || context == nullptr) return;
    std::string data = event->EventData != nullptr ? WideToUtf8(event->EventData) : std::string();
    static_cast<HcsEventSink*>(context)->OnHcsEvent(static_cast<std::uint32_t>(event->Type), data);
  } catch (const std::exception& e) {
    spdlog::error("HCS event callback failed: {}", e.what());
  } catch (...) {
    spdlog::error("HCS event callback failed");
  }
}

}  // namespace

std::wstring Utf8ToWide(std::string_view text) {
  if (text.empty()) return {};
  const int len = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, text.data(),
                                      static_cast<int>(text.size()), nullptr, 0);
  if (len <= 0) throw VmError("UTF-8 to UTF-16: invalid UTF-8 in \"" + std::string(text.substr(0, 80)) + "\"");
  std::wstring out(static_cast<std::size_t>(len), L'\0');
  MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, text.data(), static_cast<int>(text.size()),
                      out.data(), len);
  return out;
}

std::string WideToUtf8(std::wstring_view text) {
  if (text.empty()) return {};
  const int len = WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, text.data(),
                                      static_cast<int>(text.size()), nullptr, 0, nullptr, nullptr);
  if (len <= 0) throw VmError("UTF-16 to UTF-8: invalid UTF-16 input");
  std::string out(static_cast<std::size_t>(len), '\0');
  WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, text.data(), static_cast<int>(text.size()),
                      out.data(), len, nullptr, nullptr);
  return out;
}

// ComputeCore.dll and the entry points we use, typed from computecore.h.
struct ComputeCoreApi::Library {
  HMODULE module = nullptr;
  decltype(&::HcsCreateOperation) create_operation = nullptr;
  decltype(&::HcsCloseOperation) close_operation = nullptr;
  decltype(&::HcsWaitForOperationResult) wait_for_operation_result = nullptr;
  decltype(&::HcsCancelOperation) cancel_operation = nullptr;
  decltype(&::HcsCreateComputeSystem) create_compute_system = nullptr;
  decltype(&::HcsStartComputeSystem) start_compute_system = nullptr;
  decltype(&::HcsShutDownComputeSystem) shut_down_compute_system = nullptr;
  decltype(&::HcsTerminateComputeSystem) terminate_compute_system = nullptr;
  decltype(&::HcsGetComputeSystemProperties) get_compute_system_properties = nullptr;
  decltype(&::HcsModifyComputeSystem) modify_compute_system = nullptr;
  decltype(&::HcsSetComputeSystemCallback) set_compute_system_callback = nullptr;
  decltype(&::HcsCloseComputeSystem) close_compute_system = nullptr;
  decltype(&::HcsGrantVmAccess) grant_vm_access = nullptr;

  Library() {
    module = LoadLibraryExW(L"computecore.dll", nullptr, LOAD_LIBRARY_SEARCH_SYSTEM32);
    if (module == nullptr) {
      throw VmError("cannot load ComputeCore.dll (the Host Compute Service needs Windows 10 "
                    "1809+/Server 2019+ with the Hyper-V and Containers features): " +
                    Win32ErrorText(GetLastError()));
    }
    try {
      Resolve(create_operation, "HcsCreateOperation");
      Resolve(close_operation, "HcsCloseOperation");
      Resolve(wait_for_operation_result, "HcsWaitForOperationResult");
      Resolve(cancel_operation, "HcsCancelOperation");
      Resolve(create_compute_system, "HcsCreateComputeSystem");
      Resolve(start_compute_system, "HcsStartComputeSystem");
      Resolve(shut_down_compute_system, "HcsShutDownComputeSystem");
      Resolve(terminate_compute_system, "HcsTerminateComputeSystem");
      Resolve(get_compute_system_properties, "HcsGetComputeSystemProperties");
      Resolve(modify_compute_system, "HcsModifyComputeSystem");
      Resolve(set_compute_system_callback, "HcsSetComputeSystemCallback");
      Resolve(close_compute_system, "HcsCloseComputeSystem");
      Resolve(grant_vm_access, "HcsGrantVmAccess");
    } catch (...) {
      FreeLibrary(module);
      throw;
    }
  }
  ~Library() { FreeLibrary(module); }
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;

  template <typename Fn>
  void Resolve(Fn& fn, const char* name) {
    FARPROC proc = GetProcAddress(module, name);
    if (proc == nullptr) {
      throw VmError(std::string("ComputeCore.dll has no ") + name + ": " +
                    Win32ErrorText(GetLastError()));
    }
    fn = reinterpret_cast<Fn>(reinterpret_cast<void (*)()>(proc));
  }
};

ComputeCoreApi::ComputeCoreApi() : lib_(std::make_unique<Library>()) {}
ComputeCoreApi::~ComputeCoreApi() = default;

HcsHandle ComputeCoreApi::CreateOperation() {
  return lib_->create_operation(nullptr, nullptr);
}

void ComputeCoreApi::CloseOperation(HcsHandle operation) {
  lib_->close_operation(AsOperation(operation));
}

HcsOperationResult ComputeCoreApi::WaitForOperationResult(HcsHandle operation,
                                                          std::uint32_t timeout_ms) {
  HcsString document;
  const HRESULT hr = lib_->wait_for_operation_result(AsOperation(operation), timeout_ms, document.out());
  return {static_cast<HResult>(hr), document.Utf8()};
}

HResult ComputeCoreApi::CancelOperation(HcsHandle operation) {
  return static_cast<HResult>(lib_->cancel_operation(AsOperation(operation)));
}

HResult ComputeCoreApi::CreateComputeSystem(const std::string& id, const std::string& configuration,
                                            HcsHandle operation, HcsHandle* system) {
  const std::wstring wide_id = Utf8ToWide(id);
  const std::wstring wide_configuration = Utf8ToWide(configuration);
  HCS_SYSTEM handle = nullptr;
  const HRESULT hr = lib_->create_compute_system(wide_id.c_str(), wide_configuration.c_str(),
                                                 AsOperation(operation), nullptr, &handle);
  *system = handle;
  return static_cast<HResult>(hr);
}

HResult ComputeCoreApi::StartComputeSystem(HcsHandle system, HcsHandle operation,
                                           const std::string& options) {
  const std::wstring wide = Utf8ToWide(options);
  return static_cast<HResult>(
      lib_->start_compute_system(AsSystem(system), AsOperation(operation), OptionalString(wide)));
}

HResult ComputeCoreApi::ShutDownComputeSystem(HcsHandle system, HcsHandle operation,
                                              const std::string& options) {
  const std::wstring wide = Utf8ToWide(options);
  return static_cast<HResult>(lib_->shut_down_compute_system(
      AsSystem(system), AsOperation(operation), OptionalString(wide)));
}

HResult ComputeCoreApi::TerminateComputeSystem(HcsHandle system, HcsHandle operation,
                                               const std::string& options) {
  const std::wstring wide = Utf8ToWide(options);
  return static_cast<HResult>(lib_->terminate_compute_system(
      AsSystem(system), AsOperation(operation), OptionalString(wide)));
}

HResult ComputeCoreApi::GetComputeSystemProperties(HcsHandle system, HcsHandle operation,
                                                   const std::string& property_query) {
  const std::wstring wide = Utf8ToWide(property_query);
  return static_cast<HResult>(lib_->get_compute_system_properties(
      AsSystem(system), AsOperation(operation), OptionalString(wide)));
}

HResult ComputeCoreApi::ModifyComputeSystem(HcsHandle system, HcsHandle operation,
                                            const std::string& configuration) {
  const std::wstring wide = Utf8ToWide(configuration);
  return static_cast<HResult>(lib_->modify_compute_system(AsSystem(system), AsOperation(operation),
                                                          wide.c_str(), nullptr));
}

HResult ComputeCoreApi::SetComputeSystemCallback(HcsHandle system, HcsEventSink* sink) {
  return static_cast<HResult>(lib_->set_compute_system_callback(
      AsSystem(system), HcsEventOptionNone, sink, sink != nullptr ? &EventTrampoline : nullptr));
}

void ComputeCoreApi::CloseComputeSystem(HcsHandle system) {
  lib_->close_compute_system(AsSystem(system));
}

HResult ComputeCoreApi::GrantVmAccess(const std::string& vm_id, const std::string& file_path) {
  const std::wstring wide_id = Utf8ToWide(vm_id);
  const std::wstring wide_path = Utf8ToWide(file_path);
  return static_cast<HResult>(lib_->grant_vm_access(wide_id.c_str(), wide_path.c_str()));
}

}  // namespace uvmshim::uvm::hcs
