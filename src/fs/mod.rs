//! Filesystem isolation: an ordered list of mount operations that builds a new root.
//!
//! The builder side ([`Sandbox::bind`](crate::Sandbox::bind) and friends) records [`Op`]s;
//! [`FsConfig::plan`] turns them, before `clone`, into an [`FsPlan`] of `CString`s (every
//! destination already split into its components), and [`crate::child::fs::apply`] runs in the
//! child under the rules of [`crate::child`]: raw system calls only, no allocation.
//!
//! What the child does, bubblewrap's way but through file descriptors:
//!
//! 1. Every bind source (and each host device node of a minimal `/dev`) is cloned with
//!    `open_tree(OPEN_TREE_CLONE | AT_RECURSIVE)` while the host view is intact: a detached copy
//!    of the mount tree, held by an fd.
//! 2. A fresh tmpfs (or the [`rootfs`](crate::Sandbox::rootfs) bind) is attached on `/tmp` of the
//!    child's private mount namespace; it will become `/`.
//! 3. Each operation runs in order. Every destination is resolved *inside* the new root with
//!    `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: a symlink planted in a bind source
//!    (`../..`, `/etc`) resolves within the new root, never to the host. Missing mount points are
//!    created as bubblewrap creates them (directories 0755, files 0444), and mounts are attached
//!    with `move_mount` onto those fds. Read-only binds are made read-only for every submount with
//!    `mount_setattr(AT_RECURSIVE)` before they are attached.
//! 4. `pivot_root(".", ".")` into the new root, the old root is detached (`MNT_DETACH`), and the
//!    working directory is checked to be the new root.
//!
//! A procfs is mounted in step 3, while the host's is still fully visible: inside a user
//! namespace the kernel refuses a new procfs when none is.

use crate::Namespaces;
use crate::error::Failure;
use crate::error::{Error, Step};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{FileType, OFlags};
use rustix::mount::MountAttrFlags as A;
use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::AtomicI32;

/// What a bind mount allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BindKind {
    ReadWrite,
    ReadOnly,
    Devices,
}

/// A file's contents, for [`Sandbox::file`](crate::Sandbox::file) and [`Sandbox::file_from_fd`](crate::Sandbox::file_from_fd).
#[derive(Debug)]
pub(crate) enum Contents {
    Bytes(Vec<u8>),
    Fd(OwnedFd),
}

/// Where an overlay's writes go.
#[derive(Debug)]
pub(crate) enum Upper {
    /// Host directories: the upper layer and its work directory (`--overlay`).
    Dirs { upper: PathBuf, work: PathBuf },
    /// A tmpfs of the sandbox's own, gone with it (`--tmp-overlay`).
    Tmpfs,
    /// Nowhere: the overlay is read-only (`--ro-overlay`).
    ReadOnly,
}

/// One filesystem operation, as given to the builder.
#[derive(Debug)]
pub(crate) enum Op {
    Bind {
        src: PathBuf,
        dest: PathBuf,
        kind: BindKind,
        skip_missing: bool,
    },
    /// A bind of what an open fd names ([`Sandbox::bind_fd`](crate::Sandbox::bind_fd)).
    BindFd {
        fd: OwnedFd,
        dest: PathBuf,
        kind: BindKind,
    },
    /// A file of the sandbox's own, bind-mounted on `dest`
    /// ([`Sandbox::bind_data`](crate::Sandbox::bind_data)).
    BindData {
        dest: PathBuf,
        contents: Contents,
        mode: Option<u32>,
        read_only: bool,
    },
    /// An overlayfs ([`Sandbox::overlay`](crate::Sandbox::overlay) and friends); `lowers` from
    /// the lowest up.
    Overlay {
        lowers: Vec<PathBuf>,
        upper: Upper,
        dest: PathBuf,
    },
    Tmpfs {
        dest: PathBuf,
        size: Option<u64>,
        mode: Option<u32>,
    },
    Proc {
        dest: PathBuf,
    },
    Dev {
        dest: PathBuf,
    },
    Mqueue {
        dest: PathBuf,
    },
    /// A sysfs ([`Sandbox::sysfs`](crate::Sandbox::sysfs)).
    Sysfs {
        dest: PathBuf,
    },
    Dir {
        dest: PathBuf,
        mode: Option<u32>,
    },
    Symlink {
        target: PathBuf,
        dest: PathBuf,
    },
    File {
        dest: PathBuf,
        contents: Contents,
        mode: Option<u32>,
    },
    Chmod {
        path: PathBuf,
        mode: u32,
    },
    RemountRo {
        dest: PathBuf,
    },
    /// `dest` alone made read-only: bound on itself ([`Sandbox::read_only`](crate::Sandbox::read_only)).
    ReadOnly {
        dest: PathBuf,
    },
    /// The sandbox's own cgroups, read-only ([`Sandbox::cgroup_view`](crate::Sandbox::cgroup_view)).
    CgroupView {
        dest: PathBuf,
    },
}

