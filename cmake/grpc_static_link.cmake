# uvmshim_link_grpc_statically(TARGET ARCHIVES...): links an executable against
# Debian's static gRPC (without TLS), protobuf and abseil archives instead of
# the shared libraries the imported gRPC/protobuf targets carry, and keeps it a
# PIE with full RELRO (cmake/hardening.cmake). ARCHIVES are our own static
# libraries (targets) the executable needs, in any order (one link group).
#
# Why (issue #13, shim memory): a process dirties every page of a shared
# library the loader relocates, so each shim paid ~1.1 MiB of private copies of
# libgrpc/libcrypto/libprotobuf/abseil data (vtables, tables of pointers) that
# ten shims cannot share. Linked from archives, only the objects used come in,
# their relocated data is packed in one place, the text is shared by every
# shim through the page cache, and libssl/libcrypto go (no TLS is used).
# spdlog and fmt have no static archives in Debian: code that logs needs
# uvmshim_spdlog (common/CMakeLists.txt) among ARCHIVES, which compiles their
# out-of-line parts. libstdc++ and
# libgcc are linked statically too: glibc is the only shared library left.
# Used for the shim and the agent (uvm-agent: the host agent of process
# isolation), both started once per sandbox.
#
# Sets UVMSHIM_GRPC_STATIC_FOUND in the caller's scope (OFF: a library is
# missing or a sanitizer build; the target is left alone and the caller links
# it the usual way, against the shared libraries).
function(uvmshim_link_grpc_statically target)
  # Sanitizer builds keep the shared libraries: their runtimes replace
  # operator new/delete, which a static libstdc++ would also bring.
  if(UVMSHIM_SANITIZE)
    set(UVMSHIM_GRPC_STATIC_FOUND OFF PARENT_SCOPE)
    return()
  endif()
  set(archives)
  foreach(lib grpc++_unsecure grpc_unsecure gpr upb address_sorting cares re2 z protobuf)
    find_library(UVMSHIM_GRPC_STATIC_${lib} NAMES lib${lib}.a)
    if(NOT UVMSHIM_GRPC_STATIC_${lib})
      message(STATUS "${target}: lib${lib}.a not found; linking gRPC's shared libraries")
      set(UVMSHIM_GRPC_STATIC_FOUND OFF PARENT_SCOPE)
      return()
    endif()
    list(APPEND archives ${UVMSHIM_GRPC_STATIC_${lib}})
  endforeach()
  file(GLOB absl_archives /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/libabsl_*.a)
  set(ours)
  foreach(lib ${ARGN})
    list(APPEND ours $<TARGET_FILE:${lib}>)
    add_dependencies(${target} ${lib})
  endforeach()
  target_link_libraries(${target} PRIVATE
    -Wl,--start-group ${ours} ${archives} ${absl_archives} -Wl,--end-group
    Threads::Threads ${CMAKE_DL_LIBS} m rt)
  target_link_options(${target} PRIVATE -static-libstdc++ -static-libgcc -Wl,--gc-sections -Wl,--as-needed)
  set(UVMSHIM_GRPC_STATIC_FOUND ON PARENT_SCOPE)
endfunction()
