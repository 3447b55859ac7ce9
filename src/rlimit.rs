//! Resource limits: [`Resource`] and [`INFINITY`], for
//! [`Sandbox::rlimit`](crate::Sandbox::rlimit).
//!
//! The child sets each limit on itself with
//! [`prlimit(2)`](https://man7.org/linux/man-pages/man2/prlimit.2.html) just before `execve`
//! (after the passed fds are in place, before capabilities are dropped).

/// A resource limit, as [getrlimit(2)](https://man7.org/linux/man-pages/man2/getrlimit.2.html)
/// names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Resource {
    /// `RLIMIT_AS`: the size of the address space, in bytes.
    #[doc(alias = "RLIMIT_AS")]
    As,
    /// `RLIMIT_CORE`: the size of a core dump, in bytes.
    #[doc(alias = "RLIMIT_CORE")]
    Core,
    /// `RLIMIT_CPU`: CPU time, in seconds (`SIGXCPU` at the soft limit, `SIGKILL` at the hard).
    #[doc(alias = "RLIMIT_CPU")]
    Cpu,
    /// `RLIMIT_FSIZE`: the size of a file the process writes, in bytes (`SIGXFSZ`, `EFBIG`).
    #[doc(alias = "RLIMIT_FSIZE")]
    Fsize,
    /// `RLIMIT_NOFILE`: one more than the highest fd number the process may open.
    #[doc(alias = "RLIMIT_NOFILE")]
    Nofile,
    /// `RLIMIT_NPROC`: the number of processes, the program included, whose real uid is the
    /// program's *and that run in the sandbox's user namespace* (or in one nested in it).
    ///
    /// The kernel counts this limit per user namespace: the uid's processes on the host, and
    /// those in other sandboxes, do not count against it (measured on Linux 6.18: with
    /// `NPROC=25` the program forks 24 children while its uid runs 20 other processes on the
    /// host). The uid's processes on the host as a whole stay bounded by the limit the caller
    /// had at spawn time, which the user namespace keeps from its creation. Without
    /// [`Namespaces::USER`](crate::Namespaces::USER) every process of the real uid on the host
    /// counts. Not enforced for host uid 0, nor for a task with `CAP_SYS_RESOURCE` or
    /// `CAP_SYS_ADMIN` in the initial user namespace (a kernel rule): in a sandbox of host root
    /// it applies only once the program switches to another mapped uid.
    #[doc(alias = "RLIMIT_NPROC")]
    Nproc,
    /// `RLIMIT_STACK`: the size of the main stack, in bytes.
    #[doc(alias = "RLIMIT_STACK")]
    Stack,
    /// `RLIMIT_MEMLOCK`: memory locked with `mlock`, in bytes.
    #[doc(alias = "RLIMIT_MEMLOCK")]
    Memlock,
    /// `RLIMIT_DATA`: the data segment's size.
    #[doc(alias = "RLIMIT_DATA")]
    Data,
    /// `RLIMIT_LOCKS`: file locks.
    #[doc(alias = "RLIMIT_LOCKS")]
    Locks,
    /// `RLIMIT_MSGQUEUE`: bytes in POSIX message queues.
    #[doc(alias = "RLIMIT_MSGQUEUE")]
    Msgqueue,
    /// `RLIMIT_NICE`: the ceiling of the nice value.
    #[doc(alias = "RLIMIT_NICE")]
    Nice,
    /// `RLIMIT_RTPRIO`: the real-time priority.
    #[doc(alias = "RLIMIT_RTPRIO")]
    Rtprio,
    /// `RLIMIT_RTTIME`: CPU time under real-time scheduling, µs.
    #[doc(alias = "RLIMIT_RTTIME")]
    Rttime,
    /// `RLIMIT_SIGPENDING`: queued signals.
    #[doc(alias = "RLIMIT_SIGPENDING")]
    Sigpending,
    /// `RLIMIT_RSS`: resident set (ignored by Linux).
    #[doc(alias = "RLIMIT_RSS")]
    Rss,
}

impl Resource {
    /// Parses `NOFILE`, `nofile` or `RLIMIT_NOFILE` (and so on).
    pub fn parse(name: &str) -> Option<Resource> {
        let upper = name.to_ascii_uppercase();
        Some(match upper.strip_prefix("RLIMIT_").unwrap_or(&upper) {
            "AS" => Resource::As,
            "CORE" => Resource::Core,
            "CPU" => Resource::Cpu,
            "FSIZE" => Resource::Fsize,
            "NOFILE" => Resource::Nofile,
            "NPROC" => Resource::Nproc,
            "STACK" => Resource::Stack,
            "MEMLOCK" => Resource::Memlock,
            "DATA" => Resource::Data,
            "LOCKS" => Resource::Locks,
            "MSGQUEUE" => Resource::Msgqueue,
            "NICE" => Resource::Nice,
            "RTPRIO" => Resource::Rtprio,
            "RTTIME" => Resource::Rttime,
            "SIGPENDING" => Resource::Sigpending,
            "RSS" => Resource::Rss,
            _ => return None,
        })
    }

    pub(crate) fn rustix(self) -> rustix::process::Resource {
        use rustix::process::Resource as R;
        match self {
            Resource::As => R::As,
            Resource::Core => R::Core,
            Resource::Cpu => R::Cpu,
            Resource::Fsize => R::Fsize,
            Resource::Nofile => R::Nofile,
            Resource::Nproc => R::Nproc,
            Resource::Stack => R::Stack,
            Resource::Memlock => R::Memlock,
            Resource::Data => R::Data,
            Resource::Locks => R::Locks,
            Resource::Msgqueue => R::Msgqueue,
            Resource::Nice => R::Nice,
            Resource::Rtprio => R::Rtprio,
            Resource::Rttime => R::Rttime,
            Resource::Sigpending => R::Sigpending,
            Resource::Rss => R::Rss,
        }
    }
}

/// The value meaning "no limit", for a soft or a hard limit.
#[doc(alias = "RLIM_INFINITY")]
pub const INFINITY: u64 = u64::MAX;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_parse() {
        assert_eq!(Resource::parse("nofile"), Some(Resource::Nofile));
        assert_eq!(Resource::parse("RLIMIT_AS"), Some(Resource::As));
        assert_eq!(Resource::parse("nope"), None);
    }
}
