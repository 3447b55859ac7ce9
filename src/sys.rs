//! The only raw FFI in the crate.
//!
//! Two kinds of code live here:
//!
//! - `clone` through the `libc` crate (rustix deliberately has no `clone`), and the child stack it
//!   runs on, an anonymous mapping with a guard page.
//! - a raw `syscall` instruction for the few calls that rustix does not cover and that the child
//!   makes after `clone`: `execve`, `exit_group`, `rt_sigaction`, `rt_sigprocmask`, `close_range`,
//!   `socket` and `ioctl`; and for the init ([`crate::init`]): `clone` onto a new stack,
//!   `rt_sigtimedwait`, `wait4` and `kill`. They are raw (not `libc::syscall`) because a `CLONE_VM` child shares the
//!   caller thread's TLS: a libc wrapper that fails writes `errno` into a live thread of the caller.
//!
//! Every function returns the kernel's answer unchanged: a non-negative value or `-errno`.
#![allow(unsafe_code)]

use core::ffi::{c_char, c_int, c_void};
use rustix::io::Errno;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("nscell supports x86_64 and aarch64 Linux");

#[cfg(target_arch = "x86_64")]
mod nr {
    pub const IOCTL: usize = 16;
    pub const SOCKET: usize = 41;
    pub const EXECVE: usize = 59;
    pub const RT_SIGACTION: usize = 13;
    pub const RT_SIGPROCMASK: usize = 14;
    pub const EXIT_GROUP: usize = 231;
    pub const CLOSE_RANGE: usize = 436;
    pub const CAPGET: usize = 125;
    pub const CAPSET: usize = 126;
    pub const PRCTL: usize = 157;
    pub const SECCOMP: usize = 317;
    pub const DUP3: usize = 292;
    pub const FCNTL: usize = 72;
    pub const LANDLOCK_CREATE_RULESET: usize = 444;
    pub const LANDLOCK_RESTRICT_SELF: usize = 446;
    pub const MOUNT_SETATTR: usize = 442;
    pub const FCHMODAT2: usize = 452;
    pub const CLONE: usize = 56;
    pub const CLONE3: usize = 435;
    pub const WAIT4: usize = 61;
    pub const KILL: usize = 62;
    pub const RT_SIGTIMEDWAIT: usize = 128;
    pub const SIGNALFD4: usize = 289;
    pub const GETCWD: usize = 79;
    pub const KEYCTL: usize = 250;
    pub const BRK: usize = 12;
    pub const GETPGID: usize = 121;
    pub const GETSID: usize = 124;
}

#[cfg(target_arch = "aarch64")]
mod nr {
    pub const IOCTL: usize = 29;
    pub const SOCKET: usize = 198;
    pub const EXECVE: usize = 221;
    pub const RT_SIGACTION: usize = 134;
    pub const RT_SIGPROCMASK: usize = 135;
    pub const EXIT_GROUP: usize = 94;
    pub const CLOSE_RANGE: usize = 436;
    pub const CAPGET: usize = 90;
    pub const CAPSET: usize = 91;
    pub const PRCTL: usize = 167;
    pub const SECCOMP: usize = 277;
    pub const DUP3: usize = 24;
    pub const FCNTL: usize = 25;
    pub const LANDLOCK_CREATE_RULESET: usize = 444;
    pub const LANDLOCK_RESTRICT_SELF: usize = 446;
    pub const MOUNT_SETATTR: usize = 442;
    pub const FCHMODAT2: usize = 452;
    pub const CLONE: usize = 220;
    pub const CLONE3: usize = 435;
    pub const WAIT4: usize = 260;
    pub const KILL: usize = 129;
    pub const RT_SIGTIMEDWAIT: usize = 137;
    pub const SIGNALFD4: usize = 74;
    pub const GETCWD: usize = 17;
    pub const KEYCTL: usize = 219;
    pub const BRK: usize = 214;
    pub const GETPGID: usize = 155;
    pub const GETSID: usize = 156;
}

