//! Filesystem isolation: an ordered list of mount operations that builds a new root.
//!
//! The builder side ([`Sandbox::bind`] and friends) records [`Op`]s; [`prepare`] turns them, before
//! `clone`, into an [`FsPlan`] of `CString`s (every destination already split into its
//! components), and [`apply`] runs in the child under the rules of `child.rs`: raw system calls
//! only, no allocation.
//!
//! What the child does, bubblewrap's way but through file descriptors:
//!
//! 1. Every bind source (and each host device node of a minimal `/dev`) is cloned with
//!    `open_tree(OPEN_TREE_CLONE | AT_RECURSIVE)` while the host view is intact: a detached copy
//!    of the mount tree, held by an fd.
//! 2. A fresh tmpfs (or the [`rootfs`](Sandbox::rootfs) bind) is attached on `/tmp` of the
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
#![allow(unsafe_code)]

use crate::error::{Error, Step};
use crate::report::Failure;
use crate::{Namespaces, Sandbox};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use rustix::fs::{CWD, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags as A, MoveMountFlags, OpenTreeFlags, UnmountFlags,
};
use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

/// What a bind mount allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BindKind {
    ReadWrite,
    ReadOnly,
    Devices,
}

/// A file's contents, for [`Sandbox::file`] and [`Sandbox::file_from_fd`].
#[derive(Debug)]
enum Contents {
    Bytes(Vec<u8>),
    Fd(OwnedFd),
}

/// One filesystem operation, as given to the builder.
#[derive(Debug)]
enum Op {
    Bind { src: PathBuf, dest: PathBuf, kind: BindKind, skip_missing: bool },
    Tmpfs { dest: PathBuf, size: Option<u64>, mode: Option<u32> },
    Proc { dest: PathBuf },
    Dev { dest: PathBuf },
    Mqueue { dest: PathBuf },
    Dir { dest: PathBuf, mode: Option<u32> },
    Symlink { target: PathBuf, dest: PathBuf },
    File { dest: PathBuf, contents: Contents, mode: Option<u32> },
    Chmod { path: PathBuf, mode: u32 },
    RemountRo { dest: PathBuf },
}

impl Op {
    /// The operation named for an error: "bind" and the paths, as the step's phrase reads.
    fn subject(&self) -> String {
        let d = |p: &Path| p.display().to_string();
        match self {
            Op::Bind { src, dest, .. } => format!("{} to {}", d(src), d(dest)),
            Op::Symlink { target, dest } => format!("{} -> {}", d(dest), d(target)),
            Op::Chmod { path, .. } => d(path),
            Op::Tmpfs { dest, .. }
            | Op::Proc { dest }
            | Op::Dev { dest }
            | Op::Mqueue { dest }
            | Op::Dir { dest, .. }
            | Op::File { dest, .. }
            | Op::RemountRo { dest } => d(dest),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Op::Bind { kind: BindKind::ReadWrite, skip_missing: false, .. } => "bind",
            Op::Bind { kind: BindKind::ReadWrite, skip_missing: true, .. } => "bind_try",
            Op::Bind { kind: BindKind::ReadOnly, skip_missing: false, .. } => "ro_bind",
            Op::Bind { kind: BindKind::ReadOnly, skip_missing: true, .. } => "ro_bind_try",
            Op::Bind { kind: BindKind::Devices, skip_missing: false, .. } => "dev_bind",
            Op::Bind { kind: BindKind::Devices, skip_missing: true, .. } => "dev_bind_try",
            Op::Tmpfs { .. } => "tmpfs",
            Op::Proc { .. } => "proc",
            Op::Dev { .. } => "dev",
            Op::Mqueue { .. } => "mqueue",
            Op::Dir { .. } => "dir",
            Op::Symlink { .. } => "symlink",
            Op::File { .. } => "file",
            Op::Chmod { .. } => "chmod",
            Op::RemountRo { .. } => "remount_ro",
        }
    }
}

/// The filesystem operations of a [`Sandbox`], in order.
#[derive(Debug, Default)]
pub(crate) struct FsConfig {
    ops: Vec<Op>,
    /// Use the fallback for kernels without `mount_setattr` even where it exists (tests).
    force_remount: bool,
}

impl FsConfig {
    /// Whether the operations build a new root with a fresh procfs on its `/proc`.
    pub(crate) fn new_root_without_proc(&self) -> bool {
        let proc = [std::path::Component::Normal(OsStr::new("proc"))];
        let is_proc =
            |dest: &Path| dest.components().filter(|c| matches!(c, Component::Normal(_))).eq(proc);
        !self.ops.is_empty()
            && !self.ops.iter().any(|op| matches!(op, Op::Proc { dest } if is_proc(dest)))
    }
}

/// # Filesystem
///
/// A sandbox with [`Namespaces::MOUNT`] can be given an ordered list of filesystem operations.
/// With at least one, the program runs in a **new root**: a fresh tmpfs that the operations fill
/// and that becomes `/` through `pivot_root(2)`, the old root detached and unreachable. Nothing
/// is mounted in it implicitly, not even `/proc` (add [`proc`](Sandbox::proc); bubblewrap's
/// rule), except with [`rootfs`](Sandbox::rootfs), which adds `/proc` and `/dev`. Without any
/// operation the program sees the host's filesystem with a private `/proc` (the default).
///
/// Sources are host paths (symlinks in them are followed as on the host); destinations are paths
/// inside the new root, resolved inside it with `openat2(RESOLVE_IN_ROOT)`, so a symlink in a
/// bound directory can never redirect a later operation to the host. Missing parent directories
/// and mount points are created (directories 0755, files 0444, as bubblewrap does). A failed
/// operation is reported as an [`Error`] naming its position in the list and its paths.
///
/// ```
/// use nscell::Sandbox;
///
/// // A read-only /usr, the usual symlinks, a private /proc, /dev and /tmp; nothing else.
/// let out = Sandbox::new("/usr/bin/ls")
///     .arg("/")
///     .ro_bind("/usr", "/usr")
///     .symlink("usr/bin", "/bin")
///     .symlink("usr/lib", "/lib")
///     .symlink("usr/lib64", "/lib64")
///     .proc("/proc")
///     .dev("/dev")
///     .tmpfs("/tmp")
///     .output()?;
/// assert_eq!(String::from_utf8_lossy(&out.stdout), "bin\ndev\nlib\nlib64\nproc\ntmp\nusr\n");
/// # Ok::<(), nscell::Error>(())
/// ```
impl Sandbox {
    fn fs_op(&mut self, op: Op) -> &mut Self {
        self.fs.ops.push(op);
        self
    }

