// With kernel parameter uvm.warmup=1 (opt-in: a pool's [uvm]
// kernel_cmdline_extra) the agent runs one throw-away container through its
// own service before it reports ready, so that the claimer's container would
// not pay the first run of the create/start/exit path (QEMU's translation of
// that code under TCG, the guest's cold caches). Measured (issue #15,
// README Warm pool): the claimed VM's QEMU CPU time per `ctr run --rm` was
// the same with and without it (780-820 vs 780-860 ms), so it is off by
// default; kept to re-measure where the balance may differ (KVM, other
// images). Meant for pooled VMs only: a cold VM's first container would wait
// for it.
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
