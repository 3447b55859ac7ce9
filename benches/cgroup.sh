#!/usr/bin/env bash
# cgroup limits (issue 12): the nscell binary with memory + pids + CPU limits next to the same spawn
# without them, and next to `runc run` of an OCI bundle with the same linux.resources and of one
# without linux.resources, in one hyperfine run; then the limits' cost (delta of the medians) and
# the ratio to runc; then the same cases one at a time after 100 ms of quiet. When crun is
# installed, a last run adds crun in a private mount namespace (see crun_run below). Afterwards
# it checks that no cgroup, runtime state or process is left.
# Usage: benches/cgroup.sh [RUNS]   (as root; needs hyperfine, runc, python3 and busybox-static:
# `apt-get install -y runc busybox-static`, optionally crun). The bundles are generated in a
# temporary directory. A case whose command fails once in a pre-check (e.g. an nscell without the
# limit options) is skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: runc and the cgroup v1 hierarchies need it" >&2; exit 1; }
nscell=$PWD/target/release/nscell
limits="--memory 64m --memory-swap 64m --pids-limit 50 --cpus 0.5"
want="67108864 67108864 50 50000 100000"

# Our own cgroup in each mounted hierarchy (v1 and the v2 one), as "MOUNTPOINT DIR": DIR is the
# mount point joined with our path (/proc/self/cgroup) relative to the mount's root (mountinfo).
own_cgroups() {
  python3 - <<'PY'
import os
own = {}
for line in open("/proc/self/cgroup"):
    hid, ctrls, path = line.rstrip("\n").split(":", 2)
    own[frozenset(ctrls.split(",")) if hid != "0" else ""] = path
for line in open("/proc/self/mountinfo"):
    pre, post = line.split(" - ")
    fstype, _, opts = post.split()
    root, mnt = pre.split()[3:5]
    if fstype == "cgroup2":
        key = ""
    elif fstype == "cgroup":
        key = frozenset(o for o in opts.split(",") if o.startswith("name=") or "=" not in o
                        and o not in ("rw", "ro", "xattr", "noprefix", "clone_children"))
    else:
        continue
    if key in own:
        print(mnt, os.path.normpath(mnt + "/" + os.path.relpath(own[key], root)))
PY
}
# The cgroups a run makes, directly under our own cgroups: nscell's leaves
# (nscell-<pidns>-<pid>-<start>-<n>) and the runtimes' nscell-bench-<pid>. Other nscell users on
# this machine make theirs under other parents (or leave them only for a moment).
bench_cgroups() {
  own_cgroups | while read -r _ dir; do
    find "$dir" -mindepth 1 -maxdepth 1 -type d \( -name 'nscell-[0-9]*-[0-9]*-[0-9]*-[0-9]*' \
      -o -name 'nscell-bench-*' \) 2>/dev/null || true
  done | sort
}

# Fills cases with the arguments that succeed once; says which are skipped and why.
precheck() {
  cases=()
  local c err
  for c in "$@"; do
    # shellcheck disable=SC2086 # the case is a word list, as hyperfine -N splits it
    if err=$($c 2>&1 </dev/null); then
      cases+=("$c")
    else
      echo "skipped (it failed once before the run: ${err%%$'\n'*}): $c" >&2
    fi
  done
}

# Medians of a hyperfine JSON export, ratios to REF's case with the limits, and per runtime what
# the limits add and how nscell compares.
report() {
  python3 - "$1" "$nscell" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
nscell, ref = sys.argv[2:]
def med(runner, lim):
    for x in r:
        c = x["command"]
        if c.split()[0] == runner and (("--memory" in c or "/limits" in c) == lim):
            return x["median"] * 1e3
    return None
base = med(ref, True)
print(f"median wall time, ms (ratio to {ref} with the limits, from this run):")
for x in r:
    ratio = f'{x["median"] * 1e3 / base:.3f}' if base else "-"
    print(f'{x["median"] * 1e3:8.3f}  {ratio:>6}  {x["command"]}')
print()
runtimes = [p for p in ("runc", "crun") if any(x["command"].startswith(p + " ") for x in r)]
for name, runner in [("nscell", nscell)] + [(p, p) for p in runtimes]:
    a, b = med(runner, True), med(runner, False)
    print(f"{name}: the limits add {a - b:+.3f} ms" if a and b else f"{name}: no delta (a case is missing)")
for p in runtimes:
    for lim, label in ((True, "with the limits"), (False, "without limits")):
        a, b = med(nscell, lim), med(p, lim)
        print(f"nscell / {p} {label}: {a / b:.3f}" if a and b else f"nscell / {p} {label}: -")
PY
}