    fn bind_op(&mut self, src: &Path, dest: &Path, kind: BindKind, skip: bool) -> &mut Self {
        let (src, dest) = (src.to_path_buf(), dest.to_path_buf());
        self.fs_op(Op::Bind { src, dest, kind, skip_missing: skip })
    }

    /// Bind-mounts the host path `src` (a directory or a file, with every mount below it) on
    /// `dest`, read-write, with `nosuid` and `nodev` (bubblewrap's `--bind`). Writes reach the
    /// host's files.
    #[doc(alias = "--bind")]
    pub fn bind(&mut self, src: impl AsRef<Path>, dest: impl AsRef<Path>) -> &mut Self {
        self.bind_op(src.as_ref(), dest.as_ref(), BindKind::ReadWrite, false)
    }

    /// [`bind`](Sandbox::bind), skipped when `src` does not exist.
    pub fn bind_try(&mut self, src: impl AsRef<Path>, dest: impl AsRef<Path>) -> &mut Self {
        self.bind_op(src.as_ref(), dest.as_ref(), BindKind::ReadWrite, true)
    }

    /// Bind-mounts `src` on `dest` read-only: every mount below it is made read-only too
    /// (`mount_setattr(2)` with `AT_RECURSIVE`; before Linux 5.12, a remount of each mount that
    /// keeps its own flags), with `nosuid` and `nodev`.
    #[doc(alias = "--ro-bind")]
    pub fn ro_bind(&mut self, src: impl AsRef<Path>, dest: impl AsRef<Path>) -> &mut Self {
        self.bind_op(src.as_ref(), dest.as_ref(), BindKind::ReadOnly, false)
    }

    /// [`ro_bind`](Sandbox::ro_bind), skipped when `src` does not exist.
    pub fn ro_bind_try(&mut self, src: impl AsRef<Path>, dest: impl AsRef<Path>) -> &mut Self {
        self.bind_op(src.as_ref(), dest.as_ref(), BindKind::ReadOnly, true)
    }

    /// Bind-mounts `src` on `dest` read-write with device nodes usable (no `nodev`).
    #[doc(alias = "--dev-bind")]
    pub fn dev_bind(&mut self, src: impl AsRef<Path>, dest: impl AsRef<Path>) -> &mut Self {
        self.bind_op(src.as_ref(), dest.as_ref(), BindKind::Devices, false)
    }

    /// [`dev_bind`](Sandbox::dev_bind), skipped when `src` does not exist.
    pub fn dev_bind_try(&mut self, src: impl AsRef<Path>, dest: impl AsRef<Path>) -> &mut Self {
        self.bind_op(src.as_ref(), dest.as_ref(), BindKind::Devices, true)
    }

    /// Mounts an empty tmpfs on `dest` (mode 0755, no size limit beyond the kernel's default of
    /// half the RAM).
    #[doc(alias = "--tmpfs")]
    pub fn tmpfs(&mut self, dest: impl AsRef<Path>) -> &mut Self {
        self.tmpfs_with(dest, None, None)
    }

    /// Mounts a tmpfs on `dest` with at most `size` bytes and the root directory's `mode`
    /// (default 0755); bubblewrap's `--size BYTES --perms OCTAL --tmpfs DEST`. A size of 0
    /// (which the kernel would read as no limit) makes `spawn` fail with
    /// [`Error::InvalidInput`].
    pub fn tmpfs_with(
        &mut self,
        dest: impl AsRef<Path>,
        size: Option<u64>,
        mode: Option<u32>,
    ) -> &mut Self {
        self.fs_op(Op::Tmpfs { dest: dest.as_ref().into(), size, mode })
    }

    /// Mounts a fresh procfs on `dest` (`nosuid`, `nodev`, `noexec`). Without root it needs a
    /// new PID namespace ([`Namespaces::PID`]).
    #[doc(alias = "--proc")]
    pub fn proc(&mut self, dest: impl AsRef<Path>) -> &mut Self {
        self.fs_op(Op::Proc { dest: dest.as_ref().into() })
    }

    /// Builds a minimal `/dev` on `dest`: a tmpfs with `null`, `zero`, `full`, `random`,
    /// `urandom` and `tty` bind-mounted from the host, a new devpts instance on `pts` with the
    /// `ptmx` symlink, a tmpfs on `shm`, and the `fd`, `stdin`, `stdout`, `stderr` symlinks.
    #[doc(alias = "--dev")]
    pub fn dev(&mut self, dest: impl AsRef<Path>) -> &mut Self {
        self.fs_op(Op::Dev { dest: dest.as_ref().into() })
    }

    /// Mounts a POSIX message queue filesystem on `dest` (needs [`Namespaces::IPC`] without root).
    #[doc(alias = "--mqueue")]
    pub fn mqueue(&mut self, dest: impl AsRef<Path>) -> &mut Self {
        self.fs_op(Op::Mqueue { dest: dest.as_ref().into() })
    }

    /// Creates the directory `dest` and its missing parents (0755 less the umask).
    #[doc(alias = "--dir")]
    pub fn dir(&mut self, dest: impl AsRef<Path>) -> &mut Self {
        self.fs_op(Op::Dir { dest: dest.as_ref().into(), mode: None })
    }

    /// Creates the directory `dest` with exactly `mode` (also when it exists).
    pub fn dir_with_mode(&mut self, dest: impl AsRef<Path>, mode: u32) -> &mut Self {
        self.fs_op(Op::Dir { dest: dest.as_ref().into(), mode: Some(mode) })
    }

