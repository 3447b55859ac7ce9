//! Landlock: the ABI version, adding a path rule to a ruleset and enforcing it on the calling
//! thread. The ruleset itself is created in the parent ([`crate::landlock`]).
#![allow(unsafe_code)]

use super::raw::{check, nr, syscall4};
use core::ffi::c_int;
use rustix::io::Errno;

/// `landlock_restrict_self(ruleset_fd, 0)`.
pub fn landlock_restrict_self(ruleset_fd: c_int) -> Result<(), Errno> {
    // SAFETY: integers only.
    check(unsafe { syscall4(nr::LANDLOCK_RESTRICT_SELF, ruleset_fd as usize, 0, 0, 0) }).map(|_| ())
}

/// `landlock_add_rule(ruleset_fd, LANDLOCK_RULE_PATH_BENEATH, &{allowed, parent_fd}, 0)`.
pub fn landlock_add_path_rule(
    ruleset_fd: c_int,
    parent_fd: c_int,
    allowed: u64,
) -> Result<(), Errno> {
    /// `struct landlock_path_beneath_attr` (packed in the kernel's UAPI).
    #[repr(C, packed)]
    struct PathBeneath {
        allowed_access: u64,
        parent_fd: i32,
    }
    const LANDLOCK_RULE_PATH_BENEATH: usize = 1;
    let attr = PathBeneath { allowed_access: allowed, parent_fd };
    // SAFETY: a pointer to a live, correctly laid out attribute; flags 0.
    let ret = unsafe {
        syscall4(
            nr::LANDLOCK_ADD_RULE,
            ruleset_fd as usize,
            LANDLOCK_RULE_PATH_BENEATH,
            &attr as *const PathBeneath as usize,
            0,
        )
    };
    check(ret).map(|_| ())
}

/// The kernel's Landlock ABI version (`landlock_create_ruleset(NULL, 0, VERSION)`), 0 when
/// the kernel has no Landlock or it is disabled.
pub fn landlock_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: usize = 1;
    // SAFETY: a NULL attribute with size 0 and the VERSION flag only queries the ABI.
    let ret =
        unsafe { syscall4(nr::LANDLOCK_CREATE_RULESET, 0, 0, LANDLOCK_CREATE_RULESET_VERSION, 0) };
    check(ret).map(|v| v as i32).unwrap_or(0)
}
