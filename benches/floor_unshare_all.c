/*
 * The kernel's floor for bubblewrap's `--unshare-all` case (benches/binary.sh, BENCHMARKS.md
 * "bubblewrap's personality"): what any sandbox starting `true` there must pay, without the
 * mounts. clone into new user, PID, network, mount, UTS, IPC and cgroup namespaces; in the child
 * "deny" to setgroups and one-line uid and gid maps, loopback up, then PID 1 forks the program
 * and stays as its reaper; the program execs /bin/true. No new root, no checks, no reports.
 * Built static by benches/binary.sh (cc -O2 -static).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
static char stack[1 << 16];
static unsigned uid, gid;
static void wr(const char *p, const char *s) {
  int fd = open(p, O_WRONLY);
  if (fd >= 0) { write(fd, s, strlen(s)); close(fd); }
}
static int child(void *a) {
  char b[64];
  (void)a;
  wr("/proc/self/setgroups", "deny");
  snprintf(b, sizeof b, "%u %u 1", uid, uid); wr("/proc/self/uid_map", b);
  snprintf(b, sizeof b, "%u %u 1", gid, gid); wr("/proc/self/gid_map", b);
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq r; memset(&r, 0, sizeof r); strcpy(r.ifr_name, "lo");
  r.ifr_flags = IFF_UP | IFF_LOOPBACK; ioctl(s, SIOCSIFFLAGS, &r); close(s);
  pid_t p = fork();
  if (p == 0) { execl("/bin/true", "true", (char *)0); _exit(127); }
  int st; waitpid(p, &st, 0);
  return WEXITSTATUS(st);
}
int main(void) {
  uid = getuid(); gid = getgid();
  int fl = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWUTS |
           CLONE_NEWIPC | CLONE_NEWCGROUP | SIGCHLD;
  pid_t p = clone(child, stack + sizeof stack, fl, 0);
  if (p < 0) { perror("clone"); return 1; }
  int st; waitpid(p, &st, 0);
  return WEXITSTATUS(st);
}
