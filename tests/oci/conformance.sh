#!/usr/bin/env bash
# Runs opencontainers/runtime-tools' validation/ conformance suite against an OCI runtime binary
# and prints each test's TAP counts and the total. No network: the runtime-tools source comes
# from a local git directory and builds offline from its vendored modules.
#
#   tests/oci/conformance.sh --build              clone/check out/build runtime-tools in $RT_DIR
#   tests/oci/conformance.sh --wrappers DIR       write runtime wrappers (private --root) to DIR
#   tests/oci/conformance.sh RUNTIME [OUTDIR]     run the suite; TAP kept in OUTDIR
#
# Run it as the user whose mode is measured (rootless: setpriv --reuid=65534 ...; see
# tests/oci/README-conformance.md). It always exits 0 once the suite has run: the counts are
# the result. Environment:
#   RT_DIR     runtime-tools build dir (default /tmp/rt-src); needs validation/*/*.t,
#              runtimetest and rootfs-amd64.tar.gz, readable by the running user.
#   RT_GIT     git dir to clone from for --build (default: the fetch mirror below).
#   RT_COMMIT  commit to build (default f7e3563b, the last commit before 2025-03-01).
#   BUSYBOX    static busybox for the rootfs (default /bin/busybox, Debian busybox-static).
#   TIMEOUT    seconds per test binary (default 60).
#   TESTS      space-separated test names to run (default: every validation/*/ test).
#   CGROUP_TESTS=1  also run the 16 tests that set linux.cgroupsPath (/cgrouptest,
#              testdir/cgrouptest: as root they create cgroups at the top of every v1
#              hierarchy, outside the caller's own cgroup). Off by default; when on, the
#              empty cgroups they leave are removed after each test.
set -euo pipefail

RT_DIR=${RT_DIR:-/tmp/rt-src}
RT_GIT=${RT_GIT:-/work/.mirror/opencontainers+runtime-tools/repo}
RT_COMMIT=${RT_COMMIT:-f7e3563b0271e5cd52d5c915684ea11ef2779572}
BUSYBOX=${BUSYBOX:-/bin/busybox}
TIMEOUT=${TIMEOUT:-60}

