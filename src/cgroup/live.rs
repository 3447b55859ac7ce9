//! The sandbox's cgroup: made before `clone` ([`create`]), kept by the [`Child`](crate::Child)
//! as a [`Cgroup`], ended (everything in it killed, the leaves removed) with the sandbox.

use super::files::{self, Write};
use super::host::{self, Hierarchy};
use super::{CgroupPlan, CompatLevel, Controller, Held, Limit, Limits, MAX_LEAVES, Values};
use super::{cg_error, parent_dir};
use crate::error::{Error, Step};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `statfs.f_type` of a cgroup v1 and a cgroup2 filesystem.
const CGROUP_SUPER_MAGIC: i64 = 0x27e0eb;
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// For a `statfs.f_type`: whether it is cgroup2's (`Some(true)`) or cgroup v1's
/// (`Some(false)`), or no cgroup filesystem at all.
fn cgroupfs_v2(magic: i64) -> Option<bool> {
    match magic {
        CGROUP2_SUPER_MAGIC => Some(true),
        CGROUP_SUPER_MAGIC => Some(false),
        _ => None,
    }
}

/// One leaf: the sandbox's cgroup in one hierarchy.
#[derive(Debug)]
pub(crate) struct Leaf {
    pub path: PathBuf,
    pub v2: bool,
    /// The controllers of its hierarchy (v1) or enabled for it (v2).
    pub controllers: Vec<String>,
    pub dir: OwnedFd,
    /// Its `cgroup.procs`, open for writing until the child has joined.
    pub procs: Option<OwnedFd>,
}

impl Leaf {
    fn has(&self, c: &str) -> bool {
        self.controllers.iter().any(|n| n == c)
    }

    /// A file of the leaf, read through its fd (no path lookup from the root).
    fn read(&self, file: &str) -> Option<String> {
        read_at(self.dir.as_fd(), file)
    }
}

/// A sandbox's cgroup: the leaves it has in each hierarchy, what they hold, and, from
/// [`Child::cgroup`](crate::Child::cgroup), the live controls over everything in the sandbox.
///
/// The `Child`'s handle owns the leaves: when the sandbox ends (its PID 1 is waited for, it
/// times out, the `Child` is dropped), everything still in the cgroup is killed and the leaves
/// are removed. A handle from [`Cgroup::open`] (another process's, say an OCI runtime's
/// `pause`) owns nothing and removes nothing.
#[derive(Debug)]
pub struct Cgroup {
    leaves: Vec<Leaf>,
    holds: Vec<(Limit, Held)>,
    owned: bool,
    ended: bool,
    left: Vec<PathBuf>,
    placed_at_clone: bool,
    /// The usage read when it ended.
    final_usage: Option<Usage>,
    /// The memory limit written, for telling a setup failure it caused.
    pub(crate) memory_max: Option<u64>,
}

/// What a sandbox's cgroup counted: each value where its controller (and this kernel) has it.
/// [`WaitInfo::cgroup`](crate::WaitInfo::cgroup) holds the final count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Usage {
    /// Memory in use now, in bytes (`memory.current`; v1 `memory.usage_in_bytes`).
    pub memory_current: Option<u64>,
    /// The most memory in use at once, in bytes (`memory.peak`, Linux 5.19; v1
    /// `memory.max_usage_in_bytes`).
    pub memory_peak: Option<u64>,
    /// How often the memory limit was hit (`memory.events` `max`; v1 `memory.failcnt`).
    pub memory_max_hits: Option<u64>,
    /// Processes the OOM killer killed (`memory.events` `oom_kill`; v1 `memory.oom_control`).
    pub oom_kills: Option<u64>,
    /// Tasks now (`pids.current`).
    pub pids_current: Option<u64>,
    /// The most tasks at once (`pids.peak`).
    pub pids_peak: Option<u64>,
    /// Forks refused by [`pids_max`](super::Limits::pids_max) (`pids.events` `max`).
    pub pids_max_hits: Option<u64>,
    /// CPU time used (`cpu.stat` `usage_usec`; v1 `cpuacct.usage`).
    pub cpu_time: Option<Duration>,
    /// Of it, in user mode.
    pub cpu_user: Option<Duration>,
    /// Of it, in the kernel.
    pub cpu_system: Option<Duration>,
    /// CFS periods that had runnable tasks (`cpu.stat` `nr_periods`, with a CPU limit).
    pub nr_periods: Option<u64>,
    /// Of them, periods in which the quota ran out (`nr_throttled`).
    pub nr_throttled: Option<u64>,
    /// Time spent throttled (`throttled_usec`; v1 `throttled_time`).
    pub throttled: Option<Duration>,
}

