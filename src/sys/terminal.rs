//! Sessions, process groups and the controlling terminal: `getsid`, `getpgid` and
//! `ioctl(TIOCGSID)`, raw because an id of 0 is an answer here (a leader in an ancestor PID
//! namespace) that rustix's wrappers, which return a non-zero `Pid`, cannot give.
#![allow(unsafe_code)]

use super::raw::{check, nr, syscall4};
use core::ffi::c_int;
use rustix::io::Errno;

/// The caller's session id and process group id, as seen from the caller's PID namespace: 0
/// when the session leader or group leader lives in an ancestor namespace (rustix's wrappers
/// assume a non-zero answer and must not be used here).
pub fn session_and_group() -> Result<(c_int, c_int), Errno> {
    // SAFETY: getsid(0) and getpgid(0) take no pointers.
    let sid = check(unsafe { syscall4(nr::GETSID, 0, 0, 0, 0) })?;
    // SAFETY: as above.
    let pgrp = check(unsafe { syscall4(nr::GETPGID, 0, 0, 0, 0) })?;
    Ok((sid as c_int, pgrp as c_int))
}

const TIOCGSID: usize = 0x5429;

/// `tcgetsid(tty)`: the session of the terminal, 0 if it is not visible from here; `ENOTTY`
/// unless `tty` is the caller's controlling terminal (or a pty master).
pub fn terminal_session(tty: std::os::fd::BorrowedFd<'_>) -> Result<c_int, Errno> {
    use std::os::fd::AsRawFd;
    let mut sid: c_int = 0;
    // SAFETY: TIOCGSID writes one pid_t to the pointer, which lives across the call.
    let ret = unsafe {
        syscall4(nr::IOCTL, tty.as_raw_fd() as usize, TIOCGSID, &mut sid as *mut c_int as usize, 0)
    };
    check(ret)?;
    Ok(sid)
}
