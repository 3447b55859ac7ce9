//! 200 sandboxes at once on a 2-thread tokio runtime (feature `tokio`), each with piped output:
//! every result right, and no fd or child left. A test binary of its own, so that nothing else
//! spawns while the leak check runs.
#![cfg(feature = "tokio")]
mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_sandboxes() {
    let fds = common::fd_count();
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        tasks.push(tokio::spawn(async move {
            let mut sb = nscell::Sandbox::new("/bin/sh");
            sb.args(["-c", &format!("echo {i}; exit $(({i} % 7))")]).stdout(nscell::Stdio::piped());
            let out = sb.spawn_async().unwrap().wait_with_output().await.unwrap();
            (i, out)
        }));
    }
    for task in tasks {
        let (i, out) = task.await.unwrap();
        assert_eq!(out.status.code(), Some((i % 7) as i32), "sandbox {i}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{i}\n"), "sandbox {i}");
    }
    assert_eq!(common::children(), Vec::<u32>::new(), "children left");
    assert_eq!(common::fd_count(), fds, "fds left");
}