impl Op {
    /// The path the operation makes or changes in the new root.
    pub(crate) fn dest(&self) -> Option<&Path> {
        match self {
            Op::Bind { dest, .. }
            | Op::BindFd { dest, .. }
            | Op::BindData { dest, .. }
            | Op::Overlay { dest, .. }
            | Op::Tmpfs { dest, .. }
            | Op::Proc { dest }
            | Op::Dev { dest }
            | Op::Mqueue { dest }
            | Op::Sysfs { dest }
            | Op::Dir { dest, .. }
            | Op::Symlink { dest, .. }
            | Op::File { dest, .. }
            | Op::RemountRo { dest }
            | Op::ReadOnly { dest }
            | Op::CgroupView { dest } => Some(dest),
            Op::Chmod { .. } => None,
        }
    }

    /// The operation named for an error: "bind" and the paths, as the step's phrase reads.
    pub(crate) fn subject(&self) -> String {
        let d = |p: &Path| p.display().to_string();
        match self {
            Op::Bind { src, dest, .. } => format!("{} to {}", d(src), d(dest)),
            Op::BindFd { fd, dest, .. } => format!("fd {} to {}", fd.as_raw_fd(), d(dest)),
            Op::Overlay { lowers, upper, dest } => {
                let mut layers: Vec<String> = lowers.iter().rev().map(|p| d(p)).collect();
                if let Upper::Dirs { upper, .. } = upper {
                    layers.insert(0, d(upper));
                }
                format!("{} (layers from the top: {})", d(dest), layers.join(", "))
            }
            Op::Symlink { target, dest } => format!("{} -> {}", d(dest), d(target)),
            Op::Chmod { path, .. } => d(path),
            Op::Tmpfs { dest, .. }
            | Op::BindData { dest, .. }
            | Op::Proc { dest }
            | Op::Dev { dest }
            | Op::Mqueue { dest }
            | Op::Sysfs { dest }
            | Op::Dir { dest, .. }
            | Op::File { dest, .. }
            | Op::RemountRo { dest }
            | Op::ReadOnly { dest }
            | Op::CgroupView { dest } => d(dest),
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Bind { kind: BindKind::ReadWrite, skip_missing: false, .. } => "bind",
            Op::Bind { kind: BindKind::ReadWrite, skip_missing: true, .. } => "bind_try",
            Op::Bind { kind: BindKind::ReadOnly, skip_missing: false, .. } => "ro_bind",
            Op::Bind { kind: BindKind::ReadOnly, skip_missing: true, .. } => "ro_bind_try",
            Op::Bind { kind: BindKind::Devices, skip_missing: false, .. } => "dev_bind",
            Op::Bind { kind: BindKind::Devices, skip_missing: true, .. } => "dev_bind_try",
            Op::BindFd { kind: BindKind::ReadOnly, .. } => "ro_bind_fd",
            Op::BindFd { .. } => "bind_fd",
            Op::BindData { read_only: false, .. } => "bind_data",
            Op::BindData { read_only: true, .. } => "ro_bind_data",
            Op::Overlay { upper: Upper::Dirs { .. }, .. } => "overlay",
            Op::Overlay { upper: Upper::Tmpfs, .. } => "tmp_overlay",
            Op::Overlay { upper: Upper::ReadOnly, .. } => "ro_overlay",
            Op::Tmpfs { .. } => "tmpfs",
            Op::Proc { .. } => "proc",
            Op::Dev { .. } => "dev",
            Op::Mqueue { .. } => "mqueue",
            Op::Sysfs { .. } => "sysfs",
            Op::Dir { .. } => "dir",
            Op::Symlink { .. } => "symlink",
            Op::File { .. } => "file",
            Op::Chmod { .. } => "chmod",
            Op::RemountRo { .. } => "remount_ro",
            Op::ReadOnly { .. } => "read_only",
            Op::CgroupView { .. } => "cgroup_view",
        }
    }
}

/// The filesystem operations of a [`Sandbox`](crate::Sandbox), in order.
#[derive(Debug, Default)]
pub(crate) struct FsConfig {
    pub(crate) ops: Vec<Op>,
    /// Use the fallback for kernels without `mount_setattr` even where it exists (tests).
    pub(crate) force_remount: bool,
}

impl FsConfig {
    /// Whether an operation shows the sandbox's cgroups ([`Op::CgroupView`]).
    pub(crate) fn has_cgroup_view(&self) -> bool {
        self.ops.iter().any(|op| matches!(op, Op::CgroupView { .. }))
    }
}

