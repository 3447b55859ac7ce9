//! The filesystem setters of [`Sandbox`]: an ordered list of mount operations ([`crate::fs`]).

use crate::Sandbox;
use crate::fs::*;
use rustix::fd::OwnedFd;
use std::path::Path;

/// # Filesystem
///
/// A sandbox with [`Namespaces::MOUNT`](crate::Namespaces::MOUNT) can be given an ordered list of filesystem operations.
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
/// operation is reported as an [`Error`](crate::Error) naming its position in the list and its paths.
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
    /// [`Error::InvalidInput`](crate::Error::InvalidInput).
    pub fn tmpfs_with(
        &mut self,
        dest: impl AsRef<Path>,
        size: Option<u64>,
        mode: Option<u32>,
    ) -> &mut Self {
        self.fs_op(Op::Tmpfs { dest: dest.as_ref().into(), size, mode })
    }

    /// Mounts a fresh procfs on `dest` (`nosuid`, `nodev`, `noexec`). Without root it needs a
    /// new PID namespace ([`Namespaces::PID`](crate::Namespaces::PID)).
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

    /// Mounts a POSIX message queue filesystem on `dest` (needs [`Namespaces::IPC`](crate::Namespaces::IPC) without root).
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

    /// Shows the sandbox's own cgroups at `dest` in the new root, read-only (needs
    /// [`limits`](Sandbox::limits)): on cgroup v2 alone its leaf is `dest`; on a hybrid or v1
    /// host `dest` is a tmpfs with each leaf under its hierarchy's name (`memory`, `pids`,
    /// `cpu`, `unified`), as `/sys/fs/cgroup` names them. The program reads its limits and
    /// usage there (`pids.max`, `memory.peak`); it can write nothing, and gets no cgroupfs
    /// mount of its own (a writable v1 hierarchy is the `release_agent` escape,
    /// CVE-2022-0492).
    #[doc(alias = "cgroup")]
    pub fn cgroup_view(&mut self, dest: impl AsRef<Path>) -> &mut Self {
        self.fs_op(Op::CgroupView { dest: dest.as_ref().into() })
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
