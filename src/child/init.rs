//! The child side of the lifecycle: session, controlling terminal, parent death signal, and the
//! init that runs as PID 1 with the program as its child.
//!
//! Everything here runs after `clone` under the rules of [`crate::child`]: raw system calls
//! only, no allocation, no `errno`, no panics.
//!
//! # The init
//!
//! The sandbox's first task is created on the handshake path, fork-style (without `CLONE_VM`),
//! so it can live on after the caller's `spawn` has returned without sharing the caller's
//! memory: it runs on its own copy, which it makes non-dumpable (`PR_SET_DUMPABLE 0`) so the
//! program cannot ptrace it or open its `/proc/1/mem`. After the common setup it starts the
//! program with `clone(CLONE_VM | CLONE_VFORK)` on a second stack (in the init's own memory):
//! the program's task runs [`crate::child::exec_program`] and execs, and the init resumes once
//! it has. A failed exec leaves its record in `plan.report`; the init sends it through the exec
//! pipe (its memory is not the parent's) and exits, so the parent's `spawn` returns the error.
//!
//! Then the init closes every fd (the setup channel among them: EOF tells the parent that setup is
//! over and that the plan is no longer read) and loops on `rt_sigtimedwait`. All signals are
//! blocked in it (they were blocked around `clone`), and a blocked signal is queued even for
//! PID 1, so it needs no handler: `SIGCHLD` → reap everything with `wait4(-1, WNOHANG)` (it is
//! PID 1 of its own namespace: these are sandbox processes only); a forwarded signal → `kill`
//! the program. When the program has ended, it kills the rest (`kill(-1, SIGKILL)`), reaps them,
//! and exits with the program's status (128+N for signal N).
#![allow(unsafe_code)]

use crate::child::{Bounded, Entry, SETUP_FAILED, exec_program, fail, trampoline};
use crate::error::Failure;
use crate::error::Step;
use crate::plan::Plan;
use crate::sys;
use core::ffi::{c_int, c_void};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::Ordering;

/// `setsid` and `TIOCSCTTY`, in that order, after the mounts and before stdio.
pub(crate) fn setup(plan: &Plan<'_>) -> Result<(), Failure> {
    let life = &plan.lifecycle;
    if life.new_session || life.terminal.is_some() {
        rustix::process::setsid().map_err(fail(Step::NewSession))?;
    }
    if let Some(tty) = life.terminal {
        rustix::process::ioctl_tiocsctty(tty)
            .map_err(fail(Step::ControllingTerminal))?;
    }
    if life.own_group {
        // In the caller's session, but never in its process group: kill(0, sig) inside would
        // reach the caller and its job (process groups span PID namespaces).
        rustix::process::setpgid(None, None).map_err(fail(Step::ProcessGroup))?;
    }
    if let Some(tty) = life.foreground_tty {
        // The caller's group had the terminal: hand it on, as a job-control shell does. Every
        // signal is blocked here, so the SIGTTOU of a background group's tcsetpgrp is not sent.
        rustix::termios::tcsetpgrp(tty, rustix::process::getpgrp())
            .map_err(fail(Step::ForegroundTerminal))?;
    }
    Ok(())
}

/// Ties the setup to the spawner, first thing after `clone`: `PR_SET_PDEATHSIG` for the whole
/// setup, whether or not the sandbox dies with its spawner later, so a setup child whose
/// spawner is gone (a setup step may block for long) does not go on to run the program
/// unsupervised. Nothing clears it before [`end_setup_tie`]: the child changes no uid or gid,
/// and its capability changes only ever narrow.
pub(crate) fn tie_to_spawner(plan: &Plan<'_>) -> Result<(), Failure> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(fail(Step::ParentDeathSignal))?;
    // The spawner may have ended before the prctl, and then no signal comes.
    leave_if_spawner_gone(plan)
}

