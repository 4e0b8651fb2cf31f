/* syscall-probe: calls system calls a seccomp profile may deny and prints
 * "<name> <errno>" per call (0 = it succeeded). Static, so that it runs in
 * any container image (bind-mounted into busybox). Arguments are chosen so
 * that a call a filter lets through fails harmlessly (or succeeds without
 * lasting effect) instead of changing the container.
 *
 *   syscall-probe unshare-user keyctl mount kexec_load bpf perf_event_open ptrace-1 getpid
 *   syscall-probe open:/dev/kvm           open O_RDWR, errno
 *   syscall-probe raw:<nr>                syscall(nr, 0, 0, 0, 0, 0, 0)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long probe(const char* name) {
  errno = 0;
  long rc;
  if (strcmp(name, "unshare-user") == 0) {
    rc = syscall(SYS_unshare, CLONE_NEWUSER);
  } else if (strcmp(name, "keyctl") == 0) {
    rc = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0);
  } else if (strcmp(name, "mount") == 0) {
    rc = syscall(SYS_mount, "none", "/nonexistent-probe-target", "tmpfs", 0, NULL);
  } else if (strcmp(name, "kexec_load") == 0) {
    rc = syscall(SYS_kexec_load, 0, 0, NULL, 0);
  } else if (strcmp(name, "bpf") == 0) {
    rc = syscall(SYS_bpf, -1, NULL, 0);
  } else if (strcmp(name, "perf_event_open") == 0) {
    rc = syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
  } else if (strcmp(name, "ptrace-1") == 0) {
    rc = syscall(SYS_ptrace, 0x4206 /* PTRACE_SEIZE: no stop */, 1, NULL, NULL);
  } else if (strcmp(name, "getpid") == 0) {
    rc = syscall(SYS_getpid);
  } else if (strncmp(name, "open:", 5) == 0) {
    rc = open(name + 5, O_RDWR | O_CLOEXEC);
    if (rc >= 0) close((int)rc);
  } else if (strncmp(name, "raw:", 4) == 0) {
    rc = syscall(strtol(name + 4, NULL, 0), 0, 0, 0, 0, 0, 0);
  } else {
    fprintf(stderr, "syscall-probe: unknown probe %s\n", name);
    exit(2);
  }
  return rc < 0 ? errno : 0;
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    printf("%s %ld\n", argv[i], probe(argv[i]));
    fflush(stdout);
  }
  return 0;
}
