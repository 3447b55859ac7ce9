#!/bin/bash
# Run real podman (Debian 4.3) with a given OCI runtime, with private state only.
#
# Usage: tests/engines/podman.sh [--rootless] [--cgroups parent|disabled]
#                                [--log-argv FILE] RUNTIME
#   RUNTIME          the OCI runtime binary (runc, crun, nscell-runtime)
#   --rootless       (as root) re-run this script as uid 65534 (nobody), adding
#                    `nobody:200000:65536` to /etc/subuid and /etc/subgid if
#                    nobody has no range.  As a non-root user the script is
#                    rootless by itself (it needs a subuid/subgid range).
#   --cgroups parent (default) `--cgroups=no-conmon --cgroup-parent=NAME`, NAME
#                    relative (nscell-eng-XXXXXX): podman passes cgroupsPath
#                    NAME/libpod-ID, which runc resolves against its own cgroup
#                    in each hierarchy, so the cgroups are created under ours;
#                    conmon stays in our cgroup; NAME is removed on exit.
#   --cgroups disabled  `--cgroups=disabled`: no cgroupsPath at all, but podman
#                    then calls the runtime with crun's global flag
#                    `--cgroup-manager disabled` (runc rejects it).
#   --cgroups default  no cgroup flags (the default when rootless: podman then
#                    gives no cgroupsPath on cgroup v1).
#   --extra          also: run -d sleep, exec (must print exec-ok), stop -t 2
#                    (SIGTERM, then SIGKILL), rm; and run -t (a console socket;
#                    must print hi).
#   --log-argv FILE  wrap RUNTIME (argv-wrapper.sh) to append each call's argv,
#                    stdio and cwd to FILE; the bundles' config.json are copied
#                    next to FILE as podman-{root,rootless}-config.ID.json.
#
# Check: `podman --runtime RUNTIME run --rm --network none --rootfs DIR
# /bin/sh -c 'echo hi'` prints exactly "hi".  Exits 0 on success, 1 with one
# line "podman.sh: FAIL: reason" otherwise.
#
# Private state: one mktemp -d under /tmp, removed on exit: containers.conf
# (CONTAINERS_CONF; cgroupfs, file events, file locks instead of
# /dev/shm/libpod_lock, tmp_dir, network_config_dir), storage.conf
# (CONTAINERS_STORAGE_CONF; vfs graphroot/runroot), an empty registries.conf,
# HOME, XDG_RUNTIME_DIR, XDG_CONFIG_HOME, XDG_DATA_HOME, TMPDIR.  The
# --root/--runroot/--tmpdir/--storage-driver/... flags repeat the config.
# Not private: podman passes no --root to the runtime, so the runtime keeps its
# state in its default root (runc: /run/runc/ID as root, $XDG_RUNTIME_DIR/runc
# rootless, i.e. ours).  `--runtime-flag root=DIR` is no cure: podman's exit
# command (`podman container cleanup`, run by conmon, which calls `delete
# --force`) does not pass runtime flags on, so create/start and that delete
# would use different roots.
set -euo pipefail
export LC_ALL=C
PATH=${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}
export PATH
me=podman.sh
say() { echo "$me: $*" >&2; }
die() {
    echo "$me: FAIL: $*" >&2
    exit 1
}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
become_subreaper "$0" "$@"
usage="usage: podman.sh [--rootless] [--cgroups parent|disabled|default] [--extra] [--log-argv FILE] RUNTIME"
rootless=0 argvlog='' cgmode='' extra=0
while [ $# -gt 0 ]; do
    case $1 in
    --rootless) rootless=1; shift ;;
    --cgroups) cgmode=${2:-}; shift 2 || die "$usage" ;;
    --cgroups=*) cgmode=${1#--cgroups=}; shift ;;
    --log-argv) argvlog=${2:-}; shift 2 || die "$usage" ;;
    --extra) extra=1; shift ;;
    --) shift; break ;;
    -*) die "unknown option $1 ($usage)" ;;
    *) break ;;
    esac