    /// Creates the symlink `dest` pointing to `target` (an existing identical symlink is fine).
    #[doc(alias = "--symlink")]
    pub fn symlink(&mut self, target: impl AsRef<Path>, dest: impl AsRef<Path>) -> &mut Self {
        self.fs_op(Op::Symlink { target: target.as_ref().into(), dest: dest.as_ref().into() })
    }

    /// Creates the file `dest` (0666 less the umask) with `contents`.
    pub fn file(&mut self, dest: impl AsRef<Path>, contents: impl Into<Vec<u8>>) -> &mut Self {
        let contents = Contents::Bytes(contents.into());
        self.fs_op(Op::File { dest: dest.as_ref().into(), contents, mode: None })
    }

    /// Creates the file `dest` with exactly `mode` and `contents`.
    pub fn file_with_mode(
        &mut self,
        dest: impl AsRef<Path>,
        contents: impl Into<Vec<u8>>,
        mode: u32,
    ) -> &mut Self {
        let contents = Contents::Bytes(contents.into());
        self.fs_op(Op::File { dest: dest.as_ref().into(), contents, mode: Some(mode) })
    }

    /// Creates the file `dest` with what can be read from `fd` (to its end) at spawn time;
    /// bubblewrap's `--file FD DEST`. The fd is read by the first spawn only; `mode` as for
    /// [`file_with_mode`](Sandbox::file_with_mode), `None` for 0666 less the umask.
    ///
    /// The sandbox reads it before [`spawn`](Sandbox::spawn) returns, while the calling thread
    /// waits: it must reach its end without that thread's help (a file, or a pipe whose write
    /// end is closed or fed by another thread or process).
    #[doc(alias = "--file")]
    pub fn file_from_fd(
        &mut self,
        dest: impl AsRef<Path>,
        fd: impl Into<OwnedFd>,
        mode: Option<u32>,
    ) -> &mut Self {
        let contents = Contents::Fd(fd.into());
        self.fs_op(Op::File { dest: dest.as_ref().into(), contents, mode })
    }

    /// Changes the mode of `path` inside the new root (symlinks followed inside it).
    #[doc(alias = "--chmod")]
    pub fn chmod(&mut self, path: impl AsRef<Path>, mode: u32) -> &mut Self {
        self.fs_op(Op::Chmod { path: path.as_ref().into(), mode })
    }

    /// Makes the mount at `dest` read-only, every mount below it included.
    #[doc(alias = "--remount-ro")]
    pub fn remount_ro(&mut self, dest: impl AsRef<Path>) -> &mut Self {
        self.fs_op(Op::RemountRo { dest: dest.as_ref().into() })
    }

    /// Makes mounts read-only (and binds `nosuid`/`nodev`) by remounting each mount of the tree
    /// with `mount(MS_REMOUNT | MS_BIND)`, as on kernels before 5.12 (no `mount_setattr`), even
    /// where `mount_setattr` exists. For testing that fallback.
    #[doc(hidden)]
    pub fn remount_fallback(&mut self, yes: bool) -> &mut Self {
        self.fs.force_remount = yes;
        self
    }

    /// Uses the existing directory `dir` (an unpacked image, say) read-only as the new root, and
    /// mounts a fresh `/proc` and a minimal `/dev` in it; `dir` must contain `proc` and `dev`
    /// directories. Must come before any other filesystem operation.
    pub fn rootfs(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.bind_op(dir.as_ref(), Path::new("/"), BindKind::ReadOnly, false);
        self.proc("/proc").dev("/dev")
    }

    /// [`rootfs`](Sandbox::rootfs), read-write: writes reach `dir` on the host.
    pub fn rootfs_rw(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.bind_op(dir.as_ref(), Path::new("/"), BindKind::ReadWrite, false);
        self.proc("/proc").dev("/dev")
    }
}

/// One component of a destination inside the new root: the path up to and including it
/// (`/usr/lib`), and its name alone (`lib`).
pub(crate) struct Comp {
    prefix: CString,
    name: CString,
}

pub(crate) enum Kind {
    Bind { src: CString, attrs: A },
    Tmpfs { size: Option<CString>, mode: CString },
    Proc,
    Dev,
    Mqueue,
    Dir { mode: Option<u32> },
    Symlink { target: CString },
    File { bytes: Vec<u8>, fd: i32, mode: Option<u32> },
    Chmod { mode: u32 },
    RemountRo,
}

pub(crate) struct Planned {
    kind: Kind,
    skip_missing: bool,
    dest: Vec<Comp>,
    /// The first fd slot of this operation in [`FsPlan::slots`].
    slot: usize,
}

/// The filesystem operations, ready for the child.
pub(crate) struct FsPlan {
    ops: Vec<Planned>,
    /// Whether the first operation binds a directory on `/` (the rootfs).
    root_bind: bool,
    /// Where the new root is attached before `pivot_root`.
    attach: &'static CStr,
    /// fds the child opens in its first pass (bind sources, device nodes), -1 when none.
    slots: Vec<AtomicI32>,
    force_remount: bool,
}

/// The host device nodes of a minimal `/dev`.
const DEV_NODES: [(&CStr, &CStr); 6] = [
    (c"/dev/null", c"null"),
    (c"/dev/zero", c"zero"),
    (c"/dev/full", c"full"),
    (c"/dev/random", c"random"),
    (c"/dev/urandom", c"urandom"),
    (c"/dev/tty", c"tty"),
];

const DEV_LINKS: [(&CStr, &CStr); 5] = [
    (c"/proc/self/fd", c"fd"),
    (c"/proc/self/fd/0", c"stdin"),
    (c"/proc/self/fd/1", c"stdout"),
    (c"/proc/self/fd/2", c"stderr"),
    (c"pts/ptmx", c"ptmx"),
];

fn cstring(what: &str, p: &OsStr) -> Result<CString, Error> {
    CString::new(p.as_bytes())
        .map_err(|_| Error::invalid(format!("{what} {p:?} contains a NUL byte")))
}

