//! seccomp: the default policy, caller rules, and a small classic-BPF generator.
//!
//! The filter is compiled in the parent, once per [`Sandbox`](crate::Sandbox) (and again only
//! when its seccomp settings change), and installed by the child just before `execve` with the
//! raw `seccomp(SECCOMP_SET_MODE_FILTER)` system call, on the child's own task only. See
//! [seccomp(2)](https://man7.org/linux/man-pages/man2/seccomp.2.html).
//!
//! The generated program:
//!
//! 1. checks `seccomp_data.arch` is the native architecture, and kills the process otherwise
//!    (a 32-bit `int 0x80` call has other numbers and would go around every rule);
//! 2. on x86_64, fails every x32 system call (`nr >= 0x40000000`) with `EPERM`;
//! 3. runs the caller's rules, then the default policy's, in order: the first rule whose system
//!    call (and argument comparison, if any) matches decides (the rules are found through a
//!    binary search on the system call number, see `generate`);
//! 4. allows everything else.

use crate::sys::SockFilter;

/// What a rule does with a matching system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Let it through.
    Allow,
    /// Fail it with this errno, without running it (`SECCOMP_RET_ERRNO`).
    Errno(i32),
    /// Kill the whole process (`SECCOMP_RET_KILL_PROCESS`).
    KillProcess,
    /// Kill the calling thread (`SECCOMP_RET_KILL_THREAD`).
    KillThread,
    /// Send the thread `SIGSYS` (`SECCOMP_RET_TRAP`).
    Trap,
    /// Let it through and log it (`SECCOMP_RET_LOG`).
    Log,
}

/// A comparison of one system call argument (`index` 0 to 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgCmp {
    /// The 64-bit argument equals the value.
    Eq(u8, u64),
    /// The 64-bit argument differs from the value.
    Ne(u8, u64),
    /// `arg & mask == value` over 64 bits.
    MaskedEq(u8, u64, u64),
    /// The low 32 bits equal the value, whatever the high 32 bits are. Use this for arguments
    /// the kernel truncates to `int` or `unsigned int` (an `ioctl` request, CVE-2019-10063):
    /// comparing 64 bits would let a caller set high bits and slip past.
    Eq32(u8, u32),
}

/// A system call named or numbered, as a rule takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SyscallId {
    Name(String),
    Number(u32),
}

/// One caller rule: a system call, an optional argument comparison, an action.
///
/// ```
/// use nscell::seccomp::{ArgCmp, Rule};
/// let allow_ptrace = Rule::allow("ptrace");
/// let no_listen = Rule::deny("listen");
/// let no_dgram_sockets = Rule::deny("socket").when(ArgCmp::Eq(1, 2));
/// # let _ = (allow_ptrace, no_listen, no_dgram_sockets);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    syscall: SyscallId,
    action: Action,
    arg: Option<ArgCmp>,
}

impl Rule {
    /// A rule for the system call named `name` (as in `man 2`, e.g. `"ptrace"`).
    pub fn new(name: &str, action: Action) -> Rule {
        Rule { syscall: SyscallId::Name(name.to_string()), action, arg: None }
    }

    /// A rule for system call number `nr` of the native architecture.
    pub fn by_number(nr: u32, action: Action) -> Rule {
        Rule { syscall: SyscallId::Number(nr), action, arg: None }
    }

    /// Allows `name` (ahead of the default policy: `Rule::allow("ptrace")` lets a
    /// debugger run inside).
    pub fn allow(name: &str) -> Rule {
        Rule::new(name, Action::Allow)
    }

    /// Fails `name` with `EPERM`.
    pub fn deny(name: &str) -> Rule {
        Rule::new(name, Action::Errno(libc::EPERM))
    }

    /// Matches only when the argument comparison holds.
    pub fn when(mut self, cmp: ArgCmp) -> Rule {
        self.arg = Some(cmp);
        self
    }

    fn resolve(&self) -> Result<Resolved, String> {
        let nr = match &self.syscall {
            SyscallId::Number(n) => *n,
            SyscallId::Name(name) => syscall_number(name)
                .ok_or_else(|| format!("unknown system call {name:?} in a seccomp rule"))?,
        };
        if let Some(
            ArgCmp::Eq(i, _) | ArgCmp::Ne(i, _) | ArgCmp::MaskedEq(i, _, _) | ArgCmp::Eq32(i, _),
        ) = self.arg
        {
            if i > 5 {
                return Err(format!("seccomp rule argument index {i} is above 5"));
            }
        }
        Ok(Resolved { nr, action: self.action, arg: self.arg })
    }
}

/// A whole filter of the caller's: rules and the action for every system call none matches
/// (an OCI runtime's `linux.seccomp` profile), compiled to a program for
/// [`Sandbox::seccomp_program`](crate::Sandbox::seccomp_program).
///
/// ```
/// use nscell::seccomp::{Action, Filter, Rule};
/// let mut only_these = Filter::new(Action::Errno(libc::ENOSYS));
/// for name in ["read", "write", "exit_group", "execve"] {
///     only_these.rule(Rule::allow(name));
/// }
/// let program = only_these.compile().unwrap();
/// assert_eq!(program.len() % 8, 0);
/// ```
///
/// Another architecture's system calls (and x32's) get the same treatment as under nscell's
/// own filter: the process is killed (x32: `EPERM`).
#[derive(Debug, Clone)]
pub struct Filter {
    default: Action,
    rules: Vec<Rule>,
}