/// Exits (as `PR_SET_PDEATHSIG` would kill) when the spawner has ended. Its pidfd, opened
/// before clone, polls readable once it has. (If the parent is gone, this task's copy of its fd
/// table still holds the pidfd; it is closed with the other fds, after the last call of this
/// function.)
pub(crate) fn leave_if_spawner_gone(plan: &Plan<'_>) -> Result<(), Failure> {
    let pidfd = plan.lifecycle.parent_pidfd;
    let mut fds = [rustix::event::PollFd::new(&pidfd, rustix::event::PollFlags::IN)];
    let now = rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 };
    match rustix::event::poll(&mut fds, Some(&now)) {
        Ok(0) => Ok(()),
        Ok(_) => sys::exit(128 + sys::SIGKILL),
        Err(e) => Err(Failure::new(Step::ParentDeathSignal, e)),
    }
}

/// The end of the setup's tie to the spawner, in the task that becomes the program (or the
/// init, once its program runs): the death signal is cleared unless the sandbox is to die with
/// its spawner, then the spawner is checked one last time. What remains is the window between
/// that check and `execve` (a few system calls: fds, hardening), in which a spawner that dies
/// leaves a program that runs unsupervised; [`crate::Sandbox::die_with_parent`] closes it.
pub(crate) fn end_setup_tie(plan: &Plan<'_>) -> Result<(), Failure> {
    if !plan.lifecycle.die_with_parent {
        rustix::process::set_parent_process_death_signal(None)
            .map_err(fail(Step::ParentDeathSignal))?;
    }
    leave_if_spawner_gone(plan)
}

/// The signals the init passes on to the program.
const FORWARDED: [c_int; 7] = [
    1,  // SIGHUP
    2,  // SIGINT
    3,  // SIGQUIT
    10, // SIGUSR1
    12, // SIGUSR2
    15, // SIGTERM
    28, // SIGWINCH
];
const SIGHUP: c_int = 1;
const PR_SET_DUMPABLE: c_int = 4;
/// `si_code` of a signal the kernel sent itself: for these, one a terminal sent to its
/// foreground process group (or a hang-up to the session leader).
const SI_KERNEL: c_int = 0x80;

/// The signals the init waits for, as a mask: `SIGCHLD` and the forwarded ones.
const WAITED: u64 = {
    let mut set = bit(sys::SIGCHLD);
    let mut rest: &[c_int] = &FORWARDED;
    while let [sig, tail @ ..] = rest {
        set |= bit(*sig);
        rest = tail;
    }
    set
};

/// The bit of signal `sig` in a signal mask.
#[expect(
    clippy::arithmetic_side_effects,
    reason = "evaluated at compile time only (WAITED), where an overflow does not compile"
)]
const fn bit(sig: c_int) -> u64 {
    1 << (sig - 1)
}

/// The start gate ([`crate::Sandbox::start_gate`]), after the setup and all the hardening but
/// the seccomp filter: this task (a copy of the caller's memory, never `CLONE_VM`) makes
/// itself non-dumpable, closes the setup channel (its EOF tells the spawner the sandbox is
/// created, and nothing is reported through it from here on), and waits until the gate is
/// readable: a byte read starts the program, end of file ends the task with status 0.
pub(crate) fn start_gate(plan: &Plan<'_>) -> Result<(), Failure> {
    use rustix::event::{PollFd, PollFlags, poll};
    let gate = plan.gate_fd.load(Ordering::Relaxed);
    if gate < 0 || plan.lifecycle.start_gate.is_none() {
        return Ok(());
    }
    sys::prctl(PR_SET_DUMPABLE, 0, 0).map_err(fail(Step::StartGate))?;
    // Plain `close`, which any seccomp filter installed already (without no_new_privs) allows
    // where it allows the program to run at all (close_range is newer).
    let end = plan.channel.fd();
    if end >= 0 {
        plan.channel.send_word(crate::plan::GATE_REACHED).map_err(fail(Step::StartGate))?;
        sys::close(end).map_err(fail(Step::StartGate))?;
        plan.channel.set(-1);
    }
    // SAFETY: the gate stays open in this task until the close below (place_fds kept it).
    let fd = unsafe { BorrowedFd::borrow_raw(gate) };
    loop {
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => sys::exit(SETUP_FAILED),
        }
        if fds[0].revents().is_empty() {
            continue;
        }
        let mut byte = [0u8; 1];
        match rustix::io::read(fd, &mut byte) {
            Ok(1) => break,
            Ok(_) => sys::exit(0),
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
            Err(_) => sys::exit(SETUP_FAILED),
        }
    }
    let _ = sys::close(gate);
    Ok(())
}