impl Cgroup {
    /// The leaves' directories, one per hierarchy.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.leaves.iter().map(|l| l.path.as_path())
    }

    /// This handle removes nothing when dropped any more (a detached sandbox's cgroup lives on;
    /// [`Cgroup::open`] with its [`record`](Cgroup::record) reaches it later).
    pub(crate) fn disown(&mut self) {
        self.owned = false;
    }

    /// The leaves as one text, a path per line, for [`Cgroup::open`] in another process.
    pub fn record(&self) -> String {
        self.leaves.iter().map(|l| format!("{}\n", l.path.display())).collect()
    }

    /// A handle on the cgroup a [`record`](Cgroup::record) names, to read its usage, freeze,
    /// thaw or kill it from another process. Each path must be a cgroup directory; the handle
    /// removes nothing when dropped ([`Cgroup::remove`] does).
    pub fn open(record: &str) -> Result<Cgroup, Error> {
        let mut leaves = Vec::new();
        for line in record.lines().filter(|l| !l.is_empty()) {
            let path = PathBuf::from(line);
            let fail =
                |e: Errno| Error::setup(Step::OpenCgroup, Some(path.clone()), e.raw_os_error());
            let dir = rustix::fs::open(
                &path,
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(fail)?;
            let fs = rustix::fs::fstatfs(&dir).map_err(fail)?;
            let Some(v2) = cgroupfs_v2(fs.f_type as i64) else { return Err(fail(Errno::NOTDIR)) };
            let controllers = match host::hierarchy_of(&path) {
                Some(i) if !v2 => host::hierarchies()[i].controllers.clone(),
                _ => Vec::new(),
            };
            let mut leaf = Leaf { path, v2, controllers, dir, procs: None };
            if v2 {
                leaf.controllers = leaf
                    .read("cgroup.controllers")
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
            }
            leaves.push(leaf);
        }
        if leaves.is_empty() {
            return Err(Error::invalid("the cgroup record names no cgroup"));
        }
        let mut cg = Cgroup::empty();
        cg.leaves = leaves;
        cg.owned = false;
        Ok(cg)
    }

    /// Which of the requested limits hold here, and through which hierarchy (or why not).
    pub fn holds(&self) -> &[(Limit, Held)] {
        &self.holds
    }

    /// True when every requested limit holds.
    pub fn holds_all(&self) -> bool {
        self.holds.iter().all(|(_, h)| !matches!(h, Held::No(_)))
    }

    /// True when the program was created inside its cgroup2 leaf by `clone3(CLONE_INTO_CGROUP)`;
    /// false when it joined as the first step of its setup (no `clone3` here) or there is no
    /// cgroup2 leaf. Either way the program's first instruction runs inside.
    pub fn placed_at_clone(&self) -> bool {
        self.placed_at_clone
    }

    /// The leaves that could not be removed when the sandbox ended (a task stuck in the
    /// kernel still held them): [`collect_garbage`] removes them later.
    pub fn left(&self) -> &[PathBuf] {
        &self.left
    }

    /// The pids in the cgroup now (as this process's PID namespace numbers them).
    pub fn pids(&self) -> Vec<u32> {
        let leaf = self.leaves.iter().find(|l| l.v2).or(self.leaves.first());
        leaf.map(|l| pids_below(&l.path)).unwrap_or_default()
    }

    /// What the cgroup has counted so far.
    pub fn usage(&self) -> Usage {
        self.read_usage(true)
    }

    /// The counts; with `now`, also what is in use now (not at the end: nothing is).
    fn read_usage(&self, now: bool) -> Usage {
        let mut u = Usage::default();
        let us = |v: Option<u64>| v.map(Duration::from_micros);
        let ns = |v: Option<u64>| v.map(Duration::from_nanos);
        for leaf in &self.leaves {
            if leaf.v2 {
                if let Some(stat) = leaf.read("cpu.stat") {
                    u.cpu_time = us(files::value_of(&stat, "usage_usec"));
                    u.cpu_user = us(files::value_of(&stat, "user_usec"));
                    u.cpu_system = us(files::value_of(&stat, "system_usec"));
                    if leaf.has("cpu") {
                        u.nr_periods = files::value_of(&stat, "nr_periods");
                        u.nr_throttled = files::value_of(&stat, "nr_throttled");
                        u.throttled = us(files::value_of(&stat, "throttled_usec"));
                    }
                }
                if leaf.has("memory") {
                    u.memory_current =
                        leaf.read("memory.current").as_deref().and_then(files::number);
                    u.memory_peak = leaf.read("memory.peak").as_deref().and_then(files::number);
                    let events = leaf.read("memory.events").unwrap_or_default();
                    u.oom_kills = files::value_of(&events, "oom_kill");
                    u.memory_max_hits = files::value_of(&events, "max");
                }
            } else {
                if leaf.has("memory") {
                    let n = |f: &str| leaf.read(f).as_deref().and_then(files::number);
                    if now {
                        u.memory_current = n("memory.usage_in_bytes");
                    }
                    u.memory_peak = n("memory.max_usage_in_bytes");
                    u.memory_max_hits = n("memory.failcnt");
                    let oom = leaf.read("memory.oom_control").unwrap_or_default();
                    u.oom_kills = files::value_of(&oom, "oom_kill");
                }
                if leaf.has("cpu") {
                    let stat = leaf.read("cpu.stat").unwrap_or_default();
                    u.nr_periods = files::value_of(&stat, "nr_periods");
                    u.nr_throttled = files::value_of(&stat, "nr_throttled");
                    u.throttled = ns(files::value_of(&stat, "throttled_time"));
                }
                if leaf.has("cpuacct") && u.cpu_time.is_none() {
                    let n = |f: &str| leaf.read(f).as_deref().and_then(files::number);
                    u.cpu_time = ns(n("cpuacct.usage"));
                    u.cpu_user = ns(n("cpuacct.usage_user"));
                    u.cpu_system = ns(n("cpuacct.usage_sys"));
                }
            }
            if leaf.has("pids") {
                let n = |f: &str| leaf.read(f).as_deref().and_then(files::number);
                if now {
                    u.pids_current = n("pids.current");
                }
                u.pids_peak = n("pids.peak");
                u.pids_max_hits =
                    files::value_of(&leaf.read("pids.events").unwrap_or_default(), "max");
            }
        }
        u
    }

    /// Freezes every process in the sandbox (`cgroup.freeze`, cgroup v2) and returns once the
    /// kernel says they all are (`frozen 1` in `cgroup.events`). Needs a cgroup2 leaf.
    #[doc(alias = "cgroup.freeze")]
    pub fn freeze(&self) -> Result<(), Error> {
        self.set_frozen(true)
    }

    /// Thaws what [`freeze`](Cgroup::freeze) froze.
    pub fn thaw(&self) -> Result<(), Error> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), Error> {
        let Some(leaf) = self.leaves.iter().find(|l| l.v2) else {
            return Err(Error::Unsupported {
                feature: "freezing a sandbox",
                reason: "it needs the sandbox's cgroup2 leaf, and this one has none (no cgroup2 \
                         tree mounted, or it was not writable)"
                    .into(),
            });
        };
        let fail = |e: Errno| {
            Error::setup(
                Step::FreezeCgroup,
                Some(leaf.path.join("cgroup.freeze")),
                e.raw_os_error(),
            )
        };
        write_at(leaf, "cgroup.freeze", if frozen { "1" } else { "0" }).map_err(fail)?;
        let want = if frozen { "frozen 1" } else { "frozen 0" };
        let done = || leaf.read("cgroup.events").is_some_and(|e| e.lines().any(|l| l == want));
        if wait_until(Duration::from_secs(5), done) { Ok(()) } else { Err(fail(Errno::TIMEDOUT)) }
    }

    /// Kills every process in the sandbox: `cgroup.kill` (cgroup v2, Linux 5.14), else
    /// `SIGKILL` to each pid in the leaves until they are empty. Without a PID namespace this
    /// also reaches what the program left running in the background.
    #[doc(alias = "cgroup.kill")]
    pub fn kill(&self) -> Result<(), Error> {
        if let Some(leaf) = self.leaves.iter().find(|l| l.v2) {
            match write_at(leaf, "cgroup.kill", "1") {
                Ok(()) => return Ok(()),
                Err(Errno::NOENT) => {} // before Linux 5.14
                Err(e) => {
                    let path = leaf.path.join("cgroup.kill");
                    return Err(Error::setup(Step::KillCgroup, Some(path), e.raw_os_error()));
                }
            }
        }
        for leaf in &self.leaves {
            kill_below(&leaf.path);
        }
        Ok(())
    }

    /// Kills everything in the cgroup, removes its leaves and returns its final usage: for a
    /// handle from [`open`](Cgroup::open) (an OCI `delete`). A `Child`'s cgroup ends by itself.
    pub fn remove(mut self) -> Result<Usage, Error> {
        self.owned = true;
        let usage = self.finish();
        match self.left.first() {
            None => Ok(usage),
            Some(p) => Err(Error::setup(Step::RemoveCgroup, Some(p.clone()), libc::EBUSY)),
        }
    }

    /// The plan's view: the fds the child needs; with a mount namespace (`read_only`) the
    /// cgroupfs mounts it makes read-only.
    pub(crate) fn plan(&self, unshare_ns: bool, read_only: bool) -> CgroupPlan<'_> {
        let mut join: [Option<std::os::fd::BorrowedFd<'_>>; MAX_LEAVES] = [None; MAX_LEAVES];
        let (mut into, mut v2_procs, mut v2_index) = (None, None, 0);
        for (i, leaf) in self.leaves.iter().enumerate() {
            if leaf.v2 {
                into = Some(leaf.dir.as_fd());
                v2_procs = leaf.procs.as_ref().map(|f| f.as_fd());
                v2_index = i;
            } else if let Some(slot) = join.get_mut(i) {
                *slot = leaf.procs.as_ref().map(|f| f.as_fd());
            }
        }
        let read_only = if read_only { host::mount_points_c() } else { &[] };
        let memory = self.holds.iter().any(|(l, h)| {
            matches!(l, Limit::MemoryMax | Limit::MemoryHigh) && !matches!(h, Held::No(_))
        });
        CgroupPlan { into, v2_procs, v2_index, join, unshare_ns, read_only, memory }
    }

    /// After the spawn of `pid`: the child is in, the join fds can go. Where `clone3` was
    /// refused after all (and the child had no fd to join cgroup2 by itself), the parent moves
    /// it into its cgroup2 leaf now, and says so in [`holds`](Cgroup::holds).
    pub(crate) fn spawned(&mut self, placed_at_clone: bool, pid: i32) {
        let mut late = None;
        for leaf in &mut self.leaves {
            if leaf.v2 && !placed_at_clone && leaf.procs.is_none() {
                late = Some(write_at(leaf, "cgroup.procs", &pid.to_string()));
            }
            leaf.procs = None;
        }
        self.placed_at_clone = placed_at_clone && self.leaves.iter().any(|l| l.v2);
        if let Some(r) = late {
            let why = match r {
                Ok(()) => "clone3 was refused: moved into the cgroup2 leaf after its start".into(),
                Err(e) => format!("clone3 was refused, and moving it afterwards failed: {e}"),
            };
            for (l, held) in &mut self.holds {
                if *l == Limit::Placement {
                    *held = Held::No(why.clone());
                }
            }
        }
    }

    /// The leaf at `index` (a child's failure record names one), and whether it is cgroup2's.
    pub(crate) fn leaf(&self, index: usize) -> Option<(&Path, bool)> {
        self.leaves.get(index).map(|l| (l.path.as_path(), l.v2))
    }

    /// The leaves and the names of their hierarchies as `/sys/fs/cgroup` has them (a cgroup
    /// view's layout): `unified` for cgroup2 beside v1 ones, the v1 mount point's name.
    pub(crate) fn view_leaves(&self) -> Vec<(PathBuf, String)> {
        self.leaves
            .iter()
            .map(|l| {
                let name = match host::hierarchy_of(&l.path) {
                    Some(i) => host::hierarchies()[i]
                        .point
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned()),
                    None => None,
                };
                let fallback = if l.v2 { "unified".to_string() } else { l.controllers.join(",") };
                (l.path.clone(), name.unwrap_or(fallback))
            })
            .collect()
    }

    /// The cgroup2 leaf, if any.
    pub(crate) fn v2_path(&self) -> Option<&Path> {
        self.leaves.iter().find(|l| l.v2).map(|l| l.path.as_path())
    }

    /// Ends the sandbox's cgroup once its PID 1 is gone: kills what is left in it, waits until
    /// it is empty, reads the final usage and removes the leaves (what cannot be removed is
    /// in [`left`](Cgroup::left)). Once; later calls give the same usage.
    pub(crate) fn finish(&mut self) -> Usage {
        if !self.owned || self.ended {
            return self.usage_if_there();
        }
        self.ended = true;
        // Every task is in the cgroup2 leaf where there is one: its `populated` says it all.
        let v2 = self.leaves.iter().find(|l| l.v2);
        let empty = || match v2 {
            Some(leaf) => is_empty(leaf),
            None => self.leaves.iter().all(is_empty),
        };
        // What the program left running, killed (most often nothing is left).
        if !empty() {
            let _ = self.kill();
            wait_until(Duration::from_secs(2), empty);
        }
        // Nothing is in it now: what is "in use" says nothing.
        let usage = self.read_usage(false);
        for leaf in &self.leaves {
            if !remove_tree(&leaf.path) {
                self.left.push(leaf.path.clone());
            }
        }
        self.final_usage = Some(usage);
        usage
    }

    fn empty() -> Cgroup {
        Cgroup {
            leaves: Vec::new(),
            holds: Vec::new(),
            owned: true,
            ended: false,
            left: Vec::new(),
            placed_at_clone: false,
            final_usage: None,
            memory_max: None,
        }
    }

    fn usage_if_there(&self) -> Usage {
        self.final_usage.unwrap_or_else(|| self.usage())
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if self.owned && !self.ended {
            self.finish();
        }
    }
}

