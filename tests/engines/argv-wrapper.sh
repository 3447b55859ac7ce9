#!/bin/bash
# Write an OCI runtime wrapper that logs every call and then execs the real one.
# Usage: tests/engines/argv-wrapper.sh REAL_RUNTIME WRAPPER_PATH LOG_FILE TAG
# Each call appends one line to LOG_FILE:
#   TAG TIME pid=PID uid=UID cwd=DIR fd0=... fd1=... fd2=... argv: ARG...
# (fdN is what /proc/self/fd/N points to: pipe:[..], /dev/null, a pty, a fifo
# path), and for `create`/`run` copies the bundle's config.json next to LOG_FILE
# as config.ID.json.  The wrapper's basename is REAL_RUNTIME's, because engines
# key some behaviour on the runtime's name.
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: argv-wrapper.sh REAL WRAPPER LOG TAG" >&2; exit 1; }
real=$1 wrapper=$2 log=$3 tag=$4
q() { printf '%q' "$1"; }
cat >"$wrapper" <<W
#!/bin/bash
_fd0=\$(readlink /proc/\$\$/fd/0 2>/dev/null || echo closed)
_fd1=\$(readlink /proc/\$\$/fd/1 2>/dev/null || echo closed)
_fd2=\$(readlink /proc/\$\$/fd/2 2>/dev/null || echo closed)
_verb= _bundle= _id= _skip=
for _a in "\$@"; do
    if [ -n "\$_skip" ]; then
        [ "\$_skip" = bundle ] && _bundle=\$_a
        _skip=; continue
    fi
    case \$_a in
    --bundle|-b) _skip=bundle ;;
    --bundle=*) _bundle=\${_a#--bundle=} ;;
    --root|--log|--log-format|--pid-file|--console-socket|--criu|--process|-p|--preserve-fds|--cgroup-manager|--rootless|--signal|--format|-f) _skip=1 ;;
    -*) ;;
    *) if [ -z "\$_verb" ]; then _verb=\$_a; elif [ -z "\$_id" ]; then _id=\$_a; fi ;;
    esac
done
{
    printf '%s %s pid=%s uid=%s cwd=%s fd0=%s fd1=%s fd2=%s argv:' $(q "$tag") "\$(date +%T.%N)" \$\$ "\$(id -u)" "\$PWD" "\$_fd0" "\$_fd1" "\$_fd2"
    printf ' %q' "\$@"
    printf '\n'
} >>$(q "$log") 2>/dev/null
case \$_verb in create|run)
    [ -n "\$_bundle" ] || _bundle=\$PWD
    cp "\$_bundle/config.json" $(q "$(dirname "$log")")/config.\${_id:-unknown}.json 2>/dev/null ;;
esac
[ -n "${ARGV_WRAPPER_LIMITS:-}" ] && grep -E "processes|open files" /proc/\$\$/limits >>$(q "$log")
exec $(q "$real") "\$@"
W
chmod 0755 "$wrapper"