/// Runs as PID 1: starts the program, then supervises it. Returns only when the program cannot
/// be started (its failure, if it has one, is already in `plan.report`).
pub(crate) fn run(plan: &Plan<'_>) -> Failure {
    // While still dumpable: the nested user namespace's maps are written through /proc/self,
    // which a non-dumpable task cannot do unprivileged (see harden::limit_nested_userns).
    if let Err(f) = crate::child::harden::limit_nested_userns(&plan.harden) {
        return f;
    }
    // The init has its own copy of the caller's memory (spawn clones it without CLONE_VM):
    // non-dumpable, the program can neither ptrace it nor open its /proc/1/mem to read that copy.
    if let Err(e) = sys::prctl(PR_SET_DUMPABLE, 0, 0) {
        return Failure::new(Step::StartProgram, e);
    }
    hide_caller(&plan.lifecycle.caller_memory);
    // The program's task starts with a copy of this fd table: only what the plan names.
    if let Err(f) = crate::child::close_unplanned_fds(plan) {
        return f;
    }
    // What the init keeps until it ends: its stop pipe, the held fds, the locked files.
    let mut keep = Bounded::<c_int, MAX_KEPT>::new(-1);
    plan.lifecycle.stop_fd.iter().for_each(|fd| {
        let _ = keep.push(fd.as_raw_fd());
    });
    plan.held_fds.iter().for_each(|fd| {
        let _ = keep.push(fd.as_raw_fd());
    });
    if let Err(f) = lock_files(plan, &mut keep) {
        return f;
    }
    let flags = sys::CLONE_VM | sys::CLONE_VFORK | sys::SIGCHLD;
    // SAFETY: program_stack is the top of a stack the parent allocated for this and keeps until
    // the setup channel closes; Program follows the child's rules ([`crate::child`]); with CLONE_VFORK this task waits
    // (and so keeps `plan`, its argument, alive) until the program has exec'd or exited.
    let cloned = unsafe {
        sys::clone_on_stack(
            flags,
            plan.lifecycle.program_stack,
            trampoline::<Program>,
            plan as *const Plan<'_> as *mut c_void,
        )
    };
    let program = match cloned {
        Ok(pid) => pid,
        Err(e) => return Failure::new(Step::StartProgram, e),
    };
    if let Some(failure) = Failure::decode(plan.report.load(Ordering::Acquire)) {
        // The program's exec failed and its record says why: reap it and pass the record on.
        let _ = sys::wait4(program, sys::WALL);
        crate::child::report(plan, failure);
    }
    // The program runs: from here on the init outlives its spawner unless told otherwise.
    if let Err(f) = end_setup_tie(plan) {
        let _ = sys::kill(program, sys::SIGKILL);
        let _ = sys::wait4(program, sys::WALL);
        crate::child::report(plan, f);
    }
    // The init needs no capability to reap and to pass signals on to a program of its own uid:
    // it keeps none (bubblewrap's reaper drops them too), so a program that reached it could
    // use none. Best effort: the program runs already.
    let none = rustix::thread::CapabilitySet::empty();
    let _ = rustix::thread::set_capabilities(
        None,
        rustix::thread::CapabilitySets { effective: none, permitted: none, inheritable: none },
    );
    supervise(program, plan.lifecycle.stop_fd, keep, plan.init_is_pid1)
}

/// The most fds the init keeps through its life: the stop pipe, and the held fds and lock
/// files (the builder allows at most [`crate::Sandbox::lock_file`]'s and
/// [`crate::Sandbox::hold_fd`]'s limits of each).
const MAX_KEPT: usize = 1 + 2 * crate::child::MAX_HELD;