/// One component of a destination inside the new root: the path up to and including it
/// (`/usr/lib`), and its name alone (`lib`).
pub(crate) struct Comp {
    pub(crate) prefix: CString,
    pub(crate) name: CString,
}

pub(crate) enum Kind<'a> {
    Bind {
        src: CString,
        attrs: A,
    },
    Tmpfs {
        size: Option<CString>,
        mode: CString,
    },
    Proc,
    Dev,
    Mqueue,
    Sysfs,
    Dir {
        mode: u32,
    },
    Symlink {
        target: CString,
    },
    /// The contents: `bytes`, or what `fd` (the sandbox's own) reads to its end.
    File {
        bytes: Vec<u8>,
        fd: Option<BorrowedFd<'a>>,
        mode: u32,
    },
    Chmod {
        mode: u32,
    },
    RemountRo,
    /// The path bound on itself, then read-only.
    ReadOnly,
    /// What an open fd names: `link` is its `/proc/self/fd/N`, which the child reads (a mount
    /// of the caller's namespace cannot be cloned into the sandbox's; its path can).
    BindFd {
        link: CString,
        fd: BorrowedFd<'a>,
        attrs: A,
    },
    /// A file made as `name` on the scratch tmpfs, with exactly `mode` and the contents (`bytes`,
    /// or what `fd` reads to its end), bind-mounted on the destination.
    BindData {
        name: CString,
        bytes: Vec<u8>,
        fd: Option<BorrowedFd<'a>>,
        mode: u32,
        attrs: A,
    },
    /// An overlayfs: the host directories `lowers`, from the lowest up (each opened into a slot
    /// while the host view is intact), and where its writes go.
    Overlay {
        lowers: Vec<CString>,
        upper: PlannedUpper,
    },
}

/// [`Upper`], planned.
pub(crate) enum PlannedUpper {
    /// Host directories, opened into the two slots after the lowers'.
    Dirs {
        upper: CString,
        work: CString,
    },
    /// A directory `name` on the scratch tmpfs, holding `upper` and `work`.
    Tmpfs {
        name: CString,
    },
    ReadOnly,
}

pub(crate) struct Planned<'a> {
    pub(crate) kind: Kind<'a>,
    pub(crate) skip_missing: bool,
    pub(crate) dest: Vec<Comp>,
    /// The mode of parent directories the operation creates ([`parent_mode`]).
    pub(crate) parent_mode: u32,
    /// The first fd slot of this operation in [`FsPlan::slots`].
    pub(crate) slot: usize,
    /// The index of the operation in [`FsConfig::ops`] this comes from (a cgroup view is
    /// several), which a failure record names.
    pub(crate) index: usize,
}

/// The filesystem operations, ready for the child.
pub(crate) struct FsPlan<'a> {
    pub(crate) ops: Vec<Planned<'a>>,
    /// Whether the first operation binds a directory on `/` (the rootfs).
    pub(crate) root_bind: bool,
    /// Where the new root is attached before `pivot_root`.
    pub(crate) attach: &'static CStr,
    /// fds the child opens in its first pass (bind sources, device nodes), -1 when none.
    pub(crate) slots: Vec<AtomicI32>,
    pub(crate) force_remount: bool,
    /// Whether an operation needs the scratch tmpfs (data binds, tmpfs overlays): a tmpfs
    /// attached on [`attach`](FsPlan::attach) below the new root, out of its reach, that goes
    /// with the old root.
    pub(crate) scratch: bool,
}

/// The mode of the parent directories an operation of `mode` creates, bubblewrap's rule: the
/// owner has rwx; the group r-x if `mode` gives the group anything, others r-x if it gives
/// them anything; 0755 for an operation without a mode (a bind, a symlink).
pub(crate) fn parent_mode(mode: Option<u32>) -> u32 {
    let Some(mode) = mode else { return 0o755 };
    let mut parent = 0o700;
    if mode & 0o070 != 0 {
        parent |= 0o050;
    }
    if mode & 0o007 != 0 {
        parent |= 0o005;
    }
    parent
}

/// The host device nodes of a minimal `/dev`.
pub(crate) const DEV_NODES: [(&CStr, &CStr); 6] = [
    (c"/dev/null", c"null"),
    (c"/dev/zero", c"zero"),
    (c"/dev/full", c"full"),
    (c"/dev/random", c"random"),
    (c"/dev/urandom", c"urandom"),
    (c"/dev/tty", c"tty"),
];

