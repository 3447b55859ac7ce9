#!/usr/bin/env bash
# The nscell binary as a whole process, next to bwrap and unshare(1) with the same isolation, in
# one hyperfine run; then each one's peak RSS (/usr/bin/time, median of 21 runs).
# Usage: benches/binary.sh [RUNS]   (needs hyperfine and GNU time). BENCH_UID=65534 runs the
# cases as that user (setpriv; the builds stay the caller's). Builds the nscell binary
# three ways: the default (dynamic glibc), static glibc (`cargo static-bin`), and static musl when
# rustup has the x86_64-unknown-linux-musl target.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-500}
cargo build -q --release --bin nscell
cargo -q static-bin
dynamic=target/release/nscell
static=target/$(rustc -vV | sed -n 's/^host: //p')/release/nscell
musl_target=x86_64-unknown-linux-musl
musl=
if rustup target list --installed 2>/dev/null | grep -qx "$musl_target"; then
  cargo build -q --release --bin nscell --target "$musl_target"
  musl=target/$musl_target/release/nscell
else
  echo "the $musl_target target is not installed (rustup target add $musl_target): skipped" >&2
fi
bwrap="bwrap --unshare-user --unshare-pid --unshare-uts --unshare-ipc --bind / / --proc /proc /bin/true"
unshare="unshare --user --map-root-user --pid --fork --mount --uts --ipc --mount-proc /bin/true"
# bubblewrap's personality: each build as `bwrap` (a symlink), against bubblewrap, with the
# arguments of a typical caller (a new root from /usr; the symlinks a usr-merged host needs
# there). --unshare-all: both start a reaper as PID 1.
as_bwrap="--unshare-all --ro-bind /usr /usr --symlink usr/lib64 /lib64 --symlink usr/lib /lib
  --symlink usr/bin /bin --proc /proc --dev /dev --tmpfs /tmp true"
links=$(mktemp -d /tmp/nscell-binary.XXXXXX)
trap 'rm -rf "$links"' EXIT
personality=()
for build in dynamic static musl; do
  [ -n "${!build}" ] || continue
  mkdir "$links/$build"
  ln -s "$PWD/${!build}" "$links/$build/bwrap"
  personality+=("$links/$build/bwrap $as_bwrap")
done

# The kernel's floor for the personality case: its namespaces and two processes, no mounts.
floor=
if cc -O2 -static -o "$links/floor_unshare_all" benches/floor_unshare_all.c 2>/dev/null; then
  floor=$links/floor_unshare_all
else
  echo "cc -static cannot build benches/floor_unshare_all.c: its floor case is skipped" >&2
fi
as=()
if [ -n "${BENCH_UID:-}" ]; then
  as=(setpriv --reuid="$BENCH_UID" --regid="$BENCH_UID" --clear-groups env HOME=/)
  chmod -R a+rX target "$links" && chmod a+w "$links"
fi

cases=("$dynamic -- /bin/true" "$static -- /bin/true")
[ -n "$musl" ] && cases+=("$musl -- /bin/true")
command -v bwrap >/dev/null && cases+=("$bwrap") || echo "bwrap is not installed: skipped" >&2
command -v unshare >/dev/null && cases+=("$unshare") || echo "unshare is not installed: skipped" >&2
cases+=("/bin/true")
if command -v bwrap >/dev/null; then
  cases+=("${personality[@]}" "$(command -v bwrap) $as_bwrap")
  [ -n "$floor" ] && cases+=("$floor")
fi
# One line each (hyperfine names a case by its command).
for i in "${!cases[@]}"; do cases[i]=$(echo ${cases[i]}); done
json=$links/results.json
"${as[@]}" hyperfine -N --warmup 50 --runs "$runs" --export-json "$json" "${cases[@]}"
cp "$json" /tmp/nscell-binary.json

echo
echo "median wall time, ms (ratios from this run: nscell -- /bin/true to bwrap; the"
echo "personality cases to bubblewrap with the same arguments):"
python3 - <<'PY'
import json
r = json.load(open("/tmp/nscell-binary.json"))["results"]
bw = next((x["median"] for x in r if x["command"].startswith("bwrap")), None)
peer = next((x["median"] for x in r if "--unshare-all" in x["command"]
             and not x["command"].startswith("/tmp/")), None)
for x in r:
    personal = "--unshare-all" in x["command"] or x["command"].endswith("floor_unshare_all")
    base = peer if personal else bw
    ratio = f'{x["median"] / base:.3f}' if base else "-"
    print(f'{x["median"] * 1e3:7.3f}  {ratio:>6}  {x["command"]}')
PY

echo
echo "peak RSS, KB (median of 21):"
for c in "${cases[@]}"; do
  m=$(for _ in $(seq 21); do "${as[@]}" /usr/bin/time -f %M $c 2>&1 >/dev/null | tail -1; done | sort -n | sed -n 11p)
  printf '%7s  %s\n' "$m" "$c"
done
