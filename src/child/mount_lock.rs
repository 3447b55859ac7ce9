//! Locking the sandbox's mounts against the program.
//!
//! Root inside a user namespace may remount, unmount and mount over anything in a mount
//! namespace its user namespace owns. Left alone, the program could undo every flag nscell sets
//! (`mount -o remount,rw,bind /data` on a read-only bind, `remount,dev` on a `nodev` one) and
//! unmount the fresh `/proc` to see the host's processes again.
//!
//! The kernel locks mounts when it copies a mount namespace into one owned by a *different*
//! user namespace (`CL_UNPRIVILEGED` in `copy_mnt_ns`): read-only, `nodev`, `nosuid`, `noexec`
//! and the atime flags can then no longer be cleared (`MNT_LOCK_*`), and no mount can be
//! unmounted or moved off what it covers (`MNT_LOCKED`), whatever the capabilities of whoever
//! tries. So the child builds its mounts in a mount namespace that a throwaway user namespace
//! owns, and finishes with a copy of it that its own user namespace owns, without ever leaving
//! that user namespace (which keeps its id maps, hostname and capabilities):
//!
//! 1. [`enter`], right after the id maps: the child is cloned without `CLONE_NEWNS`. It clones a
//!    helper with `CLONE_VFORK` into a new user namespace and a new mount namespace (a copy of
//!    the caller's mounts). The helper opens its mount namespace (`/proc/thread-self/ns/mnt`)
//!    into the fd table it shares with the child, and exits. The child `setns()`es into that
//!    mount namespace: its user namespace is the parent of the helper's, so it holds every
//!    capability there, and it can mount as it always did.
//! 2. [`lock`], once every mount is in place: `unshare(CLONE_NEWNS)`, a copy owned by the
//!    child's user namespace, and so locked. The throwaway namespaces go with it.
//!
//! The program can still mount new filesystems on top of anything (which hides, never reveals),
//! and unmount what it mounts itself.
#![allow(unsafe_code)]

use crate::child::{Entry, trampoline};
use crate::sys;
use core::ffi::{c_int, c_void};
use rustix::fd::{AsFd, FromRawFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicI32, Ordering};

/// `CLONE_FILES`, `CLONE_NEWNS`, `CLONE_NEWUSER` as the kernel numbers them.
const CLONE_FILES: c_int = 0x0000_0400;
const CLONE_NEWNS: c_int = 0x0002_0000;
const CLONE_NEWUSER: c_int = 0x1000_0000;

/// The helper's stack, on the child's own: the helper makes three system calls.
const HELPER_STACK: usize = 16 * 1024;
#[repr(C, align(16))]
struct HelperStack([u8; HELPER_STACK]);
/// The helper's pid in the sandbox's PID namespace: below the smallest default `pid_max`.
const HELPER_PID: libc::pid_t = 32767;

/// Step 1 (see the module docs): moves the calling task into a new mount namespace, a copy of
/// its current one that a new, throwaway user namespace owns. The working directory stays where
/// it was (`setns` puts it on the namespace's root): relative bind sources and a relative
/// working directory name places beside the caller's, as they do without the lock. Runs in the
/// child: raw system calls only, no allocation.
pub(crate) fn enter(gate: &crate::plan::KillGate) -> Result<(), Errno> {
    let root = rustix::fs::stat(c"/")?;
    let mut cwd_path = [0u8; 4096];
    let cwd =
        rustix::fs::open(c".", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    let cwd_len = sys::getcwd(&mut cwd_path).ok();

    let ns = AtomicI32::new(-1);
    let mut stack = MaybeUninit::<HelperStack>::uninit();
    let base = stack.as_mut_ptr().cast::<c_void>();
    // No exit signal: nothing is queued for the program to find after execve. CLONE_VFORK: the
    // helper has opened its namespace (or failed to) and exited when clone returns.
    let flags = sys::CLONE_VM | sys::CLONE_VFORK | CLONE_FILES | CLONE_NEWUSER | CLONE_NEWNS;
    // As PID 1 of its own PID namespace, the child gives the helper a pid far from the next
    // one the kernel hands out, so the sandbox's processes still count 2, 3, ... (the cursor
    // moves only for pids the kernel picks itself).
    let tid = [HELPER_PID];
    let tid = (rustix::process::getpid().as_raw_nonzero().get() == 1).then_some(&tid);
    let arg = &ns as *const AtomicI32 as *mut c_void;
    // The parent is killing this task (a timeout): create no helper it would leave behind.
    if !gate.enter() {
        sys::exit(crate::child::SETUP_FAILED);
    }
    let reaped = clone_and_reap(flags, base, tid, arg);
    gate.leave();
    reaped?;
    let fd = ns.load(Ordering::Acquire);
    if fd < 0 {
        return Err(Errno::from_raw_os_error(fd.saturating_neg()));
    }
    // SAFETY: the helper opened this fd in the table we share, and nothing else owns it.
    let ns = unsafe { OwnedFd::from_raw_fd(fd) };
    rustix::thread::move_into_link_name_space(
        ns.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Mount),
    )?;

    // The namespace's root is the caller's root (a chrooted caller could not have created the
    // sandbox's user namespace): nothing else may come of setns.
    let now = rustix::fs::stat(c"/")?;
    if (now.st_dev, now.st_ino) != (root.st_dev, root.st_ino) {
        return Err(Errno::XDEV);
    }
    restore(&cwd, cwd_len.and_then(|n| cwd_path.get(..n)))
}

