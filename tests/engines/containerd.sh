#!/bin/bash
# Run a private containerd 1.6 (Debian) and ctr with a given OCI runtime.
#
# Usage: tests/engines/containerd.sh [--extra] [--log-argv FILE] RUNTIME  (root)
#   RUNTIME          the OCI runtime binary, given to the runc v2 shim with
#                    `ctr run --runc-binary RUNTIME`
#   --extra          also: test4, run -d sleep, tasks exec (must print exec-ok),
#                    tasks ps, tasks kill (SIGTERM, then SIGKILL), tasks delete.
#   --log-argv FILE  wrap RUNTIME (argv-wrapper.sh) to append each call's argv,
#                    stdio and cwd to FILE; bundles' config.json are copied next
#                    to FILE as containerd-config.ID.json.
#
# Checks, each must pass:
#   test1: ctr run --rm --rootfs DIR test1 /bin/true        exits 0
#   test2: ctr run --rm --rootfs DIR test2 /bin/echo hi      prints hi
#   test3: a one-layer OCI image archive made here with tar and sha256sum,
#          `ctr images import`ed, then ctr run --rm IMAGE test3 /bin/echo
#          hi-image                                         prints hi-image
# Exits 0 on success, 1 with one line "containerd.sh: FAIL: reason" otherwise.
#
# Private state: one mktemp -d under /tmp, removed on exit: config.toml (root,
# state, grpc and ttrpc sockets, no debug/metrics listeners; the CRI, opt
# (/opt/containerd), tracing and unused snapshotter plugins
# are disabled), namespace nscelltest, native snapshotter, the runtime's
# --root (ctr --runc-root), ctr's fifo dir.  Not private: the runc v2 shim puts
# its socket in /run/containerd/s/HASH (path fixed in containerd 1.6; the hash
# covers our socket path, and the shim removes it); the script removes
# /run/containerd/s and /run/containerd afterwards if it created them and they
# are empty.
#
# Cgroups: ctr's default cgroupsPath is /nscelltest/ID (absolute, at the root of
# every hierarchy); the script shows it (a created, never started container)
# and instead runs with `ctr run --cgroup nscell-eng-XXXXXX/ID`, a relative
# path that runc resolves against its own cgroup in each hierarchy (the shim
# and runtime inherit ours from containerd), and removes nscell-eng-XXXXXX on
# exit.
#
# Rootless containerd needs rootlesskit (not packaged in Debian 12): this
# script only runs as root.
set -euo pipefail
export LC_ALL=C
PATH=${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}
export PATH
me=containerd.sh
say() { echo "$me: $*" >&2; }
die() {
    echo "$me: FAIL: $*" >&2
    exit 1
}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
become_subreaper "$0" "$@"
usage="usage: containerd.sh [--extra] [--log-argv FILE] RUNTIME"
argvlog='' extra=0
while [ $# -gt 0 ]; do
    case $1 in
    --log-argv) argvlog=${2:-}; shift 2 || die "$usage" ;;
    --extra) extra=1; shift ;;
    --) shift; break ;;
    -*) die "unknown option $1 ($usage)" ;;
    *) break ;;
    esac
