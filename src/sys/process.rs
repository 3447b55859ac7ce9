//! Processes: `execve`, `exit_group`, `kill`, `pidfd_send_signal`, waiting (`wait4`, and
//! `waitid` with rusage for the parent), `prctl`, and the task's `getcwd` and `brk`.
#![allow(unsafe_code)]

use super::raw::{check, nr, syscall4, syscall5};
use core::ffi::{c_char, c_int};
use rustix::io::Errno;

/// `execve(path, argv, envp)`; returns only on failure.
///
/// # Safety
///
/// `path` is a NUL-terminated string, `argv` and `envp` NULL-terminated arrays of them.
pub unsafe fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> Errno {
    // SAFETY: the caller vouches for the three pointers.
    let ret = unsafe { syscall4(nr::EXECVE, path as usize, argv as usize, envp as usize, 0) };
    match check(ret) {
        Err(e) => e,
        Ok(_) => Errno::INVAL,
    }
}

/// `exit_group(code)`: ends the child without running any of the caller's exit handlers.
pub fn exit(code: c_int) -> ! {
    loop {
        // SAFETY: exit_group takes an integer and does not return.
        unsafe {
            syscall4(nr::EXIT_GROUP, code as usize, 0, 0, 0);
        }
    }
}

/// `kill(pid, sig)`.
pub fn kill(pid: c_int, sig: c_int) -> Result<(), Errno> {
    // SAFETY: integers only.
    let ret = unsafe { syscall4(nr::KILL, pid as usize, sig as usize, 0, 0) };
    check(ret).map(|_| ())
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)` for any signal number, real-time ones included
/// (rustix's typed `Signal` needs `unsafe` to name those).
pub fn pidfd_send_signal(pidfd: c_int, sig: c_int) -> Result<(), Errno> {
    // SAFETY: integers and a NULL siginfo.
    let ret = unsafe { syscall4(nr::PIDFD_SEND_SIGNAL, pidfd as usize, sig as usize, 0, 0) };
    check(ret).map(|_| ())
}

/// `prctl(option, a2, a3, 0, 0)`.
pub fn prctl(option: c_int, a2: usize, a3: usize) -> Result<usize, Errno> {
    // SAFETY: every prctl option used by nscell takes integers only.
    check(unsafe { syscall5(nr::PRCTL, option as usize, a2, a3, 0, 0) })
}

/// `wait4` option: do not block.
pub const WNOHANG: c_int = 1;
/// `wait4` option `WUNTRACED`: report stopped children too.
pub const WUNTRACED: c_int = 2;
/// `wait4` option `__WALL`: children of any kind (clone children included).
pub const WALL: c_int = 0x4000_0000;

/// `wait4(pid, &status, options, NULL)`: the pid reaped (0 with `WNOHANG` when none has
/// changed state) and its raw wait status.
pub fn wait4(pid: c_int, options: c_int) -> Result<(c_int, c_int), Errno> {
    let mut status: c_int = 0;
    // SAFETY: a pointer to an int for the status, a NULL rusage.
    let ret = unsafe {
        syscall4(nr::WAIT4, pid as usize, &mut status as *mut c_int as usize, options as usize, 0)
    };
    check(ret).map(|pid| (pid as c_int, status))
}

/// `waitid(P_PIDFD, pidfd, &info, options, &rusage)` once (rustix has no rusage argument): the
/// process's wait status, encoded as `wait4` gives it and `ExitStatus::from_raw` takes it
/// (exited, killed, dumped core, stopped or continued), and its resource usage; `None` with
/// `WNOHANG` while it has no state change of the kinds asked for. `EINTR` comes back as it is.
/// Parent side only (it reads `errno`).
pub fn waitid_pidfd(
    pidfd: std::os::fd::BorrowedFd<'_>,
    options: rustix::process::WaitIdOptions,
) -> Result<Option<(c_int, libc::rusage)>, Errno> {
    use std::os::fd::AsRawFd;
    const P_PIDFD: libc::c_long = 3;
    // SAFETY: zeroed siginfo_t and rusage are valid values of these plain C structs.
    let mut info: libc::siginfo_t = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    let mut usage: libc::rusage = unsafe { core::mem::zeroed() };
    // SAFETY: valid pointers to a siginfo_t and a rusage that outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_waitid,
            P_PIDFD,
            pidfd.as_raw_fd() as libc::c_long,
            &mut info as *mut libc::siginfo_t,
            options.bits() as libc::c_long,
            &mut usage as *mut libc::rusage,
        )
    };
    if ret < 0 {
        return Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::INVAL));
    }
    // SAFETY: the kernel filled in the SIGCHLD member (or left it zero: no state change).
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    let raw = match info.si_code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_DUMPED => status | 0x80,
        // A trap (only a tracer sees one) reads as a stop, as wait4 shows it.
        libc::CLD_STOPPED | libc::CLD_TRAPPED => (status & 0xff) << 8 | 0x7f,
        libc::CLD_CONTINUED => 0xffff,
        _ => status,
    };
    Ok(Some((raw, usage)))
}

/// `getcwd(buf)` as the raw system call: the length of the path written into `buf` (with its
/// NUL). Unlike glibc's wrapper it shows a working directory outside the root as it is, a path
/// starting with `(unreachable)`, instead of failing with `ENOENT`.
pub fn getcwd(buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: a writable buffer and its length.
    let ret = unsafe { syscall4(nr::GETCWD, buf.as_mut_ptr() as usize, buf.len(), 0, 0) };
    check(ret)
}

/// The current end of the data segment: the raw `brk(0)` system call, which returns it.
pub fn current_brk() -> Result<usize, Errno> {
    // SAFETY: brk(0) asks for an impossible end, so it changes nothing and returns the current.
    check(unsafe { syscall4(nr::BRK, 0, 0, 0, 0) })
}

/// `PR_SET_PDEATHSIG`.
const PR_SET_PDEATHSIG: c_int = 1;

/// Prepares `cmd` (a network helper) to get `fds` as `(fd, number)` pairs, and to be killed
/// when the thread that spawns it ends (`PR_SET_PDEATHSIG`, set last, after `fork`: a
/// credential change would clear it, and std's `exec` changes none). A helper whose parent
/// died before the signal was armed exits at once.
pub fn helper_setup(cmd: &mut std::process::Command, fds: Vec<(c_int, c_int)>) {
    use std::os::unix::process::CommandExt;
    debug_assert!(fds.len() <= 8, "a helper gets at most 8 fds");
    let parent = rustix::process::getpid().as_raw_nonzero().get();
    let errno = |e: Errno| std::io::Error::from_raw_os_error(e.raw_os_error());
    let hook = move || -> std::io::Result<()> {
        // Out of the targets' way first: a source may sit on another's target number.
        let mut high = [0 as c_int; 8];
        for (slot, &(fd, _)) in high.iter_mut().zip(&fds) {
            *slot = super::fd::dupfd_cloexec(fd, 64).map_err(errno)?;
        }
        for (&h, &(_, target)) in high.iter().zip(&fds) {
            super::fd::dup3(h, target).map_err(errno)?;
        }
        prctl(PR_SET_PDEATHSIG, super::signal::SIGKILL as usize, 0).map_err(errno)?;
        if rustix::process::getppid().map(|p| p.as_raw_nonzero().get()) != Some(parent) {
            exit(1);
        }
        Ok(())
    };
    // SAFETY: the hook runs in the forked child before `execve` and makes only system calls
    // that are async-signal-safe (fcntl, dup3, prctl, getppid, exit_group); it allocates
    // nothing and takes no lock.
    unsafe { cmd.pre_exec(hook) };
}
