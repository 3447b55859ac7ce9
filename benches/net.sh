#!/usr/bin/env bash
# A sandbox with a configured user-mode network (issue 13): `nscell --network pasta|slirp4netns`
# next to bubblewrap with the same helper started the way a careful script would, next to
# `podman run --network slirp4netns`, and next to the same sandboxes with loopback only (for
# nscell: `--unshare-net --unshare-user`, `--network none`, and the default set + NET); first in
# one hyperfine run (spawn to exit, the helper stopped and reaped), then interleaved in a new random
# order each round, timing spawn to the program's first instruction and spawn to exit; then each
# helper's RSS while a sandbox sleeps. Every helper case must show tap0 with 10.0.2.100/24 and a
# default route via 10.0.2.2 to a check program before it is timed, or it is skipped.
#
# No packet may leave the machine: each run happens inside an outer network namespace made here
# (with a new mount and PID namespace, so no process outlives it and /run is a private tmpfs),
# whose only interfaces are lo and a dead-end veth pair that carries the default route pasta needs.
# As root it runs twice: as root, and as uid 65534 (the main path: rootless) with a 0666 tun node
# bound over /dev/net/tun inside the outer mount namespace (the host's is 0600). Started without
# root it runs once, as the caller, in `unshare --user --map-root-user --net --mount --pid`.
# Afterwards it checks that no helper, podman or conmon process, outer netns, podman cgroup or
# temporary directory is left.
#
# Usage: benches/net.sh [RUNS]   (needs hyperfine, bwrap, pasta (Debian: passt), slirp4netns,
# podman, runc, busybox-static, cc, python3; a missing peer is skipped with a message). The
# results stay in /tmp/nscell-net-{root,nobody}.json (hyperfine) and .tsv (interleaved).
set -euo pipefail
cd "$(dirname "$0")/.."
self=$PWD/benches/net.sh

pasta_opts="--config-net -4 -I tap0 -a 10.0.2.100 -n 24 -g 10.0.2.2 --no-map-gw -t none -u none -T none -U none -q -f"
slirp_opts="--configure --mtu=65520"
# What nscell adds to slirp4netns's work (its command line, shown in the RSS part): a seccomp
# filter, and the host's loopback out of reach; bwrap+slirp-hard does the same.
slirp_hard="$slirp_opts --enable-seccomp --disable-host-loopback"
# The namespaces of nscell's default set and of the bwrap cases, plus a network namespace.
bwrap_ns="--unshare-user --unshare-pid --unshare-uts --unshare-ipc --unshare-net --bind / / --proc /proc"
# The helpers' names as pgrep -x sees them (pasta execs /usr/bin/passt.avx2 where the CPU has it).
helper_re='^(pasta|passt|passt\.avx2|passt\.avx512|slirp4netns)$'
podman_re='^(podman|conmon|catatonit)$'

