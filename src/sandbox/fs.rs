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
/// bound directory can never redirect a later operation to the host. Operations apply in the
/// order given, and a later mount covers an earlier one, `/` included: a
/// [`bind("/", "/")`](Sandbox::bind) after other operations covers them all, as in bubblewrap.
///
/// Modes are exactly as given (the setup runs with umask 0, as bubblewrap's). Missing mount
/// points are created as bubblewrap creates them: a directory 0755, a file 0444 for a
/// non-directory source; a destination that is a symlink is followed inside the new root.
/// Missing parent directories get a mode derived from the operation's: the owner always has
/// `rwx`, the group `r-x` if the operation's mode gives the group anything, others `r-x` if it
/// gives them anything (0750 and 0640 make 0750 parents, 0700 and 0600 make 0700, 0644 and
/// 01777 make 0755; 0755 for an operation without a mode). A directory or file that exists
/// keeps its mode. A failed operation is reported as an [`Error`](crate::Error) naming its
/// position in the list and its paths; a source that cannot be found is
/// [`Step::FindSource`](crate::Step::FindSource) with the source as the error's path.
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
    /// host's files. `src` is resolved on the host before anything is mounted (a relative one
    /// from the current directory); `dest` `/` covers everything before it.
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

    /// Mounts an empty tmpfs on `dest` (its root 0755, no size limit beyond the kernel's
    /// default of half the RAM).
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
    /// `ptmx` symlink, a tmpfs on `shm` (mode 1777), and the symlinks `fd` (`/proc/self/fd`),
    /// `stdin`, `stdout`, `stderr` (`/proc/self/fd/0` to `2`) and `core` (`/proc/kcore`), as
    /// bubblewrap's `--dev`.
    #[doc(alias = "--dev")]
    pub fn dev(&mut self, dest: impl AsRef<Path>) -> &mut Self {
        self.fs_op(Op::Dev { dest: dest.as_ref().into() })
    }

    /// Mounts a fresh sysfs on `dest`, read-only (`nosuid`, `nodev`, `noexec`): it shows the
    /// sandbox's own network devices. Without root it needs a new network namespace
    /// ([`Namespaces::NET`](crate::Namespaces::NET)), which the sandbox's user namespace owns.
    pub fn sysfs(&mut self, dest: impl AsRef<Path>) -> &mut Self {
        self.fs_op(Op::Sysfs { dest: dest.as_ref().into() })
    }

    /// Mounts a POSIX message queue filesystem on `dest` (needs [`Namespaces::IPC`](crate::Namespaces::IPC) without root).
    #[doc(alias = "--mqueue")]
    pub fn mqueue(&mut self, dest: impl AsRef<Path>) -> &mut Self {
        self.fs_op(Op::Mqueue { dest: dest.as_ref().into() })
    }

    /// Creates the directory `dest` (0755) and its missing parents; one that exists keeps its
    /// mode.
    #[doc(alias = "--dir")]
    pub fn dir(&mut self, dest: impl AsRef<Path>) -> &mut Self {
        self.fs_op(Op::Dir { dest: dest.as_ref().into(), mode: None })
    }

    /// Creates the directory `dest` with exactly `mode` (bubblewrap's `--perms MODE --dir`);
    /// one that exists keeps its mode. Missing parents get the mode derived from `mode` (see
    /// above: 0700 for 0700).
    pub fn dir_with_mode(&mut self, dest: impl AsRef<Path>, mode: u32) -> &mut Self {
        self.fs_op(Op::Dir { dest: dest.as_ref().into(), mode: Some(mode) })
    }

    /// Creates the symlink `dest` pointing to `target`. An existing symlink with the same
    /// target is fine; anything else there fails with [`Step::CreateSymlink`](crate::Step::CreateSymlink)
    /// and `EEXIST`, the hint saying what is there when the operations before tell
    /// ("existing destination is /dev/null", as bubblewrap says).
    #[doc(alias = "--symlink")]
    pub fn symlink(&mut self, target: impl AsRef<Path>, dest: impl AsRef<Path>) -> &mut Self {
        self.fs_op(Op::Symlink { target: target.as_ref().into(), dest: dest.as_ref().into() })
    }

    /// Creates the file `dest` (0666) with `contents`; a file that exists is truncated and
    /// keeps its mode.
    pub fn file(&mut self, dest: impl AsRef<Path>, contents: impl Into<Vec<u8>>) -> &mut Self {
        let contents = Contents::Bytes(contents.into());
        self.fs_op(Op::File { dest: dest.as_ref().into(), contents, mode: None })
    }

    /// Creates the file `dest` with exactly `mode` and `contents` (an existing one keeps its
    /// mode).
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
    /// [`file_with_mode`](Sandbox::file_with_mode), `None` for 0666.
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

    fn bind_fd_op(&mut self, fd: OwnedFd, dest: &Path, kind: BindKind) -> &mut Self {
        self.fs_op(Op::BindFd { fd, dest: dest.to_path_buf(), kind })
    }

    /// Bind-mounts the directory or file that the open `fd` names (an `O_PATH` fd or an
    /// ordinary one) on `dest`, read-write, with `nosuid` and `nodev`; bubblewrap's
    /// `--bind-fd FD DEST`. The child reads the path `fd` names (`/proc/self/fd/N`; a mount of
    /// the caller's namespace cannot be cloned into the sandbox's), binds it, and checks that
    /// the bound file is the fd's (device and inode): if what the path leads to was replaced
    /// in between, `spawn` fails with [`Step::FindSource`](crate::Step::FindSource) and
    /// `ESTALE`. The sandbox owns `fd` and closes it; the program never has it.
    #[doc(alias = "--bind-fd")]
    pub fn bind_fd(&mut self, fd: impl Into<OwnedFd>, dest: impl AsRef<Path>) -> &mut Self {
        self.bind_fd_op(fd.into(), dest.as_ref(), BindKind::ReadWrite)
    }

    /// [`bind_fd`](Sandbox::bind_fd), read-only (every mount below it too); bubblewrap's
    /// `--ro-bind-fd FD DEST`.
    #[doc(alias = "--ro-bind-fd")]
    pub fn ro_bind_fd(&mut self, fd: impl Into<OwnedFd>, dest: impl AsRef<Path>) -> &mut Self {
        self.bind_fd_op(fd.into(), dest.as_ref(), BindKind::ReadOnly)
    }

    fn bind_data_op(
        &mut self,
        dest: &Path,
        contents: Contents,
        mode: Option<u32>,
        read_only: bool,
    ) -> &mut Self {
        self.fs_op(Op::BindData { dest: dest.to_path_buf(), contents, mode, read_only })
    }

    /// Bind-mounts a file of the sandbox's own holding `contents` on `dest` (created as a file
    /// mount point, 0444, when missing), with exactly `mode` (`None`: 0600); bubblewrap's
    /// `--bind-data`. Unlike [`file`](Sandbox::file), the destination's filesystem is left
    /// as it is (it may be read-only) and the file lives on a tmpfs out of the new root's
    /// reach, gone with the sandbox. Missing parents get the mode derived from `mode` (0700
    /// for 0600).
    pub fn bind_data(
        &mut self,
        dest: impl AsRef<Path>,
        contents: impl Into<Vec<u8>>,
        mode: Option<u32>,
    ) -> &mut Self {
        self.bind_data_op(dest.as_ref(), Contents::Bytes(contents.into()), mode, false)
    }

    /// [`bind_data`](Sandbox::bind_data), read-only; bubblewrap's `--ro-bind-data`.
    pub fn ro_bind_data(
        &mut self,
        dest: impl AsRef<Path>,
        contents: impl Into<Vec<u8>>,
        mode: Option<u32>,
    ) -> &mut Self {
        self.bind_data_op(dest.as_ref(), Contents::Bytes(contents.into()), mode, true)
    }

    /// [`bind_data`](Sandbox::bind_data) with what can be read from `fd` (to its end) at spawn
    /// time; bubblewrap's `--bind-data FD DEST`. The same rules as for
    /// [`file_from_fd`](Sandbox::file_from_fd)'s fd apply.
    #[doc(alias = "--bind-data")]
    pub fn bind_data_from_fd(
        &mut self,
        dest: impl AsRef<Path>,
        fd: impl Into<OwnedFd>,
        mode: Option<u32>,
    ) -> &mut Self {
        self.bind_data_op(dest.as_ref(), Contents::Fd(fd.into()), mode, false)
    }

    /// [`bind_data_from_fd`](Sandbox::bind_data_from_fd), read-only; bubblewrap's
    /// `--ro-bind-data FD DEST`.
    #[doc(alias = "--ro-bind-data")]
    pub fn ro_bind_data_from_fd(
        &mut self,
        dest: impl AsRef<Path>,
        fd: impl Into<OwnedFd>,
        mode: Option<u32>,
    ) -> &mut Self {
        self.bind_data_op(dest.as_ref(), Contents::Fd(fd.into()), mode, true)
    }

    fn overlay_op<P: AsRef<Path>>(
        &mut self,
        lowers: impl IntoIterator<Item = P>,
        upper: Upper,
        dest: &Path,
    ) -> &mut Self {
        let lowers = lowers.into_iter().map(|p| p.as_ref().to_path_buf()).collect();
        self.fs_op(Op::Overlay { lowers, upper, dest: dest.to_path_buf() })
    }

    /// Mounts an overlayfs on `dest`: the host directories `lowers`, given **from the lowest
    /// up** (bubblewrap's order of `--overlay-src`: a file in a later one hides the same file
    /// in an earlier one), under the host directory `upper`, which takes the writes, with
    /// `work` (an empty directory on the same filesystem as `upper`) as overlayfs's work
    /// directory; bubblewrap's `--overlay-src ... --overlay RWSRC WORKDIR DEST`. Needs at least
    /// one lower layer. Every layer is a host path, opened before anything is mounted (a
    /// relative one from the current directory), so no path needs escaping; `userxattr` is
    /// always given, so it works in a user namespace (Linux 5.11+). Failures to mount are
    /// [`Step::MountOverlay`](crate::Step::MountOverlay).
    #[doc(alias = "--overlay")]
    #[doc(alias = "overlayfs")]
    pub fn overlay<P: AsRef<Path>>(
        &mut self,
        lowers: impl IntoIterator<Item = P>,
        upper: impl AsRef<Path>,
        work: impl AsRef<Path>,
        dest: impl AsRef<Path>,
    ) -> &mut Self {
        let upper = Upper::Dirs { upper: upper.as_ref().into(), work: work.as_ref().into() };
        self.overlay_op(lowers, upper, dest.as_ref())
    }

    /// [`overlay`](Sandbox::overlay) whose writes go to a tmpfs of the sandbox's own, out of
    /// the new root's reach and discarded with the sandbox; bubblewrap's `--tmp-overlay DEST`.
    /// Needs at least one lower layer.
    #[doc(alias = "--tmp-overlay")]
    pub fn tmp_overlay<P: AsRef<Path>>(
        &mut self,
        lowers: impl IntoIterator<Item = P>,
        dest: impl AsRef<Path>,
    ) -> &mut Self {
        self.overlay_op(lowers, Upper::Tmpfs, dest.as_ref())
    }

    /// A read-only overlayfs of `lowers` (from the lowest up) on `dest`; bubblewrap's
    /// `--ro-overlay DEST`. Needs at least two lower layers (overlayfs without an upper layer
    /// stacks two or more).
    #[doc(alias = "--ro-overlay")]
    pub fn ro_overlay<P: AsRef<Path>>(
        &mut self,
        lowers: impl IntoIterator<Item = P>,
        dest: impl AsRef<Path>,
    ) -> &mut Self {
        self.overlay_op(lowers, Upper::ReadOnly, dest.as_ref())
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

    /// Makes `dest` in the new root read-only, and only it: the tree at `dest` is bound on
    /// itself and that mount (every mount below it included) made read-only, so the rest of
    /// the mount `dest` is part of stays as it was. An OCI `readonlyPaths` entry
    /// (`/proc/sys` in a writable `/proc`); [`remount_ro`](Sandbox::remount_ro) changes the
    /// whole mount `dest` is on.
    pub fn read_only(&mut self, dest: impl AsRef<Path>) -> &mut Self {
        self.fs_op(Op::ReadOnly { dest: dest.as_ref().into() })
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
    /// directories. As the first filesystem operation it is the new root itself; after others
    /// it covers them.
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
