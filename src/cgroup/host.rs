//! This host's cgroup hierarchies (from `mountinfo`, read once) and the caller's own cgroup in
//! each (from `/proc/self/cgroup`, read at every spawn: a caller may move).

use super::Controller;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    /// The cgroup2 hierarchy (else a v1 one).
    pub v2: bool,
    /// v1: the controllers mounted together (`cpu,cpuacct`); v2: those its root offers
    /// (`cgroup.controllers`).
    pub controllers: Vec<String>,
    /// Where it is mounted.
    pub point: PathBuf,
    /// Which of its cgroups the mount shows at `point` (mountinfo's root field; `/` but in a
    /// container that bind-mounts its own part).
    pub root: String,
}

impl Hierarchy {
    /// Whether this hierarchy has `c`.
    pub fn has(&self, c: Controller) -> bool {
        let name = if self.v2 { c.name() } else { c.v1_name() };
        self.controllers.iter().any(|n| n == name)
    }

    /// The directory of the cgroup `path` (as `/proc/self/cgroup` writes it).
    pub fn dir(&self, path: &str) -> PathBuf {
        let below = match path.strip_prefix(self.root.trim_end_matches('/')) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
            // A cgroup outside what the mount shows: the mount's own top is the nearest.
            _ => "",
        };
        let below = below.trim_start_matches('/');
        if below.is_empty() { self.point.clone() } else { self.point.join(below) }
    }

    /// The name `--check` and errors use: `cgroup2` or the v1 controllers (`cpu,cpuacct`).
    pub fn name(&self) -> String {
        if self.v2 { "cgroup2".into() } else { self.controllers.join(",") }
    }
}

/// The hierarchy that serves controller `c` (`None`: placement, the cgroup2 tree): a v1 one
/// that has it (a controller bound to v1 is not usable on v2), else the cgroup2 tree if it
/// offers it; or why none does.
pub(crate) fn serving(c: Option<Controller>) -> Result<usize, String> {
    let hs = hierarchies();
    if let Some(i) = c.and_then(|c| hs.iter().position(|h| !h.v2 && h.has(c))) {
        return Ok(i);
    }
    match (hs.iter().position(|h| h.v2), c) {
        (Some(i), None) => Ok(i),
        (Some(i), Some(c)) if hs[i].has(c) => Ok(i),
        (Some(_), Some(c)) => Err(format!(
            "the {} controller is neither on a cgroup v1 hierarchy nor offered by the cgroup2 \
             tree here",
            c.name()
        )),
        (None, None) => Err("no cgroup2 tree is mounted here".into()),
        (None, Some(_)) => Err("no cgroup hierarchy is mounted".into()),
    }
}

/// The v1 controller names (a v1 mount's options also hold `rw`, `name=systemd`, `relatime`).
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "blkio",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// The hierarchies mounted here, found once: one entry per hierarchy (the first mount of
/// each), v1 ones with controllers only (`name=systemd` has none).
pub(crate) fn hierarchies() -> &'static [Hierarchy] {
    static CACHE: OnceLock<Vec<Hierarchy>> = OnceLock::new();
    CACHE.get_or_init(|| {
        let mut found = hierarchies_in(mountinfo());
        for h in found.iter_mut().filter(|h| h.v2) {
            let controllers = std::fs::read_to_string(h.point.join("cgroup.controllers"));
            h.controllers =
                controllers.unwrap_or_default().split_whitespace().map(str::to_string).collect();
        }
        found
    })
}

/// Every cgroup and cgroup2 mount point here (bind mounts and `name=` hierarchies included),
/// found once, for making them read-only in a sandbox.
pub(crate) fn mount_points() -> &'static [PathBuf] {
    static CACHE: OnceLock<Vec<PathBuf>> = OnceLock::new();
    CACHE.get_or_init(|| mount_points_in(mountinfo()))
}

/// `/proc/self/mountinfo` as it was when first read: the cgroup mounts of a process do not
/// change while it runs.
fn mountinfo() -> &'static str {
    static CACHE: OnceLock<String> = OnceLock::new();
    CACHE.get_or_init(|| std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
}

/// The same, as C strings for the child.
pub(crate) fn mount_points_c() -> &'static [std::ffi::CString] {
    static CACHE: OnceLock<Vec<std::ffi::CString>> = OnceLock::new();
    CACHE.get_or_init(|| {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &PathBuf| std::ffi::CString::new(p.as_os_str().as_bytes()).ok();
        mount_points().iter().filter_map(c).collect()
    })
}

fn mount_points_in(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (mount, fs) = line.split_once(" - ")?;
            let kind = fs.split(' ').next()?;
            let point = mount.split(' ').nth(4)?;
            (kind == "cgroup" || kind == "cgroup2")
                .then(|| PathBuf::from(point.replace("\\040", " ")))
        })
        .collect()
}

