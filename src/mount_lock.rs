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
//! tries. So once every mount is in place, the child finishes with such a copy, without leaving
//! its own user namespace (which keeps its id maps, hostname and capabilities):
//!
//! 1. A helper task is cloned into a new user namespace and a new mount namespace: a locked copy
//!    of the sandbox's mounts, owned by the helper's (throwaway) user namespace. It shares the
//!    child's memory and fd table and only sleeps.
//! 2. The child joins that mount namespace (`setns` on the helper's pidfd: the child's user
//!    namespace is the parent of the helper's, so it holds every capability there), then
//!    `unshare(CLONE_NEWNS)`: a copy owned by the child's user namespace again, locked once more
//!    since the owners differ. The helper is killed and reaped; its namespaces go with it.
//! 3. `setns` put the child's root and working directory on the namespace's root: the root is
//!    checked to be the one the mounts built, and the working directory is put back.
//!
//! The program can still mount new filesystems on top of anything (which hides, never reveals),
//! and unmount what it mounts itself.
#![allow(unsafe_code)]

use crate::sys;
use core::ffi::{c_int, c_void};
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use std::mem::MaybeUninit;

/// `CLONE_FILES`, `CLONE_NEWNS`, `CLONE_NEWUSER` as the kernel numbers them.
const CLONE_FILES: c_int = 0x0000_0400;
const CLONE_NEWNS: c_int = 0x0002_0000;
const CLONE_NEWUSER: c_int = 0x1000_0000;
/// `__WALL`: wait for a child whatever its exit signal (the helper has none).
const WALL: u32 = 0x4000_0000;

/// The helper's stack, on the child's own: the helper only makes three system calls.
const HELPER_STACK: usize = 16 * 1024;
#[repr(C, align(16))]
struct HelperStack([u8; HELPER_STACK]);
/// The helper's pid in the sandbox's PID namespace: below the smallest default `pid_max`.
const HELPER_PID: libc::pid_t = 32767;

/// Locks every mount of the calling task's mount namespace (see the module docs). With
/// `restore_cwd`, the working directory is put back where it was; otherwise it is left on the
/// root. Runs in the child: raw system calls only, no allocation.
pub(crate) fn lock(restore_cwd: bool) -> Result<(), Errno> {
    let root = rustix::fs::stat(c"/")?;
    let cwd = if restore_cwd {
        Some(rustix::fs::open(
            c".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    } else {
        None
    };
    let mut cwd_path = [0u8; 4096];
    let cwd_len = if restore_cwd { sys::getcwd(&mut cwd_path).ok() } else { None };

    let mut stack = MaybeUninit::<HelperStack>::uninit();
    let base = stack.as_mut_ptr().cast::<c_void>();
    let me = rustix::process::getpid().as_raw_nonzero().get();
    // No exit signal: nothing is queued for the program to find after execve.
    let flags = sys::CLONE_VM | CLONE_FILES | CLONE_NEWUSER | CLONE_NEWNS;
    // As PID 1 of its own PID namespace, the child gives the helper a pid far from the next
    // one the kernel hands out, so the sandbox's processes still count 2, 3, ... (the cursor
    // moves only for pids the kernel picks itself).
    let tid = [HELPER_PID];
    let tid = (me == 1).then_some(&tid);
    let arg = me as usize as *mut c_void;
    // SAFETY: the helper runs `helper` on `stack`, which lives until it has been reaped below;
    // `helper` follows child.rs's rules and reads nothing through its argument.
    let cloned = unsafe { sys::clone3_pidfd(flags, base, HELPER_STACK, tid, helper, arg) };
    let (_, helper_fd) = match cloned {
        Ok(c) => c,
        // No clone3, or no such pid here (a lower pid_max): let the kernel pick one.
        Err(Errno::NOSYS | Errno::PERM | Errno::INVAL | Errno::EXIST) => {
            // One past the end of the buffer: 16-byte aligned, as its start and size are.
            let top = base as usize + HELPER_STACK;
            // SAFETY: as above.
            unsafe { sys::clone_on_stack_pidfd(flags, top, helper, arg) }?
        }
        Err(e) => return Err(e),
    };
    let copied = join_and_copy(&helper_fd);
    let _ = sys::pidfd_send_signal(helper_fd.as_raw_fd(), sys::SIGKILL);
    let options = rustix::process::WaitIdOptions::from_bits_retain(
        rustix::process::WaitIdOptions::EXITED.bits() | WALL,
    );
    let reap =
        || rustix::process::waitid(rustix::process::WaitId::PidFd(helper_fd.as_fd()), options);
    while let Err(Errno::INTR) = reap() {}
    copied?;

    // The namespace's root is the new root (or the host's): nothing else may come of setns.
    let now = rustix::fs::stat(c"/")?;
    if (now.st_dev, now.st_ino) != (root.st_dev, root.st_ino) {
        return Err(Errno::XDEV);
    }
    if let Some(cwd) = cwd {
        restore(&cwd, cwd_len.and_then(|n| cwd_path.get(..n)))?;
    }
    Ok(())
}

fn join_and_copy(helper: &OwnedFd) -> Result<(), Errno> {
    use rustix::thread::{ThreadNameSpaceType, UnshareFlags};
    rustix::thread::move_into_thread_name_spaces(helper.as_fd(), ThreadNameSpaceType::MOUNT)?;
    // SAFETY: a new mount namespace for this task only; no fd table is unshared.
    unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNS) }
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

/// The helper: holds its namespaces until the child has copied them, then is killed. It dies
/// with the child too, should the child be killed first.
extern "C" fn helper(parent: *mut c_void) -> c_int {
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    // The child ended before the line above: no signal will come.
    let ppid = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get());
    if ppid as usize != parent as usize {
        return 0;
    }
    loop {
        rustix::event::pause();
    }
}