done
[ $# -eq 1 ] || die "$usage"
[ "$(id -u)" = 0 ] || die "must run as root (rootless containerd needs rootlesskit, which Debian 12 does not package)"
runtime=$1
case $runtime in /*) ;; */*) runtime=$PWD/$runtime ;; *) runtime=$(command -v "$runtime" || echo "$PWD/$runtime") ;; esac
[ -f "$runtime" ] && [ -x "$runtime" ] || die "runtime $runtime is not an executable file"
if [ -n "$argvlog" ]; then
    case $argvlog in /*) ;; *) argvlog=$PWD/$argvlog ;; esac
    mkdir -p "$(dirname "$argvlog")" && touch "$argvlog" || die "cannot write $argvlog"
fi
for t in containerd ctr containerd-shim-runc-v2 sha256sum tar; do
    command -v "$t" >/dev/null || die "$t not found (apt-get install -y containerd)"
done
t0=$(date +%s.%N)
# Seconds any one engine command may take (a hung runtime must not hang CI).
tmo=${ENGINE_TIMEOUT:-60}
case $tmo in "" | *[!0-9]*) die "ENGINE_TIMEOUT must be a number of seconds" ;; esac

T=$(mktemp -d /tmp/nscell-eng-containerd.XXXXXX)
chmod 0711 "$T"
cgname=nscell-eng-${T##*.}
ns=nscelltest
sock=$T/containerd.sock
cdpid=
run_existed=0 s_existed=0
[ -d /run/containerd ] && run_existed=1
[ -d /run/containerd/s ] && s_existed=1
CTR=(ctr --address "$sock" --namespace "$ns")

cleanup() {
    local rc=${1:-$?} c i
    trap - EXIT
    set +e
    if [ -n "$cdpid" ] && kill -0 "$cdpid" 2>/dev/null; then
        # Whatever a failed check left: tasks, containers, images.
        for c in $(timeout 5 "${CTR[@]}" tasks ls -q 2>/dev/null); do
            timeout 5 "${CTR[@]}" tasks kill -s SIGKILL "$c" >/dev/null 2>&1
            timeout 5 "${CTR[@]}" tasks delete -f "$c" >/dev/null 2>&1
        done
        for c in $(timeout 5 "${CTR[@]}" containers ls -q 2>/dev/null); do
            timeout 5 "${CTR[@]}" containers delete "$c" >/dev/null 2>&1
        done
        for c in $(timeout 5 "${CTR[@]}" images ls -q 2>/dev/null); do
            timeout 5 "${CTR[@]}" images rm "$c" >/dev/null 2>&1
        done
        kill -TERM "$cdpid" 2>/dev/null
        for ((i = 0; i < 50; i++)); do kill -0 "$cdpid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$cdpid" 2>/dev/null
        wait "$cdpid" 2>/dev/null
    fi
    # Shims (their command line holds our socket path), stuck runtimes.
    wait_procs_mentioning "$T" 3
    kill_procs_mentioning "$T"
    kill_descendants
    umount_under "$T"
    cgroup_remove "$cgname"
    # A shim killed before it could clean up leaves its socket: the name is
    # sha256("$sock/$ns/ID") (containerd 1.6 runtime/v2/shim SocketAddress).
    for c in test0 test1 test2 test3 test4; do
        rm -f "/run/containerd/s/$(printf '%s' "$sock/$ns/$c" | sha256sum | cut -d' ' -f1)"
    done
    [ "$s_existed" = 0 ] && rmdir /run/containerd/s 2>/dev/null
    [ "$run_existed" = 0 ] && rmdir /run/containerd 2>/dev/null
    rm -rf "$T" 2>/dev/null || say "warning: could not remove all of $T"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mkdir -p "$T/root" "$T/state" "$T/runc" "$T/fifo" "$T/tmp"
export TMPDIR="$T/tmp" HOME="$T/tmp"
export CONTAINERD_SNAPSHOTTER=native CONTAINERD_NAMESPACE=$ns
unset CONTAINERD_ADDRESS

rt=$runtime
if [ -n "$argvlog" ]; then
    mkdir -p "$T/wrap" "$T/argv"
    rt="$T/wrap/$(basename "$runtime")"
    "$here/argv-wrapper.sh" "$runtime" "$rt" "$T/argv/argv.log" containerd
fi

cat >"$T/config.toml" <<EOF
version = 2
root = "$T/root"
state = "$T/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.internal.v1.opt",
  "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = ""
  level = "info"
[metrics]
  address = ""
# The tasks service will not load without the v1 runtime; keep it private.
[plugins."io.containerd.runtime.v1.linux"]
  runtime_root = "$T/runc-v1"
EOF

say "root, runtime $runtime, private dir $T, namespace $ns, snapshotter native, cgroups under our own: $cgname/ID"
"$here/rootfs.sh" "$T/rootfs" >&2 || die "could not build the busybox rootfs"

# --- containerd -------------------------------------------------------------
say "starting: containerd --config $T/config.toml (log $T/containerd.log)"
t1=$(date +%s.%N)
(cd / && exec setsid containerd --config "$T/config.toml" </dev/null >"$T/containerd.log" 2>&1) &
cdpid=$!
ready=0
for ((i = 0; i < 200; i++)); do
    kill -0 "$cdpid" 2>/dev/null || break
    if [ -S "$sock" ] && timeout 5 ctr --address "$sock" version >/dev/null 2>&1; then
        ready=1
        break
    fi
    sleep 0.05
done
if [ "$ready" != 1 ]; then
    tail -n 20 "$T/containerd.log" | sed 's/^/  containerd: /' >&2
    die "containerd did not answer on $sock within 10s"
fi
say "containerd $(ctr --address "$sock" version 2>/dev/null | awk '/Server/ {s=1} s && /Version/ {print $2; exit}') ready in $(elapsed "$t1")s"

ctr_fail() { # NAME WHAT
    sed 's/^/  ctr: /' "$T/$1.err" >&2
    tail -n 15 "$T/containerd.log" | sed 's/^/  containerd: /' >&2
    die "$2"
}

# What cgroupsPath would ctr give the runtime by default?  (Create, look, delete:
# no task, so nothing runs and no cgroup is made.)
timeout 30 "${CTR[@]}" containers create --rootfs "$T/rootfs" test0 /bin/true 2>"$T/test0.err" ||
    ctr_fail test0 "ctr containers create test0 failed"
default_cg=$(timeout 30 "${CTR[@]}" containers info test0 2>/dev/null |
    awk -F'"' '/"cgroupsPath"/ {print $4; exit}')
timeout 30 "${CTR[@]}" containers delete test0 >/dev/null 2>&1 || true
say "ctr's default cgroupsPath would be '$default_cg' (hierarchy root); using --cgroup $cgname/ID instead"

RUN=(run --rm --runc-binary "$rt" --runc-root "$T/runc" --fifo-dir "$T/fifo")
declare -A took
# check NAME EXPECTED_OUTPUT ARGS...: ctr run ARGS must exit 0 and print EXPECTED.
check() {
    local name=$1 want=$2 out rc=0 t
    shift 2
    local cmd=("${CTR[@]}" "${RUN[@]}" --cgroup "$cgname/$name" "$@")
    say "running: ${cmd[*]}"
    t=$(date +%s.%N)
    out=$(cd / && timeout "$tmo" "${cmd[@]}" </dev/null 2>"$T/$name.err") || rc=$?
    took[$name]=$(elapsed "$t")
    if [ "$rc" != 0 ]; then
        [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/  stdout: /' >&2
        [ "$rc" = 124 ] && ctr_fail "$name" "$name: ctr run timed out after ${tmo}s (ENGINE_TIMEOUT)"
        ctr_fail "$name" "$name: ctr run exited $rc (expected 0 and output '$want')"
    fi
    if [ "$out" != "$want" ]; then
        ctr_fail "$name" "$name: ctr run printed '$(printf '%s' "$out" | head -c 200 | tr '\n' ' ')', expected '$want'"
    fi
    [ -s "$T/$name.err" ] && sed 's/^/  ctr stderr: /' "$T/$name.err" >&2
    [ -n "$(cgroup_leftovers "$cgname/$name")" ] && die "$name: cgroup $cgname/$name still exists after ctr run --rm"
    say "ok: $name (${took[$name]}s)"
}

save_argv() {
    [ -n "$argvlog" ] && [ -f "$T/argv/argv.log" ] || return 0
    cat "$T/argv/argv.log" >>"$argvlog"
    for f in "$T"/argv/config.*.json; do
        [ -f "$f" ] && cp "$f" "$(dirname "$argvlog")/containerd-${f##*/}" || true
    done
}
# shellcheck disable=SC2154 # assigned in the trap itself
trap 'cleanup_rc=$?; save_argv; cleanup $cleanup_rc' EXIT

