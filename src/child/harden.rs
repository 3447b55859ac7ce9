//! Hardening in the child: capabilities, no_new_privs, rlimits, seccomp, Landlock, passed fds,
//! the session keyring and the nested user namespace limit. Raw system calls only.
#![allow(unsafe_code)]

use crate::child::{Bounded, fail, write_proc_at};
use std::os::fd::AsFd;
use crate::error::Failure;
use crate::error::Step;
use crate::harden::*;
use crate::plan::Plan;
use crate::sys::{self};
use rustix::io::Errno;
use rustix::thread::CapabilitySet;
use std::os::fd::{AsRawFd, RawFd};

/// Puts the passed fds in place and closes every other fd above 2, except `exec_fd` (the CLOEXEC
/// setup channel, or -1), `gate` (the start gate, or -1) and the Landlock ruleset (CLOEXEC too,
/// needed until `execve`). Returns the channel's and the gate's numbers now: they move when a
/// passed fd's target needs their number.
///
/// Sources may collide with targets (`map_fd(3, 4)` and `map_fd(4, 3)`), so every source is
/// first copied above all the numbers involved, then onto its target.
pub(crate) fn place_fds(
    plan: &HardenPlan<'_>,
    exec_fd: RawFd,
    gate: RawFd,
) -> Result<(RawFd, RawFd), Failure> {
    let landlock = plan.landlock_fd.as_ref().map_or(-1, std::os::fd::AsRawFd::as_raw_fd);
    let (mut exec_fd, mut gate) = (exec_fd, gate);
    let mut keep = Bounded::<RawFd, { MAX_FDS + 2 }>::new(-1);
    let too_many = |_| Failure::new(Step::PassFds, Errno::INVAL);
    if !plan.fds.is_empty() {
        // A number above every fd involved (fds are far below RawFd::MAX: none saturates).
        let mut high: RawFd = 3;
        let sources = plan.fds.iter().map(|(s, _)| s.as_raw_fd());
        let targets = plan.fds.iter().map(|&(_, t)| t);
        for fd in sources.chain(targets).chain([exec_fd, landlock, gate]) {
            high = high.max(fd.saturating_add(1));
        }
        let collides = |fd: RawFd| fd >= 0 && plan.fds.iter().any(|&(_, t)| t == fd);
        if collides(exec_fd) {
            exec_fd = sys::dupfd_cloexec(exec_fd, high).map_err(fail(Step::PassFds))?;
        }
        if collides(gate) {
            gate = sys::dupfd_cloexec(gate, high.saturating_add(1)).map_err(fail(Step::PassFds))?;
        }
        if collides(landlock) {
            return Err(Failure::new(Step::PassFds, Errno::BUSY));
        }
        let mut temp = Bounded::<RawFd, MAX_FDS>::new(-1);
        for (i, &(s, _)) in plan.fds.iter().enumerate() {
            let fd = sys::dupfd_cloexec(s.as_raw_fd(), high)
                .map_err(|e| Failure::new(Step::PassFds, e).at(i))?;
            // Never more than MAX_FDS: the builder refuses more.
            temp.push(fd).map_err(too_many)?;
        }
        for (i, (&from, &(_, t))) in temp.as_slice().iter().zip(&plan.fds).enumerate() {
            sys::dup3(from, t).map_err(|e| Failure::new(Step::PassFds, e).at(i))?;
            keep.push(t).map_err(too_many)?;
        }
    }
    // The caller's procfs, for the nested user namespace (above every target: see its plan).
    let proc = plan.nested_userns.as_ref().map_or(-1, |n| n.proc_dir.as_raw_fd());
    for extra in [exec_fd, landlock, proc, gate] {
        if extra >= 3 {
            keep.push(extra).map_err(too_many)?;
        }
    }
    close_all_except(keep.as_mut_slice()).map_err(fail(Step::CloseFds))?;
    Ok((exec_fd, gate))
}

/// Closes every fd above 2 but those in `keep` (which it sorts; numbers below 3 are ignored).
/// Runs in the child: no allocation.
pub(crate) fn close_all_except(keep: &mut [RawFd]) -> Result<(), Errno> {
    keep.sort_unstable();
    let mut from: u32 = 3;
    for &k in keep.iter() {
        let Ok(k) = u32::try_from(k) else { continue };
        // The fds between the last one kept and this one, if any.
        if let Some(last) = k.checked_sub(1).filter(|&last| last >= from) {
            sys::close_range(from, last)?;
        }
        from = from.max(k.saturating_add(1));
    }
    sys::close_range(from, u32::MAX)
}

