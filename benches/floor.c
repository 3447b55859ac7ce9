/*
 * The minimal C floor for nscell's default sandbox (BENCHMARKS.md, "The C floor").
 *
 * Only the work that sandbox must do, and nothing a library adds around it: a vfork-style
 * clone (CLONE_VM | CLONE_VFORK, on a stack mapped once) into new user, PID, mount, UTS and IPC
 * namespaces; in the child "deny" to setgroups and a one-line uid and gid map, "/" made
 * recursively private, a fresh procfs on /proc, execve; waitpid. No pidfd, no signal mask, no
 * report channel, no fd closing, no checks.
 *
 * FLOOR_LOCKED adds what the security fixes made every default sandbox do (src/mount_lock.rs and
 * sys::join_session_keyring): the child is cloned without CLONE_NEWNS; after the maps it joins a
 * new session keyring, clones a CLONE_VM | CLONE_VFORK helper into new user and mount namespaces
 * that opens /proc/thread-self/ns/mnt into the fd table they share, setns()es into that mount
 * namespace, and after /proc unshares CLONE_NEWNS (the copy that locks the mounts).
 * FLOOR_SECCOMP adds no_new_privs and a seccomp filter of the size and shape of nscell's default
 * (an architecture check, x32 refused, 25 system calls refused through a binary search on the
 * number: 71 instructions against nscell's 60). FLOOR_SETSID adds the new session every default
 * sandbox gets (Sandbox::new_session), just before the seccomp filter.
 *
 * benches/spawn.rs compiles this file at start (cc -O2 -shared -fPIC) and calls it through
 * dlopen, so it runs interleaved with the nscell cases in the same process.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define FLOOR_LOCKED 1
#define FLOOR_SECCOMP 2
#define FLOOR_SETSID 4

extern char **environ;

static char uid_map[32], gid_map[32];
static size_t uid_len, gid_len;
static char *stack;
static const size_t stack_len = 256 * 1024;
static char helper_stack[16 * 1024] __attribute__((aligned(16)));
static struct sock_filter filter[128];
static unsigned short filter_len;
static char *const argv[] = {"/bin/true", NULL};

/* What the running child does (CLONE_VM: the parent reads it after the child has exec'd) and the
 * step that failed, 0 for none. */
static int mode;
static volatile int failed_step;

static void op(unsigned short code, unsigned char jt, unsigned char jf, unsigned int k) {
    filter[filter_len++] = (struct sock_filter){code, jt, jf, k};
}

#define RET_EPERM (SECCOMP_RET_ERRNO | 1)

/* A binary search over the sorted numbers nrs[0..n): leaves of up to 4 numbers compare each. */
static void search(const unsigned int *nrs, int n) {
    if (n <= 4) {
        for (int i = 0; i < n; i++) {
            op(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, nrs[i]);
            op(BPF_RET | BPF_K, 0, 0, RET_EPERM);
        }
        op(BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
        return;
    }
    int mid = n / 2;
    unsigned short at = filter_len;
    op(BPF_JMP | BPF_JGE | BPF_K, 0, 0, nrs[mid]);
    search(nrs, mid);
    filter[at].jt = (unsigned char)(filter_len - at - 1);
    search(nrs + mid, n - mid);
}

static int cmp_uint(const void *a, const void *b) {
    unsigned int x = *(const unsigned int *)a, y = *(const unsigned int *)b;
    return x < y ? -1 : x > y;
}

static void build_filter(void) {
    unsigned int nrs[] = {
        SYS_kexec_load, SYS_kexec_file_load, SYS_init_module, SYS_finit_module,
        SYS_delete_module, SYS_bpf, SYS_perf_event_open, SYS_userfaultfd, SYS_keyctl,
        SYS_add_key, SYS_request_key, SYS_ptrace, SYS_process_vm_readv, SYS_process_vm_writev,
        SYS_personality, SYS_acct, SYS_swapon, SYS_swapoff, SYS_reboot, SYS_syslog, SYS_uselib,
        SYS_vhangup, SYS_lookup_dcookie, SYS_nfsservctl, SYS_quotactl,
    };
    int n = sizeof nrs / sizeof nrs[0];
    qsort(nrs, n, sizeof nrs[0], cmp_uint);
    filter_len = 0;
    op(BPF_LD | BPF_W | BPF_ABS, 0, 0, 4); /* seccomp_data.arch */
    op(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, AUDIT_ARCH_X86_64);
    op(BPF_RET | BPF_K, 0, 0, SECCOMP_RET_KILL_PROCESS);
    op(BPF_LD | BPF_W | BPF_ABS, 0, 0, 0); /* seccomp_data.nr */
    op(BPF_JMP | BPF_JGE | BPF_K, 0, 1, 0x40000000); /* __X32_SYSCALL_BIT */
    op(BPF_RET | BPF_K, 0, 0, RET_EPERM);
    search(nrs, n);
}

static int write_file(const char *path, const char *bytes, size_t len) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, bytes, len);
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

/* The mount lock's helper: opens its mount namespace into the fd table it shares with the
 * child and exits. */
static int helper(void *arg) {
    *(int *)arg = open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC);
    return 0;
}

static int fail(int step) {
    failed_step = step;
    _exit(127);
}

static int child(void *arg) {
    (void)arg;
    if (write_file("/proc/self/setgroups", "deny", 4))
        fail(1);
    if (write_file("/proc/self/uid_map", uid_map, uid_len))
        fail(2);
    if (write_file("/proc/self/gid_map", gid_map, gid_len))
        fail(3);
    if (mode & FLOOR_LOCKED) {
        if (syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, 0) < 0)
            fail(4);
        int ns = -1;
        int flags = CLONE_VM | CLONE_VFORK | CLONE_FILES | CLONE_NEWUSER | CLONE_NEWNS;
        int h = clone(helper, helper_stack + sizeof helper_stack, flags, &ns);
        if (h < 0 || waitpid(h, NULL, __WALL) != h || ns < 0)
            fail(5);
        if (setns(ns, CLONE_NEWNS))
            fail(6);
        close(ns);
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
        fail(7);
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
        fail(8);
    if ((mode & FLOOR_LOCKED) && unshare(CLONE_NEWNS))
        fail(9);
    if ((mode & FLOOR_SETSID) && setsid() < 0)
        fail(13);
    if (mode & FLOOR_SECCOMP) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
            fail(10);
        struct sock_fprog prog = {filter_len, filter};
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
            fail(11);
    }
    execve(argv[0], argv, environ);
    return fail(12);
}

/* Once, before the first spawn: the maps, the stack, the filter. 0 or -1. */
int floor_init(void) {
    uid_len = (size_t)snprintf(uid_map, sizeof uid_map, "0 %u 1\n", geteuid());
    gid_len = (size_t)snprintf(gid_map, sizeof gid_map, "0 %u 1\n", getegid());
    stack = mmap(NULL, stack_len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
        return -1;
    build_filter();
    return 0;
}

/* The number of instructions of the seccomp filter. */
int floor_filter_len(void) { return filter_len; }

/* One spawn of /bin/true, waited for. 0, or the step that failed (negative: clone or wait). */
int floor_spawn(int how) {
    int flags = CLONE_VM | CLONE_VFORK | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWUTS |
                CLONE_NEWIPC | SIGCHLD;
    if (!(how & FLOOR_LOCKED))
        flags |= CLONE_NEWNS;
    mode = how;
    failed_step = 0;
    int pid = clone(child, stack + stack_len, flags, NULL);
    if (pid < 0)
        return -1;
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return -2;
    if (failed_step)
        return failed_step;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 100;
}
