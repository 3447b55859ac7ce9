//! `clone` in one of three modes, the parent's part between `clone` and `execve`, and turning
//! the child's report into a `Result`.
//!
//! All modes run the same child code ([`crate::child`]):
//!
//! - [`Mode::Vfork`], the fast path: `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD | namespaces)`.
//!   The caller's thread is suspended until the child execs or exits, the child writes its own
//!   single-line id maps, and nothing is copied from the caller's memory: spawning costs the same
//!   from any size of parent. There is no channel and no checkpoint.
//! - [`Mode::Handshake`]: `clone(CLONE_VM | CLONE_PIDFD | namespaces)` without `CLONE_VFORK`, when
//!   the parent must act while the child is being set up (id maps only the parent can write) or
//!   must be able to cut the setup short (a timeout, an abort fd). A `SOCK_SEQPACKET` channel
//!   joins them: at each [`Checkpoint`] the plan names, the child says where it is and waits;
//!   the parent runs its [`Hooks`] for that checkpoint and answers "go" (or shuts the channel, and
//!   the child leaves quietly). The child's end is CLOEXEC: EOF tells the parent that it has
//!   exec'd or exited, and only then is the stack it ran on given back.
//! - [`Mode::Forked`]: without `CLONE_VM`, for a child that outlives the spawn and must not share
//!   the caller's memory (the init). The same channel and checkpoints.
//!
//! This module may use `unsafe` for one call: `clone`, whose contract (the plan and the stack
//! outlive the child's use of them) is established here and nowhere else.
#![allow(unsafe_code)]

mod hooks;
mod stack;

use crate::child;
use crate::error::Failure;
use crate::error::{Error, Step};
use crate::plan::{Checkpoint, Plan};
use crate::stdio::above_stdio;
use crate::sys;
use crate::userns::ParentMaps;
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags, Shutdown};
use stack::Stack;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::Instant;

pub(crate) use crate::lifecycle::SetupBound;
pub(crate) use hooks::CallerHooks;
pub use hooks::{SetupInfo, SetupStage};

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

/// How the child is cloned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `CLONE_VM | CLONE_VFORK`: no channel, no checkpoint, nothing to pay for them.
    Vfork,
    /// `CLONE_VM`, with the channel: the parent acts at checkpoints, or bounds the setup.
    Handshake,
    /// A copy of the caller's memory, with the channel: a child that outlives the spawn.
    Forked,
}

impl Mode {
    /// The cheapest mode that can do what the plan, the hooks and the bound ask for.
    fn of(plan: &Plan<'_>, hooks: &Hooks<'_>, bound: &SetupBound<'_>) -> Mode {
        // An init outlives the spawn and runs beside the sandboxed program for as long as the
        // sandbox lives, so it must not share the caller's memory: through PID 1's /proc/1/mem
        // the program could read and write the caller (its uid and namespaces allow that). It
        // gets a copy (this costs page-table copies that grow with the caller's size) that it
        // makes non-dumpable. It never execs, so it cannot run under CLONE_VFORK either.
        // A sandbox started later through its gate outlives the spawn too, waiting before
        // `execve`: it gets a copy as well, which it makes non-dumpable before it waits.
        if plan.lifecycle.init || plan.joins_need_own_memory || plan.lifecycle.start_gate.is_some()
        {
            // A join that would change the caller's memory (see `src/child/join.rs`) gets a copy
            // of it too.
            Mode::Forked
        } else if hooks.checkpoints() != 0 || bound.is_set() {
            // On the fast path the caller's thread is suspended in the kernel until `execve`:
            // it could neither act at a checkpoint nor notice a setup step that blocks.
            // But under a memory limit a child that shares the caller's memory outside vfork
            // (which the OOM killer passes over) is a candidate of the sandbox's OOM killer,
            // which kills every process sharing its victim's memory: the caller too. It gets a
            // copy instead.
            if plan.cgroup.as_ref().is_some_and(|c| c.memory) {
                Mode::Forked
            } else {
                Mode::Handshake
            }
        } else {
            Mode::Vfork
        }
    }
}