/// The sandbox's cgroup, made: the hierarchy of each limit found, a leaf made in each (and in
/// the cgroup2 tree for placement), the limits written, the join fds opened. Dropped on the
/// way out of an error, what was made is removed again.
pub(crate) fn create(limits: &Limits, v: &Values) -> Result<Cgroup, Error> {
    let hs = host::hierarchies();
    let own = host::own_dirs();
    let hard = limits.compat == CompatLevel::HardRequirement;
    let v2 = hs.iter().position(|h| h.v2);
    // Which hierarchy serves each limit asked for; two limits exist on v2 only.
    let serving = |l: Limit| -> Result<usize, String> {
        let i = host::serving(l.controller())?;
        match l {
            Limit::MemoryHigh | Limit::OomGroup if !hs[i].v2 => {
                Err(format!("{} exists on cgroup v2 only", l.file()))
            }
            _ => Ok(i),
        }
    };
    let mut served: Vec<(Limit, Result<usize, String>)> =
        v.asked().into_iter().map(|l| (l, serving(l))).collect();
    unsupported(hard, &served)?;

    let mut cg = Cgroup::empty();
    cg.memory_max = v.memory_max;
    // The hierarchies with a leaf: the cgroup2 tree first (placement), then each v1 one a
    // limit needs.
    let mut wanted: Vec<usize> = v2.into_iter().collect();
    for (_, r) in &served {
        if let Ok(i) = r {
            if !wanted.contains(i) {
                wanted.push(*i);
            }
        }
    }
    let tag = format!("{}-{}", owner_tag(), SEQ.fetch_add(1, Ordering::Relaxed));
    let mut placement = host::serving(None).map(|_| ());
    for &i in &wanted {
        let h = &hs[i];
        let limits_here: Vec<Limit> =
            served.iter().filter(|(_, r)| r.as_ref() == Ok(&i)).map(|(l, _)| *l).collect();
        // A leaf only for placement may be left out (best effort), not one a limit needs, nor
        // one under a parent that was asked for (unless it names another hierarchy).
        let other_hierarchy = |p: &Path| host::hierarchy_of(p).is_some_and(|j| j != i);
        let asked = limits.parent.as_deref().is_some_and(|p| !other_hierarchy(p));
        let optional = limits_here.is_empty() && !hard && !asked;
        let needed_by = limits_here.first().map_or("placement".to_string(), |l| l.to_string());
        match make_leaf(limits, h, i, &own, &needed_by, &limits_here, &tag) {
            Ok(leaf) => cg.leaves.push(leaf),
            Err(e) if optional => placement = Err(format!("not placed in the cgroup2 tree: {e}")),
            Err(e) => return Err(e),
        }
        if cg.leaves.len() >= MAX_LEAVES {
            break;
        }
    }

    // The limits, in each leaf's order.
    let leaf_of = |c: Controller, v2: bool| {
        cg.leaves.iter().position(|l| l.v2 == v2 && (v2 || l.has(c.v1_name())))
    };
    let on = |c: Controller, want_v2: bool| {
        served.iter().any(|(l, r)| {
            l.controller() == Some(c) && r.as_ref().is_ok_and(|&i| hs[i].v2 == want_v2)
        })
    };
    let mems = match cg.leaves.iter().find(|l| l.has("cpuset") && !l.v2) {
        Some(l) => {
            std::fs::read_to_string(l.path.with_file_name("cpuset.mems")).unwrap_or_default()
        }
        None => String::new(),
    };
    let mut writes: Vec<(Write, bool)> = Vec::new();
    writes.extend(files::v2_writes(v, |c| on(c, true)).into_iter().map(|w| (w, true)));
    writes.extend(files::v1_writes(v, |c| on(c, false), &mems).into_iter().map(|w| (w, false)));
    for (w, is_v2) in writes {
        let Some(leaf) = leaf_of(w.controller, is_v2).map(|i| &cg.leaves[i]) else { continue };
        // The v1 IO weight: BFQ's file, else CFQ's.
        let written = match write_at(leaf, w.file, &w.bytes) {
            Err(Errno::NOENT) if w.file == files::V1_IO_WEIGHT => {
                write_at(leaf, "blkio.weight", &w.bytes)
            }
            r => r,
        };
        // A file this host lacks: that limit does not hold (or, required, the spawn fails).
        let missing = match written {
            Err(Errno::NOENT) if w.file == files::V1_IO_WEIGHT => Some((
                Limit::IoWeight,
                "no blkio.bfq.weight or blkio.weight: the IO scheduler is neither BFQ nor CFQ"
                    .to_string(),
            )),
            // No swap accounting (swapaccount=0): memory holds, swap does not.
            Err(Errno::NOENT)
                if w.file.starts_with("memory.memsw") || w.file == "memory.swap.max" =>
            {
                Some((
                    Limit::MemorySwapMax,
                    format!("{} is missing: no swap accounting here", w.file),
                ))
            }
            _ => None,
        };
        if let Some((limit, why)) = missing {
            if hard {
                return Err(Error::Unsupported { feature: limit.name(), reason: why });
            }
            if let Some(s) = served.iter_mut().find(|(l, _)| *l == limit) {
                s.1 = Err(why);
            }
            continue;
        }
        if let Err(e) = written {
            let hint = match e {
                Errno::INVAL | Errno::RANGE => format!("the kernel refused {:?}", w.bytes),
                Errno::BUSY => {
                    format!("the kernel refused {:?} while the cgroup is in use", w.bytes)
                }
                Errno::ACCESS | Errno::PERM => {
                    format!("writing {:?}: the leaf's files are not this user's", w.bytes)
                }
                _ => format!("writing {:?}", w.bytes),
            };
            return Err(cg_error(Step::WriteCgroupLimit, leaf.path.join(w.file), e, Some(hint)));
        }
    }
    // What the child writes `0` to (cgroup2: only where clone3 cannot place it).
    let clone3 = crate::kernel::clone3_usable();
    for leaf in cg.leaves.iter_mut().filter(|l| !(l.v2 && clone3)) {
        let file = join_file(leaf.v2);
        let path = leaf.path.join(file);
        let fail = |e: Errno| Error::setup(Step::JoinCgroup, Some(path.clone()), e.raw_os_error());
        let flags = OFlags::WRONLY | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&leaf.dir, file, flags, Mode::empty()).map_err(fail)?;
        leaf.procs = Some(crate::stdio::above_stdio(fd).map_err(fail)?);
    }
    cg.holds = served
        .into_iter()
        .map(|(l, r)| {
            (l, r.map(|i| if hs[i].v2 { Held::V2 } else { Held::V1 }).unwrap_or_else(Held::No))
        })
        .collect();
    cg.holds.push((
        Limit::Placement,
        match placement {
            Ok(()) if cg.leaves.iter().any(|l| l.v2) => Held::V2,
            Ok(()) => Held::No("no cgroup2 leaf".into()),
            Err(why) => Held::No(why),
        },
    ));
    Ok(cg)
}