/// Splits a destination into its components; `..` is refused (a destination names a place in
/// the new root, not a walk through it).
fn components(dest: &Path) -> Result<Vec<Comp>, Error> {
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

fn mode_ok(mode: u32) -> Result<u32, Error> {
    if mode > 0o7777 {
        Err(Error::invalid(format!("mode {mode:o} is not a permission mode (at most 7777)")))
    } else {
        Ok(mode)
    }
}

/// A directory cannot be the contents of a file: say so about the fd, before the child fails
/// with `EISDIR` in a way that reads as if the destination were the directory.
fn contents_fd_readable(fd: &OwnedFd, dest: &Path) -> Result<(), Error> {
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
fn new_root_is_a_directory(src: &Path) -> Result<(), Error> {
    match std::fs::metadata(src) {
        Ok(m) if !m.is_dir() => Err(Error::invalid(format!(
            "the new root {} is not a directory (a rootfs is a directory tree)",
            src.display()
        ))),
        _ => Ok(()),
    }
}

/// Turns the operations into a plan for the child: `None` when there are none (the host view).
pub(crate) fn prepare(cfg: &FsConfig, ns: Namespaces) -> Result<Option<FsPlan>, Error> {
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
    for (i, op) in cfg.ops.iter().enumerate() {
        let (kind, dest, skip, nslots) = match op {
            Op::Bind { src, dest, kind, skip_missing } => {
                let mut attrs = A::MOUNT_ATTR_NOSUID;
                if *kind != BindKind::Devices {
                    attrs |= A::MOUNT_ATTR_NODEV;
                }
                if *kind == BindKind::ReadOnly {
                    attrs |= A::MOUNT_ATTR_RDONLY;
                }
                let src = cstring("bind source", src.as_os_str())?;
                (Kind::Bind { src, attrs }, dest, *skip_missing, 1)
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
                let mode = format!("{:o}", mode_ok(mode.unwrap_or(0o755))?);
                let kind = Kind::Tmpfs {
                    size: size.map(|s| CString::new(s.to_string()).unwrap_or_default()),
                    mode: CString::new(mode).unwrap_or_default(),
                };
                (kind, dest, false, 0)
            }
            Op::Proc { dest } => (Kind::Proc, dest, false, 0),
            Op::Dev { dest } => (Kind::Dev, dest, false, DEV_NODES.len()),
            Op::Mqueue { dest } => (Kind::Mqueue, dest, false, 0),
            Op::Dir { dest, mode } => {
                (Kind::Dir { mode: mode.map(mode_ok).transpose()? }, dest, false, 0)
            }
            Op::Symlink { target, dest } => {
                let target = cstring("symlink target", target.as_os_str())?;
                (Kind::Symlink { target }, dest, false, 0)
            }
            Op::File { dest, contents, mode } => {
                let (bytes, fd) = match contents {
                    Contents::Bytes(b) => (b.clone(), -1),
                    Contents::Fd(fd) => {
                        contents_fd_readable(fd, dest)?;
                        (Vec::new(), fd.as_raw_fd())
                    }
                };
                let mode = mode.map(mode_ok).transpose()?;
                (Kind::File { bytes, fd, mode }, dest, false, 0)
            }
            Op::Chmod { path, mode } => (Kind::Chmod { mode: mode_ok(*mode)? }, path, false, 0),
            Op::RemountRo { dest } => (Kind::RemountRo, dest, false, 0),
        };
        let comps = components(dest)?;
        if comps.is_empty() {
            match kind {
                Kind::Bind { .. } if i == 0 => {
                    root_bind = true;
                    if let Op::Bind { src, .. } = op {
                        new_root_is_a_directory(src)?;
                    }
                }
                Kind::Chmod { .. } | Kind::RemountRo => {}
                _ => {
                    return Err(Error::invalid(format!(
                        "filesystem operation {} ({} {}) targets / itself; only a bind as the \
                         first operation (rootfs), chmod and remount_ro can",
                        i + 1,
                        op.name(),
                        op.subject()
                    )));
                }
            }
        }
        ops.push(Planned { kind, skip_missing: skip, dest: comps, slot: slots });
        slots += nslots;
    }
    Ok(Some(FsPlan {
        ops,
        root_bind,
        attach,
        slots: (0..slots).map(|_| AtomicI32::new(-1)).collect(),
        force_remount: cfg.force_remount,
    }))
}

/// The error for a failed filesystem step: the operation's position, name and paths.
pub(crate) fn describe(cfg: &FsConfig, f: &Failure, userns: bool) -> Option<Error> {
    let op_step = matches!(
        f.step,
        Step::BindMount
            | Step::MountTmpfs
            | Step::MountProcAt
            | Step::MountDev
            | Step::MountMqueue
            | Step::CreateDir
            | Step::CreateSymlink
            | Step::CreateFile
            | Step::Chmod
            | Step::RemountReadOnly
    );
    if !op_step {
        return matches!(f.step, Step::NewRoot | Step::PivotRoot)
            .then(|| Error::setup(f.step, None, f.errno, userns));
    }
    let i = usize::from(f.index);
    let op = cfg.ops.get(i)?;
    let specific = match (f.step, f.errno) {
        (Step::BindMount, libc::ENOENT) => match op {
            // The source is there: what is missing is on the way to the destination.
            Op::Bind { src, dest, .. } if src.metadata().is_ok() => Some(format!(
                "{} cannot be reached in the new root (a symlink on the way points to a place \
                 that does not exist there)",
                dest.display()
            )),
            Op::Bind { src, .. } => Some(format!(
                "{} does not exist on the host (the _try form skips a missing source)",
                src.display()
            )),
            _ => None,
        },
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

// ---- The child side: raw system calls only, no allocation (see child.rs). ----

fn fail(step: Step, index: usize) -> impl Fn(Errno) -> Failure {
    move |e| Failure::new(step, e).at(index)
}

fn store(slot: &AtomicI32, fd: OwnedFd) {
    slot.store(fd.into_raw_fd(), Ordering::Relaxed);
}

fn take(slot: &AtomicI32) -> Option<OwnedFd> {
    let fd = slot.swap(-1, Ordering::Relaxed);
    // SAFETY: a slot holds an fd this task opened and nothing else owns (swap empties it).
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `path` inside `root` as an `O_PATH` fd (plus `flags`); see [`open_in`].
fn path_in(root: BorrowedFd<'_>, path: &CStr, flags: OFlags) -> Result<OwnedFd, Errno> {
    open_in(root, path, OFlags::PATH | flags)
}

/// Opens `path` inside `root`: `..` stops at `root`, absolute symlinks start from it, and
/// `/proc/self/...`-style magic links are refused.
fn open_in(root: BorrowedFd<'_>, path: &CStr, flags: OFlags) -> Result<OwnedFd, Errno> {
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    // openat2 refuses O_PATH with any flag but O_DIRECTORY, O_NOFOLLOW and O_CLOEXEC.
    let flags = if flags.contains(OFlags::PATH) {
        flags | OFlags::CLOEXEC
    } else {
        flags | OFlags::CLOEXEC | OFlags::NOCTTY
    };
    let mut tries = 0;
    loop {
        // EAGAIN: a concurrent rename raced with the lookup; the kernel asks to retry.
        // openat2 wants mode 0 unless it creates.
        let mode = if flags.contains(OFlags::CREATE) { 0o666 } else { 0 };
        match rustix::fs::openat2(root, path, flags, Mode::from_raw_mode(mode), resolve) {
            Err(Errno::AGAIN) if tries < 16 => tries += 1,
            r => return r,
        }
    }
}

/// Opens the directory at `comps` inside `root`, creating missing ones (0755 less the umask).
fn ensure_dirs(root: BorrowedFd<'_>, comps: &[Comp]) -> Result<OwnedFd, Errno> {
    let mut dir = rustix::io::fcntl_dupfd_cloexec(root, 3)?;
    for c in comps {
        dir = match path_in(root, &c.prefix, OFlags::DIRECTORY) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                // Created by name in its (already resolved) parent: never through a symlink.
                match rustix::fs::mkdirat(&dir, c.name.as_c_str(), Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e),
                }
                path_in(root, &c.prefix, OFlags::DIRECTORY)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(dir)
}

/// The mount point at `dest` inside `root`: a directory, or a file (0444) for a file source.
fn mount_point(root: BorrowedFd<'_>, dest: &[Comp], dir: bool) -> Result<OwnedFd, Errno> {
    let Some((last, parents)) = dest.split_last() else {
        return rustix::io::fcntl_dupfd_cloexec(root, 3);
    };
    if dir {
        return ensure_dirs(root, dest);
    }
    match path_in(root, &last.prefix, OFlags::empty()) {
        Err(Errno::NOENT) => {}
        r => return r,
    }
    let parent = ensure_dirs(root, parents)?;
    let flags = OFlags::CREATE | OFlags::EXCL | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    match rustix::fs::openat(&parent, last.name.as_c_str(), flags, Mode::from_raw_mode(0o444)) {
        Ok(_) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e),
    }
    path_in(root, &last.prefix, OFlags::empty())
}

/// The existing path `dest` inside `root` (the root itself for `/`).
/// `flags` empty: an `O_PATH` fd.
fn existing(root: BorrowedFd<'_>, dest: &[Comp], flags: OFlags) -> Result<OwnedFd, Errno> {
    let path = dest.last().map_or(c"/", |last| last.prefix.as_c_str());
    if flags.is_empty() { path_in(root, path, flags) } else { open_in(root, path, flags) }
}

/// A new, detached filesystem of type `fstype`, configured with `opts`.
fn new_fs(fstype: &CStr, opts: &[(&CStr, &CStr)], attrs: A) -> Result<OwnedFd, Errno> {
    let fs = rustix::mount::fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)?;
    for (key, value) in opts {
        rustix::mount::fsconfig_set_string(&fs, *key, *value)?;
    }
    rustix::mount::fsconfig_create(&fs)?;
    rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)
}

/// Attaches the detached mount `mnt` on the mount point `at` (both fds).
fn attach(mnt: &OwnedFd, at: &OwnedFd) -> Result<(), Errno> {
    let flags = MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH;
    rustix::mount::move_mount(mnt, c"", at, c"", flags)
}

/// Whether this kernel has `mount_setattr`: 0 not known yet, 1 yes, 2 no. The child shares the
/// caller's memory, so what one child learns, the next spawn knows.
static MOUNT_SETATTR: AtomicI32 = AtomicI32::new(0);

/// Sets `attrs` (never clears any) on the mount of `fd` and every mount below it with
/// `mount_setattr(AT_RECURSIVE)`. `Ok(false)`: the kernel has no `mount_setattr` (or the plan
/// asks for the fallback), and [`remount_tree`] must do it once the tree is attached.
fn set_attrs(plan: &FsPlan, fd: &OwnedFd, attrs: A) -> Result<bool, Errno> {
    if plan.force_remount || MOUNT_SETATTR.load(Ordering::Relaxed) == 2 {
        return Ok(false);
    }
    let flags = crate::sys::AT_EMPTY_PATH | crate::sys::AT_RECURSIVE;
    match crate::sys::mount_setattr(fd.as_raw_fd(), c"", flags, u64::from(attrs.bits())) {
        Ok(()) => {
            MOUNT_SETATTR.store(1, Ordering::Relaxed);
            Ok(true)
        }
        Err(Errno::NOSYS) => {
            MOUNT_SETATTR.store(2, Ordering::Relaxed);
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// The most mounts [`remount_tree`] handles below one bind.
const MAX_TREE: usize = 512;

/// The fallback of [`set_attrs`] for an attached tree: remounts the mount of `top` and every
/// mount below it with `MS_REMOUNT | MS_BIND`, adding `attrs` to the flags each one has (a
/// remount in a user namespace must keep the locked ones: nosuid, nodev, noexec, atime).
/// Mounts are found by id in `/proc/thread-self/mountinfo`, read with a fixed buffer.
fn remount_tree(top: BorrowedFd<'_>, attrs: A) -> Result<(), Errno> {
    use rustix::fs::{AtFlags, StatxFlags};
    use rustix::mount::MountFlags as M;
    let top_id = rustix::fs::statx(top, c"", AtFlags::EMPTY_PATH, StatxFlags::MNT_ID)?.stx_mnt_id;
    let mut ids = [0u64; MAX_TREE];
    ids[0] = top_id;
    let mut n = 1;
    // Children may be listed before their parents: repeat until nothing is added.
    loop {
        let before = n;
        for_each_mount(|id, parent, _, _| {
            if ids[..n].contains(&parent) && !ids[..n].contains(&id) {
                if n == MAX_TREE {
                    return Err(Errno::NOMEM);
                }
                ids[n] = id;
                n += 1;
            }
            Ok(())
        })?;
        if n == before {
            break;
        }
    }
    let mut extra = M::BIND;
    for (attr, flag) in [
        (A::MOUNT_ATTR_RDONLY, M::RDONLY),
        (A::MOUNT_ATTR_NOSUID, M::NOSUID),
        (A::MOUNT_ATTR_NODEV, M::NODEV),
    ] {
        if attrs.contains(attr) {
            extra |= flag;
        }
    }
    for_each_mount(|id, _, path, flags| {
        if ids[..n].contains(&id) {
            rustix::mount::mount_remount(path, flags | extra, c"")?;
        }
        Ok(())
    })
}

/// Calls `f(id, parent id, mount point, flags)` for each line of this task's mountinfo.
fn for_each_mount(
    mut f: impl FnMut(u64, u64, &CStr, rustix::mount::MountFlags) -> Result<(), Errno>,
) -> Result<(), Errno> {
    let file = rustix::fs::open(
        c"/proc/thread-self/mountinfo",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut buf = [0u8; 8192];
    let mut len = 0;
    let mut eof = false;
    loop {
        if !eof && len < buf.len() {
            match rustix::io::read(&file, &mut buf[len..]) {
                Ok(0) => eof = true,
                Ok(k) => len += k,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e),
            }
        }
        match buf[..len].iter().position(|&b| b == b'\n') {
            Some(end) => {
                let (id, parent, path, flags) = parse_mountinfo_line(&buf[..end])?;
                let mut cpath = [0u8; 4097];
                let cpath = unescape(path, &mut cpath)?;
                f(id, parent, cpath, flags)?;
                buf.copy_within(end + 1..len, 0);
                len -= end + 1;
            }
            None if eof => return Ok(()),
            None if len == buf.len() => return Err(Errno::NAMETOOLONG),
            None => {}
        }
    }
}

/// `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ...`: the ids, the (escaped) mount point and the
/// per-mount flags as `mount(2)` takes them.
type MountLine<'l> = (u64, u64, &'l [u8], rustix::mount::MountFlags);

fn parse_mountinfo_line(line: &[u8]) -> Result<MountLine<'_>, Errno> {
    use rustix::mount::MountFlags as M;
    let mut fields = line.split(|&b| b == b' ');
    let mut next = || fields.next().ok_or(Errno::INVAL);
    let number = |s: &[u8]| -> Result<u64, Errno> {
        let mut v: u64 = 0;
        for &b in s {
            if !b.is_ascii_digit() {
                return Err(Errno::INVAL);
            }
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(b - b'0')))
                .ok_or(Errno::INVAL)?;
        }
        Ok(v)
    };
    let id = number(next()?)?;
    let parent = number(next()?)?;
    let _ = next()?;
    let _ = next()?;
    let path = next()?;
    let mut flags = M::empty();
    let mut atime = false;
    for opt in next()?.split(|&b| b == b',') {
        flags |= match opt {
            b"ro" => M::RDONLY,
            b"nosuid" => M::NOSUID,
            b"nodev" => M::NODEV,
            b"noexec" => M::NOEXEC,
            b"nodiratime" => M::NODIRATIME,
            b"nosymfollow" => M::NOSYMFOLLOW,
            b"noatime" => {
                atime = true;
                M::NOATIME
            }
            b"relatime" => {
                atime = true;
                M::RELATIME
            }
            _ => M::empty(),
        };
    }
    if !atime {
        flags |= M::STRICTATIME;
    }
    Ok((id, parent, path, flags))
}

/// Undoes mountinfo's octal escapes (`\040` for a space) into `out`, NUL-terminated.
fn unescape<'b>(s: &[u8], out: &'b mut [u8; 4097]) -> Result<&'b CStr, Errno> {
    let octal = |b: u8| (b'0'..=b'7').contains(&b);
    let (mut i, mut o) = (0, 0);
    while i < s.len() {
        if o == out.len() - 1 {
            return Err(Errno::NAMETOOLONG);
        }
        if s[i] == b'\\' && i + 4 <= s.len() && s[i + 1..i + 4].iter().all(|&b| octal(b)) {
            out[o] = (s[i + 1] - b'0') * 64 + (s[i + 2] - b'0') * 8 + (s[i + 3] - b'0');
            i += 4;
        } else {
            out[o] = s[i];
            i += 1;
        }
        o += 1;
    }
    out[o] = 0;
    CStr::from_bytes_with_nul(&out[..=o]).map_err(|_| Errno::INVAL)
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Builds the new root from `plan` and makes it `/`. Runs in the child (see `child.rs`).
pub(crate) fn apply(plan: &FsPlan) -> Result<(), Failure> {
    // 1. Clone every source while the host view is intact.
    for (i, op) in plan.ops.iter().enumerate() {
        match &op.kind {
            Kind::Bind { src, .. } => {
                let flags = OpenTreeFlags::OPEN_TREE_CLONE
                    | OpenTreeFlags::OPEN_TREE_CLOEXEC
                    | OpenTreeFlags::AT_RECURSIVE;
                match rustix::mount::open_tree(CWD, src.as_c_str(), flags) {
                    Ok(fd) => store(&plan.slots[op.slot], fd),
                    Err(Errno::NOENT) if op.skip_missing => {}
                    Err(e) => return Err(Failure::new(Step::BindMount, e).at(i)),
                }
            }
            Kind::Dev => {
                let flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
                for (k, (host, _)) in DEV_NODES.iter().enumerate() {
                    let fd = rustix::mount::open_tree(CWD, *host, flags)
                        .map_err(fail(Step::MountDev, i))?;
                    store(&plan.slots[op.slot + k], fd);
                }
            }
            _ => {}
        }
    }

    // 2. The new root, attached in the (private) host view until pivot_root.
    let mut first = 0;
    let mut root_attrs = None;
    let root = match plan.root_bind.then(|| take(&plan.slots[0])).flatten() {
        Some(fd) => {
            if let Kind::Bind { attrs, .. } = plan.ops[0].kind {
                root_attrs = Some((set_attrs(plan, &fd, attrs), attrs));
            }
            first = 1;
            fd
        }
        None => {
            if plan.root_bind {
                first = 1; // a rootfs bind_try whose source is missing: an empty root
            }
            new_fs(c"tmpfs", &[(c"mode", c"0755")], A::MOUNT_ATTR_NOSUID | A::MOUNT_ATTR_NODEV)
                .map_err(fail(Step::NewRoot, 0))?
        }
    };
    let flags = MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH;
    rustix::mount::move_mount(&root, c"", CWD, plan.attach, flags)
        .map_err(fail(Step::NewRoot, 0))?;
    let r = root.as_fd();
    if let Some((done, attrs)) = root_attrs {
        let bind = fail(Step::BindMount, 0);
        if !done.map_err(&bind)? {
            remount_tree(r, attrs).map_err(&bind)?;
        }
    }

    // 3. The operations, in order, every destination resolved inside the new root.
    for (i, op) in plan.ops.iter().enumerate().skip(first) {
        apply_one(r, plan, op).map_err(|e| Failure::new(step_of(&op.kind), e).at(i))?;
    }

    // 4. Into the new root; the old one is detached and can no longer be reached.
    let pivot = fail(Step::PivotRoot, 0);
    rustix::process::fchdir(r).map_err(&pivot)?;
    rustix::process::pivot_root(c".", c".").map_err(&pivot)?;
    rustix::mount::unmount(c".", UnmountFlags::DETACH).map_err(&pivot)?;
    rustix::process::chdir(c"/").map_err(&pivot)?;
    let want = rustix::fs::fstat(r).map_err(&pivot)?;
    for path in [c"/", c"."] {
        let got = rustix::fs::stat(path).map_err(&pivot)?;
        if (got.st_dev, got.st_ino) != (want.st_dev, want.st_ino) {
            return Err(pivot(Errno::XDEV));
        }
    }
    Ok(())
}

