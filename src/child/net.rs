//! The network namespace in the child: `lo` up, as `ip link set lo up` does.

use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketFlags, SocketType};

const IFF_UP: u16 = 0x1;
const IFF_LOOPBACK: u16 = 0x8;

/// Brings the loopback interface `lo` of the current network namespace up.
pub(crate) fn loopback_up() -> Result<(), Errno> {
    let socket = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    crate::sys::set_interface_flags(std::os::fd::AsFd::as_fd(&socket), b"lo", IFF_UP | IFF_LOOPBACK)
}

/// Covers each file's target with its contents, in the sandbox's private mount namespace. A
/// target that does not exist is left alone (there is nothing to cover).
pub(crate) fn etc_files(files: &[crate::net::EtcFile<'_>]) -> Result<(), Errno> {
    use rustix::fs::{Mode, OFlags};
    use rustix::mount::{
        FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
    };
    let Some(first) = files.first() else { return Ok(()) };
    let fs = rustix::mount::fsopen(c"tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)?;
    rustix::mount::fsconfig_set_string(&fs, c"size", c"64k")?;
    rustix::mount::fsconfig_create(&fs)?;
    let attrs = MountAttrFlags::MOUNT_ATTR_NODEV
        | MountAttrFlags::MOUNT_ATTR_NOSUID
        | MountAttrFlags::MOUNT_ATTR_NOEXEC;
    let mnt = rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)?;
    for f in files {
        let flags = OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::EXCL;
        let fd = rustix::fs::openat(&mnt, f.name, flags, Mode::from_raw_mode(0o644))?;
        let mut left = f.contents;
        while !left.is_empty() {
            let n = rustix::io::write(&fd, left)?;
            left = left.get(n..).unwrap_or_default();
        }
    }
    let clone = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    // Linux 6.15+ clones from a detached mount; before, only from one attached in this
    // namespace: there the tmpfs is attached on /tmp for the time of the binds (`mnt` then
    // names the attached mount).
    let mut probe = Some(rustix::mount::open_tree(&mnt, first.name, clone));
    let attached = matches!(probe, Some(Err(Errno::INVAL)));
    if attached {
        probe = None;
        let flags = MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH;
        rustix::mount::move_mount(&mnt, c"", rustix::fs::CWD, c"/tmp", flags)?;
    }
    let result = files.iter().try_for_each(|f| {
        let tree = match probe.take() {
            Some(tree) => tree?,
            None => rustix::mount::open_tree(&mnt, f.name, clone)?,
        };
        cover(&tree, f.target)
    });
    if attached {
        rustix::mount::unmount(c"/tmp", rustix::mount::UnmountFlags::DETACH)?;
    }
    result
}

/// Attaches the cloned file `tree` over `target` (a symlink is followed; a missing target is
/// left alone).
fn cover(tree: &rustix::fd::OwnedFd, target: &core::ffi::CStr) -> Result<(), Errno> {
    use rustix::mount::MoveMountFlags;
    let to = MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_SYMLINKS;
    match rustix::mount::move_mount(tree, c"", rustix::fs::CWD, target, to) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e),
    }
}
