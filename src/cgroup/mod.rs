//! Resource limits that hold for the whole sandbox: cgroups for memory, processes and CPU
//! ([`Sandbox::limits`](crate::Sandbox::limits)).
//!
//! Each sandbox with [`Limits`] gets a cgroup of its own (a *leaf*), made by the parent before
//! `clone`, with the limits written into it while it is still empty; the program is inside it
//! from its first instruction, and everything in it is killed and the leaf removed when the
//! sandbox ends.
//!
//! - **cgroup v2** (every current distribution): one leaf in the unified tree, under the
//!   caller's own cgroup or [`Limits::parent`]. The controllers a limit needs are enabled in
//!   the parent's `cgroup.subtree_control` first, and the child is created inside the leaf
//!   with `clone3(CLONE_INTO_CGROUP)` (Linux 5.7). cgroup v2 allows controllers only in
//!   cgroups that hold no processes (the "no internal processes" rule), and the caller's own
//!   cgroup holds the caller: when it cannot enable them there, nscell makes the leaf beside
//!   the caller's cgroup, in its parent, if this user may write that and it is not the root
//!   (as crun does). Under systemd's `user@UID.service` every cgroup of the user's is
//!   delegated that way (apps run in scopes of a slice that holds no process); elsewhere give
//!   [`Limits::parent`]: an empty delegated cgroup, or a container's cgroup namespace root with
//!   its init moved into a leaf. nscell never moves the caller itself.
//! - **cgroup v1 and hybrid hosts**: one leaf in each v1 hierarchy a limit needs (and only
//!   those: an empty v1 cpuset refuses tasks), which the child joins through `cgroup.procs`
//!   fds the parent opened, as its first step after `clone`; where a cgroup2 tree is mounted
//!   too, the sandbox is also placed in a leaf there (for [`Cgroup::kill`],
//!   [`Cgroup::freeze`] and CPU time), as runc does on such hosts.
//!
//! Rootless, the parent must be writable by the caller (delegated): on v2 the leaf's files
//! are then the caller's, and moving a process needs write access to the common ancestor's
//! `cgroup.procs`, so the caller must itself run inside the delegated subtree.
//!
//! **What a limit costs**: a `mkdir`, a few writes and an `rmdir` per hierarchy, measured in
//! BENCHMARKS.md. **What holds**: with [`CompatLevel::BestEffort`] (the default) a limit this
//! host cannot enforce (no such controller, `memory_high` on v1) is left out and
//! [`Cgroup::holds`] says why; with [`CompatLevel::HardRequirement`] the spawn fails with
//! [`Error::Unsupported`] naming it. A limit that cannot be *written* (a parent that is not
//! delegated, a value the kernel refuses) is always an error.
//!
//! **The program can leave its cgroup** if it can write a `cgroup.procs` file the caller owns
//! (on v1 there is no other check; on v2 only a cgroup namespace rooted at its leaf stops
//! it): with [`Namespaces::MOUNT`](crate::Namespaces::MOUNT) and a user namespace, nscell
//! makes every cgroupfs mount read-only in the sandbox. Without a mount namespace the limits
//! are a boundary only against programs that do not try.
//!
//! **If the caller is killed** (SIGKILL: no destructor runs), the leaves stay until the next
//! spawn under the same parent in any process of the caller's user removes them (with
//! whatever still runs in them), or [`collect_garbage`] (`nscell --gc`) does.

mod files;
mod host;
mod live;

pub use crate::landlock::CompatLevel;
pub use files::weight_to_shares;
pub use live::{Cgroup, Usage, collect_garbage};

use crate::error::{Error, Step};
use std::fmt;
use std::os::fd::BorrowedFd;
use std::path::{Component, Path, PathBuf};

/// The most leaves one sandbox has (one per hierarchy it uses).
pub(crate) const MAX_LEAVES: usize = 8;

/// A controller nscell writes limits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Controller {
    Memory,
    Pids,
    Cpu,
    Cpuset,
    Io,
}

impl Controller {
    /// Its name on cgroup v2.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
            Controller::Cpuset => "cpuset",
            Controller::Io => "io",
        }
    }

    /// Its name on cgroup v1 (`io` was `blkio` there).
    pub(crate) const fn v1_name(self) -> &'static str {
        match self {
            Controller::Io => "blkio",
            c => c.name(),
        }
    }
}

