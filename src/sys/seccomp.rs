//! Seccomp: installing a classic BPF filter on the calling thread (`prctl(PR_SET_SECCOMP)`,
//! else `seccomp(2)`).
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

/// `prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog)`: installs a filter on the calling thread
/// only (no `SECCOMP_FILTER_FLAG_TSYNC`). Needs no_new_privs or `CAP_SYS_ADMIN` in the namespace.
///
/// The kernel treats this exactly as `seccomp(SECCOMP_SET_MODE_FILTER, 0, prog)`. prctl goes
/// first because a filter installed before this one may allow only it: allowlists such as
/// Flatpak's (and bubblewrap's stacking) allow `prctl` and answer `seccomp` with `ENOSYS`.
/// Where prctl is refused, `seccomp()` is tried, and prctl's error is the one returned if
/// both fail.
pub fn seccomp_set_filter(program: &[SockFilter]) -> Result<(), Errno> {
    const PR_SET_SECCOMP: usize = 22;
    const SECCOMP_MODE_FILTER: usize = 2;
    if program.is_empty() || program.len() > 4096 {
        return Err(Errno::INVAL);
    }
    let prog = SockFprog { len: program.len() as u16, filter: program.as_ptr() };
    let ptr = &prog as *const _ as usize;
    // SAFETY: prog points to `len` instructions that live until the call returns (the kernel
    // copies them).
    let first = check(unsafe { syscall4(nr::PRCTL, PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ptr, 0) });
    match first {
        Ok(_) => Ok(()),
        Err(e) => {
            // SAFETY: as above.
            let ret = unsafe { syscall4(nr::SECCOMP, SECCOMP_SET_MODE_FILTER, 0, ptr, 0) };
            check(ret).map(|_| ()).map_err(|_| e)
        }
    }
}
