#!/bin/bash
# Build a minimal busybox root filesystem in DIR (which must be empty or absent).
# Usage: tests/engines/rootfs.sh DIR
# Needs Debian busybox-static (a static /bin/busybox).  Shared by podman.sh and
# containerd.sh.  Every file is world-readable so that a rootless engine (uid
# 65534 mapped to container root, or the rootfs owned by the caller) can use it.
set -euo pipefail
die() { echo "rootfs.sh: FAIL: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: rootfs.sh DIR"
dir=$1
bb=
for c in /bin/busybox /usr/bin/busybox; do
    [ -x "$c" ] && { bb=$c; break; }
done
[ -n "$bb" ] || die "no busybox (apt-get install -y busybox-static)"
# A dynamically linked busybox would need its libraries in the rootfs.
if command -v file >/dev/null 2>&1 && ! file -L "$bb" | grep -q 'statically linked'; then
    die "$bb is not statically linked (install busybox-static, not busybox)"
fi
if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then die "$dir is not empty"; fi
mkdir -p "$dir"
cd "$dir"
mkdir -p bin sbin usr/bin usr/sbin etc dev proc sys tmp root run var/tmp
chmod 1777 tmp var/tmp
chmod 0755 . bin sbin usr usr/bin usr/sbin etc dev proc sys run var root
cp "$bb" bin/busybox
chmod 0755 bin/busybox
# `busybox --list-full` gives the applets' install paths (bin/ls, usr/bin/env ...);
# fall back to bin/ for a busybox that only knows --list.
n=0
if list=$("$bb" --list-full 2>/dev/null) && [ -n "$list" ]; then
    while read -r p; do
        [ -n "$p" ] && [ "$p" != bin/busybox ] || continue
        case $p in
        */*) d=${p%/*} ;;
        *) d=. ;;
        esac
        [ -d "$d" ] || mkdir -p "$d"
        # one ../ per directory level of the applet's path
        slashes=${p//[^\/]/}
        rel=
        for ((i = 0; i < ${#slashes}; i++)); do rel=../$rel; done
        ln -sf "${rel}bin/busybox" "$p"
        n=$((n + 1))
    done <<<"$list"
else
    for a in $("$bb" --list); do
        [ "$a" = busybox ] && continue
        ln -sf busybox "bin/$a"
        n=$((n + 1))
    done
fi
# /bin/sh and /bin/true, /bin/echo must exist at these paths for the tests.
for a in sh true echo cat; do [ -e "bin/$a" ] || ln -sf busybox "bin/$a"; done
cat >etc/passwd <<'P'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat >etc/group <<'G'
root:x:0:
nobody:x:65534:
G
: >etc/hosts
: >etc/resolv.conf
echo nscell-test >etc/hostname
chmod 0644 etc/passwd etc/group etc/hosts etc/resolv.conf etc/hostname
echo "rootfs.sh: $dir: busybox $("$bb" 2>&1 | head -1 | awk '{print $2}') with $n applet links"