/// Opens each lock file (as the sandbox sees it, once its setup is done) and takes a read lock
/// on the whole of it (`F_SETLK`, `F_RDLCK`), as bubblewrap's `--lock-file`; the fds stay open,
/// and the locks held, until the init exits. Before the program starts: while it runs, the
/// locks are held. POSIX locks belong to the process (its fd table) that takes them: the
/// program's task, which closes its copies of the fds, releases nothing.
fn lock_files(plan: &Plan<'_>, keep: &mut Bounded<c_int, MAX_KEPT>) -> Result<(), Failure> {
    use rustix::fs::{Mode, OFlags};
    for (i, path) in plan.lock_files.iter().enumerate() {
        let locked = |e| Failure::new(Step::LockFile, e).at(i);
        // O_NONBLOCK: a FIFO there must not block the setup until a writer comes.
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = rustix::fs::open(*path, flags, Mode::empty()).map_err(locked)?;
        let fd = std::os::fd::IntoRawFd::into_raw_fd(fd);
        keep.push(fd).map_err(locked)?;
        sys::read_lock(fd).map_err(locked)?;
    }
    Ok(())
}

/// Under an init that is not PID 1 of the sandbox's own PID namespace (lock files without one,
/// a joined PID namespace), the program dies with the init (`PR_SET_PDEATHSIG`): killing the
/// sandbox's first task ([`crate::Child::kill`]) ends the program too, as PID 1's end would.
/// An init that is gone already (the parent changed) is the same: the program leaves.
pub(crate) fn tie_to_init(plan: &Plan<'_>) -> Result<(), Failure> {
    if !plan.lifecycle.init || plan.init_is_pid1 {
        return Ok(());
    }
    let init = rustix::process::getppid();
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(fail(Step::ParentDeathSignal))?;
    if rustix::process::getppid() != init {
        sys::exit(128 + sys::SIGKILL);
    }
    Ok(())
}

/// What `/proc/1/cmdline` and `/proc/1/comm` show of the init.
const INIT_NAME: &core::ffi::CStr = c"nscell-init";

/// Makes `/proc/1/cmdline`, `/proc/1/comm` (and `/proc/1/environ`, which the program cannot read
/// anyway: the init is not dumpable) name nothing of the caller's. The init's memory is a copy of
/// the caller's, command line and environment strings included, and the kernel reads
/// `/proc/1/cmdline` from there: blank both areas, write [`INIT_NAME`] at the start of the
/// command line, and (`PR_SET_MM_MAP`, which needs no capability when it leaves the executable
/// alone) end the command line after it and make the environment empty. Should the kernel refuse
/// that, the blanked area still shows the name followed by NUL bytes.
fn hide_caller(mem: &crate::lifecycle::CallerMemory) {
    let _ = rustix::thread::set_name(INIT_NAME);
    let name = INIT_NAME.to_bytes_with_nul();
    let mut arg_end = mem.arg_end;
    for (start, end) in [(mem.arg_start, mem.arg_end), (mem.env_start, mem.env_end)] {
        if let Some(len) = end.checked_sub(start).filter(|&len| start != 0 && len > 0) {
            // SAFETY: the kernel's own record of where this process's (the init's copy of the
            // caller's) argument and environment strings lie; nothing of the init reads them.
            unsafe { core::ptr::write_bytes(start as usize as *mut u8, 0, len as usize) };
        }
    }
    let room = mem.arg_end.saturating_sub(mem.arg_start) as usize;
    // The name's bytes that fit with a NUL after them (at least one, or none at all).
    if let Some(space) = room.checked_sub(1).filter(|&space| space > 0) {
        let len = INIT_NAME.to_bytes().len().min(space);
        // SAFETY: `len` bytes fit in the argument area (checked above); the NUL after them is
        // one of the zeroes just written.
        unsafe {
            core::ptr::copy_nonoverlapping(name.as_ptr(), mem.arg_start as usize as *mut u8, len)
        };
        // len < room: within the argument area, so no sum here saturates.
        arg_end = mem.arg_start.saturating_add(len as u64).saturating_add(1);
    }
    let Ok(brk) = sys::current_brk() else { return };
    let map = rustix::process::PrctlMmMap {
        start_code: mem.start_code,
        end_code: mem.end_code,
        start_data: mem.start_data,
        end_data: mem.end_data,
        start_brk: mem.start_brk,
        brk: brk as u64,
        start_stack: mem.start_stack,
        arg_start: mem.arg_start,
        arg_end,
        env_start: arg_end,
        env_end: arg_end,
        auxv: core::ptr::null_mut(),
        auxv_size: 0,
        exe_fd: -1,
    };
    // SAFETY: the map repeats the kernel's own values but for the (now shorter) command line and
    // the (now empty) environment, which lie in memory of this process; no auxv, no exe change.
    let _ = unsafe { rustix::process::configure_virtual_memory_map(&map) };
}