impl HardenPlan<'_> {
    /// Calls `f` with every fd of the caller's that this plan keeps open until `execve`: the
    /// sources of the passed fds and the Landlock ruleset.
    pub(crate) fn for_each_fd(&self, mut f: impl FnMut(RawFd)) {
        for (source, _) in &self.fds {
            f(source.as_raw_fd());
        }
        if let Some(fd) = &self.landlock_fd {
            f(std::os::fd::AsRawFd::as_raw_fd(fd));
        }
        if let Some(nested) = &self.nested_userns {
            f(std::os::fd::AsRawFd::as_raw_fd(&nested.proc_dir));
        }
    }
}

/// Landlock's path rules, first of the hardening: while the task may still open files (a low
/// `RLIMIT_NOFILE` would refuse them). The index of a failed rule is 1-based, so 0 still means
/// the ruleset as a whole.
pub(crate) fn landlock_rules(plan: &Plan<'_>) -> Result<(), Failure> {
    if let Some(ruleset) = &plan.harden.landlock_fd {
        let ruleset = std::os::fd::AsRawFd::as_raw_fd(ruleset);
        for (i, rule) in plan.harden.landlock_rules.iter().enumerate() {
            add_path_rule(ruleset, rule)
                .map_err(|e| Failure::new(Step::Landlock, e).at(i.saturating_add(1)))?;
        }
    }
    Ok(())
}

/// The nested user namespace, in the program's task: unless the init (which started this task)
/// has moved into it already ([`limit_nested_userns`]).
pub(crate) fn nested_userns(plan: &Plan<'_>) -> Result<(), Failure> {
    if plan.lifecycle.init { Ok(()) } else { limit_nested_userns(&plan.harden) }
}

/// The resource limits.
pub(crate) fn rlimits(plan: &Plan<'_>) -> Result<(), Failure> {
    for (i, &(resource, limit)) in plan.harden.rlimits.iter().enumerate() {
        rustix::process::setrlimit(resource, limit)
            .map_err(|e| Failure::new(Step::Rlimit, e).at(i))?;
    }
    Ok(())
}

/// The capability sets, the bounding set and the ambient set.
pub(crate) fn capability_sets(plan: &Plan<'_>) -> Result<(), Failure> {
    capabilities(&plan.harden).map_err(fail(Step::Capabilities))
}

/// `no_new_privs`.
pub(crate) fn no_new_privs(plan: &Plan<'_>) -> Result<(), Failure> {
    if plan.harden.no_new_privs {
        rustix::thread::set_no_new_privs(true).map_err(fail(Step::NoNewPrivs))?;
    }
    Ok(())
}

/// The Landlock ruleset, enforced.
pub(crate) fn landlock_restrict(plan: &Plan<'_>) -> Result<(), Failure> {
    if let Some(fd) = &plan.harden.landlock_fd {
        sys::landlock_restrict_self(std::os::fd::AsRawFd::as_raw_fd(fd))
            .map_err(fail(Step::Landlock))?;
    }
    Ok(())
}

/// The seccomp filters without no_new_privs: installing one then needs `CAP_SYS_ADMIN`, so
/// they come before the capability sets drop it (as runc does), and see the last steps of the
/// setup (`capset`, `prctl`, the start gate's `poll` and `read`) too.
pub(crate) fn seccomp_without_nnp(plan: &Plan<'_>) -> Result<(), Failure> {
    if plan.harden.no_new_privs { Ok(()) } else { install_seccomp(plan) }
}

/// The seccomp filters, last (with no_new_privs: see [`seccomp_without_nnp`]).
pub(crate) fn seccomp(plan: &Plan<'_>) -> Result<(), Failure> {
    if plan.harden.no_new_privs { install_seccomp(plan) } else { Ok(()) }
}

/// nscell's own filter, then the caller's programs in order.
fn install_seccomp(plan: &Plan<'_>) -> Result<(), Failure> {
    if let Some(filter) = &plan.harden.seccomp {
        sys::seccomp_set_filter(filter).map_err(fail(Step::Seccomp))?;
    }
    for (i, program) in plan.harden.programs.iter().enumerate() {
        let at = i.saturating_add(1);
        sys::seccomp_set_filter(program).map_err(|e| Failure::new(Step::Seccomp, e).at(at))?;
    }
    Ok(())
}

