//! Landlock: path and TCP port rules, built into a ruleset fd before `clone`.
//!
//! See [landlock(7)](https://man7.org/linux/man-pages/man7/landlock.7.html). The parent builds
//! the ruleset with the [`landlock`](https://docs.rs/landlock) crate (opening each path `O_PATH`), and the child only calls
//! `landlock_restrict_self` on it just before `execve`, so nothing is allocated after `clone`.
//! Paths mean what the program sees: when the child mounts a new root or a fresh /proc, it opens
//! them itself (raw `open` and `landlock_add_rule`, after its mounts); otherwise the parent opens
//! them. A rule names the inode, so it also covers that file or directory wherever a bind mount
//! shows it.

use crate::error::Error;
use landlock::{
    ABI, Access as _, AccessFs, AccessNet, BitFlags, CompatLevel as LlCompat, Compatible, NetPort,
    PathBeneath, Ruleset, RulesetAttr, RulesetCreatedAttr,
};
use rustix::io::Errno;
use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// The highest Landlock ABI whose filesystem rights nscell asks for (Linux 6.10: `IOCTL_DEV`).
const FS_ABI: ABI = ABI::V5;
/// The Landlock ABI that brought TCP port rules (Linux 6.7).
const NET_ABI: ABI = ABI::V4;

/// What a path rule allows beneath its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// Read files and list directories.
    ReadOnly,
    /// Read, list and execute.
    Execute,
    /// Everything: read, write, create, remove, rename, truncate, execute, device ioctls.
    ReadWrite,
}

impl Access {
    fn rights(self) -> BitFlags<AccessFs> {
        match self {
            Access::ReadOnly => AccessFs::ReadFile | AccessFs::ReadDir,
            Access::Execute => AccessFs::ReadFile | AccessFs::ReadDir | AccessFs::Execute,
            Access::ReadWrite => AccessFs::from_all(FS_ABI),
        }
    }
}

/// How much of the requested Landlock policy the running kernel enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Enforcement {
    /// Every requested right is enforced.
    Full,
    /// Landlock is enforced, but this kernel lacks some requested rights (for example TCP port
    /// rules before Linux 6.7, or truncation before 6.2): those are not restricted.
    Partial,
    /// This kernel has no Landlock (or it is disabled at boot): nothing is restricted.
    None,
}

/// What Landlock enforced for a spawn, as [`Child::landlock_status`](crate::Child::landlock_status)
/// reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// How much of the policy is enforced.
    pub enforcement: Enforcement,
    /// The running kernel's Landlock ABI version (0: none).
    pub kernel_abi: i32,
}

/// How much of the requested Landlock policy a spawn needs, as rust-landlock's `CompatLevel`
/// grades it ([`Sandbox::landlock_compat_level`](crate::Sandbox::landlock_compat_level)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CompatLevel {
    /// Enforce what the running kernel has, and spawn anyway: the
    /// [`Status`] the [`Child`](crate::Child) carries says how much that was (the default).
    #[default]
    BestEffort,
    /// Fail the spawn with [`Error::Unsupported`] unless the
    /// running kernel enforces every requested right.
    HardRequirement,
}

/// A path rule added in the child, once a new root is in place, so that the path means what the
/// sandbox sees (the caller's view may not have it, or have something else there).
#[derive(Debug)]
pub(crate) struct ChildRule {
    pub path: CString,
    /// The rights for a directory, and for anything else (directory rights on a file are refused).
    pub dir_rights: u64,
    pub file_rights: u64,
}

/// The filesystem rights that apply to a file that is not a directory.
fn file_rights() -> BitFlags<AccessFs> {
    AccessFs::ReadFile
        | AccessFs::WriteFile
        | AccessFs::Execute
        | AccessFs::Truncate
        | AccessFs::IoctlDev
}

#[derive(Debug, Clone, Default)]
pub(crate) struct LandlockConfig {
    pub paths: Vec<(PathBuf, Access)>,
    pub bind_ports: Option<Vec<u16>>,
    pub connect_ports: Option<Vec<u16>>,
    pub compat: CompatLevel,
}

/// Why a ruleset could not be built: a path rule's path, or Landlock itself.
enum BuildError {
    Open(PathBuf, Errno),
    Ruleset(String),
}

impl LandlockConfig {
    pub fn is_active(&self) -> bool {
        !self.paths.is_empty() || self.bind_ports.is_some() || self.connect_ports.is_some()
    }