check test1 "" --rootfs "$T/rootfs" test1 /bin/true
check test2 hi --rootfs "$T/rootfs" test2 /bin/echo hi

# --- a one-layer OCI image, by hand -------------------------------------------
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
case $arch in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac
O=$T/oci
mkdir -p "$O/blobs/sha256"
blob() { # FILE MEDIATYPE -> moves FILE into blobs, prints a descriptor
    local d s
    d=$(sha256sum "$1" | cut -d' ' -f1)
    s=$(stat -c %s "$1")
    mv "$1" "$O/blobs/sha256/$d"
    printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$2" "$d" "$s"
}
tar --numeric-owner --owner=0 --group=0 --sort=name -C "$T/rootfs" -cf "$T/layer.tar" .
diffid=$(sha256sum "$T/layer.tar" | cut -d' ' -f1)
layer=$(blob "$T/layer.tar" application/vnd.oci.image.layer.v1.tar)
printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"tests/engines/containerd.sh"}]}' \
    "$arch" "$diffid" >"$T/config.json"
config=$(blob "$T/config.json" application/vnd.oci.image.config.v1+json)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}' \
    "$config" "$layer" >"$T/manifest.json"
manifest=$(blob "$T/manifest.json" application/vnd.oci.image.manifest.v1+json)
image=localhost/nscelltest/busybox:latest
printf '{"schemaVersion":2,"manifests":[%s]}' \
    "${manifest%\}},\"platform\":{\"architecture\":\"$arch\",\"os\":\"linux\"},\"annotations\":{\"io.containerd.image.name\":\"$image\",\"org.opencontainers.image.ref.name\":\"latest\"}}" \
    >"$O/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$O/oci-layout"
