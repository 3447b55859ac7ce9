//! Runs the built examples and checks what they print; `bash_shell` is driven through a
//! pseudo-terminal (tmux), the way a person uses it.
//!
//! `cargo test` builds the examples (into target/<profile>/examples/, beside this test's deps/
//! directory); a test run that did not build them fails here and says so.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The path of a built example.
fn example(name: &str) -> PathBuf {
    // This test is target/<profile>/deps/examples-HASH; examples are target/<profile>/examples/.
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo test` without target filters, or `cargo build --examples`",
        path.display()
    );
    path
}

fn run(name: &str, args: &[&str]) -> String {
    let out: Output = Command::new(example(name)).args(args).stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name}: {}; stdout: {stdout}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn host_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string()
}

#[test]
fn run_command_prints_output_and_status() {
    let out = run("run_command", &["sh", "-c", "id -u; hostname; echo $$; echo oops >&2; exit 3"]);
    assert_eq!(out, "--- stdout ---\n0\nnscell\n1\n--- stderr ---\noops\n--- exit status: 3 ---\n");
}

#[test]
fn run_command_reports_a_missing_program() {
    let out = Command::new(example("run_command")).arg("/nonexistent").output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "run_command: cannot execute /nonexistent: No such file or directory (os error 2)\n"
    );
}

#[test]
fn hostname_isolation_changes_only_the_sandboxs_name() {
    let host = host_hostname();
    assert_ne!(host, "changed-inside");
    let out = run("hostname_isolation", &[]);
    assert_eq!(
        out,
        format!(
            "inside, at start:   isolated\n\
             inside, after `hostname changed-inside`: changed-inside\n\
             outside, before:    {host}\n\
             outside, after:     {host}\n"
        )
    );
    assert_eq!(host_hostname(), host);
}

#[test]
fn pid_namespace_shows_pid_1_and_only_its_processes() {
    let out = run("pid_namespace", &[]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "my pid: 1", "{out}");
    // `ps -e` inside: the shell as PID 1 and ps itself, nothing of the host's.
    let procs: Vec<Vec<&str>> =
        lines[1..3].iter().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(procs[0], ["1", "sh"], "{out}");
    assert_eq!(procs[1][1], "ps", "{out}");
    let host: usize = lines[3].strip_prefix("processes the host sees: ").unwrap().parse().unwrap();
    assert!(host > 2, "{out}");
    let outside: u32 =
        lines[4].strip_prefix("this program's pid outside: ").unwrap().parse().unwrap();
    assert_ne!(outside, 1);
    assert_eq!(lines.len(), 5, "{out}");
}

#[test]
fn id_mapping_shows_root_and_the_callers_own_ids() {
    let uid = rustix::process::geteuid().as_raw();
    let out = run("id_mapping", &[]);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let after = |title: &str| {
        let i = lines.iter().position(|l| *l == title).unwrap_or_else(|| panic!("{title}: {out}"));
        (lines[i + 1], lines[i + 2].split_whitespace().collect::<Vec<_>>())
    };
    let (id, map) = after("mapped to root (the default):");
    assert!(id.starts_with("uid=0(root) gid=0(root)"), "{out}");
    assert_eq!(map, ["0", &uid.to_string(), "1"]);
    let (id, map) = after("mapped to itself:");
    assert!(id.starts_with(&format!("uid={uid}(")), "{out}");
    assert_eq!(map, [uid.to_string(), uid.to_string(), "1".into()]);
    let (id, map) = after("mapped to 1000:");
    assert!(id.starts_with("uid=1000"), "{out}");
    assert_eq!(map, ["1000", &uid.to_string(), "1"]);
}

/// A private tmux server (its socket in a directory of its own), killed and removed when
/// dropped.
struct Tmux {
    dir: PathBuf,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("/usr/bin/tmux")
            .args(["-L", "nscell-test", "-f", "/dev/null"])
            .args(args)
            .env("TMUX_TMPDIR", &self.dir)
            .env_remove("TMUX")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "demo"]).stdout).into()
    }

    /// Waits until `check` accepts the screen; fails the test with the screen after 20s.
    fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if check(&screen) {
                return;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn type_line(&self, line: &str) {
        let out = self.cmd(&["send-keys", "-t", "demo", "-l", line]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        self.cmd(&["send-keys", "-t", "demo", "Enter"]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.cmd(&["kill-server"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn has_line(screen: &str, line: &str) -> bool {
    screen.lines().any(|l| l.trim_end() == line)
}

#[test]
fn bash_shell_is_an_interactive_root_shell_in_its_own_namespaces() {
    if !std::path::Path::new("/usr/bin/tmux").exists() {
        eprintln!("SKIPPED: /usr/bin/tmux is not installed; the interactive demo needs a terminal");
        return;
    }
    let demo = example("bash_shell");
    let host = host_hostname();
    assert_ne!(host, "x");
    let dir = std::env::temp_dir().join(format!("nscell-test-tmux-{}", std::process::id()));
    std::fs::create_dir(&dir).unwrap();
    let tmux = Tmux { dir };
    // A shell in the pane runs the demo and then shows its exit status (tmux's own
    // #{pane_dead_status} is not always filled in when a pane dies).
    let out = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "demo",
        "-x",
        "160",
        "-y",
        "50",
        "/bin/sh",
        "-c",
        "\"$0\"; echo \"[bash_shell exited with $?]\"; exec sleep 600",
        demo.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "tmux: {}", String::from_utf8_lossy(&out.stderr));

    tmux.wait_for("the hint line", |s| s.contains("try `whoami`, `id`, `ps`, `hostname x`"));
    tmux.type_line("whoami");
    tmux.wait_for("whoami to print root", |s| has_line(s, "root"));
    tmux.type_line("id");
    tmux.wait_for("id to show uid 0", |s| {
        s.lines().any(|l| l.starts_with("uid=0(root) gid=0(root) groups=0(root)"))
    });
    tmux.type_line("hostname");
    tmux.wait_for("the hostname nscell", |s| has_line(s, "nscell"));
    tmux.type_line("hostname x");
    tmux.type_line("echo \"name: $(hostname) pid: $$\"");
    tmux.wait_for("the new hostname", |s| has_line(s, "name: x pid: 1"));
    assert_eq!(host_hostname(), host, "the host's hostname changed");
    tmux.type_line("exit");
    tmux.wait_for("bash to exit", |s| has_line(s, "[bash_shell exited with 0]"));
}