/// The file a child writes `0` to, to join a leaf. On v1 `tasks`: it moves the one thread
/// that writes (the child has no other) without the global lock that moving a whole process
/// takes (`cgroup_threadgroup_rwsem`, whose first writer after a quiet spell waits for an RCU
/// grace period: 7 to 28 ms measured here, against 0.05 ms). On cgroup2 `cgroup.procs` (a
/// thread cannot leave its threaded domain there); it is the fallback only, when `clone3` could
/// not create the child in its leaf.
pub(crate) fn join_file(v2: bool) -> &'static str {
    if v2 { "cgroup.procs" } else { "tasks" }
}

/// With [`CompatLevel::HardRequirement`], the limits this host cannot enforce, as one error.
fn unsupported(hard: bool, served: &[(Limit, Result<usize, String>)]) -> Result<(), Error> {
    let missing: Vec<String> = served
        .iter()
        .filter_map(|(l, r)| r.as_ref().err().map(|why| format!("{l}: {why}")))
        .collect();
    if hard && !missing.is_empty() {
        return Err(Error::Unsupported {
            feature: "a requested cgroup limit",
            reason: missing.join("; "),
        });
    }
    Ok(())
}

/// The leaf in hierarchy `i`: its parent found and checked, dead owners' leaves collected
/// there (once per process), the controllers enabled (v2), the directory made and opened.
fn make_leaf(
    limits: &Limits,
    h: &Hierarchy,
    i: usize,
    own: &[(usize, PathBuf)],
    needed_by: &str,
    limits_here: &[Limit],
    tag: &str,
) -> Result<Leaf, Error> {
    let mut parent = parent_dir(limits.parent.as_deref(), i, own, needed_by)?;
    // Once per parent in a process: that it is a cgroup, and the leaves of dead owners in it.
    if first_use(&parent) {
        let fs = rustix::fs::statfs(&parent).map_err(|e| parent_error(&parent, e))?;
        if cgroupfs_v2(fs.f_type as i64).is_none() {
            return Err(Error::invalid(format!(
                "cgroup parent {} is not in a cgroup filesystem",
                parent.display()
            )));
        }
        collect_in(&parent);
    }
    let mut controllers: Vec<String> = h.controllers.clone();
    if h.v2 {
        let needed: Vec<Controller> = limits_here.iter().filter_map(|l| l.controller()).collect();
        let mut needed_names: Vec<Controller> = Vec::new();
        for c in needed {
            if !needed_names.contains(&c) {
                needed_names.push(c);
            }
        }
        match enable(&parent, &needed_names) {
            Ok(()) => {}
            // The caller's own cgroup holds the caller (cgroup v2 enables no controller there):
            // beside it instead, in its parent, where systemd's user@UID.service (or a
            // container's delegated root) leaves the caller's cgroups with controllers on and no
            // process of their own; as crun does.
            Err((Errno::BUSY, _)) if limits.parent.is_none() => {
                let sibling = sibling_parent(&parent, &h.point)
                    .filter(|p| writable(p) && enable(p, &needed_names).is_ok());
                match sibling {
                    Some(p) => {
                        if first_use(&p) {
                            collect_in(&p);
                        }
                        parent = p;
                    }
                    None => return Err(enable_error(&parent, &needed_names, Errno::BUSY)),
                }
            }
            Err((errno, _)) => return Err(enable_error(&parent, &needed_names, errno)),
        }
        controllers = needed_names.iter().map(|c| c.name().to_string()).collect();
    }
    let path = parent.join(format!("nscell-{tag}"));
    rustix::fs::mkdir(&path, Mode::from_raw_mode(0o755)).map_err(|e| {
        if e == Errno::NOENT {
            return parent_error(&parent, e);
        }
        let hint = match e {
            Errno::ACCESS | Errno::PERM => Some(DELEGATE.to_string()),
            Errno::ROFS => Some(
                "the cgroup filesystem is mounted read-only here (a container's /sys/fs/cgroup?): \
                 give it a writable, delegated cgroup"
                    .to_string(),
            ),
            _ => None,
        };
        cg_error(Step::CreateCgroup, path.clone(), e, hint)
    })?;
    let dir = rustix::fs::open(
        &path,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    );
    let dir = match dir {
        Ok(d) => d,
        Err(e) => {
            let _ = rustix::fs::rmdir(&path);
            return Err(Error::setup(Step::CreateCgroup, Some(path), e.raw_os_error()));
        }
    };
    Ok(Leaf { path, v2: h.v2, controllers, dir, procs: None })
}