/// What the parent does between `clone` and `execve`, at the child's checkpoints.
pub(crate) struct Hooks<'h> {
    /// Id maps only the parent may write, at [`Checkpoint::NamespacesCreated`].
    pub maps: Option<&'h ParentMaps>,
    /// The network helper, started at [`Checkpoint::NamespacesCreated`] (after the maps) and
    /// waited for until it is ready.
    pub net: Option<&'h mut crate::net::Start>,
    /// The caller's own hooks ([`crate::Sandbox::on_setup`]), after nscell's at each
    /// checkpoint.
    pub caller: Option<&'h mut CallerHooks>,
    /// The caller's hooks write the id maps ([`crate::Sandbox::id_maps_by_caller`]): at
    /// [`Checkpoint::NamespacesCreated`] the network helper, which needs them, starts after
    /// the caller's hooks instead of before.
    pub maps_by_caller: bool,
}

/// A test's own hook, at each checkpoint of its set, for spawns from the thread that set it.
#[cfg(test)]
type TestHook = Box<dyn FnMut(Checkpoint, i32) -> Result<(), Error>>;

#[cfg(test)]
thread_local! {
    pub(crate) static TEST_HOOK: std::cell::RefCell<Option<(u8, TestHook)>> =
        const { std::cell::RefCell::new(None) };
}

