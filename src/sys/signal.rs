//! Signals: dispositions (`rt_sigaction`), the thread's mask (`rt_sigprocmask`), taking a
//! pending signal (`rt_sigtimedwait`), `signalfd4`, and the signal numbers nscell names.
//!
//! Masks are the kernel's 64-bit `sigset_t`: bit `n - 1` is signal `n`.
#![allow(unsafe_code)]

use super::raw::{check, nr, syscall4};
use core::ffi::c_int;
use rustix::io::Errno;

/// The kernel's `struct sigaction` (not libc's): handler, flags, restorer, mask.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

const SIG_DFL: usize = 0;
const SIG_IGN: usize = 1;
/// The highest signal number on Linux (`_NSIG - 1`).
pub const SIGRTMAX: c_int = 64;
/// `SIGKILL`, which no handler or mask stops.
pub const SIGKILL: c_int = 9;
pub const SIGSTOP: c_int = 19;
const SIGPIPE: c_int = 13;
/// `SIGCHLD`, the exit signal of every child nscell creates.
pub const SIGCHLD: c_int = 17;

/// The handler `sig` has (`rt_sigaction` with no new action).
fn handler_of(sig: c_int) -> Result<usize, Errno> {
    let mut old = KernelSigaction { handler: 0, flags: 0, restorer: 0, mask: 0 };
    // SAFETY: a NULL new action and a valid out-pointer of the kernel's struct; size 8.
    let ret =
        unsafe { syscall4(nr::RT_SIGACTION, sig as usize, 0, &mut old as *mut _ as usize, 8) };
    check(ret).map(|_| old.handler)
}

/// Puts `sig` back to `SIG_DFL`.
fn set_default(sig: c_int) -> Result<(), Errno> {
    let default = KernelSigaction { handler: SIG_DFL, flags: 0, restorer: 0, mask: 0 };
    // SAFETY: a valid kernel sigaction with SIG_DFL (no restorer needed) and no old action.
    let ret =
        unsafe { syscall4(nr::RT_SIGACTION, sig as usize, &default as *const _ as usize, 0, 8) };
    check(ret).map(|_| ())
}

/// The signals a program gets at their defaults even when the caller ignores them: the Rust
/// runtime ignores `SIGPIPE`, and an ignored `SIGCHLD` (inherited across `execve`) makes the
/// kernel reap the program's children before it can wait for them, and would keep an init from
/// ever hearing of its program's end. Programs expect both at their defaults, as bubblewrap 0.11
/// gives them (`std::process::Command` resets `SIGPIPE` likewise).
const RESET_EVEN_IF_IGNORED: [c_int; 2] = [SIGPIPE, SIGCHLD];

/// Puts [`RESET_EVEN_IF_IGNORED`] back to `SIG_DFL`, ignored or not. Enough after `clone3` with
/// `CLONE_CLEAR_SIGHAND`, which has reset every handled signal but keeps ignored ones ignored.
pub fn reset_ignored_defaults() -> Result<(), Errno> {
    for sig in RESET_EVEN_IF_IGNORED {
        set_default(sig)?;
    }
    Ok(())
}

/// Puts the calling process's `SIGCHLD` back to `SIG_DFL` if it is ignored (`SIG_IGN`), and says
/// whether it was. A handler is left alone. Signal dispositions are the whole process's.
pub fn default_ignored_sigchld() -> Result<bool, Errno> {
    if handler_of(SIGCHLD)? != SIG_IGN {
        return Ok(false);
    }
    set_default(SIGCHLD).map(|_| true)
}

/// Puts every signal that has a handler back to `SIG_DFL`, and [`RESET_EVEN_IF_IGNORED`] even
/// when ignored.
///
/// Only the calling task's dispositions change: after `clone` without `CLONE_SIGHAND` the child
/// has its own copy of the table.
pub fn reset_signal_handlers() -> Result<(), Errno> {
    for sig in 1..=SIGRTMAX {
        if sig == SIGKILL || sig == SIGSTOP {
            continue;
        }
        let handler = handler_of(sig)?;
        if handler != SIG_DFL && (handler != SIG_IGN || RESET_EVEN_IF_IGNORED.contains(&sig)) {
            set_default(sig)?;
        }
    }
    Ok(())
}

const SIG_BLOCK: usize = 0;
const SIG_SETMASK: usize = 2;