/// One of the limits of [`Limits`], for [`Cgroup::holds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// [`Limits::memory_max`].
    MemoryMax,
    /// [`Limits::memory_swap_max`] (or the 0 that `memory_max` implies).
    MemorySwapMax,
    /// [`Limits::memory_high`].
    MemoryHigh,
    /// [`Limits::oom_group`] (v2 `memory.oom.group`).
    OomGroup,
    /// [`Limits::pids_max`].
    PidsMax,
    /// [`Limits::cpu_max`] or [`Limits::cpus`].
    CpuMax,
    /// [`Limits::cpu_weight`].
    CpuWeight,
    /// [`Limits::cpus_allowed`].
    CpusAllowed,
    /// [`Limits::io_max`].
    IoMax,
    /// [`Limits::io_weight`].
    IoWeight,
    /// A leaf in the cgroup2 tree, for placement, [`Cgroup::kill`], [`Cgroup::freeze`] and
    /// CPU time (every sandbox with limits gets one where cgroup2 is mounted and writable).
    Placement,
}

impl Limit {
    fn controller(self) -> Option<Controller> {
        match self {
            Limit::MemoryMax | Limit::MemorySwapMax | Limit::MemoryHigh | Limit::OomGroup => {
                Some(Controller::Memory)
            }
            Limit::PidsMax => Some(Controller::Pids),
            Limit::CpuMax | Limit::CpuWeight => Some(Controller::Cpu),
            Limit::CpusAllowed => Some(Controller::Cpuset),
            Limit::IoMax | Limit::IoWeight => Some(Controller::Io),
            Limit::Placement => None,
        }
    }
}

