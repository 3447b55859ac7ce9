//! Mount and file attributes through an fd: `mount_setattr` and `fchmodat2`, with the `AT_*`
//! flags they take.
#![allow(unsafe_code)]

use super::raw::{check, nr, syscall4, syscall5};
use core::ffi::c_int;
use rustix::io::Errno;

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

pub const AT_EMPTY_PATH: u32 = 0x1000;
pub const AT_RECURSIVE: u32 = 0x8000;

/// `mount_setattr(dirfd, path, flags, {attr_set}, size)` (Linux 5.12+): sets the `MOUNT_ATTR_*`
/// bits in `attr_set` and clears none, so flags a user namespace may not clear (locked nosuid,
/// nodev, noexec, atime) stay as they are.
pub fn mount_setattr(
    dirfd: c_int,
    path: &core::ffi::CStr,
    flags: u32,
    attr_set: u64,
) -> Result<(), Errno> {
    let attr = MountAttr { attr_set, attr_clr: 0, propagation: 0, userns_fd: 0 };
    // SAFETY: a NUL-terminated path and a pointer to a mount_attr of the size passed.
    let ret = unsafe {
        syscall5(
            nr::MOUNT_SETATTR,
            dirfd as usize,
            path.as_ptr() as usize,
            flags as usize,
            &attr as *const MountAttr as usize,
            core::mem::size_of::<MountAttr>(),
        )
    };
    check(ret).map(|_| ())
}

/// `fchmodat2(dirfd, path, mode, flags)` (Linux 6.6+), which takes `AT_EMPTY_PATH`: changes the
/// mode of an `O_PATH` fd without reopening it.
pub fn fchmodat2(dirfd: c_int, path: &core::ffi::CStr, mode: u32, flags: u32) -> Result<(), Errno> {
    // SAFETY: a NUL-terminated path and integers.
    let ret = unsafe {
        syscall4(
            nr::FCHMODAT2,
            dirfd as usize,
            path.as_ptr() as usize,
            mode as usize,
            flags as usize,
        )
    };
    check(ret).map(|_| ())
}
