//! What this kernel and user can use: [`Sandbox::check`](crate::Sandbox::check).

use crate::Namespaces;
use crate::error::Error;
use std::fmt;
use std::path::PathBuf;

/// What this kernel and user can use, found by trying each namespace for real (a probe child
/// that sets up and exits before `execve`). Returned by [`Sandbox::check`](crate::Sandbox::check).
#[derive(Debug)]
#[non_exhaustive]
pub struct Support {
    /// The running kernel's release (`uname -r`).
    pub kernel: String,
    /// Whether the caller is root (euid 0).
    pub root: bool,
    /// Each namespace alone (with `USER`, as an unprivileged caller needs), and the result.
    pub namespaces: Vec<(Namespaces, Result<(), Error>)>,
    /// The default sandbox ([`Namespaces::DEFAULT`] with a fresh `/proc`).
    pub default_sandbox: Result<(), Error>,
    /// What restricts unprivileged user namespaces (a sysctl or AppArmor), if anything.
    pub userns_restriction: Option<String>,
    /// `newuidmap`, when installed.
    pub newuidmap: Option<PathBuf>,
    /// `newgidmap`, when installed.
    pub newgidmap: Option<PathBuf>,
    /// The caller's ranges in `/etc/subuid` (start, count).
    pub subuid: Vec<(u32, u32)>,
    /// The caller's ranges in `/etc/subgid` (start, count).
    pub subgid: Vec<(u32, u32)>,
    /// The kernel features nscell uses where they exist and works around where they do not.
    pub features: crate::KernelFeatures,
    /// Which cgroup controllers this user can limit a sandbox with, and where
    /// ([`Sandbox::limits`](crate::Sandbox::limits)).
    pub cgroups: crate::cgroup::CgroupSupport,
    /// Each user-mode network backend ([`crate::net`]): the helper found, or why it cannot
    /// work here (not installed, `/dev/net/tun` not usable by this user, pasta without a
    /// default route). Found without starting it.
    pub networks: Vec<(&'static str, Result<PathBuf, String>)>,
}

impl Support {
    /// True when the default sandbox can run here.
    pub fn default_works(&self) -> bool {
        self.default_sandbox.is_ok()
    }

    /// True when namespace `ns` could be created.
    pub fn supports(&self, ns: Namespaces) -> bool {
        self.namespaces.iter().any(|(n, r)| *n == ns && r.is_ok())
    }

    /// True when id maps beyond the caller's own id can be written (root, or the helpers are
    /// installed and the user has subordinate ranges).
    pub fn multi_range_maps(&self) -> bool {
        self.root
            || (self.newuidmap.is_some()
                && self.newgidmap.is_some()
                && !self.subuid.is_empty()
                && !self.subgid.is_empty())
    }
}

impl fmt::Display for Support {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "kernel {}, running as {}",
            self.kernel,
            if self.root { "root" } else { "an unprivileged user" }
        )?;
        for (ns, r) in &self.namespaces {
            let name = ns.proc_name().unwrap_or("?");
            match r {
                Ok(()) => writeln!(f, "  {name:<7} yes")?,
                Err(e) => writeln!(f, "  {name:<7} no: {e}")?,
            }
        }
        match &self.default_sandbox {
            Ok(()) => writeln!(f, "default sandbox (user, pid, mount, uts, ipc, /proc): works")?,
            Err(e) => writeln!(f, "default sandbox: does not work: {e}")?,
        }
        if let Some(r) = &self.userns_restriction {
            writeln!(f, "restriction: {r}")?;
        }
        let show = |p: &Option<PathBuf>| {
            p.as_ref().map_or("not installed".into(), |p| p.display().to_string())
        };
        writeln!(f, "newuidmap: {}; newgidmap: {}", show(&self.newuidmap), show(&self.newgidmap))?;
        let ranges = |r: &[(u32, u32)]| {
            if r.is_empty() {
                "none".to_string()
            } else {
                r.iter().map(|(s, c)| format!("{s}+{c}")).collect::<Vec<_>>().join(", ")
            }
        };
        write!(f, "subordinate ids: uid {}; gid {}", ranges(&self.subuid), ranges(&self.subgid))?;
        if !self.multi_range_maps() {
            write!(f, " (only the caller's own id can be mapped)")?;
        }
        let k = &self.features;
        let yes = |b: bool| if b { "yes" } else { "no" };
        write!(
            f,
            "\nkernel features: clone3 {}, mount_setattr {}, Landlock ABI {}, last capability {}, \
             cgroup2 {}, CLONE_INTO_CGROUP {}",
            yes(k.clone3),
            yes(k.mount_setattr),
            k.landlock_abi,
            k.last_cap,
            k.cgroup2.as_ref().map_or("not mounted".into(), |p| format!("at {}", p.display())),
            yes(k.clone_into_cgroup),
        )?;
        write!(f, "\n{}", self.cgroups)?;
        for (name, r) in &self.networks {
            match r {
                Ok(p) => write!(f, "\nnetwork {name}: works ({})", p.display())?,
                Err(why) => write!(f, "\nnetwork {name}: no: {why}")?,
            }
        }
        Ok(())
    }
}