impl Limit {
    /// The setter's name (`memory_max`), as errors and `holds` name the limit.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Limit::MemoryMax => "memory_max",
            Limit::MemorySwapMax => "memory_swap_max",
            Limit::MemoryHigh => "memory_high",
            Limit::OomGroup => "oom_group",
            Limit::PidsMax => "pids_max",
            Limit::CpuMax => "cpu_max",
            Limit::CpuWeight => "cpu_weight",
            Limit::CpusAllowed => "cpus_allowed",
            Limit::IoMax => "io_max",
            Limit::IoWeight => "io_weight",
            Limit::Placement => "cgroup2 placement",
        }
    }

    /// The v2 file of a limit that exists on v2 only (for saying so).
    fn file(self) -> &'static str {
        match self {
            Limit::MemoryHigh => "memory.high",
            Limit::OomGroup => "memory.oom.group",
            _ => "its file",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a limit holds, and through what ([`Cgroup::holds`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Held {
    /// Through the cgroup2 tree.
    V2,
    /// Through a cgroup v1 hierarchy.
    V1,
    /// Not at all, and why.
    No(String),
}

/// The cgroup limits of a sandbox, set with [`Sandbox::limits`](crate::Sandbox::limits).
///
/// Setters record and never fail; the first bad value is returned by
/// [`spawn`](crate::Sandbox::spawn). An empty `Limits` still gives the sandbox a cgroup: its
/// usage can be read and everything in it is killed when it ends.
///
/// ```no_run
/// use nscell::{Sandbox, cgroup::Limits};
///
/// let status = Sandbox::new("make")
///     .limits(Limits::new().memory_max(512 << 20).pids_max(200).cpus(1.5))
///     .status()?;
/// # Ok::<(), nscell::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Limits {
    memory_max: Option<u64>,
    memory_swap_max: Option<u64>,
    memory_high: Option<u64>,
    pids_max: Option<u64>,
    cpu: Option<Cpu>,
    cpu_weight: Option<u64>,
    cpus_allowed: Option<String>,
    io_max: Vec<(PathBuf, IoMax)>,
    io_weight: Option<u64>,
    oom_group: Option<bool>,
    parent: Option<PathBuf>,
    compat: CompatLevel,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cpu {
    Max { quota_us: u64, period_us: u64 },
    Cpus(f64),
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::new()
    }
}

/// The CFS period `cpus` uses, as docker's `--cpus` does.
const CPUS_PERIOD_US: u64 = 100_000;

impl Limits {
    /// No limit yet: a cgroup for placement, usage and killing.
    pub fn new() -> Limits {
        Limits {
            memory_max: None,
            memory_swap_max: None,
            memory_high: None,
            pids_max: None,
            cpu: None,
            cpu_weight: None,
            cpus_allowed: None,
            io_max: Vec::new(),
            io_weight: None,
            oom_group: None,
            parent: None,
            compat: CompatLevel::BestEffort,
        }
    }

    /// The most memory the sandbox may use, in bytes (`memory.max`; v1
    /// `memory.limit_in_bytes`). Beyond it the kernel reclaims, then the OOM killer kills in
    /// the sandbox ([`WaitInfo::oom_killed`](crate::WaitInfo::oom_killed)). Swap is 0 unless
    /// [`memory_swap_max`](Limits::memory_swap_max) says otherwise, so a hog is killed rather
    /// than swapped.
    pub fn memory_max(mut self, bytes: u64) -> Limits {
        self.memory_max = Some(bytes);
        self
    }

    /// How much swap the sandbox may use beyond [`memory_max`](Limits::memory_max)
    /// (`memory.swap.max`; on v1, `memory.memsw.limit_in_bytes` = memory + swap). Needs
    /// `memory_max`.
    pub fn memory_swap_max(mut self, bytes: u64) -> Limits {
        self.memory_swap_max = Some(bytes);
        self
    }

    /// Where the kernel starts throttling and reclaiming hard (`memory.high`, cgroup v2 only).
    pub fn memory_high(mut self, bytes: u64) -> Limits {
        self.memory_high = Some(bytes);
        self
    }

    /// The most tasks (processes and threads) the sandbox may have at once (`pids.max`):
    /// a fork bomb stops there. It counts every task, nscell's own too: the
    /// [`init`](crate::Sandbox::init), and for a few microseconds of the setup the helper that
    /// locks the mounts, so `pids_max(1)` with an init fails in setup.
    pub fn pids_max(mut self, max: u64) -> Limits {
        self.pids_max = Some(max);
        self
    }

    /// At most `quota_us` of CPU time every `period_us` (`cpu.max`; v1
    /// `cpu.cfs_quota_us`/`cpu.cfs_period_us`). The quota is at least 1000 µs, the period
    /// 1000 µs to 1 s.
    pub fn cpu_max(mut self, quota_us: u64, period_us: u64) -> Limits {
        self.cpu = Some(Cpu::Max { quota_us, period_us });
        self
    }

    /// At most `cpus` CPUs' worth of time, as `docker --cpus`: a quota of `cpus × 100 ms` every
    /// 100 ms (at least 0.01).
    pub fn cpus(mut self, cpus: f64) -> Limits {
        self.cpu = Some(Cpu::Cpus(cpus));
        self
    }

    /// The sandbox's share of CPU time against its siblings when the CPU is contended, 1 to
    /// 10000 (default 100) as cgroup v2's `cpu.weight`. On v1 it is written as `cpu.shares`
    /// by [`weight_to_shares`] (100 → 1024), the inverse of the conversion the OCI runtimes
    /// make, so each runtime reads back the same weight.
    pub fn cpu_weight(mut self, weight: u64) -> Limits {
        self.cpu_weight = Some(weight);
        self
    }

    /// The CPUs the sandbox may run on, as a list (`0-3,8`; `cpuset.cpus`).
    pub fn cpus_allowed(mut self, list: impl Into<String>) -> Limits {
        self.cpus_allowed = Some(list.into());
        self
    }

    /// At most these rates of reading and writing the block device `device` (its node, as
    /// `/dev/vda`; repeatable, one call per device): `io.max`, on v1 the
    /// `blkio.throttle.*_device` files. A rate left `None` is not limited.
    pub fn io_max(mut self, device: impl Into<PathBuf>, max: IoMax) -> Limits {
        self.io_max.push((device.into(), max));
        self
    }

    /// The sandbox's share of contended block IO, 1 to 10000 (default 100), as cgroup v2's
    /// `io.weight`; on v1 `blkio.bfq.weight` or `blkio.weight` (1 to 1000: the weight / 10),
    /// which exist only where the device's IO scheduler is BFQ or CFQ.
    pub fn io_weight(mut self, weight: u64) -> Limits {
        self.io_weight = Some(weight);
        self
    }

    /// Whether an OOM kill takes the whole sandbox (`memory.oom.group`, cgroup v2; default
    /// true) rather than the one process the kernel picks.
    pub fn oom_group(mut self, whole: bool) -> Limits {
        self.oom_group = Some(whole);
        self
    }

    /// Where the sandbox's cgroup is created. By default under the caller's own cgroup in
    /// each hierarchy. A relative path is below the caller's own cgroup; an absolute one is a
    /// cgroup path as `/proc/self/cgroup` writes them (`/ci/jobs`, below each hierarchy's
    /// root, as runc takes `cgroupsPath`); a path under a cgroupfs mount
    /// (`/sys/fs/cgroup/jobs`) names one hierarchy (then every limit must be in it). The
    /// parent must exist and be writable (delegated); `..` is refused.
    pub fn parent(mut self, path: impl Into<PathBuf>) -> Limits {
        self.parent = Some(path.into());
        self
    }

    /// Whether every limit must hold ([`CompatLevel::HardRequirement`]: the spawn fails with
    /// [`Error::Unsupported`] naming what this host cannot enforce) or what holds is enough
    /// ([`CompatLevel::BestEffort`], the default: [`Cgroup::holds`] says what held).
    pub fn compat(mut self, level: CompatLevel) -> Limits {
        self.compat = level;
        self
    }

    /// The limits checked, in the units the files take.
    fn values(&self) -> Result<Values, Error> {
        let bad = |what: String| Err(Error::invalid(what));
        let positive = |name: &str, v: Option<u64>| match v {
            Some(0) => Err(Error::invalid(format!("{name} must be at least 1"))),
            _ => Ok(()),
        };
        positive("memory_max", self.memory_max)?;
        positive("memory_high", self.memory_high)?;
        positive("pids_max", self.pids_max)?;
        if self.memory_swap_max.is_some() && self.memory_max.is_none() {
            return bad("memory_swap_max needs memory_max (swap is counted beyond memory)".into());
        }
        let cpu_max = match self.cpu {
            None => None,
            Some(Cpu::Cpus(c)) => {
                if !(0.01..=1e6).contains(&c) {
                    return bad(format!("cpus({c}) must be a number of CPUs of at least 0.01"));
                }
                Some(((c * CPUS_PERIOD_US as f64).round() as u64, CPUS_PERIOD_US))
            }
            Some(Cpu::Max { quota_us, period_us }) => {
                if quota_us < 1000 || !(1000..=1_000_000).contains(&period_us) {
                    return bad(format!(
                        "cpu_max({quota_us}, {period_us}): the quota must be at least 1000 µs \
                         and the period 1000 µs to 1 s (the kernel's bounds)"
                    ));
                }
                Some((quota_us, period_us))
            }
        };
        if let Some(w) = self.cpu_weight {
            if !(1..=10_000).contains(&w) {
                return bad(format!("cpu_weight({w}) must be 1 to 10000"));
            }
        }
        if let Some(list) = &self.cpus_allowed {
            if !files::valid_cpu_list(list) {
                return bad(format!("cpus_allowed({list:?}) is not a cpu list like 0-3,8"));
            }
        }
        if let Some(w) = self.io_weight {
            if !(1..=10_000).contains(&w) {
                return bad(format!("io_weight({w}) must be 1 to 10000"));
            }
        }
        let mut io_max = Vec::new();
        for (device, max) in &self.io_max {
            let rates = [max.read_bps, max.write_bps, max.read_iops, max.write_iops];
            if rates.iter().all(Option::is_none) || rates.contains(&Some(0)) {
                return bad(format!(
                    "io_max({}): give at least one rate, each at least 1",
                    device.display()
                ));
            }
            let md = std::fs::metadata(device)
                .map_err(|e| Error::invalid(format!("io_max: {}: {e}", device.display())))?;
            use std::os::unix::fs::{FileTypeExt, MetadataExt};
            if !md.file_type().is_block_device() {
                return bad(format!("io_max: {} is not a block device", device.display()));
            }
            let rdev = md.rdev();
            io_max.push((rustix::fs::major(rdev), rustix::fs::minor(rdev), *max));
        }
        if let Some(p) = &self.parent {
            check_parent(p)?;
        }
        Ok(Values {
            memory_max: self.memory_max,
            swap: self.memory_swap_max,
            memory_high: self.memory_high,
            pids_max: self.pids_max,
            cpu_max,
            cpu_weight: self.cpu_weight,
            cpus_allowed: self.cpus_allowed.clone(),
            io_max,
            io_weight: self.io_weight,
            oom_group: self.oom_group.unwrap_or(true),
            oom_group_asked: self.oom_group == Some(true),
        })
    }

    /// The plan step: the sandbox's leaves made, their limits written and the fds the child
    /// needs opened. The returned cgroup removes its leaves when dropped (a setup failure).
    pub(crate) fn plan(&self) -> Result<Cgroup, Error> {
        let v = self.values()?;
        live::create(self, &v)
    }
}

/// Block IO rates for [`Limits::io_max`]: bytes and operations per second; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoMax {
    /// Bytes read per second (`rbps`).
    pub read_bps: Option<u64>,
    /// Bytes written per second (`wbps`).
    pub write_bps: Option<u64>,
    /// Reads per second (`riops`).
    pub read_iops: Option<u64>,
    /// Writes per second (`wiops`).
    pub write_iops: Option<u64>,
}

/// [`Limits`], checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Values {
    pub memory_max: Option<u64>,
    /// Swap beyond memory.
    pub swap: Option<u64>,
    pub memory_high: Option<u64>,
    pub pids_max: Option<u64>,
    /// Quota and period, in µs.
    pub cpu_max: Option<(u64, u64)>,
    pub cpu_weight: Option<u64>,
    pub cpus_allowed: Option<String>,
    /// Per device (major, minor): its rates.
    pub io_max: Vec<(u32, u32, IoMax)>,
    pub io_weight: Option<u64>,
    /// `memory.oom.group` where there is one (v2).
    pub oom_group: bool,
    /// Asked for explicitly: then it must hold (it holds nowhere on v1).
    pub oom_group_asked: bool,
}

