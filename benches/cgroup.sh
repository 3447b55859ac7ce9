#!/usr/bin/env bash
# cgroup limits (issue 12): the nscell binary with memory + pids + CPU limits next to the same spawn
# without them, and next to `runc run` of an OCI bundle with the same linux.resources and of one
# without linux.resources, in one hyperfine run; then the limits' cost (delta of the medians) and
# the ratio to runc. Afterwards it checks that no cgroup, runc state or process is left behind.
# Usage: benches/cgroup.sh [RUNS]   (as root; needs hyperfine, runc, python3 and busybox-static:
# `apt-get install -y runc busybox-static`). The bundle is generated in a temporary directory.
# A case whose command fails once in a pre-check (e.g. an nscell without the limit options) is
# skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200}
[ "$(id -u)" = 0 ] || { echo "run as root: runc and the cgroup v1 hierarchies need it" >&2; exit 1; }
for tool in hyperfine runc python3; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 1; }
done
busybox=/bin/busybox
[ -x "$busybox" ] && ! ldd "$busybox" >/dev/null 2>&1 ||
  { echo "$busybox is missing or not static: apt-get install -y busybox-static" >&2; exit 1; }

cargo build -q --release --bin nscell --features cli
nscell=$PWD/target/release/nscell
tmp=$(mktemp -d)
id=nscell-bench-$$
state=$tmp/state
cleanup() {
  runc --root "$state" delete --force "$id" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# The directory of our own cgroup in each mounted hierarchy (v1 and the v2 one): the mount point
# joined with our path (/proc/self/cgroup) relative to the mount's root (mountinfo).
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
        print(os.path.normpath(mnt + "/" + os.path.relpath(own[key], root)))
PY
}
# The nscell-* cgroups (nscell's own and runc's nscell-bench-PID) under our own cgroups.
bench_cgroups() {
  own_cgroups | while read -r dir; do
    find "$dir" -mindepth 1 -maxdepth 2 -type d -name 'nscell-*' 2>/dev/null || true
  done | sort
}

before=$(bench_cgroups)

# One rootfs (static busybox as /bin/true) and bundles made with `runc spec`: one with the
# limits, one without linux.resources. cgroupsPath is relative: runc's cgroupfs driver joins a
# relative path to the caller's own cgroup in each hierarchy (GetOwnCgroupPath; here the memory
# one is /process_api/<id>, the others /), while an absolute path would be taken from each
# hierarchy's root. `runc run` without --keep deletes the container and its cgroups when the
# process exits, so every run can use the same id.
mkdir -p "$tmp/rootfs/bin" "$tmp/limits" "$tmp/plain" "$tmp/check" "$state"
cp "$busybox" "$tmp/rootfs/bin/busybox"
ln -s busybox "$tmp/rootfs/bin/true"
# The check bundle is the limits one running show-limits (below) instead of /bin/true.
for bundle in limits plain check; do
  runc spec --bundle "$tmp/$bundle"
  python3 - "$tmp/$bundle/config.json" "$tmp/rootfs" "$id" "$bundle" <<'PY'
import json, sys
path, rootfs, cgroup, kind = sys.argv[1:]
c = json.load(open(path))
c["root"]["path"] = rootfs
c["process"]["args"] = ["/bin/true"] if kind != "check" else ["/bin/busybox", "sh", "/show-limits"]
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

# The limits as the spawned program sees them in its own cgroups (in a runc container without a
# cgroup namespace /sys/fs/cgroup/<hierarchy> is the container's own cgroup; elsewhere the path
# comes from /proc/self/cgroup). Both must show the limits, or the bench measures nothing.
cat >"$tmp/rootfs/show-limits" <<'SH'
for f in memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes pids/pids.max \
  cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us; do
  h=${f%%/*}
  p=
  [ "${1-}" = own ] && p=$(awk -F: -v h="$h" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == h) print $3 }' /proc/self/cgroup)
  echo $(cat "/sys/fs/cgroup/$h$p/${f#*/}")
done
SH
limits="--memory 64m --memory-swap 64m --pids-limit 50 --cpus 0.5"
want="67108864 67108864 50 50000 100000"
# shellcheck disable=SC2086 # a word list
seen_nscell=$($nscell $limits -- "$busybox" sh "$tmp/rootfs/show-limits" own 2>&1 </dev/null) &&
  seen_nscell=$(echo $seen_nscell) || seen_nscell="(failed: ${seen_nscell%%$'\n'*})"
seen_runc=$(echo $(runc --root "$state" run -b "$tmp/check" "$id" 2>&1 </dev/null)) || true
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
candidates=(
  "$nscell -- $true_bin"
  "$nscell $limits -- $true_bin"
  "runc --root $state run -b $tmp/plain $id"
  "runc --root $state run -b $tmp/limits $id"
)
cases=()
for c in "${candidates[@]}"; do
  # shellcheck disable=SC2086 # the case is a word list, as hyperfine -N splits it
  if err=$($c 2>&1 </dev/null); then
    cases+=("$c")
  else
    echo "skipped (it failed once before the run: ${err%%$'\n'*}): $c" >&2
  fi
done
json=/tmp/nscell-cgroup.json
hyperfine -N --warmup 20 --runs "$runs" --export-json "$json" "${cases[@]}" </dev/null

echo
echo "median wall time, ms (ratios to runc with the limits, from this run):"
python3 - "$json" "$nscell" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
nscell = sys.argv[2]
def med(runner, lim):
    for x in r:
        c = x["command"]
        if c.split()[0] == runner and (("--memory" in c or "/limits" in c) == lim):
            return x["median"] * 1e3
    return None
ref = med("runc", True)
for x in r:
    ratio = f'{x["median"] * 1e3 / ref:.3f}' if ref else "-"
    print(f'{x["median"] * 1e3:8.3f}  {ratio:>6}  {x["command"]}')
print()
for name, runner in (("nscell", nscell), ("runc", "runc")):
    a, b = med(runner, True), med(runner, False)
    print(f"{name}: the limits add {a - b:+.3f} ms" if a and b else f"{name}: no delta (a case is missing)")
for lim, label in ((True, "with the limits"), (False, "without limits")):
    a, b = med(nscell, lim), med("runc", lim)
    print(f"nscell / runc {label}: {a / b:.3f}" if a and b else f"nscell / runc {label}: -")
PY

echo
# Nothing left behind: no runc container in the private state dir, no runc process, and no
# nscell-* cgroup that was not there before the run (a concurrent nscell elsewhere may create
# one for a moment: a new one is checked again after a second).
left=$(runc --root "$state" list -q)
procs=$(pgrep -x runc || true)
new=$(comm -13 <(echo "$before") <(bench_cgroups))
[ -n "$new" ] && sleep 1 && new=$(comm -13 <(echo "$before") <(bench_cgroups))
if [ -z "$left$procs$new" ]; then
  echo "left behind: nothing (no runc container, no runc process, no new nscell-* cgroup under:"
  own_cgroups | sed 's/^/  /'
  echo ")"
else
  echo "left behind: containers: ${left:-none}; runc processes: ${procs:-none}; cgroups: ${new:-none}" >&2
  exit 1
fi
