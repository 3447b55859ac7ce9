//! The egress allowlist in the child: the nf_tables batch the parent encoded
//! ([`crate::net::nft::ruleset`]), sent on a `NETLINK_NETFILTER` socket of the sandbox's network
//! namespace (root in the sandbox's user namespace has `CAP_NET_ADMIN` over it).

use crate::net::nft::{BATCH_BEGIN, BATCH_END, NLM_F_ACK};
use rustix::io::Errno;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

/// `NLMSG_ERROR`: an acknowledgement (error 0) or an error, with the request's header.
const NLMSG_ERROR: u16 = 2;
/// `struct nlmsghdr`.
const HEADER_LEN: usize = 16;

/// Installs `batch` (from [`crate::net::nft::ruleset`]) in the current network namespace.
///
/// Sends it in one datagram, then reads every answer the kernel queued, without waiting: the
/// kernel processes a netfilter batch, commit included, inside the `send`, so its answers are
/// all there when `send` returns (`nft` reads them the same way, `select` with a zero timeout).
/// So this never blocks. Returns the first error the kernel reported (for the first message
/// that failed, or for the batch when the commit failed: nothing is installed then), or
/// `EPROTO` if fewer acknowledgements came than the batch has messages flagged `NLM_F_ACK`
/// (or `batch` is not one `BATCH_BEGIN` ... `BATCH_END` batch: `EINVAL`, nothing sent). The
/// socket is closed before it returns.
pub(crate) fn install(batch: &[u8]) -> Result<(), Errno> {
    let expected = acks_requested(batch)?;
    let socket = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        Some(rustix::net::netlink::NETFILTER),
    )?;
    // Unbound, unconnected: the kernel binds a port id and sends to the kernel (port id 0).
    if rustix::net::send(&socket, batch, SendFlags::empty())? != batch.len() {
        return Err(Errno::MSGSIZE);
    }
    // Errors echo their request (a rule is well under 1 KiB); a longer answer is cut, and only
    // its first 20 bytes are read.
    let mut buf = [0u8; 4096];
    let mut answers = Answers::default();
    loop {
        match rustix::net::recv(&socket, &mut buf, RecvFlags::DONTWAIT) {
            Ok((0, _)) | Err(Errno::AGAIN) => break,
            Ok((len, _)) => answers.read(buf.get(..len).unwrap_or(&[])),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    drop(socket);
    answers.result(expected)
}

/// The `(type, flags, length)` of a netlink header.
fn header(msg: &[u8]) -> Option<(u16, u16, usize)> {
    let len = u32::from_ne_bytes(msg.get(0..4)?.try_into().ok()?);
    let ty = u16::from_ne_bytes(msg.get(4..6)?.try_into().ok()?);
    let flags = u16::from_ne_bytes(msg.get(6..8)?.try_into().ok()?);
    Some((ty, flags, usize::try_from(len).ok()?))
}

/// What follows the message of length `len` at the start of `rest` (`NLMSG_ALIGN`ed, and
/// nothing after the last one, which need not be padded); `None` if it is longer than `rest`.
fn after(rest: &[u8], len: usize) -> Option<&[u8]> {
    let padded = len.checked_next_multiple_of(4)?;
    rest.get(padded..).or_else(|| rest.get(len..).map(|_| &[][..]))
}

/// How many messages of `batch` ask for an acknowledgement, after checking that it is one
/// batch: `BATCH_BEGIN` first, `BATCH_END` last, every length in bounds.
fn acks_requested(batch: &[u8]) -> Result<usize, Errno> {
    let mut rest = batch;
    let mut first = true;
    let mut last = 0;
    let mut acks = 0usize;
    while !rest.is_empty() {
        let (ty, flags, len) = header(rest).ok_or(Errno::INVAL)?;
        if len < HEADER_LEN || (first && ty != BATCH_BEGIN) {
            return Err(Errno::INVAL);
        }
        rest = after(rest, len).ok_or(Errno::INVAL)?;
        if flags & NLM_F_ACK != 0 && ty != BATCH_BEGIN && ty != BATCH_END {
            acks = acks.saturating_add(1);
        }
        first = false;
        last = ty;
    }
    if last != BATCH_END {
        return Err(Errno::INVAL);
    }
    Ok(acks)
}

/// What the kernel answered so far.
#[derive(Default)]
struct Answers {
    /// The first error (a positive errno, or what it was if it was not one).
    error: Option<i32>,
    /// Acknowledgements (`NLMSG_ERROR` with error 0).
    acks: usize,
}

impl Answers {
    /// Reads the messages of one datagram (the last may be cut).
    fn read(&mut self, datagram: &[u8]) {
        let mut rest = datagram;
        while let Some((ty, _, len)) = header(rest) {
            if ty == NLMSG_ERROR {
                // struct nlmsgerr { int error; struct nlmsghdr msg; ... }
                let code = rest
                    .get(HEADER_LEN..HEADER_LEN.saturating_add(4))
                    .and_then(|b| b.try_into().ok())
                    .map(i32::from_ne_bytes);
                match code {
                    Some(0) => self.acks = self.acks.saturating_add(1),
                    Some(e) => self.error = self.error.or(Some(e.wrapping_neg())),
                    None => self.error = self.error.or(Some(0)),
                }
            }
            if len < HEADER_LEN {
                break;
            }
            let Some(next) = after(rest, len) else { break };
            rest = next;
        }
    }

    /// The first error, else whether every requested acknowledgement came.
    fn result(&self, expected: usize) -> Result<(), Errno> {
        match self.error {
            Some(e @ 1..=4095) => Err(Errno::from_raw_os_error(e)),
            Some(_) => Err(Errno::PROTO),
            None if self.acks < expected => Err(Errno::PROTO),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::disallowed_macros,
    clippy::disallowed_methods,
    reason = "tests run in the test harness, never after clone"
)]
mod tests {
    use super::*;

    /// A netlink message: header (`len` as given, or the real one) and `payload`.
    fn msg(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = (HEADER_LEN + payload.len()) as u32;
        let mut m = Vec::new();
        m.extend_from_slice(&len.to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(payload);
        m.resize(m.len().next_multiple_of(4), 0);
        m
    }

    /// An `NLMSG_ERROR` answer with `error` (0: an acknowledgement) to a request `seq`.
    fn answer(error: i32, seq: u32) -> Vec<u8> {
        let mut payload = error.to_ne_bytes().to_vec();
        payload.extend_from_slice(&msg(0x0a06, 1, seq, &[])[..HEADER_LEN]);
        msg(NLMSG_ERROR, 0, seq, &payload)
    }

    #[test]
    fn a_batch_counts_the_messages_that_ask_for_acks() {
        let batch = crate::net::nft::ruleset(&[], &[]);
        assert_eq!(acks_requested(&batch), Ok(1));
        let mut two = msg(BATCH_BEGIN, 1 | NLM_F_ACK, 0, &[0, 0, 0, 10]);
        two.extend(msg(0x0a06, 1 | NLM_F_ACK, 1, &[1, 0, 0, 0]));
        two.extend(msg(0x0a06, 1 | NLM_F_ACK, 2, &[1, 0, 0, 0, 7]));
        two.extend(msg(BATCH_END, 1, 3, &[0, 0, 0, 10]));
        assert_eq!(acks_requested(&two), Ok(2));
    }

    #[test]
    fn what_is_not_one_batch_is_refused() {
        let batch = crate::net::nft::ruleset(&[], &[]);
        assert_eq!(acks_requested(&batch[..batch.len() - 20]), Err(Errno::INVAL), "no end");
        assert_eq!(acks_requested(&batch[20..]), Err(Errno::INVAL), "no begin");
        assert_eq!(acks_requested(&batch[..batch.len() - 1]), Err(Errno::INVAL), "cut");
        assert_eq!(acks_requested(&[]), Err(Errno::INVAL));
        let mut short = batch.clone();
        short[0..4].copy_from_slice(&8u32.to_ne_bytes());
        assert_eq!(acks_requested(&short), Err(Errno::INVAL), "length below a header");
    }

    #[test]
    fn the_first_error_wins_and_a_missing_ack_is_an_error() {
        let mut a = Answers::default();
        a.read(&answer(0, 7));
        assert_eq!(a.result(1), Ok(()));
        assert_eq!(a.result(2), Err(Errno::PROTO));
        assert_eq!(Answers::default().result(1), Err(Errno::PROTO));

        let mut a = Answers::default();
        let mut datagram = answer(-2, 3); // ENOENT for the rule, then EPERM for the batch
        datagram.extend(answer(-1, 0));
        a.read(&datagram);
        a.read(&answer(0, 7));
        assert_eq!(a.result(1), Err(Errno::NOENT));

        // a cut answer still gives its error; one without an error code is a protocol error
        let mut a = Answers::default();
        a.read(&answer(-22, 1)[..20]);
        assert_eq!(a.result(0), Err(Errno::INVAL));
        let mut a = Answers::default();
        a.read(&answer(-22, 1)[..18]);
        assert_eq!(a.result(0), Err(Errno::PROTO));
    }
}
