//! What a new root costs: the minimal root of the README (`/usr` read-only, the usual symlinks,
//! `/proc`, `/dev`, `/tmp`), spawned and waited for, against the default sandbox (host view) and
//! against bubblewrap doing the same operations (when `bwrap` is installed).
//!
//! `cargo bench --bench rootfs`.

use criterion::{Criterion, criterion_group, criterion_main};
use nscell::Sandbox;
use std::process::Command;

const OPS: [&str; 18] = [
    "--ro-bind",
    "/usr",
    "/usr",
    "--symlink",
    "usr/bin",
    "/bin",
    "--symlink",
    "usr/lib",
    "/lib",
    "--symlink",
    "usr/lib64",
    "/lib64",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--tmpfs",
    "/tmp",
];

fn minimal_root() -> Sandbox {
    let mut sb = Sandbox::new("/bin/true");
    sb.ro_bind("/usr", "/usr")
        .symlink("usr/bin", "/bin")
        .symlink("usr/lib", "/lib")
        .symlink("usr/lib64", "/lib64")
        .proc("/proc")
        .dev("/dev")
        .tmpfs("/tmp");
    sb
}

fn rootfs(c: &mut Criterion) {
    let mut g = c.benchmark_group("rootfs");
    g.bench_function("nscell_default", |b| {
        let mut sb = Sandbox::new("/bin/true");
        b.iter(|| assert!(sb.status().unwrap().success()))
    });
    g.bench_function("nscell_rootfs", |b| {
        let mut sb = minimal_root();
        b.iter(|| assert!(sb.status().unwrap().success()))
    });
    g.bench_function("nscell_cli_rootfs", |b| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nscell"));
        cmd.args(OPS).args(["--", "/bin/true"]);
        b.iter(|| assert!(cmd.status().unwrap().success()))
    });
    let bwrap_works = Command::new("bwrap")
        .args(["--unshare-user", "--unshare-pid", "--unshare-uts", "--unshare-ipc"])
        .args(OPS)
        .args(["--", "/bin/true"])
        .status()
        .is_ok_and(|s| s.success());
    if bwrap_works {
        g.bench_function("bwrap_rootfs", |b| {
            let mut cmd = Command::new("bwrap");
            cmd.args(["--unshare-user", "--unshare-pid", "--unshare-uts", "--unshare-ipc"])
                .args(OPS)
                .args(["--", "/bin/true"]);
            b.iter(|| assert!(cmd.status().unwrap().success()))
        });
    } else {
        eprintln!("bwrap_rootfs skipped: bwrap is not installed or cannot run here");
    }
    g.finish();
}

criterion_group!(benches, rootfs);
criterion_main!(benches);