impl Values {
    /// The limits asked for.
    fn asked(&self) -> Vec<Limit> {
        let mut out = Vec::new();
        let mut add = |on: bool, l| {
            if on {
                out.push(l)
            }
        };
        add(self.memory_max.is_some(), Limit::MemoryMax);
        add(self.memory_max.is_some(), Limit::MemorySwapMax);
        add(self.memory_high.is_some(), Limit::MemoryHigh);
        add(self.memory_max.is_some() && self.oom_group_asked, Limit::OomGroup);
        add(self.pids_max.is_some(), Limit::PidsMax);
        add(self.cpu_max.is_some(), Limit::CpuMax);
        add(self.cpu_weight.is_some(), Limit::CpuWeight);
        add(self.cpus_allowed.is_some(), Limit::CpusAllowed);
        add(!self.io_max.is_empty(), Limit::IoMax);
        add(self.io_weight.is_some(), Limit::IoWeight);
        out
    }
}

/// What the child reads of the sandbox's cgroup: the fds of the leaves it enters.
#[derive(Debug)]
pub(crate) struct CgroupPlan<'a> {
    /// The cgroup2 leaf, for `clone3`'s `cgroup` field (`CLONE_INTO_CGROUP`).
    pub into: Option<BorrowedFd<'a>>,
    /// The cgroup2 leaf's `cgroup.procs`, which the child writes itself when `clone3` could
    /// not be used; its index in the cgroup's leaves is `v2_index`.
    pub v2_procs: Option<BorrowedFd<'a>>,
    pub v2_index: usize,
    /// The v1 leaves' `cgroup.procs`, by the index of their leaf.
    pub join: [Option<BorrowedFd<'a>>; MAX_LEAVES],
    /// `unshare(CLONE_NEWCGROUP)` once the child is in every leaf ([`crate::Namespaces::CGROUP`]).
    pub unshare_ns: bool,
    /// The cgroupfs mount points made read-only in the sandbox's mount namespace (none
    /// without one).
    pub read_only: &'a [std::ffi::CString],
    /// A memory limit holds: the OOM killer of the sandbox's memory cgroup may pick the child,
    /// and with it every process that shares its memory ([`crate::spawn`] then shares none
    /// outside vfork).
    pub memory: bool,
}