/// Opens `rule.path` (as this task sees it) with `O_PATH` and adds it to the ruleset.
fn add_path_rule(
    ruleset: RawFd,
    rule: &crate::landlock::ChildRule,
) -> Result<(), rustix::io::Errno> {
    use rustix::fs::{CWD, FileType, Mode, OFlags, ResolveFlags};
    // No magic links (/proc/self/fd/N): a rule follows the path as the sandbox names it, never
    // an fd that would lead out of its root.
    let flags = OFlags::PATH | OFlags::CLOEXEC;
    let path = rule.path.as_c_str();
    let fd = rustix::fs::openat2(CWD, path, flags, Mode::empty(), ResolveFlags::NO_MAGICLINKS)?;
    let is_dir = FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) == FileType::Directory;
    let rights = if is_dir { rule.dir_rights } else { rule.file_rights };
    sys::landlock_add_path_rule(ruleset, std::os::fd::AsRawFd::as_raw_fd(&fd), rights)
}

/// `CAP_SETPCAP`, which shrinking the bounding set needs.
const CAP_SETPCAP: CapabilitySet = CapabilitySet::SETPCAP;

/// The capability sets, the bounding set and the ambient set, through rustix (its `linux_raw`
/// calls touch no `errno`).
fn capabilities(plan: &HardenPlan<'_>) -> Result<(), Errno> {
    use rustix::thread::{
        CapabilitySets, capabilities, capability_is_in_bounding_set,
        configure_capability_in_ambient_set, remove_capability_from_bounding_set, set_capabilities,
    };
    let now = capabilities(None)?;
    let Some((mask, add)) = plan.caps else {
        // Untouched: only make sure nothing is inherited through execve (CVE-2022-29162).
        // Clearing the inheritable set clears the ambient set with it.
        if !now.inheritable.is_empty() {
            set_capabilities(None, CapabilitySets { inheritable: CapabilitySet::empty(), ..now })?;
        }
        return Ok(());
    };
    let root = rustix::process::getuid().is_root();
    let base = if root { now.permitted.bits() } else { 0 };
    let keep = CapabilitySet::from_bits_retain(((base & mask) | add) & now.permitted.bits());
    // Each capability the kernel knows (1 << cap: cap <= last_cap <= 63).
    let each = || (0..=plan.last_cap.min(63)).map(|cap| CapabilitySet::from_bits_retain(1 << cap));
    for cap in each().filter(|cap| !keep.contains(*cap)) {
        if !capability_is_in_bounding_set(cap)? {
            continue;
        }
        match remove_capability_from_bounding_set(cap) {
            Ok(()) => {}
            // Without CAP_SETPCAP the bounding set cannot shrink; such a task has no
            // capabilities to lose, and no_new_privs keeps execve from granting any.
            Err(Errno::PERM) if !now.effective.contains(CAP_SETPCAP) => {}
            Err(e) => return Err(e),
        }
    }
    let ambient = !root && !keep.is_empty();
    let inheritable = if ambient { keep } else { CapabilitySet::empty() };
    set_capabilities(None, CapabilitySets { effective: keep, permitted: keep, inheritable })?;
    if ambient {
        for cap in each().filter(|cap| keep.contains(*cap)) {
            configure_capability_in_ambient_set(cap, true)?;
        }
    }
    Ok(())
}

/// [`Sandbox::new_session_keyring`](crate::Sandbox::new_session_keyring), when asked for. Runs in the child right after the id maps:
/// it is a credential change of this task only (it keeps the ids and capabilities, so it resets
/// neither the shared memory's dumpability nor the parent death signal), it must come before
/// seccomp (whose default policy denies `keyctl`) and before the init starts the program (which
/// inherits it), and there a failure reaches the parent on every spawn path.
pub(crate) fn join_session_keyring(plan: &Plan<'_>) -> Result<(), Failure> {
    let plan = &plan.harden;
    const PR_GET_SECCOMP: i32 = 21;
    const SECCOMP_MODE_FILTER: usize = 2;
    if !plan.new_session_keyring {
        return Ok(());
    }
    match sys::join_session_keyring() {
        Ok(_) => Ok(()),
        // A kernel without keyrings (CONFIG_KEYS off): there is no keyring to leave behind.
        Err(Errno::NOSYS) => Ok(()),
        // The kernel never answers EPERM here; a seccomp filter that this task (and so the
        // program) is under does, when it denies keyctl as a whole (looking the session keyring
        // up is refused too): the program cannot reach any keyring either.
        Err(Errno::PERM)
            if sys::prctl(PR_GET_SECCOMP, 0, 0) == Ok(SECCOMP_MODE_FILTER)
                && sys::session_keyring_id() == Err(Errno::PERM) =>
        {
            Ok(())
        }
        Err(e) => Err(Failure::new(Step::SessionKeyring, e)),
    }
}

