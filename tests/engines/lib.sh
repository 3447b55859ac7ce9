# shellcheck shell=bash
# Helpers shared by the engine harnesses (sourced, not run).

# become_subreaper SCRIPT ARGS...: re-exec the calling script (once) as a child
# subreaper (prctl PR_SET_CHILD_SUBREAPER, through perl), so that daemons that
# double-fork (conmon, containerd-shim, runtime inits) stay our descendants:
# cleanup can find them all, and bash reaps them (this VM's PID 1 reaps late).
become_subreaper() {
    [ -n "${NSCELL_ENG_SUBREAPER:-}" ] && return 0
    command -v perl >/dev/null 2>&1 || return 0
    export NSCELL_ENG_SUBREAPER=1
    exec perl -e 'require "syscall.ph"; syscall(&SYS_prctl(), 36, 1) == 0 or warn "prctl(PR_SET_CHILD_SUBREAPER): $!\n"; exec @ARGV or die "exec: $!\n"' bash "$@"
}

# descendants_of PID: every live descendant of PID (from /proc/*/stat).
descendants_of() {
    awk -v root="$1" '
        FNR == 1 {
            pid = FILENAME; sub(/^\/proc\//, "", pid); sub(/\/stat$/, "", pid)
            s = $0; sub(/^.*\) /, "", s); split(s, f, " ")
            kids[f[2]] = kids[f[2]] " " pid
        }
        END {
            n = 1; q[1] = root
            for (i = 1; i <= n; i++) {
                m = split(kids[q[i]], k, " ")
                for (j = 1; j <= m; j++) { q[++n] = k[j]; print k[j] }
            }
        }' /proc/[0-9]*/stat 2>/dev/null
    return 0
}

# kill_descendants: SIGKILL every descendant of this shell (run last in a
# cleanup, after the engine had its chance to stop what it started).
kill_descendants() {
    local pids i
    pids=$(descendants_of $$)
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
    # Give bash a moment to reap them (as subreaper it inherited them), so no
    # zombie is left to this VM's late-reaping PID 1.
    for ((i = 0; i < 10; i++)); do
        [ -z "$(descendants_of $$ | while read -r p; do
            [ -e "/proc/$p" ] && [ "$(cut -d' ' -f3 "/proc/$p/stat" 2>/dev/null)" = Z ] && echo "$p"
        done)" ] && break
        sleep 0.1
    done
    return 0
}