/// A cgroup parent as [`Limits::parent`] and [`collect_garbage`] take it: not empty, no `..`.
fn check_parent(p: &Path) -> Result<(), Error> {
    if p.as_os_str().is_empty() || p.components().any(|c| c == Component::ParentDir) {
        return Err(Error::invalid(format!(
            "cgroup parent {} must be a path without ..",
            p.display()
        )));
    }
    Ok(())
}

/// The parent of the sandbox's leaf in hierarchy `i`, for `parent` (see [`Limits::parent`]).
fn parent_dir(
    parent: Option<&Path>,
    i: usize,
    own: &[(usize, PathBuf)],
    needed_by: &str,
) -> Result<PathBuf, Error> {
    let hs = host::hierarchies();
    let h = &hs[i];
    let own_dir = || {
        own.iter().find(|(j, _)| *j == i).map(|(_, d)| d.clone()).ok_or_else(|| {
            Error::invalid(format!(
                "this process has no cgroup in the {} hierarchy (/proc/self/cgroup)",
                h.name()
            ))
        })
    };
    match parent {
        None => own_dir(),
        Some(p) if p.is_relative() => Ok(own_dir()?.join(p)),
        Some(p) => match host::hierarchy_of(p) {
            Some(j) if j == i => Ok(p.to_path_buf()),
            Some(j) => Err(Error::invalid(format!(
                "cgroup parent {} is in the {} hierarchy, but {needed_by} needs {}: give a cgroup \
                 path as /proc/self/cgroup writes them (/jobs/ci), which names one cgroup in \
                 every hierarchy",
                p.display(),
                hs[j].name(),
                h.name()
            ))),
            None => Ok(h.point.join(p.strip_prefix("/").unwrap_or(p))),
        },
    }
}