# The limits as the spawned program sees them in its own cgroups: in a runc container without a
# cgroup namespace /sys/fs/cgroup/<hierarchy> is the container's own cgroup; elsewhere the path
# comes from /proc/self/cgroup ("show-limits own"), or from a cgroup directory given as $2 .. $4
# for memory, pids and cpu ("show-limits dirs").
# shellcheck disable=SC2016 # expanded by the sh that runs it
show_limits_sh='
for f in memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes pids/pids.max \
  cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us; do
  h=${f%%/*}
  d=/sys/fs/cgroup/$h
  case ${1-} in
  own) d=$d$(awk -F: -v h="$h" "{ n = split(\$2, a, \",\"); for (i = 1; i <= n; i++) if (a[i] == h) print \$3 }" /proc/self/cgroup) ;;
  dirs) case $h in memory) d=$2 ;; pids) d=$3 ;; cpu) d=$4 ;; esac ;;
  esac
  echo $(cat "$d/${f#*/}")
done'

# crun 1.8 refuses a hybrid host whenever the cgroup2 tree lists any controller (here hugetlb):
# in a private mount namespace an empty file is bound over unified/cgroup.controllers. crun takes
# a relative cgroupsPath from each hierarchy's root, not from our own cgroup, so in the same
# namespace our own cgroup is bound over each hierarchy where it is not the root (here memory).
# The nscell cases run again in that namespace, so the ratios to crun are from one run; runc
# cannot run there (it mounts the container's memory cgroup from the mount point joined with our
# full cgroup path, which the bind mount has shortened).
crun_run() {
  local tmp=$1 id=$2 runs=$3 mnt dir
  local cstate=$tmp/cstate true_bin=$tmp/rootfs/bin/true
  # shellcheck disable=SC2064 # the values now
  trap "crun --root '$cstate' delete --force '$id' >/dev/null 2>&1 || true" EXIT
  : >"$tmp/empty"
  mount --bind "$tmp/empty" /sys/fs/cgroup/unified/cgroup.controllers
  while read -r mnt dir; do
    [ "$mnt" = "$dir" ] || mount --bind "$dir" "$mnt"
  done < <(own_cgroups)
  echo "crun, in a private mount namespace: unified/cgroup.controllers masked by an empty file,"
  echo "our own cgroup bound over each hierarchy's mount point where it is not the root"

  # crun's container sees another cgroup at /sys/fs/cgroup/memory here: read the limits from
  # outside while its program sleeps (cgroup files have no size: read cgroup.procs).
  crun --root "$cstate" run -b "$tmp/crun-check" "$id" </dev/null &
  local pid=$! seen
  for _ in $(seq 50); do [ -n "$(cat "/sys/fs/cgroup/cpu/$id/cgroup.procs" 2>/dev/null)" ] && break; sleep 0.02; done
  seen=$(sh -c "$show_limits_sh" sh dirs /sys/fs/cgroup/{memory,pids,cpu}/"$id" 2>&1 | paste -sd ' ') || true
  wait "$pid" || true
  echo "  crun:   $seen"
  [ "$seen" = "$want" ] || { echo "crun does not apply the limits" >&2; return 1; }

  precheck "$nscell -- $true_bin" "$nscell $limits -- $true_bin" \
    "crun --root $cstate run -b $tmp/plain $id" "crun --root $cstate run -b $tmp/limits $id"
  local json=/tmp/nscell-cgroup-crun.json
  hyperfine -N --warmup 20 --runs "$runs" --export-json "$json" "${cases[@]}" </dev/null
  echo
  report "$json" crun
  left=$(crun --root "$cstate" list -q)
  [ -z "$left" ] || { echo "crun containers left: $left" >&2; return 1; }
}
if [ "${1-}" = --crun-in-private-mount-ns ]; then
  crun_run "$2" "$3" "$4"
  exit
fi

runs=${1:-200}
for tool in hyperfine runc python3; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 1; }
done
busybox=/bin/busybox
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
  echo "$busybox is missing or not static: apt-get install -y busybox-static" >&2
  exit 1
fi

