//! File descriptors: `close_range`, `dup3` and `fcntl(F_DUPFD_CLOEXEC)`, as the child places
//! the fds a sandbox is given and closes the rest, and `fcntl(F_SETLK)` for the init's locks.
#![allow(unsafe_code)]

use super::raw::{check, nr, syscall4};
use core::ffi::c_int;
use rustix::io::Errno;

/// `close_range(first, last, 0)`: closes every fd in the inclusive range.
pub fn close_range(first: u32, last: u32) -> Result<(), Errno> {
    // SAFETY: integers only.
    let ret = unsafe { syscall4(nr::CLOSE_RANGE, first as usize, last as usize, 0, 0) };
    check(ret).map(|_| ())
}

/// [`close(fd)`](https://man7.org/linux/man-pages/man2/close.2.html) of a number the caller
/// owns and no longer uses (raw: no `errno`).
pub fn close(fd: c_int) -> Result<(), Errno> {
    // SAFETY: integers only; the caller gives up `fd`.
    check(unsafe { syscall4(nr::CLOSE, fd as usize, 0, 0, 0) }).map(|_| ())
}

/// `dup3(old, new, 0)`: `new` becomes a copy of `old` without `O_CLOEXEC`.
pub fn dup3(old: c_int, new: c_int) -> Result<(), Errno> {
    // SAFETY: integers only.
    check(unsafe { syscall4(nr::DUP3, old as usize, new as usize, 0, 0) }).map(|_| ())
}

const F_DUPFD_CLOEXEC: usize = 1030;

/// `fcntl(fd, F_DUPFD_CLOEXEC, min)`: a CLOEXEC copy of `fd` at the lowest free number >= `min`.
pub fn dupfd_cloexec(fd: c_int, min: c_int) -> Result<c_int, Errno> {
    // SAFETY: integers only.
    check(unsafe { syscall4(nr::FCNTL, fd as usize, F_DUPFD_CLOEXEC, min as usize, 0) })
        .map(|n| n as c_int)
}

const F_SETLK: usize = 6;
const F_RDLCK: i16 = 0;
const SEEK_SET: i16 = 0;

/// `fcntl(fd, F_SETLK, {F_RDLCK, SEEK_SET, 0, 0})`: a shared POSIX record lock on the whole
/// file, held by this process until it closes an fd of the file or exits; `EAGAIN` (or
/// `EACCES`) when another process holds a write lock on it.
pub fn read_lock(fd: c_int) -> Result<(), Errno> {
    let lock = libc::flock { l_type: F_RDLCK, l_whence: SEEK_SET, l_start: 0, l_len: 0, l_pid: 0 };
    // SAFETY: F_SETLK reads one struct flock through the pointer, which outlives the call.
    let ret = unsafe {
        syscall4(nr::FCNTL, fd as usize, F_SETLK, &lock as *const libc::flock as usize, 0)
    };
    check(ret).map(|_| ())
}
