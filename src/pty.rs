//! Pseudo-terminals: the pair a sandbox gets with [`Sandbox::pty`](crate::Sandbox::pty), and
//! [`relay`], which connects its master to the caller's own terminal.

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use std::os::fd::OwnedFd;

/// Opens a new pty pair (master, slave), both CLOEXEC and above stdio. When the caller's stdin
/// is a terminal, its mode and window size are copied to the new one.
pub(crate) fn open_pair() -> Result<(OwnedFd, OwnedFd), Errno> {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    let master = crate::stdio::above_stdio(master)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let slave =
        rustix::fs::open(&name, OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty())?;
    let slave = crate::stdio::above_stdio(slave)?;
    let stdin = rustix::stdio::stdin();
    if rustix::termios::isatty(stdin) {
        if let Ok(mode) = rustix::termios::tcgetattr(stdin) {
            let _ =
                rustix::termios::tcsetattr(&slave, rustix::termios::OptionalActions::Now, &mode);
        }
        if let Ok(size) = rustix::termios::tcgetwinsize(stdin) {
            let _ = rustix::termios::tcsetwinsize(&slave, size);
        }
    }
    Ok((master, slave))
}
