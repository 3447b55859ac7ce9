//! Network interfaces: bringing `lo` up with `socket` and `ioctl(SIOCSIFFLAGS)`, in the child
//! after it has entered its new network namespace.
#![allow(unsafe_code)]

use super::fd::close_range;
use super::raw::{check, nr, syscall4};
use rustix::io::Errno;

const AF_INET: usize = 2;
const SOCK_DGRAM: usize = 2;
const SOCK_CLOEXEC: usize = 0o2000000;
const SIOCSIFFLAGS: usize = 0x8914;
const IFF_UP: u16 = 0x1;
const IFF_LOOPBACK: u16 = 0x8;

/// Brings the loopback interface `lo` of the current network namespace up, as `ip link set lo up`.
pub fn loopback_up() -> Result<(), Errno> {
    // SAFETY: integers only.
    let fd = check(unsafe { syscall4(nr::SOCKET, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0, 0) })?;
    // struct ifreq: 16 bytes of name, then a union whose first member here is short ifr_flags.
    let mut ifreq = [0u8; 40];
    ifreq[..2].copy_from_slice(b"lo");
    ifreq[16..18].copy_from_slice(&(IFF_UP | IFF_LOOPBACK).to_ne_bytes());
    // SAFETY: a valid fd and a pointer to a 40-byte struct ifreq.
    let ret = unsafe { syscall4(nr::IOCTL, fd, SIOCSIFFLAGS, ifreq.as_mut_ptr() as usize, 0) };
    let _ = close_range(fd as u32, fd as u32);
    check(ret).map(|_| ())
}