impl Filter {
    /// A filter whose unmatched system calls get `default`.
    pub fn new(default: Action) -> Filter {
        Filter { default, rules: Vec::new() }
    }

    /// Adds a rule; the first rule that matches a system call decides.
    pub fn rule(&mut self, rule: Rule) -> &mut Self {
        self.rules.push(rule);
        self
    }

    /// The program's bytes (`struct sock_filter`s in native byte order), or why the rules
    /// cannot compile (an unknown system call name, too many instructions).
    pub fn compile(&self) -> Result<Vec<u8>, String> {
        let rules = self.rules.iter().map(Rule::resolve).collect::<Result<Vec<_>, _>>()?;
        let program = generate(&rules, self.default);
        if program.len() > MAX_INSNS {
            return Err(format!(
                "the seccomp rules compile to {} instructions; the kernel takes at most {MAX_INSNS}",
                program.len()
            ));
        }
        Ok(program
            .iter()
            .flat_map(|f| {
                let mut b = [0u8; 8];
                b[..2].copy_from_slice(&f.code.to_ne_bytes());
                b[2] = f.jt;
                b[3] = f.jf;
                b[4..].copy_from_slice(&f.k.to_ne_bytes());
                b
            })
            .collect())
    }
}

/// A rule with its number resolved.
#[derive(Debug, Clone, Copy)]
struct Resolved {
    nr: u32,
    action: Action,
    arg: Option<ArgCmp>,
}

/// What the default policy covers, and the caller's additions.
#[derive(Debug, Clone)]
pub(crate) struct SeccompConfig {
    pub default_policy: bool,
    pub deny_io_uring: bool,
    pub rules: Vec<Rule>,
    /// Caller-compiled programs, stacked on top.
    pub programs: Vec<std::sync::Arc<[SockFilter]>>,
}

impl Default for SeccompConfig {
    fn default() -> Self {
        SeccompConfig {
            default_policy: true,
            deny_io_uring: false,
            rules: Vec::new(),
            programs: Vec::new(),
        }
    }
}

impl SeccompConfig {
    /// True when nscell's own filter is needed (default policy or caller rules).
    pub fn own_filter(&self) -> bool {
        self.default_policy || self.deny_io_uring || !self.rules.is_empty()
    }

    /// Compiles nscell's own filter.
    pub fn compile(&self) -> Result<Vec<SockFilter>, String> {
        let mut rules = Vec::new();
        for r in &self.rules {
            rules.push(r.resolve()?);
        }
        if self.default_policy {
            rules.extend(default_rules(self.deny_io_uring));
        } else if self.deny_io_uring {
            rules.extend(io_uring_rules());
        }
        let program = generate(&rules, Action::Allow);
        if program.len() > MAX_INSNS {
            return Err(format!(
                "the seccomp rules compile to {} instructions; the kernel takes at most {MAX_INSNS}",
                program.len()
            ));
        }
        Ok(program)
    }
}

const EPERM: i32 = libc::EPERM;
/// `BPF_MAXINSNS`: the longest program the kernel accepts.
const MAX_INSNS: usize = 4096;
const TIOCSTI: u32 = 0x5412;
const TIOCLINUX: u32 = 0x541C;
const PER_LINUX: u32 = 0;
const PER_LINUX32: u32 = 8;
const PER_QUERY: u32 = 0xffff_ffff;

/// The system calls the default policy fails with `EPERM`: kernel code loading, kernel
/// introspection and the interfaces kernel exploits reach for.
pub const DEFAULT_DENIED: &[&str] = &[
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "ptrace",
    // The same power as ptrace over another process of the same uid: read or write its memory.
    "process_vm_readv",
    "process_vm_writev",
];

/// `io_uring_*`, denied on request ([`Sandbox::deny_io_uring`](crate::Sandbox::deny_io_uring)).
pub const IO_URING: &[&str] = &["io_uring_setup", "io_uring_enter", "io_uring_register"];

/// Fails system call `nr` with `EPERM`.
fn deny(nr: u32) -> Resolved {
    Resolved { nr, action: Action::Errno(EPERM), arg: None }
}

/// `EPERM` for each of `names`.
fn denied(names: &[&str]) -> impl Iterator<Item = Resolved> {
    names.iter().filter_map(|n| syscall_number(n)).map(deny)
}

fn io_uring_rules() -> impl Iterator<Item = Resolved> {
    denied(IO_URING)
}

