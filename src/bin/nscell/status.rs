//! nscell's exit status when the program did not run ([`error_status`]; when it did, its
//! [`shell_code`](nscell::WaitInfo::shell_code)) and the JSON status records of
//! `--json-status-fd` ([`JsonStatus`]).

use nscell::{Error, Namespaces};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::thread::JoinHandle;

/// Exit status when the sandbox cannot be set up (as `docker run`, `podman run`).
pub const EXIT_SETUP: i32 = 125;
/// Exit status when the program exists but cannot be executed (as a shell).
pub const EXIT_CANNOT_EXECUTE: i32 = 126;
/// Exit status when the program is not found (as a shell).
pub const EXIT_NOT_FOUND: i32 = 127;
/// Exit status for a bad command line.
pub const EXIT_USAGE: i32 = 2;
/// Exit status when --timeout ended the command (as timeout(1)).
pub const EXIT_TIMEOUT: i32 = 124;

/// nscell's exit status for a sandbox that could not run the program.
pub fn error_status(e: &Error) -> i32 {
    match e {
        Error::Exec { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            EXIT_NOT_FOUND
        }
        Error::Exec { .. } => EXIT_CANNOT_EXECUTE,
        // A value the library refused before anything was spawned: the command line is wrong.
        Error::InvalidInput(_) => EXIT_USAGE,
        _ => EXIT_SETUP,
    }
}

