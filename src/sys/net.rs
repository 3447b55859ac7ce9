//! Network interfaces: `ioctl(SIOCSIFFLAGS)`, which rustix does not wrap.
#![allow(unsafe_code)]

use super::raw::{check, nr, syscall4};
use rustix::io::Errno;
use std::os::fd::{AsRawFd, BorrowedFd};

const SIOCSIFFLAGS: usize = 0x8914;
/// `IFNAMSIZ`.
const NAME_SIZE: usize = 16;

/// `ioctl(socket, SIOCSIFFLAGS, {name, flags})`: sets the flags (`IFF_*`) of the interface
/// `name` (at most 15 bytes) of the socket's network namespace.
pub fn set_interface_flags(socket: BorrowedFd<'_>, name: &[u8], flags: u16) -> Result<(), Errno> {
    // struct ifreq: 16 bytes of name, then a union whose first member here is short ifr_flags.
    let mut ifreq = [0u8; 40];
    let (name_field, rest) = ifreq.split_at_mut(NAME_SIZE);
    name_field
        .get_mut(..name.len())
        .filter(|_| name.len() < NAME_SIZE)
        .ok_or(Errno::INVAL)?
        .copy_from_slice(name);
    rest.get_mut(..2).ok_or(Errno::INVAL)?.copy_from_slice(&flags.to_ne_bytes());
    let fd = socket.as_raw_fd() as usize;
    // SAFETY: a socket fd and a pointer to a 40-byte struct ifreq that lives across the call.
    let ret = unsafe { syscall4(nr::IOCTL, fd, SIOCSIFFLAGS, ifreq.as_mut_ptr() as usize, 0) };
    check(ret).map(|_| ())
}