/// A raw system call with up to four arguments.
///
/// # Safety
///
/// The caller must pass arguments that are valid for system call `nr` (pointers to memory of the
/// size and mutability the kernel expects).
#[inline(always)]
unsafe fn syscall4(nr: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> isize {
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
unsafe fn syscall5(nr: usize, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize) -> isize {
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

fn check(ret: isize) -> Result<usize, Errno> {
    if (-4095..0).contains(&ret) {
        Err(Errno::from_raw_os_error(-ret as i32))
    } else {
        Ok(ret as usize)
    }
}

/// `execve(path, argv, envp)`; returns only on failure.
///
/// # Safety
///
/// `path` is a NUL-terminated string, `argv` and `envp` NULL-terminated arrays of them.
pub unsafe fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> Errno {
    // SAFETY: the caller vouches for the three pointers.
    let ret = unsafe { syscall4(nr::EXECVE, path as usize, argv as usize, envp as usize, 0) };
    match check(ret) {
        Err(e) => e,
        Ok(_) => Errno::INVAL,
    }
}

/// `exit_group(code)`: ends the child without running any of the caller's exit handlers.
pub fn exit(code: c_int) -> ! {
    loop {
        // SAFETY: exit_group takes an integer and does not return.
        unsafe {
            syscall4(nr::EXIT_GROUP, code as usize, 0, 0, 0);
        }
    }
}

/// The kernel's `struct sigaction` (not libc's): handler, flags, restorer, mask.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

const SIG_DFL: usize = 0;
const SIG_IGN: usize = 1;
/// The highest signal number on Linux (`_NSIG - 1`).
pub const SIGRTMAX: c_int = 64;
pub const SIGKILL: c_int = 9;
pub const SIGSTOP: c_int = 19;
pub const SIGPIPE: c_int = 13;

/// Puts `SIGPIPE` back to `SIG_DFL` (the Rust runtime ignores it; programs expect the default).
/// Enough after `clone3` with `CLONE_CLEAR_SIGHAND`, which has reset every handled signal but
/// keeps ignored ones ignored.
pub fn reset_sigpipe() -> Result<(), Errno> {
    let default = KernelSigaction { handler: SIG_DFL, flags: 0, restorer: 0, mask: 0 };
    // SAFETY: a valid kernel sigaction with SIG_DFL (no restorer needed) and no old action.
    let ret = unsafe {
        syscall4(nr::RT_SIGACTION, SIGPIPE as usize, &default as *const _ as usize, 0, 8)
    };
    check(ret).map(|_| ())
}

/// Puts every signal that has a handler back to `SIG_DFL`, and `SIGPIPE` too (the Rust runtime
/// ignores it; programs expect the default, as `std::process::Command` gives them).
///
/// Only the calling task's dispositions change: after `clone` without `CLONE_SIGHAND` the child
/// has its own copy of the table.
pub fn reset_signal_handlers() -> Result<(), Errno> {
    let default = KernelSigaction { handler: SIG_DFL, flags: 0, restorer: 0, mask: 0 };
    for sig in 1..=SIGRTMAX {
        if sig == SIGKILL || sig == SIGSTOP {
            continue;
        }
        let mut old = KernelSigaction { handler: 0, flags: 0, restorer: 0, mask: 0 };
        // SAFETY: a NULL new action and a valid out-pointer of the kernel's struct; size 8.
        let ret =
            unsafe { syscall4(nr::RT_SIGACTION, sig as usize, 0, &mut old as *mut _ as usize, 8) };
        check(ret)?;
        if old.handler != SIG_DFL && (old.handler != SIG_IGN || sig == SIGPIPE) {
            // SAFETY: a valid kernel sigaction with SIG_DFL; no restorer is needed for SIG_DFL.
            let ret = unsafe {
                syscall4(nr::RT_SIGACTION, sig as usize, &default as *const _ as usize, 0, 8)
            };
            check(ret)?;
        }
    }
    Ok(())
}

const SIG_SETMASK: usize = 2;

/// Replaces the calling thread's signal mask, returning the old one.
pub fn set_signal_mask(mask: u64) -> Result<u64, Errno> {
    let mut old: u64 = 0;
    // SAFETY: pointers to two 8-byte masks, size 8.
    let ret = unsafe {
        syscall4(
            nr::RT_SIGPROCMASK,
            SIG_SETMASK,
            &mask as *const u64 as usize,
            &mut old as *mut u64 as usize,
            8,
        )
    };
    check(ret).map(|_| old)
}

/// `close_range(first, last, 0)`: closes every fd in the inclusive range.
pub fn close_range(first: u32, last: u32) -> Result<(), Errno> {
    // SAFETY: integers only.
    let ret = unsafe { syscall4(nr::CLOSE_RANGE, first as usize, last as usize, 0, 0) };
    check(ret).map(|_| ())
}

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

const AF_INET: usize = 2;
const SOCK_DGRAM: usize = 2;
const SOCK_CLOEXEC: usize = 0o2000000;
const SIOCSIFFLAGS: usize = 0x8914;
const IFF_UP: u16 = 0x1;
/// The caller's session id and process group id, and the session of the terminal `tty`, as
/// seen from the caller's PID namespace: 0 when the session leader or group leader lives in an
/// ancestor namespace (rustix's wrappers assume a non-zero answer and must not be used here).
pub fn session_and_group() -> Result<(c_int, c_int), Errno> {
    // SAFETY: getsid(0) and getpgid(0) take no pointers.
    let sid = check(unsafe { syscall4(nr::GETSID, 0, 0, 0, 0) })?;
    // SAFETY: as above.
    let pgrp = check(unsafe { syscall4(nr::GETPGID, 0, 0, 0, 0) })?;
    Ok((sid as c_int, pgrp as c_int))
}

const TIOCGSID: usize = 0x5429;

/// `tcgetsid(tty)`: the session of the terminal, 0 if it is not visible from here; `ENOTTY`
/// unless `tty` is the caller's controlling terminal (or a pty master).
pub fn terminal_session(tty: std::os::fd::BorrowedFd<'_>) -> Result<c_int, Errno> {
    use std::os::fd::AsRawFd;
    let mut sid: c_int = 0;
    // SAFETY: TIOCGSID writes one pid_t to the pointer, which lives across the call.
    let ret = unsafe {
        syscall4(nr::IOCTL, tty.as_raw_fd() as usize, TIOCGSID, &mut sid as *mut c_int as usize, 0)
    };
    check(ret)?;
    Ok(sid)
}

const IFF_LOOPBACK: u16 = 0x8;

/// Brings the loopback interface `lo` of the current network namespace up, as `ip link set lo up`.
pub fn loopback_up() -> Result<(), Errno> {
    // SAFETY: integers only.
    let fd = check(unsafe { syscall4(nr::SOCKET, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0, 0) })?;
    // struct ifreq: 16 bytes of name, then a union whose first member here is short ifr_flags.
    let mut ifreq = [0u8; 40];
    ifreq[..2].copy_from_slice(b"lo");
    ifreq[16..18].copy_from_slice(&(IFF_UP | IFF_LOOPBACK).to_ne_bytes());
    // SAFETY: a valid fd and a pointer to a 40-byte struct ifreq.
    let ret = unsafe { syscall4(nr::IOCTL, fd, SIOCSIFFLAGS, ifreq.as_mut_ptr() as usize, 0) };
    let _ = close_range(fd as u32, fd as u32);
    check(ret).map(|_| ())
}

/// A child stack: an anonymous private mapping whose lowest page is a guard page.
#[derive(Debug)]
pub struct Stack {
    base: *mut c_void,
    len: usize,
}

/// How much stack the child side gets. Pages are only touched (and so only cost memory) where
/// the child actually uses them.
const STACK_SIZE: usize = 256 * 1024;
const GUARD: usize = 4096;

// SAFETY: a Stack is an anonymous mapping owned by exactly one value; it has no tie to the thread
// that mapped it, so it may be handed to another thread (through the spare pool).
unsafe impl Send for Stack {}

/// Stacks kept between spawns. Mapping a fresh stack and unmapping it after every spawn costs an
/// mmap, an mprotect and an munmap, and the munmap interrupts every other CPU that ran the caller
/// to flush its TLB: about 3% of a whole sandbox spawn here (BENCHMARKS.md).
static SPARE: std::sync::Mutex<Vec<Stack>> = std::sync::Mutex::new(Vec::new());
/// As many as threads are likely to spawn at the same moment; more are unmapped.
const MAX_SPARE: usize = 4;

impl Stack {
    /// A spare stack, or a new one.
    pub fn take() -> Result<Self, Errno> {
        let spare = SPARE.lock().ok().and_then(|mut spare| spare.pop());
        spare.map_or_else(Stack::new, Ok)
    }

    /// Keeps the stack for the next spawn. Only once no child runs on it any more: it has
    /// exec'd or exited.
    pub fn give_back(self) {
        if let Ok(mut spare) = SPARE.lock() {
            if spare.len() < MAX_SPARE {
                spare.push(self);
            }
        }
    }

    fn new() -> Result<Self, Errno> {
        use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};
        // SAFETY: a fresh anonymous mapping; nothing else refers to it.
        let base = unsafe {
            rustix::mm::mmap_anonymous(
                core::ptr::null_mut(),
                STACK_SIZE,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::STACK | MapFlags::NORESERVE,
            )?
        };
        let stack = Stack { base, len: STACK_SIZE };
        // SAFETY: the first page of our own mapping.
        unsafe { rustix::mm::mprotect(base, GUARD, MprotectFlags::empty())? };
        Ok(stack)
    }

    /// The initial stack pointer (the stack grows down), 16-byte aligned.
    pub fn top(&self) -> *mut c_void {
        // SAFETY: one past the end of our own mapping.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

// SAFETY: a shared Stack only hands out its address.
unsafe impl Sync for Stack {}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no longer used by any child (the callers guarantee the child
        // has exec'd or exited before the stack is dropped).
        unsafe {
            let _ = rustix::mm::munmap(self.base, self.len);
        }
    }
}

/// `CLONE_VM`, `CLONE_VFORK`, `CLONE_PIDFD` as the kernel numbers them.
pub const CLONE_VM: c_int = 0x0000_0100;
pub const CLONE_VFORK: c_int = 0x0000_4000;
pub const CLONE_PIDFD: c_int = 0x0000_1000;
/// `SIGCHLD`, the exit signal of every child nscell creates.
pub const SIGCHLD: c_int = 17;

/// `CLONE_CLEAR_SIGHAND` (Linux 5.5, `clone3` only): the child starts with every signal that
/// has a handler back at `SIG_DFL`; ignored signals stay ignored.
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;

/// `struct clone_args` as Linux 5.7 defines it (`CLONE_ARGS_SIZE_VER2`, with `set_tid` and
/// `cgroup`). Older kernels take it too while the fields they do not know are zero.
#[repr(C)]
#[derive(Default)]
pub struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Set once `clone3` was refused here and `clone` then worked: a kernel older than 5.5, or a
/// seccomp policy that refuses `clone3` (container runtimes' default profiles do).
static CLONE3_REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Creates the child: `entry(arg)` on `stack`, with `flags | SIGCHLD`, and returns its pid and
/// pidfd (`flags` must contain `CLONE_PIDFD`).
///
/// `clone3` with `CLONE_CLEAR_SIGHAND` is tried first: the kernel then resets the caller's signal
/// handlers in the child, which saves it ~60 `rt_sigaction` calls. Where `clone3` is refused,
/// `clone` is used instead. `cleared` says which happened, and is set before the child runs.
///
/// # Safety
///
/// `entry` runs in the new task on `stack` with `arg`; with `CLONE_VM` it shares the caller's
/// memory, so it must follow the rules of `child.rs` and `arg` must stay valid until the child has
/// exec'd or exited. With `CLONE_VFORK` that is when this call returns.
pub unsafe fn clone(
    entry: extern "C" fn(*mut c_void) -> c_int,
    stack: &Stack,
    flags: c_int,
    arg: *mut c_void,
    cleared: &std::sync::atomic::AtomicBool,
) -> Result<(i32, std::os::fd::OwnedFd), Errno> {
    use std::os::fd::FromRawFd;
    use std::sync::atomic::Ordering::Relaxed;
    let mut pidfd: c_int = -1;
    let tried_clone3 = !CLONE3_REFUSED.load(Relaxed);
    if tried_clone3 {
        cleared.store(true, Relaxed);
        let args = CloneArgs {
            flags: u64::from(flags as u32) | CLONE_CLEAR_SIGHAND,
            pidfd: &mut pidfd as *mut c_int as u64,
            child_tid: 0,
            parent_tid: 0,
            exit_signal: SIGCHLD as u64,
            stack: stack.base as u64,
            stack_size: stack.len as u64,
            ..CloneArgs::default()
        };
        // SAFETY: as for this function; the stack is ours and mapped, and the kernel writes the
        // pidfd through `args.pidfd` before returning.
        match unsafe { clone3_on_stack(&args, entry, arg) } {
            // SAFETY: CLONE_PIDFD gave us a new fd that nothing else owns.
            Ok(pid) => return Ok((pid, unsafe { std::os::fd::OwnedFd::from_raw_fd(pidfd) })),
            // No clone3 (ENOSYS), no CLONE_CLEAR_SIGHAND (EINVAL), or a policy refusing it
            // (EPERM or ENOSYS): try clone, which also tells a real error apart.
            Err(Errno::NOSYS | Errno::INVAL | Errno::PERM) => {}
            Err(e) => return Err(e),
        }
    }
    cleared.store(false, Relaxed);
    // SAFETY: the stack is ours and mapped; the caller vouches for entry and arg. With
    // CLONE_PIDFD the kernel stores the pidfd through the parent-tid pointer.
    let pid =
        unsafe { libc::clone(entry, stack.top(), flags | SIGCHLD, arg, &mut pidfd as *mut c_int) };
    if pid < 0 {
        Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::INVAL))
    } else {
        if tried_clone3 {
            CLONE3_REFUSED.store(true, Relaxed);
        }
        // SAFETY: CLONE_PIDFD gave us a new fd that nothing else owns.
        Ok((pid, unsafe { std::os::fd::OwnedFd::from_raw_fd(pidfd) }))
    }
}

/// `clone3(args)` as a raw system call, through [`spawn_trampoline`]: the new task starts on
/// `args`' stack. Returns the new task's pid.
///
/// # Safety
///
/// As [`clone_on_stack`], for the stack that `args` names (its top 16-byte aligned).
unsafe fn clone3_on_stack(
    args: &CloneArgs,
    entry: extern "C" fn(*mut c_void) -> c_int,
    arg: *mut c_void,
) -> Result<c_int, Errno> {
    let size = core::mem::size_of::<CloneArgs>();
    let sys_args = [args as *const CloneArgs as usize, size, 0, 0, 0];
    // SAFETY: clone3 takes the args struct and its size; the caller vouches for the rest.
    unsafe { spawn_trampoline(nr::CLONE3, sys_args, entry, arg) }
}

#[cfg(target_arch = "x86_64")]
const PIDFD_SEND_SIGNAL: usize = 424;
#[cfg(target_arch = "aarch64")]
const PIDFD_SEND_SIGNAL: usize = 424;

/// `pidfd_send_signal(pidfd, sig, NULL, 0)` for any signal number, real-time ones included
/// (rustix's typed `Signal` needs `unsafe` to name those).
pub fn pidfd_send_signal(pidfd: c_int, sig: c_int) -> Result<(), Errno> {
    // SAFETY: integers and a NULL siginfo.
    let ret = unsafe { syscall4(PIDFD_SEND_SIGNAL, pidfd as usize, sig as usize, 0, 0) };
    check(ret).map(|_| ())
}

/// `keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)`: this task gets a new, empty, anonymous session
/// keyring in place of the one it inherited; returns its serial number. See
/// [keyctl_join_session_keyring(3)](https://man7.org/linux/man-pages/man3/keyctl_join_session_keyring.3.html).
pub fn join_session_keyring() -> Result<usize, Errno> {
    const KEYCTL_JOIN_SESSION_KEYRING: usize = 1;
    // SAFETY: a NULL name asks for an anonymous keyring; no memory is passed.
    check(unsafe { syscall4(nr::KEYCTL, KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0) })
}

/// `keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)`: the serial number of this task's
/// session keyring, creating none.
pub fn session_keyring_id() -> Result<usize, Errno> {
    const KEYCTL_GET_KEYRING_ID: usize = 0;
    const KEY_SPEC_SESSION_KEYRING: isize = -3;
    // SAFETY: integers only.
    check(unsafe {
        syscall4(nr::KEYCTL, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING as usize, 0, 0)
    })
}

/// `prctl(option, a2, a3, 0, 0)`.
pub fn prctl(option: c_int, a2: usize, a3: usize) -> Result<usize, Errno> {
    // SAFETY: every prctl option used by nscell takes integers only.
    check(unsafe { syscall5(nr::PRCTL, option as usize, a2, a3, 0, 0) })
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

/// `struct __user_cap_data_struct`, two of them for `_LINUX_CAPABILITY_VERSION_3`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The calling thread's (effective, permitted, inheritable) capability sets (`capget`).
pub fn capget() -> Result<(u64, u64, u64), Errno> {
    let mut header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: a valid header and room for the two data structs version 3 writes.
    let ret = unsafe {
        syscall4(nr::CAPGET, &mut header as *mut _ as usize, data.as_mut_ptr() as usize, 0, 0)
    };
    check(ret)?;
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
        join(data[0].inheritable, data[1].inheritable),
    ))
}