pub(crate) const DEV_LINKS: [(&CStr, &CStr); 6] = [
    (c"/proc/self/fd", c"fd"),
    (c"/proc/kcore", c"core"),
    (c"/proc/self/fd/0", c"stdin"),
    (c"/proc/self/fd/1", c"stdout"),
    (c"/proc/self/fd/2", c"stderr"),
    (c"pts/ptmx", c"ptmx"),
];

pub(crate) fn cstring(what: &str, p: &OsStr) -> Result<CString, Error> {
    CString::new(p.as_bytes())
        .map_err(|_| Error::invalid(format!("{what} {p:?} contains a NUL byte")))
}

/// Splits a destination into its components; `..` is refused (a destination names a place in
/// the new root, not a walk through it).
pub(crate) fn components(dest: &Path) -> Result<Vec<Comp>, Error> {
    let mut out = Vec::new();
    let mut prefix = Vec::new();
    for c in dest.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => {
                prefix.push(b'/');
                prefix.extend_from_slice(name.as_bytes());
                out.push(Comp {
                    prefix: cstring("destination", OsStr::from_bytes(&prefix))?,
                    name: cstring("destination", name)?,
                });
            }
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::invalid(format!(
                    "destination {} contains '..'; name the place inside the new root directly",
                    dest.display()
                )));
            }
        }
    }
    Ok(out)
}

pub(crate) fn mode_ok(mode: u32) -> Result<u32, Error> {
    if mode > 0o7777 {
        Err(Error::invalid(format!("mode {mode:o} is not a permission mode (at most 7777)")))
    } else {
        Ok(mode)
    }
}

/// A directory cannot be the contents of a file: say so about the fd, before the child fails
/// with `EISDIR` in a way that reads as if the destination were the directory.
pub(crate) fn contents_fd_readable(fd: &OwnedFd, dest: &Path) -> Result<(), Error> {
    let bad = |what: &str| {
        Err(Error::invalid(format!(
            "the fd given for the contents of {} (fd {}) {what}; it must be open for reading on \
             a file, a pipe or a socket",
            dest.display(),
            fd.as_raw_fd()
        )))
    };
    if rustix::fs::fstat(fd).is_ok_and(|st| FileType::from_raw_mode(st.st_mode).is_dir()) {
        return bad("is a directory");
    }
    // Write-only or O_PATH: the child's read would fail with EBADF, as if about the file made.
    let flags = rustix::fs::fcntl_getfl(fd).unwrap_or(OFlags::RDONLY);
    if flags & OFlags::RWMODE == OFlags::WRONLY || flags.contains(OFlags::PATH) {
        return bad("is not open for reading");
    }
    Ok(())
}

/// The source of the new root (a rootfs) must be a directory; a missing one is left to the
/// child, which names the bind that failed.
pub(crate) fn new_root_is_a_directory(src: &Path) -> Result<(), Error> {
    match std::fs::metadata(src) {
        Ok(m) if !m.is_dir() => Err(Error::invalid(format!(
            "the new root {} is not a directory (a rootfs is a directory tree)",
            src.display()
        ))),
        _ => Ok(()),
    }
}

impl FsConfig {
    /// The plan step: the operations as a plan for the child, `None` when there are none (the
    /// host view).
    pub(crate) fn plan(
        &self,
        ctx: &crate::context::Context<'_>,
    ) -> Result<Option<FsPlan<'_>>, Error> {
        prepare(self, ctx.namespaces, ctx.cgroup_leaves)
    }
}

