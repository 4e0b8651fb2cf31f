/* The pod sandbox ("pause") process of the CRI suite's offline sandbox image: holds the pod's
 * namespaces, sleeps in pause(), reaps children (it is PID 1 of a shared PID namespace), exits 0
 * on SIGTERM or SIGINT. Linked statically so the image is this file and nothing else. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig) { (void)sig; stop_requested = 1; }

static void on_child(int sig) {
  (void)sig;
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

int main(void) {
  struct sigaction stop, child;
  memset(&stop, 0, sizeof stop);
  stop.sa_handler = on_stop;
  memset(&child, 0, sizeof child);
  child.sa_handler = on_child;
  child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  if (sigaction(SIGTERM, &stop, NULL) != 0 || sigaction(SIGINT, &stop, NULL) != 0 ||
      sigaction(SIGCHLD, &child, NULL) != 0) {
    return 1;
  }
  while (!stop_requested) pause();
  return 0;
}
