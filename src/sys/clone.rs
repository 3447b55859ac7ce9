//! Creating tasks: `clone` (through libc, or `clone3` with `CLONE_CLEAR_SIGHAND` first) for the
//! sandbox's child, and raw `clone`/`clone3` through a trampoline that starts the new task on
//! its own stack for the init and the mount-lock helper.
#![allow(unsafe_code)]

use super::raw::{check, nr, syscall4};
use super::signal::SIGCHLD;
use core::ffi::{c_int, c_void};
use rustix::io::Errno;

/// `CLONE_VM`, `CLONE_VFORK`, `CLONE_PIDFD` as the kernel numbers them.
pub const CLONE_VM: c_int = 0x0000_0100;
pub const CLONE_VFORK: c_int = 0x0000_4000;
pub const CLONE_PIDFD: c_int = 0x0000_1000;
/// `CLONE_PARENT`: the new task is a child of the caller's parent, not of the caller.
pub const CLONE_PARENT: c_int = 0x0000_8000;
/// `CLONE_PARENT_SETTID`: the kernel stores the new task's pid (in the caller's PID namespace)
/// at `parent_tid` before the new task runs.
const CLONE_PARENT_SETTID: c_int = 0x0010_0000;

/// `CLONE_CLEAR_SIGHAND` (Linux 5.5, `clone3` only): the child starts with every signal that
/// has a handler back at `SIG_DFL`; ignored signals stay ignored.
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;

/// `CLONE_INTO_CGROUP` (Linux 5.7, `clone3` only): the child is created inside the cgroup2
/// directory whose fd is `clone_args.cgroup`.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` as Linux 5.7 defines it (`CLONE_ARGS_SIZE_VER2`, with `set_tid` and
/// `cgroup`). Older kernels take it too while the fields they do not know are zero.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
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

/// Whether this kernel has `clone3` and lets this process call it: asked with no arguments,
/// it refuses them (`EINVAL`) before it creates anything; `ENOSYS` where it is missing, and a
/// seccomp policy's answer (often `ENOSYS` or `EPERM`) where it is forbidden.
pub fn clone3_available() -> bool {
    // SAFETY: a NULL argument struct of size 0, which the kernel checks and refuses first.
    check(unsafe { syscall4(nr::CLONE3, 0, 0, 0, 0) }) == Err(Errno::INVAL)
}

/// What [`clone()`] passes `clone3` beyond the flags, when it tries it first.
#[derive(Clone, Copy, Debug)]
pub struct Clone3 {
    /// An open cgroup2 directory to create the child in (`CLONE_INTO_CGROUP`).
    pub cgroup: Option<c_int>,
}