impl<'h> Hooks<'h> {
    /// The parent's part when it writes the id maps itself (or none).
    pub fn with_maps(maps: Option<&'h ParentMaps>) -> Hooks<'h> {
        Hooks { maps, net: None, caller: None, maps_by_caller: false }
    }

    /// The checkpoints at which the parent acts (a set of [`Checkpoint::bit`]s).
    fn checkpoints(&self) -> u8 {
        let maps = if self.maps.is_some() || self.net.is_some() {
            Checkpoint::NamespacesCreated.bit()
        } else {
            0
        };
        let maps = maps | self.caller.as_ref().map_or(0, |c| c.checkpoints());
        #[cfg(test)]
        let maps = maps | TEST_HOOK.with_borrow(|h| h.as_ref().map_or(0, |(set, _)| *set));
        maps
    }

    /// The parent's part at `at`, for the child `pid`: nscell's own, then the caller's.
    fn run(&mut self, at: Checkpoint, pid: i32) -> Result<(), Error> {
        let created = at == Checkpoint::NamespacesCreated;
        if created {
            if let Some(maps) = self.maps {
                maps.write(pid)?;
            }
        }
        if created && !self.maps_by_caller {
            if let Some(net) = self.net.as_deref_mut() {
                net.run(pid)?;
            }
        }
        if let Some(caller) = self.caller.as_deref_mut() {
            caller.run(at, pid)?;
        }
        if created && self.maps_by_caller {
            if let Some(net) = self.net.as_deref_mut() {
                net.run(pid)?;
            }
        }
        #[cfg(test)]
        TEST_HOOK.with_borrow_mut(|h| match h {
            Some((set, hook)) if *set & at.bit() != 0 => hook(at, pid),
            _ => Ok(()),
        })?;
        Ok(())
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

/// Clones the child with `plan` and returns it once it has exec'd; `hooks` run at the
/// checkpoints they name, and `bound` may cut the setup short. On the paths with a setup
/// channel, its parent's end is put in `parent_end`, from which the plan borrows it (the
/// caller's slot so outlives the child's use of it); it is shut and read to EOF here, and
/// closed with the slot.
pub(crate) fn spawn<'a>(
    plan: &mut Plan<'a>,
    parent_end: &'a mut Option<OwnedFd>,
    mut hooks: Hooks<'_>,
    bound: &SetupBound<'_>,
) -> Result<Spawned, SpawnError> {
    let namespaces = crate::Namespaces::from_bits_truncate(plan.namespace_flags as u32);
    let parent_err = |step, e: Errno| Error::setup(step, None, e.raw_os_error());
    let clone_err = |e: Errno| Error::setup_in(Step::Clone, None, e.raw_os_error(), namespaces);
    let stack = Stack::take().map_err(|e| parent_err(Step::AllocStack, e))?;
    // With joins, `clone` creates the joining task, which enters them and clones the sandbox's
    // first task with the namespace flags on a stack of its own (`src/child/join.rs`).
    let joining = !plan.joins.is_empty();
    let (entry, ns_flags) = if joining {
        (child::join::JOIN_ENTRY, 0)
    } else {
        (child::CLONE_ENTRY, plan.namespace_flags)
    };
    let sandbox_stack = if joining {
        let s = Stack::take().map_err(|e| parent_err(Step::AllocStack, e))?;
        plan.sandbox_stack = s.top() as usize;
        Some(s)
    } else {
        None
    };

    let mode = Mode::of(plan, &hooks, bound);
    if mode == Mode::Vfork {
        let flags = sys::CLONE_VM | sys::CLONE_VFORK | sys::CLONE_PIDFD | ns_flags;
        let (pid, pidfd) = clone_blocked(plan, &stack, flags, entry).map_err(clone_err)?;
        // CLONE_VFORK: the child has exec'd or exited, and its record (if any) is written.
        stack.give_back();
        if let Some(s) = sandbox_stack {
            // The joining task waited (CLONE_VFORK) for the first task's exec or exit.
            s.give_back();
            let successor = plan.successor.load(Ordering::Acquire);
            return finish_joined(plan, &pidfd, (successor > 0).then_some(successor), Ok(()));
        }
        return finish(plan, pid, pidfd);
    }
    // The init's program runs on its own stack until it execs.
    let program_stack = if mode == Mode::Forked {
        let s = Stack::take().map_err(|e| parent_err(Step::AllocStack, e))?;
        plan.lifecycle.program_stack = s.top() as usize;
        Some(s)
    } else {
        None
    };

    let (ours, theirs) = channel().map_err(|e| parent_err(Step::Pipe, e))?;
    let ours: &'a OwnedFd = parent_end.insert(ours);
    // The child's end is not borrowed: the child moves it (`Channel`), and it is closed here
    // once the child has its copy.
    plan.channel.set(theirs.as_raw_fd());
    plan.parent_end = Some(ours.as_fd());
    plan.checkpoints = hooks.checkpoints();

    let vm = if mode == Mode::Forked { 0 } else { sys::CLONE_VM };
    let flags = vm | sys::CLONE_PIDFD | ns_flags;
    let (pid, pidfd) = clone_blocked(plan, &stack, flags, entry).map_err(clone_err)?;
    // From here the child runs beside us on `stack`, reading `plan`: both must outlive it, which
    // `Setup` ensures on every path out of this function, unwinding included.
    let mut setup = Setup { fd: Some(ours.as_fd()), successor: None, killing: false, gated: false };
    drop(theirs);

    let (word, cut, acted) = setup.follow(&mut hooks, pid, bound, pidfd.as_fd(), &plan.kill_gate);
    // Read to EOF: neither task runs on the stacks any longer.
    setup.drain();
    if word != 0 {
        plan.report.store(word, Ordering::Release);
    }
    if let Some(s) = program_stack {
        s.give_back();
    }
    if let Some(s) = sandbox_stack {
        s.give_back();
    }
    stack.give_back();
    if joining {
        let successor = setup.successor;
        match cut {
            // Both tasks are killed (`follow`); the sandbox's first task is the caller's
            // child, reaped here, the joining task is the one the Child waits for.
            Some(Cut::TimedOut) => {
                if let Some(fd) = successor.and_then(|p| adopt(p).ok()) {
                    reap(&fd);
                }
                return Ok(Spawned { pid, pidfd, setup_timed_out: true });
            }
            Some(Cut::Interrupted) => {
                let _ = finish_joined(plan, &pidfd, successor, Err(Error::SetupInterrupted));
                return Err(SpawnError::Parent(Error::SetupInterrupted));
            }
            None => return finish_joined(plan, &pidfd, successor, acted),
        }
    }
    match cut {
        // The timeout counts from spawn and kills the sandbox wherever it is: the caller learns
        // it from the Child, as when it passes later (the killed child is reaped by its wait).
        Some(Cut::TimedOut) => {
            return Ok(Spawned { pid, pidfd, setup_timed_out: true });
        }
        Some(Cut::Interrupted) => {
            reap(&pidfd);
            return Err(SpawnError::Parent(Error::SetupInterrupted));
        }
        None => {}
    }
    if acted.is_ok() && word == 0 && plan.lifecycle.start_gate.is_some() && !setup.gated {
        // It ended before its gate without a record: the record could not be sent (a seccomp
        // filter installed without no_new_privs refuses a later step, and sending). It may
        // wait at its gate all the same: killed, then reaped.
        let _ = sys::pidfd_send_signal(pidfd.as_raw_fd(), sys::SIGKILL);
        reap(&pidfd);
        return Err(SpawnError::Parent(Error::setup(Step::StartGate, None, libc::ECHILD)));
    }
    match acted {
        Ok(()) => finish(plan, pid, pidfd),
        Err(e) => {
            // The child may have failed first (and the hook failed because it was gone): its
            // own record then says more than ours.
            let first = Failure::decode(plan.report.load(Ordering::Acquire));
            reap(&pidfd);
            Err(first.map_or(SpawnError::Parent(e), SpawnError::Child))
        }
    }
}

/// The setup channel: the parent's end, then the child's. Datagrams keep each 8-byte message
/// whole; a socket, not a pipe, so the parent can answer on it, and with `MSG_NOSIGNAL`: a child
/// that died in the meantime must not raise `SIGPIPE` in a caller that has not ignored it.
fn channel() -> Result<(OwnedFd, OwnedFd), Errno> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let (a, b) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    Ok((above_stdio(a)?, above_stdio(b)?))
}

/// Reaps a child that failed or was killed during its setup.
fn reap(pidfd: &OwnedFd) {
    let _ = crate::process::wait_pidfd(pidfd.as_fd(), rustix::process::WaitIdOptions::EXITED);
}

/// Blocks every signal around `clone`, so no handler of the caller's can run in the child before
/// it has reset them (posix_spawn does the same).
fn clone_blocked(
    plan: &Plan<'_>,
    stack: &Stack,
    flags: i32,
    entry: extern "C" fn(*mut core::ffi::c_void) -> core::ffi::c_int,
) -> Result<(i32, OwnedFd), Errno> {
    let old = sys::set_signal_mask(!0)?;
    let (base, len) = stack.region();
    // SAFETY: both entries (CLONE_ENTRY, JOIN_ENTRY) only read the plan and follow the child's
    // rules ([`crate::child`]); the plan and the stacks live until the child (and the task it
    // clones after joins) has exec'd or exited (CLONE_VFORK, or `Setup`).
    let result = unsafe {
        sys::clone(
            entry,
            base,
            len,
            flags,
            plan as *const Plan<'_> as *mut core::ffi::c_void,
            &plan.sighand_cleared,
            crate::kernel::clone3_usable().then(|| sys::Clone3 {
                cgroup: plan.cgroup.as_ref().and_then(|c| c.into).map(|fd| fd.as_raw_fd()),
            }),
        )
    };
    let _ = sys::set_signal_mask(old);
    let (pid, pidfd, clone3_refused) = result?;
    if clone3_refused {
        crate::kernel::clone3_refused();
    }
    Ok((pid, pidfd))
}

/// The parent's end of the setup channel. Dropped, it shuts the channel (a child waiting at a
/// checkpoint then leaves) and reads it to EOF: the child has then exec'd or exited, and no
/// longer uses the stack or the plan.
struct Setup<'a> {
    fd: Option<BorrowedFd<'a>>,
    /// After joins: the sandbox's first task, once it has announced itself.
    successor: Option<i32>,
    /// The setup is being cut short: a first task that announces itself now is killed.
    killing: bool,
    /// A gated sandbox said it waits at its start gate.
    gated: bool,
}

