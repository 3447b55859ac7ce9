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
