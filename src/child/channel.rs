//! The child's end of the setup channel ([`Channel`]): its failure record, and its stops at the
//! parent's checkpoints. Raw system calls only.

use crate::child::{SETUP_FAILED, fail};
use crate::error::{Failure, Step};
use crate::plan::{Channel, Checkpoint, Plan};
use crate::sys;
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags};
use std::os::fd::{AsRawFd, BorrowedFd};

impl Channel {
    /// The channel, if this path has one.
    fn borrow(&self) -> Option<BorrowedFd<'_>> {
        let fd = self.fd();
        // SAFETY: the child's end stays open in this task until exec or exit (every fd-closing
        // step keeps it, and moves it here when it must give its number up).
        (fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
    }

    /// Sends `word`, and says whether it went (a seccomp filter may refuse `sendto`).
    pub(crate) fn send_word(&self, word: u64) -> Result<(), Errno> {
        let fd = self.borrow().ok_or(Errno::BADF)?;
        rustix::net::send(fd, &word.to_ne_bytes(), SendFlags::NOSIGNAL).map(|_| ())
    }

    /// Sends the failure record (best effort: the record is in the plan's memory too).
    pub(crate) fn send_record(&self, word: u64) {
        if let Some(fd) = self.borrow() {
            let _ = rustix::net::send(fd, &word.to_ne_bytes(), SendFlags::NOSIGNAL);
        }
    }
}

/// Stops at `at` when the plan asks for it: tells the parent, and waits for its answer. No
/// answer but EOF means the parent gave up (a hook failed, the parent died): the child leaves
/// quietly, the parent knows why.
pub(crate) fn checkpoint(plan: &Plan<'_>, at: Checkpoint) -> Result<(), Failure> {
    if plan.checkpoints & at.bit() == 0 {
        return Ok(());
    }
    let handshake = fail(Step::Handshake);
    let fd = plan.channel.borrow().ok_or_else(|| handshake(Errno::BADF))?;
    rustix::net::send(fd, &at.encode().to_ne_bytes(), SendFlags::NOSIGNAL).map_err(&handshake)?;
    let mut byte = [0u8; 1];
    loop {
        match rustix::net::recv(fd, &mut byte, RecvFlags::empty()) {
            Ok((1, _)) => return Ok(()),
            Ok(_) => sys::exit(SETUP_FAILED),
            Err(Errno::INTR) => {}
            Err(e) => return Err(handshake(e)),
        }
    }
}

/// First thing on a path with a channel: closes this task's copy of the parent's end, so that
/// EOF reaches it when the parent goes.
pub(crate) fn close_parent_end(plan: &Plan<'_>) -> Result<(), Failure> {
    if let Some(end) = plan.parent_end.and_then(|fd| u32::try_from(fd.as_raw_fd()).ok()) {
        sys::close_range(end, end).map_err(fail(Step::Handshake))?;
    }
    Ok(())
}