/// Sets the calling thread's capability sets (`capset`); per task, no mm-wide effect.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<(), Errno> {
    let mut header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let split = |e: u64, p: u64, i: u64, shift: u32| CapData {
        effective: (e >> shift) as u32,
        permitted: (p >> shift) as u32,
        inheritable: (i >> shift) as u32,
    };
    let data =
        [split(effective, permitted, inheritable, 0), split(effective, permitted, inheritable, 32)];
    // SAFETY: a valid header and two data structs, as version 3 reads.
    let ret = unsafe {
        syscall4(nr::CAPSET, &mut header as *mut _ as usize, data.as_ptr() as usize, 0, 0)
    };
    check(ret).map(|_| ())
}

/// `struct sock_filter`: one classic BPF instruction.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

const SECCOMP_SET_MODE_FILTER: usize = 1;

/// `seccomp(SECCOMP_SET_MODE_FILTER, 0, prog)`: installs a filter on the calling thread only
/// (no `SECCOMP_FILTER_FLAG_TSYNC`). Needs no_new_privs or `CAP_SYS_ADMIN` in the namespace.
pub fn seccomp_set_filter(program: &[SockFilter]) -> Result<(), Errno> {
    if program.is_empty() || program.len() > 4096 {
        return Err(Errno::INVAL);
    }
    let prog = SockFprog { len: program.len() as u16, filter: program.as_ptr() };
    // SAFETY: prog points to `len` instructions that live until the call returns (the kernel
    // copies them).
    let ret =
        unsafe { syscall4(nr::SECCOMP, SECCOMP_SET_MODE_FILTER, 0, &prog as *const _ as usize, 0) };
    check(ret).map(|_| ())
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

/// `landlock_restrict_self(ruleset_fd, 0)`.
pub fn landlock_restrict_self(ruleset_fd: c_int) -> Result<(), Errno> {
    // SAFETY: integers only.
    check(unsafe { syscall4(nr::LANDLOCK_RESTRICT_SELF, ruleset_fd as usize, 0, 0, 0) }).map(|_| ())
}

/// `landlock_add_rule(ruleset_fd, LANDLOCK_RULE_PATH_BENEATH, &{allowed, parent_fd}, 0)`.
pub fn landlock_add_path_rule(
    ruleset_fd: c_int,
    parent_fd: c_int,
    allowed: u64,
) -> Result<(), Errno> {
    /// `struct landlock_path_beneath_attr` (packed in the kernel's UAPI).
    #[repr(C, packed)]
    struct PathBeneath {
        allowed_access: u64,
        parent_fd: i32,
    }
    const LANDLOCK_ADD_RULE: usize = 445;
    const LANDLOCK_RULE_PATH_BENEATH: usize = 1;
    let attr = PathBeneath { allowed_access: allowed, parent_fd };
    // SAFETY: a pointer to a live, correctly laid out attribute; flags 0.
    let ret = unsafe {
        syscall4(
            LANDLOCK_ADD_RULE,
            ruleset_fd as usize,
            LANDLOCK_RULE_PATH_BENEATH,
            &attr as *const PathBeneath as usize,
            0,
        )
    };
    check(ret).map(|_| ())
}

/// The kernel's Landlock ABI version (`landlock_create_ruleset(NULL, 0, VERSION)`), 0 when
/// the kernel has no Landlock or it is disabled.
pub fn landlock_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: usize = 1;
    // SAFETY: a NULL attribute with size 0 and the VERSION flag only queries the ABI.
    let ret =
        unsafe { syscall4(nr::LANDLOCK_CREATE_RULESET, 0, 0, LANDLOCK_CREATE_RULESET_VERSION, 0) };
    check(ret).map(|v| v as i32).unwrap_or(0)
}