/// The cgroup hierarchies in a `mountinfo` text (v2 controllers left empty).
pub(crate) fn hierarchies_in(mountinfo: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in mountinfo.lines() {
        let Some((mount, fs)) = line.split_once(" - ") else { continue };
        let mut fs = fs.split(' ');
        let (Some(kind), _, Some(options)) = (fs.next(), fs.next(), fs.next()) else { continue };
        let fields: Vec<&str> = mount.split(' ').collect();
        let (Some(root), Some(point)) = (fields.get(3), fields.get(4)) else { continue };
        let unescape = |s: &str| s.replace("\\040", " ");
        let h = match kind {
            "cgroup2" => Hierarchy {
                v2: true,
                controllers: Vec::new(),
                point: unescape(point).into(),
                root: unescape(root),
            },
            "cgroup" => {
                let controllers: Vec<String> = options
                    .split(',')
                    .filter(|o| V1_CONTROLLERS.contains(o))
                    .map(str::to_string)
                    .collect();
                if controllers.is_empty() {
                    continue;
                }
                Hierarchy {
                    v2: false,
                    controllers,
                    point: unescape(point).into(),
                    root: unescape(root),
                }
            }
            _ => continue,
        };
        // One per hierarchy: the first mount point of each, but the last mount on that point
        // (a mount over another hides it).
        match out.iter_mut().find(|o| o.v2 == h.v2 && o.controllers == h.controllers) {
            Some(o) if o.point == h.point => *o = h,
            Some(_) => {}
            None => out.push(h),
        }
    }
    out
}

/// The caller's own cgroup in each hierarchy: `(index into hierarchies, path)`, from a
/// `/proc/self/cgroup` text.
pub(crate) fn own_in(text: &str, hierarchies: &[Hierarchy]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let found = if controllers.is_empty() {
            hierarchies.iter().position(|h| h.v2)
        } else {
            let names: Vec<&str> = controllers.split(',').collect();
            hierarchies.iter().position(|h| {
                !h.v2
                    && h.controllers.len() == names.iter().filter(|n| !n.contains('=')).count()
                    && h.controllers.iter().all(|c| names.contains(&c.as_str()))
            })
        };
        if let Some(i) = found {
            out.push((i, path.to_string()));
        }
    }
    out
}

/// The caller's own cgroup directory in each hierarchy, now.
pub(crate) fn own_dirs() -> Vec<(usize, PathBuf)> {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let hs = hierarchies();
    own_in(&text, hs).into_iter().map(|(i, path)| (i, hs[i].dir(&path))).collect()
}

/// The hierarchy a path under a cgroup mount point is in, if any.
pub(crate) fn hierarchy_of(path: &Path) -> Option<usize> {
    hierarchies().iter().position(|h| path.starts_with(&h.point))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 /docker/abc /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:32 / /mnt/memory\\040again rw,relatime - cgroup cgroup rw,memory
43 35 0:32 /process_api/1 /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn hierarchies_come_from_mountinfo_one_per_controller_set() {
        let hs = hierarchies_in(MOUNTINFO);
        let names: Vec<String> = hs.iter().map(Hierarchy::name).collect();
        assert_eq!(names, ["cpu,cpuacct", "memory", "pids", "cgroup2"]);
        assert!(hs[0].has(Controller::Cpu) && !hs[0].has(Controller::Memory));
        assert_eq!(hs[3].point, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(hs[2].root, "/docker/abc");
        // The memory hierarchy: the mount over /sys/fs/cgroup/memory hides the first one.
        assert_eq!(hs[1].root, "/process_api/1");
    }

    #[test]
    fn every_cgroup_mount_is_made_read_only() {
        let points = mount_points_in(MOUNTINFO);
        let names: Vec<&str> = points.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "/sys/fs/cgroup/cpu,cpuacct",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/pids",
                "/sys/fs/cgroup/systemd",
                "/sys/fs/cgroup/unified",
                "/mnt/memory again",
                "/sys/fs/cgroup/memory",
            ]
        );
    }

    #[test]
    fn the_callers_cgroups_map_to_directories() {
        let hs = hierarchies_in(MOUNTINFO);
        let own = "9:name=systemd:/\n8:pids:/docker/abc/x\n4:memory:/process_api/1\n\
                   1:cpu,cpuacct:/\n0::/user.slice/a.scope\n";
        let found = own_in(own, &hs);
        assert_eq!(
            found,
            [
                (2, "/docker/abc/x".to_string()),
                (1, "/process_api/1".to_string()),
                (0, "/".to_string()),
                (3, "/user.slice/a.scope".to_string()),
            ]
        );
        assert_eq!(hs[2].dir("/docker/abc/x"), Path::new("/sys/fs/cgroup/pids/x"));
        assert_eq!(hs[2].dir("/docker/abc"), Path::new("/sys/fs/cgroup/pids"));
        assert_eq!(hs[2].dir("/elsewhere"), Path::new("/sys/fs/cgroup/pids"));
        // Through the mount that shows that cgroup itself.
        assert_eq!(hs[1].dir("/process_api/1"), Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(hs[0].dir("/"), Path::new("/sys/fs/cgroup/cpu,cpuacct"));
    }
}
