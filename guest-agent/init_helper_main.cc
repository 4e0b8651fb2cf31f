// uvm-init: the container init helper alone (container_init.h), started by
// uvm-agent for each container (init_helper_exe.h). Not meant to be run by hand.
#include <cstdio>
#include <string_view>

#include "guest-agent/container_init.h"

int main(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == uvmshim::agent::kInitHelperArg)
    return uvmshim::agent::RunContainerInitHelper();
  std::fprintf(stderr, "uvm-init: the container init helper; uvm-agent starts it\n");
  return 2;
}