fn default_rules(deny_io_uring: bool) -> Vec<Resolved> {
    let mut out: Vec<Resolved> = denied(DEFAULT_DENIED).collect();
    if deny_io_uring {
        out.extend(io_uring_rules());
    }
    let personality = libc::SYS_personality as u32;
    for p in [PER_LINUX, PER_LINUX32, PER_QUERY] {
        out.push(Resolved {
            nr: personality,
            action: Action::Allow,
            arg: Some(ArgCmp::Eq32(0, p)),
        });
    }
    out.push(deny(personality));
    let ioctl = libc::SYS_ioctl as u32;
    for req in [TIOCSTI, TIOCLINUX] {
        out.push(Resolved {
            nr: ioctl,
            action: Action::Errno(EPERM),
            arg: Some(ArgCmp::Eq32(1, req)),
        });
    }
    out
}

// Classic BPF, as <linux/filter.h> and <linux/bpf_common.h> number it.
/// `BPF_LD | BPF_W | BPF_ABS` (0x00 | 0x00 | 0x20).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
/// `BPF_JMP | BPF_JA`: jump `k` instructions ahead, unconditionally.
const BPF_JMP_JA: u16 = 0x05;
const BPF_ALU_AND_K: u16 = 0x04 | 0x50;
const BPF_RET_K: u16 = 0x06;

const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_NATIVE: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_NATIVE: u32 = 0xC000_00B7;
/// x32 system calls are the x86_64 numbers with this bit set.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// Offsets in `struct seccomp_data` (little-endian: an argument's low word comes first).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
fn off_arg_lo(i: u8) -> u32 {
    16 + 8 * u32::from(i)
}
fn off_arg_hi(i: u8) -> u32 {
    off_arg_lo(i) + 4
}

fn stmt(code: u16, k: u32) -> SockFilter {
    SockFilter { code, jt: 0, jf: 0, k }
}
fn jump(code: u16, k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter { code, jt, jf, k }
}

fn ret(action: Action) -> SockFilter {
    stmt(
        BPF_RET_K,
        match action {
            Action::Allow => SECCOMP_RET_ALLOW,
            Action::Errno(e) => SECCOMP_RET_ERRNO | (e as u32 & 0xffff),
            Action::KillProcess => SECCOMP_RET_KILL_PROCESS,
            Action::KillThread => 0,
            Action::Trap => 0x0003_0000,
            Action::Log => 0x7ffc_0000,
        },
    )
}

/// A jump target inside one rule's code, fixed up once the rule's code is complete.
#[derive(Clone, Copy)]
enum To {
    Next,
    /// The rule's `ret`.
    Match,
    /// The end of the rule's code: the next rule for the same system call.
    Fail,
}

/// How many system calls a leaf of the dispatch tree tests one after the other.
const LEAF: usize = 4;

/// Generates the whole program for `rules` (see the module docs for its shape).
///
/// Rules are dispatched on the system call number through a binary search tree, not a chain of
/// comparisons: when a filter is installed, the kernel runs it for every system call number of
/// every architecture to find those it always allows (its action cache), and with a chain that
/// costs the length of the chain for each of them. For the default policy, installing a chain
/// took ~170 µs here and the tree takes ~75 µs (any filter at all: ~30 µs); a system call that
/// goes through the filter at run time makes ~log2(n) comparisons instead of n as well.
fn generate(rules: &[Resolved], default: Action) -> Vec<SockFilter> {
    let mut p = vec![
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        jump(BPF_JMP_JEQ_K, AUDIT_ARCH_NATIVE, 1, 0),
        ret(Action::KillProcess),
        stmt(BPF_LD_W_ABS, OFF_NR),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        p.push(jump(BPF_JMP_JGE_K, X32_SYSCALL_BIT, 0, 1));
        p.push(ret(Action::Errno(EPERM)));
    }
    // Rules for different system calls never both match, so grouping them by number, in their
    // order within a number, keeps "the first rule that matches decides". A rule without an
    // argument comparison always matches: those after it for the same number never run.
    let mut by_nr: std::collections::BTreeMap<u32, Vec<Resolved>> = Default::default();
    for r in rules {
        let group = by_nr.entry(r.nr).or_default();
        if group.last().is_none_or(|last| last.arg.is_some()) {
            group.push(*r);
        }
    }
    let groups: Vec<(u32, Vec<Resolved>)> = by_nr.into_iter().collect();
    p.extend(dispatch(&groups, default));
    p
}

/// A search tree over `groups` (sorted by number), with the number in the accumulator. Every
/// path through it ends in a `ret`.
fn dispatch(groups: &[(u32, Vec<Resolved>)], default: Action) -> Vec<SockFilter> {
    if groups.len() <= LEAF {
        return match groups.split_first() {
            None => vec![ret(default)],
            Some(((nr, rules), rest)) => branch(
                BPF_JMP_JEQ_K,
                *nr,
                rules_for_one_call(rules, default),
                dispatch(rest, default),
            ),
        };
    }
    let mid = groups.len() / 2;
    branch(
        BPF_JMP_JGE_K,
        groups[mid].0,
        dispatch(&groups[mid..], default),
        dispatch(&groups[..mid], default),
    )
}