/// What the parent made of one message of the child's.
enum Message {
    /// The child's end is closed: it has exec'd or exited.
    End,
    /// A failure record, before the child exits.
    Record(u64),
    /// After joins: the sandbox's first task's pid.
    Successor(i32),
    /// It waits at its start gate.
    Gated,
    /// The child waits at a checkpoint.
    At(Checkpoint),
    /// Nothing that makes sense (it is ignored).
    Other,
}

impl Setup<'_> {
    fn receive(fd: BorrowedFd<'_>) -> Message {
        let mut buf = [0u8; 8];
        loop {
            match rustix::net::recv(fd, &mut buf, RecvFlags::empty()) {
                Ok((0, _)) => return Message::End,
                Ok((8, _)) => break,
                Ok(_) => return Message::Other,
                Err(Errno::INTR) => continue,
                Err(_) => return Message::End,
            }
        }
        let word = u64::from_ne_bytes(buf);
        if Failure::decode(word).is_some() {
            return Message::Record(word);
        }
        if word == crate::plan::GATE_REACHED {
            return Message::Gated;
        }
        if let Some(pid) = crate::plan::successor_of(word) {
            return Message::Successor(pid);
        }
        Checkpoint::decode(word).map_or(Message::Other, Message::At)
    }

    /// Follows the child's setup to its end: runs `hooks` at each checkpoint and answers, until
    /// EOF. Returns the failure record the child sent (or 0), whether `bound` cut the setup
    /// short (the child is then killed, and the channel read to its EOF all the same), and the
    /// first hook's error (after which the child is told to leave).
    fn follow(
        &mut self,
        hooks: &mut Hooks<'_>,
        pid: i32,
        bound: &SetupBound<'_>,
        pidfd: BorrowedFd<'_>,
        gate: &crate::plan::KillGate,
    ) -> (u64, Option<Cut>, Result<(), Error>) {
        let (mut word, mut acted) = (0, Ok(()));
        let cut = loop {
            let Some(fd) = self.fd else { return (word, None, acted) };
            match Self::ready(fd, bound) {
                Ok(()) => {}
                Err(cut) => break cut,
            }
            match Self::receive(fd) {
                Message::End => return (word, None, acted),
                Message::Record(w) => word = w,
                Message::Successor(p) => self.successor = Some(p),
                Message::Gated => self.gated = true,
                Message::At(at) => {
                    // After a hook failed, no other runs: the child is told to leave. After
                    // joins the hooks act on the sandbox's first task, which announced itself
                    // before its first checkpoint.
                    if acted.is_ok() {
                        acted = hooks.run(at, self.successor.unwrap_or(pid));
                    }
                    // A bound that passed while the hooks ran (a caller's hook may block for as
                    // long as it likes) cuts the setup here, before the child goes on.
                    if let Some(cut) = Self::passed(bound) {
                        break cut;
                    }
                    if acted.is_ok() {
                        let _ = rustix::net::send(fd, b"g", SendFlags::NOSIGNAL);
                    } else {
                        // No answer but EOF: the child leaves.
                        let _ = rustix::net::shutdown(fd, Shutdown::Write);
                    }
                }
                Message::Other => {}
            }
        };
        // Not while the child has a helper that would outlive it (a few microseconds).
        gate.close();
        let _ = sys::pidfd_send_signal(pidfd.as_raw_fd(), sys::SIGKILL);
        self.killing = true;
        if let Some(p) = self.successor {
            kill_successor(p);
        }
        self.drain();
        (0, Some(cut), acted)
    }

    /// Waits until the channel has something to read, unless `bound` cuts the setup short
    /// first. Without a bound it returns at once (the read blocks).
    fn ready(fd: BorrowedFd<'_>, bound: &SetupBound<'_>) -> Result<(), Cut> {
        use rustix::event::{PollFd, PollFlags, poll};
        if !bound.is_set() {
            return Ok(());
        }
        loop {
            let left = bound.deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|left| left.is_zero()) {
                return Err(Cut::TimedOut);
            }
            let ts = left.map(crate::process::timespec);
            let mut fds = [PollFd::new(&fd, PollFlags::IN), PollFd::new(&fd, PollFlags::empty())];
            let n = match &bound.abort {
                Some(abort) => {
                    fds[1] = PollFd::new(abort, PollFlags::IN);
                    2
                }
                None => 1,
            };
            match poll(&mut fds[..n], ts.as_ref()) {
                Ok(_) if !fds[0].revents().is_empty() => return Ok(()),
                Ok(_) if n == 2 && !fds[1].revents().is_empty() => return Err(Cut::Interrupted),
                Ok(_) | Err(Errno::INTR) => {}
                // Polling failed: wait without a bound rather than abandon a running child.
                Err(_) => return Ok(()),
            }
        }
    }

    /// Whether `bound` cuts the setup short now (without waiting).
    fn passed(bound: &SetupBound<'_>) -> Option<Cut> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        if bound.deadline.is_some_and(|d| d <= Instant::now()) {
            return Some(Cut::TimedOut);
        }
        let abort = bound.abort.as_ref()?;
        let mut fds = [PollFd::new(abort, PollFlags::IN)];
        let now = Timespec { tv_sec: 0, tv_nsec: 0 };
        match poll(&mut fds, Some(&now)) {
            Ok(_) if !fds[0].revents().is_empty() => Some(Cut::Interrupted),
            _ => None,
        }
    }

    /// Shuts the channel and reads it to EOF.
    fn drain(&mut self) {
        let Some(fd) = self.fd.take() else { return };
        let _ = rustix::net::shutdown(fd, Shutdown::Write);
        loop {
            match Self::receive(fd) {
                Message::End => return,
                // The joining task was killed after it had cloned the first task.
                Message::Successor(p) => {
                    self.successor = Some(p);
                    if self.killing {
                        kill_successor(p);
                    }
                }
                _ => {}
            }
        }
    }
}