/// The error for a parent that cannot be used (missing: ENOENT, with its hint).
fn parent_error(parent: &Path, e: Errno) -> Error {
    let hint = match e {
        Errno::NOENT => Some(
            "the cgroup parent does not exist: create it (and delegate it to this user) first"
                .to_string(),
        ),
        _ => None,
    };
    cg_error(Step::CreateCgroup, parent.to_path_buf(), e, hint)
}

/// Enables `needed` in `parent`'s `cgroup.subtree_control`: only those it lacks, in one write.
fn enable(parent: &Path, needed: &[Controller]) -> Result<(), (Errno, String)> {
    if needed.is_empty() {
        return Ok(());
    }
    let control = parent.join("cgroup.subtree_control");
    let enabled = std::fs::read_to_string(&control).unwrap_or_default();
    match files::subtree_control(needed, &enabled) {
        None => Ok(()),
        Some(add) => std::fs::write(&control, &add)
            .map_err(|e| (Errno::from_io_error(&e).unwrap_or(Errno::IO), add)),
    }
}

/// The error for controllers `parent` would not enable.
fn enable_error(parent: &Path, needed: &[Controller], errno: Errno) -> Error {
    let add: Vec<String> = needed.iter().map(|c| format!("+{}", c.name())).collect();
    let hint = match errno {
        Errno::BUSY => Some(crate::error::NO_INTERNAL_PROCESSES.to_string()),
        Errno::NOENT => Some(format!(
            "{} is not available to {}: its own parent has not delegated it (see its \
             cgroup.controllers)",
            add.join(" "),
            parent.display()
        )),
        Errno::ACCESS | Errno::PERM => Some(DELEGATE.to_string()),
        _ => None,
    };
    cg_error(Step::EnableControllers, parent.join("cgroup.subtree_control"), errno, hint)
}

