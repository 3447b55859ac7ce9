//! Linux capabilities by name, as a set.
//!
//! See [capabilities(7)](https://man7.org/linux/man-pages/man7/capabilities.7.html). Inside a new
//! user namespace, root has every capability *over that namespace's resources*; the sets here
//! say which of them the program keeps.

bitflags::bitflags! {
    /// A set of Linux capabilities, one bit per capability number (`CAP_CHOWN` is bit 0).
    ///
    /// Parse a name as `CAP_NET_ADMIN` or `net_admin` with [`Capabilities::parse`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Capabilities: u64 {
        /// `CAP_CHOWN`
        const CHOWN = 1 << 0;
        /// `CAP_DAC_OVERRIDE`
        const DAC_OVERRIDE = 1 << 1;
        /// `CAP_DAC_READ_SEARCH`
        const DAC_READ_SEARCH = 1 << 2;
        /// `CAP_FOWNER`
        const FOWNER = 1 << 3;
        /// `CAP_FSETID`
        const FSETID = 1 << 4;
        /// `CAP_KILL`
        const KILL = 1 << 5;
        /// `CAP_SETGID`
        const SETGID = 1 << 6;
        /// `CAP_SETUID`
        const SETUID = 1 << 7;
        /// `CAP_SETPCAP`
        const SETPCAP = 1 << 8;
        /// `CAP_LINUX_IMMUTABLE`
        const LINUX_IMMUTABLE = 1 << 9;
        /// `CAP_NET_BIND_SERVICE`
        const NET_BIND_SERVICE = 1 << 10;
        /// `CAP_NET_BROADCAST`
        const NET_BROADCAST = 1 << 11;
        /// `CAP_NET_ADMIN`
        const NET_ADMIN = 1 << 12;
        /// `CAP_NET_RAW`
        const NET_RAW = 1 << 13;
        /// `CAP_IPC_LOCK`
        const IPC_LOCK = 1 << 14;
        /// `CAP_IPC_OWNER`
        const IPC_OWNER = 1 << 15;
        /// `CAP_SYS_MODULE`
        const SYS_MODULE = 1 << 16;
        /// `CAP_SYS_RAWIO`
        const SYS_RAWIO = 1 << 17;
        /// `CAP_SYS_CHROOT`
        const SYS_CHROOT = 1 << 18;
        /// `CAP_SYS_PTRACE`
        const SYS_PTRACE = 1 << 19;
        /// `CAP_SYS_PACCT`
        const SYS_PACCT = 1 << 20;
        /// `CAP_SYS_ADMIN`: mounts, `sethostname`, and much more.
        const SYS_ADMIN = 1 << 21;
        /// `CAP_SYS_BOOT`
        const SYS_BOOT = 1 << 22;
        /// `CAP_SYS_NICE`
        const SYS_NICE = 1 << 23;
        /// `CAP_SYS_RESOURCE`
        const SYS_RESOURCE = 1 << 24;
        /// `CAP_SYS_TIME`
        const SYS_TIME = 1 << 25;
        /// `CAP_SYS_TTY_CONFIG`
        const SYS_TTY_CONFIG = 1 << 26;
        /// `CAP_MKNOD`
        const MKNOD = 1 << 27;
        /// `CAP_LEASE`
        const LEASE = 1 << 28;
        /// `CAP_AUDIT_WRITE`
        const AUDIT_WRITE = 1 << 29;
        /// `CAP_AUDIT_CONTROL`
        const AUDIT_CONTROL = 1 << 30;
        /// `CAP_SETFCAP`
        const SETFCAP = 1 << 31;
        /// `CAP_MAC_OVERRIDE`
        const MAC_OVERRIDE = 1 << 32;
        /// `CAP_MAC_ADMIN`
        const MAC_ADMIN = 1 << 33;
        /// `CAP_SYSLOG`
        const SYSLOG = 1 << 34;
        /// `CAP_WAKE_ALARM`
        const WAKE_ALARM = 1 << 35;
        /// `CAP_BLOCK_SUSPEND`
        const BLOCK_SUSPEND = 1 << 36;
        /// `CAP_AUDIT_READ`
        const AUDIT_READ = 1 << 37;
        /// `CAP_PERFMON`
        const PERFMON = 1 << 38;
        /// `CAP_BPF`
        const BPF = 1 << 39;
        /// `CAP_CHECKPOINT_RESTORE`
        const CHECKPOINT_RESTORE = 1 << 40;
    }
}

impl Capabilities {
    /// Every capability this crate knows (`CAP_CHOWN` to `CAP_CHECKPOINT_RESTORE`), as
    /// `drop_capabilities(Capabilities::ALL)` uses it.
    pub const ALL: Capabilities = Capabilities::all();

    /// Parses `CAP_NET_ADMIN`, `cap_net_admin`, `NET_ADMIN` or `net_admin`; `ALL` for every one.
    pub fn parse(name: &str) -> Option<Capabilities> {
        let upper = name.to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        if bare == "ALL" {
            return Some(Capabilities::ALL);
        }
        Capabilities::from_name(bare)
    }

    /// The `CAP_…` names of the capabilities in the set.
    pub fn names(self) -> impl Iterator<Item = String> {
        self.iter_names().map(|(n, _)| format!("CAP_{n}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_in_every_spelling() {
        for n in ["CAP_NET_ADMIN", "cap_net_admin", "NET_ADMIN", "net_admin"] {
            assert_eq!(Capabilities::parse(n), Some(Capabilities::NET_ADMIN), "{n}");
        }
        assert_eq!(Capabilities::parse("all"), Some(Capabilities::ALL));
        assert_eq!(Capabilities::parse("CAP_NOPE"), None);
        assert_eq!(Capabilities::SYS_ADMIN.bits(), 1 << 21);
        assert_eq!(Capabilities::ALL.bits(), (1 << 41) - 1);
    }

    #[test]
    fn names_round_trip() {
        let set = Capabilities::NET_ADMIN | Capabilities::CHOWN;
        let names: Vec<String> = set.names().collect();
        assert_eq!(names, ["CAP_CHOWN", "CAP_NET_ADMIN"]);
    }
}
