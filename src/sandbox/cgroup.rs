//! The cgroup setter of [`Sandbox`] ([`crate::cgroup`]).

use crate::Sandbox;
use crate::cgroup::Limits;

impl Sandbox {
    /// Gives the sandbox a cgroup of its own with these limits (memory, tasks, CPU, cpuset):
    /// see [`crate::cgroup`] for where it is made and what holds. The program is inside it
    /// from its first instruction; when the sandbox ends, everything in the cgroup is killed
    /// (also what the program left in the background without a PID namespace) and the cgroup
    /// is removed. [`Child::cgroup`](crate::Child::cgroup) reads its usage while it runs and
    /// freezes or kills it; [`WaitInfo::cgroup`](crate::WaitInfo::cgroup) has the final count,
    /// and [`WaitInfo::oom_killed`](crate::WaitInfo::oom_killed) says whether the OOM killer
    /// ended it.
    ///
    /// With [`Namespaces::CGROUP`](crate::Namespaces::CGROUP) the sandbox sees its own cgroup
    /// as `/`. With [`Namespaces::MOUNT`](crate::Namespaces::MOUNT), every cgroup filesystem
    /// is read-only in the sandbox, so the program cannot move itself out of its cgroup.
    pub fn limits(&mut self, limits: Limits) -> &mut Self {
        self.limits = Some(limits);
        self
    }
}