fn prepare<'a>(
    cfg: &'a FsConfig,
    ns: Namespaces,
    cgroup_leaves: &[(PathBuf, String)],
) -> Result<Option<FsPlan<'a>>, Error> {
    if cfg.ops.is_empty() {
        return Ok(None);
    }
    if !ns.contains(Namespaces::MOUNT) {
        return Err(Error::invalid(
            "filesystem operations need Namespaces::MOUNT (without it the host's mounts would change)",
        ));
    }
    let attach = [c"/tmp", c"/run", c"/mnt", c"/var/tmp"]
        .into_iter()
        .find(|p| {
            let p = Path::new(OsStr::from_bytes(p.to_bytes()));
            std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
        })
        .ok_or_else(|| Error::Unsupported {
            feature: "a new root",
            reason: "none of /tmp, /run, /mnt, /var/tmp is a directory to build it on".into(),
        })?;
    let mut ops = Vec::with_capacity(cfg.ops.len());
    let mut slots = 0;
    let mut root_bind = false;
    let mut scratch = false;
    for (i, op) in cfg.ops.iter().enumerate() {
        // The name of this operation's entry on the scratch tmpfs.
        let scratch_name = || CString::new(format!("op-{i}")).unwrap_or_default();
        let (kind, dest, skip, nslots, mode) = match op {
            Op::Bind { src, dest, kind, skip_missing } => {
                let src = cstring("bind source", src.as_os_str())?;
                (Kind::Bind { src, attrs: bind_attrs(*kind) }, dest, *skip_missing, 1, None)
            }
            Op::BindFd { fd, dest, kind } => {
                let link =
                    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default();
                let kind = Kind::BindFd { link, fd: fd.as_fd(), attrs: bind_attrs(*kind) };
                (kind, dest, false, 1, None)
            }
            Op::BindData { dest, contents, mode, read_only } => {
                let (bytes, fd) = contents_of(contents, dest)?;
                let mode = mode_ok(mode.unwrap_or(0o600))?;
                let kind = if *read_only { BindKind::ReadOnly } else { BindKind::ReadWrite };
                scratch = true;
                let name = scratch_name();
                (
                    Kind::BindData { name, bytes, fd, mode, attrs: bind_attrs(kind) },
                    dest,
                    false,
                    0,
                    Some(mode),
                )
            }
            Op::Overlay { lowers, upper, dest } => {
                let least = if matches!(upper, Upper::ReadOnly) { 2 } else { 1 };
                if lowers.len() < least {
                    return Err(Error::invalid(overlay_too_few(op, lowers.len(), least)));
                }
                let lowers = lowers
                    .iter()
                    .map(|p| cstring("overlay source", p.as_os_str()))
                    .collect::<Result<Vec<_>, _>>()?;
                let n = lowers.len();
                let (upper, more) = match upper {
                    Upper::Dirs { upper, work } => {
                        let upper = cstring("overlay upper directory", upper.as_os_str())?;
                        let work = cstring("overlay work directory", work.as_os_str())?;
                        (PlannedUpper::Dirs { upper, work }, 2)
                    }
                    Upper::Tmpfs => {
                        scratch = true;
                        (PlannedUpper::Tmpfs { name: scratch_name() }, 0)
                    }
                    Upper::ReadOnly => (PlannedUpper::ReadOnly, 0),
                };
                (Kind::Overlay { lowers, upper }, dest, false, n + more, None)
            }
            Op::Tmpfs { dest, size, mode } => {
                // The kernel reads size=0 as "no limit": refuse it rather than give that.
                if *size == Some(0) {
                    return Err(Error::invalid(format!(
                        "the tmpfs on {} has size 0; a size limit is at least 1 byte (None \
                         for the default limit)",
                        dest.display()
                    )));
                }
                let mode = mode_ok(mode.unwrap_or(0o755))?;
                let kind = Kind::Tmpfs {
                    size: size.map(|s| CString::new(s.to_string()).unwrap_or_default()),
                    mode: CString::new(format!("{mode:o}")).unwrap_or_default(),
                };
                (kind, dest, false, 0, Some(mode))
            }
            Op::Proc { dest } => (Kind::Proc, dest, false, 0, None),
            Op::Dev { dest } => (Kind::Dev, dest, false, DEV_NODES.len(), None),
            Op::Mqueue { dest } => (Kind::Mqueue, dest, false, 0, None),
            Op::Sysfs { dest } => (Kind::Sysfs, dest, false, 0, None),
            Op::Dir { dest, mode } => {
                let mode = mode_ok(mode.unwrap_or(0o755))?;
                (Kind::Dir { mode }, dest, false, 0, Some(mode))
            }
            Op::Symlink { target, dest } => {
                let target = cstring("symlink target", target.as_os_str())?;
                (Kind::Symlink { target }, dest, false, 0, None)
            }
            Op::File { dest, contents, mode } => {
                let (bytes, fd) = contents_of(contents, dest)?;
                let mode = mode_ok(mode.unwrap_or(0o666))?;
                (Kind::File { bytes, fd, mode }, dest, false, 0, Some(mode))
            }
            Op::Chmod { path, mode } => {
                (Kind::Chmod { mode: mode_ok(*mode)? }, path, false, 0, None)
            }
            Op::RemountRo { dest } => (Kind::RemountRo, dest, false, 0, None),
            Op::ReadOnly { dest } => (Kind::ReadOnly, dest, false, 0, None),
            Op::CgroupView { dest } => {
                for (kind, dest, nslots) in cgroup_view(dest, cgroup_leaves)? {
                    let dest = components(&dest)?;
                    if dest.is_empty() {
                        return Err(Error::invalid(
                            "cgroup_view(\"/\"): the view needs a place below /",
                        ));
                    }
                    let parent_mode = parent_mode(None);
                    ops.push(Planned {
                        kind,
                        skip_missing: false,
                        dest,
                        parent_mode,
                        slot: slots,
                        index: i,
                    });
                    slots += nslots;
                }
                continue;
            }
        };
        let comps = components(dest)?;
        if comps.is_empty() {
            match (&kind, op) {
                (Kind::Bind { attrs, .. }, Op::Bind { src, .. }) => {
                    new_root_is_a_directory(src)?;
                    // Without mount_setattr a read-only root stacked on later is remounted
                    // mount by mount, which fails (EPERM) under mounts the kernel locks (a
                    // /proc the caller's mount namespace made): refused rather than half done.
                    let fallback = cfg.force_remount || !crate::kernel::mount_setattr();
                    if i > 0 && fallback && attrs.contains(A::MOUNT_ATTR_RDONLY) {
                        return Err(Error::Unsupported {
                            feature: "a read-only bind on / after other filesystem operations",
                            reason: "this kernel has no mount_setattr (Linux 5.12+)".into(),
                        });
                    }
                    // The first operation's bind is the new root itself (no tmpfs under it).
                    root_bind |= i == 0;
                }
                (Kind::Symlink { .. } | Kind::File { .. } | Kind::BindData { .. }, _) => {
                    return Err(Error::invalid(format!(
                        "filesystem operation {} ({} {}) targets / itself, which is a \
                         directory: only mounts, dir, chmod and remount_ro can",
                        i + 1,
                        op.name(),
                        op.subject()
                    )));
                }
                _ => {}
            }
        }
        let parent_mode = parent_mode(mode);
        ops.push(Planned {
            kind,
            skip_missing: skip,
            dest: comps,
            parent_mode,
            slot: slots,
            index: i,
        });
        slots += nslots;
    }
    Ok(Some(FsPlan {
        ops,
        root_bind,
        attach,
        slots: (0..slots).map(|_| AtomicI32::new(-1)).collect(),
        // Without mount_setattr, every read-only bind is remounted once attached.
        force_remount: cfg.force_remount || !crate::kernel::mount_setattr(),
        scratch,
    }))
}

