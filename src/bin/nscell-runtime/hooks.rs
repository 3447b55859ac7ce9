//! The config's hooks: each run with the container's state JSON on its stdin, bounded by its
//! `timeout` (seconds; killed when it passes), in order; the first failure fails the verb
//! (for `poststart` and `poststop`, the runtime spec says only to warn).

use crate::Result;
use serde_json::Value;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

/// Runs the hooks of `kind` (`prestart`, `createRuntime`, …) in `hooks` (the config's `hooks`
/// object), with `state` on their stdin.
pub fn run(hooks: &Value, kind: &str, state: &Value) -> Result<()> {
    let Some(list) = hooks.get(kind).and_then(Value::as_array) else { return Ok(()) };
    for (i, hook) in list.iter().enumerate() {
        run_one(hook, state).map_err(|e| format!("{kind} hook {i}: {e}"))?;
    }
    Ok(())
}

/// [`run`], where a failure is only reported (`poststart`, `poststop`).
pub fn run_warn(global: &crate::args::Global, hooks: &Value, kind: &str, state: &Value) {
    if let Err(e) = run(hooks, kind, state) {
        crate::log::error(global, &format!("warning: {e}"));
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn run_one(hook: &Value, state: &Value) -> Result<()> {
    let path = hook.get("path").and_then(Value::as_str).ok_or("it has no path")?;
    let args = strings(hook.get("args"));
    let mut cmd = std::process::Command::new(path);
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    if hook.get("env").is_some() {
        cmd.env_clear();
        for kv in strings(hook.get("env")) {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    cmd.stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot run {path}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error.
        let _ = stdin.write_all(state.to_string().as_bytes());
    }
    let timeout = hook.get("timeout").and_then(Value::as_u64).filter(|&t| t > 0);
    let deadline = timeout.map(|t| Instant::now() + Duration::from_secs(t));
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{path} failed: {status}")),
            Ok(None) if deadline.is_some_and(|d| Instant::now() >= d) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{path} did not end within its timeout of {}s",
                    timeout.unwrap_or(0)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(format!("cannot wait for {path}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_hook_reads_the_state_and_its_failure_or_timeout_is_an_error() {
        let dir = std::env::temp_dir().join(format!("nscell-hooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let hooks = json!({
            "prestart": [{"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", out.display())]}],
            "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}],
            "poststart": [{"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}],
        });
        let state = json!({"id": "c1", "status": "creating"});
        super::run(&hooks, "prestart", &state).unwrap();
        let got: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(got, state);
        let e = super::run(&hooks, "poststop", &state).unwrap_err();
        assert!(e.contains("poststop hook 0") && e.contains("exit status: 3"), "{e}");
        let t = std::time::Instant::now();
        let e = super::run(&hooks, "poststart", &state).unwrap_err();
        assert!(e.contains("timeout of 1s") && t.elapsed().as_secs() < 4, "{e}");
        assert!(super::run(&hooks, "createRuntime", &state).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
