//! Keyrings: the two `keyctl` operations on the session keyring that
//! `Sandbox::new_session_keyring` needs.
#![allow(unsafe_code)]

use super::raw::{check, nr, syscall4};
use rustix::io::Errno;

/// `keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)`: this task gets a new, empty, anonymous session
/// keyring in place of the one it inherited; returns its serial number. See
/// [keyctl_join_session_keyring(3)](https://man7.org/linux/man-pages/man3/keyctl_join_session_keyring.3.html).
pub fn join_session_keyring() -> Result<usize, Errno> {
    const KEYCTL_JOIN_SESSION_KEYRING: usize = 1;
    // SAFETY: a NULL name asks for an anonymous keyring; no memory is passed.
    check(unsafe { syscall4(nr::KEYCTL, KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0) })
}

/// `keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)`: the serial number of this task's
/// session keyring, creating none.
pub fn session_keyring_id() -> Result<usize, Errno> {
    const KEYCTL_GET_KEYRING_ID: usize = 0;
    const KEY_SPEC_SESSION_KEYRING: isize = -3;
    // SAFETY: integers only.
    check(unsafe {
        syscall4(nr::KEYCTL, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING as usize, 0, 0)
    })
}