// The init's calls (crate::init). Raw for the same reason as the rest: the init shares the
// caller's memory and thread-local storage.

/// `wait4` option: do not block.
pub const WNOHANG: c_int = 1;
/// `wait4` option `WUNTRACED`: report stopped children too.
pub const WUNTRACED: c_int = 2;
/// `wait4` option `__WALL`: children of any kind (clone children included).
pub const WALL: c_int = 0x4000_0000;

/// `rt_sigtimedwait(set, &info, NULL, 8)`: takes one pending signal of `set` (which must be
/// blocked) and returns its number and `si_code`, waiting until one comes.
pub fn wait_signal(set: u64) -> Result<(c_int, c_int), Errno> {
    // siginfo_t is 128 bytes: si_signo, si_errno, si_code, then the union.
    let mut info = [0i32; 32];
    // SAFETY: a pointer to an 8-byte set, room for a siginfo_t, no timeout, set size 8.
    let ret = unsafe {
        syscall4(nr::RT_SIGTIMEDWAIT, &set as *const u64 as usize, info.as_mut_ptr() as usize, 0, 8)
    };
    check(ret).map(|sig| (sig as c_int, info[2]))
}

/// `wait4(pid, &status, options, NULL)`: the pid reaped (0 with `WNOHANG` when none has
/// changed state) and its raw wait status.
pub fn wait4(pid: c_int, options: c_int) -> Result<(c_int, c_int), Errno> {
    let mut status: c_int = 0;
    // SAFETY: a pointer to an int for the status, a NULL rusage.
    let ret = unsafe {
        syscall4(nr::WAIT4, pid as usize, &mut status as *mut c_int as usize, options as usize, 0)
    };
    check(ret).map(|pid| (pid as c_int, status))
}