/// The program's task: the end of the normal path, from the init.
struct Program;

impl Entry for Program {
    type Arg<'a> = Plan<'a>;
    fn run(plan: &Plan<'_>) -> c_int {
        let failure = exec_program(plan);
        plan.report.store(failure.encode(), Ordering::Release);
        sys::exit(SETUP_FAILED)
    }
}

/// The init's loop. Uses nothing of the plan: once it has closed the setup channel, the caller may
/// free it. `stop_fd` is the pipe on which it tells the parent that the program stopped: the
/// init's own copy (it has a fd table and memory of its own), which stays open until it exits,
/// as do the other fds of `keep` (held fds, lock files). As PID 1 (`pid1`) it kills what is left
/// of its namespace when the program has ended; otherwise it signals nothing but the program.
fn supervise(
    program: c_int,
    stop_fd: Option<BorrowedFd<'_>>,
    mut keep: Bounded<c_int, MAX_KEPT>,
    pid1: bool,
) -> ! {
    // The setup channel (EOF: the parent's spawn returns) and the program's stdio (pipes see EOF
    // when the program and its children are done with them); not the fds it keeps.
    let keep = keep.as_mut_slice();
    keep.sort_unstable();
    let mut from: u32 = 0;
    for &fd in keep.iter() {
        let Ok(fd) = u32::try_from(fd) else { continue };
        if let Some(last) = fd.checked_sub(1).filter(|&last| last >= from) {
            let _ = sys::close_range(from, last);
        }
        from = from.max(fd.saturating_add(1));
    }
    let _ = sys::close_range(from, u32::MAX);
    // Everything is blocked already (since clone); make sure of it.
    let _ = sys::set_signal_mask(!0);
    let status = loop {
        match sys::wait_signal(WAITED) {
            Ok((sig, code)) if sig != sys::SIGCHLD && (code != SI_KERNEL || sig == SIGHUP) => {
                let _ = sys::kill(program, sig);
            }
            _ => {}
        }
        if let Some(status) = reap(program, stop_fd) {
            break status;
        }
    };
    if pid1 {
        let _ = sys::kill(-1, sys::SIGKILL);
    }
    // Until ECHILD: nothing is left.
    while let Ok(_) | Err(rustix::io::Errno::INTR) = sys::wait4(-1, sys::WALL) {}
    sys::exit(crate::lifecycle::shell_code(status))
}

/// Reaps every ended process; returns the program's wait status if it was among them. With a
/// stop pipe, a stop of the program is written to it (one byte, the signal): the parent, which
/// cannot see it (the init never stops: PID 1 ignores stop signals from inside), gives the
/// terminal back and stops in its turn ([`crate::Child::stopped`]).
fn reap(program: c_int, stop_fd: Option<BorrowedFd<'_>>) -> Option<c_int> {
    let mut found = None;
    let untraced = if stop_fd.is_some() { sys::WUNTRACED } else { 0 };
    loop {
        match sys::wait4(-1, sys::WNOHANG | sys::WALL | untraced) {
            Ok((0, _)) | Err(_) => return found,
            Ok((pid, status)) if pid == program && status & 0xff == 0x7f => {
                // Non-blocking: a parent that does not read loses stops, never the init.
                if let Some(fd) = stop_fd {
                    let _ = rustix::io::write(fd, &[(status >> 8) as u8]);
                }
            }
            Ok((pid, status)) if pid == program => found = Some(status),
            Ok(_) => {}
        }
    }
}
