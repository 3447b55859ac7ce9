//! Resource hygiene, counted in a test binary of its own: the harness runs the tests of one binary
//! in parallel threads, and any other spawning test would disturb the fd and zombie counts. So
//! this binary has a single test that runs its cases in sequence.

mod common;

use common::{children, fd_count, zombie_children};
use nscell::{IdMap, Namespaces, Sandbox};
use rustix::fs::{Mode, OFlags};

fn assert_clean(when: &str, fds: usize) {
    assert_eq!(fd_count(), fds, "fd count changed {when}");
    assert_eq!(zombie_children(), Vec::<u32>::new(), "zombies {when}");
    assert_eq!(children(), Vec::<u32>::new(), "children left running {when}");
}

#[test]
fn no_fd_zombie_or_child_is_left_behind() {
    let fds = fd_count();

    // Failures before and at spawn.
    let failing: Vec<Box<dyn Fn() -> Sandbox>> =
        vec![
            Box::new(|| Sandbox::new("/nonexistent")),
            Box::new(|| Sandbox::new("/etc/passwd")),
            Box::new(|| Sandbox::new("")),
            Box::new(|| {
                let mut s = Sandbox::new("/bin/true");
                s.arg("nul\0");
                s
            }),
            Box::new(|| {
                let mut s = Sandbox::new("/bin/true");
                s.current_dir("/nonexistent");
                s
            }),
            Box::new(|| {
                let mut s = Sandbox::new("/bin/true");
                s.hostname("x".repeat(65));
                s
            }),
            Box::new(|| {
                // Needs the handshake path (two lines): as root it fails in the child, unprivileged
                // it fails at newuidmap (no range for this user) or for want of the helper.
                let mut s = Sandbox::new("/nonexistent");
                s.uid_map(IdMap::new(0, rustix::process::geteuid().as_raw(), 1))
                    .uid_map(IdMap::new(1, 3_000_000_000, 10));
                s
            }),
        ];
    for make in &failing {
        for stdio in [false, true] {
            let mut sb = make();
            if stdio {
                sb.stdin(nscell::Stdio::piped())
                    .stdout(nscell::Stdio::piped())
                    .stderr(nscell::Stdio::null());
            }
            let err = sb.spawn().expect_err("must fail");
            assert_clean(&format!("after error: {err}"), fds);
        }
    }

    // 1000 sequential spawns of the default sandbox.
    let mut sb = Sandbox::new("/bin/true");
    for i in 0..1000 {
        let status = sb.status().unwrap();
        assert!(status.success(), "spawn {i}: {status}");
    }
    assert_clean("after 1000 spawns", fds);

    // Output capture and kill paths.
    for _ in 0..50 {
        let out = Sandbox::new("/bin/echo").arg("x").output().unwrap();
        assert_eq!(out.stdout, b"x\n");
        let mut child = Sandbox::new("/bin/sleep").arg("10").spawn().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        drop(Sandbox::new("/bin/sleep").arg("10").namespaces(Namespaces::USER).spawn().unwrap());
    }
    assert_clean("after output/kill/drop", fds);

    // A caller holding 100 fds open without CLOEXEC leaks none of them into the sandbox.
    let held: Vec<_> = (0..100)
        .map(|_| rustix::fs::open("/dev/null", OFlags::RDONLY, Mode::empty()).unwrap())
        .collect();
    let out = Sandbox::new("/bin/ls").arg("/proc/self/fd").output().unwrap();
    // ls itself opens one fd (3) to read the directory.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n1\n2\n3\n");
    drop(held);
    assert_clean("at the end", fds);

    lifecycle(fds);
}

/// The init (its stacks), pty pairs, parent pidfds and timeouts leave nothing behind either.
fn lifecycle(fds: usize) {
    use std::time::Duration;
    let maps = || std::fs::read_to_string("/proc/self/maps").unwrap().lines().count();
    let maps_before = maps();
    for i in 0..100 {
        let mut sb = Sandbox::new("/bin/true");
        sb.init(true).die_with_parent(true).pty(i % 2 == 0).timeout(Duration::from_secs(30));
        let mut child = sb.spawn().unwrap();
        let info = child.wait_info().unwrap();
        assert!(info.status.success() && !info.timed_out, "spawn {i}: {info:?}");
        drop(child);
        let err = Sandbox::new("/nonexistent").init(true).pty(true).spawn().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        drop(Sandbox::new("/bin/sleep").arg("10").init(true).spawn().unwrap());
        let mut child = Sandbox::new("/bin/sleep")
            .arg("10")
            .init(true)
            .timeout(Duration::from_millis(1))
            .spawn()
            .unwrap();
        assert!(child.wait_info().unwrap().timed_out);
    }
    assert_clean("after init, pty, die_with_parent and timeout spawns", fds);
    // 400 spawns with an init: each had two stacks mapped while it ran.
    let grown = maps().saturating_sub(maps_before);
    assert!(grown < 20, "{grown} more mappings: the init's stacks are not unmapped");
}
