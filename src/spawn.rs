//! `clone`, the handshake, and turning the child's report into a `Result`.
//!
//! Two paths run the same child code ([`crate::child`]):
//!
//! - fast: `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD | namespaces)`. The caller's thread is
//!   suspended until the child execs or exits, the child writes its own single-line id maps, and
//!   nothing is copied from the caller's memory: spawning costs the same from any size of parent.
//! - handshake: `clone(CLONE_VM | CLONE_PIDFD | namespaces)` without `CLONE_VFORK`, for maps only
//!   the parent can write. The child waits on a "go" pipe while the parent writes the maps, then
//!   the parent waits for EOF on a CLOEXEC "exec" pipe (exec or exit) before it frees the stack.
//!
//! This module may use `unsafe` for one call: `clone`, whose contract (the plan and the stack
//! outlive the child's use of them) is established here and nowhere else.
#![allow(unsafe_code)]

use crate::child;
use crate::error::Failure;
use crate::error::{Error, Step};
use crate::plan::Plan;
use crate::stdio::above_stdio;
use crate::sys::{self, Stack};
use crate::userns::ParentMaps;
use rustix::io::Errno;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::Instant;

pub(crate) use crate::lifecycle::SetupBound;

/// Why a spawn failed: a step of the child (reported by record; the caller knows the plan's
/// paths to describe it), or a step of the parent.
#[derive(Debug)]
pub(crate) enum SpawnError {
    Child(Failure),
    Parent(Error),
}

impl From<Error> for SpawnError {
    fn from(e: Error) -> Self {
        SpawnError::Parent(e)
    }
}

/// Why a bounded setup was cut short.
enum Cut {
    TimedOut,
    Interrupted,
}

/// A child that has exec'd (or, with an init, whose program has).
pub(crate) struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
    /// The timeout passed before the program was executed: the child has been killed.
    pub setup_timed_out: bool,
}