# cgroup_own_dirs: one line per mounted cgroup hierarchy (v1 and v2), the
# directory of this process's own cgroup in it, from /proc/self/cgroup and
# /proc/self/mountinfo (so a relative cgroupsPath NAME lands in DIR/NAME: runc
# resolves a relative path against its own cgroup in every hierarchy).
cgroup_own_dirs() {
    local ctrls path found root mnt rel
    while IFS=: read -r _ ctrls path; do
        found=$(awk -v c="$ctrls" '
            {
                sep = 0
                for (i = 7; i <= NF; i++) if ($i == "-") { sep = i; break }
                if (!sep) next
                fstype = $(sep + 1); opts = $(sep + 3)
                if (c == "" && fstype == "cgroup2") { print $4 " " $5; exit }
                if (c != "" && fstype == "cgroup") {
                    split(c, cc, ",")
                    n = split(opts, o, ",")
                    for (j = 1; j <= n; j++) if (o[j] == cc[1]) { print $4 " " $5; exit }
                }
            }' /proc/self/mountinfo)
        [ -n "$found" ] || continue
        root=${found%% *} mnt=${found#* }
        rel=$path
        [ "$root" != / ] && rel=${path#"$root"}
        rel=${rel%/}
        echo "$mnt$rel"
    done </proc/self/cgroup
}

# cgroup_leftovers NAME: print DIR/NAME for each hierarchy where it exists.
cgroup_leftovers() {
    local d
    for d in $(cgroup_own_dirs); do
        [ -d "$d/$1" ] && echo "$d/$1"
    done
    return 0
}

# cgroup_kill NAME: SIGKILL every process in DIR/NAME or below, in every
# hierarchy (a container's processes whose command lines do not name our dir),
# then wait up to 2s for the cgroups to empty.
cgroup_kill() {
    local d pids i
    case $1 in "" | */.. | ../* | */../* | ..) return 1 ;; esac
    for ((i = 0; i < 20; i++)); do
        pids=
        for d in $(cgroup_leftovers "$1"); do
            pids="$pids $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null)"
        done
        pids=$(echo $pids)
        [ -n "$pids" ] || return 0
        [ "$i" = 0 ] && echo "killing processes left in cgroup $1: $pids" >&2
        kill -9 $pids 2>/dev/null
        sleep 0.1
    done
    return 0
}

# userns_kill PID: SIGKILL every process in PID's user namespace (a rootless
# engine's namespace: the pause process, conmon's children, the container),
# unless that is our own namespace.
userns_kill() {
    local ns f pid
    ns=$(readlink "/proc/$1/ns/user" 2>/dev/null) || return 0
    [ "$ns" = "$(readlink /proc/self/ns/user)" ] && return 0
    for f in /proc/[0-9]*/ns/user; do
        [ "$(readlink "$f" 2>/dev/null)" = "$ns" ] || continue
        pid=${f#/proc/}
        pid=${pid%/ns/user}
        kill -9 "$pid" 2>/dev/null
    done
    return 0
}

# cgroup_remove NAME: rmdir DIR/NAME (children first) in every hierarchy.
# Only ever called with a name that is ours alone (it contains our mktemp
# suffix), so this removes nothing of anyone else's.
cgroup_remove() {
    local d
    case $1 in "" | */.. | ../* | */../* | ..) return 1 ;; esac
    cgroup_kill "$1"
    for d in $(cgroup_leftovers "$1"); do
        find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
        [ -d "$d" ] && echo "warning: could not remove cgroup $d" >&2
    done
    return 0
}

# kill_procs_mentioning DIR: SIGKILL, by pid, every process (other than this
# shell) whose command line contains DIR: with DIR our private mktemp dir,
# these are processes we started (daemons, conmon, shims, stuck runtimes).
kill_procs_mentioning() {
    local f pid
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}
        pid=${pid%/cmdline}
        [ "$pid" = $$ ] || [ "$pid" = "${BASHPID:-$$}" ] && continue
        if { tr '\0' ' ' <"$f" | grep -qF -- "$1"; } 2>/dev/null; then
            kill -9 "$pid" 2>/dev/null && echo "killed leftover pid $pid: $({ tr '\0' ' ' <"$f" | head -c 120; } 2>/dev/null)" >&2
        fi
    done
    return 0
}

# procs_mentioning DIR: the pids (other than this shell) whose command line
# contains DIR.
procs_mentioning() {
    local f pid
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}
        pid=${pid%/cmdline}
        [ "$pid" = $$ ] || [ "$pid" = "${BASHPID:-$$}" ] && continue
        { tr '\0' ' ' <"$f" | grep -qF -- "$1"; } 2>/dev/null && echo "$pid"
    done
    return 0
}

# wait_procs_mentioning DIR SECONDS: wait until no process mentions DIR (an
# engine's helper, e.g. conmon running podman's exit command, finishing on its
# own), at most SECONDS.
wait_procs_mentioning() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        [ -z "$(procs_mentioning "$1")" ] && return 0
        sleep 0.1
    done
    return 1
}

# umount_under DIR: lazily unmount everything mounted at or below DIR,
# deepest first.
umount_under() {
    local m
    for m in $(awk -v t="$1" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
        umount -l "$m" 2>/dev/null || echo "warning: could not unmount $m" >&2
    done
    return 0
}

# elapsed T0: seconds since T0 (a `date +%s.%N`), two decimals.
elapsed() { echo "$(date +%s.%N) $1" | awk '{printf "%.2f", $1 - $2}'; }