# Medians, ± and ratios of a hyperfine JSON export (command names are the case names).
report_hyperfine() {
  python3 - "$1" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
print("median wall time, spawn to exit, ms (± the standard deviation; IQR):")
for name, x in r.items():
    q1, q3 = sorted(x["times"])[len(x["times"]) // 4], sorted(x["times"])[3 * len(x["times"]) // 4]
    print(f'{x["median"] * 1e3:9.3f} ± {x["stddev"] * 1e3:7.3f}  ({q1 * 1e3:.3f}–{q3 * 1e3:.3f})  {name}')
med = {k: v["median"] * 1e3 for k, v in r.items()}
def ratio(a, b, goal):
    if a in med and b in med:
        print(f"  {a} / {b}: {med[a] / med[b]:.3f}   (goal {goal})")
    else:
        print(f"  {a} / {b}: -   (a case is missing)")
def delta(a, b):
    if a in med and b in med:
        print(f"  {a} - {b}: {med[a] - med[b]:+.3f} ms")
print("ratios of the medians, from this run:")
ratio("nscell-pasta", "bwrap+pasta", "<= 1")
ratio("nscell-slirp", "bwrap+slirp", "<= 1")
ratio("nscell-slirp", "bwrap+slirp-hard", "<= 1, the same slirp4netns flags")
ratio("nscell-slirp", "podman-slirp", "<= 0.5")
print("the helpers' own cost:")
for h in ("pasta", "slirp"):
    delta(f"nscell-{h}", "nscell-loopback")
    delta(f"nscell-{h}", "nscell-none")
    delta(f"nscell-{h}", "nscell-default+net")
    delta(f"bwrap+{h}", "bwrap-loopback")
delta("bwrap+slirp-hard", "bwrap-loopback")
delta("podman-slirp", "podman-none")
PY
}

# The same from the interleaved driver's TSV: name, n, failures, then spawn to the first
# instruction and spawn to exit, each median, first and third quartile (ms).
report_interleaved() {
  python3 - "$1" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split("\t")
    rows[f[0]] = [float(v) for v in f[1:]]
print("interleaved: median (IQR), ms; first = spawn to the program's first instruction, exit = spawn to exit")
for name, v in rows.items():
    n, fail, f1, f1a, f1b, ex, exa, exb = v
    print(f"{f1:9.3f} ({f1a:.3f}–{f1b:.3f})  {ex:9.3f} ({exa:.3f}–{exb:.3f})  n={int(n)} failed={int(fail)}  {name}")
def ratio(a, b, goal):
    if a in rows and b in rows:
        print(f"  {a} / {b}: first {rows[a][2] / rows[b][2]:.3f}, exit {rows[a][5] / rows[b][5]:.3f}   (goal {goal})")
    else:
        print(f"  {a} / {b}: -   (a case is missing)")
print("ratios of the medians, from this run:")
ratio("nscell-pasta", "bwrap+pasta", "<= 1")
ratio("nscell-slirp", "bwrap+slirp", "<= 1")
ratio("nscell-slirp", "bwrap+slirp-hard", "<= 1, the same slirp4netns flags")
ratio("nscell-slirp", "podman-slirp", "<= 0.5")
print("the helpers' own cost (first instruction; exit):")
for a, b in [("nscell-pasta", "nscell-loopback"), ("nscell-slirp", "nscell-loopback"),
             ("nscell-pasta", "nscell-none"), ("nscell-slirp", "nscell-none"),
             ("nscell-pasta", "nscell-default+net"), ("nscell-slirp", "nscell-default+net"),
             ("bwrap+pasta", "bwrap-loopback"), ("bwrap+slirp", "bwrap-loopback"),
             ("bwrap+slirp-hard", "bwrap-loopback"),
             ("podman-slirp", "podman-none")]:
    if a in rows and b in rows:
        print(f"  {a} - {b}: {rows[a][2] - rows[b][2]:+.3f} ms; {rows[a][5] - rows[b][5]:+.3f} ms")
PY
}

# The helper processes' memory (KB) while a sandbox of CASE runs `busybox sleep 1`: VmRSS and
# VmHWM of each pasta / slirp4netns (and conmon) process in this PID namespace, sampled after
# 0.6 s, the median of three sandboxes.
rss() {
  local name=$1 c=$2 pid comm i
  for i in 1 2 3; do
    # shellcheck disable=SC2086 # a word list
    $c/busybox sleep 1 >/dev/null 2>&1 </dev/null &
    sleep 0.6
    for pid in $(pgrep -d ' ' -x 'pasta|passt|passt.avx2|passt.avx512|slirp4netns|conmon' || true); do
      comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
      awk -v c="$comm" '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { if (r) print c, r, h }' "/proc/$pid/status"
      [ "$i" = 1 ] && [ "$comm" != conmon ] && echo "  $name: $comm runs as: $(tr '\0' ' ' <"/proc/$pid/cmdline")" >&2
    done >"$tmp/out/rss.$mode.$i"
    wait $! || true
  done
  python3 - "$name" "$tmp/out/rss.$mode."{1,2,3} <<'PY'
import statistics, sys
name, files = sys.argv[1], sys.argv[2:]
seen = {}
for f in files:
    for line in open(f):
        comm, rss, hwm = line.split()
        seen.setdefault(comm, []).append((int(rss), int(hwm)))
if not seen:
    print(f"  {name}: no helper process seen")
for comm, v in sorted(seen.items()):
    print(f"  {name}: {comm}: VmRSS {statistics.median(r for r, _ in v):.0f} KB, "
          f"VmHWM {statistics.median(h for _, h in v):.0f} KB (median of {len(v)})")
PY
}

first_line() { grep -v -e '^time=' -e syslog <<<"$1" | grep . | head -1 || true; }

# Waits up to 10 s for podman's own cleanup (conmon's exit command, `podman container cleanup`)
# to finish, so that no podman run overlaps the next case.
podman_settle() {
  local _
  for _ in $(seq 100); do
    pgrep -x 'podman|conmon' >/dev/null || return 0
    sleep 0.1
  done
}

# Stage 3, inside the outer namespaces as the measuring user: the pre-checks, the runs, RSS.
measure() {
  tmp=$1 mode=$2 runs=$3
  local bin=$tmp/bin rootfs=$tmp/rootfs prog=$tmp/rootfs/bin nscell=$tmp/bin/nscell
  local pm=$tmp/podman-$mode
  export NETWRAP_DIR=$tmp/fifo-$mode HOME=$tmp/home-$mode XDG_RUNTIME_DIR=$tmp/xdg-run-$mode
  export XDG_CONFIG_HOME=$tmp/home-$mode/.config XDG_DATA_HOME=$tmp/home-$mode/.local/share
  export CONTAINERS_CONF=$pm/containers.conf CONTAINERS_STORAGE_CONF=$pm/storage.conf
  export CONTAINERS_REGISTRIES_CONF=$pm/registries.conf
  echo "== as $(id -un) (uid $(id -u); uid_map: $(awk '{print $1, $2, $3}' /proc/self/uid_map | paste -sd ,)), in netns $(readlink /proc/self/ns/net): $(ip -o -4 addr show | awk '{print $2, $4}' | paste -sd ' ');" \
    "default route: $(ip route show default)"

  local p_opts=$pasta_opts podman_args
  # As root pasta would drop to nobody, who cannot join the sandbox's namespaces.
  [ "$(id -u)" = 0 ] && p_opts+=" --runas 0:0"
  # runc, not crun: crun 1.8 refuses this hybrid cgroup host (cgroup2 lists a controller).
  podman_args="--root $pm/root --runroot $pm/runroot --tmpdir $pm/tmp --cgroup-manager=cgroupfs"
  podman_args+=" --events-backend=file --storage-driver=vfs --runtime $(command -v runc || echo runc)"
  podman_args+=" run --rm"
  if [ "$mode" = root ]; then
    # Root here lacks CAP_SYS_RESOURCE, and podman raises RLIMIT_NOFILE and RLIMIT_NPROC above our
    # hard limits unless told otherwise.
    podman_args+=" --ulimit nofile=1024:1024 --ulimit nproc=$(ulimit -Su):$(ulimit -Hu)"
    podman_args+=" --cgroup-parent=/nscell-net-bench-$tmp_id"
  fi

  # name|command up to the program's directory (the program's name is appended: true, stamp,
  # netcheck, busybox sleep 1)|does it configure tap0
  local all=(
    "nscell-loopback|$nscell --unshare-net --unshare-user -- $prog|0"
    "nscell-none|$nscell --network none -- $prog|0"
    "nscell-default+net|$nscell --unshare-user --unshare-pid --unshare-mount --unshare-uts --unshare-ipc --unshare-net -- $prog|0"
    "nscell-pasta|$nscell --network pasta -- $prog|1"
    "nscell-slirp|$nscell --network slirp4netns -- $prog|1"
    "bwrap-loopback|bwrap $bwrap_ns -- $prog|0"
    "bwrap+pasta|$bin/netwrap pasta $p_opts -- bwrap $bwrap_ns --info-fd 3 --block-fd 4 -- $prog|1"
    "bwrap+slirp|$bin/netwrap slirp4netns $slirp_opts -- bwrap $bwrap_ns --info-fd 3 --block-fd 4 -- $prog|1"
    "bwrap+slirp-hard|$bin/netwrap slirp4netns $slirp_hard -- bwrap $bwrap_ns --info-fd 3 --block-fd 4 -- $prog|1"
    "podman-none|podman $podman_args --network none --rootfs $rootfs /bin|0"
    "podman-slirp|podman $podman_args --network slirp4netns --rootfs $rootfs /bin|1"
  )
  local names=() cmds=() e name c net err
  for e in "${all[@]}"; do
    IFS='|' read -r name c net <<<"$e"
    case $name in
      bwrap*) command -v bwrap >/dev/null || { echo "skipped $name: bwrap is not installed" >&2; continue; } ;;&
      *pasta) command -v pasta >/dev/null || { echo "skipped $name: pasta is not installed" >&2; continue; } ;;&
      *slirp | *slirp-hard) command -v slirp4netns >/dev/null || { echo "skipped $name: slirp4netns is not installed" >&2; continue; } ;;&
      podman*) command -v podman >/dev/null || { echo "skipped $name: podman is not installed" >&2; continue; } ;;
    esac
    # shellcheck disable=SC2086 # a word list, as hyperfine -N splits it
    if [ "$net" = 1 ] && ! err=$($c/netcheck 2>&1 </dev/null); then
      echo "skipped $name (its check failed once before the run: $(first_line "$err")): $c/netcheck" >&2
    elif [ "$net" = 1 ] && ! { grep -q 'inet 10\.0\.2\.100/24' <<<"$err" && grep -q '^default via 10\.0\.2\.2 dev tap0' <<<"$err"; }; then
      echo "skipped $name: tap0 is not configured when the program starts: $(paste -sd ' ' <<<"$err")" >&2
    elif ! err=$($c/true 2>&1 </dev/null); then
      echo "skipped $name (it failed once before the run: $(first_line "$err")): $c/true" >&2
    else
      names+=("$name")
      cmds+=("$c")
    fi
    [[ $name == podman* ]] && podman_settle
  done
  [ "${#names[@]}" -gt 0 ] || { echo "no case can run" >&2; return 1; }
  local i
  echo "cases (a program's path follows each: true for hyperfine, stamp for the interleaved runs):"
  for i in "${!names[@]}"; do printf '  %-19s %s\n' "${names[$i]}" "${cmds[$i]}"; done
  echo

  local hf=()
  for i in "${!names[@]}"; do hf+=(-n "${names[$i]}" "${cmds[$i]}/true"); done
  hyperfine -N --warmup 10 --runs "$runs" --export-json "$tmp/out/$mode.json" "${hf[@]}" </dev/null
  podman_settle
  echo
  report_hyperfine "$tmp/out/$mode.json"

  echo
  local il=()
  for i in "${!names[@]}"; do il+=("${names[$i]}" "${cmds[$i]}/stamp"); done
  "$bin/interleave" "$runs" 5 "${il[@]}" >"$tmp/out/$mode.tsv"
  podman_settle
  report_interleaved "$tmp/out/$mode.tsv"

  echo
  echo "helpers' memory while a sandbox runs busybox sleep 1 (median of 3 sandboxes):"
  for i in "${!names[@]}"; do
    case ${names[$i]} in *pasta | *slirp | *slirp-hard) rss "${names[$i]}" "${cmds[$i]}"; podman_settle ;; esac
  done
  # The rootless podman's pause process keeps its user namespace; it goes with us.
  local pause
  find "$pm" "$XDG_RUNTIME_DIR" -name pause.pid 2>/dev/null | while read -r pause; do
    kill "$(cat "$pause")" 2>/dev/null || true
  done
  sleep 0.1
  return 0
}