/// Replaces the calling thread's signal mask, returning the old one.
pub fn set_signal_mask(mask: u64) -> Result<u64, Errno> {
    let mut old: u64 = 0;
    // SAFETY: pointers to two 8-byte masks, size 8.
    let ret = unsafe {
        syscall4(
            nr::RT_SIGPROCMASK,
            SIG_SETMASK,
            &mask as *const u64 as usize,
            &mut old as *mut u64 as usize,
            8,
        )
    };
    check(ret).map(|_| old)
}

/// The calling thread's signal mask, unchanged.
pub fn blocked_signals() -> Result<u64, Errno> {
    let mut old: u64 = 0;
    // SAFETY: SIG_BLOCK with a NULL set changes nothing; a pointer to an 8-byte mask, size 8.
    let ret =
        unsafe { syscall4(nr::RT_SIGPROCMASK, SIG_BLOCK, 0, &mut old as *mut u64 as usize, 8) };
    check(ret).map(|_| old)
}

/// `rt_sigtimedwait(set, &info, NULL, 8)`: takes one pending signal of `set` (which must be
/// blocked) and returns its number and `si_code`, waiting until one comes.
pub fn wait_signal(set: u64) -> Result<(c_int, c_int), Errno> {
    // siginfo_t is 128 bytes: si_signo, si_errno, si_code, then the union.
    let mut info = [0i32; 32];
    // SAFETY: a pointer to an 8-byte set, room for a siginfo_t, no timeout, set size 8.
    let ret = unsafe {
        syscall4(nr::RT_SIGTIMEDWAIT, &set as *const u64 as usize, info.as_mut_ptr() as usize, 0, 8)
    };
    check(ret).map(|sig| (sig as c_int, info[2]))
}

/// `signalfd4(-1, &mask, 8, SFD_CLOEXEC | SFD_NONBLOCK)`: an fd that reads the (blocked)
/// signals of `mask` pending for the calling thread or its process.
pub fn signalfd(mask: u64) -> Result<std::os::fd::OwnedFd, Errno> {
    use std::os::fd::FromRawFd;
    const SFD_NONBLOCK: usize = 0o4000;
    const SFD_CLOEXEC: usize = 0o2000000;
    // SAFETY: a pointer to an 8-byte mask, size 8, flags.
    let ret = unsafe {
        syscall4(
            nr::SIGNALFD4,
            usize::MAX, // -1: a new fd
            &mask as *const u64 as usize,
            8,
            SFD_NONBLOCK | SFD_CLOEXEC,
        )
    };
    // SAFETY: a new fd that nothing else owns.
    check(ret).map(|fd| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as c_int) })
}

// For the parent only (`libc::syscall` writes errno): nscell::signals' forwarding.

/// Whether the calling process has the default action for `sig` (no handler, not ignored):
/// [`rt_sigaction`](https://man7.org/linux/man-pages/man2/sigaction.2.html) with no new
/// action, a query that changes nothing. False when the query fails.
pub fn has_default_action(sig: i32) -> bool {
    // The kernel's struct sigaction: handler, flags, restorer, mask (at most 32 bytes).
    let mut old = [0u64; 4];
    // SAFETY: a NULL new action (nothing changes) and a pointer to 32 writable bytes, more than
    // the kernel's struct sigaction takes; the mask size is 8, the kernel's.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            std::ptr::null::<u64>(),
            old.as_mut_ptr(),
            8usize,
        )
    };
    // SIG_DFL is 0.
    ret == 0 && old[0] == 0
}

/// [`rt_sigtimedwait`](https://man7.org/linux/man-pages/man2/sigtimedwait.2.html): takes one
/// pending signal of `set` (blocked), waiting at most `timeout`; `None` when none came.
pub fn wait_signal_for(set: u64, timeout: std::time::Duration) -> Result<Option<i32>, Errno> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: pointers to an 8-byte set and to a timespec, both alive across the call; a NULL
    // siginfo (not wanted); the set size is 8, the kernel's.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_sigtimedwait,
            &set as *const u64,
            std::ptr::null_mut::<libc::siginfo_t>(),
            &ts as *const libc::timespec,
            8usize,
        )
    };
    if ret > 0 {
        return Ok(Some(ret as i32));
    }
    match Errno::from_io_error(&std::io::Error::last_os_error()) {
        Some(Errno::AGAIN | Errno::INTR) => Ok(None),
        Some(e) => Err(e),
        None => Ok(None),
    }
}
