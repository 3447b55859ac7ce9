//! The set of namespaces a sandbox gets.

bitflags::bitflags! {
    /// Which new namespaces the program runs in.
    ///
    /// Each flag is the kernel's `CLONE_NEW*` bit. The default set of a [`Sandbox`](crate::Sandbox)
    /// is [`Namespaces::DEFAULT`]: `USER | PID | MOUNT | UTS | IPC`.
    ///
    /// Unprivileged, the kernel refuses every namespace but `USER` unless a user namespace is
    /// created at the same time; see [`Sandbox::namespaces`](crate::Sandbox::namespaces) for how
    /// nscell handles that.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Namespaces: u32 {
        /// A new user namespace: its own uid and gid numbering, with the caller mapped to root by
        /// default. See [user_namespaces(7)](https://man7.org/linux/man-pages/man7/user_namespaces.7.html).
        #[doc(alias = "CLONE_NEWUSER")]
        const USER = 0x1000_0000;
        /// A new PID namespace: the program is PID 1 and sees only its descendants (once `/proc`
        /// is remounted). PID 1 gets no signal it has no handler for from inside its namespace,
        /// and only SIGKILL and SIGSTOP from outside. See
        /// [pid_namespaces(7)](https://man7.org/linux/man-pages/man7/pid_namespaces.7.html).
        #[doc(alias = "CLONE_NEWPID")]
        const PID = 0x2000_0000;
        /// A new mount namespace: mounts made inside are invisible outside. nscell makes all
        /// mounts private first so nothing propagates back to the host. See
        /// [mount_namespaces(7)](https://man7.org/linux/man-pages/man7/mount_namespaces.7.html).
        #[doc(alias = "CLONE_NEWNS")]
        const MOUNT = 0x0002_0000;
        /// A new UTS namespace: its own hostname and NIS domain name. See
        /// [uts_namespaces(7)](https://man7.org/linux/man-pages/man7/uts_namespaces.7.html).
        #[doc(alias = "CLONE_NEWUTS")]
        const UTS = 0x0400_0000;
        /// A new IPC namespace: its own System V IPC objects and POSIX message queues. See
        /// [ipc_namespaces(7)](https://man7.org/linux/man-pages/man7/ipc_namespaces.7.html).
        #[doc(alias = "CLONE_NEWIPC")]
        const IPC = 0x0800_0000;
        /// A new network namespace: only a loopback interface, which nscell brings up. See
        /// [network_namespaces(7)](https://man7.org/linux/man-pages/man7/network_namespaces.7.html).
        #[doc(alias = "CLONE_NEWNET")]
        const NET = 0x4000_0000;
        /// A new cgroup namespace: the current cgroup appears as the root of `/proc/self/cgroup`.
        /// See [cgroup_namespaces(7)](https://man7.org/linux/man-pages/man7/cgroup_namespaces.7.html).
        #[doc(alias = "CLONE_NEWCGROUP")]
        const CGROUP = 0x0200_0000;
        /// A new time namespace (Linux 5.6+): its own offsets for `CLOCK_MONOTONIC` and
        /// `CLOCK_BOOTTIME`. The kernel's bit does not fit `clone()`'s flags, so nscell calls
        /// `unshare(CLONE_NEWTIME)` in the child and the program enters the namespace at `execve`.
        /// See [time_namespaces(7)](https://man7.org/linux/man-pages/man7/time_namespaces.7.html).
        #[doc(alias = "CLONE_NEWTIME")]
        const TIME = 0x0000_0080;
    }
}

impl Namespaces {
    /// The default set, used when [`Sandbox::namespaces`](crate::Sandbox::namespaces) is not called:
    /// `USER | PID | MOUNT | UTS | IPC`.
    pub const DEFAULT: Namespaces = Namespaces::USER
        .union(Namespaces::PID)
        .union(Namespaces::MOUNT)
        .union(Namespaces::UTS)
        .union(Namespaces::IPC);

    /// The bits that go into `clone()`'s flags (all but `TIME`).
    pub(crate) fn clone_flags(self) -> i32 {
        self.difference(Namespaces::TIME).bits() as i32
    }

    /// The name of the namespace as it appears under `/proc/PID/ns/` (only for single flags).
    pub fn proc_name(self) -> Option<&'static str> {
        Some(match self {
            Namespaces::USER => "user",
            Namespaces::PID => "pid",
            Namespaces::MOUNT => "mnt",
            Namespaces::UTS => "uts",
            Namespaces::IPC => "ipc",
            Namespaces::NET => "net",
            Namespaces::CGROUP => "cgroup",
            Namespaces::TIME => "time",
            _ => return None,
        })
    }
}

impl Default for Namespaces {
    fn default() -> Self {
        Namespaces::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_the_kernels() {
        assert_eq!(Namespaces::USER.bits(), libc::CLONE_NEWUSER as u32);
        assert_eq!(Namespaces::PID.bits(), libc::CLONE_NEWPID as u32);
        assert_eq!(Namespaces::MOUNT.bits(), libc::CLONE_NEWNS as u32);
        assert_eq!(Namespaces::UTS.bits(), libc::CLONE_NEWUTS as u32);
        assert_eq!(Namespaces::IPC.bits(), libc::CLONE_NEWIPC as u32);
        assert_eq!(Namespaces::NET.bits(), libc::CLONE_NEWNET as u32);
        assert_eq!(Namespaces::CGROUP.bits(), libc::CLONE_NEWCGROUP as u32);
        assert_eq!(Namespaces::TIME.bits(), 0x80);
        assert_eq!(Namespaces::all().iter().count(), 8);
    }

    #[test]
    fn time_never_reaches_clone_flags() {
        let flags = Namespaces::all().clone_flags();
        assert_eq!(flags & 0xff, 0, "the low byte of clone() flags is the exit signal");
        assert_eq!(flags as u32 | 0x80, Namespaces::all().bits());
    }

    #[test]
    fn proc_names() {
        let names: Vec<_> = Namespaces::all().iter().map(|n| n.proc_name().unwrap()).collect();
        assert_eq!(names.len(), 8);
        assert_eq!(Namespaces::DEFAULT.proc_name(), None);
    }
}