cargo build -q --release --bin nscell --features cli
tmp=$(mktemp -d)
id=nscell-bench-$$
state=$tmp/state
cleanup() {
  runc --root "$state" delete --force "$id" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
before=$(bench_cgroups)

# One rootfs (static busybox as /bin/true) and bundles made with `runc spec`: one with the
# limits, one without linux.resources, and two that check the limits. cgroupsPath is relative:
# runc's cgroupfs driver joins a relative path to the caller's own cgroup in each hierarchy
# (GetOwnCgroupPath; here the memory one is /process_api/<id>, the others /), while an absolute
# path would be taken from each hierarchy's root. `runc run` without --keep deletes the container
# and its cgroups when the process exits, so every run can use the same id.
mkdir -p "$tmp/rootfs/bin" "$state"
cp "$busybox" "$tmp/rootfs/bin/busybox"
ln -s busybox "$tmp/rootfs/bin/true"
echo "$show_limits_sh" >"$tmp/rootfs/show-limits"
for bundle in limits plain check crun-check; do
  mkdir "$tmp/$bundle"
  runc spec --bundle "$tmp/$bundle"
  python3 - "$tmp/$bundle/config.json" "$tmp/rootfs" "$id" "$bundle" <<'PY'
import json, sys
path, rootfs, cgroup, kind = sys.argv[1:]
c = json.load(open(path))
c["root"]["path"] = rootfs
c["process"]["args"] = {
    "check": ["/bin/busybox", "sh", "/show-limits"],
    "crun-check": ["/bin/busybox", "sleep", "1"],
}.get(kind, ["/bin/true"])
c["process"]["terminal"] = False
# As root: no user namespace, and no network namespace (neither has nscell's default).
c["linux"]["namespaces"] = [{"type": t} for t in ("pid", "mount", "uts", "ipc")]
c["linux"]["cgroupsPath"] = cgroup
if kind != "plain":
    c["linux"].setdefault("resources", {}).update({
        "memory": {"limit": 67108864, "swap": 67108864},
        "pids": {"limit": 50},
        "cpu": {"quota": 50000, "period": 100000},
    })
else:
    c["linux"].pop("resources", None)
json.dump(c, open(path, "w"), indent=2)
PY
done

# Both runtimes' programs must see the limits, or the bench measures nothing.
# shellcheck disable=SC2086 # a word list
if out=$($nscell $limits -- "$busybox" sh "$tmp/rootfs/show-limits" own 2>&1 </dev/null); then
  seen_nscell=$(paste -sd ' ' <<<"$out")
else
  seen_nscell="(failed: ${out%%$'\n'*})"
fi
seen_runc=$(runc --root "$state" run -b "$tmp/check" "$id" 2>&1 </dev/null | paste -sd ' ') || true
echo "limits seen inside (memory, memory+swap, pids, CPU quota, period; want $want):"
echo "  nscell: $seen_nscell"
echo "  runc:   $seen_runc"
[ "$seen_runc" = "$want" ] || { echo "runc does not apply the limits" >&2; exit 1; }
case $seen_nscell in
  "$want" | "(failed: nscell: invalid option"*) ;;
  *) echo "nscell does not apply the limits" >&2; exit 1 ;;
esac

# The same static /bin/true runs in every case, so the programs' own start-up is equal.
true_bin=$tmp/rootfs/bin/true
precheck "$nscell -- $true_bin" "$nscell $limits -- $true_bin" \
  "runc --root $state run -b $tmp/plain $id" "runc --root $state run -b $tmp/limits $id"
json=/tmp/nscell-cgroup.json
hyperfine -N --warmup 20 --runs "$runs" --export-json "$json" "${cases[@]}" </dev/null
echo
report "$json" runc

# The same cases one at a time after 100 ms of quiet, as a program that spawns now and then
# would: on cgroup v1 the first move of a task into a cgroup after a quiet spell waits for an
# RCU grace period (the cgroup_threadgroup_rwsem writer), which back-to-back runs mostly skip.
echo
echo "one spawn after 100 ms of quiet (hyperfine --prepare 'sleep 0.1', 40 runs):"
json_idle=/tmp/nscell-cgroup-idle.json
hyperfine -N --runs 40 --prepare 'sleep 0.1' --export-json "$json_idle" "${cases[@]}" </dev/null
echo
report "$json_idle" runc

if command -v crun >/dev/null; then
  echo
  unshare --mount --propagation private "$PWD/benches/cgroup.sh" --crun-in-private-mount-ns "$tmp" "$id" "$runs"
else
  echo "crun is not installed: skipped" >&2
fi

echo
# Nothing left behind: no runc container in the private state dir, no runc or crun process, and
# no such cgroup that was not there before the run (a concurrent nscell elsewhere may make one
# for a moment: a new one is checked again after a second).
left=$(runc --root "$state" list -q)
procs=$(pgrep -x 'runc|crun' || true)
new=$(comm -13 <(echo "$before") <(bench_cgroups))
[ -n "$new" ] && sleep 1 && new=$(comm -13 <(echo "$before") <(bench_cgroups))
if [ -z "$left$procs$new" ]; then
  echo "left behind: nothing (no runc container, no runc or crun process, and no new"
  echo "nscell-<pidns>-<pid>-<start>-<n> or nscell-bench-<pid> cgroup directly under our own:"
  own_cgroups | sed 's/^[^ ]* /  /'
  echo ")"
else
  echo "left behind: containers: ${left:-none}; processes: ${procs:-none}; cgroups: ${new:-none}" >&2
  exit 1
fi