/// The attributes of a bind: always `nosuid`, `nodev` but for device binds, `ro` for read-only.
fn bind_attrs(kind: BindKind) -> A {
    let mut attrs = A::MOUNT_ATTR_NOSUID;
    if kind != BindKind::Devices {
        attrs |= A::MOUNT_ATTR_NODEV;
    }
    if kind == BindKind::ReadOnly {
        attrs |= A::MOUNT_ATTR_RDONLY;
    }
    attrs
}

/// The bytes or the fd a file's contents come from.
fn contents_of<'a>(
    contents: &'a Contents,
    dest: &Path,
) -> Result<(Vec<u8>, Option<BorrowedFd<'a>>), Error> {
    match contents {
        Contents::Bytes(b) => Ok((b.clone(), None)),
        Contents::Fd(fd) => {
            contents_fd_readable(fd, dest)?;
            Ok((Vec::new(), Some(fd.as_fd())))
        }
    }
}

/// Why an overlay with `have` lower layers cannot be made (it needs `least`).
fn overlay_too_few(op: &Op, have: usize, least: usize) -> String {
    let why = if least == 2 {
        "a read-only overlay (no upper layer) stacks at least two lower layers; \
         bubblewrap's --ro-overlay requires at least two --overlay-src"
    } else {
        "an overlay needs at least one lower layer; bubblewrap's --overlay and --tmp-overlay \
         require at least one --overlay-src"
    };
    let dest = op.dest().map(|d| d.display().to_string()).unwrap_or_default();
    format!("the {} on {dest} has {have} lower layer(s): {why}", op.name())
}

/// A cgroup view at `dest`, as operations: the one leaf bound read-only on `dest` (cgroup v2
/// alone), or a tmpfs with each leaf bound read-only under its hierarchy's name (`memory`,
/// `pids`, `unified`, ...), as `/sys/fs/cgroup` names them, made read-only in turn. Never a
/// cgroupfs mount of its own: a writable v1 hierarchy would give the program `release_agent`
/// (CVE-2022-0492).
fn cgroup_view<'a>(
    dest: &Path,
    leaves: &[(PathBuf, String)],
) -> Result<Vec<(Kind<'a>, PathBuf, usize)>, Error> {
    let bind = |src: &Path| -> Result<Kind<'a>, Error> {
        let attrs = A::MOUNT_ATTR_RDONLY
            | A::MOUNT_ATTR_NOSUID
            | A::MOUNT_ATTR_NODEV
            | A::MOUNT_ATTR_NOEXEC;
        Ok(Kind::Bind { src: cstring("cgroup view source", src.as_os_str())?, attrs })
    };
    match leaves {
        [] => Err(Error::invalid(
            "cgroup_view (--cgroup-view) needs Sandbox::limits (a limit such as --memory): a cgroup \
             of the sandbox's own to show",
        )),
        [(leaf, _)] => Ok(vec![(bind(leaf)?, dest.to_path_buf(), 1)]),
        _ => {
            let tmpfs = Kind::Tmpfs { size: None, mode: c"755".to_owned() };
            let mut out = vec![(tmpfs, dest.to_path_buf(), 0)];
            for (leaf, name) in leaves {
                out.push((bind(leaf)?, dest.join(name), 1));
            }
            out.push((Kind::RemountRo, dest.to_path_buf(), 0));
            Ok(out)
        }
    }
}