fn step_of(kind: &Kind) -> Step {
    match kind {
        Kind::Bind { .. } => Step::BindMount,
        Kind::Tmpfs { .. } => Step::MountTmpfs,
        Kind::Proc => Step::MountProcAt,
        Kind::Dev => Step::MountDev,
        Kind::Mqueue => Step::MountMqueue,
        Kind::Dir { .. } => Step::CreateDir,
        Kind::Symlink { .. } => Step::CreateSymlink,
        Kind::File { .. } => Step::CreateFile,
        Kind::Chmod { .. } => Step::Chmod,
        Kind::RemountRo => Step::RemountReadOnly,
    }
}

fn apply_one(root: BorrowedFd<'_>, plan: &FsPlan, op: &Planned) -> Result<(), Errno> {
    let nosuid_nodev = A::MOUNT_ATTR_NOSUID | A::MOUNT_ATTR_NODEV;
    match &op.kind {
        Kind::Bind { attrs, .. } => {
            // A missing source of a _try bind left its slot empty: skip it.
            let Some(src) = take(&plan.slots[op.slot]) else { return Ok(()) };
            let done = set_attrs(plan, &src, *attrs)?;
            let is_dir =
                FileType::from_raw_mode(rustix::fs::fstat(&src)?.st_mode) == FileType::Directory;
            let at = mount_point(root, &op.dest, is_dir)?;
            attach(&src, &at)?;
            if !done {
                // The mount point's fd shows what is under the mount: reopen the path.
                let top = existing(root, &op.dest, OFlags::empty())?;
                remount_tree(top.as_fd(), *attrs)?;
            }
            Ok(())
        }
        Kind::Tmpfs { size, mode } => {
            let mnt = match size {
                Some(size) => new_fs(c"tmpfs", &[(c"mode", mode), (c"size", size)], nosuid_nodev),
                None => new_fs(c"tmpfs", &[(c"mode", mode)], nosuid_nodev),
            }?;
            attach(&mnt, &ensure_dirs(root, &op.dest)?)
        }
        Kind::Proc => {
            let mnt = new_fs(c"proc", &[], nosuid_nodev | A::MOUNT_ATTR_NOEXEC)?;
            attach(&mnt, &ensure_dirs(root, &op.dest)?)
        }
        Kind::Mqueue => {
            let mnt = new_fs(c"mqueue", &[], nosuid_nodev | A::MOUNT_ATTR_NOEXEC)?;
            attach(&mnt, &ensure_dirs(root, &op.dest)?)
        }
        Kind::Dev => make_dev(root, plan, op),
        Kind::Dir { mode } => {
            ensure_dirs(root, &op.dest)?;
            if let Some(mode) = mode {
                let dir = existing(root, &op.dest, OFlags::RDONLY | OFlags::DIRECTORY)?;
                rustix::fs::fchmod(&dir, Mode::from_raw_mode(*mode))?;
            }
            Ok(())
        }
        Kind::Symlink { target } => {
            let Some((last, parents)) = op.dest.split_last() else { return Err(Errno::EXIST) };
            let parent = ensure_dirs(root, parents)?;
            match rustix::fs::symlinkat(target.as_c_str(), &parent, last.name.as_c_str()) {
                Err(Errno::EXIST) => {
                    // Fine when it is the same symlink (bubblewrap's rule).
                    let mut buf = [0u8; 4096];
                    let n = rustix::fs::readlinkat_raw(&parent, last.name.as_c_str(), &mut buf[..])
                        .map_err(|_| Errno::EXIST)?;
                    if &buf[..n] == target.to_bytes() { Ok(()) } else { Err(Errno::EXIST) }
                }
                r => r,
            }
        }
        Kind::File { bytes, fd, mode } => {
            let Some((last, parents)) = op.dest.split_last() else { return Err(Errno::ISDIR) };
            ensure_dirs(root, parents)?;
            // Only ever a regular file: a FIFO would block the setup, a device would take the
            // bytes elsewhere. What is there is looked at first without opening it (an open
            // can have effects of its own), then checked again once open.
            match path_in(root, &last.prefix, OFlags::NOFOLLOW) {
                Ok(there) => regular(&there)?,
                Err(Errno::NOENT) => {}
                Err(e) => return Err(e),
            }
            let flags = OFlags::WRONLY
                | OFlags::CREATE
                | OFlags::TRUNC
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK;
            let file = open_in(root, &last.prefix, flags)?;
            regular(&file)?;
            if let Some(mode) = mode {
                rustix::fs::fchmod(&file, Mode::from_raw_mode(*mode))?;
            }
            if *fd < 0 {
                return write_all(&file, bytes);
            }
            // SAFETY: the sandbox owns this fd and keeps it open until the child has exec'd.
            let from = unsafe { BorrowedFd::borrow_raw(*fd) };
            let mut buf = [0u8; 4096];
            loop {
                match rustix::io::read(from, &mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => write_all(&file, &buf[..n])?,
                    Err(Errno::INTR) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Kind::Chmod { mode } => {
            let fd = existing(root, &op.dest, OFlags::empty())?;
            match crate::sys::fchmodat2(fd.as_raw_fd(), c"", *mode, crate::sys::AT_EMPTY_PATH) {
                // Before Linux 6.6: reopen it for reading (not as a tty, not blocking on a fifo).
                Err(Errno::NOSYS) | Err(Errno::INVAL) => {
                    let flags = OFlags::RDONLY | OFlags::NONBLOCK;
                    let fd = existing(root, &op.dest, flags)?;
                    rustix::fs::fchmod(&fd, Mode::from_raw_mode(*mode))
                }
                r => r,
            }
        }
        Kind::RemountRo => {
            let fd = existing(root, &op.dest, OFlags::empty())?;
            if !set_attrs(plan, &fd, A::MOUNT_ATTR_RDONLY)? {
                remount_tree(fd.as_fd(), A::MOUNT_ATTR_RDONLY)?;
            }
            Ok(())
        }
    }
}

/// `Ok` for a regular file; `EISDIR` for a directory, `ELOOP` for a symlink, `EINVAL` for
/// anything else (a FIFO, a device, a socket).
fn regular(fd: &OwnedFd) -> Result<(), Errno> {
    match FileType::from_raw_mode(rustix::fs::fstat(fd)?.st_mode) {
        FileType::RegularFile => Ok(()),
        FileType::Directory => Err(Errno::ISDIR),
        FileType::Symlink => Err(Errno::LOOP),
        _ => Err(Errno::INVAL),
    }
}

/// A minimal `/dev` at `op.dest`: see [`Sandbox::dev`].
fn make_dev(root: BorrowedFd<'_>, plan: &FsPlan, op: &Planned) -> Result<(), Errno> {
    let nosuid_nodev = A::MOUNT_ATTR_NOSUID | A::MOUNT_ATTR_NODEV;
    let tmpfs = new_fs(c"tmpfs", &[(c"mode", c"0755")], nosuid_nodev)?;
    attach(&tmpfs, &ensure_dirs(root, &op.dest)?)?;
    // The directory fd of the new tmpfs (the mount point's fd still shows what is under it).
    let dev = existing(root, &op.dest, OFlags::DIRECTORY | OFlags::PATH)?;
    for (k, (_, name)) in DEV_NODES.iter().enumerate() {
        let flags = OFlags::CREATE | OFlags::EXCL | OFlags::RDONLY | OFlags::CLOEXEC;
        drop(rustix::fs::openat(
            &dev,
            *name,
            flags | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o444),
        )?);
        let at = rustix::fs::openat(
            &dev,
            *name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let node = take(&plan.slots[op.slot + k]).ok_or(Errno::BADF)?;
        attach(&node, &at)?;
    }
    for (target, name) in DEV_LINKS {
        rustix::fs::symlinkat(target, &dev, name)?;
    }
    let sub = |name: &CStr| -> Result<OwnedFd, Errno> {
        rustix::fs::mkdirat(&dev, name, Mode::from_raw_mode(0o755))?;
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        rustix::fs::openat(&dev, name, flags, Mode::empty())
    };
    let pts = new_fs(
        c"devpts",
        &[(c"ptmxmode", c"0666"), (c"mode", c"620")],
        A::MOUNT_ATTR_NOSUID | A::MOUNT_ATTR_NOEXEC,
    );
    attach(&pts?, &sub(c"pts")?)?;
    let shm = new_fs(c"tmpfs", &[(c"mode", c"1777")], nosuid_nodev)?;
    attach(&shm, &sub(c"shm")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::mount::MountFlags as M;

    #[test]
    fn destinations_split_into_prefixes_and_names() {
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

    #[test]
    fn mountinfo_lines_give_ids_path_and_flags() {
        let line = b"86 93 254:0 /usr /tmp/a\\040b ro,nosuid,nodev,relatime - ext4 /dev/vda rw";
        let (id, parent, path, flags) = parse_mountinfo_line(line).unwrap();
        assert_eq!((id, parent), (86, 93));
        assert_eq!(flags, M::RDONLY | M::NOSUID | M::NODEV | M::RELATIME);
        let mut buf = [0u8; 4097];
        assert_eq!(unescape(path, &mut buf).unwrap(), c"/tmp/a b");

        let line = b"1 2 0:6 / /x rw,noexec shared:1 - tmpfs none rw";
        let (_, _, _, flags) = parse_mountinfo_line(line).unwrap();
        assert_eq!(flags, M::NOEXEC | M::STRICTATIME, "no atime option means strictatime");
        assert!(parse_mountinfo_line(b"x 2 0:6 / /x rw").is_err());
        assert!(parse_mountinfo_line(b"1 2").is_err());
    }

    #[test]
    fn unescape_handles_edges() {
        let mut buf = [0u8; 4097];
        assert_eq!(unescape(b"a\\134b\\", &mut buf).unwrap(), c"a\\b\\");
        assert_eq!(unescape(b"\\04", &mut buf).unwrap(), c"\\04");
        assert_eq!(unescape(b"", &mut buf).unwrap(), c"");
        assert!(unescape(&[b'a'; 5000], &mut buf).is_err());
    }
}