/// The sandbox's namespaces as a task of it was seen during the setup (`/proc/PID/ns/NAME`
/// inodes by name, at the stages where the start record looks: [`look_at`]).
pub type Seen = std::sync::Arc<std::sync::Mutex<Vec<(&'static str, u64)>>>;

/// The inode of `/proc/WHO/ns/NAME`: which namespace of that kind the task is in.
fn ns_inode(who: &str, name: &str) -> std::io::Result<u64> {
    std::fs::metadata(format!("/proc/{who}/ns/{name}")).map(|m| m.ino())
}

/// Notes the namespaces of `pid` (a task of the sandbox, still in its setup) in `seen`, each
/// one that can be read and is not this process's own: a later look replaces an earlier one.
/// Every look gives a true namespace of the sandbox's task at that moment, and none that
/// differs from ours changes after `NamespacesCreated` but the mount namespace, which the
/// mount lock replaces before `BeforeExec` (until then the task is in ours: nothing is noted).
pub fn look_at(seen: &Seen, pid: u32) {
    let found: Vec<(&'static str, u64)> = Namespaces::all()
        .iter()
        .filter_map(|ns| ns.proc_name())
        .filter_map(|name| match (ns_inode(&pid.to_string(), name), ns_inode("self", name)) {
            (Ok(theirs), Ok(ours)) if theirs != ours => Some((name, theirs)),
            _ => None,
        })
        .collect();
    let mut seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for (name, inode) in found {
        seen.retain(|(n, _)| *n != name);
        seen.push((name, inode));
    }
}

/// The first JSON line of `--json-status-fd`: the pid and each namespace of the program that is
/// not nscell's own (the user namespace included when one was added implicitly). A namespace
/// whose link can no longer be read (the program already ended) is the one `seen` during the
/// setup ([`look_at`]), or left out. Then the network helper's pid, when there is one.
///
/// `pid` is the sandbox's first task; with an `init` that is nscell's init, and the pid given
/// is the program's (the init's first child) while it runs: the init is not dumpable, so only
/// root may open its `/proc/PID/ns/*` or `/proc/PID/root`, and callers that join or enter the
/// sandbox through those links (`--userns`/`--pidns`, `flatpak enter`) need a task they can
/// read. The program is in the same namespaces, and the init ends as soon as it does.
pub fn start_record(pid: u32, init: bool, helper: Option<u32>, seen: &Seen) -> String {
    let who = match init {
        true => std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()
            .and_then(|c| c.split_whitespace().next().map(str::to_string))
            .unwrap_or_else(|| pid.to_string()),
        false => pid.to_string(),
    };
    let mut line = format!("{{\"child-pid\": {who}");
    if let Some(h) = helper {
        line.push_str(&format!(", \"network-helper-pid\": {h}"));
    }
    let seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    for ns in Namespaces::all().iter() {
        let Some(name) = ns.proc_name() else { continue };
        let ours = ns_inode("self", name);
        let theirs = match ns_inode(&who, name) {
            Ok(theirs) if ours.as_ref().is_ok_and(|o| *o != theirs) => Some(theirs),
            Ok(_) => None,
            Err(_) => seen.iter().find(|(n, _)| *n == name).map(|(_, i)| *i),
        };
        if let Some(theirs) = theirs {
            line.push_str(&format!(", \"{name}-namespace\": {theirs}"));
        }
    }
    line.push_str("}\n");
    line
}

/// `--info-fd`: the start record ([`start_record`]), one field per line, written once and the
/// fd closed, as bubblewrap does. A reader that does not read cannot keep the program from
/// starting or nscell from passing signals on: it is written from a thread of its own, which
/// nscell waits for before it exits (or the record could be lost with a short program).
pub fn write_info(mut file: File, record: &str) -> JoinHandle<()> {
    // bubblewrap's shape: one field per line (callers grep the child-pid line).
    let record = record
        .trim_end()
        .replacen('{', "{\n    ", 1)
        .replace(", ", ",\n    ")
        .replace('}', "\n}\n");
    std::thread::spawn(move || {
        let _ = file.write_all(record.as_bytes());
    })
}

/// The message for a sandbox that could not run the program: the library's sentence (the
/// personality's prefix is added by the caller).
pub fn message(cli: &crate::cli::Cli, e: &Error) -> String {
    // bubblewrap's words for a symlink in the way, which its callers match: the library's
    // path is "DEST -> TARGET", its hint starts with what is there.
    if cli.personality.is_bwrap() && e.step() == Some(nscell::Step::CreateSymlink) {
        let dest = e.path().map(|p| p.to_string_lossy());
        if let (Some(dest), Some(hint)) = (dest, e.hint()) {
            let dest = dest.split(" -> ").next().unwrap_or(&dest);
            let there = hint.split(';').next().unwrap_or(hint);
            return format!("Can't make symlink at {dest}: {there}");
        }
    }
    e.to_string()
}

/// The `--json-status-fd` records being written: the start record from a thread of its own,
/// so that a reader that does not read (a full pipe) cannot keep nscell from enforcing
/// `--timeout` and passing signals on while the program runs. A reader that went away does not
/// stop the program either.
pub struct JsonStatus(JoinHandle<File>);

impl JsonStatus {
    /// Starts writing the start record ([`start_record`]) to `file`.
    pub fn start(mut file: File, record: String) -> JsonStatus {
        JsonStatus(std::thread::spawn(move || {
            let _ = file.write_all(record.as_bytes());
            file
        }))
    }

    /// Writes the exit record, after the start record, once its reader has taken that:
    /// `{"exit-code": N}`, with `"oom-killed": true` when the OOM killer ended the sandbox.
    pub fn finish(self, code: i32, oom_killed: bool) {
        if let Ok(mut file) = self.0.join() {
            let _ = file.write_all(exit_record(code, oom_killed).as_bytes());
        }
    }
}

fn exit_record(code: i32, oom_killed: bool) -> String {
    if oom_killed {
        format!("{{\"exit-code\": {code}, \"oom-killed\": true}}\n")
    } else {
        format!("{{\"exit-code\": {code}}}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nscell::{Namespaces, Sandbox};

    #[test]
    fn errors_map_like_a_shell() {
        // Error's struct variants are non_exhaustive: real errors, from real spawns.
        let spawn = |program: &std::path::Path, cwd: &str| {
            Sandbox::new(program).namespaces(Namespaces::empty()).current_dir(cwd).spawn()
        };
        let exec = |program: &str| {
            let e = spawn(program.as_ref(), "/").unwrap_err();
            assert!(matches!(e, Error::Exec { .. }), "{e}");
            e
        };
        assert_eq!(error_status(&exec("/nonexistent/p")), 127);
        // EACCES: not a regular file.
        assert_eq!(error_status(&exec("/dev/null")), 126);
        let noexec = std::env::temp_dir().join(format!("nscell-noexec-{}", std::process::id()));
        std::fs::write(&noexec, [0u8; 16]).unwrap();
        std::fs::set_permissions(&noexec, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let e = spawn(&noexec, "/").unwrap_err();
        let _ = std::fs::remove_file(&noexec);
        assert!(matches!(e, Error::Exec { .. }), "{e}");
        assert_eq!(error_status(&e), 126);
        // A value refused before spawning is a bad command line, not a failed setup.
        assert_eq!(error_status(&Error::InvalidInput("bad".into())), 2);
        let setup = spawn("/bin/true".as_ref(), "/nonexistent-directory").unwrap_err();
        assert!(matches!(setup, Error::Setup { .. }), "{setup}");
        assert_eq!(error_status(&setup), 125);
    }

    #[test]
    fn the_start_record_lists_only_namespaces_that_differ() {
        // This process shares every namespace with itself.
        assert_eq!(
            start_record(std::process::id(), false, None, &Seen::default()),
            format!("{{\"child-pid\": {}}}\n", std::process::id())
        );
    }
}