# Stage 2, PID 1 of the outer PID namespace, root of the outer network and mount namespaces.
outer() {
  tmp=$1 mode=$2 runs=$3 tmp_id=$4
  mount -n -t tmpfs -o mode=755 tmpfs /run
  ip link set lo up
  ip link add nsa type veth peer name nsb
  ip addr add 192.0.2.2/24 dev nsa
  ip link set nsa up
  ip link set nsb up
  ip route add default via 192.0.2.1
  readlink /proc/self/ns/net >"$tmp/netns-$mode"
  local rc=0
  if [ "$mode" = nobody ]; then
    mknod -m 0666 "$tmp/tun" c 10 200
    mount -n --bind "$tmp/tun" /dev/net/tun
    setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
      "$self" --measure "$tmp" "$mode" "$runs" "$tmp_id" || rc=$?
  else
    "$self" --measure "$tmp" "$mode" "$runs" "$tmp_id" || rc=$?
  fi
  podman_settle
  echo
  local left
  local left='' p comm
  for p in /proc/[0-9]*; do
    comm=$(cat "$p/comm" 2>/dev/null) || continue
    [[ $comm =~ $helper_re || $comm =~ $podman_re ]] && left+="${p#/proc/} $comm"$'\n'
  done
  if [ -n "$left" ]; then
    echo "left in the outer PID namespace (killed with it): $(paste -sd ' ' <<<"$left")" >&2
    rc=1
  else
    echo "left in the outer PID namespace: no pasta, slirp4netns, podman, conmon or catatonit process"
  fi
  return "$rc"
}

