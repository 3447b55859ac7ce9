//! What the running kernel offers this process, each feature found out once (when first asked
//! for) and cached: the one place that asks. It backs the spawn paths' choices, [`crate::Sandbox::check`] and (next) an OCI
//! `features` answer.

use crate::sys;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// The kernel features nscell uses where they exist and works around where they do not.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KernelFeatures {
    /// `clone3(2)` (Linux 5.3), and no seccomp policy refusing it: with it, the kernel resets
    /// the caller's signal handlers in the child (`CLONE_CLEAR_SIGHAND`).
    pub clone3: bool,
    /// `mount_setattr(2)` (Linux 5.12): read-only and other flags set on a whole mount tree at
    /// once, before it is attached (else a remount of each mount once it is).
    pub mount_setattr: bool,
    /// The Landlock ABI version (0: no Landlock, or disabled at boot).
    pub landlock_abi: i32,
    /// The highest capability number (`/proc/sys/kernel/cap_last_cap`).
    pub last_cap: u32,
    /// Where the cgroup2 hierarchy is mounted (a hybrid host has one beside its v1
    /// hierarchies), if it is.
    pub cgroup2: Option<PathBuf>,
    /// `CLONE_INTO_CGROUP` (Linux 5.7, through `clone3`): a child born in its cgroup.
    pub clone_into_cgroup: bool,
}

/// Each feature is probed the first time something asks for it, then cached for the life of
/// the process: a spawn pays only for what its plan needs (the `nscell` binary spawns once per
/// process, so it never reads `mountinfo` for a cgroup2 mount it does not use).
macro_rules! cached {
    ($(#[$doc:meta])* fn $name:ident() -> $ty:ty $probe:block) => {
        $(#[$doc])*
        pub(crate) fn $name() -> $ty {
            static CACHE: OnceLock<$ty> = OnceLock::new();
            CACHE.get_or_init(|| $probe).clone()
        }
    };
}

cached! {
    /// `clone3` is there and this process may call it.
    fn clone3() -> bool { sys::clone3_available() }
}
cached! {
    /// `mount_setattr` is there: without a dirfd it fails with `EBADF` where it exists and
    /// `ENOSYS` where it does not.
    fn mount_setattr() -> bool {
        sys::mount_setattr(-1, c"", sys::AT_EMPTY_PATH, 0) != Err(rustix::io::Errno::NOSYS)
    }
}
cached! {
    /// The Landlock ABI version (0: none).
    fn landlock_abi() -> i32 { sys::landlock_abi() }
}
cached! {
    /// The highest capability number.
    fn last_cap() -> u32 {
        last_cap_in(std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").ok())
    }
}
cached! {
    /// Where the cgroup2 hierarchy is mounted.
    fn cgroup2() -> Option<PathBuf> {
        std::fs::read_to_string("/proc/self/mountinfo").ok().and_then(|m| cgroup2_in(&m))
    }
}

/// Every feature, for [`crate::Sandbox::check`] (and next, an OCI `features` answer).
impl KernelFeatures {
    /// What this kernel offers, detected once per process and cached (what
    /// [`Sandbox::check`](crate::Sandbox::check) reports, without its probes; the OCI
    /// runtime's `features`).
    pub fn detect() -> KernelFeatures {
        features()
    }
}

pub(crate) fn features() -> KernelFeatures {
    let release = rustix::system::uname().release().to_string_lossy().into_owned();
    KernelFeatures {
        clone3: clone3(),
        mount_setattr: mount_setattr(),
        landlock_abi: landlock_abi(),
        last_cap: last_cap(),
        cgroup2: cgroup2(),
        clone_into_cgroup: clone3() && release_at_least(&release, (5, 7)),
    }
}

/// Set once `clone3` failed where the probe found it (a kernel without `CLONE_CLEAR_SIGHAND`,
/// a seccomp policy that refuses some of its uses): spawns use `clone` from then on.
static CLONE3_REFUSED: AtomicBool = AtomicBool::new(false);

/// Whether a spawn should try `clone3` first.
pub(crate) fn clone3_usable() -> bool {
    clone3() && !CLONE3_REFUSED.load(Ordering::Relaxed)
}

/// A spawn found `clone3` refused after all.
pub(crate) fn clone3_refused() {
    CLONE3_REFUSED.store(true, Ordering::Relaxed);
}

/// `cap_last_cap`'s number (40 when it cannot be read: the kernel of this writing), at most 63.
fn last_cap_in(file: Option<String>) -> u32 {
    file.and_then(|s| s.trim().parse().ok()).unwrap_or(40).min(63)
}

/// The mount point of the first cgroup2 filesystem in a `mountinfo` text.
fn cgroup2_in(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (mount, fs) = line.split_once(" - ")?;
        if fs.split(' ').next()? != "cgroup2" {
            return None;
        }
        let point = mount.split(' ').nth(4)?;
        Some(PathBuf::from(point.replace("\\040", " ")))
    })
}

/// Whether a release string (`6.18.44-fc`) is at least `major.minor`.
fn release_at_least(release: &str, (major, minor): (u32, u32)) -> bool {
    let mut parts = release.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse().ok());
    let (got_major, got_minor): (u32, u32) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (got_major, got_minor) >= (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_compare_by_major_then_minor() {
        assert!(release_at_least("6.18.44-fc-v657", (5, 7)));
        assert!(release_at_least("5.7.0", (5, 7)));
        assert!(!release_at_least("5.6.19", (5, 7)));
        assert!(!release_at_least("4.19.0-amd64", (5, 7)));
        assert!(!release_at_least("", (5, 7)));
    }

    #[test]
    fn cgroup2_is_found_beside_v1_hierarchies() {
        let mi = "30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n\
                  31 25 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_in(mi), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(cgroup2_in("30 25 0:26 / /a rw - cgroup cgroup rw\n"), None);
        assert_eq!(
            cgroup2_in("31 25 0:27 / /my\\040cg rw - cgroup2 none rw\n"),
            Some("/my cg".into())
        );
    }

    #[test]
    fn last_cap_has_a_fallback_and_a_ceiling() {
        assert_eq!(last_cap_in(Some("40\n".into())), 40);
        assert_eq!(last_cap_in(Some("99".into())), 63);
        assert_eq!(last_cap_in(None), 40);
    }

    /// The probes agree with what this kernel does (6.x here: everything is there).
    #[test]
    fn the_probes_match_this_kernel() {
        let f = features();
        let release = rustix::system::uname().release().to_string_lossy().into_owned();
        if release_at_least(&release, (5, 12)) {
            assert!(f.mount_setattr, "{f:?}");
        }
        assert_eq!(f.landlock_abi, sys::landlock_abi());
        assert!(f.last_cap >= 36, "{f:?}");
        let has_cgroup2 =
            std::fs::read_to_string("/proc/self/mountinfo").unwrap().contains(" - cgroup2 ");
        assert_eq!(f.cgroup2.is_some(), has_cgroup2, "{f:?}");
    }
}