/// The current end of the data segment: the raw `brk(0)` system call, which returns it.
pub fn current_brk() -> Result<usize, Errno> {
    // SAFETY: brk(0) asks for an impossible end, so it changes nothing and returns the current.
    check(unsafe { syscall4(nr::BRK, 0, 0, 0, 0) })
}

/// `kill(pid, sig)`.
pub fn kill(pid: c_int, sig: c_int) -> Result<(), Errno> {
    // SAFETY: integers only.
    let ret = unsafe { syscall4(nr::KILL, pid as usize, sig as usize, 0, 0) };
    check(ret).map(|_| ())
}

/// `clone(flags, stack_top)` as a raw system call: the new task starts on the stack whose top is
/// `stack_top`, calls `entry(arg)` and exits the whole task (`exit_group`) with its return value.
/// Returns the new task's pid. Unlike libc's `clone`, nothing touches `errno`.
///
/// # Safety
///
/// `stack_top` is the 16-byte aligned top of a mapped stack that nothing else uses while the
/// new task runs on it; `entry` follows the rules of `child.rs` when `flags` has `CLONE_VM`,
/// and `arg` stays valid for as long as `entry` uses it.
pub unsafe fn clone_on_stack(
    flags: c_int,
    stack_top: usize,
    entry: extern "C" fn(*mut c_void) -> c_int,
    arg: *mut c_void,
) -> Result<c_int, Errno> {
    // SAFETY: clone(flags, stack, parent_tid, child_tid, tls) with no tid or tls pointers; the
    // caller vouches for the rest.
    unsafe { spawn_trampoline(nr::CLONE, [flags as usize, stack_top, 0, 0, 0], entry, arg) }
}