/// The cgroup beside which a sandbox's leaf may go when the caller's own cgroup `own` holds
/// processes: `own`'s parent, unless that is the hierarchy's root (`point`, never delegated).
pub(crate) fn sibling_parent(own: &Path, point: &Path) -> Option<PathBuf> {
    let up = own.parent()?;
    (up.starts_with(point) && up != point).then(|| up.to_path_buf())
}

/// Whether this user may make cgroups in `dir` and move processes through it.
pub(crate) fn writable(dir: &Path) -> bool {
    may_write(dir).is_ok()
}

/// [`writable`], with the errno when not (EROFS: a read-only cgroupfs).
pub(crate) fn may_write(dir: &Path) -> Result<(), Errno> {
    use rustix::fs::{Access, AtFlags, CWD};
    let ok = |p: &Path| rustix::fs::accessat(CWD, p, Access::WRITE_OK, AtFlags::EACCESS);
    ok(dir).and_then(|()| ok(&dir.join("cgroup.procs")))
}

/// Whether the cgroup `dir`'s `file` (`cgroup.controllers`, `cgroup.subtree_control`) lists
/// controller `c`.
pub(crate) fn lists(dir: &Path, file: &str, c: Controller) -> bool {
    let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
    text.split_whitespace().any(|n| n == c.name())
}