impl Drop for Setup<'_> {
    fn drop(&mut self) {
        self.drain();
    }
}

/// A pidfd of the sandbox's first task after joins: the caller's child (`CLONE_PARENT`), which
/// nothing but the caller's wait reaps, so its pid names it until then.
fn adopt(pid: i32) -> Result<OwnedFd, Errno> {
    let pid = rustix::process::Pid::from_raw(pid).ok_or(Errno::SRCH)?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
}

/// Kills the sandbox's first task after joins (a setup cut short).
fn kill_successor(pid: i32) {
    if let Ok(fd) = adopt(pid) {
        let _ = sys::pidfd_send_signal(fd.as_raw_fd(), sys::SIGKILL);
    }
}

/// After joins, once the setup is over: the joining task (`joiner`) is reaped (it has exited,
/// or exits now), and the sandbox's first task becomes the spawned child, or is reaped too
/// when the setup failed (its record, or the parent's `acted`).
fn finish_joined(
    plan: &Plan<'_>,
    joiner: &OwnedFd,
    successor: Option<i32>,
    acted: Result<(), Error>,
) -> Result<Spawned, SpawnError> {
    reap(joiner);
    let adopted = successor.map(|pid| adopt(pid).map(|fd| (pid, fd)));
    let failure = Failure::decode(plan.report.load(Ordering::Acquire));
    if failure.is_some() || acted.is_err() {
        if let Some(Ok((_, fd))) = &adopted {
            reap(fd);
        }
        // The child's own record says more than a hook's failure that followed it.
        return Err(failure.map_or_else(
            || SpawnError::Parent(acted.err().unwrap_or(Error::SetupInterrupted)),
            SpawnError::Child,
        ));
    }
    match adopted {
        Some(Ok((pid, pidfd))) => Ok(Spawned { pid, pidfd, setup_timed_out: false }),
        Some(Err(e)) => Err(SpawnError::Parent(Error::setup(Step::Clone, None, e.raw_os_error()))),
        // The joining task ended without a record or a first task: killed from outside.
        None => Err(SpawnError::Parent(Error::setup(Step::Clone, None, libc::ECHILD))),
    }
}