/// `if A <op> k { if_true } else { if_false }`, both ending in a `ret`. A conditional jump
/// reaches at most 255 instructions ahead; further, it goes through an unconditional jump.
fn branch(
    code: u16,
    k: u32,
    if_true: Vec<SockFilter>,
    if_false: Vec<SockFilter>,
) -> Vec<SockFilter> {
    let mut out = Vec::with_capacity(if_true.len() + if_false.len() + 2);
    match u8::try_from(if_false.len()) {
        Ok(skip) => out.push(jump(code, k, skip, 0)),
        Err(_) => {
            out.push(jump(code, k, 0, 1));
            out.push(stmt(BPF_JMP_JA, if_false.len() as u32));
        }
    }
    out.extend(if_false);
    out.extend(if_true);
    out
}

/// The rules for one system call, in order, then `ret ALLOW` when none matched (and one can
/// fail to match).
fn rules_for_one_call(rules: &[Resolved], default: Action) -> Vec<SockFilter> {
    let mut p = Vec::new();
    for r in rules {
        // Each rule: [argument checks]; ret action. Conditional jumps are relative and at most
        // 255 forward; a rule is at most a dozen instructions.
        let mut block: Vec<(u16, u32, To, To)> = Vec::new();
        if let Some(cmp) = r.arg {
            match cmp {
                ArgCmp::Eq32(i, v) => {
                    block.push((BPF_LD_W_ABS, off_arg_lo(i), To::Next, To::Next));
                    block.push((BPF_JMP_JEQ_K, v, To::Next, To::Fail));
                }
                ArgCmp::Eq(i, v) | ArgCmp::MaskedEq(i, v, _) | ArgCmp::Ne(i, v) => {
                    let (mask, ne) = match cmp {
                        ArgCmp::MaskedEq(_, _, m) => (Some(m), false),
                        ArgCmp::Ne(..) => (None, true),
                        _ => (None, false),
                    };
                    let v = v & mask.unwrap_or(u64::MAX);
                    for (off, shift) in [(off_arg_lo(i), 0), (off_arg_hi(i), 32)] {
                        block.push((BPF_LD_W_ABS, off, To::Next, To::Next));
                        if let Some(m) = mask {
                            block.push((BPF_ALU_AND_K, (m >> shift) as u32, To::Next, To::Next));
                        }
                        let word = (v >> shift) as u32;
                        if ne {
                            // Any differing word matches; both equal falls through to the next rule.
                            let last = shift == 32;
                            block.push((
                                BPF_JMP_JEQ_K,
                                word,
                                if last { To::Fail } else { To::Next },
                                To::Match,
                            ));
                        } else {
                            block.push((BPF_JMP_JEQ_K, word, To::Next, To::Fail));
                        }
                    }
                }
            }
        }
        let ret_at = block.len();
        let end = ret_at + 1;
        for (i, &(code, k, jt, jf)) in block.iter().enumerate() {
            let rel = |to: To| -> u8 {
                let target = match to {
                    To::Next => i + 1,
                    To::Match => ret_at,
                    To::Fail => end,
                };
                (target - i - 1) as u8
            };
            if code == BPF_JMP_JEQ_K || code == BPF_JMP_JGE_K {
                p.push(jump(code, k, rel(jt), rel(jf)));
            } else {
                p.push(stmt(code, k));
            }
        }
        p.push(ret(r.action));
    }
    // Unless the last rule always matches, nothing did: the default.
    if rules.last().is_none_or(|r| r.arg.is_some()) {
        p.push(ret(default));
    }
    p
}

