// The bare-floor /init: the least a guest can do with the same kernel,
// modules and QEMU command line as the real utility VM. It loads the modules
// the agent loads (same load-order file), writes a marker line to the serial
// console and powers off. Boot benchmarks report the agent's readiness as a
// ratio against the time to this marker.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MARKER "UVMSHIM-BARE-FLOOR-READY\n"

static void say(const char* text) {
  ssize_t ignored = write(2, text, strlen(text));
  (void)ignored;
}

static void load_modules(void) {
  FILE* list = fopen("/lib/modules/load-order", "re");
  if (list == NULL) {
    say("bare-init: no /lib/modules/load-order\n");
    return;
  }
  char line[512];
  while (fgets(line, sizeof line, list) != NULL) {
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] == '\0' || line[0] == '#') continue;
    int fd = open(line, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST)) {
      char msg[640];
      snprintf(msg, sizeof msg, "bare-init: load %s: %s\n", line, strerror(errno));
      say(msg);
    }
    if (fd >= 0) close(fd);
  }
  fclose(list);
}

int main(void) {
  load_modules();
  // The console is the first serial port (console=ttyS0); the kernel gave
  // PID 1 /dev/console as fds 0-2.
  say(MARKER);
  sync();
  reboot(RB_POWER_OFF);
  return 0;
}
