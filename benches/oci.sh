#!/usr/bin/env bash
# OCI runtimes side by side in one hyperfine run: crun, runc and nscell-runtime (each one skipped
# with a message when absent), two cases each on the same bundle (static busybox as /bin/true):
#   run    RUNTIME --root STATE run --bundle B ID
#   cycle  RUNTIME --root STATE create --bundle B ID, start ID, `state ID` until it says stopped,
#          delete ID (one sh script, benches' $work/cycle; /bin/true exits right after start)
# then the mean of each case as a ratio to crun's in the same run, and what is left behind.
# Usage: benches/oci.sh [RUNS]   (as root; needs hyperfine, python3, util-linux, busybox-static and
# runc for `runc spec`). BENCH_UID=65534 runs the runtimes as that user (setpriv) on a bundle made
# with `runc spec --rootless` by that user. nscell-runtime: $NSCELL_RUNTIME, or
# target/release/nscell-runtime when present (not built here).
#
# Cgroups: linux.resources is removed and linux.cgroupsPath is absolute: our deepest own cgroup
# (/proc/self/cgroup; here memory:/process_api/<id>, the others /) + /nscell-oci-<pid>/<case>.
# Without cgroupsPath runc 1.1 (cgroupfs driver) uses the container id relative to our own cgroup
# in each hierarchy, i.e. /sys/fs/cgroup/cpu/<id> at the root of every hierarchy where we are at /;
# an absolute path is taken from each hierarchy's root by runc and crun alike. The runtimes remove
# the leaf on delete; the parents they made (a process_api/<id> chain in the hierarchies where it
# did not exist) are removed here at exit. Rootless, no cgroupsPath: runc ignores a cgroup it may
# not make only without one (fs.Apply), and BENCH_UID can write nowhere under /sys/fs/cgroup.
#
# crun 1.8 refuses a hybrid host whose cgroup2 tree lists a controller (here hugetlb): the whole
# hyperfine (every runtime, so the ratios are from one run) runs in one private mount namespace
# with an empty file bound over /sys/fs/cgroup/unified/cgroup.controllers, so no iteration pays
# for a wrapper; runc's cgroupfs driver does not read that file. The wrapper's own cost per
# iteration (unshare + mount), had it been used, is measured apart and printed.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-100}
[ "$(id -u)" = 0 ] || { echo "run as root (BENCH_UID=65534 for the rootless runs)" >&2; exit 1; }
for tool in hyperfine python3 unshare setpriv runc; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 1; }
done
busybox=/bin/busybox
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
  echo "$busybox is missing or not static: apt-get install -y busybox-static" >&2
  exit 1
fi

work=$(mktemp -d /tmp/nscell-oci.XXXXXX)
chmod 755 "$work"
as=()
mode=root
if [ -n "${BENCH_UID:-}" ]; then
  as=(setpriv --reuid="$BENCH_UID" --regid="$BENCH_UID" --clear-groups env -u XDG_RUNTIME_DIR HOME=/)
  mode="rootless (uid $BENCH_UID)"
fi

