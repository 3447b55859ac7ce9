//! The async face (feature `tokio`): wait, output, timeout, kill, and what cancelled futures
//! and dropped children leave behind (nothing), on a multi-threaded runtime.
#![cfg(feature = "tokio")]
mod common;

use nscell::{Sandbox, Stdio};
use std::time::{Duration, Instant};

/// One test at a time: the leak checks count this process's fds and children.
static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `test` on a 2-thread runtime of its own, alone, and shuts the runtime down before the
/// next test starts.
fn alone<F: std::future::Future<Output = ()>>(test: F) {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(test);
}

fn sh(script: &str) -> Sandbox {
    let mut sb = Sandbox::new("/bin/sh");
    sb.args(["-c", script]);
    sb
}

/// No child of this process is left (not running, not a zombie) within a few seconds: a
/// dropped child is reaped by a task, not at once.
fn nothing_left_within(secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !common::children().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(common::children(), Vec::<u32>::new(), "children left");
}

#[test]
fn wait_with_output_and_status() {
    alone(async {
        let mut sb = sh("read x; echo out:$x; echo err >&2; exit 3");
        sb.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = sb.spawn_async().unwrap();
        use tokio::io::AsyncWriteExt;
        child.stdin.as_mut().unwrap().write_all(b"in\n").await.unwrap();
        let out = child.wait_with_output().await.unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out:in\n");
        assert_eq!(out.stderr, b"err\n");
        nothing_left_within(5);
    });
}

#[test]
fn a_timeout_ends_the_sandbox_without_a_blocking_thread() {
    alone(async {
        let start = Instant::now();
        let mut sb = sh("sleep 30");
        sb.timeout(Duration::from_millis(300));
        let mut child = sb.spawn_async().unwrap();
        // The runtime's other work goes on meanwhile: a ticker counts on the same runtime.
        let ticks = tokio::spawn(async {
            let mut n = 0;
            while n < 5 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                n += 1;
            }
            n
        });
        let info = child.wait_info().await.unwrap();
        assert!(info.timed_out, "{info:?}");
        assert_eq!(ticks.await.unwrap(), 5);
        assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
        // wait_with_output under a timeout, with the program holding its pipe open.
        let mut sb = sh("echo early; sleep 30");
        sb.timeout(Duration::from_millis(300)).stdout(Stdio::piped());
        let out = sb.spawn_async().unwrap().wait_with_output().await.unwrap();
        assert_eq!(out.stdout, b"early\n");
        assert!(!out.status.success());
        nothing_left_within(5);
    });
}

#[test]
fn a_cancelled_wait_leaves_the_child_to_wait_for_again() {
    alone(async {
        let mut child = sh("sleep 0.5; exit 7").spawn_async().unwrap();
        let early = tokio::time::timeout(Duration::from_millis(50), child.wait()).await;
        assert!(early.is_err(), "it should still run");
        assert_eq!(child.try_wait().unwrap(), None);
        assert_eq!(child.wait().await.unwrap().code(), Some(7));
        nothing_left_within(5);
    });
}

#[test]
fn kill_ends_it_and_dropping_a_child_or_its_output_future_leaves_nothing() {
    alone(async {
        let fds = common::fd_count();
        let mut child = sh("sleep 30").spawn_async().unwrap();
        let status = child.kill().await.unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
        drop(child);
        // Dropped unwaited: killed, and reaped by a task on this runtime.
        let child = sh("sleep 30").spawn_async().unwrap();
        let pid = child.id();
        drop(child);
        // A cancelled wait_with_output drops its child with it.
        let mut sb = sh("echo x; sleep 30");
        sb.stdout(Stdio::piped());
        let fut = sb.spawn_async().unwrap().wait_with_output();
        assert!(tokio::time::timeout(Duration::from_millis(100), fut).await.is_err());
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "{pid} not reaped");
        nothing_left_within(5);
        // At most as many (another test's runtime may have been shutting down at the start).
        assert!(common::fd_count() <= fds, "fds left: {} > {fds}", common::fd_count());
    });
}

/// A child whose runtime is gone when it is dropped is reaped by the process-wide thread.
#[test]
fn a_child_outliving_its_runtime_is_still_reaped() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let child = rt.block_on(async { sh("sleep 30").spawn_async().unwrap() });
    drop(rt);
    drop(child);
    nothing_left_within(5);
}

#[test]
fn outside_a_runtime_spawn_async_is_refused() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let e = sh("true").spawn_async().unwrap_err();
    assert!(matches!(e, nscell::Error::InvalidInput(_)), "{e}");
    nothing_left_within(1);
}

/// examples/run_many (built by `cargo build --features tokio --example run_many`, as .ci/run
/// does): its table shows each snippet's outcome.
#[test]
fn the_run_many_example_prints_what_became_of_each_snippet() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let exe = std::env::current_exe().unwrap();
    let example = exe.parent().unwrap().parent().unwrap().join("examples").join("run_many");
    if !example.exists() {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIPPED run_many: not built (cargo build --features tokio --example run_many)\n",
        );
        return;
    }
    let out = std::process::Command::new(&example).arg("16").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let row = |snippet: &str| -> Vec<String> {
        text.lines().filter(|l| l.contains(snippet)).map(str::to_string).collect()
    };
    for line in row("echo hello") {
        assert!(line.contains("exit 0") && line.ends_with("hello"), "{line}");
    }
    for line in row("exit 3") {
        assert!(line.contains("exit 3"), "{line}");
    }
    for line in row("while :; do :; done") {
        assert!(line.contains("timed out"), "{line}");
    }
    for line in row("/proc/net/dev") {
        assert!(line.ends_with("lo"), "only loopback: {line}");
    }
    for line in row("echo started; wait") {
        assert!(line.contains("timed out") && line.ends_with("started"), "{line}");
    }
    for line in row("echo $(hostname)") {
        assert!(line.contains("sandbox 0"), "{line}");
    }
    assert_eq!(row("echo hello").len(), 2, "{text}");
    assert!(text.contains("16 sandboxes in "), "{text}");
}

/// The live parts end with the sandbox as on the sync path: the cgroup of a dropped, unwaited
/// child is gone once the task has reaped it. Needs a cgroup this user may write (root's own,
/// or the delegated one CI sets up); without one it says so and skips.
#[test]
fn a_dropped_childs_cgroup_is_removed() {
    alone(async {
        let mut sb = sh("sleep 30");
        sb.limits(nscell::cgroup::Limits::new().pids_max(100));
        let child = match sb.spawn_async() {
            Ok(child) => child,
            Err(e) if !common::is_root() && std::env::var_os("NSCELL_TEST_CGROUP").is_none() => {
                let _ = std::io::Write::write_all(
                    &mut std::io::stderr(),
                    format!("SKIPPED a_dropped_childs_cgroup_is_removed: {e}\n").as_bytes(),
                );
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let paths: Vec<std::path::PathBuf> = child
            .as_sync()
            .cgroup()
            .expect("the sandbox's cgroup")
            .paths()
            .map(|p| p.to_path_buf())
            .collect();
        assert!(!paths.is_empty() && paths.iter().all(|p| p.exists()), "{paths:?}");
        drop(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while paths.iter().any(|p| p.exists()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(paths.iter().all(|p| !p.exists()), "left behind: {paths:?}");
        nothing_left_within(5);
    });
}