/// `clone3` with `flags` and no exit signal: the new task runs `entry(arg)` on the stack
/// `[base, base + size)` and, with `tid`, gets that pid in the caller's PID namespace
/// (`set_tid`, which needs `CAP_SYS_ADMIN` or `CAP_CHECKPOINT_RESTORE` over it). Returns its pid.
///
/// # Safety
///
/// As [`clone_on_stack`], for the stack `base`..`base + size` (both 16-byte aligned).
pub unsafe fn clone3(
    flags: c_int,
    base: *mut c_void,
    size: usize,
    tid: Option<&[libc::pid_t; 1]>,
    entry: extern "C" fn(*mut c_void) -> c_int,
    arg: *mut c_void,
) -> Result<c_int, Errno> {
    let args = CloneArgs {
        flags: u64::from(flags as u32),
        stack: base as u64,
        stack_size: size as u64,
        set_tid: tid.map_or(0, |t| t.as_ptr() as u64),
        set_tid_size: u64::from(tid.is_some()),
        ..CloneArgs::default()
    };
    // SAFETY: the caller vouches for the stack, entry and arg; `tid` outlives the call.
    unsafe { clone3_on_stack(&args, entry, arg) }
}

/// `getcwd(buf)` as the raw system call: the length of the path written into `buf` (with its
/// NUL). Unlike glibc's wrapper it shows a working directory outside the root as it is, a path
/// starting with `(unreachable)`, instead of failing with `ENOENT`.
pub fn getcwd(buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: a writable buffer and its length.
    let ret = unsafe { syscall4(nr::GETCWD, buf.as_mut_ptr() as usize, buf.len(), 0, 0) };
    check(ret)
}