done
[ $# -eq 1 ] || die "$usage"
case $cgmode in "" | parent | disabled | default) ;; *) die "--cgroups must be parent, disabled or default" ;; esac
runtime=$1
case $runtime in /*) ;; */*) runtime=$PWD/$runtime ;; *) runtime=$(command -v "$runtime" || echo "$PWD/$runtime") ;; esac
[ -f "$runtime" ] && [ -x "$runtime" ] || die "runtime $runtime is not an executable file"
if [ -n "$argvlog" ]; then
    case $argvlog in /*) ;; *) argvlog=$PWD/$argvlog ;; esac
    mkdir -p "$(dirname "$argvlog")" && touch "$argvlog" || die "cannot write $argvlog"
fi
for t in podman conmon catatonit; do
    command -v "$t" >/dev/null || die "$t not found (apt-get install -y podman conmon catatonit)"
done
t0=$(date +%s.%N)
# Seconds any one engine command may take (a hung runtime must not hang CI).
tmo=${ENGINE_TIMEOUT:-60}
case $tmo in "" | *[!0-9]*) die "ENGINE_TIMEOUT must be a number of seconds" ;; esac

# --- as root with --rootless: re-run this script as nobody ------------------
if [ "$rootless" = 1 ] && [ "$(id -u)" = 0 ]; then
    uid=65534
    command -v setpriv >/dev/null || die "setpriv not found (util-linux)"
    for f in /etc/subuid /etc/subgid; do
        if ! grep -qE "^(nobody|$uid):" "$f" 2>/dev/null; then
            say "adding nobody:200000:65536 to $f"
            echo "nobody:200000:65536" >>"$f"
        fi
    done
    asnobody() { setpriv --reuid=$uid --regid=$uid --clear-groups -- "$@"; }
    asnobody test -x "$runtime" || die "runtime $runtime is not executable by uid $uid (a 0700 directory on its path?)"
    asnobody test -r "$here/podman.sh" -a -r "$here/rootfs.sh" -a -r "$here/lib.sh" ||
        die "$here is not readable by uid $uid"
    P=$(mktemp -d /tmp/nscell-eng-podman-nobody.XXXXXX)
    cleanup_parent() {
        local rc=$?
        trap - EXIT
        set +e
        # The child cleans up after itself; this is for a child that was killed.
        kill_procs_mentioning "$P"
        kill_descendants
        rm -rf "$P"
        exit $rc
    }
    trap cleanup_parent EXIT
    trap 'exit 130' INT TERM HUP
    chmod 0755 "$P"
    mkdir -m 0700 "$P/home" "$P/run" "$P/argv"
    chown $uid:$uid "$P/home" "$P/run" "$P/argv"
    args=()
    [ -n "$cgmode" ] && args=(--cgroups "$cgmode")
    [ "$extra" = 1 ] && args+=(--extra)
    [ -n "$argvlog" ] && args+=(--log-argv "$P/argv/argv.log")
    say "re-running as uid $uid: setpriv --reuid=$uid --regid=$uid --clear-groups env -i PATH=$PATH ENGINE_TIMEOUT=$tmo HOME=$P/home XDG_RUNTIME_DIR=$P/run bash $here/podman.sh ${args[*]} $runtime"
    rc=0
    (cd / && setpriv --reuid=$uid --regid=$uid --clear-groups -- env -i PATH="$PATH" ENGINE_TIMEOUT="$tmo" HOME="$P/home" \
        XDG_RUNTIME_DIR="$P/run" bash "$here/podman.sh" "${args[@]}" "$runtime" </dev/null) || rc=$?
    if [ -n "$argvlog" ]; then
        cat "$P/argv/argv.log" >>"$argvlog" 2>/dev/null
        for f in "$P"/argv/podman-rootless-config.*.json; do
            [ -f "$f" ] && cp "$f" "$(dirname "$argvlog")/" || true
        done
    fi
    exit $rc
fi

# --- private state ------------------------------------------------------------
myuid=$(id -u)
mode=root tag=podman
if [ "$myuid" != 0 ]; then
    mode="rootless (uid $myuid)" tag=podman-rootless
    command -v newuidmap >/dev/null || die "newuidmap not found (apt-get install -y uidmap)"
    myname=$(id -un 2>/dev/null || echo "$myuid")
    for f in /etc/subuid /etc/subgid; do
        grep -qE "^($myname|$myuid):" $f || die "no $f range for $myname (add e.g. $myname:200000:65536)"
    done
fi
T=$(mktemp -d /tmp/nscell-eng-podman.XXXXXX)
chmod 0700 "$T"
cgname=nscell-eng-${T##*.}
save_argv() {
    [ -n "$argvlog" ] && [ -f "$T/argv/argv.log" ] || return 0
    cat "$T/argv/argv.log" >>"$argvlog"
    for f in "$T"/argv/config.*.json; do
        [ -f "$f" ] && cp "$f" "$(dirname "$argvlog")/$tag-${f##*/}"
    done
    return 0
}
cleanup() {
    local rc=$? pid
    trap - EXIT
    set +e
    save_argv
    if [ -n "${PODMAN_FLAGS+x}" ]; then
        # A failed run may leave the container (and its conmon) behind.
        podman "${PODMAN_FLAGS[@]}" rm -a -f -t 0 >/dev/null 2>&1
        # Rootless: vfs layers and container dirs may belong to subuids;
        # remove them from inside the user namespace.
        [ "$myuid" != 0 ] && podman "${PODMAN_FLAGS[@]}" unshare rm -rf "$T/storage" >/dev/null 2>&1
    fi
    # The rootless pause process (catatonit -P) keeps the user namespace alive.
    # Killing it and everything else in its namespace also ends a container
    # whose processes do not name our dir.
    for pid in $(cat "$T"/run/libpod/tmp/pause.pid "$T"/tmp/pause.pid 2>/dev/null); do
        userns_kill "$pid"
    done
    # conmon outlives `podman run --rm` a little (it runs the exit command).
    wait_procs_mentioning "$T" 5 || say "warning: processes still running in $T after 5s, killing them"
    kill_procs_mentioning "$T"
    kill_descendants
    [ "$myuid" = 0 ] && umount_under "$T"
    [ "$cgmode" = parent ] && cgroup_remove "$cgname"
    rm -rf "$T" 2>/dev/null || say "warning: could not remove all of $T"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mkdir -p "$T/home" "$T/run" "$T/config" "$T/data" "$T/storage/graph" "$T/storage/run" \
    "$T/tmp" "$T/net" "$T/volumes"
export HOME="$T/home" XDG_RUNTIME_DIR="$T/run" XDG_CONFIG_HOME="$T/config" XDG_DATA_HOME="$T/data"
export TMPDIR="$T/tmp"
unset XDG_CACHE_HOME DBUS_SESSION_BUS_ADDRESS CONTAINER_HOST CONTAINER_CONNECTION REGISTRY_AUTH_FILE \
    CONTAINERS_RUNROOT CONTAINERS_GRAPHROOT STORAGE_DRIVER STORAGE_OPTS

rt=$runtime
if [ -n "$argvlog" ]; then
    mkdir -p "$T/wrap" "$T/argv"
    rt="$T/wrap/$(basename "$runtime")"
    "$here/argv-wrapper.sh" "$runtime" "$rt" "$T/argv/argv.log" "$tag"
fi

driver=vfs
cat >"$T/containers.conf" <<EOF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$T/events.log"
lock_type = "file"
tmp_dir = "$T/tmp"
volume_path = "$T/volumes"
conmon_path = ["$(command -v conmon)"]
# podman refuses --cgroups=disabled unless the runtime's name is listed here.
runtime_supports_nocgroup = ["crun", "krun", "$(basename "$runtime")"]
[network]
network_config_dir = "$T/net"
EOF
cat >"$T/storage.conf" <<EOF
[storage]
driver = "$driver"
graphroot = "$T/storage/graph"
runroot = "$T/storage/run"
EOF
: >"$T/registries.conf"
export CONTAINERS_CONF="$T/containers.conf" CONTAINERS_STORAGE_CONF="$T/storage.conf" \
    CONTAINERS_REGISTRIES_CONF="$T/registries.conf"

# As root, podman asks for nofile=1048576 and nproc=4194304; root here lacks
# CAP_SYS_RESOURCE and cannot raise a hard limit, so ask for what we have.
# podman itself runs (so conmon and the runtime run) with nproc lowered to
# 32768 on this host (pid_max), so nproc is the least of those.
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
nproc=$(ulimit -Hu)
[ "$nproc" = unlimited ] && nproc=4194304
for n in "$(cat /proc/sys/kernel/pid_max 2>/dev/null || echo 32768)" 32768; do
    [ "$n" -lt "$nproc" ] && nproc=$n
done
if [ -z "$cgmode" ]; then
    cgmode=parent
    [ "$myuid" = 0 ] || cgmode=default
fi
case $cgmode in
disabled) cgargs=(--cgroups=disabled) ;;
parent) cgargs=(--cgroups=no-conmon "--cgroup-parent=$cgname") ;;
default) cgargs=() ;;
esac
say "$mode, runtime $runtime, private dir $T, storage $driver, cgroups: $cgmode ${cgargs[*]}, nofile $nofile, nproc $nproc"

