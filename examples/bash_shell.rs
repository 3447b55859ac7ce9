//! The demo: an interactive `/bin/bash` as root in new user, PID, mount, UTS and IPC
//! namespaces, with the hostname `nscell`. No host root is needed.
//!
//! ```text
//! cargo run --example bash_shell
//! ```

use nscell::{Namespaces, Sandbox};

fn main() {
    println!(
        "nscell: try `whoami`, `id`, `ps`, `hostname x` (only this sandbox changes); `exit` leaves"
    );

    // On a terminal, bash gets a pseudo-terminal of its own (job control, window size), relayed
    // to this one in raw mode; it cannot push keystrokes into this terminal (TIOCSTI).
    let pty = rustix::termios::isatty(rustix::stdio::stdin());
    let status = Sandbox::new("/bin/bash")
        // The default set spelled out (Namespaces::DEFAULT). The caller's
        // uid and gid are mapped to 0, so bash runs as root inside, and it is PID 1 with a fresh
        // /proc, so `ps` shows only this sandbox's processes.
        .namespaces(
            Namespaces::USER
                | Namespaces::PID
                | Namespaces::MOUNT
                | Namespaces::UTS
                | Namespaces::IPC,
        )
        .hostname("nscell")
        .pty(pty)
        .spawn()
        .and_then(|mut child| if pty { nscell::pty::relay(&mut child) } else { child.wait_info() })
        .map(|info| info.status);

    match status {
        // Leave with bash's own status, as a shell would.
        Ok(status) => std::process::exit(status.code().unwrap_or(1)),
        Err(e) => {
            // The error names the step that failed, the errno and a hint (e.g. how to allow
            // unprivileged user namespaces).
            eprintln!("bash_shell: {e}");
            std::process::exit(125);
        }
    }
}
