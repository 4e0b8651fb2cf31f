// A pooled utility VM runs one throw-away container through the agent's own
// service before it reports ready (kernel parameter uvm.warmup=1, set by the
// pool keeper only): under TCG the first run of the create/start/exit path
// pays QEMU's code translation of the agent's and the kernel's code (and the
// guest's cold caches), a cost every claimer would otherwise meet on its
// critical path (issue #15). A cold-booted VM never does this: its first
// container is the only one that would profit, and it would wait for it.
#pragma once

namespace uvmshim::agent {
class AgentService;
}

namespace uvmshim::agent::vm {

// Creates, starts, waits for and deletes a container running /bin/true
// (the image's busybox, bind-mounted read-only) on a private tmpfs under
// /run, then unmounts it: nothing stays. Failures are logged and skipped (a
// VM that could not warm up serves cold). Before any claim, so no sandbox's
// data is ever near it. Returns whether the whole run succeeded.
bool WarmUpContainerPath(AgentService& service);

}  // namespace uvmshim::agent::vm
