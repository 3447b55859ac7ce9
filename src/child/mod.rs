//! The code that runs after `clone`, before `execve`.
//!
//! It runs on the plan's stack with `CLONE_VM`: it shares the caller's memory (and, with no
//! `CLONE_SETTLS`, the calling thread's TLS). So it only reads the [`Plan`], makes raw system
//! calls (rustix's linux_raw backend or [`crate::sys`], none of which touch `errno`), never
//! allocates, formats, locks or unwinds, and leaves only through `execve` or `exit_group`. A
//! failure is stored in `plan.report` before the exit; the parent decodes it.
#![allow(unsafe_code)]

pub(crate) mod cgroup;
pub(crate) mod channel;
pub(crate) mod egress;
pub(crate) mod fs;
pub(crate) mod harden;
pub(crate) mod init;
pub(crate) mod join;
pub(crate) mod mount_lock;
pub(crate) mod net;

use crate::error::Failure;
use crate::error::Step;
use crate::plan::{Checkpoint, Plan};
use crate::sys;
use core::ffi::{c_int, c_void};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use std::ffi::CStr;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;

/// The exit code of a child whose setup failed (the parent reaps it and returns the error).
pub(crate) const SETUP_FAILED: c_int = 127;

/// `statfs.f_type` of procfs.
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// A task that `clone` starts: a safe function of what its spawner passes by address.
///
/// `clone` runs a C function of one pointer; [`trampoline`] is the only one, and it turns the
/// pointer back into the reference the spawner passed. So every entry of the child is a safe
/// function, and the one unsafe cast is here.
pub(crate) trait Entry {
    /// What the spawner passes (its address is `clone`'s `arg`).
    type Arg<'a>;
    /// The task's code. It leaves through `execve` or `exit_group`, or returns the task's exit
    /// code.
    fn run(arg: &Self::Arg<'_>) -> c_int;
}

/// The `extern "C"` function every `clone` of the child runs: `E::run(&*arg)`.
///
/// Only ever passed to `clone` (an unsafe call) with, as `arg`, the address of an `E::Arg` that
/// stays valid and unchanged until the new task has exec'd or exited; every such call says so
/// in its `SAFETY` comment.
pub(crate) extern "C" fn trampoline<E: Entry>(arg: *mut c_void) -> c_int {
    // SAFETY: every call of clone with this function passes a live `E::Arg` and keeps it alive
    // until the new task has exec'd or exited (see above).
    let arg = unsafe { &*arg.cast_const().cast::<E::Arg<'_>>() };
    E::run(arg)
}

/// The sandbox's first task: the setup, then the program (or the init, or, probing, nothing).
struct Setup;

impl Entry for Setup {
    type Arg<'a> = Plan<'a>;
    fn run(plan: &Plan<'_>) -> c_int {
        let failure = match setup(plan) {
            Ok(()) if plan.probe_only => sys::exit(0),
            Ok(()) if plan.lifecycle.init => crate::child::init::run(plan),
            Ok(()) => exec_program(plan),
            Err(f) => f,
        };
        report(plan, failure)
    }
}

/// The entry point spawn passes to `clone`, with the address of a [`Plan`] that stays valid and
/// unchanged until the child has exec'd or exited.
pub(crate) const CLONE_ENTRY: extern "C" fn(*mut c_void) -> c_int = trampoline::<Setup>;

/// Records `failure` for the parent and exits: in the plan's memory (which the parent shares
/// unless this is a forked init) and, on the handshake path, through the setup channel as well.
pub(crate) fn report(plan: &Plan<'_>, failure: Failure) -> ! {
    let word = failure.encode();
    plan.report.store(word, Ordering::Release);
    plan.channel.send_record(word);
    sys::exit(SETUP_FAILED)
}

/// `map_err` for a step: the errno, recorded as a failure of `step`.
pub(crate) fn fail(step: Step) -> impl Fn(Errno) -> Failure {
    move |e| Failure::new(step, e)
}

/// Writes `bytes` to the procfs file `path` in one `write`: only ever through a real procfs,
/// never a file some mount put in its place.
pub(crate) fn write_proc(path: &CStr, bytes: &[u8]) -> Result<(), Errno> {
    let fd = rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    // Only ever write through a real procfs (never a file some mount put in its place).
    if rustix::fs::fstatfs(&fd)?.f_type as i64 != PROC_SUPER_MAGIC {
        return Err(Errno::XDEV);
    }
    let n = rustix::io::write(&fd, bytes)?;
    if n != bytes.len() { Err(Errno::IO) } else { Ok(()) }
}

/// [`write_proc`], at `path` below the procfs directory `proc`.
pub(crate) fn write_proc_at(
    proc: std::os::fd::BorrowedFd<'_>,
    path: &CStr,
    bytes: &[u8],
) -> Result<(), Errno> {
    let fd = rustix::fs::openat(proc, path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    if rustix::fs::fstatfs(&fd)?.f_type as i64 != PROC_SUPER_MAGIC {
        return Err(Errno::XDEV);
    }
    let n = rustix::io::write(&fd, bytes)?;
    if n != bytes.len() { Err(Errno::IO) } else { Ok(()) }
}

/// One step of the setup: it reads the plan and makes raw system calls.
type SetupStep = fn(&Plan<'_>) -> Result<(), Failure>;

/// THE ORDER TABLE, part 1: every step of the setup in the sandbox's first task, in order (the
/// single place the order is written). Adding a feature adds its step here. Joining existing
/// namespaces (setns) comes first of all, before this task exists: the joining task
/// ([`join::Joiner`]) enters them and clones this one in the sandbox's new namespaces.
const IN_SANDBOX: &[SetupStep] = &[
    join::announce,
    reset_signals,
    init::tie_to_spawner,
    channel::close_parent_end,
    namespaces_created,
    write_id_maps,
    harden::join_session_keyring,
    set_uts_names,
    write_sysctls,
    mount_lock_enter,
    make_mounts_private,
    cgroup::read_only_cgroupfs,
    build_new_root,
    mount_proc,
    net_etc_files,
    mounts_ready,
    mount_lock_lock,
    cgroup::join,
    cgroup::unshare_ns,
    loopback_up,
    install_egress,
    unshare_time,
    join::after_setup,
    init::setup,
];

/// THE ORDER TABLE, part 2: in the task that execs the program (the first task, or the init's
/// child), then `execve`.
const IN_PROGRAM: &[SetupStep] = &[
    init::end_setup_tie,
    init::tie_to_init,
    stdio,
    place_fds,
    chdir,
    before_exec,
    restore_signal_mask,
    harden::landlock_rules,
    harden::nested_userns,
    harden::rlimits,
    harden::seccomp_without_nnp,
    harden::capability_sets,
    harden::no_new_privs,
    harden::landlock_restrict,
    init::start_gate,
    harden::seccomp,
];

/// Runs the steps in order; the first failure ends the setup.
fn run_steps(plan: &Plan<'_>, steps: &[SetupStep]) -> Result<(), Failure> {
    steps.iter().try_for_each(|step| step(plan))
}

fn setup(plan: &Plan<'_>) -> Result<(), Failure> {
    run_steps(plan, IN_SANDBOX)
}

/// The caller's signal handlers, reset (clone3 with `CLONE_CLEAR_SIGHAND` has reset all
/// handlers already, but not the ignored `SIGPIPE` and `SIGCHLD`, which the program must get at
/// their defaults too).
fn reset_signals(plan: &Plan<'_>) -> Result<(), Failure> {
    if plan.sighand_cleared.load(Ordering::Relaxed) {
        sys::reset_ignored_defaults().map_err(fail(Step::ResetSignals))
    } else {
        sys::reset_signal_handlers().map_err(fail(Step::ResetSignals))
    }
}

/// Checkpoint: the namespaces exist (the parent writes id maps it must write itself).
fn namespaces_created(plan: &Plan<'_>) -> Result<(), Failure> {
    channel::checkpoint(plan, Checkpoint::NamespacesCreated)
}

/// The single-line id maps of the caller's own ids, which the child writes itself.
fn write_id_maps(plan: &Plan<'_>) -> Result<(), Failure> {
    if let Some(maps) = &plan.self_maps {
        write_proc(c"/proc/self/setgroups", b"deny").map_err(fail(Step::WriteSetgroups))?;
        write_proc(c"/proc/self/uid_map", &maps.uid_map).map_err(fail(Step::WriteUidMap))?;
        write_proc(c"/proc/self/gid_map", &maps.gid_map).map_err(fail(Step::WriteGidMap))?;
    }
    Ok(())
}

/// The hostname and the NIS domain name.
fn set_uts_names(plan: &Plan<'_>) -> Result<(), Failure> {
    if let Some(name) = plan.hostname {
        rustix::system::sethostname(name).map_err(fail(Step::SetHostname))?;
    }
    if let Some(name) = plan.domainname {
        rustix::system::setdomainname(name).map_err(fail(Step::SetDomainname))?;
    }
    Ok(())
}

/// The kernel parameters, through `/proc/sys` (still the caller's view of it: what a file
/// there sets is the writing task's namespaces' own). The failure's index names the parameter.
fn write_sysctls(plan: &Plan<'_>) -> Result<(), Failure> {
    for (i, (path, value)) in plan.sysctls.iter().enumerate() {
        write_proc(path, value).map_err(|e| Failure::new(Step::Sysctl, e).at(i))?;
    }
    Ok(())
}

/// The mount namespace the mounts are built in, owned by a throwaway user namespace.
fn mount_lock_enter(plan: &Plan<'_>) -> Result<(), Failure> {
    if plan.lock_mounts {
        mount_lock::enter(&plan.kill_gate).map_err(fail(Step::LockMounts))?;
    }
    Ok(())
}

/// Every mount private: nothing the sandbox mounts propagates to the host, nor back.
fn make_mounts_private(plan: &Plan<'_>) -> Result<(), Failure> {
    if plan.make_mounts_private {
        use rustix::mount::MountPropagationFlags as P;
        rustix::mount::mount_change(c"/", P::REC | P::PRIVATE)
            .map_err(fail(Step::MakeMountsPrivate))?;
    }
    Ok(())
}

/// The filesystem operations, and `pivot_root` into the new root they built (the parent's
/// `MountsReady` checkpoint comes just before the `pivot_root`).
fn build_new_root(plan: &Plan<'_>) -> Result<(), Failure> {
    match &plan.fs {
        Some(fs) => fs::apply(fs, || channel::checkpoint(plan, Checkpoint::MountsReady)),
        None => Ok(()),
    }
}

/// A fresh `/proc` over the host's (without a new root: with one, it is one of its operations).
fn mount_proc(plan: &Plan<'_>) -> Result<(), Failure> {
    if plan.mount_proc {
        use rustix::mount::MountFlags as M;
        let mut buf = [0u8; 4096];
        let cwd = reachable_cwd(&mut buf);
        rustix::mount::mount(c"proc", c"/proc", c"proc", M::NOSUID | M::NODEV | M::NOEXEC, None)
            .map_err(fail(Step::MountProc))?;
        if let Some(path) = cwd {
            uncover_cwd(path).map_err(fail(Step::Chdir))?;
        }
    }
    Ok(())
}

/// Checkpoint: the mounts are in place (without a new root; with one, [`build_new_root`] has
/// stopped there before its `pivot_root`).
fn mounts_ready(plan: &Plan<'_>) -> Result<(), Failure> {
    match plan.fs {
        Some(_) => Ok(()),
        None => channel::checkpoint(plan, Checkpoint::MountsReady),
    }
}

/// Every mount is in place: lock them all against the program (see `src/child/mount_lock.rs`).
fn mount_lock_lock(plan: &Plan<'_>) -> Result<(), Failure> {
    if plan.lock_mounts {
        mount_lock::lock().map_err(fail(Step::LockMounts))?;
    }
    Ok(())
}

/// `lo` up in a new network namespace.
fn loopback_up(plan: &Plan<'_>) -> Result<(), Failure> {
    if plan.loopback_up {
        net::loopback_up().map_err(fail(Step::LoopbackUp))?;
    }
    Ok(())
}

/// The network's `/etc/resolv.conf` and `/etc/hosts`, mounted over the ones the sandbox sees
/// (the host's, or its new root's); a new root without an `/etc` of the caller's has them
/// among its operations instead.
fn net_etc_files(plan: &Plan<'_>) -> Result<(), Failure> {
    net::etc_files(&plan.etc_files).map_err(fail(Step::NetworkEtcFiles))
}

/// The egress allowlist in the sandbox's network namespace, while the child still has
/// `CAP_NET_ADMIN` there (the program's capability sets lose it).
fn install_egress(plan: &Plan<'_>) -> Result<(), Failure> {
    if let Some(batch) = plan.egress {
        egress::install(batch).map_err(fail(Step::InstallEgress))?;
    }
    Ok(())
}

/// A new time namespace, which the program enters at `execve` (`CLONE_NEWTIME` does not fit in
/// `clone`'s flags).
fn unshare_time(plan: &Plan<'_>) -> Result<(), Failure> {
    if plan.unshare_time {
        // SAFETY: CLONE_NEWTIME changes nothing this task relies on; the program enters the new
        // namespace at execve.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWTIME) }
            .map_err(fail(Step::UnshareTime))?;
    }
    Ok(())
}

/// The working directory's path, when that path leads to it (not for one removed, or one no
/// path reaches) and the fresh `/proc` could cover it (it is `/proc` or beneath it).
fn reachable_cwd(buf: &mut [u8; 4096]) -> Option<&CStr> {
    let n = sys::getcwd(buf).ok()?;
    let path = CStr::from_bytes_with_nul(buf.get(..n)?).ok()?;
    // A mount on /proc changes what no other path names (the mounts are private by now).
    let rest = path.to_bytes().strip_prefix(b"/proc")?;
    if !(rest.is_empty() || rest.first() == Some(&b'/')) {
        return None;
    }
    let (here, there) = (rustix::fs::stat(c".").ok()?, rustix::fs::stat(path).ok()?);
    let same = (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino);
    (path.to_bytes().first() == Some(&b'/') && same).then_some(path)
}

/// After a mount on the working directory's path (the fresh `/proc` over the caller's
/// working directory in the host's): moves to what `path` names now. Staying would leave the
/// program in the host's procfs beneath the fresh one, every host pid in `.`. Fails when
/// nothing inside has that path (a host process's own directory).
fn uncover_cwd(path: &CStr) -> Result<(), Errno> {
    let (here, there) = (rustix::fs::stat(c".")?, rustix::fs::stat(path)?);
    if (here.st_dev, here.st_ino) != (there.st_dev, there.st_ino) {
        return enter_dir(path);
    }
    Ok(())
}

/// The most fds [`close_unplanned_fds`] keeps: stdio, the passed fds' sources, and a few of
/// the plan's own.
const MAX_PLANNED_FDS: usize = 80;

/// The most lock files, and the most held fds, a sandbox's init keeps
/// ([`crate::Sandbox::lock_file`], [`crate::Sandbox::hold_fd`]).
pub(crate) const MAX_HELD: usize = 16;

/// Closes every fd above 2 that the plan does not name (the init does this before it starts
/// the program, whose task starts with a copy of the init's fds): no fd of the caller's is left
/// for a magic link such as `/proc/1/fd/N` to reach.
pub(crate) fn close_unplanned_fds(plan: &Plan<'_>) -> Result<(), Failure> {
    let mut keep = Bounded::<i32, MAX_PLANNED_FDS>::new(-1);
    let mut add = |fd: i32| {
        if fd >= 3 {
            // Full: the rest are closed (no plan names that many).
            let _ = keep.push(fd);
        }
    };
    plan.stdio.iter().flatten().for_each(|fd| add(fd.as_raw_fd()));
    add(plan.channel.fd());
    add(plan.lifecycle.parent_pidfd.as_raw_fd());
    plan.lifecycle.terminal.iter().for_each(|fd| add(fd.as_raw_fd()));
    // The init's own: it reports its program's stops to the parent through this pipe.
    plan.lifecycle.stop_fd.iter().for_each(|fd| add(fd.as_raw_fd()));
    // The fds it holds for the sandbox's life (its lock files are opened after this).
    plan.held_fds.iter().for_each(|fd| add(fd.as_raw_fd()));
    plan.harden.for_each_fd(&mut add);
    crate::child::harden::close_all_except(keep.as_mut_slice()).map_err(fail(Step::CloseFds))
}

/// At most `N` values in a fixed array, in the order they were added: what the child uses where
/// other code would use a `Vec`.
pub(crate) struct Bounded<T, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Copy, const N: usize> Bounded<T, N> {
    /// An empty list (`fill` is only what the unused slots hold).
    pub(crate) const fn new(fill: T) -> Self {
        Bounded { items: [fill; N], len: 0 }
    }

    /// Adds `item` at the end, or `Err(EOVERFLOW)` when the list holds `N` already.
    pub(crate) fn push(&mut self, item: T) -> Result<(), Errno> {
        let slot = self.items.get_mut(self.len).ok_or(Errno::OVERFLOW)?;
        *slot = item;
        #[expect(clippy::arithmetic_side_effects, reason = "items[len] exists: len < N")]
        let len = self.len + 1;
        self.len = len;
        Ok(())
    }

    /// The values added, in order.
    pub(crate) fn as_slice(&self) -> &[T] {
        self.items.get(..self.len).unwrap_or_default()
    }

    /// The values added, in order.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        self.items.get_mut(..self.len).unwrap_or_default()
    }
}

/// The end of every path to the program (the direct one, and the init's child): the steps of
/// [`IN_PROGRAM`], then `execve`. Returns only on failure.
pub(crate) fn exec_program(plan: &Plan<'_>) -> Failure {
    match run_steps(plan, IN_PROGRAM) {
        Ok(()) => exec(plan),
        Err(f) => f,
    }
}

/// Stdio in place.
fn stdio(plan: &Plan<'_>) -> Result<(), Failure> {
    for (slot, fd) in plan.stdio.iter().enumerate() {
        // All are > 2: no dup2 here overwrites one still to come.
        let Some(fd) = fd else { continue };
        let r = match slot {
            0 => rustix::stdio::dup2_stdin(fd),
            1 => rustix::stdio::dup2_stdout(fd),
            _ => rustix::stdio::dup2_stderr(fd),
        };
        r.map_err(|e| Failure::new(Step::Stdio, e).at(slot))?;
    }
    Ok(())
}

/// Passed fds into place, every other fd above 2 closed (the setup channel kept, moved out of
/// a passed fd's way if it must).
fn place_fds(plan: &Plan<'_>) -> Result<(), Failure> {
    let gate = plan.lifecycle.start_gate.map_or(-1, |fd| fd.as_raw_fd());
    let (channel, gate) = harden::place_fds(&plan.harden, plan.channel.fd(), gate)?;
    plan.channel.set(channel);
    plan.gate_fd.store(gate, Ordering::Relaxed);
    Ok(())
}

/// The working directory. Only now, with no fd left that the program is not meant to have: a
/// magic link (/proc/self/fd/N) could otherwise lead it out of the new root.
fn chdir(plan: &Plan<'_>) -> Result<(), Failure> {
    if !plan.cwd_candidates.is_empty() {
        let mut last = Failure::new(Step::Chdir, Errno::NOENT);
        for (i, dir) in plan.cwd_candidates.iter().enumerate() {
            match enter_dir(dir) {
                Ok(()) => {
                    plan.cwd_chosen.store(i, Ordering::Relaxed);
                    return Ok(());
                }
                Err(e) => last = Failure::new(Step::Chdir, e).at(i),
            }
        }
        return Err(last);
    }
    match plan.cwd {
        Some(dir) => enter_dir(dir).map_err(fail(Step::Chdir)),
        None => Ok(()),
    }
}

/// Checkpoint: the last one, before the hardening and `execve`.
fn before_exec(plan: &Plan<'_>) -> Result<(), Failure> {
    channel::checkpoint(plan, Checkpoint::BeforeExec)
}

/// The signal mask the program starts with: empty.
fn restore_signal_mask(_plan: &Plan<'_>) -> Result<(), Failure> {
    sys::set_signal_mask(0).map(|_| ()).map_err(fail(Step::SignalMask))
}

/// Makes `dir` the working directory: resolved without magic links, and refused when the
/// result is not beneath the root (the raw `getcwd` then names it `(unreachable)...`).
fn enter_dir(dir: &CStr) -> Result<(), Errno> {
    use rustix::fs::{CWD, ResolveFlags};
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = rustix::fs::openat2(CWD, dir, flags, Mode::empty(), ResolveFlags::NO_MAGICLINKS)?;
    rustix::process::fchdir(&fd)?;
    let mut buf = [0u8; 4096];
    match sys::getcwd(&mut buf) {
        Ok(_) if buf.first() == Some(&b'/') => Ok(()),
        // "(unreachable)/...": outside the root.
        Ok(_) => Err(Errno::XDEV),
        // A path longer than the buffer: not an escape (those have no path at all).
        Err(Errno::RANGE) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Tries each candidate as `execvp` does: ENOENT and ENOTDIR move on, EACCES is remembered and
/// moves on, anything else stops. Returns only on failure.
fn exec(plan: &Plan<'_>) -> Failure {
    let mut result = Failure::new(Step::Exec, Errno::NOENT);
    // With working-directory candidates, the environment whose PWD names the one entered.
    let chosen = plan.cwd_chosen.load(Ordering::Relaxed);
    let envp = plan.candidate_envps.get(chosen).unwrap_or(&plan.envp);
    for (i, path) in plan.candidates.iter().enumerate() {
        // SAFETY: path is a CString; argv and envp are NULL-terminated arrays of pointers into
        // CStrings that the plan keeps alive.
        let err = unsafe { sys::execve(path.as_ptr(), plan.argv.as_ptr(), envp.as_ptr()) };
        match err {
            Errno::NOENT | Errno::NOTDIR => {}
            Errno::ACCESS => result = Failure::new(Step::Exec, err).at(i),
            _ => return Failure::new(Step::Exec, err).at(i),
        }
    }
    result
}

#[cfg(test)]
#[allow(clippy::disallowed_macros, reason = "tests run in the test harness, never after clone")]
mod tests {
    use super::*;

    #[test]
    fn bounded_keeps_what_fits_in_order() {
        let mut list = Bounded::<i32, 3>::new(-1);
        assert_eq!(list.as_slice(), &[] as &[i32]);
        for fd in [5, 3, 4] {
            assert_eq!(list.push(fd), Ok(()));
        }
        assert_eq!(list.push(6), Err(Errno::OVERFLOW));
        assert_eq!(list.as_slice(), &[5, 3, 4]);
        list.as_mut_slice().sort_unstable();
        assert_eq!(list.as_slice(), &[3, 4, 5]);
    }
}
