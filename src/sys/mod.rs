//! The only raw FFI in the crate: one file per family of system calls.
//!
//! Two kinds of code live here:
//!
//! - `clone` through the `libc` crate (rustix deliberately has no `clone`) ([`clone()`]); the
//!   stack it runs on is the spawner's ([`crate::spawn`]).
//! - a raw `syscall` instruction ([`raw`]) for the calls that rustix does not cover, or covers
//!   in a form the child cannot use, and that run after `clone`: `execve`, `exit_group`,
//!   `rt_sigaction`, `rt_sigprocmask`, `close_range` and `ioctl`, seccomp, Landlock, `keyctl`;
//!   and for the init ([`crate::child::init`]): `clone` onto a new stack,
//!   `rt_sigtimedwait`, `wait4` and `kill`.
//!
//! # Rules for code that runs after `clone`
//!
//! A `CLONE_VM` child shares the caller's memory, and with it the caller thread's TLS, where
//! `errno` lives. So the child makes system calls only through the raw instruction of [`raw`]
//! (or rustix, whose `linux_raw` backend is the same instruction; pass it `&CStr` paths, as it
//! allocates to NUL-terminate longer other ones): a libc wrapper, `libc::syscall` included,
//! that fails writes `errno` into a live thread of the caller, and libc's wrappers may take locks
//! the caller holds. The functions the child calls here take no lock, allocate nothing, format
//! nothing and cannot panic.
//!
//! Every function returns the kernel's answer unchanged: a non-negative value or `-errno` as an
//! [`Errno`](rustix::io::Errno). Two things are for the parent only: [`clone()`], whose
//! `libc::clone` fallback reads `errno` (the child never returns from it) and [`waitid_pidfd`]
//! (through `libc::syscall`).
//!
//! The families: [`raw`] (the instruction, the numbers, `check`), [`process`], [`signal`],
//! [`mod@clone`], [`fd`], [`mount`], [`seccomp`], [`landlock`], [`keyring`],
//! [`net`], [`ns`], [`terminal`]. Everything the rest of the crate uses is re-exported here, so callers
//! name it `crate::sys::NAME`.

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("nscell supports x86_64 and aarch64 Linux");

mod clone;
mod fd;
mod keyring;
mod landlock;
mod mount;
mod net;
mod ns;
mod process;
mod raw;
mod seccomp;
mod signal;
mod terminal;

pub use clone::{
    CLONE_PARENT, CLONE_PIDFD, CLONE_VFORK, CLONE_VM, Clone3, clone, clone_on_stack,
    clone_on_stack_settid, clone3, clone3_available,
};
pub use fd::{close, close_range, dup3, dupfd_cloexec, read_lock};
pub use keyring::{join_session_keyring, session_keyring_id};
pub use landlock::{landlock_abi, landlock_add_path_rule, landlock_restrict_self};
pub use mount::{AT_EMPTY_PATH, AT_RECURSIVE, fchmodat2, mount_setattr};
pub use net::set_interface_flags;
pub use ns::{ns_owner, ns_owner_uid, ns_parent, ns_type, setns};
pub use process::{
    WALL, WNOHANG, WUNTRACED, current_brk, execve, exit, getcwd, helper_setup, kill,
    pidfd_send_signal, prctl, wait4, waitid_pidfd,
};
pub use seccomp::{SockFilter, seccomp_set_filter};
pub use signal::{
    SIGCHLD, SIGKILL, SIGRTMAX, SIGSTOP, blocked_signals, default_ignored_sigchld,
    has_default_action, reset_ignored_defaults, reset_signal_handlers, set_signal_mask, signalfd,
    wait_signal, wait_signal_for,
};
pub use terminal::{session_and_group, terminal_session};
