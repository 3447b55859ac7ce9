//! The filesystem operations in the child: raw system calls only, no allocation (see
//! [`crate::child`] and [`crate::fs`] for what they do).
#![allow(unsafe_code)]

use crate::child::Bounded;
use crate::child::fail;
use crate::error::Failure;
use crate::error::Step;
use crate::fs::*;
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags as A, MoveMountFlags, OpenTreeFlags, UnmountFlags,
};
use std::ffi::CStr;
use std::sync::atomic::{AtomicI32, Ordering};

fn store(slot: &AtomicI32, fd: OwnedFd) {
    slot.store(fd.into_raw_fd(), Ordering::Relaxed);
}

/// The fd slot `k` of `op` (of those it has from [`Planned::slot`] on); `EBADF` if the plan
/// has no such slot.
fn slot<'p>(plan: &'p FsPlan, op: &Planned<'_>, k: usize) -> Result<&'p AtomicI32, Errno> {
    op.slot.checked_add(k).and_then(|i| plan.slots.get(i)).ok_or(Errno::BADF)
}

fn take(slot: &AtomicI32) -> Option<OwnedFd> {
    let fd = slot.swap(-1, Ordering::Relaxed);
    // SAFETY: a slot holds an fd this task opened and nothing else owns (swap empties it).
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A NUL-terminated string built in a fixed buffer (a path through `/proc/self/fd`, an
/// overlay's list of layers), without allocating. `ENAMETOOLONG` when it does not fit.
pub(crate) struct CBuf<const N: usize> {
    buf: [u8; N],
    /// buf[..len] is written; len < N (room for the NUL).
    len: usize,
}

impl<const N: usize> CBuf<N> {
    pub(crate) const fn new() -> Self {
        CBuf { buf: [0; N], len: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<&mut Self, Errno> {
        let end = self.len.checked_add(bytes.len()).filter(|&e| e < N).ok_or(Errno::NAMETOOLONG)?;
        self.buf.get_mut(self.len..end).ok_or(Errno::NAMETOOLONG)?.copy_from_slice(bytes);
        self.len = end;
        Ok(self)
    }

    /// Appends `n` in decimal.
    pub(crate) fn push_num(&mut self, n: u32) -> Result<&mut Self, Errno> {
        let mut digits = [0u8; 10];
        let mut at = digits.len();
        let mut n = n;
        loop {
            at = at.checked_sub(1).ok_or(Errno::OVERFLOW)?;
            // n % 10 < 10: the digit fits a u8.
            *digits.get_mut(at).ok_or(Errno::OVERFLOW)? = b'0'.saturating_add((n % 10) as u8);
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(digits.get(at..).ok_or(Errno::OVERFLOW)?)
    }

    /// `/proc/self/fd/FD`, then `rest`.
    pub(crate) fn fd_path(&mut self, fd: i32, rest: &[u8]) -> Result<&mut Self, Errno> {
        let fd = u32::try_from(fd).map_err(|_| Errno::BADF)?;
        self.push(b"/proc/self/fd/")?.push_num(fd)?.push(rest)
    }

    pub(crate) fn as_cstr(&mut self) -> Result<&CStr, Errno> {
        *self.buf.get_mut(self.len).ok_or(Errno::NAMETOOLONG)? = 0;
        let with_nul = self.buf.get(..=self.len).ok_or(Errno::NAMETOOLONG)?;
        CStr::from_bytes_with_nul(with_nul).map_err(|_| Errno::INVAL)
    }
}

/// Opens `path` inside `root` as an `O_PATH` fd (plus `flags`); see [`open_in`].
fn path_in(root: BorrowedFd<'_>, path: &CStr, flags: OFlags) -> Result<OwnedFd, Errno> {
    open_in(root, path, OFlags::PATH | flags, 0)
}

/// Opens `path` inside `root`: `..` stops at `root`, absolute symlinks start from it, and
/// `/proc/self/...`-style magic links are refused. `mode` is the mode of a file `O_CREAT`
/// makes (the setup's umask is 0).
fn open_in(root: BorrowedFd<'_>, path: &CStr, flags: OFlags, mode: u32) -> Result<OwnedFd, Errno> {
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    // openat2 refuses O_PATH with any flag but O_DIRECTORY, O_NOFOLLOW and O_CLOEXEC.
    let flags = if flags.contains(OFlags::PATH) {
        flags | OFlags::CLOEXEC
    } else {
        flags | OFlags::CLOEXEC | OFlags::NOCTTY
    };
    // openat2 wants mode 0 unless it creates.
    let mode = Mode::from_raw_mode(if flags.contains(OFlags::CREATE) { mode } else { 0 });
    // EAGAIN: a concurrent rename raced with the lookup; the kernel asks to retry (16 times).
    for _ in 0..16 {
        match rustix::fs::openat2(root, path, flags, mode, resolve) {
            Err(Errno::AGAIN) => {}
            r => return r,
        }
    }
    rustix::fs::openat2(root, path, flags, mode, resolve)
}

/// The directory `c` inside `root`, made in `parent` (the directory before it, already
/// resolved) with `mode` when it is missing: by name, never through a symlink. `Ok(true)`
/// with it when this call made it.
fn step_into(
    root: BorrowedFd<'_>,
    parent: &OwnedFd,
    c: &Comp,
    mode: u32,
) -> Result<(OwnedFd, bool), Errno> {
    match path_in(root, &c.prefix, OFlags::DIRECTORY) {
        Ok(fd) => Ok((fd, false)),
        Err(Errno::NOENT) => {
            let made = match rustix::fs::mkdirat(parent, c.name.as_c_str(), Mode::from_raw_mode(mode))
            {
                Ok(()) => true,
                Err(Errno::EXIST) => false,
                Err(e) => return Err(e),
            };
            Ok((path_in(root, &c.prefix, OFlags::DIRECTORY)?, made))
        }
        Err(e) => Err(e),
    }
}

/// Opens the directory at `comps` inside `root`, creating missing ones: the parents with
/// mode `parents`, the last one with `last` (exactly: the setup's umask is 0). One that exists
/// keeps its mode.
fn ensure_dirs(
    root: BorrowedFd<'_>,
    comps: &[Comp],
    parents: u32,
    last: u32,
) -> Result<OwnedFd, Errno> {
    Ok(ensure_dirs_made(root, comps, parents, last)?.0)
}

/// [`ensure_dirs`], and whether it made the last one.
fn ensure_dirs_made(
    root: BorrowedFd<'_>,
    comps: &[Comp],
    parents: u32,
    last: u32,
) -> Result<(OwnedFd, bool), Errno> {
    let mut dir = rustix::io::fcntl_dupfd_cloexec(root, 3)?;
    let Some((end, before)) = comps.split_last() else { return Ok((dir, false)) };
    for c in before {
        dir = step_into(root, &dir, c, parents)?.0;
    }
    step_into(root, &dir, end, last)
}

/// The mount point at `dest` inside `root`: a directory (0755), or for a file source a file
/// (0444); missing parents are made with `parents`. An existing destination of the right
/// kind is used as it is; a symlink is followed inside the new root (bubblewrap's rule).
fn mount_point(
    root: BorrowedFd<'_>,
    dest: &[Comp],
    dir: bool,
    parents: u32,
) -> Result<OwnedFd, Errno> {
    let Some((last, before)) = dest.split_last() else {
        return rustix::io::fcntl_dupfd_cloexec(root, 3);
    };
    if dir {
        return ensure_dirs(root, dest, parents, 0o755);
    }
    match path_in(root, &last.prefix, OFlags::empty()) {
        Err(Errno::NOENT) => {}
        r => return r,
    }
    let parent = ensure_dirs(root, before, parents, parents)?;
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
    if flags.is_empty() { path_in(root, path, flags) } else { open_in(root, path, flags, 0) }
}

/// The mount on top at `attach`: the new root as it is now, with whatever was stacked on it.
fn top_root(plan: &FsPlan<'_>) -> Result<OwnedFd, Errno> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    rustix::fs::open(plan.attach, flags, Mode::empty())
}

/// The mount on top at `dest`, once something has been attached there.
fn top_at(root: BorrowedFd<'_>, plan: &FsPlan<'_>, dest: &[Comp]) -> Result<OwnedFd, Errno> {
    // The root's own fd shows what is under a mount stacked on it: go through `attach`.
    if dest.is_empty() { top_root(plan) } else { existing(root, dest, OFlags::empty()) }
}

/// A new, detached filesystem of type `fstype`, configured with `opts`.
fn new_fs(fstype: &CStr, opts: &[(&CStr, &CStr)], attrs: A) -> Result<OwnedFd, Errno> {
    let fs = rustix::mount::fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)?;
    // Named after its type in /proc/self/mountinfo ("proc", "tmpfs"), as mount(8) names them
    // and OCI configs give their sources, rather than the new mount API's "none".
    if !opts.iter().any(|(key, _)| *key == c"source") {
        rustix::mount::fsconfig_set_string(&fs, c"source", fstype)?;
    }
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

/// Sets `attrs` (never clears any) on the mount of `fd` and every mount below it with
/// `mount_setattr(AT_RECURSIVE)`. `Ok(false)`: the plan asks for the fallback (the kernel has no
/// `mount_setattr`: [`crate::kernel`]), or the call is refused all the same (a seccomp policy),
/// and [`remount_tree`] must do it once the tree is attached.
fn set_attrs(plan: &FsPlan<'_>, fd: &OwnedFd, attrs: A) -> Result<bool, Errno> {
    if plan.force_remount { Ok(false) } else { set_tree_attrs(fd.as_fd(), attrs) }
}

/// [`set_attrs`] whatever the plan says: `Ok(false)` where the kernel has no `mount_setattr`.
fn set_tree_attrs(fd: BorrowedFd<'_>, attrs: A) -> Result<bool, Errno> {
    let flags = crate::sys::AT_EMPTY_PATH | crate::sys::AT_RECURSIVE;
    match crate::sys::mount_setattr(fd.as_raw_fd(), c"", flags, u64::from(attrs.bits())) {
        Ok(()) => Ok(true),
        Err(Errno::NOSYS) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Makes the attached mount of `fd` and every mount below it read-only: `mount_setattr`, or
/// (without it, or with `force_remount`) a remount of each.
pub(crate) fn read_only_tree(fd: BorrowedFd<'_>, force_remount: bool) -> Result<(), Errno> {
    if force_remount || !set_tree_attrs(fd, A::MOUNT_ATTR_RDONLY)? {
        remount_tree(fd, A::MOUNT_ATTR_RDONLY)?;
    }
    Ok(())
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
    let mut ids = Bounded::<u64, MAX_TREE>::new(0);
    ids.push(top_id)?;
    // Children may be listed before their parents: repeat until nothing is added.
    loop {
        let before = ids.as_slice().len();
        for_each_mount(|id, parent, _, _| {
            if ids.as_slice().contains(&parent) && !ids.as_slice().contains(&id) {
                ids.push(id).map_err(|_| Errno::NOMEM)?;
            }
            Ok(())
        })?;
        if ids.as_slice().len() == before {
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
        if ids.as_slice().contains(&id) {
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
    // buf[..len] is read and not yet parsed; len <= buf.len().
    loop {
        let free = buf.get_mut(len..).filter(|free| !eof && !free.is_empty());
        if let Some(free) = free {
            match rustix::io::read(&file, free) {
                Ok(0) => eof = true,
                // k <= free.len(): len stays <= buf.len(), far from saturating.
                Ok(k) => len = len.saturating_add(k),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e),
            }
        }
        let read = buf.get(..len).ok_or(Errno::OVERFLOW)?;
        let mut lines = read.splitn(2, |&b| b == b'\n');
        match (lines.next(), lines.next()) {
            (Some(line), Some(rest)) => {
                let rest = rest.len();
                let (id, parent, path, flags) = parse_mountinfo_line(line)?;
                let mut cpath = [0u8; 4097];
                let cpath = unescape(path, &mut cpath)?;
                f(id, parent, cpath, flags)?;
                // What follows the line (`rest` bytes, the last ones read) moves to the front.
                buf.copy_within(len.saturating_sub(rest)..len, 0);
                len = rest;
            }
            _ if eof => return Ok(()),
            _ if len == buf.len() => return Err(Errno::NAMETOOLONG),
            _ => {}
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
        s.iter().try_fold(0u64, |v, &b| {
            let digit = char::from(b).to_digit(10).ok_or(Errno::INVAL)?;
            v.checked_mul(10).and_then(|v| v.checked_add(u64::from(digit))).ok_or(Errno::INVAL)
        })
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

/// Undoes mountinfo's octal escapes (`\040` for a space) into `out`, NUL-terminated. An escape
/// of more than 255 (`\400` and up, which the kernel never writes) is `EINVAL`.
fn unescape<'b>(s: &[u8], out: &'b mut [u8; 4097]) -> Result<&'b CStr, Errno> {
    let octal = |b: &u8| char::from(*b).to_digit(8).and_then(|d| u8::try_from(d).ok());
    let mut rest = s;
    // out[..o] is written; o < out.len().
    let mut o = 0usize;
    while let Some((&first, tail)) = rest.split_first() {
        let (byte, after) = match tail {
            [a, b, c, after @ ..]
                if first == b'\\' && [a, b, c].into_iter().all(|d| octal(d).is_some()) =>
            {
                let value = [a, b, c]
                    .into_iter()
                    .try_fold(0u8, |v, d| v.checked_mul(8)?.checked_add(octal(d)?));
                (value.ok_or(Errno::INVAL)?, after)
            }
            _ => (first, tail),
        };
        // The last byte of `out` is for the NUL.
        let slot = out.get_mut(o).filter(|_| o < 4096).ok_or(Errno::NAMETOOLONG)?;
        *slot = byte;
        o = o.saturating_add(1);
        rest = after;
    }
    let with_nul = out.get_mut(..=o).ok_or(Errno::NAMETOOLONG)?;
    if let Some(nul) = with_nul.last_mut() {
        *nul = 0;
    }
    CStr::from_bytes_with_nul(with_nul).map_err(|_| Errno::INVAL)
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(Errno::IO),
            // write never takes more than it is given.
            Ok(n) => bytes = bytes.get(n..).ok_or(Errno::IO)?,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes a file's contents into `file`: `bytes`, or what `from` reads to its end.
fn write_contents(file: &OwnedFd, bytes: &[u8], from: Option<BorrowedFd<'_>>) -> Result<(), Errno> {
    let Some(from) = from else { return write_all(file, bytes) };
    let mut buf = [0u8; 4096];
    loop {
        match rustix::io::read(from, &mut buf) {
            Ok(0) => return Ok(()),
            // read never returns more than it is given.
            Ok(n) => write_all(file, buf.get(..n).ok_or(Errno::IO)?)?,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// The flags every bind source is cloned with: the whole tree below it.
const CLONE_TREE: OpenTreeFlags = OpenTreeFlags::OPEN_TREE_CLONE
    .union(OpenTreeFlags::OPEN_TREE_CLOEXEC)
    .union(OpenTreeFlags::AT_RECURSIVE);

/// The step a failure to clone or open a source is: finding it, when the path does not lead
/// to one ([`Step::FindSource`], bubblewrap's "Can't find source path"); the bind itself
/// otherwise (an unbindable mount, a refused clone).
fn source_step(e: Errno) -> Step {
    match e {
        Errno::NOENT | Errno::NOTDIR | Errno::ACCESS | Errno::LOOP | Errno::NAMETOOLONG => {
            Step::FindSource
        }
        _ => Step::BindMount,
    }
}

/// A copy of the tree that `fd` (an fd of the caller's, so of the caller's mount namespace,
/// which cannot be cloned into this one) names: its path, read from `link`
/// (`/proc/self/fd/N`), cloned here, and checked to be the same file (`ESTALE` if it is not:
/// it was replaced in between, or the path leads elsewhere from this view).
fn clone_fd_tree(link: &CStr, fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let mut buf = [0u8; 4097];
    let n = rustix::fs::readlinkat_raw(CWD, link, buf.get_mut(..4096).ok_or(Errno::IO)?)?;
    *buf.get_mut(n).ok_or(Errno::NAMETOOLONG)? = 0;
    let path = CStr::from_bytes_with_nul(buf.get(..=n).ok_or(Errno::NAMETOOLONG)?)
        .map_err(|_| Errno::INVAL)?;
    let tree = rustix::mount::open_tree(CWD, path, CLONE_TREE)?;
    let (want, got) = (rustix::fs::fstat(fd)?, rustix::fs::fstat(&tree)?);
    if (want.st_dev, want.st_ino) != (got.st_dev, got.st_ino) {
        return Err(Errno::STALE);
    }
    Ok(tree)
}

/// Builds the new root from `plan` and makes it `/`. Runs in the child (see [`crate::child`]).
pub(crate) fn apply(
    plan: &FsPlan<'_>,
    before_pivot: impl FnOnce() -> Result<(), Failure>,
) -> Result<(), Failure> {
    // Every mode exactly as given, as bubblewrap's umask(0) during its setup; the program gets
    // the caller's umask back (no CLONE_FS: this task's umask is its own).
    let umask = rustix::process::umask(Mode::empty());

    // 1. Clone or open every source while the host view is intact.
    for op in plan.ops.iter() {
        let i = op.index;
        let source = |e: Errno| Failure::new(source_step(e), e).at(i);
        let put = |k: usize, fd: OwnedFd| -> Result<(), Failure> {
            store(slot(plan, op, k).map_err(|e| fail(Step::BindMount)(e).at(i))?, fd);
            Ok(())
        };
        match &op.kind {
            Kind::Bind { src, .. } => match rustix::mount::open_tree(CWD, src.as_c_str(), CLONE_TREE)
            {
                Ok(fd) => put(0, fd)?,
                Err(Errno::NOENT) if op.skip_missing => {}
                Err(e) => return Err(source(e)),
            },
            Kind::BindFd { link, fd, .. } => {
                let tree = clone_fd_tree(link, *fd)
                    .map_err(|e| Failure::new(Step::FindSource, e).at(i))?;
                put(0, tree)?;
            }
            Kind::Overlay { lowers, upper } => {
                let dirs = match upper {
                    PlannedUpper::Dirs { upper, work } => Some([upper.as_c_str(), work.as_c_str()]),
                    _ => None,
                };
                let layers = lowers.iter().map(|l| l.as_c_str()).chain(dirs.into_iter().flatten());
                let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
                for (k, layer) in layers.enumerate() {
                    let fd = rustix::fs::open(layer, flags, Mode::empty())
                        .map_err(|e| Failure::new(Step::FindSource, e).at(i))?;
                    put(k, fd)?;
                }
            }
            Kind::Dev => {
                let flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
                for (k, (host, _)) in DEV_NODES.iter().enumerate() {
                    let fd = rustix::mount::open_tree(CWD, *host, flags)
                        .map_err(|e| fail(Step::MountDev)(e).at(i))?;
                    put(k, fd)?;
                }
            }
            _ => {}
        }
    }

    // 2. The scratch tmpfs (data files, tmpfs overlays' layers) and, on top of it, the new
    // root, attached in the (private) host view until pivot_root. Both go with the old root.
    let nosuid_nodev = A::MOUNT_ATTR_NOSUID | A::MOUNT_ATTR_NODEV;
    let scratch = if plan.scratch {
        let new_root = fail(Step::NewRoot);
        let fs = new_fs(c"tmpfs", &[(c"mode", c"0700")], nosuid_nodev).map_err(&new_root)?;
        let flags = MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH;
        rustix::mount::move_mount(&fs, c"", CWD, plan.attach, flags).map_err(&new_root)?;
        Some(fs)
    } else {
        None
    };
    let mut first = 0;
    let mut root_attrs = None;
    // With `root_bind`, the first operation is the root's bind.
    let root_op = plan.ops.first().filter(|_| plan.root_bind);
    let root_slot = root_op.map(|op| slot(plan, op, 0)).transpose();
    let root = match root_slot.map_err(fail(Step::BindMount))?.and_then(take) {
        Some(fd) => {
            if let Some(Kind::Bind { attrs, .. }) = root_op.map(|op| &op.kind) {
                root_attrs = Some((set_attrs(plan, &fd, *attrs), *attrs));
            }
            first = 1;
            fd
        }
        None => {
            if plan.root_bind {
                first = 1; // a rootfs bind_try whose source is missing: an empty root
            }
            new_fs(c"tmpfs", &[(c"mode", c"0755")], nosuid_nodev).map_err(fail(Step::NewRoot))?
        }
    };
    let flags = MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH;
    rustix::mount::move_mount(&root, c"", CWD, plan.attach, flags).map_err(fail(Step::NewRoot))?;
    let mut root = root;
    if let Some((done, attrs)) = root_attrs {
        let bind = fail(Step::BindMount);
        if !done.map_err(&bind)? {
            remount_tree(root.as_fd(), attrs).map_err(&bind)?;
        }
    }

    // 3. The operations, in order, every destination resolved inside the new root. One on `/`
    // stacks a mount on the root (a `bind("/", "/")` after other operations covers them, as in
    // bubblewrap): the root is the mount on top from then on.
    for op in plan.ops.iter().skip(first) {
        let failed = |e: Errno| Failure::new(step_of(&op.kind), e).at(op.index);
        apply_one(root.as_fd(), scratch.as_ref(), plan, op).map_err(failed)?;
        if op.dest.is_empty() {
            root = top_root(plan).map_err(failed)?;
        }
    }

    // 4. Into the new root; the old one is detached and can no longer be reached.
    // Every mount of the new root is in place: the parent's checkpoint, if it has one here.
    before_pivot()?;
    let pivot = fail(Step::PivotRoot);
    rustix::process::fchdir(&root).map_err(&pivot)?;
    rustix::process::pivot_root(c".", c".").map_err(&pivot)?;
    rustix::mount::unmount(c".", UnmountFlags::DETACH).map_err(&pivot)?;
    rustix::process::chdir(c"/").map_err(&pivot)?;
    let want = rustix::fs::fstat(&root).map_err(&pivot)?;
    for path in [c"/", c"."] {
        let got = rustix::fs::stat(path).map_err(&pivot)?;
        if (got.st_dev, got.st_ino) != (want.st_dev, want.st_ino) {
            return Err(pivot(Errno::XDEV));
        }
    }
    rustix::process::umask(umask);
    Ok(())
}

fn step_of(kind: &Kind<'_>) -> Step {
    match kind {
        Kind::Bind { .. } | Kind::BindFd { .. } => Step::BindMount,
        Kind::BindData { .. } => Step::BindData,
        Kind::Overlay { .. } => Step::MountOverlay,
        Kind::Tmpfs { .. } => Step::MountTmpfs,
        Kind::Proc => Step::MountProcAt,
        Kind::Dev => Step::MountDev,
        Kind::Mqueue => Step::MountMqueue,
        Kind::Sysfs => Step::MountSysfs,
        Kind::Dir { .. } => Step::CreateDir,
        Kind::Symlink { .. } => Step::CreateSymlink,
        Kind::File { .. } => Step::CreateFile,
        Kind::Chmod { .. } => Step::Chmod,
        Kind::RemountRo | Kind::ReadOnly => Step::RemountReadOnly,
    }
}

/// Attaches the detached tree `src` on the destination of `op` (a mount point made for it, a
/// directory or a file as `src` is one), with `attrs` on every mount of the tree.
fn attach_bind(
    root: BorrowedFd<'_>,
    plan: &FsPlan<'_>,
    op: &Planned<'_>,
    src: &OwnedFd,
    attrs: A,
) -> Result<(), Errno> {
    let done = set_attrs(plan, src, attrs)?;
    let is_dir = FileType::from_raw_mode(rustix::fs::fstat(src)?.st_mode) == FileType::Directory;
    let at = mount_point(root, &op.dest, is_dir, op.parent_mode)?;
    attach(src, &at)?;
    if !done {
        // The mount point's fd shows what is under the mount: reopen the path.
        remount_tree(top_at(root, plan, &op.dest)?.as_fd(), attrs)?;
    }
    Ok(())
}

fn apply_one(
    root: BorrowedFd<'_>,
    scratch: Option<&OwnedFd>,
    plan: &FsPlan<'_>,
    op: &Planned<'_>,
) -> Result<(), Errno> {
    let nosuid_nodev = A::MOUNT_ATTR_NOSUID | A::MOUNT_ATTR_NODEV;
    match &op.kind {
        Kind::Bind { attrs, .. } | Kind::BindFd { attrs, .. } => {
            // A missing source of a _try bind left its slot empty: skip it.
            let Some(src) = take(slot(plan, op, 0)?) else { return Ok(()) };
            attach_bind(root, plan, op, &src, *attrs)
        }
        Kind::BindData { name, bytes, fd, mode, attrs } => {
            let scratch = scratch.ok_or(Errno::BADF)?;
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
            let file = rustix::fs::openat(
                scratch,
                name.as_c_str(),
                flags | OFlags::NOFOLLOW,
                Mode::from_raw_mode(*mode),
            )?;
            rustix::fs::fchmod(&file, Mode::from_raw_mode(*mode))?;
            write_contents(&file, bytes, *fd)?;
            drop(file);
            let flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
            let src = rustix::mount::open_tree(scratch, name.as_c_str(), flags)?;
            let bound = attach_bind(root, plan, op, &src, *attrs);
            // Only the bind reaches the file now (bubblewrap's rule).
            let _ = rustix::fs::unlinkat(scratch, name.as_c_str(), AtFlags::empty());
            bound
        }
        Kind::Overlay { lowers, upper } => {
            let at = ensure_dirs(root, &op.dest, op.parent_mode, 0o755)?;
            let mnt = overlay(scratch, plan, op, lowers.len(), upper);
            // The layers' fds were needed only to name them.
            let dirs = if matches!(upper, PlannedUpper::Dirs { .. }) { 2 } else { 0 };
            for k in 0..lowers.len().saturating_add(dirs) {
                drop(take(slot(plan, op, k)?));
            }
            attach(&mnt?, &at)
        }
        Kind::Tmpfs { size, mode } => {
            let mnt = match size {
                Some(size) => new_fs(c"tmpfs", &[(c"mode", mode), (c"size", size)], nosuid_nodev),
                None => new_fs(c"tmpfs", &[(c"mode", mode)], nosuid_nodev),
            }?;
            attach(&mnt, &ensure_dirs(root, &op.dest, op.parent_mode, 0o755)?)
        }
        Kind::Proc => {
            let mnt = new_fs(c"proc", &[], nosuid_nodev | A::MOUNT_ATTR_NOEXEC)?;
            attach(&mnt, &ensure_dirs(root, &op.dest, op.parent_mode, 0o755)?)
        }
        Kind::Mqueue => {
            let mnt = new_fs(c"mqueue", &[], nosuid_nodev | A::MOUNT_ATTR_NOEXEC)?;
            attach(&mnt, &ensure_dirs(root, &op.dest, op.parent_mode, 0o755)?)
        }
        Kind::Sysfs => {
            let ro = A::MOUNT_ATTR_RDONLY | A::MOUNT_ATTR_NOEXEC;
            let mnt = new_fs(c"sysfs", &[], nosuid_nodev | ro)?;
            attach(&mnt, &ensure_dirs(root, &op.dest, op.parent_mode, 0o755)?)
        }
        Kind::Dev => make_dev(root, plan, op),
        Kind::Dir { mode } => {
            let (dir, made) = ensure_dirs_made(root, &op.dest, op.parent_mode, *mode)?;
            // mkdir drops the set-id bits: give them back to a directory made here. One that
            // was there keeps its mode (bubblewrap's rule).
            if made && *mode & 0o6000 != 0 {
                let dir = rustix::fs::openat(
                    &dir,
                    c".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                rustix::fs::fchmod(&dir, Mode::from_raw_mode(*mode))?;
            }
            Ok(())
        }
        Kind::Symlink { target } => {
            let Some((last, parents)) = op.dest.split_last() else { return Err(Errno::EXIST) };
            let parent = ensure_dirs(root, parents, op.parent_mode, op.parent_mode)?;
            match rustix::fs::symlinkat(target.as_c_str(), &parent, last.name.as_c_str()) {
                Err(Errno::EXIST) => {
                    // Fine when it is the same symlink (bubblewrap's rule).
                    let mut buf = [0u8; 4096];
                    let n = rustix::fs::readlinkat_raw(&parent, last.name.as_c_str(), &mut buf[..])
                        .map_err(|_| Errno::EXIST)?;
                    if buf.get(..n) == Some(target.to_bytes()) { Ok(()) } else { Err(Errno::EXIST) }
                }
                r => r,
            }
        }
        Kind::File { bytes, fd, mode } => {
            let Some((last, parents)) = op.dest.split_last() else { return Err(Errno::ISDIR) };
            ensure_dirs(root, parents, op.parent_mode, op.parent_mode)?;
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
            // A file that exists keeps its mode, as with creat(2) in bubblewrap.
            let file = open_in(root, &last.prefix, flags, *mode)?;
            regular(&file)?;
            write_contents(&file, bytes, *fd)
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
            read_only_tree(fd.as_fd(), plan.force_remount)
        }
        Kind::ReadOnly => {
            // A copy of the tree at the path, attached on the path itself: a mount of its own,
            // so that only it turns read-only, not the rest of the mount it was part of.
            let fd = existing(root, &op.dest, OFlags::empty())?;
            let tree = rustix::mount::open_tree(&fd, c"", CLONE_TREE | OpenTreeFlags::AT_EMPTY_PATH)?;
            let done = set_attrs(plan, &tree, A::MOUNT_ATTR_RDONLY)?;
            attach(&tree, &fd)?;
            if !done {
                read_only_tree(top_at(root, plan, &op.dest)?.as_fd(), true)?;
            }
            Ok(())
        }
    }
}

/// A detached overlayfs of the layers `op` holds in its slots: the `n` lowers (from the
/// lowest up: overlayfs takes them from the top), then the upper and work directories of
/// `upper`. Layers are named through `/proc/self/fd/N` of the fds opened while the host view
/// was intact, so no path needs escaping and none is resolved in the new root. Always
/// `userxattr`, as bubblewrap: an overlay in a user namespace keeps its metadata in
/// `user.overlay.*` extended attributes.
fn overlay(
    scratch: Option<&OwnedFd>,
    plan: &FsPlan<'_>,
    op: &Planned<'_>,
    n: usize,
    upper: &PlannedUpper,
) -> Result<OwnedFd, Errno> {
    let fs = rustix::mount::fsopen(c"overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    let raw = |k: usize| -> Result<i32, Errno> { Ok(slot(plan, op, k)?.load(Ordering::Relaxed)) };
    // One `lowerdir+` per layer (Linux 6.8+); before, one `lowerdir` of them all, joined by
    // ':' (at most 256 bytes, fsconfig's limit for a string).
    let mut joined = CBuf::<256>::new();
    let mut one_by_one = true;
    for k in (0..n).rev() {
        let mut path = CBuf::<32>::new();
        path.fd_path(raw(k)?, b"")?;
        if one_by_one {
            match rustix::mount::fsconfig_set_string(&fs, c"lowerdir+", path.as_cstr()?) {
                Ok(()) => continue,
                Err(Errno::INVAL) if joined.is_empty() && k.saturating_add(1) == n => {
                    one_by_one = false;
                }
                Err(e) => return Err(e),
            }
        }
        if !joined.is_empty() {
            joined.push(b":")?;
        }
        joined.push(path.as_cstr()?.to_bytes())?;
    }
    if !one_by_one {
        rustix::mount::fsconfig_set_string(&fs, c"lowerdir", joined.as_cstr()?)?;
    }
    let (mut up, mut work) = (CBuf::<64>::new(), CBuf::<64>::new());
    let _tmp_dir: Option<OwnedFd> = match upper {
        PlannedUpper::Dirs { .. } => {
            up.fd_path(raw(n)?, b"")?;
            work.fd_path(raw(n.saturating_add(1))?, b"")?;
            None
        }
        PlannedUpper::Tmpfs { name } => {
            let scratch = scratch.ok_or(Errno::BADF)?;
            rustix::fs::mkdirat(scratch, name.as_c_str(), Mode::from_raw_mode(0o755))?;
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let dir = rustix::fs::openat(scratch, name.as_c_str(), flags, Mode::empty())?;
            for sub in [c"upper", c"work"] {
                rustix::fs::mkdirat(&dir, sub, Mode::from_raw_mode(0o755))?;
            }
            up.fd_path(dir.as_raw_fd(), b"/upper")?;
            work.fd_path(dir.as_raw_fd(), b"/work")?;
            Some(dir)
        }
        PlannedUpper::ReadOnly => None,
    };
    if !up.is_empty() {
        rustix::mount::fsconfig_set_string(&fs, c"upperdir", up.as_cstr()?)?;
        rustix::mount::fsconfig_set_string(&fs, c"workdir", work.as_cstr()?)?;
    }
    rustix::mount::fsconfig_set_flag(&fs, c"userxattr")?;
    rustix::mount::fsconfig_create(&fs)?;
    rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, A::MOUNT_ATTR_NOSUID | A::MOUNT_ATTR_NODEV)
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

/// A minimal `/dev` at `op.dest`: see [`Sandbox::dev`](crate::Sandbox::dev).
fn make_dev(root: BorrowedFd<'_>, plan: &FsPlan<'_>, op: &Planned<'_>) -> Result<(), Errno> {
    let nosuid_nodev = A::MOUNT_ATTR_NOSUID | A::MOUNT_ATTR_NODEV;
    let tmpfs = new_fs(c"tmpfs", &[(c"mode", c"0755")], nosuid_nodev)?;
    attach(&tmpfs, &ensure_dirs(root, &op.dest, op.parent_mode, 0o755)?)?;
    // The directory fd of the new tmpfs (the mount point's fd still shows what is under it).
    let dev = top_at(root, plan, &op.dest)?;
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
        let node = take(slot(plan, op, k)?).ok_or(Errno::BADF)?;
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
    // Its source reads "shm", as runc's and Docker's do (and OCI configs give it).
    let shm = new_fs(c"tmpfs", &[(c"source", c"shm"), (c"mode", c"1777")], nosuid_nodev)?;
    attach(&shm, &sub(c"shm")?)
}

#[cfg(test)]
#[allow(
    clippy::disallowed_macros,
    clippy::disallowed_methods,
    clippy::unwrap_used,
    reason = "tests run in the test harness, never after clone"
)]
mod tests {
    use super::*;
    use rustix::mount::MountFlags as M;
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
    fn cbuf_builds_fd_paths_and_refuses_what_does_not_fit() {
        let mut b = CBuf::<32>::new();
        assert!(b.is_empty());
        assert_eq!(b.fd_path(0, b"").unwrap().as_cstr().unwrap(), c"/proc/self/fd/0");
        let mut b = CBuf::<32>::new();
        b.fd_path(2147483647, b"/up").unwrap();
        assert_eq!(b.as_cstr().unwrap(), c"/proc/self/fd/2147483647/up");
        assert_eq!(CBuf::<32>::new().fd_path(-1, b"").err(), Some(Errno::BADF));
        let mut b = CBuf::<4>::new();
        assert!(b.push(b"abc").is_ok());
        assert_eq!(b.push(b"d").err(), Some(Errno::NAMETOOLONG), "room is kept for the NUL");
        assert_eq!(b.as_cstr().unwrap(), c"abc");
    }

    #[test]
    fn unescape_handles_edges() {
        let mut buf = [0u8; 4097];
        assert_eq!(unescape(b"a\\134b\\", &mut buf).unwrap(), c"a\\b\\");
        assert_eq!(unescape(b"\\04", &mut buf).unwrap(), c"\\04");
        assert_eq!(unescape(b"", &mut buf).unwrap(), c"");
        assert!(unescape(&[b'a'; 5000], &mut buf).is_err());
        assert_eq!(unescape(&[b'a'; 4096], &mut buf).unwrap().to_bytes(), &[b'a'; 4096]);
        assert_eq!(unescape(&[b'a'; 4097], &mut buf), Err(Errno::NAMETOOLONG));
    }

    #[test]
    fn unescape_refuses_escapes_above_a_byte() {
        let mut buf = [0u8; 4097];
        assert_eq!(unescape(b"\\377", &mut buf).unwrap().to_bytes(), b"\xff");
        assert_eq!(unescape(b"a\\400", &mut buf), Err(Errno::INVAL));
        assert_eq!(unescape(b"\\777", &mut buf), Err(Errno::INVAL));
    }

    #[test]
    fn every_mountinfo_line_is_seen() {
        let text = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
        let want: Vec<(u64, u64)> = text
            .lines()
            .map(|l| {
                let mut f = l.split(' ').map(|n| n.parse().unwrap());
                (f.next().unwrap(), f.next().unwrap())
            })
            .collect();
        let mut got = Vec::new();
        for_each_mount(|id, parent, path, _| {
            assert!(path.to_bytes().starts_with(b"/"));
            got.push((id, parent));
            Ok(())
        })
        .unwrap();
        assert_eq!(got, want);
    }
}
