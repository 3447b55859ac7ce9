//! Real engines drive nscell-runtime: podman 4.3 (as root, and rootless with subuid ranges)
//! and containerd 1.6 (as root; `ctr run` of a rootfs and of an imported one-layer image),
//! through `tests/engines/*.sh`, each with private state and config (see its README). They
//! check what a user sees: the container's output, `exec`, `stop`, a terminal; and that no
//! daemon, shim, mount or cgroup is left.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

const RUNTIME: &str = env!("CARGO_BIN_EXE_nscell-runtime");

/// The engine's binaries, or why this machine cannot run the test (CI installs them).
fn have(tools: &[&str]) -> bool {
    let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for t in tools {
        if !path.split(':').any(|d| Path::new(d).join(t).exists()) {
            eprintln!(
                "skipped: {t} is not installed (.ci/run installs podman, containerd, busybox-static)"
            );
            return false;
        }
    }
    true
}

/// A copy of the runtime that every uid can run (the build tree may be in a 0700 home).
fn runtime_copy(dir: &common::TempDir) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dest = dir.join("nscell-runtime");
    std::fs::copy(RUNTIME, &dest).unwrap();
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755)).unwrap();
    dest
}

fn script(name: &str, args: &[&str], runtime: &Path) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/engines").join(name);
    let out = Command::new("setsid")
        .arg("bash")
        .arg(&path)
        .args(args)
        .arg("--extra")
        .arg(runtime)
        .env_clear()
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    assert!(out.status.success(), "{name} {args:?} failed:\n{text}");
    assert!(text.contains(": ok: "), "{name} said nothing ok:\n{text}");
    assert!(!text.contains("FAIL"), "{text}");
}

#[test]
fn podman_runs_containers_with_nscell_runtime() {
    if !have(&["podman", "conmon", "busybox", "newuidmap"]) {
        return;
    }
    let dir = common::TempDir::new("eng-podman");
    let runtime = runtime_copy(&dir);
    if common::is_root() {
        // root cannot raise its limits here: the script asks for what it has.
        script("podman.sh", &[], &runtime);
        // Rootless podman as uid 65534 with its /etc/subuid range.
        script("podman.sh", &["--rootless"], &runtime);
    } else {
        script("podman.sh", &[], &runtime);
    }
}

#[test]
fn containerd_runs_containers_and_an_imported_image_with_nscell_runtime() {
    if !have(&["containerd", "ctr", "containerd-shim-runc-v2", "busybox"]) {
        return;
    }
    if !common::is_root() {
        eprintln!(
            "skipped: rootless containerd needs rootlesskit, which Debian 12 does not package \
             (the root run covers containerd)"
        );
        return;
    }
    let dir = common::TempDir::new("eng-containerd");
    let runtime = runtime_copy(&dir);
    script("containerd.sh", &[], &runtime);
}
