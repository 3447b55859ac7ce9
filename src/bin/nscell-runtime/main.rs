//! `nscell-runtime`: the OCI runtime command line (as runc and crun), on nscell's public API.
//!
//! `create` builds the container with [`nscell::Sandbox::start_gate`] on a FIFO in the state
//! directory and exits with the container waiting before `execve`; `start` writes the byte that
//! releases it. The state directory keeps, per container, a record (pid and process start
//! time, bundle, cgroup, hooks), the FIFO while the container is created, and a lock taken by
//! every verb on that container. See the README's "OCI runtime" section.

mod args;
mod cgroups;
mod config;
mod hooks;
mod log;
mod state;
mod verbs;

use std::process::ExitCode;

/// What a verb's failure says: one line a person can act on.
pub type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let parsed = args::parse(std::env::args_os().skip(1));
    let cmd = match parsed {
        Ok(cmd) => cmd,
        Err(e) => {
            eprintln!("nscell-runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let global = cmd.global.clone();
    match verbs::run(cmd) {
        Ok(code) => ExitCode::from(code),
        Err(msg) => {
            log::error(&global, &msg);
            ExitCode::from(1)
        }
    }
}