/// Makes system call `number` (`clone` or `clone3`) with `args`. In the parent it returns what the
/// call returned; the new task (return value 0), already on its own stack, calls `entry(arg)`
/// and leaves through `exit_group` with its return value, never coming back into Rust code.
///
/// # Safety
///
/// `number` and `args` create a task on a 16-byte aligned stack that nothing else uses while it runs;
/// `entry` follows the rules of `child.rs` when the task shares the caller's memory, and `arg`
/// stays valid for as long as `entry` uses it.
unsafe fn spawn_trampoline(
    number: usize,
    args: [usize; 5],
    entry: extern "C" fn(*mut c_void) -> c_int,
    arg: *mut c_void,
) -> Result<c_int, Errno> {
    let ret: isize;
    // SAFETY: in the parent the syscall changes rax, rcx and r11 only. In the child (rax 0) the
    // code runs on the new stack, calls entry (rsp 16-byte aligned at the call) and never comes
    // back into Rust code of the parent's frame: it leaves through exit_group.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r9",
            "call r12",
            "mov edi, eax",
            "mov eax, {exit}",
            "syscall",
            "ud2",
            "2:",
            exit = const nr::EXIT_GROUP,
            inlateout("rax") number as isize => ret,
            in("rdi") args[0],
            in("rsi") args[1],
            in("rdx") args[2],
            in("r10") args[3],
            in("r8") args[4],
            in("r9") arg as usize,
            in("r12") entry as usize,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    // SAFETY: as above; `svc 0` changes x0 only in the parent; the child calls entry with x0 =
    // arg on the new stack and leaves through exit_group.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!(
            "svc 0",
            "cbnz x0, 2f",
            "mov x29, xzr",
            "mov x30, xzr",
            "mov x0, x10",
            "blr x11",
            "mov x8, #{exit}",
            "svc 0",
            "brk #0",
            "2:",
            exit = const nr::EXIT_GROUP,
            in("x8") number,
            inlateout("x0") args[0] as isize => ret,
            in("x1") args[1],
            in("x2") args[2],
            in("x3") args[3],
            in("x4") args[4],
            in("x10") arg as usize,
            in("x11") entry as usize,
        );
    }
    check(ret).map(|pid| pid as c_int)
}

