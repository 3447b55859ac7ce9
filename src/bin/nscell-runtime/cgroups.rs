//! `linux.cgroupsPath`'s directories: nscell makes the container's cgroup as a leaf below the
//! path, which must exist; runc makes the whole path. The runtime makes what is missing of
//! it, in every mounted cgroup hierarchy, records what it made, and `delete` removes that
//! again (deepest first) after the container's own leaves.

use crate::Result;
use std::path::{Path, PathBuf};

/// A cgroup hierarchy: its mount point, its root (mountinfo field 4) and the caller's cgroup
/// in it (`/proc/self/cgroup`).
#[derive(Debug, PartialEq)]
pub struct Hierarchy {
    pub mount: PathBuf,
    pub root: PathBuf,
    pub own: PathBuf,
}

/// The cgroup hierarchies in `mountinfo` with the caller's cgroups from `self_cgroup`.
pub fn hierarchies(mountinfo: &str, self_cgroup: &str) -> Vec<Hierarchy> {
    let own_of = |v2: bool, opts: &str| -> Option<PathBuf> {
        self_cgroup.lines().find_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctl, path) = (it.next()?, it.next()?, it.next()?);
            let hit = if v2 {
                ctl.is_empty()
            } else {
                !ctl.is_empty() && ctl.split(',').all(|c| opts.split(',').any(|o| o == c))
            };
            hit.then(|| PathBuf::from(path))
        })
    };
    mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            let fstype = *r.first()?;
            let v2 = match fstype {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            let own = own_of(v2, r.get(2).copied().unwrap_or(""))?;
            Some(Hierarchy { mount: PathBuf::from(f.get(4)?), root: PathBuf::from(f.get(3)?), own })
        })
        .collect()
}

/// Where `path` (absolute: from the hierarchy's root; relative: below the caller's cgroup)
/// lies in `h`.
pub fn dir_in(h: &Hierarchy, path: &Path) -> Option<PathBuf> {
    let base = if path.is_absolute() { PathBuf::from("/") } else { h.own.clone() };
    let full = base.join(path);
    let below_root = full.strip_prefix(&h.root).ok()?;
    Some(h.mount.join(below_root))
}

/// Makes what is missing of `path` in every hierarchy; returns what it made, shallowest first.
pub fn make(path: &Path) -> Result<Vec<PathBuf>> {
    if path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(format!("linux.cgroupsPath {}: \"..\" is refused", path.display()));
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut made = Vec::new();
    for h in hierarchies(&mountinfo, &own) {
        let Some(dir) = dir_in(&h, path) else { continue };
        let mut missing = Vec::new();
        let mut d = dir.as_path();
        while !d.exists() && d.starts_with(&h.mount) {
            missing.push(d.to_path_buf());
            match d.parent() {
                Some(p) => d = p,
                None => break,
            }
        }
        for m in missing.into_iter().rev() {
            // Another hierarchy's tree we may not write (a v1 controller not delegated) is
            // left alone: nscell only uses those its limits need.
            if std::fs::create_dir(&m).is_ok() {
                made.push(m);
            }
        }
    }
    Ok(made)
}

/// Removes what [`make`] made, deepest first (those still in use stay).
pub fn remove(made: &[PathBuf]) {
    for d in made.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 /ns /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw";
    const SELF: &str = "9:name=systemd:/\n4:memory:/jobs/me\n1:cpu:/\n0::/ns/me\n";

    #[test]
    fn a_cgroups_path_lies_below_the_root_or_the_callers_cgroup_in_each_hierarchy() {
        let hs = hierarchies(MOUNTINFO, SELF);
        assert_eq!(hs.len(), 4);
        let mem = hs.iter().find(|h| h.mount.ends_with("memory")).unwrap();
        assert_eq!(mem.own, Path::new("/jobs/me"));
        assert_eq!(
            dir_in(mem, Path::new("c/libpod-1")).unwrap(),
            Path::new("/sys/fs/cgroup/memory/jobs/me/c/libpod-1")
        );
        assert_eq!(dir_in(mem, Path::new("/x/y")).unwrap(), Path::new("/sys/fs/cgroup/memory/x/y"));
        // A cgroup namespace's root (mountinfo's field 4) is the mount's top.
        let v2 = hs.iter().find(|h| h.mount.ends_with("unified")).unwrap();
        assert_eq!(dir_in(v2, Path::new("c")).unwrap(), Path::new("/sys/fs/cgroup/unified/me/c"));
        assert_eq!(dir_in(v2, Path::new("/elsewhere")), None);
        assert!(make(Path::new("a/../../b")).unwrap_err().contains(".."));
    }
}
