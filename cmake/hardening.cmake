# Hardened code generation for every Linux binary we build (issue #8):
#   PIE                          ASLR for the executable itself
#   -Wl,-z,relro,-z,now          full RELRO: the GOT is read-only after start-up
#   -fstack-protector-strong     canaries on frames with arrays or address-taken locals
#   -D_FORTIFY_SOURCE=2          checked memcpy/read/... (needs optimisation, so
#                                not in Debug builds)
#   -fstack-clash-protection, -fcf-protection   cheap, as Debian's and Fedora's defaults
# tests/host/hardening_check.sh verifies the result with readelf.
include(CheckPIESupported)
check_pie_supported(LANGUAGES C CXX)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)

add_compile_options(-fstack-protector-strong -fstack-clash-protection)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|i.86")
  add_compile_options(-fcf-protection)
endif()
# -U first: some toolchains predefine another level.
add_compile_options("$<$<NOT:$<CONFIG:Debug>>:-U_FORTIFY_SOURCE;-D_FORTIFY_SOURCE=2>")
add_link_options(-Wl,-z,relro,-z,now)

# The initrd's static agent: static-pie keeps ASLR for a static binary (glibc's
# rcrt1.o). Debian builds its static archives (gRPC, protobuf, abseil) with
# its default -fPIE, so they link into a static PIE. Plain -static otherwise.
include(CheckCXXSourceCompiles)
set(CMAKE_REQUIRED_LINK_OPTIONS -static-pie)
check_cxx_source_compiles("int main() { return 0; }" UVMSHIM_HAVE_STATIC_PIE)
unset(CMAKE_REQUIRED_LINK_OPTIONS)
if(UVMSHIM_HAVE_STATIC_PIE)
  set(UVMSHIM_STATIC_LINK_FLAG -static-pie)
else()
  set(UVMSHIM_STATIC_LINK_FLAG -static)
endif()