/// The error for a failed filesystem step: the operation's position, name and paths.
impl FsConfig {
    /// The describe step: the error a failed filesystem operation makes, naming the operation,
    /// its paths and a hint; `None` for a failure of another step.
    pub(crate) fn describe(&self, f: &Failure, namespaces: Namespaces) -> Option<Error> {
        describe(self, f, namespaces)
    }
}

fn describe(cfg: &FsConfig, f: &Failure, namespaces: Namespaces) -> Option<Error> {
    let op_step = matches!(
        f.step,
        Step::BindMount
            | Step::MountTmpfs
            | Step::MountProcAt
            | Step::MountDev
            | Step::MountMqueue
            | Step::MountSysfs
            | Step::CreateDir
            | Step::CreateSymlink
            | Step::CreateFile
            | Step::Chmod
            | Step::RemountReadOnly
            | Step::FindSource
            | Step::MountOverlay
            | Step::BindData
    );
    if !op_step {
        return matches!(f.step, Step::NewRoot | Step::PivotRoot)
            .then(|| Error::setup_in(f.step, None, f.errno, namespaces));
    }
    let i = usize::from(f.index);
    let op = cfg.ops.get(i)?;
    if f.step == Step::FindSource {
        let n = cfg.ops.len();
        let position =
            format!("filesystem operation {} of {n} ({} {})", i + 1, op.name(), op.subject());
        return Some(describe_source(op, f.errno, position));
    }
    let specific = match (f.step, f.errno) {
        (Step::BindMount, libc::ENOENT) => match op {
            Op::Bind { dest, .. } | Op::BindFd { dest, .. } => Some(format!(
                "{} cannot be reached in the new root (a symlink on the way points to a place \
                 that does not exist there)",
                dest.display()
            )),
            _ => None,
        },
        (Step::CreateSymlink, libc::EEXIST) => match op {
            Op::Symlink { dest, target } => Some(match existing_symlink(cfg, i, dest) {
                Some(Ok(there)) if there != *target => {
                    format!("existing destination is {}", there.display())
                }
                Some(Err(())) => "destination exists and is not a symlink".into(),
                _ => "existing destination is not a symlink to the same target".into(),
            }),
            _ => None,
        },
        (Step::MountOverlay, libc::ELOOP) => {
            Some("overlay directories may not overlap (a layer inside another)".into())
        }
        (Step::MountOverlay, libc::EINVAL) => Some(
            "overlayfs refused the layers: the work directory must be an empty directory on the \
             same filesystem as the upper one, and the upper filesystem must support user \
             extended attributes (userxattr)"
                .into(),
        ),
        (_, libc::EOVERFLOW) => Some(
            "the caller's own uid or gid is not in the sandbox's id maps, so the sandbox runs as \
             an unmapped id, which cannot own a new file or mount point: map it too \
             (IdMap::new(0, own id, 1), as --uid 0 and --gid 0 do)"
                .into(),
        ),
        (_, libc::EROFS) => Some(
            "a mount point or file must be created under a read-only mount: create it with an \
             earlier operation (dir, tmpfs) or pick a destination that exists"
                .into(),
        ),
        (Step::CreateFile, libc::EINVAL | libc::ELOOP) => Some(
            "the destination exists and is not a regular file (a FIFO, a device, a socket or a \
             symlink): files are written only into regular files"
                .into(),
        ),
        (Step::MountProcAt, libc::EPERM) => Some(
            "in a user namespace a procfs can be mounted only for a PID namespace the user \
             namespace owns (add Namespaces::PID)"
                .into(),
        ),
        (Step::MountSysfs, libc::EPERM) => Some(
            "in a user namespace a sysfs can be mounted only for a network namespace the user \
             namespace owns (add Namespaces::NET), or bind the host's /sys read-only instead"
                .into(),
        ),
        (Step::MountMqueue, libc::EPERM) => Some(
            "in a user namespace an mqueue can be mounted only for an IPC namespace the user \
             namespace owns (add Namespaces::IPC)"
                .into(),
        ),
        _ => None,
    };
    let position = format!("filesystem operation {} of {} ({})", i + 1, cfg.ops.len(), op.name());
    Some(Error::Setup {
        step: f.step,
        path: Some(PathBuf::from(op.subject())),
        source: std::io::Error::from_raw_os_error(f.errno),
        hint: Some(match specific {
            Some(s) => format!("{s}; {position}"),
            None => position,
        }),
    })
}