tar -C "$O" -cf "$T/image.tar" oci-layout index.json blobs
say "built OCI archive $T/image.tar ($(stat -c %s "$T/image.tar") bytes, layer sha256:$diffid)"
say "running: ${CTR[*]} images import --snapshotter native $T/image.tar"
t=$(date +%s.%N)
timeout "$tmo" "${CTR[@]}" images import --snapshotter native "$T/image.tar" >"$T/import.out" 2>"$T/import.err" ||
    ctr_fail import "ctr images import failed"
took[import]=$(elapsed "$t")
"${CTR[@]}" images ls -q 2>/dev/null | grep -qxF "$image" || ctr_fail import "image $image not listed after import"
say "ok: imported $image (${took[import]}s)"
check test3 hi-image --snapshotter native "$image" test3 /bin/echo hi-image

say "ok: containerd with $runtime: test1 ${took[test1]}s, test2 ${took[test2]}s, import ${took[import]}s, test3 ${took[test3]}s; whole script $(elapsed "$t0")s"
[ "$extra" = 1 ] || exit 0

# --- --extra: detached task, exec, ps, kill -------------------------------------
ctrx() { # WHAT ARGS...: run ctr, stdout to $T/x.out, die on failure
    local what=$1 rc=0
    shift
    say "running: ctr ... $*"
    (cd / && timeout "$tmo" "${CTR[@]}" "$@" </dev/null >"$T/x.out" 2>"$T/x.err") || rc=$?
    [ "$rc" = 0 ] || ctr_fail x "$what: ctr $1 exited $rc"
}
t=$(date +%s.%N)
ctrx "run -d" run -d --runc-binary "$rt" --runc-root "$T/runc" --fifo-dir "$T/fifo" --null-io \
    --cgroup "$cgname/test4" --rootfs "$T/rootfs" test4 /bin/sleep 60
ctrx exec tasks exec --fifo-dir "$T/fifo" --exec-id e1 test4 /bin/echo exec-ok
[ "$(cat "$T/x.out")" = exec-ok ] || die "exec: printed '$(head -c 200 "$T/x.out" | tr '\n' ' ')', not exec-ok"
ctrx ps tasks ps test4
stopped() { timeout 5 "${CTR[@]}" tasks ls 2>/dev/null | awk '$1 == "test4" {print $3}' | grep -q STOPPED; }
# sleep as pid 1 ignores SIGTERM (no handler), as podman stop's first signal
# does: after a second, SIGKILL.
ctrx kill tasks kill --signal SIGTERM test4
for ((i = 0; i < 10; i++)); do stopped && break; sleep 0.1; done
if ! stopped; then
    ctrx kill tasks kill --signal SIGKILL test4
    for ((i = 0; i < 100; i++)); do stopped && break; sleep 0.1; done
fi
stopped || die "test4: task not stopped 10s after SIGKILL"
ctrx "tasks delete" tasks delete test4
ctrx "containers delete" containers delete test4
[ -n "$(cgroup_leftovers "$cgname/test4")" ] && die "test4: cgroup $cgname/test4 still exists after delete"
say "ok: run -d, exec, ps, kill, delete in $(elapsed "$t")s"
