// Copies a UVM's serial console (COM1, which HCS serves as a named pipe)
// into a log file. Windows only.
#pragma once

#ifdef _WIN32

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "uvm/hcs/hcs_vm.h"

namespace uvmshim::uvm::hcs {

// Connects to `pipe` (retrying until it exists or the capture is destroyed),
// appends everything read to `log`, calls `on_first_byte` once. Ends when
// the pipe breaks (VM gone) or on destruction, which cancels a pending read
// and waits for it to finish before returning.
std::unique_ptr<ConsoleCapture> StartConsolePipeCapture(const std::string& pipe,
                                                        const std::filesystem::path& log,
                                                        std::function<void()> on_first_byte);

}  // namespace uvmshim::uvm::hcs

#endif  // _WIN32
