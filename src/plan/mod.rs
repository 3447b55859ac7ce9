//! Everything the child needs, prepared before `clone`.
//!
//! The child only reads a `Plan`: every string is already a `CString`, every pointer array is
//! built and NULL-terminated, every map is rendered to bytes, and every fd is open. That is what
//! lets the child side run without allocating.
//!
//! The fds are typed: a `BorrowedFd<'a>` (an `Option` of one where there may be none) borrowed
//! from what owns it for the spawn (the prepared stdio, the lifecycle's `Armed`, the sandbox's
//! passed fds, the setup channel's slot in the spawn), so the borrow checker keeps every owner
//! alive for as long as the plan, which lives until the child has exec'd. The child (cloned
//! without `CLONE_FILES`) has a copy of the caller's fd table with them open, under the same
//! numbers; each one it closes in its copy (`place_fds`, the init's closing of unplanned fds)
//! is one no later step of it uses.

use std::ffi::{CStr, CString};
use std::os::fd::{BorrowedFd, RawFd};
use std::os::raw::c_char;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};

/// Map bytes the child writes itself (a single line mapping the caller's own id).
pub(crate) struct SelfMaps {
    pub uid_map: Vec<u8>,
    pub gid_map: Vec<u8>,
}

pub(crate) struct Plan<'a> {
    /// `CLONE_NEW*` flags for `clone` (never `CLONE_NEWTIME`).
    pub namespace_flags: i32,
    /// The child's end of the setup channel (see [`Channel`]).
    pub channel: Channel,
    /// The parent's end of the setup channel ([`crate::spawn::spawn`] borrows it from its
    /// caller's slot). The child got a copy of it with its fd table and closes it first:
    /// otherwise it would never see the parent go away.
    pub parent_end: Option<BorrowedFd<'a>>,
    /// The checkpoints at which the child stops for the parent (a set of [`Checkpoint::bit`]s).
    pub checkpoints: u8,
    pub self_maps: Option<SelfMaps>,
    pub hostname: Option<&'a [u8]>,
    pub domainname: Option<&'a [u8]>,
    /// `/proc/sys` files and what to write to them.
    pub sysctls: Vec<(&'a std::ffi::CStr, &'a [u8])>,
    pub make_mounts_private: bool,
    pub mount_proc: bool,
    /// The filesystem operations that build a new root, when there are any.
    pub fs: Option<crate::fs::FsPlan<'a>>,
    /// Lock every mount against the program once they are in place ([`crate::child::mount_lock`]).
    pub lock_mounts: bool,
    pub loopback_up: bool,
    /// The network's `/etc` files, without a new root (`child::net::etc_files`).
    pub etc_files: Vec<crate::net::EtcFile<'a>>,
    /// The egress allowlist: one nftables netlink batch the child sends ([`crate::net`]).
    pub egress: Option<&'a [u8]>,
    pub unshare_time: bool,
    pub cwd: Option<&'a CStr>,
    /// The working directories to try in order ([`crate::Sandbox::current_dir_candidates`]); the
    /// first that `chdir` enters is recorded in `cwd_chosen`, and `execve` then takes the
    /// environment of the same index in `candidate_envps` (its `PWD` names that directory).
    pub cwd_candidates: Vec<&'a CStr>,
    /// One NULL-terminated environment per entry of `cwd_candidates`.
    pub candidate_envps: Vec<Vec<*const c_char>>,
    /// The index of the candidate the child entered.
    pub cwd_chosen: AtomicUsize,
    /// Existing namespaces to join, in the order the joining task enters them, as (fd,
    /// `CLONE_NEW*` type) ([`crate::child::join`]). With any, the task `clone` creates joins
    /// them and clones the sandbox's first task, which runs the order table, with
    /// `namespace_flags`.
    pub joins: Vec<(BorrowedFd<'a>, i32)>,
    /// A user namespace the sandbox enters at the end of its setup ([`crate::Sandbox::join_after_setup`]).
    pub join_after_setup: Option<BorrowedFd<'a>>,
    /// A join that must not run in a task sharing the caller's memory (a time namespace, a user
    /// namespace the caller's euid did not create): the spawn is forked.
    pub joins_need_own_memory: bool,
    /// The top of the stack the sandbox's first task runs on after the joins (0 without joins).
    pub sandbox_stack: usize,
    /// The sandbox's first task's pid in the caller's PID namespace, stored by the kernel when
    /// the joining task clones it (`CLONE_PARENT_SETTID`).
    pub successor: AtomicI32,
    /// The init is PID 1 of the sandbox's own PID namespace: when the program ends it kills
    /// what is left (without one it never signals anything but the program).
    pub init_is_pid1: bool,
    /// Files the init opens and holds a read lock on until it ends ([`crate::Sandbox::lock_file`]).
    pub lock_files: Vec<&'a CStr>,
    /// Fds the init keeps open until it ends, which the program does not get
    /// ([`crate::Sandbox::hold_fd`]).
    pub held_fds: Vec<BorrowedFd<'a>>,
    /// The fd to dup onto 0, 1 and 2, or None to inherit.
    pub stdio: [Option<BorrowedFd<'a>>; 3],
    /// Paths to try with `execve`, in order (one, or one per `PATH` entry).
    pub candidates: &'a [CString],
    /// NULL-terminated; the pointers borrow from the sandbox's strings.
    pub argv: Vec<*const c_char>,
    /// NULL-terminated; the pointers borrow from the sandbox's built environment.
    pub envp: Vec<*const c_char>,
    /// Stop after setup and `_exit(0)` instead of executing (for [`crate::Sandbox::check`]).
    pub probe_only: bool,
    /// Hardening applied just before `execve` ([`crate::harden`]).
    pub harden: crate::harden::HardenPlan<'a>,
    /// Session, terminal, parent death, init ([`crate::lifecycle`]).
    pub lifecycle: crate::lifecycle::LifecyclePlan<'a>,
    /// The cgroup leaves the child is created in or joins ([`crate::cgroup`]).
    pub cgroup: Option<crate::cgroup::CgroupPlan<'a>>,
    /// The child's failure record ([`crate::error::Failure`]), 0 while none.
    pub report: AtomicU64,
    /// Keeps the parent from killing the child while it has a helper task of its own that
    /// would outlive it ([`KillGate`]).
    pub kill_gate: KillGate,
    /// Set by [`crate::sys::clone`] before the child runs: the kernel has already reset the
    /// caller's signal handlers in it (`CLONE_CLEAR_SIGHAND`).
    pub sighand_cleared: AtomicBool,
    /// The start gate's fd number in the child once its fds are in place (-1: none).
    pub gate_fd: std::sync::atomic::AtomicI32,
}

/// Between the child and a parent that kills it while it is being set up (a timeout, an
/// abort): the child's mount lock has a helper task for a few microseconds, which would be left
/// to the caller's reaper (or a subreaper of the caller's) if the child were killed then, when
/// the sandbox has no PID namespace of its own to take the helper with it. Dekker-style, both
/// sides `SeqCst`: the child announces `busy` and then looks for `cancel`; the parent announces
/// `cancel` and then waits for `busy` to clear. One of them always sees the other.
#[derive(Default)]
pub(crate) struct KillGate {
    busy: AtomicBool,
    cancel: AtomicBool,
}

impl KillGate {
    /// Child side, before it creates a helper: false when the parent is about to kill it.
    pub fn enter(&self) -> bool {
        self.busy.store(true, Ordering::SeqCst);
        if self.cancel.load(Ordering::SeqCst) {
            self.busy.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Child side, once its helper is reaped.
    pub fn leave(&self) {
        self.busy.store(false, Ordering::SeqCst);
    }

    /// Parent side: from now on the child creates no helper, and none is left once this
    /// returns.
    pub fn close(&self) {
        self.cancel.store(true, Ordering::SeqCst);
        while self.busy.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }
}

/// Where the child's setup stops for the parent, on the handshake and forked paths, when the
/// parent has something to do there ([`crate::spawn`]'s hooks: nscell's own, then the caller's,
/// whose [`crate::SetupStage`] names one of these each). The order table in [`crate::child`]
/// places them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Checkpoint {
    /// The namespaces exist, before any step that needs the id maps: id maps the parent
    /// writes; next, a network helper that must attach before any further user-namespace
    /// step. (Cgroups need no checkpoint: the child joins its v1 leaves, and its cgroup2 leaf
    /// where `clone3` could not place it, through fds the parent opened.)
    NamespacesCreated = 1,
    /// The mounts are in place, before the mounts are locked and the program's root is final
    /// (OCI `createRuntime` and `createContainer` hooks).
    MountsReady = 2,
    /// The last step before the program's hardening and `execve` (OCI `start`).
    BeforeExec = 3,
}

/// The tag of a checkpoint message; a failure record's is 1.
const CHECKPOINT_TAG: u64 = 2 << 56;
/// The tag of the message in which the sandbox's first task, cloned by the task that joined
/// existing namespaces, gives its pid in the caller's PID namespace.
const SUCCESSOR_TAG: u64 = 3 << 56;

/// The message a gated sandbox sends when it is set up and waits at its start gate
/// ([`crate::Sandbox::start_gate`]): EOF without it means the setup ended short.
pub(crate) const GATE_REACHED: u64 = 4 << 56;

/// The message that names the sandbox's first task after a join (its pid as the caller sees it).
pub(crate) const fn successor_message(pid: i32) -> u64 {
    SUCCESSOR_TAG | pid as u32 as u64
}

/// The pid a [`successor_message`] names.
pub(crate) fn successor_of(word: u64) -> Option<i32> {
    (word >> 56 == SUCCESSOR_TAG >> 56).then_some(word as u32 as i32).filter(|&pid| pid > 0)
}

impl Checkpoint {
    /// Its bit in [`Plan::checkpoints`].
    pub const fn bit(self) -> u8 {
        1 << self as u8
    }

    /// The 8-byte message the child sends when it waits here.
    pub const fn encode(self) -> u64 {
        CHECKPOINT_TAG | self as u64
    }

    /// The checkpoint a message names.
    pub fn decode(word: u64) -> Option<Checkpoint> {
        const ALL: [Checkpoint; 3] =
            [Checkpoint::NamespacesCreated, Checkpoint::MountsReady, Checkpoint::BeforeExec];
        ALL.into_iter().find(|c| c.encode() == word)
    }
}

/// The child's end of the setup channel (a `SOCK_SEQPACKET` socket, CLOEXEC), or -1 on the
/// fast path. Its number can change during the setup (a passed fd may need it), so the child
/// keeps the current one here; the parent never reads it after `clone`.
///
/// A raw number, not a `BorrowedFd` like the plan's other fds: after `place_fds` the child's
/// channel is a duplicate the child made itself, which no owner of the parent's stands for, and
/// the parent closes its own copy of the child's end right after `clone`. What keeps it open
/// is the child's rule that every step that closes fds keeps this one (the `SAFETY` comment of
/// `Channel::borrow` in `src/child/channel.rs`).
pub(crate) struct Channel {
    fd: AtomicI32,
}

impl Channel {
    /// No channel (the fast path).
    pub const fn none() -> Channel {
        Channel { fd: AtomicI32::new(-1) }
    }

    /// The fd now, or -1.
    pub fn fd(&self) -> RawFd {
        self.fd.load(Ordering::Relaxed)
    }

    /// The channel is now `fd`.
    pub fn set(&self, fd: RawFd) {
        self.fd.store(fd, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_messages_round_trip_and_differ_from_failure_records() {
        for c in [Checkpoint::NamespacesCreated, Checkpoint::MountsReady, Checkpoint::BeforeExec] {
            assert_eq!(Checkpoint::decode(c.encode()), Some(c));
            assert_eq!(crate::error::Failure::decode(c.encode()), None);
        }
        let record = crate::error::Failure::new(crate::error::Step::Exec, rustix::io::Errno::NOENT);
        assert_eq!(Checkpoint::decode(record.encode()), None);
        assert_eq!(Checkpoint::decode(0), None);
    }

    #[test]
    fn successor_messages_round_trip_and_differ_from_the_others() {
        for pid in [1, 2, 4_194_304, i32::MAX] {
            let word = successor_message(pid);
            assert_eq!(successor_of(word), Some(pid));
            assert_eq!(Checkpoint::decode(word), None);
            assert_eq!(crate::error::Failure::decode(word), None);
        }
        assert_eq!(successor_of(Checkpoint::BeforeExec.encode()), None);
        assert_eq!(successor_of(successor_message(0)), None);
    }
}