case ${1-} in
  --measure) tmp_id=$5; measure "$2" "$3" "$4"; exit ;;
  --outer) outer "$2" "$3" "$4" "$5"; exit ;;
esac

# Stage 1, on the host.
runs=${1:-100}
for tool in hyperfine python3 cc ip; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 1; }
done
busybox=/bin/busybox
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
  echo "$busybox is missing or not static: apt-get install -y busybox-static" >&2
  exit 1
fi
cargo build -q --release --bin nscell
target=${CARGO_TARGET_DIR:-$PWD/target}

tmp=$(mktemp -d /tmp/nscell-net.XXXXXX)
tmp_id=${tmp##*.}
cleanup() {
  # podman's cgroups (as root with cgroupfs, under --cgroup-parent), deepest first.
  find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -type d -name "nscell-net-bench-$tmp_id" 2>/dev/null |
    while read -r d; do find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
chmod 755 "$tmp"
mkdir -p "$tmp/bin" "$tmp/out" "$tmp/rootfs/bin" "$tmp/rootfs/"{proc,sys,dev,etc,tmp}
chmod 1777 "$tmp/out"
cp "$target/release/nscell" "$tmp/bin/nscell"
cp "$busybox" "$tmp/rootfs/bin/busybox"
ln -s busybox "$tmp/rootfs/bin/sh"

# The programs the sandboxes run, static and tiny (x86-64 system calls, no libc): true exits 0;
# stamp writes "stamp=<CLOCK_MONOTONIC ns>" as its first action, then exits 0.
cat >"$tmp/tiny.c" <<'C'
static long sys3(long n, long a, long b, long c) {
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return r;
}
__attribute__((force_align_arg_pointer, noreturn)) void _start(void) {
#ifdef STAMP
  struct { long s, ns; } t;
  sys3(228, 1, (long)&t, 0); /* clock_gettime(CLOCK_MONOTONIC) */
  unsigned long v = (unsigned long)t.s * 1000000000UL + (unsigned long)t.ns;
  char buf[40], *p = buf + sizeof buf;
  *--p = '\n';
  do { *--p = (char)('0' + v % 10); v /= 10; } while (v);
  for (const char *s = "=pmats"; *s; s++) *--p = *s;
  sys3(1, 1, (long)p, buf + sizeof buf - p);
#endif
  for (;;) sys3(231, 0, 0, 0); /* exit_group(0) */
}
C
cflags="-O2 -static -nostdlib -fno-stack-protector -fno-pie -no-pie -Wl,--build-id=none"
# shellcheck disable=SC2086 # a word list
cc $cflags -o "$tmp/rootfs/bin/true" "$tmp/tiny.c"
# shellcheck disable=SC2086 # a word list
cc $cflags -DSTAMP -o "$tmp/rootfs/bin/stamp" "$tmp/tiny.c"
cat >"$tmp/rootfs/bin/netcheck" <<'SH'
#!/bin/busybox sh
/bin/busybox ip -4 addr show dev tap0
/bin/busybox ip route
SH
chmod 755 "$tmp/rootfs/bin/netcheck"

# bwrap + a helper, in C rather than bash or python3: a bash wrapper would add a shell's start
# (~1 ms) and a fork per step, python3's start alone is ~15 ms, both larger than the differences
# to measure. It runs bwrap with --info-fd 3 --block-fd 4, reads child-pid from the info JSON,
# starts the helper (pasta: -P on a fifo, which pasta writes once tap0 is configured, with
# --netns and --userns of the child; slirp4netns: --ready-fd, --exit-fd, PID tap0), waits for
# readiness (or the helper's exit: then bwrap is killed), writes to the block fd, waits for bwrap,
# then stops the helper (pasta: SIGTERM; slirp4netns: EOF on its exit fd) and reaps it. The helper
# also gets PR_SET_PDEATHSIG, so it cannot outlive the wrapper.
cat >"$tmp/netwrap.c" <<'C'
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int high(int fd) { int h = fcntl(fd, F_DUPFD_CLOEXEC, 10); close(fd); return h; }
static void pipe_high(int p[2]) {
  if (pipe2(p, O_CLOEXEC)) { perror("netwrap: pipe"); exit(1); }
  p[0] = high(p[0]);
  p[1] = high(p[1]);
}
/* vfork + exec with from[i] as fd 3 + i; the child dies with us. */
static pid_t run(char **argv, const int *from, int n) {
  pid_t pid = vfork();
  if (pid == 0) {
    for (int i = 0; i < n; i++) dup2(from[i], 3 + i);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execvp(argv[0], argv);
    _exit(127);
  }
  return pid;
}
static int finish(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv) {
  int sep = 2;
  while (sep < argc && strcmp(argv[sep], "--")) sep++;
  if (argc < 3 || sep >= argc - 1 || sep > 40) {
    fprintf(stderr, "usage: netwrap pasta|slirp4netns HELPER-ARGS... -- bwrap --info-fd 3 --block-fd 4 ...\n");
    return 2;
  }
  int slirp = !strcmp(argv[1], "slirp4netns");
  int info[2], block[2];
  pipe_high(info);
  pipe_high(block);
  int bfds[2] = {info[1], block[0]};
  pid_t bwrap = run(argv + sep + 1, bfds, 2);
  close(info[1]);
  close(block[0]);

  char buf[4096];
  size_t len = 0;
  ssize_t r;
  while (len < sizeof buf - 1 &&
         ((r = read(info[0], buf + len, sizeof buf - 1 - len)) > 0 || (r < 0 && errno == EINTR)))
    if (r > 0) len += r;
  buf[len] = 0;
  close(info[0]);
  char *p = strstr(buf, "\"child-pid\"");
  long child = p ? strtol(p + 11 + strspn(p + 11, ": \t"), NULL, 10) : 0;
  if (child <= 0) {
    int st = finish(bwrap);
    fprintf(stderr, "netwrap: no child-pid from bwrap (exit %d): %s\n", st, buf);
    return st ? st : 1;
  }

  /* bwrap's child brings lo up (RTM_NEWADDR, then IFF_UP) only after we have the pid; a helper
   * that configures the namespace meanwhile can make that fail ("loopback: Failed RTM_NEWADDR").
   * So wait until lo is up: 127.0.0.1 is in the child's local table once it is. */
  char trie[64];
  snprintf(trie, sizeof trie, "/proc/%ld/net/fib_trie", child);
  for (int up = 0; !up;) {
    int fd = open(trie, O_RDONLY | O_CLOEXEC);
    if (fd < 0) break; /* the child is gone: bwrap's own error follows */
    len = 0;
    while (len < sizeof buf - 1 && (r = read(fd, buf + len, sizeof buf - 1 - len)) > 0) len += r;
    buf[len] = 0;
    close(fd);
    up = strstr(buf, "127.0.0.1") != NULL;
    if (!up) nanosleep(&(struct timespec){0, 20000}, NULL);
  }

  char *hargv[64], pidstr[24], netns[64], userns[64], fifo[512];
  int n = 0, ready = -1, exitp[2] = {-1, -1}, ok = 0;
  for (int i = 1; i < sep; i++) hargv[n++] = argv[i];
  pid_t helper;
  if (slirp) {
    int rp[2];
    pipe_high(rp);
    pipe_high(exitp);
    snprintf(pidstr, sizeof pidstr, "%ld", child);
    hargv[n++] = "--ready-fd=3";
    hargv[n++] = "--exit-fd=4";
    hargv[n++] = pidstr;
    hargv[n++] = "tap0";
    hargv[n] = NULL;
    int hfds[2] = {rp[1], exitp[0]};
    helper = run(hargv, hfds, 2);
    close(rp[1]);
    close(exitp[0]);
    ready = rp[0];
    /* "1" once tap0 is configured; EOF if slirp4netns exits first. */
    while ((r = read(ready, buf, 1)) < 0 && errno == EINTR) {}
    ok = r == 1 && buf[0] == '1';
  } else {
    const char *dir = getenv("NETWRAP_DIR");
    snprintf(fifo, sizeof fifo, "%s/netwrap-%d.fifo", dir ? dir : "/tmp", getpid());
    snprintf(netns, sizeof netns, "/proc/%ld/ns/net", child);
    snprintf(userns, sizeof userns, "/proc/%ld/ns/user", child);
    if (mkfifo(fifo, 0600)) { perror("netwrap: mkfifo"); kill(bwrap, SIGKILL); finish(bwrap); return 1; }
    /* Non-blocking: no POLLHUP before a writer came, so poll waits for pasta or its exit. */
    ready = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    hargv[n++] = "-P";
    hargv[n++] = fifo;
    hargv[n++] = "--netns";
    hargv[n++] = netns;
    hargv[n++] = "--userns";
    hargv[n++] = userns;
    hargv[n] = NULL;
    helper = run(hargv, NULL, 0);
    int pidfd = syscall(SYS_pidfd_open, helper, 0);
    size_t got = 0;
    for (;;) {
      struct pollfd pf[2] = {{ready, POLLIN, 0}, {pidfd, POLLIN, 0}};
      if (poll(pf, 2, -1) < 0) { if (errno == EINTR) continue; break; }
      if (pf[0].revents) {
        r = read(ready, buf, sizeof buf);
        if (r > 0) { got += r; continue; }
        if (r == 0) { ok = got > 0; break; }
        if (errno == EAGAIN || errno == EINTR) continue;
        break;
      }
      if (pf[1].revents) break; /* pasta exited before it wrote its pid */
    }
    close(pidfd);
    unlink(fifo);
  }
  close(ready);
  if (!ok) {
    kill(bwrap, SIGKILL);
    kill(helper, SIGKILL);
    int hs = finish(helper), bs = finish(bwrap);
    fprintf(stderr, "netwrap: %s was not ready (helper exit %d, bwrap exit %d)\n", argv[1], hs, bs);
    return 1;
  }
  signal(SIGPIPE, SIG_IGN); /* a bwrap that died early: EPIPE, said below */
  while ((r = write(block[1], "1", 1)) < 0 && errno == EINTR) {}
  int werr = r < 0 ? errno : 0;
  close(block[1]);
  int st = finish(bwrap);
  if (werr) fprintf(stderr, "netwrap: bwrap ended before it was released (%s; exit %d)\n", strerror(werr), st);
  if (slirp) close(exitp[1]);
  else kill(helper, SIGTERM);
  finish(helper);
  return st;
}
C
cc -O2 -Wall -o "$tmp/bin/netwrap" "$tmp/netwrap.c"

# The interleaved driver: ROUNDS rounds (after WARMUP) of every case, in a new random order each
# round; per run the time from just before posix_spawn to the stamp the program prints as its
# first action (CLOCK_MONOTONIC, which none of the cases moves into a time namespace), and to
# the end of its output and its reaping. Prints a TSV line per case.
cat >"$tmp/interleave.c" <<'C'
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
extern char **environ;

static long long now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}
static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
static double q(double *v, int n, int k) { return n ? v[(long)n * k / 4 < n ? (long)n * k / 4 : n - 1] : 0; }

int main(int argc, char **argv) {
  if (argc < 5 || (argc - 3) % 2) { fprintf(stderr, "usage: interleave ROUNDS WARMUP NAME CMD...\n"); return 2; }
  int rounds = atoi(argv[1]), warm = atoi(argv[2]), nc = (argc - 3) / 2;
  char ***cmd = calloc(nc, sizeof *cmd);
  double **first = calloc(nc, sizeof *first), **done = calloc(nc, sizeof *done);
  int *n = calloc(nc, sizeof *n), *fail = calloc(nc, sizeof *fail), *order = calloc(nc, sizeof *order);
  for (int i = 0; i < nc; i++) {
    char *s = strdup(argv[4 + 2 * i]);
    cmd[i] = calloc(strlen(s) / 2 + 2, sizeof(char *));
    int k = 0;
    for (char *t = strtok(s, " "); t; t = strtok(NULL, " ")) cmd[i][k++] = t;
    first[i] = calloc(rounds, sizeof(double));
    done[i] = calloc(rounds, sizeof(double));
    order[i] = i;
  }
  srand(getpid());
  char errpath[256];
  snprintf(errpath, sizeof errpath, "%s/interleave-%d.err", getenv("NETWRAP_DIR") ? getenv("NETWRAP_DIR") : "/tmp", getpid());
  posix_spawn_file_actions_t fa;
  for (int round = 0; round < warm + rounds; round++) {
    for (int i = nc - 1; i > 0; i--) { int j = rand() % (i + 1), t = order[i]; order[i] = order[j]; order[j] = t; }
    for (int oi = 0; oi < nc; oi++) {
      int c = order[oi], out[2];
      if (pipe(out)) return 1;
      posix_spawn_file_actions_init(&fa);
      posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", 0, 0);
      posix_spawn_file_actions_adddup2(&fa, out[1], 1);
      posix_spawn_file_actions_addopen(&fa, 2, errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
      posix_spawn_file_actions_addclose(&fa, out[0]);
      posix_spawn_file_actions_addclose(&fa, out[1]);
      pid_t pid;
      long long t0 = now();
      int e = posix_spawnp(&pid, cmd[c][0], &fa, NULL, cmd[c], environ);
      posix_spawn_file_actions_destroy(&fa);
      close(out[1]);
      char buf[8192];
      size_t len = 0;
      ssize_t r;
      while (len < sizeof buf - 1 && (r = read(out[0], buf + len, sizeof buf - 1 - len)) > 0) len += r;
      char drain[4096];
      while (read(out[0], drain, sizeof drain) > 0) {}
      buf[len] = 0;
      close(out[0]);
      int st = 1;
      if (!e) waitpid(pid, &st, 0);
      long long t1 = now();
      char *p = strstr(buf, "stamp=");
      if (round < warm) continue;
      if (e || st || !p) {
        /* Say why, once per case: the status, and the end of the command's stderr. */
        if (!fail[c]++) {
          char err[600] = "";
          FILE *f = fopen(errpath, "r");
          if (f) {
            fseek(f, 0, SEEK_END);
            long sz = ftell(f);
            fseek(f, sz > 500 ? sz - 500 : 0, SEEK_SET);
            err[fread(err, 1, sizeof err - 1, f)] = 0;
            fclose(f);
          }
          fprintf(stderr, "interleave: %s failed (spawn %d, wait status %#x, %s): %s\n", argv[3 + 2 * c], e, st,
                  p ? "stamp seen" : "no stamp", err);
        }
        continue;
      }
      long long ts = strtoll(p + 6, NULL, 10);
      first[c][n[c]] = (ts - t0) / 1e6;
      done[c][n[c]++] = (t1 - t0) / 1e6;
    }
  }
  unlink(errpath);
  for (int i = 0; i < nc; i++) {
    qsort(first[i], n[i], sizeof(double), cmp);
    qsort(done[i], n[i], sizeof(double), cmp);
    printf("%s\t%d\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\n", argv[3 + 2 * i], n[i], fail[i],
           q(first[i], n[i], 2), q(first[i], n[i], 1), q(first[i], n[i], 3),
           q(done[i], n[i], 2), q(done[i], n[i], 1), q(done[i], n[i], 3));
  }
  return 0;
}
C
cc -O2 -Wall -o "$tmp/bin/interleave" "$tmp/interleave.c"

# Per measuring user: the pasta fifo dir, HOME, XDG_RUNTIME_DIR, and podman's private storage and
# configuration (vfs, k8s-file logs, file events, cgroupfs, and its network config dir).
modes=(root nobody)
[ "$(id -u)" = 0 ] || modes=(self)
for mode in "${modes[@]}"; do
  pm=$tmp/podman-$mode
  mkdir -p "$tmp/fifo-$mode" "$tmp/home-$mode" "$tmp/xdg-run-$mode" "$pm/tmp"
  chmod 700 "$tmp/xdg-run-$mode"
  cat >"$pm/containers.conf" <<EOF
[containers]
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$pm/events.log"
tmp_dir = "$pm/tmp"
[network]
network_config_dir = "$pm/net"
EOF
  cat >"$pm/storage.conf" <<EOF
[storage]
driver = "vfs"
runroot = "$pm/runroot"
graphroot = "$pm/root"
EOF
  : >"$pm/registries.conf"
  [ "$mode" = nobody ] && chown -R 65534:65534 "$tmp/fifo-$mode" "$tmp/home-$mode" "$tmp/xdg-run-$mode" "$pm"
done

rc=0
for mode in "${modes[@]}"; do
  echo
  if [ "$mode" = self ]; then
    unshare --user --map-root-user --net --mount --pid --fork --mount-proc \
      "$self" --outer "$tmp" "$mode" "$runs" "$tmp_id" || rc=1
  else
    unshare --net --mount --pid --fork --mount-proc --propagation private \
      "$self" --outer "$tmp" "$mode" "$runs" "$tmp_id" || rc=1
  fi
  for f in "$tmp/out/$mode.json" "$tmp/out/$mode.tsv"; do
    [ -f "$f" ] && cp "$f" "/tmp/nscell-net-$mode.${f##*.}"
  done
done

echo
# Nothing left behind: no process in an outer network namespace, no podman cgroup, no helper,
# podman or conmon process started from our temporary directory, and (after the trap) no
# temporary directory.
held=
for mode in "${modes[@]}"; do
  ns=$(cat "$tmp/netns-$mode" 2>/dev/null) || continue
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$ns" ] && held+=" ${p#/proc/}"
  done
done
procs=$(pgrep -f "$tmp" || true)
cleanup
cgroups=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -name "nscell-net-bench-$tmp_id" 2>/dev/null || true)
[ -e "$tmp" ] && left_tmp=$tmp || left_tmp=
if [ -z "$held$procs$cgroups$left_tmp" ]; then
  echo "left behind: nothing (no process in the outer network namespaces, which are gone with"
  echo "their PID namespaces; no process started from $tmp; no nscell-net-bench-$tmp_id cgroup; $tmp removed)"
else
  echo "left behind: netns holders:${held:- none}; processes: ${procs:-none}; cgroups: ${cgroups:-none}; temp: ${left_tmp:-none}" >&2
  exit 1
fi
exit "$rc"