/// Clones the helper ([`Helper`] of `arg`, on the stack at `base`, with `tid` as its pid when
/// given) and reaps it.
fn clone_and_reap(
    flags: c_int,
    base: *mut c_void,
    tid: Option<&[libc::pid_t; 1]>,
    arg: *mut c_void,
) -> Result<(), Errno> {
    let helper = trampoline::<Helper>;
    // SAFETY: the helper runs `Helper` on the stack at `base` and stores through `arg` (an
    // AtomicI32), both of which the caller keeps alive until it has exited (CLONE_VFORK: before
    // clone returns); `Helper` follows the child's rules ([`crate::child`]).
    let cloned = unsafe { sys::clone3(flags, base, HELPER_STACK, tid, helper, arg) };
    let pid = match cloned {
        Ok(pid) => pid,
        // No clone3, or no such pid here (a lower pid_max): let the kernel pick one.
        Err(Errno::NOSYS | Errno::PERM | Errno::INVAL | Errno::EXIST) => {
            // One past the end of the buffer: 16-byte aligned, as its start and size are.
            let top = base.cast::<HelperStack>().wrapping_add(1) as usize;
            // SAFETY: as above.
            unsafe { sys::clone_on_stack(flags, top, helper, arg) }?
        }
        Err(e) => return Err(e),
    };
    while let Err(Errno::INTR) = sys::wait4(pid, sys::WALL) {}
    Ok(())
}

/// Step 2: the copy that locks every mount (see the module docs).
pub(crate) fn lock() -> Result<(), Errno> {
    // SAFETY: a new mount namespace for this task only; no fd table is unshared.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }
}

/// Back to the working directory `cwd` (an `O_PATH` fd from the old namespace): by its path in
/// the new namespace when that leads to the same directory, else through the fd itself (a
/// directory that no path reaches, say one removed since).
fn restore(cwd: &OwnedFd, path: Option<&[u8]>) -> Result<(), Errno> {
    if let Some(path) = path.and_then(|p| core::ffi::CStr::from_bytes_with_nul(p).ok()) {
        if path.to_bytes().first() == Some(&b'/') && rustix::process::chdir(path).is_ok() {
            let (here, want) = (rustix::fs::stat(c".")?, rustix::fs::fstat(cwd)?);
            if (here.st_dev, here.st_ino) == (want.st_dev, want.st_ino) {
                return Ok(());
            }
        }
    }
    rustix::process::fchdir(cwd)
}

/// The helper: opens its mount namespace into the shared fd table and stores the fd (or
/// `-errno`) in its argument, then exits.
struct Helper;

impl Entry for Helper {
    type Arg<'a> = AtomicI32;
    fn run(ns: &AtomicI32) -> c_int {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC;
        let value = match rustix::fs::open(c"/proc/thread-self/ns/mnt", flags, Mode::empty()) {
            Ok(fd) => rustix::fd::IntoRawFd::into_raw_fd(fd),
            Err(e) => e.raw_os_error().saturating_neg(),
        };
        ns.store(value, Ordering::Release);
        0
    }
}