/// The hint for a parent the caller may not write.
pub(crate) const DELEGATE: &str = "the cgroup parent is not writable by this user: it must be \
     delegated to it (systemd: Delegate=yes; by hand, as root: chown the directory and its \
     cgroup.procs, cgroup.subtree_control and cgroup.threads, or tasks on v1), or give \
     Limits::parent (--cgroup-parent) one that is";

/// Leaves made by this process are named `nscell-<pidns inode>-<pid>-<start time>-<n>`, so a
/// later spawn can tell a dead owner's leaf (collected) from a live one's (left alone).
static SEQ: AtomicU64 = AtomicU64::new(0);

/// `<pidns inode>-<pid>-<start time>` of this process.
fn owner_tag() -> String {
    let pid = std::process::id();
    format!("{}-{pid}-{}", pidns_inode(), own_start_time(pid))
}

/// This process's start time, read once per process (a forked child reads its own).
fn own_start_time(pid: u32) -> u64 {
    static CACHE: Mutex<Option<(u32, u64)>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    match *cache {
        Some((p, start)) if p == pid => start,
        _ => {
            let start = start_time(pid).unwrap_or(0);
            *cache = Some((pid, start));
            start
        }
    }
}

/// The inode of this process's PID namespace, read once (a process never changes it).
fn pidns_inode() -> u64 {
    static CACHE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *CACHE.get_or_init(|| std::fs::metadata("/proc/self/ns/pid").map(|m| m.ino()).unwrap_or(0))
}

/// Field 22 of `/proc/<pid>/stat`: when it started, in clock ticks after boot.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// Whether a leaf named `name` belongs to a dead owner of this PID namespace.
fn dead_owners(name: &str, ns: u64) -> bool {
    let mut parts = name.strip_prefix("nscell-").unwrap_or("").split('-');
    let mut next = || parts.next().and_then(|p| p.parse::<u64>().ok());
    match (next(), next(), next(), next()) {
        (Some(n), Some(pid), Some(start), Some(_)) if n == ns => {
            u32::try_from(pid).map_or(true, |pid| start_time(pid) != Some(start))
        }
        _ => false,
    }
}

/// Removes, under `parent`, the leaves of dead owners of this PID namespace that this user
/// made (with whatever still runs in them). Returns what it removed.
fn collect_in(parent: &Path) -> Vec<PathBuf> {
    let (ns, euid) = (pidns_inode(), rustix::process::geteuid().as_raw());
    let Ok(entries) = std::fs::read_dir(parent) else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        // The name first: the parent holds many files, and a stat of each costs.
        let Some(name) = name.to_str().filter(|n| n.starts_with("nscell-")) else { continue };
        if !dead_owners(name, ns) {
            continue;
        }
        if entry.metadata().is_ok_and(|m| m.is_dir() && m.uid() == euid) {
            let path = entry.path();
            kill_below(&path);
            if remove_tree(&path) {
                removed.push(path);
            }
        }
    }
    removed
}

/// Whether this is the first spawn under `parent` in this process.
fn first_use(parent: &Path) -> bool {
    static SEEN: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let first = !seen.iter().any(|p| p == parent);
    if first {
        seen.push(parent.to_path_buf());
    }
    first
}

/// Removes the cgroups that sandboxes of this user left behind when their caller was killed
/// (SIGKILL, so no destructor ran): under `parent` (as [`Limits::parent`] takes it) or the
/// caller's own cgroups, in every hierarchy, the `nscell-*` leaves whose owner process is gone
/// (of this PID namespace, made by this user), after killing what still runs in them. Returns
/// the directories removed. A spawn does the same, once per parent and process, by itself.
pub fn collect_garbage(parent: Option<&Path>) -> Result<Vec<PathBuf>, Error> {
    if let Some(p) = parent {
        super::check_parent(p)?;
    }
    let own = host::own_dirs();
    let mut removed = Vec::new();
    for i in 0..host::hierarchies().len() {
        // A parent under one mount names that hierarchy only.
        let Ok(dir) = parent_dir(parent, i, &own, "collecting") else { continue };
        removed.extend(collect_in(&dir));
    }
    Ok(removed)
}

/// A small file (a cgroup file), read whole through `dir`: open, read to the end, close (std's
/// `read_to_string` adds a stat and a seek to size its buffer, twice the system calls).
pub(crate) fn read_at(
    dir: std::os::fd::BorrowedFd<'_>,
    file: impl rustix::path::Arg,
) -> Option<String> {
    let fd = rustix::fs::openat(dir, file, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match rustix::io::read(&fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(Errno::INTR) => {}
            Err(_) => return None,
        }
    }
    String::from_utf8(text).ok()
}

