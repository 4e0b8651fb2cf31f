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

# A static PIE relocates itself at start-up (glibc's _dl_relocate_static_pie),
# before main: with RELA, one 24-byte entry per pointer the binary holds
# (vtables, string tables, GOT): 12,800 entries, 307 KB of the agent's 7.8 MB
# (47 KB of uvm-init's 1.15 MB), unpacked from the initrd and applied by a
# guest CPU that TCG emulates. -z pack-relative-relocs (DT_RELR, binutils
# 2.38, glibc 2.36) encodes the same relocations as bitmaps, a few KB.
# Checked by running one: a glibc without RELR support in its static start-up
# would leave the pointers unrelocated and crash.
# (Not when cross-compiling: the check has to run what it built.)
if(UVMSHIM_HAVE_STATIC_PIE AND NOT CMAKE_CROSSCOMPILING)
  include(CheckCXXSourceRuns)
  set(CMAKE_REQUIRED_LINK_OPTIONS -static-pie -Wl,-z,pack-relative-relocs)
  check_cxx_source_runs([[
    struct Base { virtual ~Base() = default; virtual int Value() const { return 1; } };
    struct Derived : Base { int Value() const override { return 2; } };
    static const char* const kNames[] = {"a", "bb", "ccc"};
    int main() {
      const Base* object = new Derived;
      const int value = object->Value();
      delete object;
      return value == 2 && kNames[2][2] == 'c' ? 0 : 1;
    }]] UVMSHIM_HAVE_STATIC_PIE_RELR)
  unset(CMAKE_REQUIRED_LINK_OPTIONS)
endif()
set(UVMSHIM_STATIC_RELR_FLAG)
if(UVMSHIM_HAVE_STATIC_PIE_RELR)
  set(UVMSHIM_STATIC_RELR_FLAG -Wl,-z,pack-relative-relocs)
endif()