/// A setup error of the cgroup's plan step with a hint of its own.
fn cg_error(step: Step, path: PathBuf, errno: rustix::io::Errno, hint: Option<String>) -> Error {
    let mut e = Error::setup(step, Some(path), errno.raw_os_error());
    if let (Some(h), Error::Setup { hint: slot, .. }) = (hint, &mut e) {
        *slot = Some(h);
    }
    e
}

/// A spawn's parent-side error, with the cgroup2 leaf named when `clone3` refused to create
/// the child in it.
pub(crate) fn describe_clone(e: Error, cgroup: Option<&Cgroup>) -> Error {
    let leaf = cgroup.and_then(Cgroup::v2_path);
    match (&e, leaf) {
        (Error::Setup { step: Step::Clone, source, .. }, Some(leaf)) => {
            let errno = source.raw_os_error().unwrap_or(0);
            if [libc::EACCES, libc::EBUSY, libc::EOPNOTSUPP, libc::ENODEV].contains(&errno) {
                return Error::setup(Step::CloneIntoCgroup, Some(leaf.to_path_buf()), errno);
            }
            e
        }
        _ => e,
    }
}

impl Cgroup {
    /// A setup failure that the sandbox's memory limit caused (the kernel's allocations for it
    /// failed: `execve` says E2BIG or ENOMEM), said so.
    pub(crate) fn explain(&self, mut e: Error) -> Error {
        let errno = e.raw_os_error();
        let usage = self.usage();
        // v1's failcnt stays 0 where the limit was hit: the peak says it.
        let at_limit = match (usage.memory_peak, self.memory_max) {
            (Some(peak), Some(max)) => peak.saturating_add(4096) >= max,
            _ => false,
        };
        let hit =
            at_limit || usage.memory_max_hits.unwrap_or(0) > 0 || usage.oom_kills.unwrap_or(0) > 0;
        if hit && matches!(errno, Some(libc::E2BIG | libc::ENOMEM)) {
            let hint = "the sandbox's memory limit was reached before the program even started: \
                        raise memory_max (--memory)";
            if let Error::Exec { hint: slot, .. } | Error::Setup { hint: slot, .. } = &mut e {
                *slot = Some(hint.to_string());
            }
        }
        e
    }

    /// The child's failure record of a cgroup step as an error naming the leaf or the mount.
    pub(crate) fn describe(&self, f: &crate::error::Failure) -> Option<Error> {
        let path = match f.step {
            Step::JoinCgroup => {
                let (path, v2) = self.leaf(usize::from(f.index))?;
                path.join(live::join_file(v2))
            }
            Step::ReadOnlyCgroupfs => host::mount_points().get(usize::from(f.index))?.clone(),
            _ => return None,
        };
        Some(Error::setup(f.step, Some(path), f.errno))
    }
}