    /// Builds the ruleset fd (none when the kernel enforces nothing) and says what it enforces.
    /// With `paths_in_child` (the child mounts a new root or a fresh /proc), the path rules are
    /// not opened here but returned, for the child to add in its own view of the filesystem.
    pub fn prepare(
        &self,
        paths_in_child: bool,
        cwd: Option<&std::path::Path>,
    ) -> Result<(Option<OwnedFd>, Status, Vec<ChildRule>), Error> {
        let (fd, status) = self.prepare_ruleset(paths_in_child, cwd)?;
        if !paths_in_child || fd.is_none() {
            return Ok((fd, status, Vec::new()));
        }
        // The rights the ruleset handles: what nscell asks for, as far as this kernel has them.
        let handled = AccessFs::from_all(FS_ABI) & AccessFs::from_all(ABI::from(status.kernel_abi));
        let mut rules = Vec::new();
        for (path, access) in &self.paths {
            let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
                Error::invalid(format!("Landlock path {} contains a NUL byte", path.display()))
            })?;
            let rights = access.rights() & handled;
            rules.push(ChildRule {
                path: c,
                dir_rights: rights.bits(),
                file_rights: (rights & file_rights()).bits(),
            });
        }
        Ok((fd, status, rules))
    }

    fn prepare_ruleset(
        &self,
        paths_in_child: bool,
        cwd: Option<&std::path::Path>,
    ) -> Result<(Option<OwnedFd>, Status), Error> {
        let kernel_abi = crate::kernel::landlock_abi();
        // First as a hard requirement: success means everything is enforced.
        match self.build(LlCompat::HardRequirement, paths_in_child, cwd) {
            Ok(fd) => {
                return Ok((fd, Status { enforcement: Enforcement::Full, kernel_abi }));
            }
            // A path that cannot be opened is the caller's mistake on any kernel.
            Err(BuildError::Open(path, e)) => {
                return Err(Error::setup(
                    crate::error::Step::Landlock,
                    Some(path),
                    e.raw_os_error(),
                ));
            }
            Err(BuildError::Ruleset(e)) if self.compat == CompatLevel::HardRequirement => {
                return Err(Error::Unsupported {
                    feature: "the requested Landlock policy",
                    reason: format!(
                        "{e} (kernel Landlock ABI {kernel_abi}; TCP rules need Linux 6.7, all \
                         filesystem rights 6.10, and Landlock enabled in the lsm= boot option)"
                    ),
                });
            }
            Err(_) => {}
        }
        let fd = self.build(LlCompat::BestEffort, paths_in_child, cwd).map_err(|e| match e {
            BuildError::Open(path, e) => {
                Error::setup(crate::error::Step::Landlock, Some(path), e.raw_os_error())
            }
            BuildError::Ruleset(reason) => Error::Unsupported { feature: "Landlock", reason },
        })?;
        let enforcement = if fd.is_some() { Enforcement::Partial } else { Enforcement::None };
        Ok((fd, Status { enforcement, kernel_abi }))
    }

    fn build(
        &self,
        level: LlCompat,
        paths_in_child: bool,
        cwd: Option<&std::path::Path>,
    ) -> Result<Option<OwnedFd>, BuildError> {
        let err = |e: landlock::RulesetError| BuildError::Ruleset(e.to_string());
        let mut ruleset = Ruleset::default().set_compatibility(level);
        if !self.paths.is_empty() {
            ruleset = ruleset.handle_access(AccessFs::from_all(FS_ABI)).map_err(err)?;
        }
        if self.bind_ports.is_some() {
            ruleset = ruleset.handle_access(AccessNet::BindTcp).map_err(err)?;
        }
        if self.connect_ports.is_some() {
            ruleset = ruleset.handle_access(AccessNet::ConnectTcp).map_err(err)?;
        }
        let _ = NET_ABI;
        let mut created = ruleset.create().map_err(err)?;
        for (path, access) in self.paths.iter().filter(|_| !paths_in_child) {
            let open = || {
                use rustix::fs::{FileType, Mode, OFlags};
                // Where the program will run: a relative path is relative to its directory.
                let path = cwd.map_or_else(|| path.clone(), |dir| dir.join(path));
                let fd = rustix::fs::open(&path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())?;
                let mode = rustix::fs::fstat(&fd)?.st_mode;
                Ok::<_, Errno>((fd, FileType::from_raw_mode(mode) == FileType::Directory))
            };
            let (fd, is_dir) = open().map_err(|e| BuildError::Open(path.clone(), e))?;
            let mut rights = access.rights();
            if !is_dir {
                // Directory rights on a file are refused by the kernel.
                rights &= file_rights();
            }
            created = created.add_rule(PathBeneath::new(fd, rights)).map_err(err)?;
        }
        for (ports, access) in
            [(&self.bind_ports, AccessNet::BindTcp), (&self.connect_ports, AccessNet::ConnectTcp)]
        {
            for &port in ports.iter().flatten() {
                created = created.add_rule(NetPort::new(port, access)).map_err(err)?;
            }
        }
        Ok(created.into())
    }
}
