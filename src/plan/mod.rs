//! Everything the child needs, prepared before `clone`.
//!
//! The child only reads a `Plan`: every string is already a `CString`, every pointer array is
//! built and NULL-terminated, every map is rendered to bytes, and every fd is open. That is what
//! lets the child side run without allocating.

use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::os::raw::c_char;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Map bytes the child writes itself (a single line mapping the caller's own id).
pub(crate) struct SelfMaps {
    pub uid_map: Vec<u8>,
    pub gid_map: Vec<u8>,
}

pub(crate) struct Plan<'a> {
    /// `CLONE_NEW*` flags for `clone` (never `CLONE_NEWTIME`).
    pub namespace_flags: i32,
    /// The read end of the "go" pipe on the handshake path, or -1. EOF without a byte means the
    /// parent gave up: the child exits.
    pub go_fd: RawFd,
    /// The parent's (write) end of the "go" pipe, or -1. The child got a copy of it with its fd
    /// table and closes it first: otherwise it would hold the pipe open and never see EOF.
    pub go_write_fd: RawFd,
    /// The write end of the exec pipe on the handshake path, or -1. It is CLOEXEC and survives
    /// `close_range`, so the parent sees EOF exactly when the child has exec'd or exited.
    pub exec_fd: RawFd,
    pub self_maps: Option<SelfMaps>,
    pub hostname: Option<&'a [u8]>,
    pub domainname: Option<&'a [u8]>,
    pub make_mounts_private: bool,
    pub mount_proc: bool,
    /// The filesystem operations that build a new root, when there are any.
    pub fs: Option<crate::fs::FsPlan>,
    /// Lock every mount against the program once they are in place ([`crate::mount_lock`]).
    pub lock_mounts: bool,
    pub loopback_up: bool,
    pub unshare_time: bool,
    pub cwd: Option<&'a CStr>,
    /// The fd to dup onto 0, 1 and 2, or -1 to inherit.
    pub stdio: [RawFd; 3],
    /// Paths to try with `execve`, in order (one, or one per `PATH` entry).
    pub candidates: Vec<CString>,
    /// NULL-terminated; the pointers borrow from the sandbox's strings.
    pub argv: Vec<*const c_char>,
    /// NULL-terminated; the pointers borrow from `_env`.
    pub envp: Vec<*const c_char>,
    pub _env: Vec<CString>,
    /// Stop after setup and `_exit(0)` instead of executing (for [`crate::Sandbox::check`]).
    pub probe_only: bool,
    /// Hardening applied just before `execve` ([`crate::harden`]).
    pub harden: crate::harden::HardenPlan,
    /// Session, terminal, parent death, init ([`crate::lifecycle`]).
    pub lifecycle: crate::lifecycle::LifecyclePlan,
    /// The child's failure record ([`crate::error::Failure`]), 0 while none.
    pub report: AtomicU64,
    /// Keeps the parent from killing the child while it has a helper task of its own that
    /// would outlive it ([`KillGate`]).
    pub kill_gate: KillGate,
    /// Set by [`crate::sys::clone`] before the child runs: the kernel has already reset the
    /// caller's signal handlers in it (`CLONE_CLEAR_SIGHAND`).
    pub sighand_cleared: AtomicBool,
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
