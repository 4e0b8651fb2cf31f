# uvm-agent-static: the agent the initrd runs as PID 1 of a utility VM
# (issue #13: kernel + initrd <= 8 MiB, agent RSS in the guest <= 4 MiB; the
# RSS is mostly the binary's own file pages, so a smaller binary is the lever).
#
# It compiles the agent's sources a second time, only for this binary, so that
# the initrd's agent can differ from the process-mode agent and the host's
# libraries without an ODR clash (tests link the host's full-protobuf
# agent.pb.cc next to uvmshim_agent_core):
#   - agent.proto generated for protobuf-lite (protoc --cpp_out=lite:) and
#     gRPC's C++ API in lite mode (GRPC_USE_PROTO_LITE): the agent never uses
#     descriptors, reflection, text or JSON formats; libprotobuf-lite.a
#     instead of libprotobuf.a
#   - gRPC without TLS (grpc++_unsecure/grpc_unsecure: the channels are a
#     virtio port, vsock or a Unix socket, never TCP with TLS)
#   - -Os with one section per function/object and --gc-sections
#   - static-pie with the hardening flags of cmake/hardening.cmake, stripped,
#     its relocations packed (DT_RELR: UVMSHIM_STATIC_RELR_FLAG)
# Debian's static archives are used (the imported gRPC targets carry shared
# libraries, which -static cannot use). Measure with images/tools/
# link-map-by-component.py on a -Wl,-Map of this link (README: Figures).

# uvmshim_add_static_agent(): defines uvm-agent-static when every static
# archive exists; else the initrd gets the dynamic uvm-agent (images/).
function(uvmshim_add_static_agent)
  option(UVMSHIM_STATIC_AGENT "link the initrd's uvm-agent statically" ON)
  if(NOT UVMSHIM_STATIC_AGENT OR NOT EXISTS ${PROJECT_SOURCE_DIR}/guest-agent/main.cc)
    return()
  endif()
  set(archives)
  foreach(lib grpc++_unsecure grpc_unsecure gpr upb address_sorting cares re2 z protobuf-lite)
    string(MAKE_C_IDENTIFIER "UVMSHIM_STATIC_${lib}" var)
    find_library(${var} NAMES lib${lib}.a)
    if(NOT ${var})
      message(STATUS "uvm-agent-static: lib${lib}.a not found; the initrd gets the dynamic uvm-agent")
      return()
    endif()
    list(APPEND archives ${${var}})
  endforeach()
  file(GLOB absl_archives /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/libabsl_*.a)

  # agent.proto for protobuf-lite, in a directory of its own: "agent.pb.h"
  # must resolve to this copy, never to the host's full one.
  set(gen ${CMAKE_BINARY_DIR}/proto/gen-lite)
  file(MAKE_DIRECTORY ${gen})
  set(proto ${PROJECT_SOURCE_DIR}/proto/agent.proto)
  set(generated ${gen}/agent.pb.cc ${gen}/agent.pb.h ${gen}/agent.grpc.pb.cc ${gen}/agent.grpc.pb.h)
  add_custom_command(
    OUTPUT ${generated}
    COMMAND protobuf::protoc --proto_path=${PROJECT_SOURCE_DIR}/proto --cpp_out=lite:${gen}
            --grpc_out=${gen} --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin> ${proto}
    DEPENDS ${proto}
    COMMENT "protoc agent.proto (protobuf-lite, for the initrd's agent)")

  # The same sources as uvm-agent: main.cc + the VM side + the core + base.
  set(sources ${PROJECT_SOURCE_DIR}/guest-agent/main.cc)
  foreach(target uvmshim_agent_vm uvmshim_agent_core uvmshim_base)
    get_target_property(target_sources ${target} SOURCES)
    get_target_property(target_dir ${target} SOURCE_DIR)
    foreach(source ${target_sources})
      if(NOT IS_ABSOLUTE ${source})
        set(source ${target_dir}/${source})
      endif()
      list(APPEND sources ${source})
    endforeach()
  endforeach()

  # gRPC's plugin list cut to the server side (guest-agent/vm/grpc_server_plugins.cc:
  # no client channel, load balancers, resolvers, c-ares): it names gRPC
  # internals by symbol, so only for the release it was written against.
  option(UVMSHIM_STATIC_AGENT_SERVER_ONLY_GRPC "link only gRPC's server-side plugins into uvm-agent-static" ON)
  if(UVMSHIM_STATIC_AGENT_SERVER_ONLY_GRPC AND gRPC_VERSION VERSION_GREATER_EQUAL 1.51 AND gRPC_VERSION VERSION_LESS 1.52)
    list(APPEND sources ${PROJECT_SOURCE_DIR}/guest-agent/vm/grpc_server_plugins.cc)
  elseif(UVMSHIM_STATIC_AGENT_SERVER_ONLY_GRPC)
    message(STATUS "uvm-agent-static: gRPC ${gRPC_VERSION} is not 1.51; gRPC's full plugin list is linked")
  endif()

  # spdlog's and fmt's out-of-line parts (uvmshim_spdlog's one source), compiled
  # here too: this binary's flags, and no archive of the host build.
  add_executable(uvm-agent-static ${sources} ${gen}/agent.pb.cc ${gen}/agent.grpc.pb.cc
                 ${PROJECT_SOURCE_DIR}/common/spdlog_compiled/spdlog_fmt_compiled.cc)
  target_include_directories(uvm-agent-static BEFORE PRIVATE ${gen} ${PROJECT_SOURCE_DIR})
  target_compile_definitions(uvm-agent-static PRIVATE
    UVMSHIM_AGENT_VM_CHANNELS GRPC_USE_PROTO_LITE=1
    $<TARGET_PROPERTY:uvmshim_agent_core,COMPILE_DEFINITIONS>
    $<TARGET_PROPERTY:uvmshim_spdlog,INTERFACE_COMPILE_DEFINITIONS>)
  # Header-only libraries only: their include directories and definitions.
  target_link_libraries(uvm-agent-static PRIVATE CLI11::CLI11 nlohmann_json::nlohmann_json Threads::Threads)
  # -Os after the configuration's -O2 (later flags win). Our code is not hot in
  # the guest (syscalls and RPC framing), and its pages are the agent's RSS.
  target_compile_options(uvm-agent-static PRIVATE -Os -ffunction-sections -fdata-sections)
  # Warnings for our sources only (the generated code is not ours).
  set_source_files_properties(${sources} TARGET_DIRECTORY uvm-agent-static
                              PROPERTIES COMPILE_OPTIONS "${UVMSHIM_WARNINGS}")
  target_link_options(uvm-agent-static PRIVATE ${UVMSHIM_STATIC_LINK_FLAG} -pthread -Wl,--gc-sections -s
                   ${UVMSHIM_STATIC_RELR_FLAG})
  # CMake's PIE handling appends -pie (property ON) or -no-pie (OFF) after
  # -static-pie, and gcc then links a dynamic executable with an interpreter,
  # which an initrd does not have. Unset the property (no flag from CMake),
  # compile position-independent by hand, let UVMSHIM_STATIC_LINK_FLAG decide.
  set_property(TARGET uvm-agent-static PROPERTY POSITION_INDEPENDENT_CODE)
  if(UVMSHIM_STATIC_LINK_FLAG STREQUAL "-static-pie")
    target_compile_options(uvm-agent-static PRIVATE -fPIE)
  endif()
  target_link_libraries(uvm-agent-static PRIVATE
    -Wl,--start-group ${archives} ${absl_archives} ${UVMSHIM_SECCOMP_STATIC} -Wl,--end-group)
endfunction()