/// Clones the child with `plan` and returns it once it has exec'd.
///
/// With an init (`plan.lifecycle.init`) the handshake path is taken even without parent maps:
/// the init never execs, so it cannot run while the caller is suspended by `CLONE_VFORK`.
///
/// With a [`SetupBound`] the handshake path is taken too: on the fast path the caller's thread is
/// suspended in the kernel until `execve`, and could not notice a setup step that blocks.
pub(crate) fn spawn(
    plan: &mut Plan<'_>,
    parent_maps: Option<&ParentMaps>,
    bound: &SetupBound<'_>,
) -> Result<Spawned, SpawnError> {
    let namespaces = crate::Namespaces::from_bits_truncate(plan.namespace_flags as u32);
    let parent_err = |step, e: Errno| Error::setup(step, None, e.raw_os_error());
    let clone_err = |e: Errno| Error::setup_in(Step::Clone, None, e.raw_os_error(), namespaces);
    let stack = Stack::take().map_err(|e| parent_err(Step::AllocStack, e))?;

    let init = plan.lifecycle.init;
    if parent_maps.is_none() && !init && !bound.is_set() {
        let flags = sys::CLONE_VM | sys::CLONE_VFORK | sys::CLONE_PIDFD | plan.namespace_flags;
        let (pid, pidfd) = clone_blocked(plan, &stack, flags).map_err(clone_err)?;
        // CLONE_VFORK: the child has exec'd or exited, and its record (if any) is written.
        stack.give_back();
        return finish(plan, pid, pidfd);
    }
    // The init's program runs on its own stack until it execs.
    let program_stack = if init {
        let s = Stack::take().map_err(|e| parent_err(Step::AllocStack, e))?;
        plan.lifecycle.program_stack = s.top() as usize;
        Some(s)
    } else {
        None
    };

    let pipe = || {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        Ok::<_, Errno>((above_stdio(r)?, above_stdio(w)?))
    };
    let go = match parent_maps {
        Some(maps) => {
            // A socket, not a pipe, so the "go" byte can be sent with MSG_NOSIGNAL: a child that
            // died in the meantime must not raise SIGPIPE in a caller that has not ignored it.
            let (go_r, go_w) = go_channel().map_err(|e| parent_err(Step::Pipe, e))?;
            plan.go_fd = go_r.as_raw_fd();
            plan.go_write_fd = go_w.as_raw_fd();
            Some((maps, go_r, go_w))
        }
        None => None,
    };
    let (exec_r, exec_w) = pipe().map_err(|e| parent_err(Step::Pipe, e))?;
    plan.exec_fd = exec_w.as_raw_fd();

    // An init outlives the spawn and runs beside the sandboxed program for as long as the
    // sandbox lives, so it must not share the caller's memory: through PID 1's /proc/1/mem the
    // program could read and write the caller (its uid and namespaces allow that). It gets a copy
    // (fork-style; this costs page-table copies that grow with the caller's size) that it makes
    // non-dumpable. Without an init, the child shares the caller's memory only until execve.
    let flags = if init { 0 } else { sys::CLONE_VM } | sys::CLONE_PIDFD | plan.namespace_flags;
    let (pid, pidfd) = clone_blocked(plan, &stack, flags).map_err(clone_err)?;
    // From here the child runs beside us on `stack`, reading `plan`: both must outlive it, which
    // `ExecGuard` ensures on every path out of this function, unwinding included.
    let mut guard = ExecGuard(Some(exec_r));
    drop(exec_w);

    let written = match go {
        Some((maps, go_r, go_w)) => {
            drop(go_r);
            let written = maps.write(pid);
            if written.is_ok() {
                let _ = rustix::net::send(&go_w, b"g", rustix::net::SendFlags::NOSIGNAL);
            }
            // Without the byte, EOF tells the child to leave.
            drop(go_w);
            written
        }
        None => Ok(()),
    };
    // EOF: the child has exec'd or exited, or (with an init) its program has exec'd. A forked
    // init's failure record comes through the pipe, since its memory is its own.
    let pidfd_ref = std::os::fd::AsFd::as_fd(&pidfd);
    let (word, cut) = guard.wait_bounded(bound, pidfd_ref, &plan.kill_gate);
    if word != 0 {
        plan.report.store(word, Ordering::Release);
    }
    if let Some(s) = program_stack {
        s.give_back();
    }
    stack.give_back();
    match cut {
        // The timeout counts from spawn and kills the sandbox wherever it is: the caller learns
        // it from the Child, as when it passes later (the killed child is reaped by its wait).
        Some(Cut::TimedOut) => {
            return Ok(Spawned { pid, pidfd, setup_timed_out: true });
        }
        Some(Cut::Interrupted) => {
            let _ = crate::process::wait_pidfd(std::os::fd::AsFd::as_fd(&pidfd), waitid_exited());
            return Err(SpawnError::Parent(Error::SetupInterrupted));
        }
        None => {}
    }
    match written {
        Ok(()) => finish(plan, pid, pidfd),
        Err(e) => {
            // The child may have failed first (and the write failed because it was gone): its
            // own record then says more than ours.
            let first = Failure::decode(plan.report.load(Ordering::Acquire));
            let _ = crate::process::wait_pidfd(std::os::fd::AsFd::as_fd(&pidfd), waitid_exited());
            Err(first.map_or(SpawnError::Parent(e), SpawnError::Child))
        }
    }
}

/// The handshake's "go" channel: the child's end, then the parent's.
fn go_channel() -> Result<(OwnedFd, OwnedFd), Errno> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let (r, w) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    Ok((above_stdio(r)?, above_stdio(w)?))
}

fn waitid_exited() -> rustix::process::WaitIdOptions {
    rustix::process::WaitIdOptions::EXITED
}

