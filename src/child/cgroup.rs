//! The child's cgroup steps: joining the sandbox's leaves, then its cgroup namespace.

use super::fail;
use crate::error::{Failure, Step};
use crate::plan::Plan;
use rustix::io::Errno;
use std::os::fd::BorrowedFd;
use std::sync::atomic::Ordering;

/// Writes `0` (the writer itself) to `tasks` or `cgroup.procs`.
fn enter(procs: BorrowedFd<'_>) -> Result<(), Errno> {
    match rustix::io::write(procs, b"0")? {
        1 => Ok(()),
        _ => Err(Errno::IO),
    }
}

/// Into every v1 leaf (`tasks` fds the parent opened: moving is checked against the opener's
/// credentials, so this works from inside the new user namespace too), and into the cgroup2
/// leaf where `clone3` could not create the child there. Once the setup's last helper task (the
/// mount lock's) is gone and before the init creates the program's task: every task that
/// outlives the setup starts inside, the program from its first instruction. Not earlier: a
/// memory limit too small for the setup would have the OOM killer kill the child while its
/// helper lives, and leave the helper to the caller's reaper. (On cgroup2 the child is inside
/// from `clone`.)
pub(crate) fn join(plan: &Plan<'_>) -> Result<(), Failure> {
    let Some(cg) = &plan.cgroup else { return Ok(()) };
    for (i, procs) in cg.join.iter().enumerate() {
        if let Some(procs) = procs {
            enter(*procs).map_err(|e| Failure::new(Step::JoinCgroup, e).at(i))?;
        }
    }
    // clone3 (CLONE_CLEAR_SIGHAND with CLONE_INTO_CGROUP) placed it, or plain clone did not.
    if !plan.sighand_cleared.load(Ordering::Relaxed) {
        if let Some(procs) = cg.v2_procs {
            enter(procs).map_err(|e| Failure::new(Step::JoinCgroup, e).at(cg.v2_index))?;
        }
    }
    Ok(())
}

/// With [`crate::Namespaces::CGROUP`] and a cgroup: the namespace, made now that the child is
/// in its final cgroups, so the sandbox sees its own leaves as `/` (made at `clone`, it would
/// be rooted where v1 joins have not happened yet).
pub(crate) fn unshare_ns(plan: &Plan<'_>) -> Result<(), Failure> {
    if plan.cgroup.as_ref().is_some_and(|c| c.unshare_ns) {
        // SAFETY: a new cgroup namespace for this task only; no fd table or memory is unshared.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWCGROUP) }
            .map_err(fail(Step::UnshareCgroup))?;
    }
    Ok(())
}

/// With a mount namespace: every cgroup filesystem read-only in the sandbox, before the mounts
/// are locked (so the program cannot make them writable again): otherwise a program with the
/// caller's uid could move itself out of its cgroup by writing the caller's own `cgroup.procs`
/// (v1 checks nothing else). Its own cgroups can still be read.
pub(crate) fn read_only_cgroupfs(plan: &Plan<'_>) -> Result<(), Failure> {
    use rustix::fs::{Mode, OFlags};
    let Some(cg) = &plan.cgroup else { return Ok(()) };
    for (i, point) in cg.read_only.iter().enumerate() {
        let failed = |e| Failure::new(Step::ReadOnlyCgroupfs, e).at(i);
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rustix::fs::open(point.as_c_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(failed(e)),
        };
        super::fs::read_only_tree(std::os::fd::AsFd::as_fd(&fd), false).map_err(failed)?;
    }
    Ok(())
}
