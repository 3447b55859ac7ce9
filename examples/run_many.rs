//! Runs untrusted shell snippets concurrently, each in a sandbox of its own with limits and a
//! timeout, on a 2-thread tokio runtime, and prints a table of what became of them.
//!
//!     cargo run --features tokio --example run_many [N]
//!
//! N (default: the number of snippets below) sandboxes run at once, the snippets taken in turn.
//! Each has new user, PID, mount, UTS, IPC and network namespaces (loopback only), nscell's
//! default seccomp policy, a 256 MiB address-space limit, at most 64 processes of its uid (a
//! count over all of that uid's processes, sandboxed or not), and a 2-second timeout, which
//! ends whatever the snippet started too.
use nscell::rlimit::Resource;
use nscell::{Namespaces, Sandbox, Stdio};
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

const SNIPPETS: &[&str] = &[
    "echo hello",
    "exit 3",
    "while :; do :; done",
    "x=$(head -c 400000000 /dev/zero | tr '\\0' x); echo ${#x}",
    "sleep 10 & sleep 10 & echo started; wait",
    "cat /proc/1/cmdline | tr '\\0' ' '; echo",
    "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
    "echo $(hostname) $(id -u)",
];

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(SNIPPETS.len());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let start = Instant::now();
    let rows = runtime.block_on(async {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let snippet = SNIPPETS[i % SNIPPETS.len()];
                tokio::spawn(run(snippet))
            })
            .collect();
        let mut rows = Vec::new();
        for (i, task) in tasks.into_iter().enumerate() {
            rows.push((i, task.await.expect("the task")));
        }
        rows
    });
    println!("{:>3}  {:<14}  {:>7}  {:<44}  output", "#", "result", "ms", "snippet");
    for (i, (result, ms, output)) in &rows {
        let snippet = SNIPPETS[i % SNIPPETS.len()];
        println!("{i:>3}  {result:<14}  {ms:>7}  {:<44}  {output}", short(snippet, 44));
    }
    println!("{n} sandboxes in {} ms", start.elapsed().as_millis());
}

/// Runs one snippet; its result, its time in ms and the first line of its output.
async fn run(snippet: &str) -> (String, u128, String) {
    let start = Instant::now();
    let mut sb = Sandbox::new("/bin/sh");
    sb.args(["-c", snippet])
        .namespaces(Namespaces::DEFAULT | Namespaces::NET)
        .hostname("sandbox")
        .rlimit(Resource::As, 256 << 20, 256 << 20)
        .rlimit(Resource::Nproc, 64, 64)
        .timeout(Duration::from_secs(2))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match sb.spawn_async() {
        Ok(child) => child,
        Err(e) => return (String::from("not started"), 0, e.to_string()),
    };
    // Read both pipes while waiting: the wait enforces the timeout, and its kill closes them.
    let (mut stdout, mut stderr) = (child.stdout.take(), child.stderr.take());
    let read = async {
        use tokio::io::AsyncReadExt;
        let (mut o, mut e) = (Vec::new(), Vec::new());
        if let (Some(so), Some(se)) = (stdout.as_mut(), stderr.as_mut()) {
            let _ = tokio::join!(so.read_to_end(&mut o), se.read_to_end(&mut e));
        }
        (o, e)
    };
    let ((stdout, stderr), waited) = tokio::join!(read, child.wait_info());
    let ms = start.elapsed().as_millis();
    let result = match waited {
        Ok(info) if info.timed_out => String::from("timed out"),
        Ok(info) => match (info.status.code(), info.status.signal()) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(sig)) => format!("signal {sig}"),
            _ => String::from("?"),
        },
        Err(e) => return (String::from("error"), ms, e.to_string()),
    };
    let out = if stdout.is_empty() { stderr } else { stdout };
    let text = String::from_utf8_lossy(&out).lines().next().unwrap_or("").to_string();
    (result, ms, short(&text, 60))
}

fn short(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}