/// Creates the child: `entry(arg)` on the stack `[stack_base, stack_base + stack_len)` (its top
/// 16-byte aligned, the lowest page a guard page), with `flags | SIGCHLD`, and returns its pid and
/// pidfd (`flags` must contain `CLONE_PIDFD`).
///
/// With `try_clone3`, `clone3` with `CLONE_CLEAR_SIGHAND` is tried first: the kernel then resets
/// the caller's signal handlers in the child, which saves it ~60 `rt_sigaction` calls. Where
/// `clone3` is refused, `clone` is used instead, and the third value is true (the caller may
/// stop trying it). `cleared` says which happened, and is set before the child runs.
///
/// # Safety
///
/// `entry` runs in the new task on `stack` with `arg`; with `CLONE_VM` it shares the caller's
/// memory, so it must follow the child's rules ([`crate::child`]) and `arg` must stay valid until the child has
/// exec'd or exited. With `CLONE_VFORK` that is when this call returns.
pub unsafe fn clone(
    entry: extern "C" fn(*mut c_void) -> c_int,
    stack_base: *mut c_void,
    stack_len: usize,
    flags: c_int,
    arg: *mut c_void,
    cleared: &std::sync::atomic::AtomicBool,
    try_clone3: Option<Clone3>,
) -> Result<(i32, std::os::fd::OwnedFd, bool), Errno> {
    use std::os::fd::FromRawFd;
    use std::sync::atomic::Ordering::Relaxed;
    let mut pidfd: c_int = -1;
    if let Some(Clone3 { cgroup }) = try_clone3 {
        cleared.store(true, Relaxed);
        let into = cgroup.map_or(0, |_| CLONE_INTO_CGROUP);
        let args = CloneArgs {
            flags: u64::from(flags as u32) | CLONE_CLEAR_SIGHAND | into,
            pidfd: &mut pidfd as *mut c_int as u64,
            child_tid: 0,
            parent_tid: 0,
            exit_signal: SIGCHLD as u64,
            stack: stack_base as u64,
            stack_size: stack_len as u64,
            cgroup: cgroup.map_or(0, |fd| fd as u64),
            ..CloneArgs::default()
        };
        // SAFETY: as for this function; the stack is ours and mapped, and the kernel writes the
        // pidfd through `args.pidfd` before returning.
        match unsafe { clone3_on_stack(&args, entry, arg) } {
            Ok(pid) => {
                // SAFETY: CLONE_PIDFD gave us a new fd that nothing else owns.
                return Ok((pid, unsafe { std::os::fd::OwnedFd::from_raw_fd(pidfd) }, false));
            }
            // No clone3 (ENOSYS), no CLONE_CLEAR_SIGHAND (EINVAL), or a policy refusing it
            // (EPERM or ENOSYS): try clone, which also tells a real error apart.
            Err(Errno::NOSYS | Errno::INVAL | Errno::PERM) => {}
            Err(e) => return Err(e),
        }
    }
    cleared.store(false, Relaxed);
    // SAFETY: the caller vouches for the stack (mapped, unused), entry and arg. With
    // CLONE_PIDFD the kernel stores the pidfd through the parent-tid pointer.
    let top = stack_base.wrapping_byte_add(stack_len);
    let pid = unsafe { libc::clone(entry, top, flags | SIGCHLD, arg, &mut pidfd as *mut c_int) };
    if pid < 0 {
        Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::INVAL))
    } else {
        // SAFETY: CLONE_PIDFD gave us a new fd that nothing else owns.
        Ok((pid, unsafe { std::os::fd::OwnedFd::from_raw_fd(pidfd) }, try_clone3.is_some()))
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

/// `clone(flags, stack_top)` as a raw system call: the new task starts on the stack whose top is
/// `stack_top`, calls `entry(arg)` and exits the whole task (`exit_group`) with its return value.
/// Returns the new task's pid. Unlike libc's `clone`, nothing touches `errno`.
///
/// # Safety
///
/// `stack_top` is the 16-byte aligned top of a mapped stack that nothing else uses while the
/// new task runs on it; `entry` follows the child's rules ([`crate::child`]) when `flags` has `CLONE_VM`,
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

/// [`clone_on_stack`] with `CLONE_PARENT_SETTID`: the kernel stores the new task's pid (as the
/// caller's PID namespace numbers it) in `tid` before either task runs on, so a new task that
/// shares the caller's memory can read its own outside pid there.
///
/// # Safety
///
/// As [`clone_on_stack`].
pub unsafe fn clone_on_stack_settid(
    flags: c_int,
    stack_top: usize,
    entry: extern "C" fn(*mut c_void) -> c_int,
    arg: *mut c_void,
    tid: &std::sync::atomic::AtomicI32,
) -> Result<c_int, Errno> {
    let tid = tid.as_ptr() as usize;
    let flags = (flags | CLONE_PARENT_SETTID) as usize;
    // SAFETY: clone(flags, stack, parent_tid, ...): the kernel writes an int through `tid`, which
    // the caller's reference keeps valid; the caller vouches for the rest.
    unsafe { spawn_trampoline(nr::CLONE, [flags, stack_top, tid, 0, 0], entry, arg) }
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

/// Makes system call `number` (`clone` or `clone3`) with `args`. In the parent it returns what the
/// call returned; the new task (return value 0), already on its own stack, calls `entry(arg)`
/// and leaves through `exit_group` with its return value, never coming back into Rust code.
///
/// # Safety
///
/// `number` and `args` create a task on a 16-byte aligned stack that nothing else uses while it runs;
/// `entry` follows the child's rules ([`crate::child`]) when the task shares the caller's memory, and `arg`
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