"$here/rootfs.sh" "$T/rootfs" >&2 || die "could not build the busybox rootfs"

PODMAN_FLAGS=(--root "$T/storage/graph" --runroot "$T/storage/run" --tmpdir "$T/tmp"
    --storage-driver "$driver" --cgroup-manager cgroupfs --events-backend file
    --runtime "$rt")
cmd=(podman "${PODMAN_FLAGS[@]}" run --rm --network none "${cgargs[@]}"
    --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc"
    --rootfs "$T/rootfs" /bin/sh -c 'echo hi')
say "running: ${cmd[*]}"
rc=0
t1=$(date +%s.%N)
out=$(cd / && timeout "$tmo" "${cmd[@]}" </dev/null 2>"$T/stderr") || rc=$?
trun=$(elapsed "$t1")
if [ "$rc" != 0 ] || [ "$out" != hi ]; then
    [ "$rc" = 124 ] && die "podman run ($mode) did not finish within ${tmo}s (ENGINE_TIMEOUT)"
    sed 's/^/  podman stderr: /' "$T/stderr" >&2
    [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/  podman stdout: /' >&2
    die "podman run ($mode) exited $rc and printed '$(printf '%s' "$out" | head -c 200 | tr '\n' ' ')', not 'hi'"
fi
[ -s "$T/stderr" ] && sed 's/^/  podman stderr: /' "$T/stderr" >&2
say "ok: podman run ($mode) printed hi; podman run took ${trun}s, whole script $(elapsed "$t0")s"
[ "$extra" = 1 ] || exit 0

# --- --extra: detached, exec, stop, tty -----------------------------------------
P2=("${PODMAN_FLAGS[@]}")
common=(--network none "${cgargs[@]}" --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc"
    --rootfs "$T/rootfs")
podx() { # WHAT ARGS...: run podman, stdout to $T/x.out, die on failure
    local what=$1 rc=0
    shift
    say "running: podman ... $*"
    (cd / && timeout "$tmo" podman "${P2[@]}" "$@" </dev/null >"$T/x.out" 2>"$T/x.err") || rc=$?
    [ "$rc" = 124 ] && die "$what ($mode): podman $1 did not finish within ${tmo}s (ENGINE_TIMEOUT)"
    if [ "$rc" != 0 ]; then
        sed 's/^/  podman stderr: /' "$T/x.err" >&2
        die "$what ($mode): podman $1 exited $rc"
    fi
}
t1=$(date +%s.%N)
podx "run -d" run -d --name nscell-bg "${common[@]}" /bin/sleep 60
podx exec exec nscell-bg /bin/echo exec-ok
[ "$(cat "$T/x.out")" = exec-ok ] || die "exec ($mode): printed '$(head -c 200 "$T/x.out" | tr '\n' ' ')', not exec-ok"
podx stop stop -t 2 nscell-bg
podx rm rm nscell-bg
say "ok: run -d, exec, stop, rm ($mode) in $(elapsed "$t1")s"
t1=$(date +%s.%N)
podx "run -t" run --rm -t "${common[@]}" /bin/sh -c 'echo hi'
[ "$(tr -d '\r' <"$T/x.out")" = hi ] || die "run -t ($mode): printed '$(head -c 200 "$T/x.out" | tr '\r\n' '  ')', not hi"
say "ok: run -t ($mode) printed hi in $(elapsed "$t1")s"
