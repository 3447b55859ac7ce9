//! Capability sets: `capget` and `capset` on the calling thread, version 3 (64-bit sets).
//! The bounding and ambient sets are `prctl` options ([`super::prctl`]).
#![allow(unsafe_code)]

use super::raw::{check, nr, syscall4};
use core::ffi::c_int;
use rustix::io::Errno;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

/// `struct __user_cap_data_struct`, two of them for `_LINUX_CAPABILITY_VERSION_3`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The calling thread's (effective, permitted, inheritable) capability sets (`capget`).
pub fn capget() -> Result<(u64, u64, u64), Errno> {
    let mut header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: a valid header and room for the two data structs version 3 writes.
    let ret = unsafe {
        syscall4(nr::CAPGET, &mut header as *mut _ as usize, data.as_mut_ptr() as usize, 0, 0)
    };
    check(ret)?;
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
        join(data[0].inheritable, data[1].inheritable),
    ))
}

/// Sets the calling thread's capability sets (`capset`); per task, no mm-wide effect.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<(), Errno> {
    let mut header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let split = |e: u64, p: u64, i: u64, shift: u32| CapData {
        effective: (e >> shift) as u32,
        permitted: (p >> shift) as u32,
        inheritable: (i >> shift) as u32,
    };
    let data =
        [split(effective, permitted, inheritable, 0), split(effective, permitted, inheritable, 32)];
    // SAFETY: a valid header and two data structs, as version 3 reads.
    let ret = unsafe {
        syscall4(nr::CAPSET, &mut header as *mut _ as usize, data.as_ptr() as usize, 0, 0)
    };
    check(ret).map(|_| ())
}