# The runtimes: name and path (nscell-runtime copied into $work so BENCH_UID can run it).
names=() paths=()
nscell=${NSCELL_RUNTIME:-target/release/nscell-runtime}
for entry in crun=/usr/bin/crun runc=/usr/sbin/runc "nscell-runtime=$nscell"; do
  name=${entry%%=*} path=${entry#*=}
  if [ ! -x "$path" ]; then
    echo "$name: $path is not present: skipped" >&2
    continue
  fi
  if [ "$name" = nscell-runtime ]; then
    mkdir -p "$work/bin" && cp "$path" "$work/bin/" && path=$work/bin/nscell-runtime
  fi
  names+=("$name") paths+=("$path")
done
[ ${#names[@]} -gt 0 ] || { echo "no runtime to measure" >&2; exit 1; }

# Our own cgroups: the deepest path must lie below every other one (true here: one is
# /process_api/<id>, the others /), so a path below it is below our own cgroup in every hierarchy.
own=$(python3 - <<'PY'
paths = sorted({l.rstrip("\n").split(":", 2)[2] for l in open("/proc/self/cgroup")}, key=len)
deep = paths[-1]
for p in paths:
    if not (p == "/" or deep == p or deep.startswith(p.rstrip("/") + "/")):
        raise SystemExit(f"our cgroups are not nested: {paths}")
print(deep.rstrip("/"))
PY
)
cg_parent=$own/nscell-oci-$$
cg_dirs() { find /sys/fs/cgroup -mindepth 1 -type d 2>/dev/null | sort; }
cg_before=$(cg_dirs)
# The dirs along our chain that were not there before, deepest first (rmdir fails on a busy or
# non-empty cgroup, so another tenant's cgroup can never be removed).
ours() {
  comm -13 <(echo "$cg_before") <(cg_dirs) | python3 -c '
import sys
parent = sys.argv[1]
chain = [parent]
while chain[-1] not in ("", "/"):
    chain.append(chain[-1].rsplit("/", 1)[0])
for d in sorted(sys.stdin.read().split(), key=len, reverse=True):
    rel = "/" + "/".join(d.split("/")[5:])  # drop /sys/fs/cgroup/<hierarchy>
    if rel in chain or rel.startswith(parent + "/") or rel.endswith(("/oci-run", "/oci-cycle")):
        print(d)' "$cg_parent"
}
cleanup() {
  local i id
  for i in "${!names[@]}"; do
    for id in $("${as[@]}" "${paths[i]}" --root "$work/state-${names[i]}" list -q 2>/dev/null); do
      "${as[@]}" "${paths[i]}" --root "$work/state-${names[i]}" delete -f "$id" >/dev/null 2>&1 || true
    done
  done
  ours | xargs -r rmdir 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The bundle: static busybox as /bin/true; config.json from `runc spec` (as BENCH_UID with
# --rootless), without a terminal or linux.resources, and with our cgroupsPath.
bundle=$work/bundle
mkdir -p "$bundle/rootfs/bin"
cp "$busybox" "$bundle/rootfs/bin/busybox"
ln -s busybox "$bundle/rootfs/bin/true"
for name in "${names[@]}"; do mkdir "$work/state-$name"; done
if [ -n "${BENCH_UID:-}" ]; then
  chown -R "$BENCH_UID:$BENCH_UID" "$work"
  (cd "$bundle" && "${as[@]}" runc spec --rootless)
else
  runc spec --bundle "$bundle"
fi
cgroup=$cg_parent/bench
[ -z "${BENCH_UID:-}" ] || cgroup=
python3 - "$bundle/config.json" "$cgroup" <<'PY'
import json, sys
path, cgroup = sys.argv[1:]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["linux"].pop("resources", None)
if cgroup:
    c["linux"]["cgroupsPath"] = cgroup
else:
    c["linux"].pop("cgroupsPath", None)
json.dump(c, open(path, "w"), indent=2)
PY

# Case cycle: one container through its life. /bin/true may be gone before `start` returns, so
# the loop accepts stopped at the first look; it fails (and so does hyperfine) if the container
# is not stopped after 1000 looks. The looks past the first are counted in STATE/polls.
cat >"$work/cycle" <<'SH'
#!/bin/sh
r=$1 s=$2 b=$3 id=$4
"$r" --root "$s" create --bundle "$b" "$id" || exit 1
"$r" --root "$s" start "$id" || exit 1
n=0
until "$r" --root "$s" state "$id" | grep -q '"status": *"stopped"'; do
  n=$((n + 1))
  [ "$n" -lt 1000 ] || { echo "$id: not stopped after $n looks" >&2; exit 1; }
done
[ "$n" -eq 0 ] || echo "$n" >>"$s/polls"
exec "$r" --root "$s" delete "$id"
SH
chmod 755 "$work/cycle"

# hyperfine's arguments: per case, every runtime; a --prepare per command force-deletes a
# container of that id that a failed iteration may have left (not timed).
args=()
for case in run cycle; do
  for i in "${!names[@]}"; do
    r=${paths[i]} n=${names[i]} s=$work/state-${names[i]} id=oci-$case
    if [ "$case" = run ]; then
      cmd="$r --root $s run --bundle $bundle $id"
    else
      cmd="$work/cycle $r $s $bundle $id"
    fi
    args+=(-n "$n $case" -p "sh -c '$r --root $s delete -f $id >/dev/null 2>&1; true'" "$cmd")
  done
done

ctl=/sys/fs/cgroup/unified/cgroup.controllers
wrap=()
if [ -n "$(cat "$ctl" 2>/dev/null)" ] && [ "$(stat -f -c %T /sys/fs/cgroup)" = tmpfs ]; then
  : >"$work/empty"
  # shellcheck disable=SC2016 # expanded by that sh
  wrap=(unshare -m --propagation private sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh
    "$work/empty" "$ctl")
  echo "hybrid cgroups with controllers in the cgroup2 tree ($(cat "$ctl")): the run is in a"
  echo "private mount namespace where an empty file is bound over $ctl (for crun 1.8)."
  echo "What that wrapper would cost per iteration (not paid by the bench), as root:"
  hyperfine -N --warmup 20 --runs "$runs" --style none --export-json "$work/wrap.json" true \
    "unshare -m --propagation private sh -c 'mount --bind $work/empty $ctl && exec true'" >/dev/null
  python3 - "$work/wrap.json" <<'PY'
import json, sys
a, b = (x["mean"] * 1e3 for x in json.load(open(sys.argv[1]))["results"])
print(f"  true {a:.3f} ms; unshare -m + mount --bind + true {b:.3f} ms: the wrapper adds {b - a:.3f} ms")
PY
fi

# A subreaper above hyperfine, as a container manager's shim is: a container's init outlives
# `create` and would be left to PID 1 (which reaps it only now and then) after it exits.
cat >"$work/reaper" <<'PY'
import ctypes, os, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
child = os.fork()
if child == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
orphans = 0
while True:
    pid, status = os.wait()
    if pid == child:
        break
    orphans += 1
try:
    alive = os.waitpid(-1, os.WNOHANG)
except ChildProcessError:
    alive = None
print(f"subreaper: {orphans} orphaned processes reaped; "
      f"{'a descendant still runs' if alive else 'no descendant left'}", file=sys.stderr)
sys.exit(os.waitstatus_to_exitcode(status))
PY

echo
echo "mode: $mode; runtimes: ${names[*]}; $runs runs per case"
"${wrap[@]}" python3 "$work/reaper" "${as[@]}" hyperfine -N --warmup 10 --runs "$runs" --style basic \
  --export-json "$work/oci.json" --export-markdown "$work/oci.md" "${args[@]}" </dev/null
echo
cat "$work/oci.md"
echo
echo "mean wall time, ms, and ratio to crun in this run:"
python3 - "$work/oci.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
for case in ("run", "cycle"):
    base = r.get(f"crun {case}")
    for name, x in r.items():
        if name.endswith(" " + case):
            ratio = f'{x["mean"] / base["mean"]:.3f}' if base else "-"
            print(f'{case:5}  {name.split()[0]:15} {x["mean"] * 1e3:8.3f} ± {x["stddev"] * 1e3:6.3f}'
                  f'  {name.split()[0]}/crun {ratio}')
PY
for name in "${names[@]}"; do
  f=$work/state-$name/polls
  [ -s "$f" ] && echo "$name cycle: 'state' said running after start in $(wc -l <"$f") iterations (max $(sort -n "$f" | tail -1) extra looks)"
done

echo
echo "left behind (before the script's own cleanup):"
for i in "${!names[@]}"; do
  left=$("${as[@]}" "${paths[i]}" --root "$work/state-${names[i]}" list -q 2>&1 | paste -sd ' ')
  echo "  ${names[i]} list: ${left:-no container}"
done
procs=$(ps -eo pid=,ppid=,stat=,comm= | awk '$4 ~ /^(runc|crun|nscell-runtime|busybox|runc:.*)$/' |
  paste -sd ';' || true)
zombies=$(ps -eo stat=,pid=,ppid=,comm= | awk '$1 ~ /^Z/' | paste -sd ';' || true)
echo "  processes of runc, crun, nscell-runtime or busybox: ${procs:-none}; zombies: ${zombies:-none}"
leaves=$(ours | grep -E '/oci-(run|cycle)$|/bench$' || true)
echo "  container cgroups: ${leaves:-none}"
echo "  empty parents the runtimes made (removed now): $(ours | wc -l)"
cleanup
trap - EXIT
left=$(ours | paste -sd ' ')
echo "  after cleanup, our cgroup dirs (chain to $cg_parent, new since the start): ${left:-none}"
