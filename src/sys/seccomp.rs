//! Seccomp: installing a classic BPF filter on the calling thread (`seccomp(2)`).
#![allow(unsafe_code)]

use super::raw::{check, nr, syscall4};
use rustix::io::Errno;

/// `struct sock_filter`: one classic BPF instruction.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

const SECCOMP_SET_MODE_FILTER: usize = 1;

/// `seccomp(SECCOMP_SET_MODE_FILTER, 0, prog)`: installs a filter on the calling thread only
/// (no `SECCOMP_FILTER_FLAG_TSYNC`). Needs no_new_privs or `CAP_SYS_ADMIN` in the namespace.
pub fn seccomp_set_filter(program: &[SockFilter]) -> Result<(), Errno> {
    if program.is_empty() || program.len() > 4096 {
        return Err(Errno::INVAL);
    }
    let prog = SockFprog { len: program.len() as u16, filter: program.as_ptr() };
    // SAFETY: prog points to `len` instructions that live until the call returns (the kernel
    // copies them).
    let ret =
        unsafe { syscall4(nr::SECCOMP, SECCOMP_SET_MODE_FILTER, 0, &prog as *const _ as usize, 0) };
    check(ret).map(|_| ())
}