/// `bytes` into `file` of `leaf`, in one write.
fn write_at(leaf: &Leaf, file: &str, bytes: &str) -> Result<(), Errno> {
    let fd = rustix::fs::openat(&leaf.dir, file, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    let n = rustix::io::write(&fd, bytes.as_bytes())?;
    if n == bytes.len() { Ok(()) } else { Err(Errno::IO) }
}

/// Polls `done` with a backoff from 100 µs (doubling, at most 20 ms apart) until it is true or
/// `limit` has passed; whether it became true.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    let mut pause = Duration::from_micros(100);
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

fn is_empty(leaf: &Leaf) -> bool {
    if leaf.v2 {
        if let Some(events) = leaf.read("cgroup.events") {
            return events.lines().any(|l| l == "populated 0");
        }
    }
    pids_below(&leaf.path).is_empty()
}

/// The pids in the cgroup `dir` and every cgroup below it.
fn pids_below(dir: &Path) -> Vec<u32> {
    let mut pids: Vec<u32> = read_at(rustix::fs::CWD, dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    for sub in subdirs(dir) {
        pids.extend(pids_below(&sub));
    }
    pids
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// Kills every process in `dir` and below with `SIGKILL` until none is left (or 100 rounds:
/// a fork bomb under no pids limit can outrun a round, never a hundred of them for long).
fn kill_below(dir: &Path) {
    for _ in 0..100 {
        let pids = pids_below(dir);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Removes the cgroup `dir` and every cgroup below it (a program may have made some),
/// retrying while a dying task still holds one; true when it is gone.
fn remove_tree(dir: &Path) -> bool {
    // Most leaves have no cgroup below them: look only when the first rmdir fails.
    match rustix::fs::rmdir(dir) {
        Ok(()) | Err(Errno::NOENT) => return true,
        Err(_) => {}
    }
    for sub in subdirs(dir) {
        remove_tree(&sub);
    }
    let mut gone = false;
    wait_until(Duration::from_secs(1), || {
        gone = matches!(rustix::fs::rmdir(dir), Ok(()) | Err(Errno::NOENT));
        gone
    });
    gone
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The v2 writes as they reach files (this host has no v2 controllers to take them): each
    /// in one write, through the leaf's fd, into a directory standing in for a leaf.
    #[test]
    fn v2_writes_reach_their_files_as_the_kernel_reads_them() {
        use super::super::Limits;
        let dir = std::env::temp_dir().join(format!("nscell-v2-writes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let limits = Limits::new()
            .memory_max(64 << 20)
            .memory_high(48 << 20)
            .pids_max(50)
            .cpus(1.5)
            .cpu_weight(200)
            .cpus_allowed("0-1");
        let values = limits.values().unwrap();
        let writes = files::v2_writes(&values, |_| true);
        for w in &writes {
            std::fs::write(dir.join(w.file), "").unwrap();
        }
        let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(&dir, flags, Mode::empty()).unwrap();
        let leaf =
            Leaf { path: dir.clone(), v2: true, controllers: Vec::new(), dir: fd, procs: None };
        for w in &writes {
            write_at(&leaf, w.file, &w.bytes).unwrap();
        }
        let read = |f: &str| leaf.read(f).unwrap();
        assert_eq!(read("memory.max"), "67108864");
        assert_eq!(read("memory.high"), "50331648");
        assert_eq!(read("memory.swap.max"), "0");
        assert_eq!(read("memory.oom.group"), "1");
        assert_eq!(read("pids.max"), "50");
        assert_eq!(read("cpu.max"), "150000 100000");
        assert_eq!(read("cpu.weight"), "200");
        assert_eq!(read("cpuset.cpus"), "0-1");
        // A file the kernel does not have (no controller): ENOENT, never a new file.
        assert_eq!(write_at(&leaf, "io.max", "x"), Err(Errno::NOENT));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_populated_own_cgroup_falls_back_to_its_parent_but_never_the_root() {
        let point = Path::new("/sys/fs/cgroup");
        let own = Path::new(
            "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/a.scope",
        );
        assert_eq!(sibling_parent(own, point).as_deref(), own.parent());
        assert_eq!(sibling_parent(Path::new("/sys/fs/cgroup/init.scope"), point), None);
        assert_eq!(sibling_parent(point, point), None);
    }

    #[test]
    fn only_dead_owners_of_this_pid_namespace_are_collected() {
        let me = std::process::id();
        let start = start_time(me).unwrap();
        let ns = pidns_inode();
        // This process is alive: its leaves stay.
        assert!(!dead_owners(&format!("nscell-{ns}-{me}-{start}-0"), ns));
        // The same pid with another start time: the pid was reused, the owner is dead.
        assert!(dead_owners(&format!("nscell-{ns}-{me}-{}-0", start + 1), ns));
        // A pid that does not exist.
        assert!(dead_owners(&format!("nscell-{ns}-4194305-1-0"), ns));
        // Another PID namespace's, or not ours at all: never.
        assert!(!dead_owners(&format!("nscell-{}-4194305-1-0", ns + 1), ns));
        assert!(!dead_owners("nscell-x", ns));
        assert!(!dead_owners("podman-1-2-3-4", ns));
    }
}
