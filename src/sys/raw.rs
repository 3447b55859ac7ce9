//! The raw `syscall` instruction (`svc 0` on aarch64), the system call numbers of each
//! architecture, and [`check`], which turns the kernel's `-errno` into an [`Errno`].
//!
//! Nothing here touches `errno` or thread-local storage: it is what every other file of
//! [`crate::sys`] builds on for the calls made after `clone`.
#![allow(unsafe_code)]

use rustix::io::Errno;

/// System call numbers (`__NR_*`) on x86_64.
#[cfg(target_arch = "x86_64")]
pub(super) mod nr {
    pub const IOCTL: usize = 16;
    pub const EXECVE: usize = 59;
    pub const RT_SIGACTION: usize = 13;
    pub const RT_SIGPROCMASK: usize = 14;
    pub const EXIT_GROUP: usize = 231;
    pub const CLOSE_RANGE: usize = 436;
    pub const CLOSE: usize = 3;
    pub const PRCTL: usize = 157;
    pub const SECCOMP: usize = 317;
    pub const DUP3: usize = 292;
    pub const FCNTL: usize = 72;
    pub const LANDLOCK_CREATE_RULESET: usize = 444;
    pub const LANDLOCK_ADD_RULE: usize = 445;
    pub const LANDLOCK_RESTRICT_SELF: usize = 446;
    pub const MOUNT_SETATTR: usize = 442;
    pub const FCHMODAT2: usize = 452;
    pub const CLONE: usize = 56;
    pub const CLONE3: usize = 435;
    pub const WAIT4: usize = 61;
    pub const KILL: usize = 62;
    pub const PIDFD_SEND_SIGNAL: usize = 424;
    pub const RT_SIGTIMEDWAIT: usize = 128;
    pub const SIGNALFD4: usize = 289;
    pub const GETCWD: usize = 79;
    pub const KEYCTL: usize = 250;
    pub const BRK: usize = 12;
    pub const GETPGID: usize = 121;
    pub const GETSID: usize = 124;
    pub const SETNS: usize = 308;
}

/// System call numbers (`__NR_*`) on aarch64 (the generic table).
#[cfg(target_arch = "aarch64")]
pub(super) mod nr {
    pub const IOCTL: usize = 29;
    pub const EXECVE: usize = 221;
    pub const RT_SIGACTION: usize = 134;
    pub const RT_SIGPROCMASK: usize = 135;
    pub const EXIT_GROUP: usize = 94;
    pub const CLOSE_RANGE: usize = 436;
    pub const CLOSE: usize = 57;
    pub const PRCTL: usize = 167;
    pub const SECCOMP: usize = 277;
    pub const DUP3: usize = 24;
    pub const FCNTL: usize = 25;
    pub const LANDLOCK_CREATE_RULESET: usize = 444;
    pub const LANDLOCK_ADD_RULE: usize = 445;
    pub const LANDLOCK_RESTRICT_SELF: usize = 446;
    pub const MOUNT_SETATTR: usize = 442;
    pub const FCHMODAT2: usize = 452;
    pub const CLONE: usize = 220;
    pub const CLONE3: usize = 435;
    pub const WAIT4: usize = 260;
    pub const KILL: usize = 129;
    pub const PIDFD_SEND_SIGNAL: usize = 424;
    pub const RT_SIGTIMEDWAIT: usize = 137;
    pub const SIGNALFD4: usize = 74;
    pub const GETCWD: usize = 17;
    pub const KEYCTL: usize = 219;
    pub const BRK: usize = 214;
    pub const GETPGID: usize = 155;
    pub const GETSID: usize = 156;
    pub const SETNS: usize = 268;
}

/// A raw system call with up to four arguments.
///
/// # Safety
///
/// The caller must pass arguments that are valid for system call `nr` (pointers to memory of the
/// size and mutability the kernel expects).
#[inline(always)]
pub(super) unsafe fn syscall4(nr: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> isize {
    // SAFETY: the caller vouches for the arguments; a fifth argument of 0 is ignored by every
    // call that takes four or fewer.
    unsafe { syscall5(nr, a1, a2, a3, a4, 0) }
}

/// A raw system call with up to five arguments (pass 0 for unused ones: `prctl` checks that
/// they are zero).
///
/// # Safety
///
/// The caller must pass arguments that are valid for system call `nr` (pointers to memory of the
/// size and mutability the kernel expects).
#[inline(always)]
pub(super) unsafe fn syscall5(
    nr: usize,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
) -> isize {
    let ret: isize;
    // SAFETY: the `syscall` instruction takes the number in rax and the arguments in rdi, rsi,
    // rdx, r10 and r8, returns in rax, and clobbers rcx and r11 (declared); the caller vouches
    // for the arguments.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a1,
            in("rsi") a2,
            in("rdx") a3,
            in("r10") a4,
            in("r8") a5,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack)
        );
    }
    // SAFETY: `svc 0` takes the number in x8 and the arguments in x0..x4, returns in x0.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a1 as isize => ret,
            in("x1") a2,
            in("x2") a3,
            in("x3") a4,
            in("x4") a5,
            options(nostack)
        );
    }
    ret
}

/// The kernel's answer as a `Result`: -4095..=-1 is `-errno`, anything else the value.
pub(super) fn check(ret: isize) -> Result<usize, Errno> {
    if (-4095..0).contains(&ret) {
        Err(Errno::from_raw_os_error(-ret as i32))
    } else {
        Ok(ret as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_tells_errno_from_value() {
        assert_eq!(check(-1), Err(Errno::PERM));
        assert_eq!(check(-4095), Err(Errno::from_raw_os_error(4095)));
        assert_eq!(check(0), Ok(0));
        assert_eq!(check(42), Ok(42));
        // Below -4095 is a value (an address high in memory, say), not an error.
        assert_eq!(check(-4096), Ok((-4096isize) as usize));
    }

    #[test]
    fn raw_syscall_returns_the_kernels_answer() {
        let mut b = [0u8; 1];
        // SAFETY: getcwd with a 1-byte buffer writes at most one byte into it.
        let ret = unsafe { syscall4(nr::GETCWD, b.as_mut_ptr() as usize, 1, 0, 0) };
        assert_eq!(check(ret), Err(Errno::RANGE));
    }
}
