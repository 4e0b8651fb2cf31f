# Cross toolchain: Linux -> x86_64 Windows with Debian's mingw-w64
# (g++-mingw-w64-x86-64-posix, mingw-w64-x86-64-dev 10: computecore.h,
# hvsocket.h, libcomputecore.a, libws2_32.a).
#
#   cmake -S . -B build-windows -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake
#
# The "-posix" compiler variant is used because it implements std::thread and
# std::mutex (on winpthreads); the "-win32" variant does not in GCC 12.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(UVMSHIM_MINGW_TRIPLE x86_64-w64-mingw32)
find_program(CMAKE_C_COMPILER NAMES ${UVMSHIM_MINGW_TRIPLE}-gcc-posix REQUIRED)
find_program(CMAKE_CXX_COMPILER NAMES ${UVMSHIM_MINGW_TRIPLE}-g++-posix REQUIRED)
find_program(CMAKE_RC_COMPILER NAMES ${UVMSHIM_MINGW_TRIPLE}-windres)
find_program(CMAKE_AR NAMES ${UVMSHIM_MINGW_TRIPLE}-ar)
find_program(CMAKE_RANLIB NAMES ${UVMSHIM_MINGW_TRIPLE}-ranlib)

# Look for headers and libraries only in the mingw sysroot, never in the
# host's /usr/include or /usr/lib (those are Linux builds). Programs (protoc,
# wine) still come from the host.
set(CMAKE_FIND_ROOT_PATH /usr/${UVMSHIM_MINGW_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Windows 10 1809 / Server 2019 is the oldest release with ComputeCore.dll.
set(UVMSHIM_MINGW_DEFINES "-D_WIN32_WINNT=0x0A00 -DWINVER=0x0A00 -DWIN32_LEAN_AND_MEAN -DNOMINMAX -DUNICODE -D_UNICODE")
set(CMAKE_C_FLAGS_INIT "${UVMSHIM_MINGW_DEFINES}")
set(CMAKE_CXX_FLAGS_INIT "${UVMSHIM_MINGW_DEFINES}")

# Fully static executables: no libstdc++-6.dll / libgcc_s / libwinpthread-1.dll
# to ship next to the .exe, so wine (and a bare Windows host) runs it as is.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static -static-libgcc -static-libstdc++")