/// `allow_nested_userns(false)`, when asked for: see [`nested_userns_limit`].
///
/// Without an init the program's task does it, just before the rlimits. With an init, the init
/// does it (and the program, cloned from it, starts in the nested namespace) before it makes
/// itself non-dumpable: the program's task shares the init's memory until `execve`, and while
/// that memory is non-dumpable the task's `/proc/self/{uid_map,gid_map,setgroups}` belong to
/// host root, so an unprivileged sandbox could not write its nested namespace's maps.
pub(crate) fn limit_nested_userns(plan: &HardenPlan<'_>) -> Result<(), Failure> {
    if let Some(nested) = &plan.nested_userns {
        nested_userns_limit(nested).map_err(fail(Step::NestedUserns))?;
    }
    Ok(())
}

/// bubblewrap's `--disable-userns`: limit the sandbox's user namespace to one child, then move
/// into that child, mapping the same ids.
/// With `mount_ns`, a new mount namespace comes with the nested user namespace: a copy of the
/// sandbox's that the nested one owns, in which every mount is locked (this is how the mounts
/// are locked then: the throwaway user namespace of [`crate::child::mount_lock`] would still
/// count against the limit of 1 for a while after it is gone, as the kernel frees it later).
///
/// Empty maps in the plan (the caller's hook wrote the sandbox's, [`crate::Sandbox::id_maps_by_caller`])
/// map the effective ids this task has now, read before it leaves for the nested namespace.
fn nested_userns_limit(nested: &NestedUserns) -> Result<(), Errno> {
    use rustix::thread::UnshareFlags;
    let proc = nested.proc_dir.as_fd();
    let (mut uid_line, mut gid_line) = (MapLine::new(), MapLine::new());
    let uid_map = match nested.uid_map.as_slice() {
        [] => uid_line.mapping_itself(rustix::process::geteuid().as_raw()),
        map => map,
    };
    let gid_map = match nested.gid_map.as_slice() {
        [] => gid_line.mapping_itself(rustix::process::getegid().as_raw()),
        map => map,
    };
    // The limit is the writer's user namespace's (a user sysctl follows the writer, not the
    // procfs).
    write_proc_at(proc, c"sys/user/max_user_namespaces", b"1")?;
    let flags = if nested.mount_ns {
        UnshareFlags::NEWUSER | UnshareFlags::NEWNS
    } else {
        UnshareFlags::NEWUSER
    };
    // SAFETY: new user and mount namespaces for this task only; it changes no memory and
    // shares no fd table.
    unsafe { rustix::thread::unshare_unsafe(flags) }?;
    write_proc_at(proc, c"self/setgroups", b"deny")?;
    write_proc_at(proc, c"self/uid_map", uid_map)?;
    write_proc_at(proc, c"self/gid_map", gid_map)
}

/// One line of an id map file that maps one id to itself, `"ID ID 1\n"`, rendered without
/// allocating.
struct MapLine {
    buf: [u8; 32],
    len: usize,
}

impl MapLine {
    const fn new() -> MapLine {
        MapLine { buf: [0; 32], len: 0 }
    }

    /// Appends `b` (the buffer holds the longest line, 2 × 10 digits and 4 more bytes).
    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len = self.len.saturating_add(1);
        }
    }

    /// Appends `id` in decimal.
    fn push_id(&mut self, id: u32) {
        let mut div = 1_000_000_000u32;
        let mut started = false;
        while div > 0 {
            let digit = id.checked_div(div).unwrap_or(0).checked_rem(10).unwrap_or(0) as u8;
            if digit != 0 || started || div == 1 {
                started = true;
                self.push(b'0'.saturating_add(digit));
            }
            div = div.checked_div(10).unwrap_or(0);
        }
    }

    /// The line that maps `id` to itself.
    fn mapping_itself(&mut self, id: u32) -> &[u8] {
        self.len = 0;
        self.push_id(id);
        self.push(b' ');
        self.push_id(id);
        self.push(b' ');
        self.push(b'1');
        self.push(b'\n');
        self.buf.get(..self.len).unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_macros, reason = "tests run in the test harness, never after clone")]
mod tests {
    use super::MapLine;

    #[test]
    fn a_map_line_maps_an_id_to_itself() {
        for (id, line) in [
            (0, "0 0 1\n"),
            (7, "7 7 1\n"),
            (10, "10 10 1\n"),
            (65534, "65534 65534 1\n"),
            (1_000_000_000, "1000000000 1000000000 1\n"),
            (u32::MAX, "4294967295 4294967295 1\n"),
        ] {
            assert_eq!(MapLine::new().mapping_itself(id), line.as_bytes(), "{id}");
        }
    }
}
