//! The child's cgroup steps: joining the sandbox's leaves, then its cgroup namespace.

use super::fail;
use crate::error::{Failure, Step};
use crate::plan::Plan;
use rustix::io::Errno;
use std::os::fd::BorrowedFd;
use std::sync::atomic::Ordering;

/// Writes `0` (the writer itself) to `cgroup.procs`.
fn enter(procs: BorrowedFd<'_>) -> Result<(), Errno> {
    match rustix::io::write(procs, b"0")? {
        1 => Ok(()),
        _ => Err(Errno::IO),
    }
}

/// The sandbox's first step after the death tie and closing the parent's end: into every v1
/// leaf (fds the parent opened: moving is checked against the opener's credentials, so this
/// works from inside the new user namespace too), and into the cgroup2 leaf where `clone3` could
/// not create the child there. Before any task of the sandbox's is created (the mount-lock
/// helper, the init's program), so every one of them starts inside.
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
