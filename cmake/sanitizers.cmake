# Sanitizer and fuzzing builds (issue #12, items 6 and 7).
#
#   -DUVMSHIM_SANITIZE=address,undefined   ASan + UBSan for every C++ target
#   -DUVMSHIM_SANITIZE=thread              TSan (CI builds only the shim and ttrpc tests)
#   -DUVMSHIM_FUZZ=ON                      libFuzzer targets in tests/fuzz (clang only);
#                                          implies address,undefined when UVMSHIM_SANITIZE is empty
#
# Only C++ is instrumented: the few C programs (syscall-probe, the pause
# image) are linked -static, which the sanitizer runtimes do not support.
# The initrd's static agent is off in these builds for the same reason (the
# boot image then takes the dynamic uvm-agent); hyperv tests belong to the
# normal build.
set(UVMSHIM_SANITIZE "" CACHE STRING "sanitizers for every C++ target: address,undefined | thread | empty")
option(UVMSHIM_FUZZ "Build libFuzzer targets (requires clang)" OFF)

if(UVMSHIM_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "UVMSHIM_FUZZ needs clang: -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang")
  endif()
  if(NOT UVMSHIM_SANITIZE)
    set(UVMSHIM_SANITIZE "address,undefined" CACHE STRING "" FORCE)
  endif()
endif()

if(UVMSHIM_SANITIZE)
  set(_san -fsanitize=${UVMSHIM_SANITIZE})
  # Stop at the first report: a sanitizer finding fails its test.
  # Debug info comes from the build type (.ci/sanitize: line tables only,
  # which is all a sanitizer's stack trace needs, at a fraction of -g's cost).
  set(_san_compile ${_san} -fno-sanitize-recover=all -fno-omit-frame-pointer)
  if(UVMSHIM_FUZZ)
    # Coverage feedback for libFuzzer in every library the fuzzers link;
    # main() comes from libFuzzer only in the fuzzer executables.
    list(APPEND _san_compile -fsanitize=fuzzer-no-link)
  endif()
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${_san_compile}>")
  add_link_options("$<$<LINK_LANGUAGE:CXX>:${_san}>")
  set(UVMSHIM_STATIC_AGENT OFF CACHE BOOL "link the initrd's uvm-agent statically" FORCE)
  message(STATUS "uvmshim: sanitizers ${UVMSHIM_SANITIZE}")
endif()
