//! Namespaces through nsfs fds: `setns` for the child, and the `NS_GET_*` ioctls the parent
//! uses to check an fd before `clone` (its type, the user namespace that owns it, a user
//! namespace's parent and owner). See
//! [ioctl_nsfs(2)](https://man7.org/linux/man-pages/man2/ioctl_nsfs.2.html).
#![allow(unsafe_code)]

use super::raw::{check, nr, syscall4};
use core::ffi::c_int;
use rustix::io::Errno;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `NS_GET_USERNS`: an fd of the user namespace that owns the namespace.
const NS_GET_USERNS: usize = 0xb701;
/// `NS_GET_PARENT`: an fd of a user (or PID) namespace's parent.
const NS_GET_PARENT: usize = 0xb702;
/// `NS_GET_NSTYPE`: the namespace's `CLONE_NEW*` type.
const NS_GET_NSTYPE: usize = 0xb703;
/// `NS_GET_OWNER_UID`: the uid (in the caller's user namespace) that created a user namespace.
const NS_GET_OWNER_UID: usize = 0xb704;

/// `setns(fd, nstype)`: moves the calling task into the namespace `fd` names, refused unless
/// it is of type `nstype` (a `CLONE_NEW*` flag). Runs in the child: raw system call only.
pub fn setns(fd: BorrowedFd<'_>, nstype: c_int) -> Result<(), Errno> {
    // SAFETY: integers only.
    let ret = unsafe { syscall4(nr::SETNS, fd.as_raw_fd() as usize, nstype as usize, 0, 0) };
    check(ret).map(|_| ())
}

/// `ioctl(fd, NS_GET_NSTYPE)`: the namespace's type (`CLONE_NEWNET`, ...); `ENOTTY` when `fd`
/// is no nsfs fd.
pub fn ns_type(fd: BorrowedFd<'_>) -> Result<c_int, Errno> {
    // SAFETY: this ioctl takes no argument.
    let ret = unsafe { syscall4(nr::IOCTL, fd.as_raw_fd() as usize, NS_GET_NSTYPE, 0, 0) };
    check(ret).map(|t| t as c_int)
}

/// An fd the kernel just opened for an `NS_GET_*` ioctl.
fn new_fd(fd: BorrowedFd<'_>, request: usize) -> Result<OwnedFd, Errno> {
    // SAFETY: these ioctls take no argument and return a new CLOEXEC fd.
    let ret = unsafe { syscall4(nr::IOCTL, fd.as_raw_fd() as usize, request, 0, 0) };
    // SAFETY: a new fd that nothing else owns.
    check(ret).map(|n| unsafe { OwnedFd::from_raw_fd(n as c_int) })
}

/// `ioctl(fd, NS_GET_USERNS)`: the user namespace that owns the namespace (`EPERM` when it
/// lies outside the caller's).
pub fn ns_owner(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    new_fd(fd, NS_GET_USERNS)
}

/// `ioctl(fd, NS_GET_PARENT)`: a user namespace's parent (`EPERM` when it lies outside the
/// caller's user namespace).
pub fn ns_parent(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    new_fd(fd, NS_GET_PARENT)
}

/// `ioctl(fd, NS_GET_OWNER_UID)`: the effective uid, as the caller sees it, of the task that
/// created the user namespace `fd`.
pub fn ns_owner_uid(fd: BorrowedFd<'_>) -> Result<u32, Errno> {
    let mut uid: u32 = 0;
    // SAFETY: the ioctl writes one uid_t through the pointer, which outlives the call.
    let ret = unsafe {
        syscall4(
            nr::IOCTL,
            fd.as_raw_fd() as usize,
            NS_GET_OWNER_UID,
            &mut uid as *mut u32 as usize,
            0,
        )
    };
    check(ret).map(|_| uid)
}
