//! Everything the child needs, prepared before `clone`.
//!
//! The child only reads a `Plan`: every string is already a `CString`, every pointer array is
//! built and NULL-terminated, every map is rendered to bytes, and every fd is open. That is what
//! lets the child side run without allocating.

use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::os::raw::c_char;
use std::sync::atomic::{AtomicBool, AtomicU64};

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
    pub fs: Option<crate::mounts::FsPlan>,
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
    /// The child's failure record ([`crate::report::Failure`]), 0 while none.
    pub report: AtomicU64,
    /// Set by [`crate::sys::clone`] before the child runs: the kernel has already reset the
    /// caller's signal handlers in it (`CLONE_CLEAR_SIGHAND`).
    pub sighand_cleared: AtomicBool,
}