/// What [`Sandbox::check`](crate::Sandbox::check) found of cgroups here: the version, and for
/// each controller whether this user can use it and where, or why not. Found by reading only:
/// it makes no cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CgroupSupport {
    /// `v2`, `hybrid` (v1 hierarchies beside a cgroup2 tree), `v1`, or `none`.
    pub version: &'static str,
    /// memory, pids, cpu, cpuset, io, and `placement` (the cgroup2 leaf): the parent a sandbox's
    /// leaf would be made in and through which version, or why it cannot be.
    pub controllers: Vec<ControllerRow>,
}

/// A controller's name (or `placement`) and where this user can use it, or why not.
pub type ControllerRow = (&'static str, Result<(Held, PathBuf), String>);

impl CgroupSupport {
    /// Whether `name` (`memory`, `pids`, `cpu`, `cpuset`, `io`, `placement`) is usable.
    pub fn usable(&self, name: &str) -> bool {
        self.controllers.iter().any(|(n, r)| *n == name && r.is_ok())
    }
}

/// [`CgroupSupport`] for the caller, under its own cgroups.
pub(crate) fn support() -> CgroupSupport {
    let hs = host::hierarchies();
    let own = host::own_dirs();
    let (v1, v2) = (hs.iter().any(|h| !h.v2), hs.iter().position(|h| h.v2));
    let version = match (v1, v2.is_some()) {
        (true, true) => "hybrid",
        (false, true) => "v2",
        (true, false) => "v1",
        (false, false) => "none",
    };
    let writable = |dir: &Path| match live::may_write(dir) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::ROFS) => {
            Err(format!("{} is on a read-only cgroupfs", dir.display()))
        }
        Err(_) => Err(format!(
            "not delegated: {}/cgroup.procs is not writable by this user (systemd: Delegate=yes)",
            dir.display()
        )),
    };
    let row = |name: &'static str, c: Option<Controller>| {
        let i = match host::serving(c) {
            Ok(i) => i,
            Err(why) => return (name, Err(why)),
        };
        let held = if hs[i].v2 { Held::V2 } else { Held::V1 };
        let parent = match parent_dir(None, i, &own, name) {
            Ok(p) => p,
            Err(e) => return (name, Err(e.to_string())),
        };
        if let Err(why) = writable(&parent) {
            return (name, Err(why));
        }
        if let (Held::V2, Some(c)) = (&held, c) {
            if !live::lists(&parent, "cgroup.controllers", c) {
                return (name, Err(format!("not delegated to {}", parent.display())));
            }
            let populated = std::fs::read_to_string(parent.join("cgroup.procs"))
                .is_ok_and(|p| !p.trim().is_empty());
            if !live::lists(&parent, "cgroup.subtree_control", c) && populated {
                // Beside the caller's cgroup, as a spawn would go (see `live::make_leaf`).
                let beside = live::sibling_parent(&parent, &hs[i].point)
                    .filter(|p| live::writable(p) && live::lists(p, "cgroup.controllers", c));
                if let Some(p) = beside {
                    return (name, Ok((held, p)));
                }
                return (
                    name,
                    Err(format!(
                        "{} holds processes, so cgroup v2 enables no controller in it (no internal \
                     processes), and its parent is not writable: give a Limits::parent without \
                     processes",
                        parent.display()
                    )),
                );
            }
        }
        (name, Ok((held, parent)))
    };
    let controllers = vec![
        row("memory", Some(Controller::Memory)),
        row("pids", Some(Controller::Pids)),
        row("cpu", Some(Controller::Cpu)),
        row("cpuset", Some(Controller::Cpuset)),
        row("io", Some(Controller::Io)),
        row("placement", None),
    ];
    CgroupSupport { version, controllers }
}

impl fmt::Display for CgroupSupport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cgroups: {}", self.version)?;
        for (name, r) in &self.controllers {
            match r {
                Ok((held, parent)) => {
                    let via = if *held == Held::V2 { "cgroup2" } else { "v1" };
                    write!(f, "\n  {name:<9} yes ({via}, under {})", parent.display())?
                }
                Err(why) => write!(f, "\n  {name:<9} no: {why}")?,
            }
        }
        Ok(())
    }
}