usage() {
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# The suite's tests untar rootfs-$GOARCH.tar.gz into each bundle: a busybox with a symlink per
# applet in bin/ (the tests run sh, true, ls, sleep, cat...), plus etc/passwd, etc/group and
# the empty mount points. Built reproducibly (sorted, owner 0, mtime 0).
build_rootfs() { # output tarball
  local root
  root=$(mktemp -d /tmp/rt-rootfs.XXXXXX)
  chmod 755 "$root"
  mkdir -p "$root"/{bin,dev,etc,proc,sys,tmp,root}
  chmod 1777 "$root/tmp"
  chmod 700 "$root/root"
  cp "$BUSYBOX" "$root/bin/busybox"
  local applet
  for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
  done
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' \
    >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$root/etc/group"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -czf "$1" .
  rm -rf "$root"
}

do_build() {
  if [ ! -d "$RT_DIR/.git" ]; then
    git clone -q "$RT_GIT" "$RT_DIR"
  fi
  git -C "$RT_DIR" checkout -q -f "$RT_COMMIT"
  # Debian's Go 1.19, vendored modules, nothing from the network. runtimetest is built static
  # by the Makefile (it runs inside the busybox rootfs).
  (cd "$RT_DIR" && env GOFLAGS=-mod=vendor GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0 \
    GOCACHE="${GOCACHE:-/tmp/rt-gocache}" GOPATH="${GOPATH:-/tmp/rt-gopath}" \
    make runtimetest validation-executables)
  # Overwrites the tarball runtime-tools ships (a 2018 Gentoo busybox) with one built here.
  build_rootfs "$RT_DIR/rootfs-amd64.tar.gz"
  chmod -R o+rX "$RT_DIR"
  echo "built runtime-tools $(git -C "$RT_DIR" rev-parse HEAD) in $RT_DIR"
}

# Wrappers to pass as RUNTIME: the suite calls `$RUNTIME create|start|state|kill|delete ...`
# with no global options, so a private state dir (--root) has to be added by a wrapper. The
# crun wrapper, as root, also hides the controllers of the hybrid host's cgroup2 mount in a
# private mount namespace (crun 1.8 refuses "cgroups in hybrid mode"); nothing outside that
# namespace changes.
do_wrappers() { # dir
  local dir=$1
  mkdir -p "$dir/state"
  chmod 1777 "$dir/state"
  : >"$dir/empty"
  cat >"$dir/runc" <<EOF
#!/bin/sh
exec ${RUNC:-/usr/sbin/runc} --root "$dir/state/runc-\$(id -u)" "\$@"
EOF
  cat >"$dir/crun" <<EOF
#!/bin/sh
crun=${CRUN:-/usr/bin/crun}
root="$dir/state/crun-\$(id -u)"
ctl=/sys/fs/cgroup/unified/cgroup.controllers
mask='mount --bind "\$0" "\$1" && shift && exec "\$@"'
if grep -q . "\$ctl" 2>/dev/null; then
  if [ "\$(id -u)" = 0 ]; then
    exec unshare -m --propagation private sh -c "\$mask" "$dir/empty" "\$ctl" "\$crun" --root "\$root" "\$@"
  fi
  # Not root: a mount namespace needs a user namespace to own it, and mount(2) needs uid 0
  # there (an exec as any other uid drops the capabilities): crun runs as root of a user
  # namespace that maps only the caller (-r), one per crun invocation.
  exec unshare -r -m --propagation private sh -c "\$mask" "$dir/empty" "\$ctl" "\$crun" --root "\$root" "\$@"
fi
exec "\$crun" --root "\$root" "\$@"
EOF
  # The suite's configs have no user namespace, which no runtime can honour unprivileged. The
  # *-userns wrappers add one on `create` (as `runc spec --rootless` would): a user namespace
  # mapping the caller to 0, and no gid=5 on /dev/pts. Configs that already ask for a user
  # namespace are left alone. This changes what is tested: use it only for rootless runs. The
  # host side of the mapping is the caller, except under the crun wrapper's unprivileged mask,
  # which already runs crun as 0 of a user namespace mapping the caller.
  local rt crunfix
  for rt in runc crun; do
    crunfix=
    # shellcheck disable=SC2016 # expanded by the wrapper, not here
    [ "$rt" = runc ] || crunfix='[ "$u" = 0 ] || ! grep -q . /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null || u=0 g=0'
    cat >"$dir/$rt-userns" <<EOF
#!/bin/sh
if [ "\$1" = create ]; then
  u=\$(id -u) g=\$(id -g)
  $crunfix
  bundle=.
  prev=
  for a in "\$@"; do
    case \$prev in --bundle | -b) bundle=\$a ;; esac
    case \$a in --bundle=*) bundle=\${a#--bundle=} ;; esac
    prev=\$a
  done
  cfg=\$bundle/config.json
  jq --argjson u "\$u" --argjson g "\$g" '
    if any(.linux.namespaces[]?; .type == "user") then . else
      .linux.namespaces += [{"type": "user"}]
      | .linux.uidMappings = [{"containerID": 0, "hostID": \$u, "size": 1}]
      | .linux.gidMappings = [{"containerID": 0, "hostID": \$g, "size": 1}]
      | .mounts |= map(if .type == "devpts" then .options |= map(select(. != "gid=5")) else . end)
    end' "\$cfg" >"\$cfg.userns" && mv "\$cfg.userns" "\$cfg" || exit 125
fi
exec "$dir/$rt" "\$@"
EOF
    chmod 755 "$dir/$rt-userns"
  done
  cat >"$dir/crun-nomask" <<EOF
#!/bin/sh
exec ${CRUN:-/usr/bin/crun} --root "$dir/state/crun-\$(id -u)" "\$@"
EOF
  chmod 755 "$dir" "$dir/runc" "$dir/crun" "$dir/crun-nomask"
  echo "wrote $dir/{runc,crun,crun-nomask,runc-userns,crun-userns}"
}