/// A source that could not be found or opened on the host: the error names it alone (the
/// path, as bubblewrap's "Can't find source path" does), the operation in the hint.
fn describe_source(op: &Op, errno: i32, position: String) -> Error {
    let path = match op {
        Op::Bind { src, .. } => src.clone(),
        Op::BindFd { fd, .. } => PathBuf::from(format!("fd {}", fd.as_raw_fd())),
        Op::Overlay { lowers, upper, dest } => {
            let mut layers: Vec<&PathBuf> = lowers.iter().collect();
            if let Upper::Dirs { upper, work } = upper {
                layers.extend([upper, work]);
            }
            // The first layer that is not a directory here is the one the child could not open.
            layers
                .into_iter()
                .find(|p| !std::fs::metadata(p).is_ok_and(|m| m.is_dir()))
                .unwrap_or(dest)
                .clone()
        }
        _ => op.dest().map(Path::to_path_buf).unwrap_or_default(),
    };
    let hint = match (op, errno) {
        (Op::BindFd { .. }, libc::ESTALE) => format!(
            "what the fd names changed while it was bound, or its path is not reachable from \
             the sandbox's view of the host; {position}"
        ),
        (Op::Overlay { .. }, libc::ENOTDIR) => {
            format!("an overlay layer must be a directory; {position}")
        }
        _ => position,
    };
    Error::Setup {
        step: Step::FindSource,
        path: Some(path),
        source: std::io::Error::from_raw_os_error(errno),
        hint: Some(hint),
    }
}

/// What the destination of the symlink operation `i` most likely was when it failed: `Ok` the
/// target of a symlink, `Err` something else. Found from the operations before it: an
/// earlier symlink at the same place, or a bind of a host directory that the destination is
/// in (read on the host now), whichever came last. `None` when neither says.
fn existing_symlink(cfg: &FsConfig, i: usize, dest: &Path) -> Option<Result<PathBuf, ()>> {
    let norm = |p: &Path| -> PathBuf {
        p.components().filter(|c| matches!(c, Component::Normal(_))).collect()
    };
    let want = norm(dest);
    let mut found = None;
    for op in cfg.ops.iter().take(i) {
        match op {
            Op::Symlink { target, dest } if norm(dest) == want => found = Some(Ok(target.clone())),
            Op::Bind { src, dest, .. } => {
                if let Ok(rest) = want.strip_prefix(norm(dest)) {
                    let host =
                        if rest.as_os_str().is_empty() { src.clone() } else { src.join(rest) };
                    found = match std::fs::read_link(&host) {
                        Ok(t) => Some(Ok(t)),
                        Err(_) if host.symlink_metadata().is_ok() => Some(Err(())),
                        Err(_) => None,
                    };
                }
            }
            other => {
                // Any other mount over the place hides what was known about it.
                let mounts = matches!(
                    other,
                    Op::Tmpfs { .. } | Op::Overlay { .. } | Op::BindFd { .. } | Op::Dev { .. }
                );
                if mounts && other.dest().is_some_and(|d| want.starts_with(norm(d))) {
                    found = None;
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_get_bubblewraps_mode_for_the_operations_mode() {
        let table = [
            (0o1777, 0o755),
            (0o755, 0o755),
            (0o644, 0o755),
            (0o750, 0o750),
            (0o710, 0o750),
            (0o720, 0o750),
            (0o640, 0o750),
            (0o700, 0o700),
            (0o600, 0o700),
            (0o000, 0o700),
            (0o705, 0o705),
            (0o604, 0o705),
        ];
        for (mode, parent) in table {
            assert_eq!(parent_mode(Some(mode)), parent, "{mode:o}");
        }
        assert_eq!(parent_mode(None), 0o755);
    }

    #[test]
    pub(crate) fn destinations_split_into_prefixes_and_names() {
        let c = components(Path::new("/usr//lib/./x")).unwrap();
        let got: Vec<(&[u8], &[u8])> =
            c.iter().map(|c| (c.prefix.to_bytes(), c.name.to_bytes())).collect();
        assert_eq!(
            got,
            [(&b"/usr"[..], &b"usr"[..]), (b"/usr/lib", b"lib"), (b"/usr/lib/x", b"x")]
        );
        assert!(components(Path::new("relative/x")).unwrap().len() == 2);
        assert!(components(Path::new("/")).unwrap().is_empty());
        assert!(components(Path::new("/a/../b")).is_err());
    }
}