/// `waitid(P_PIDFD, pidfd, &info, options, &rusage)` (rustix has no rusage argument), retried
/// on `EINTR`: the raw wait status (as `ExitStatus::from_raw` takes it) and the resource usage,
/// or `None` with `WNOHANG` while the process runs. Parent side only (it reads `errno`).
pub fn waitid_pidfd(
    pidfd: std::os::fd::BorrowedFd<'_>,
    options: rustix::process::WaitIdOptions,
) -> Result<Option<(c_int, libc::rusage)>, Errno> {
    use std::os::fd::AsRawFd;
    const P_PIDFD: libc::c_long = 3;
    loop {
        // SAFETY: zeroed siginfo_t and rusage are valid values of these plain C structs.
        let mut info: libc::siginfo_t = unsafe { core::mem::zeroed() };
        // SAFETY: as above.
        let mut usage: libc::rusage = unsafe { core::mem::zeroed() };
        // SAFETY: valid pointers to a siginfo_t and a rusage that outlive the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_waitid,
                P_PIDFD,
                pidfd.as_raw_fd() as libc::c_long,
                &mut info as *mut libc::siginfo_t,
                options.bits() as libc::c_long,
                &mut usage as *mut libc::rusage,
            )
        };
        if ret < 0 {
            let e = Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::INVAL);
            if e == Errno::INTR {
                continue;
            }
            return Err(e);
        }
        // SAFETY: the kernel filled in the SIGCHLD member (or left it zero: no child ready).
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        let raw = match info.si_code {
            libc::CLD_EXITED => (status & 0xff) << 8,
            libc::CLD_DUMPED => status | 0x80,
            _ => status,
        };
        return Ok(Some((raw, usage)));
    }
}

const SIG_BLOCK: usize = 0;

/// The calling thread's signal mask, unchanged.
pub fn blocked_signals() -> Result<u64, Errno> {
    let mut old: u64 = 0;
    // SAFETY: SIG_BLOCK with a NULL set changes nothing; a pointer to an 8-byte mask, size 8.
    let ret =
        unsafe { syscall4(nr::RT_SIGPROCMASK, SIG_BLOCK, 0, &mut old as *mut u64 as usize, 8) };
    check(ret).map(|_| old)
}

/// `signalfd4(-1, &mask, 8, SFD_CLOEXEC | SFD_NONBLOCK)`: an fd that reads the (blocked)
/// signals of `mask` pending for the calling thread or its process.
pub fn signalfd(mask: u64) -> Result<std::os::fd::OwnedFd, Errno> {
    use std::os::fd::FromRawFd;
    const SFD_NONBLOCK: usize = 0o4000;
    const SFD_CLOEXEC: usize = 0o2000000;
    // SAFETY: a pointer to an 8-byte mask, size 8, flags.
    let ret = unsafe {
        syscall4(
            nr::SIGNALFD4,
            usize::MAX, // -1: a new fd
            &mask as *const u64 as usize,
            8,
            SFD_NONBLOCK | SFD_CLOEXEC,
        )
    };
    // SAFETY: a new fd that nothing else owns.
    check(ret).map(|fd| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as c_int) })
}