count_tap() { # file -> "ok notok skip plan"; plan sums every 1..N (some tests print two TAP streams)
  local ok notok skip plan
  ok=$(grep -cE '^ok( |$)' "$1" || true)
  notok=$(grep -cE '^not ok( |$)' "$1" || true)
  skip=$(grep -ciE '^ok .*# *skip' "$1" || true)
  plan=$(grep -oE '^1\.\.[0-9]+' "$1" | cut -c4- | awk '{ n += $1 } END { if (NR) print n; else print "-" }' || true)
  echo "$ok $notok $skip $plan"
}

bundles() { # the suite's bundle dirs (os.MkdirTemp("", "ocitest")), sorted
  find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'ocitest*' -type d 2>/dev/null | LC_ALL=C sort
}

do_run() { # runtime, outdir
  local runtime=$1 out=${2:-}
  case $runtime in
    */*) runtime=$(cd "$(dirname "$runtime")" && pwd)/$(basename "$runtime") ;;
    *) runtime=$(command -v "$runtime") ;;
  esac
  local f
  for f in runtimetest rootfs-amd64.tar.gz; do
    [ -r "$RT_DIR/$f" ] || { echo "missing $RT_DIR/$f: run $0 --build" >&2; exit 2; }
  done
  [ -n "$out" ] || out=$(mktemp -d /tmp/oci-conformance.XXXXXX)
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  # The tests read ./runtimetest and ./rootfs-amd64.tar.gz from their working directory and
  # copy runtimetest with its owner (lchown): give the running user its own copies.
  work=$(mktemp -d /tmp/oci-conformance-cwd.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  cp "$RT_DIR/runtimetest" "$RT_DIR/rootfs-amd64.tar.gz" "$work/"

  local names=()
  if [ -n "${TESTS:-}" ]; then
    read -r -a names <<<"$TESTS"
  else
    local t
    for t in "$RT_DIR"/validation/*/*.t; do
      t=${t%.t}
      t=${t##*/}
      case $t in
        linux_cgroups_* | delete_resources | delete_only_create_resources)
          [ "${CGROUP_TESTS:-0}" = 1 ] || continue ;;
      esac
      names+=("$t")
    done
  fi

  {
    echo "# runtime: $runtime (as uid $(id -u))"
    echo "# runtime-tools: $(git -c safe.directory="$RT_DIR" -C "$RT_DIR" rev-parse HEAD 2>/dev/null ||
      echo unknown) in $RT_DIR"
    printf '%-32s %5s %6s %5s %5s %4s %-4s %s\n' test ok notok skip plan rc test note
  } | tee "$out/summary.txt"
  local name tot_ok=0 tot_notok=0 tot_skip=0 ntests=0 npass=0 ntimeout=0
  for name in "${names[@]}"; do
    local bin="$RT_DIR/validation/$name/$name.t" rc=0 note=""
    local before
    before=$(bundles)
    (cd "$work" && RUNTIME=$runtime timeout -k 5 "$TIMEOUT" "$bin") \
      >"$out/$name.tap" 2>"$out/$name.stderr" </dev/null || rc=$?
    # The suite's bundles are mktemp dirs $TMPDIR/ocitest*; runc with rootfsPropagation
    # "shared" (linux_rootfs_propagation) leaves the container's mounts on them in the
    # caller's namespace; tests that fail early leave their bundle behind. Undo both for the
    # bundles this test made, then drop the empty cgroups it made.
    local leaked
    leaked=$(awk -v t="${TMPDIR:-/tmp}/ocitest" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo |
      sort -u | grep -cE "^${TMPDIR:-/tmp}/ocitest[0-9]+(/|$)" || true)
    local m
    for m in $(comm -13 <(echo "$before") <(bundles)); do
      if grep -qF " $m" /proc/self/mountinfo; then
        umount -R "$m" 2>/dev/null || umount -R -l "$m" 2>/dev/null || true
      fi
      rm -rf --one-file-system "$m" 2>/dev/null || true
    done
    if [ "${CGROUP_TESTS:-0}" = 1 ]; then
      local cg
      for cg in /sys/fs/cgroup/*/testdir/cgrouptest /sys/fs/cgroup/*/testdir /sys/fs/cgroup/*/cgrouptest; do
        [ ! -d "$cg" ] || rmdir "$cg" 2>/dev/null || true
      done
    fi
    local ok notok skip plan verdict=FAIL
    read -r ok notok skip plan < <(count_tap "$out/$name.tap")
    # A test binary's verdict: several tests report a failure only on stderr with exit 1, or
    # only as a YAML "error" diagnostic under a 1..0 plan, never as a `not ok` line.
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
      note="timeout after ${TIMEOUT}s"
      ntimeout=$((ntimeout + 1))
    elif [ "$plan" = - ] && [ "$rc" = 0 ]; then
      # process_rlimits_fail: passes by exiting 0 silently once the runtime refused the config.
      note="no TAP, exit 0"
      verdict=PASS
      npass=$((npass + 1))
    elif [ "$plan" = - ]; then
      note="no TAP plan"
    elif [ $((ok + notok)) -lt "$plan" ]; then
      note="ran $((ok + notok)) of $plan"
    elif [ "$plan" = 0 ] && grep -q '"error":' "$out/$name.tap"; then
      note="1..0 with an error diagnostic: $(grep -m1 -oE '"error": "[^"\\]{0,70}' "$out/$name.tap" | cut -c11-)"
    elif [ "$rc" != 0 ]; then
      note="exit $rc"
    elif [ "$notok" = 0 ]; then
      verdict=PASS
      npass=$((npass + 1))
    fi
    if [ "$leaked" != 0 ]; then note="${note:+$note; }left $leaked mounts under its bundle (removed)"; fi
    if [ "$verdict" = FAIL ] && [ "$rc" != 0 ]; then
      local why
      why=$(grep -vE '^(Clean: |exit status|failed to (create|start|delete) the container)' \
        "$out/$name.stderr" | head -n1 | sed -E 's/^time="[^"]*" level=[a-z]+ msg=//' | cut -c1-100 || true)
      [ -z "$why" ] || note="${note:+$note; }stderr: $why"
    fi
    tot_ok=$((tot_ok + ok)) tot_notok=$((tot_notok + notok)) tot_skip=$((tot_skip + skip))
    ntests=$((ntests + 1))
    printf '%-32s %5d %6d %5d %5s %4d %-4s %s\n' "$name" "$ok" "$notok" "$skip" "$plan" "$rc" \
      "$verdict" "$note" | tee -a "$out/summary.txt"
  done
  {
    printf '%-32s %5d %6d %5d\n' TOTAL "$tot_ok" "$tot_notok" "$tot_skip"
    echo "# TAP lines: $tot_ok ok (of which $tot_skip '# SKIP'), $tot_notok not ok"
    echo "# test binaries: $npass of $ntests PASS ($ntimeout timed out); TAP kept in $out"
  } | tee -a "$out/summary.txt"
  # A test that times out may leave a container behind in the runtime's state dir: the wrappers
  # keep that under their own DIR/state, so removing it is safe once no test runs.
  return 0
}

case ${1:-} in
  --build) do_build ;;
  --wrappers) do_wrappers "$(mkdir -p "${2:?usage: $0 --wrappers DIR}" && cd "$2" && pwd)" ;;
  "" | -h | --help) usage ;;
  -*) usage ;;
  *) do_run "$1" "${2:-}" ;;
esac