/// Reads a compiled program in bubblewrap's `--seccomp FD` format: the raw bytes of an array of
/// `struct sock_filter` (8 bytes each, native byte order), at most 4096 instructions.
pub(crate) fn parse_program(bytes: &[u8]) -> Result<Vec<SockFilter>, String> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(8) {
        return Err(format!(
            "a seccomp program is an array of 8-byte struct sock_filter; got {} bytes",
            bytes.len()
        ));
    }
    if bytes.len() / 8 > MAX_INSNS {
        return Err(format!(
            "a seccomp program has at most {MAX_INSNS} instructions; got {}",
            bytes.len() / 8
        ));
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|c| SockFilter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

/// The native number of the system call `name` (as in `man 2`), for the calls this crate knows
/// by name (every call of the x86_64 and aarch64 tables in common use).
pub fn syscall_number(name: &str) -> Option<u32> {
    COMMON.iter().chain(ARCH_ONLY).find(|(n, _)| *n == name).map(|&(_, nr)| nr as u32)
}

macro_rules! syscalls {
    ($($sys:ident),* $(,)?) => {
        &[$((stringify!($sys).split_at(4).1, libc::$sys)),*]
    };
}

#[cfg(target_arch = "x86_64")]
const ARCH_ONLY: &[(&str, libc::c_long)] = syscalls!(
    SYS_open,
    SYS_stat,
    SYS_lstat,
    SYS_poll,
    SYS_access,
    SYS_pipe,
    SYS_select,
    SYS_dup2,
    SYS_pause,
    SYS_alarm,
    SYS_fork,
    SYS_vfork,
    SYS_rename,
    SYS_mkdir,
    SYS_rmdir,
    SYS_creat,
    SYS_link,
    SYS_unlink,
    SYS_symlink,
    SYS_readlink,
    SYS_chmod,
    SYS_chown,
    SYS_lchown,
    SYS_getpgrp,
    SYS_utime,
    SYS_mknod,
    SYS_uselib,
    SYS_ustat,
    SYS_sysfs,
    SYS_modify_ldt,
    SYS_arch_prctl,
    SYS_iopl,
    SYS_ioperm,
    SYS_getdents,
    SYS_epoll_create,
    SYS_epoll_wait,
    SYS_time,
    SYS_futimesat,
    SYS_utimes,
    SYS_inotify_init,
    SYS_signalfd,
    SYS_eventfd,
    SYS_renameat,
    SYS_get_thread_area,
    SYS_set_thread_area,
    SYS_epoll_ctl_old,
    SYS_epoll_wait_old,
    SYS_getrlimit,
    SYS_setrlimit,
    SYS_sync_file_range,
);
#[cfg(target_arch = "aarch64")]
const ARCH_ONLY: &[(&str, libc::c_long)] = &[];

const COMMON: &[(&str, libc::c_long)] = syscalls!(
    SYS_io_setup,
    SYS_io_destroy,
    SYS_io_submit,
    SYS_io_cancel,
    SYS_io_getevents,
    SYS_setxattr,
    SYS_lsetxattr,
    SYS_fsetxattr,
    SYS_getxattr,
    SYS_lgetxattr,
    SYS_fgetxattr,
    SYS_listxattr,
    SYS_llistxattr,
    SYS_flistxattr,
    SYS_removexattr,
    SYS_lremovexattr,
    SYS_fremovexattr,
    SYS_getcwd,
    SYS_lookup_dcookie,
    SYS_eventfd2,
    SYS_epoll_create1,
    SYS_epoll_ctl,
    SYS_epoll_pwait,
    SYS_dup,
    SYS_dup3,
    SYS_fcntl,
    SYS_inotify_init1,
    SYS_inotify_add_watch,
    SYS_inotify_rm_watch,
    SYS_ioctl,
    SYS_ioprio_set,
    SYS_ioprio_get,
    SYS_flock,
    SYS_mknodat,
    SYS_mkdirat,
    SYS_unlinkat,
    SYS_symlinkat,
    SYS_linkat,
    SYS_umount2,
    SYS_mount,
    SYS_pivot_root,
    SYS_nfsservctl,
    SYS_statfs,
    SYS_fstatfs,
    SYS_truncate,
    SYS_ftruncate,
    SYS_fallocate,
    SYS_faccessat,
    SYS_chdir,
    SYS_fchdir,
    SYS_chroot,
    SYS_fchmod,
    SYS_fchmodat,
    SYS_fchownat,
    SYS_fchown,
    SYS_openat,
    SYS_close,
    SYS_vhangup,
    SYS_pipe2,
    SYS_quotactl,
    SYS_getdents64,
    SYS_lseek,
    SYS_read,
    SYS_write,
    SYS_readv,
    SYS_writev,
    SYS_pread64,
    SYS_pwrite64,
    SYS_preadv,
    SYS_pwritev,
    SYS_sendfile,
    SYS_pselect6,
    SYS_ppoll,
    SYS_signalfd4,
    SYS_vmsplice,
    SYS_splice,
    SYS_tee,
    SYS_readlinkat,
    SYS_newfstatat,
    SYS_fstat,
    SYS_sync,
    SYS_fsync,
    SYS_fdatasync,
    SYS_timerfd_create,
    SYS_timerfd_settime,
    SYS_timerfd_gettime,
    SYS_utimensat,
    SYS_acct,
    SYS_capget,
    SYS_capset,
    SYS_personality,
    SYS_exit,
    SYS_exit_group,
    SYS_waitid,
    SYS_set_tid_address,
    SYS_unshare,
    SYS_futex,
    SYS_set_robust_list,
    SYS_get_robust_list,
    SYS_nanosleep,
    SYS_getitimer,
    SYS_setitimer,
    SYS_kexec_load,
    SYS_init_module,
    SYS_delete_module,
    SYS_timer_create,
    SYS_timer_gettime,
    SYS_timer_getoverrun,
    SYS_timer_settime,
    SYS_timer_delete,
    SYS_clock_settime,
    SYS_clock_gettime,
    SYS_clock_getres,
    SYS_clock_nanosleep,
    SYS_syslog,
    SYS_ptrace,
    SYS_sched_setparam,
    SYS_sched_setscheduler,
    SYS_sched_getscheduler,
    SYS_sched_getparam,
    SYS_sched_setaffinity,
    SYS_sched_getaffinity,
    SYS_sched_yield,
    SYS_sched_get_priority_max,
    SYS_sched_get_priority_min,
    SYS_sched_rr_get_interval,
    SYS_restart_syscall,
    SYS_kill,
    SYS_tkill,
    SYS_tgkill,
    SYS_sigaltstack,
    SYS_rt_sigsuspend,
    SYS_rt_sigaction,
    SYS_rt_sigprocmask,
    SYS_rt_sigpending,
    SYS_rt_sigtimedwait,
    SYS_rt_sigqueueinfo,
    SYS_rt_sigreturn,
    SYS_setpriority,
    SYS_getpriority,
    SYS_reboot,
    SYS_setregid,
    SYS_setgid,
    SYS_setreuid,
    SYS_setuid,
    SYS_setresuid,
    SYS_getresuid,
    SYS_setresgid,
    SYS_getresgid,
    SYS_setfsuid,
    SYS_setfsgid,
    SYS_times,
    SYS_setpgid,
    SYS_getpgid,
    SYS_getsid,
    SYS_setsid,
    SYS_getgroups,
    SYS_setgroups,
    SYS_uname,
    SYS_sethostname,
    SYS_setdomainname,
    SYS_getrusage,
    SYS_umask,
    SYS_prctl,
    SYS_getcpu,
    SYS_gettimeofday,
    SYS_settimeofday,
    SYS_adjtimex,
    SYS_getpid,
    SYS_getppid,
    SYS_getuid,
    SYS_geteuid,
    SYS_getgid,
    SYS_getegid,
    SYS_gettid,
    SYS_sysinfo,
    SYS_mq_open,
    SYS_mq_unlink,
    SYS_mq_timedsend,
    SYS_mq_timedreceive,
    SYS_mq_notify,
    SYS_mq_getsetattr,
    SYS_msgget,
    SYS_msgctl,
    SYS_msgrcv,
    SYS_msgsnd,
    SYS_semget,
    SYS_semctl,
    SYS_semtimedop,
    SYS_semop,
    SYS_shmget,
    SYS_shmctl,
    SYS_shmat,
    SYS_shmdt,
    SYS_socket,
    SYS_socketpair,
    SYS_bind,
    SYS_listen,
    SYS_accept,
    SYS_connect,
    SYS_getsockname,
    SYS_getpeername,
    SYS_sendto,
    SYS_recvfrom,
    SYS_setsockopt,
    SYS_getsockopt,
    SYS_shutdown,
    SYS_sendmsg,
    SYS_recvmsg,
    SYS_readahead,
    SYS_brk,
    SYS_munmap,
    SYS_mremap,
    SYS_add_key,
    SYS_request_key,
    SYS_keyctl,
    SYS_clone,
    SYS_execve,
    SYS_mmap,
    SYS_fadvise64,
    SYS_swapon,
    SYS_swapoff,
    SYS_mprotect,
    SYS_msync,
    SYS_mlock,
    SYS_munlock,
    SYS_mlockall,
    SYS_munlockall,
    SYS_mincore,
    SYS_madvise,
    SYS_remap_file_pages,
    SYS_mbind,
    SYS_get_mempolicy,
    SYS_set_mempolicy,
    SYS_migrate_pages,
    SYS_move_pages,
    SYS_rt_tgsigqueueinfo,
    SYS_perf_event_open,
    SYS_accept4,
    SYS_recvmmsg,
    SYS_wait4,
    SYS_prlimit64,
    SYS_fanotify_init,
    SYS_fanotify_mark,
    SYS_name_to_handle_at,
    SYS_open_by_handle_at,
    SYS_clock_adjtime,
    SYS_syncfs,
    SYS_setns,
    SYS_sendmmsg,
    SYS_process_vm_readv,
    SYS_process_vm_writev,
    SYS_kcmp,
    SYS_finit_module,
    SYS_sched_setattr,
    SYS_sched_getattr,
    SYS_renameat2,
    SYS_seccomp,
    SYS_getrandom,
    SYS_memfd_create,
    SYS_bpf,
    SYS_execveat,
    SYS_userfaultfd,
    SYS_membarrier,
    SYS_mlock2,
    SYS_copy_file_range,
    SYS_preadv2,
    SYS_pwritev2,
    SYS_pkey_mprotect,
    SYS_pkey_alloc,
    SYS_pkey_free,
    SYS_statx,
    SYS_rseq,
    SYS_kexec_file_load,
    SYS_pidfd_send_signal,
    SYS_io_uring_setup,
    SYS_io_uring_enter,
    SYS_io_uring_register,
    SYS_open_tree,
    SYS_move_mount,
    SYS_fsopen,
    SYS_fsconfig,
    SYS_fsmount,
    SYS_fspick,
    SYS_pidfd_open,
    SYS_clone3,
    SYS_close_range,
    SYS_openat2,
    SYS_pidfd_getfd,
    SYS_faccessat2,
    SYS_process_madvise,
    SYS_epoll_pwait2,
    SYS_mount_setattr,
    SYS_quotactl_fd,
    SYS_landlock_create_ruleset,
    SYS_landlock_add_rule,
    SYS_landlock_restrict_self,
    SYS_memfd_secret,
    SYS_process_mrelease,
    SYS_futex_waitv,
    SYS_set_mempolicy_home_node,
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program on `data` like the kernel would, returning the action.
    fn run(p: &[SockFilter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let word =
            |off: u32| u32::from_ne_bytes(data[off as usize..off as usize + 4].try_into().unwrap());
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let ins = p[pc];
            pc += 1;
            match ins.code {
                BPF_LD_W_ABS => a = word(ins.k),
                BPF_ALU_AND_K => a &= ins.k,
                BPF_JMP_JEQ_K => pc += usize::from(if a == ins.k { ins.jt } else { ins.jf }),
                BPF_JMP_JGE_K => pc += usize::from(if a >= ins.k { ins.jt } else { ins.jf }),
                BPF_JMP_JA => pc += ins.k as usize,
                BPF_RET_K => return ins.k,
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    const DENY: u32 = SECCOMP_RET_ERRNO | EPERM as u32;
    fn nr(name: &str) -> u32 {
        syscall_number(name).unwrap()
    }

    #[test]
    fn default_policy_denies_the_list_and_allows_the_rest() {
        let p = SeccompConfig::default().compile().unwrap();
        for name in DEFAULT_DENIED {
            assert_eq!(run(&p, nr(name), AUDIT_ARCH_NATIVE, [0; 6]), DENY, "{name}");
        }
        for name in ["read", "write", "mount", "sethostname", "unshare", "execve", "clone3"] {
            assert_eq!(run(&p, nr(name), AUDIT_ARCH_NATIVE, [0; 6]), SECCOMP_RET_ALLOW, "{name}");
        }
        assert_eq!(run(&p, nr("io_uring_setup"), AUDIT_ARCH_NATIVE, [0; 6]), SECCOMP_RET_ALLOW);
        let c = SeccompConfig { deny_io_uring: true, ..Default::default() };
        let p = c.compile().unwrap();
        assert_eq!(run(&p, nr("io_uring_setup"), AUDIT_ARCH_NATIVE, [0; 6]), DENY);
    }

    #[test]
    fn foreign_architectures_are_killed() {
        let p = SeccompConfig::default().compile().unwrap();
        assert_eq!(run(&p, nr("read"), 0x4000_0003, [0; 6]), SECCOMP_RET_KILL_PROCESS);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_numbers_are_denied() {
        let p = SeccompConfig { default_policy: false, ..Default::default() }.compile().unwrap();
        assert_eq!(run(&p, 0x4000_0000 | 39, AUDIT_ARCH_NATIVE, [0; 6]), DENY);
        assert_eq!(run(&p, 39, AUDIT_ARCH_NATIVE, [0; 6]), SECCOMP_RET_ALLOW);
    }

    #[test]
    fn tiocsti_is_matched_on_the_low_32_bits_only() {
        let p = SeccompConfig::default().compile().unwrap();
        let ioctl = nr("ioctl");
        for req in [0x5412u64, 0xffff_ffff_0000_5412, 0x1_0000_5412, 0x541C] {
            assert_eq!(run(&p, ioctl, AUDIT_ARCH_NATIVE, [0, req, 0, 0, 0, 0]), DENY, "{req:#x}");
        }
        assert_eq!(run(&p, ioctl, AUDIT_ARCH_NATIVE, [0, 0x5413, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
    }

    #[test]
    fn personality_allows_only_the_standard_ones() {
        let p = SeccompConfig::default().compile().unwrap();
        let per = nr("personality");
        for ok in [0u64, 8, 0xffff_ffff] {
            assert_eq!(run(&p, per, AUDIT_ARCH_NATIVE, [ok, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        }
        // ADDR_NO_RANDOMIZE (setarch -R)
        assert_eq!(run(&p, per, AUDIT_ARCH_NATIVE, [0x0040000, 0, 0, 0, 0, 0]), DENY);
    }

    #[test]
    fn caller_rules_come_first_and_compare_arguments() {
        let c = SeccompConfig {
            rules: vec![
                Rule::allow("ptrace"),
                Rule::deny("socket").when(ArgCmp::Eq(0, 2)),
                Rule::new("listen", Action::Errno(libc::EACCES)).when(ArgCmp::Ne(1, 5)),
                Rule::deny("mmap").when(ArgCmp::MaskedEq(2, 0x4, 0xff00_0000_0000_0004)),
            ],
            ..Default::default()
        };
        let p = c.compile().unwrap();
        let a = AUDIT_ARCH_NATIVE;
        assert_eq!(run(&p, nr("ptrace"), a, [0; 6]), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, nr("bpf"), a, [0; 6]), DENY);
        assert_eq!(run(&p, nr("socket"), a, [2, 0, 0, 0, 0, 0]), DENY);
        assert_eq!(run(&p, nr("socket"), a, [(1 << 32) | 2, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, nr("socket"), a, [10, 0, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        let eacces = SECCOMP_RET_ERRNO | libc::EACCES as u32;
        assert_eq!(run(&p, nr("listen"), a, [0, 5, 0, 0, 0, 0]), SECCOMP_RET_ALLOW);
        assert_eq!(run(&p, nr("listen"), a, [0, 6, 0, 0, 0, 0]), eacces);
        assert_eq!(run(&p, nr("listen"), a, [0, (1 << 32) | 5, 0, 0, 0, 0]), eacces);
        assert_eq!(run(&p, nr("mmap"), a, [0, 0, 0x7, 0, 0, 0]), DENY);
        assert_eq!(run(&p, nr("mmap"), a, [0, 0, 0x3, 0, 0, 0]), SECCOMP_RET_ALLOW);
    }

    #[test]
    fn unknown_names_and_bad_programs_are_refused() {
        let c = SeccompConfig { rules: vec![Rule::deny("nope")], ..Default::default() };
        assert!(c.compile().unwrap_err().contains("nope"));
        assert!(parse_program(&[0; 7]).is_err());
        assert!(parse_program(&[]).is_err());
        // Rules after one without an argument comparison never run and cost nothing...
        let dead = SeccompConfig { rules: vec![Rule::deny("read"); 2100], ..Default::default() };
        assert!(dead.compile().unwrap().len() < 100);
        // ...but 2100 live ones are more than the kernel takes.
        let many = SeccompConfig {
            rules: (0..2100).map(|i| Rule::deny("read").when(ArgCmp::Eq32(0, i))).collect(),
            ..Default::default()
        };
        let Err(err) = many.compile() else { panic!("6300 instructions compiled") };
        assert!(err.contains("at most 4096"), "{err}");
        let p = parse_program(&[6, 0, 0, 0, 0, 0, 0xff, 0x7f]).unwrap();
        assert_eq!(p, [stmt(BPF_RET_K, SECCOMP_RET_ALLOW)]);
    }

    /// What the rules decide, the plain way: the first that matches, else allow.
    fn reference(rules: &[Resolved], nr: u32, args: [u64; 6]) -> u32 {
        let matches = |r: &Resolved| {
            r.nr == nr
                && match r.arg {
                    None => true,
                    Some(ArgCmp::Eq(i, v)) => args[usize::from(i)] == v,
                    Some(ArgCmp::Ne(i, v)) => args[usize::from(i)] != v,
                    Some(ArgCmp::MaskedEq(i, v, m)) => args[usize::from(i)] & m == v & m,
                    Some(ArgCmp::Eq32(i, v)) => args[usize::from(i)] as u32 == v,
                }
        };
        let action = rules.iter().find(|r| matches(r)).map_or(Action::Allow, |r| r.action);
        ret(action).k
    }

    #[test]
    fn the_search_tree_decides_like_the_rules_in_order() {
        // Pseudo-random rule sets, small and large (long blocks and far jumps), against the
        // plain first-match reading of the same rules.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for size in [0usize, 1, 3, 5, 17, 60, 300, 900] {
            let mut rules = Vec::new();
            for _ in 0..size {
                let nr = next(40) as u32 * 7;
                let action = match next(3) {
                    0 => Action::Allow,
                    1 => Action::Errno(next(100) as i32 + 1),
                    _ => Action::KillProcess,
                };
                let (i, v) = (next(6) as u8, next(4));
                let arg = match next(6) {
                    0 => None,
                    1 => Some(ArgCmp::Eq(i, v)),
                    2 => Some(ArgCmp::Ne(i, v)),
                    3 => Some(ArgCmp::MaskedEq(i, v, 0x3)),
                    _ => Some(ArgCmp::Eq32(i, v as u32)),
                };
                rules.push(Resolved { nr, action, arg });
            }
            let p = generate(&rules, Action::Allow);
            if size == 900 {
                assert!(p.iter().any(|i| i.code == BPF_JMP_JA), "no far jump to test");
            }
            for nr in 0..300 {
                for _ in 0..4 {
                    let args = [(); 6].map(|_| next(4) | (next(2) << 32));
                    assert_eq!(
                        run(&p, nr, AUDIT_ARCH_NATIVE, args),
                        reference(&rules, nr, args),
                        "{size} rules, nr {nr}, args {args:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn an_allowed_system_call_takes_a_few_steps() {
        // The kernel runs the filter for every number when it is installed (its action cache):
        // what it costs is the path length, which the search tree keeps short.
        let p = SeccompConfig { deny_io_uring: true, ..Default::default() }.compile().unwrap();
        let longest = (0..512)
            .map(|nr| {
                let (mut pc, mut steps) = (0usize, 0);
                let mut a = 0u32;
                loop {
                    let ins = p[pc];
                    pc += 1;
                    steps += 1;
                    match ins.code {
                        BPF_LD_W_ABS => a = if ins.k == OFF_ARCH { AUDIT_ARCH_NATIVE } else { nr },
                        BPF_JMP_JEQ_K => {
                            pc += usize::from(if a == ins.k { ins.jt } else { ins.jf })
                        }
                        BPF_JMP_JGE_K => {
                            pc += usize::from(if a >= ins.k { ins.jt } else { ins.jf })
                        }
                        BPF_JMP_JA => pc += ins.k as usize,
                        // Argument checks: the kernel's cache stops there too.
                        _ => break steps,
                    }
                }
            })
            .max()
            .unwrap();
        assert!(longest <= 16, "{longest} steps for {} instructions", p.len());
    }

    #[test]
    fn names_resolve_to_native_numbers() {
        assert_eq!(syscall_number("bpf"), Some(libc::SYS_bpf as u32));
        assert_eq!(syscall_number("ptrace"), Some(libc::SYS_ptrace as u32));
        assert_eq!(syscall_number("nonsense"), None);
    }
}