/// After the child has exec'd or exited: its record decides between `Ok` and a reaped `Err`.
fn finish(plan: &Plan<'_>, pid: i32, pidfd: OwnedFd) -> Result<Spawned, SpawnError> {
    let word = plan.report.load(Ordering::Acquire);
    match Failure::decode(word) {
        None => Ok(Spawned { pid, pidfd, setup_timed_out: false }),
        Some(f) => {
            reap(&pidfd);
            Err(SpawnError::Child(f))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_hooks_ask_for_their_checkpoints_only() {
        // None set: no checkpoint, so the spawn keeps the fast path.
        let mut none = CallerHooks::default();
        let hooks = Hooks { caller: Some(&mut none), ..Hooks::with_maps(None) };
        assert_eq!(hooks.checkpoints(), 0);
        let mut some = CallerHooks::default();
        some.push(SetupStage::MountsReady, Box::new(|_| Ok(())));
        some.push(SetupStage::BeforeExec, Box::new(|_| Ok(())));
        let hooks = Hooks { caller: Some(&mut some), ..Hooks::with_maps(None) };
        assert_eq!(
            hooks.checkpoints(),
            Checkpoint::MountsReady.bit() | Checkpoint::BeforeExec.bit()
        );
    }

    #[test]
    fn the_callers_hooks_run_at_their_checkpoint_and_end_the_run_with_their_error() {
        let mut caller = CallerHooks::default();
        caller.push(
            SetupStage::NamespacesCreated,
            Box::new(|info| Err(std::io::Error::from_raw_os_error(info.pid as i32))),
        );
        let mut hooks = Hooks { caller: Some(&mut caller), ..Hooks::with_maps(None) };
        assert!(hooks.run(Checkpoint::MountsReady, 5).is_ok());
        let e = hooks.run(Checkpoint::NamespacesCreated, 5).unwrap_err();
        assert_eq!((e.step(), e.raw_os_error()), (Some(Step::SetupHook), Some(5)));
    }
}