/// Blocks every signal around `clone`, so no handler of the caller's can run in the child before
/// it has reset them (posix_spawn does the same).
fn clone_blocked(plan: &Plan<'_>, stack: &Stack, flags: i32) -> Result<(i32, OwnedFd), Errno> {
    let old = sys::set_signal_mask(!0)?;
    // SAFETY: clone_entry only reads the plan and follows child.rs's rules; the plan and the
    // stack live until the child has exec'd or exited (CLONE_VFORK, or ExecGuard).
    let result = unsafe {
        sys::clone(
            child::clone_entry,
            stack,
            flags,
            plan as *const Plan<'_> as *mut core::ffi::c_void,
            &plan.sighand_cleared,
        )
    };
    let _ = sys::set_signal_mask(old);
    result
}

/// Reads the exec pipe to EOF when dropped: the child has then exec'd or exited, and no longer
/// uses the stack or the plan.
/// The child may write its failure record (8 bytes, native order) into the pipe before it exits.
struct ExecGuard(Option<OwnedFd>);

impl ExecGuard {
    /// Reads to EOF; returns the failure record the child sent, or 0.
    fn wait(&mut self) -> u64 {
        let Some(fd) = self.0.take() else { return 0 };
        let (mut record, mut got) = ([0u8; 8], 0);
        loop {
            let mut buf = [0u8; 8];
            match rustix::io::read(&fd, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let take = n.min(8 - got);
                    record[got..got + take].copy_from_slice(&buf[..take]);
                    got += take;
                }
                Err(Errno::INTR) => continue,
                Err(_) => break,
            }
        }
        if got == 8 { u64::from_ne_bytes(record) } else { 0 }
    }

    /// [`wait`](ExecGuard::wait), cut short by `bound`: the child (`pidfd`) is then killed, and
    /// the pipe read to its EOF all the same (the child no longer runs on the stack after that).
    fn wait_bounded(
        &mut self,
        bound: &SetupBound<'_>,
        pidfd: BorrowedFd<'_>,
        gate: &crate::plan::KillGate,
    ) -> (u64, Option<Cut>) {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        if !bound.is_set() {
            return (self.wait(), None);
        }
        let cut = loop {
            let Some(fd) = &self.0 else { return (0, None) };
            let left = bound.deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|left| left.is_zero()) {
                break Cut::TimedOut;
            }
            let ts = left.map(|t| Timespec {
                tv_sec: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(t.subsec_nanos()),
            });
            let mut fds = [PollFd::new(fd, PollFlags::IN), PollFd::new(fd, PollFlags::empty())];
            let n = match &bound.abort {
                Some(abort) => {
                    fds[1] = PollFd::new(abort, PollFlags::IN);
                    2
                }
                None => 1,
            };
            match poll(&mut fds[..n], ts.as_ref()) {
                Ok(_) if !fds[0].revents().is_empty() => return (self.wait(), None),
                Ok(_) if n == 2 && !fds[1].revents().is_empty() => break Cut::Interrupted,
                Ok(_) | Err(Errno::INTR) => {}
                // Polling failed: wait without a bound rather than abandon a running child.
                Err(_) => return (self.wait(), None),
            }
        };
        // Not while the child has a helper that would outlive it (a few microseconds).
        gate.close();
        let _ = sys::pidfd_send_signal(pidfd.as_raw_fd(), sys::SIGKILL);
        self.wait();
        (0, Some(cut))
    }
}

impl Drop for ExecGuard {
    fn drop(&mut self) {
        self.wait();
    }
}

/// After the child has exec'd or exited: its record decides between `Ok` and a reaped `Err`.
fn finish(plan: &Plan<'_>, pid: i32, pidfd: OwnedFd) -> Result<Spawned, SpawnError> {
    let word = plan.report.load(Ordering::Acquire);
    match Failure::decode(word) {
        None => Ok(Spawned { pid, pidfd, setup_timed_out: false }),
        Some(f) => {
            let _ = crate::process::wait_pidfd(std::os::fd::AsFd::as_fd(&pidfd), waitid_exited());
            Err(SpawnError::Child(f))
        }
    }
}
