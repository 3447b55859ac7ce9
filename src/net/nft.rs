//! The egress allowlist as an nf_tables ruleset, encoded in the parent as the one netlink batch
//! the child sends ([`crate::child::egress::install`]), so the child neither runs `nft` nor
//! encodes anything.
//!
//! The batch installs, in the sandbox's own network namespace:
//!
//! ```text
//! table inet nscell {
//!     chain egress {
//!         type filter hook output priority filter; policy drop;
//!         oif "lo" accept
//!         ct state established,related accept
//!         icmpv6 type nd-router-solicit accept
//!         icmpv6 type nd-neighbor-solicit accept
//!         icmpv6 type nd-neighbor-advert accept
//!         ip daddr 10.0.2.3 udp dport 53 accept          # per DNS server, udp then tcp
//!         ip daddr 10.0.2.3 tcp dport 53 accept
//!         ip daddr 10.1.0.0/16 tcp dport 80 accept       # per Allow, protocol and port range
//!         ip daddr 10.1.0.0/16 tcp dport 443-444 accept
//!         ip6 daddr 2001:db8::/32 accept
//!         reject with icmpx admin-prohibited
//!     }
//! }
//! ```
//!
//! Nothing waits for a timeout. A datagram (UDP, ICMP, raw) that the chain does not accept
//! fails its `sendto` or `write` at once with `EPERM`. A TCP `connect` would not: TCP ignores
//! the local drop of its SYN and retransmits it until its SYN timeout (about two minutes). So
//! the last rule rejects: the kernel answers the packet with an ICMP "administratively
//! prohibited" to the sandbox itself (over `lo`, which is accepted), and `connect` fails at
//! once with `EHOSTUNREACH` (IPv4) or `EACCES` (IPv6); a datagram's send still fails with
//! `EPERM` (the reject drops the packet too). The policy `drop` stays the chain's default.
//!
//! The `inet` table sees IPv4 and IPv6, so every address match starts with `meta nfproto`,
//! and every port match with `meta l4proto`, as `nft` itself encodes them in an `inet` table.
//! `oif "lo"` is interface index 1, which the loopback of a new network namespace always has
//! (`nft` lists it by name). Replies (to connections the allowlist let out, and on ports
//! published into the sandbox) pass as `established,related`.
//!
//! The three ICMPv6 neighbour-discovery rules are not in the allowlist itself: without them no
//! IPv6 packet leaves, since resolving the next hop's link-layer address is itself an output
//! packet (IPv4's ARP is not in the `inet` family; ICMPv6 neighbour discovery is, and conntrack
//! does not track it, so an answer to the router's solicitation is not `established` either).
//! They reach the link only: the user-mode network helpers (pasta, slirp4netns) answer
//! neighbour discovery themselves and forward no ICMPv6 but echo.
//!
//! Port ranges are one rule each (TCP's and UDP's when an [`Allow`] names no protocol): no
//! anonymous interval set. A set would be one more object and two more messages per rule
//! (`NEWSET` and `NEWSETELEM`, with interval end elements) for a chain that only the first packet
//! of a flow walks (later ones are `established`); separate rules are simple, and each is one
//! `nft list` line.
//!
//! The expressions are the ones `nft` 1.0.6 generates for the same rules (compared with
//! `nft --debug=netlink` and byte for byte with the batch `nft -f` sends; see the tests), so
//! `nft list ruleset` in the sandbox shows the ruleset above.
//!
//! # The batch and its acknowledgements
//!
//! `NFNL_MSG_BATCH_BEGIN`, `NEWTABLE`, `NEWCHAIN`, one `NEWRULE` per rule, `NFNL_MSG_BATCH_END`,
//! with sequence numbers 0, 1, 2, … in that order. The kernel applies the batch as one
//! transaction, all or nothing, while the `send` runs, and only then queues its answers: an
//! error message for every message that failed (always), and an acknowledgement for every
//! message flagged `NLM_F_ACK`. Only the last rule (the last message before `BATCH_END`) has
//! the flag: its success acknowledgement, and no error, means the batch was committed; an error
//! (which comes for the failing message itself, or for `BATCH_BEGIN` when the commit fails)
//! means nothing was installed. The child reads the answers without waiting, as `nft` does.
//!
//! The batch is one datagram: it must fit the socket's send buffer (`net.core.wmem_default`,
//! 208 KiB by default, about 400 rules), or the child's `send` fails with `EMSGSIZE`.

use std::net::IpAddr;

/// One allowed destination.
pub(crate) struct Allow {
    /// The destination network (bits beyond `prefix` are ignored).
    pub net: IpAddr,
    /// The prefix length of `net`: 32 (128) is the one address, 0 every address of its family;
    /// larger values count as the full length.
    pub prefix: u8,
    /// TCP or UDP only; `None` is both (and, with no `ports`, every protocol).
    pub proto: Option<Proto>,
    /// Inclusive destination port ranges `(lo, hi)`; empty is every port. A range given as
    /// `(hi, lo)` counts as `(lo, hi)`.
    pub ports: Vec<(u16, u16)>,
}

/// A transport protocol with ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// The IP protocol number (`meta l4proto`).
    fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }
}

/// The table's name (family `inet`).
pub(crate) const TABLE: &str = "nscell";
/// The base chain's name (hook `output`, priority 0, policy `drop`).
pub(crate) const CHAIN: &str = "egress";

/// `NFNL_MSG_BATCH_BEGIN`: the first message of a batch.
pub(crate) const BATCH_BEGIN: u16 = 0x10;
/// `NFNL_MSG_BATCH_END`: the last message of a batch (the kernel commits when it reads it).
pub(crate) const BATCH_END: u16 = 0x11;
/// `NLM_F_ACK`: the kernel acknowledges this message, success or not.
pub(crate) const NLM_F_ACK: u16 = 0x4;

// include/uapi/linux/netlink.h
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLA_F_NESTED: u16 = 0x8000;

// include/uapi/linux/netfilter/nfnetlink.h, nf_tables.h, netfilter.h
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFPROTO_INET: u8 = 1;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
const NF_INET_LOCAL_OUT: u32 = 3;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;

const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFTA_CT_DREG: u16 = 1;
const NFTA_CT_KEY: u16 = 2;
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;

const NFTA_REJECT_TYPE: u16 = 1;
const NFTA_REJECT_ICMP_CODE: u16 = 2;
/// `NFT_REJECT_ICMPX_UNREACH`: ICMP or ICMPv6 destination unreachable, by packet family.
const REJECT_ICMPX_UNREACH: u32 = 2;
/// `NFT_REJECT_ICMPX_ADMIN_PROHIBITED`: ICMP code 13 (`EHOSTUNREACH` for the sender), ICMPv6
/// code 1 (`EACCES`).
const ICMPX_ADMIN_PROHIBITED: u8 = 3;

/// `NFT_REG_VERDICT`.
const REG_VERDICT: u32 = 0;
/// `NFT_REG_1`, the one data register every rule uses (as `nft` does).
const REG_1: u32 = 1;

const META_OIF: u32 = 5;
const META_NFPROTO: u32 = 15;
const META_L4PROTO: u32 = 16;
const CT_STATE: u32 = 0;
/// `NF_CT_STATE_BIT(IP_CT_ESTABLISHED) | NF_CT_STATE_BIT(IP_CT_RELATED)`.
const CT_ESTABLISHED_RELATED: u32 = 0x2 | 0x4;
const PAYLOAD_NETWORK: u32 = 1;
const PAYLOAD_TRANSPORT: u32 = 2;
const IPPROTO_ICMPV6: u8 = 58;
/// ICMPv6 router solicitation, neighbour solicitation and advertisement (RFC 4861).
const NEIGHBOUR_DISCOVERY: [u8; 3] = [133, 135, 136];
/// The interface index of `lo` in every network namespace.
const LOOPBACK_IFINDEX: u32 = 1;
const DNS_PORT: u16 = 53;

/// `enum nft_cmp_ops`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CmpOp {
    Eq = 0,
    Neq = 1,
    Lte = 3,
    Gte = 5,
}

/// One expression of a rule; every load goes to register 1, every compare reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expr {
    /// `meta load KEY => reg 1`.
    Meta(u32),
    /// `ct load KEY => reg 1`.
    Ct(u32),
    /// `payload load LEN @ BASE header + OFFSET => reg 1`.
    Payload { base: u32, offset: u32, len: u32 },
    /// `bitwise reg 1 = (reg 1 & MASK) ^ 0`, over `mask.len()` bytes.
    Bitwise { mask: Vec<u8> },
    /// `cmp OP reg 1 DATA`.
    Cmp(CmpOp, Vec<u8>),
    /// `immediate reg 0 accept`.
    Accept,
    /// `reject type ICMPX_UNREACH code ADMIN_PROHIBITED`.
    Reject,
}

/// The whole NFNL batch (`NFNL_MSG_BATCH_BEGIN` ... `NFNL_MSG_BATCH_END`) that installs the
/// ruleset of the module docs: DNS to each of `dns` (UDP and TCP port 53), and what `allow`
/// lists. Pure: the child sends it with [`crate::child::egress::install`].
pub(crate) fn ruleset(allow: &[Allow], dns: &[IpAddr]) -> Vec<u8> {
    encode(&rules(allow, dns))
}

/// The rules of the chain, in order: each ends in `accept`, but the last, `reject`.
fn rules(allow: &[Allow], dns: &[IpAddr]) -> Vec<Vec<Expr>> {
    let mut rules = vec![
        vec![Expr::Meta(META_OIF), Expr::Cmp(CmpOp::Eq, LOOPBACK_IFINDEX.to_ne_bytes().to_vec())],
        vec![
            Expr::Ct(CT_STATE),
            Expr::Bitwise { mask: CT_ESTABLISHED_RELATED.to_ne_bytes().to_vec() },
            Expr::Cmp(CmpOp::Neq, vec![0; 4]),
        ],
    ];
    for icmp_type in NEIGHBOUR_DISCOVERY {
        let mut rule = nfproto(NFPROTO_IPV6);
        rule.extend(l4proto(IPPROTO_ICMPV6));
        rule.push(Expr::Payload { base: PAYLOAD_TRANSPORT, offset: 0, len: 1 });
        rule.push(Expr::Cmp(CmpOp::Eq, vec![icmp_type]));
        rules.push(rule);
    }
    for &server in dns {
        let width = match server {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        for proto in [Proto::Udp, Proto::Tcp] {
            let mut rule = daddr(server, width);
            rule.extend(l4proto(proto.number()));
            rule.extend(dport(DNS_PORT, DNS_PORT));
            rules.push(rule);
        }
    }
    for a in allow {
        let protos: &[Proto] = match a.proto {
            Some(Proto::Tcp) => &[Proto::Tcp],
            Some(Proto::Udp) => &[Proto::Udp],
            None if a.ports.is_empty() => &[],
            None => &[Proto::Tcp, Proto::Udp],
        };
        if protos.is_empty() {
            rules.push(daddr(a.net, a.prefix));
        }
        for proto in protos {
            if a.ports.is_empty() {
                let mut rule = daddr(a.net, a.prefix);
                rule.extend(l4proto(proto.number()));
                rules.push(rule);
            }
            for &(lo, hi) in &a.ports {
                let mut rule = daddr(a.net, a.prefix);
                rule.extend(l4proto(proto.number()));
                rule.extend(dport(lo.min(hi), lo.max(hi)));
                rules.push(rule);
            }
        }
    }
    for rule in &mut rules {
        rule.push(Expr::Accept);
    }
    rules.push(vec![Expr::Reject]);
    rules
}

/// `meta nfproto ipv4` or `ipv6`.
fn nfproto(family: u8) -> Vec<Expr> {
    vec![Expr::Meta(META_NFPROTO), Expr::Cmp(CmpOp::Eq, vec![family])]
}

/// `meta l4proto PROTO`.
fn l4proto(proto: u8) -> Vec<Expr> {
    vec![Expr::Meta(META_L4PROTO), Expr::Cmp(CmpOp::Eq, vec![proto])]
}

/// `ip daddr NET/PREFIX` or `ip6 daddr NET/PREFIX`, as `nft` encodes them: a whole number of
/// bytes compares only those bytes; any other prefix (and /0) masks the whole address first.
fn daddr(net: IpAddr, prefix: u8) -> Vec<Expr> {
    let (family, offset, bytes) = match net {
        // struct iphdr.daddr, struct ipv6hdr.daddr
        IpAddr::V4(a) => (NFPROTO_IPV4, 16, a.octets().to_vec()),
        IpAddr::V6(a) => (NFPROTO_IPV6, 24, a.octets().to_vec()),
    };
    let width = bytes.len() * 8;
    let prefix = usize::from(prefix).min(width);
    let mask: Vec<u8> = (0..bytes.len())
        .map(|i| {
            let bits = prefix.saturating_sub(i * 8).min(8);
            // the top `bits` bits of a byte
            (0xff_u16 << (8 - bits)) as u8
        })
        .collect();
    let masked: Vec<u8> = bytes.iter().zip(&mask).map(|(b, m)| b & m).collect();
    let mut rule = nfproto(family);
    if prefix % 8 == 0 && prefix > 0 {
        let len = prefix / 8;
        rule.push(Expr::Payload { base: PAYLOAD_NETWORK, offset, len: len as u32 });
        rule.push(Expr::Cmp(CmpOp::Eq, masked[..len].to_vec()));
    } else {
        rule.push(Expr::Payload { base: PAYLOAD_NETWORK, offset, len: bytes.len() as u32 });
        rule.push(Expr::Bitwise { mask });
        rule.push(Expr::Cmp(CmpOp::Eq, masked));
    }
    rule
}

/// `th dport LO` or `th dport LO-HI` (after an `l4proto` match: TCP's and UDP's destination
/// port are both at offset 2), as two compares for a range, as `nft` 1.0.6 does.
fn dport(lo: u16, hi: u16) -> Vec<Expr> {
    let mut rule = vec![Expr::Payload { base: PAYLOAD_TRANSPORT, offset: 2, len: 2 }];
    if lo == hi {
        rule.push(Expr::Cmp(CmpOp::Eq, lo.to_be_bytes().to_vec()));
    } else {
        rule.push(Expr::Cmp(CmpOp::Gte, lo.to_be_bytes().to_vec()));
        rule.push(Expr::Cmp(CmpOp::Lte, hi.to_be_bytes().to_vec()));
    }
    rule
}

/// The batch of messages that creates the table, the chain and `rules`; the last rule's
/// message asks for the one acknowledgement (see the module docs).
fn encode(rules: &[Vec<Expr>]) -> Vec<u8> {
    let mut w = Writer::default();
    let nft = |msg: u16| (NFNL_SUBSYS_NFTABLES << 8) | msg;
    w.message(BATCH_BEGIN, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES, |_| {});
    w.message(nft(NFT_MSG_NEWTABLE), NLM_F_REQUEST | NLM_F_CREATE, NFPROTO_INET, 0, |w| {
        w.string(NFTA_TABLE_NAME, TABLE);
        w.be32(NFTA_TABLE_FLAGS, 0);
    });
    w.message(nft(NFT_MSG_NEWCHAIN), NLM_F_REQUEST | NLM_F_CREATE, NFPROTO_INET, 0, |w| {
        w.string(NFTA_CHAIN_TABLE, TABLE);
        w.string(NFTA_CHAIN_NAME, CHAIN);
        w.string(NFTA_CHAIN_TYPE, "filter");
        w.be32(NFTA_CHAIN_POLICY, NF_DROP);
        w.nest(NFTA_CHAIN_HOOK, |w| {
            w.be32(NFTA_HOOK_HOOKNUM, NF_INET_LOCAL_OUT);
            w.be32(NFTA_HOOK_PRIORITY, 0);
        });
    });
    for (i, rule) in rules.iter().enumerate() {
        let ack = if i + 1 == rules.len() { NLM_F_ACK } else { 0 };
        let flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_APPEND | ack;
        w.message(nft(NFT_MSG_NEWRULE), flags, NFPROTO_INET, 0, |w| {
            w.string(NFTA_RULE_TABLE, TABLE);
            w.string(NFTA_RULE_CHAIN, CHAIN);
            w.nest(NFTA_RULE_EXPRESSIONS, |w| {
                for expr in rule {
                    w.nest(NFTA_LIST_ELEM, |w| w.expr(expr));
                }
            });
        });
    }
    w.message(BATCH_END, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES, |_| {});
    w.buf
}

/// Appends netlink messages and attributes: headers in host byte order, every attribute padded
/// to 4 bytes, integers in attributes big-endian (`NLA_BE32`), as nf_tables reads them.
#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
    seq: u32,
}

impl Writer {
    /// One message: `nlmsghdr` (sequence numbers 0, 1, …), `nfgenmsg`, then what `body` writes.
    fn message(
        &mut self,
        ty: u16,
        flags: u16,
        family: u8,
        res_id: u16,
        body: impl FnOnce(&mut Self),
    ) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]); // nlmsg_len, set below
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&self.seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: to the kernel
        self.buf.extend_from_slice(&[family, 0]); // nfgen_family, version NFNETLINK_V0
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        body(self);
        let len = u32::try_from(self.buf.len() - start).expect("a message is far below 4 GiB");
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
        self.seq += 1;
    }

    fn attr(&mut self, ty: u16, data: &[u8]) {
        let len = u16::try_from(4 + data.len()).expect("an attribute is far below 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        let padded = self.buf.len().next_multiple_of(4);
        self.buf.resize(padded, 0);
    }

    fn be32(&mut self, ty: u16, value: u32) {
        self.attr(ty, &value.to_be_bytes());
    }

    /// A NUL-terminated string (`NLA_STRING` with the terminator, as libnftnl sends it).
    fn string(&mut self, ty: u16, s: &str) {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.attr(ty, &data);
    }

    /// A nested attribute (`NLA_F_NESTED`) holding what `body` writes.
    fn nest(&mut self, ty: u16, body: impl FnOnce(&mut Self)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 2]); // nla_len, set below
        self.buf.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        body(self);
        let len = u16::try_from(self.buf.len() - start).expect("a rule is far below 64 KiB");
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// `NFTA_DATA_VALUE` nested in `ty`.
    fn value(&mut self, ty: u16, data: &[u8]) {
        self.nest(ty, |w| w.attr(NFTA_DATA_VALUE, data));
    }

    /// One `NFTA_LIST_ELEM`'s content: the expression's name and data, attributes in the
    /// order libnftnl writes them.
    fn expr(&mut self, expr: &Expr) {
        let name = match expr {
            Expr::Meta(_) => "meta",
            Expr::Ct(_) => "ct",
            Expr::Payload { .. } => "payload",
            Expr::Bitwise { .. } => "bitwise",
            Expr::Cmp(..) => "cmp",
            Expr::Accept => "immediate",
            Expr::Reject => "reject",
        };
        self.string(NFTA_EXPR_NAME, name);
        self.nest(NFTA_EXPR_DATA, |w| match expr {
            Expr::Meta(key) => {
                w.be32(NFTA_META_KEY, *key);
                w.be32(NFTA_META_DREG, REG_1);
            }
            Expr::Ct(key) => {
                w.be32(NFTA_CT_KEY, *key);
                w.be32(NFTA_CT_DREG, REG_1);
            }
            Expr::Payload { base, offset, len } => {
                w.be32(NFTA_PAYLOAD_DREG, REG_1);
                w.be32(NFTA_PAYLOAD_BASE, *base);
                w.be32(NFTA_PAYLOAD_OFFSET, *offset);
                w.be32(NFTA_PAYLOAD_LEN, *len);
            }
            Expr::Bitwise { mask } => {
                w.be32(NFTA_BITWISE_SREG, REG_1);
                w.be32(NFTA_BITWISE_DREG, REG_1);
                w.be32(NFTA_BITWISE_LEN, mask.len() as u32);
                w.value(NFTA_BITWISE_MASK, mask);
                w.value(NFTA_BITWISE_XOR, &vec![0; mask.len()]);
            }
            Expr::Cmp(op, data) => {
                w.be32(NFTA_CMP_SREG, REG_1);
                w.be32(NFTA_CMP_OP, *op as u32);
                w.value(NFTA_CMP_DATA, data);
            }
            Expr::Accept => {
                w.be32(NFTA_IMMEDIATE_DREG, REG_VERDICT);
                w.nest(NFTA_IMMEDIATE_DATA, |w| {
                    w.nest(NFTA_DATA_VERDICT, |w| w.be32(NFTA_VERDICT_CODE, NF_ACCEPT));
                });
            }
            Expr::Reject => {
                w.be32(NFTA_REJECT_TYPE, REJECT_ICMPX_UNREACH);
                w.attr(NFTA_REJECT_ICMP_CODE, &[ICMPX_ADMIN_PROHIBITED]);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
    }

    fn allow(net: IpAddr, prefix: u8, proto: Option<Proto>, ports: &[(u16, u16)]) -> Allow {
        Allow { net, prefix, proto, ports: ports.to_vec() }
    }

    /// One expression as `nft --debug=netlink` prints it (data as host-order 32-bit words).
    fn text(expr: &Expr) -> String {
        fn words(data: &[u8]) -> String {
            data.chunks(4)
                .map(|c| {
                    let mut word = [0; 4];
                    word[..c.len()].copy_from_slice(c);
                    format!("0x{:08x}", u32::from_ne_bytes(word))
                })
                .collect::<Vec<_>>()
                .join(" ")
        }
        let key = |k: &u32| match *k {
            META_OIF => "oif",
            META_NFPROTO => "nfproto",
            META_L4PROTO => "l4proto",
            _ => "?",
        };
        match expr {
            Expr::Meta(k) => format!("[ meta load {} => reg 1 ]", key(k)),
            Expr::Ct(CT_STATE) => "[ ct load state => reg 1 ]".into(),
            Expr::Ct(_) => "[ ct load ? ]".into(),
            Expr::Payload { base, offset, len } => {
                let base = if *base == PAYLOAD_NETWORK { "network" } else { "transport" };
                format!("[ payload load {len}b @ {base} header + {offset} => reg 1 ]")
            }
            Expr::Bitwise { mask } => format!(
                "[ bitwise reg 1 = ( reg 1 & {} ) ^ {} ]",
                words(mask),
                words(&vec![0; mask.len()])
            ),
            Expr::Cmp(op, data) => {
                let op = match op {
                    CmpOp::Eq => "eq",
                    CmpOp::Neq => "neq",
                    CmpOp::Lte => "lte",
                    CmpOp::Gte => "gte",
                };
                format!("[ cmp {op} reg 1 {} ]", words(data))
            }
            Expr::Accept => "[ immediate reg 0 accept ]".into(),
            Expr::Reject => "[ reject type 2 code 3 ]".into(),
        }
    }

    /// The rules between the five fixed ones and the final reject, each as
    /// `nft --debug=netlink` prints it.
    fn allow_rules(allow: &[Allow], dns: &[IpAddr]) -> Vec<String> {
        let rules = rules(allow, dns);
        rules[5..rules.len() - 1]
            .iter()
            .map(|r| r.iter().map(text).collect::<Vec<_>>().join("\n"))
            .collect()
    }

    /// (nlmsg_len, nlmsg_type, nlmsg_flags, nlmsg_seq, the message) of each message.
    fn messages(batch: &[u8]) -> Vec<(usize, u16, u16, u32, &[u8])> {
        let mut out = Vec::new();
        let mut rest = batch;
        while !rest.is_empty() {
            let len = u32::from_ne_bytes(rest[0..4].try_into().unwrap()) as usize;
            let ty = u16::from_ne_bytes(rest[4..6].try_into().unwrap());
            let flags = u16::from_ne_bytes(rest[6..8].try_into().unwrap());
            let seq = u32::from_ne_bytes(rest[8..12].try_into().unwrap());
            assert_eq!(len % 4, 0, "message length aligned");
            out.push((len, ty, flags, seq, &rest[..len]));
            rest = &rest[len..];
        }
        out
    }

    /// Checks that the attributes in `data` tile it exactly (lengths, 4-byte padding, nesting);
    /// returns how many it saw.
    fn check_attrs(data: &[u8]) -> usize {
        let mut rest = data;
        let mut count = 0;
        while !rest.is_empty() {
            assert!(rest.len() >= 4, "attribute header cut");
            let len = usize::from(u16::from_ne_bytes(rest[0..2].try_into().unwrap()));
            let ty = u16::from_ne_bytes(rest[2..4].try_into().unwrap());
            assert!(len >= 4 && len <= rest.len(), "attribute length {len} in {}", rest.len());
            let padded = len.next_multiple_of(4);
            assert!(padded <= rest.len(), "padding cut");
            assert!(rest[len..padded].iter().all(|&b| b == 0), "padding is zero");
            if ty & NLA_F_NESTED != 0 {
                count += check_attrs(&rest[4..len]);
            }
            count += 1;
            rest = &rest[padded..];
        }
        count
    }

    /// What `nft -f` (1.0.6) sends for the five fixed rules and the reject (`strace -e
    /// write=3`), byte for byte.
    const NFT_EMPTY_ALLOWLIST: &[&str] = &[
        "140000001000010000000000000000000000000a28000000000a01000100000000000000010000000b000100",
        "6e7363656c6c0000080002000000000054000000030a01040200000000000000010000000b0001006e736365",
        "6c6c00000b00030065677265737300000b00070066696c746572000008000500000000001400048008000100",
        "000000030800020000000000b0000000060a010c0300000000000000010000000b0001006e7363656c6c0000",
        "0b00020065677265737300008400048024000180090001006d65746100000000140002800800020000000005",
        "08000100000000012c00018008000100636d700020000280080001000000000108000200000000000c000380",
        "0800010001000000300001800e000100696d6d6564696174650000001c000280080001000000000010000280",
        "0c0002800800010000000001f0000000060a010c0400000000000000010000000b0001006e7363656c6c0000",
        "0b0002006567726573730000c400048020000180070001006374000014000280080002000000000008000100",
        "00000001440001800c0001006269747769736500340002800800010000000001080002000000000108000300",
        "000000040c00048008000100060000000c00058008000100000000002c00018008000100636d700020000280",
        "080001000000000108000200000000010c0003800800010000000000300001800e000100696d6d6564696174",
        "650000001c0002800800010000000000100002800c000280080001000000000160010000060a010c05000000",
        "00000000010000000b0001006e7363656c6c00000b0002006567726573730000340104802400018009000100",
        "6d6574610000000014000280080002000000000f08000100000000012c00018008000100636d700020000280",
        "080001000000000108000200000000000c000380050001000a00000024000180090001006d65746100000000",
        "14000280080002000000001008000100000000012c00018008000100636d7000200002800800010000000001",
        "08000200000000000c000380050001003a000000340001800c0001007061796c6f6164002400028008000100",
        "000000010800020000000002080003000000000008000400000000012c00018008000100636d700020000280",
        "080001000000000108000200000000000c0003800500010085000000300001800e000100696d6d6564696174",
        "650000001c0002800800010000000000100002800c000280080001000000000160010000060a010c06000000",
        "00000000010000000b0001006e7363656c6c00000b0002006567726573730000340104802400018009000100",
        "6d6574610000000014000280080002000000000f08000100000000012c00018008000100636d700020000280",
        "080001000000000108000200000000000c000380050001000a00000024000180090001006d65746100000000",
        "14000280080002000000001008000100000000012c00018008000100636d7000200002800800010000000001",
        "08000200000000000c000380050001003a000000340001800c0001007061796c6f6164002400028008000100",
        "000000010800020000000002080003000000000008000400000000012c00018008000100636d700020000280",
        "080001000000000108000200000000000c0003800500010087000000300001800e000100696d6d6564696174",
        "650000001c0002800800010000000000100002800c000280080001000000000160010000060a010c07000000",
        "00000000010000000b0001006e7363656c6c00000b0002006567726573730000340104802400018009000100",
        "6d6574610000000014000280080002000000000f08000100000000012c00018008000100636d700020000280",
        "080001000000000108000200000000000c000380050001000a00000024000180090001006d65746100000000",
        "14000280080002000000001008000100000000012c00018008000100636d7000200002800800010000000001",
        "08000200000000000c000380050001003a000000340001800c0001007061796c6f6164002400028008000100",
        "000000010800020000000002080003000000000008000400000000012c00018008000100636d700020000280",
        "080001000000000108000200000000000c0003800500010088000000300001800e000100696d6d6564696174",
        "650000001c0002800800010000000000100002800c000280080001000000000154000000060a010c08000000",
        "00000000010000000b0001006e7363656c6c00000b000200656772657373000028000480240001800b000100",
        "72656a6563740000140002800800010000000002050002000300000014000000110001000900000000000000",
        "0000000a",
    ];

    #[test]
    #[cfg(target_endian = "little")]
    fn the_bytes_are_what_nft_sends_but_two_flags() {
        let mut nft: Vec<u8> = NFT_EMPTY_ALLOWLIST
            .concat()
            .as_bytes()
            .chunks(2)
            .map(|h| u8::from_str_radix(std::str::from_utf8(h).unwrap(), 16).unwrap())
            .collect();
        // nft sends NEWTABLE without NLM_F_CREATE (the kernel creates a table without it too)
        // and asks for no acknowledgement; we ask for one, on the last rule (the reject).
        assert_eq!(&nft[20 + 6..20 + 8], &NLM_F_REQUEST.to_ne_bytes());
        nft[20 + 6..20 + 8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_CREATE).to_ne_bytes());
        let last = nft.len() - 20 - 84;
        assert_eq!(nft[last + 4..last + 6], 0x0a06u16.to_ne_bytes(), "NEWRULE");
        nft[last + 6] |= NLM_F_ACK as u8;
        assert_eq!(ruleset(&[], &[]), nft);
    }

    #[test]
    fn the_batch_is_framed_numbered_and_acked_once() {
        let batch = ruleset(
            &[
                allow(v4([10, 1, 0, 0]), 16, Some(Proto::Tcp), &[(80, 80), (443, 444)]),
                allow(v6("2001:db8::"), 32, None, &[(53, 53)]),
                allow(v4([192, 0, 2, 7]), 32, None, &[]),
            ],
            &[v4([10, 0, 2, 3]), v6("fd00::3")],
        );
        let msgs = messages(&batch);
        // begin, table, chain, 5 fixed rules, 4 for DNS, 2 + 2 + 1 allowed, reject, end
        assert_eq!(msgs.len(), 1 + 1 + 1 + 5 + 4 + 5 + 1 + 1);
        for (i, (len, _, flags, seq, msg)) in msgs.iter().enumerate() {
            assert_eq!(*seq, i as u32);
            assert_eq!(*len, msg.len());
            assert_ne!(flags & NLM_F_REQUEST, 0);
            assert_eq!(flags & NLM_F_ACK != 0, i == msgs.len() - 2, "only the last rule acks");
            check_attrs(&msg[20..]);
        }
        let (_, begin, ..) = msgs[0];
        let (_, end, ..) = msgs[msgs.len() - 1];
        assert_eq!((begin, end), (BATCH_BEGIN, BATCH_END));
        assert_eq!(msgs[0].4[16..20], [0, 0, 0, 10], "res_id NFNL_SUBSYS_NFTABLES, big-endian");
        for (_, ty, flags, _, msg) in &msgs[3..msgs.len() - 1] {
            assert_eq!(*ty, 0x0a06, "NEWRULE");
            assert_eq!(flags & (NLM_F_CREATE | NLM_F_APPEND), NLM_F_CREATE | NLM_F_APPEND);
            assert_eq!(msg[16], NFPROTO_INET);
        }
    }

    #[test]
    fn attributes_are_padded_and_nested() {
        let mut w = Writer::default();
        w.message(BATCH_BEGIN, NLM_F_REQUEST, 0, 10, |w| {
            w.string(1, "ab"); // 4 + 3 bytes, 1 of padding
            w.nest(2, |w| w.attr(1, &[7])); // 4 + (4 + 1 + 3)
        });
        assert_eq!(
            w.buf[16..],
            [0, 0, 0, 10, 7, 0, 1, 0, b'a', b'b', 0, 0, 12, 0, 2, 0x80, 5, 0, 1, 0, 7, 0, 0, 0]
        );
        assert_eq!(w.buf.len(), 40);
        assert_eq!(w.buf[0..4], 40u32.to_ne_bytes());
        assert_eq!(check_attrs(&w.buf[20..]), 3);
    }

    // The expected texts below are `nft --debug=netlink -f` output (nft 1.0.6) for the rule in
    // each comment, in a `table inet`.

    #[test]
    #[cfg(target_endian = "little")]
    fn fixed_rules_and_the_reject_are_nfts() {
        let fixed: Vec<String> = rules(&[], &[])
            .iter()
            .map(|r| r.iter().map(text).collect::<Vec<_>>().join("\n"))
            .collect();
        assert_eq!(
            fixed,
            [
                // meta oif 1 accept
                "[ meta load oif => reg 1 ]\n[ cmp eq reg 1 0x00000001 ]\n\
                 [ immediate reg 0 accept ]",
                // ct state established,related accept
                "[ ct load state => reg 1 ]\n\
                 [ bitwise reg 1 = ( reg 1 & 0x00000006 ) ^ 0x00000000 ]\n\
                 [ cmp neq reg 1 0x00000000 ]\n[ immediate reg 0 accept ]",
                // icmpv6 type nd-router-solicit accept
                "[ meta load nfproto => reg 1 ]\n[ cmp eq reg 1 0x0000000a ]\n\
                 [ meta load l4proto => reg 1 ]\n[ cmp eq reg 1 0x0000003a ]\n\
                 [ payload load 1b @ transport header + 0 => reg 1 ]\n\
                 [ cmp eq reg 1 0x00000085 ]\n[ immediate reg 0 accept ]",
                // icmpv6 type nd-neighbor-solicit accept
                "[ meta load nfproto => reg 1 ]\n[ cmp eq reg 1 0x0000000a ]\n\
                 [ meta load l4proto => reg 1 ]\n[ cmp eq reg 1 0x0000003a ]\n\
                 [ payload load 1b @ transport header + 0 => reg 1 ]\n\
                 [ cmp eq reg 1 0x00000087 ]\n[ immediate reg 0 accept ]",
                // icmpv6 type nd-neighbor-advert accept
                "[ meta load nfproto => reg 1 ]\n[ cmp eq reg 1 0x0000000a ]\n\
                 [ meta load l4proto => reg 1 ]\n[ cmp eq reg 1 0x0000003a ]\n\
                 [ payload load 1b @ transport header + 0 => reg 1 ]\n\
                 [ cmp eq reg 1 0x00000088 ]\n[ immediate reg 0 accept ]",
                // reject with icmpx admin-prohibited
                "[ reject type 2 code 3 ]",
            ]
        );
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn dns_is_udp_then_tcp_port_53_per_server() {
        assert_eq!(
            allow_rules(&[], &[v4([10, 0, 0, 53]), v6("fd00::53")]),
            [
                // ip daddr 10.0.0.53 udp dport 53 accept
                "[ meta load nfproto => reg 1 ]\n[ cmp eq reg 1 0x00000002 ]\n\
                 [ payload load 4b @ network header + 16 => reg 1 ]\n[ cmp eq reg 1 0x3500000a ]\n\
                 [ meta load l4proto => reg 1 ]\n[ cmp eq reg 1 0x00000011 ]\n\
                 [ payload load 2b @ transport header + 2 => reg 1 ]\n\
                 [ cmp eq reg 1 0x00003500 ]\n[ immediate reg 0 accept ]",
                // ip daddr 10.0.0.53 tcp dport 53 accept
                "[ meta load nfproto => reg 1 ]\n[ cmp eq reg 1 0x00000002 ]\n\
                 [ payload load 4b @ network header + 16 => reg 1 ]\n[ cmp eq reg 1 0x3500000a ]\n\
                 [ meta load l4proto => reg 1 ]\n[ cmp eq reg 1 0x00000006 ]\n\
                 [ payload load 2b @ transport header + 2 => reg 1 ]\n\
                 [ cmp eq reg 1 0x00003500 ]\n[ immediate reg 0 accept ]",
                // ip6 daddr fd00::53 udp dport 53 accept
                "[ meta load nfproto => reg 1 ]\n[ cmp eq reg 1 0x0000000a ]\n\
                 [ payload load 16b @ network header + 24 => reg 1 ]\n\
                 [ cmp eq reg 1 0x000000fd 0x00000000 0x00000000 0x53000000 ]\n\
                 [ meta load l4proto => reg 1 ]\n[ cmp eq reg 1 0x00000011 ]\n\
                 [ payload load 2b @ transport header + 2 => reg 1 ]\n\
                 [ cmp eq reg 1 0x00003500 ]\n[ immediate reg 0 accept ]",
                // ip6 daddr fd00::53 tcp dport 53 accept
                "[ meta load nfproto => reg 1 ]\n[ cmp eq reg 1 0x0000000a ]\n\
                 [ payload load 16b @ network header + 24 => reg 1 ]\n\
                 [ cmp eq reg 1 0x000000fd 0x00000000 0x00000000 0x53000000 ]\n\
                 [ meta load l4proto => reg 1 ]\n[ cmp eq reg 1 0x00000006 ]\n\
                 [ payload load 2b @ transport header + 2 => reg 1 ]\n\
                 [ cmp eq reg 1 0x00003500 ]\n[ immediate reg 0 accept ]",
            ]
        );
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn prefixes_compare_whole_bytes_or_mask_like_nft() {
        let rule = |net, prefix| allow_rules(&[allow(net, prefix, None, &[])], &[]).remove(0);
        let v4_head = "[ meta load nfproto => reg 1 ]\n[ cmp eq reg 1 0x00000002 ]\n";
        let v6_head = "[ meta load nfproto => reg 1 ]\n[ cmp eq reg 1 0x0000000a ]\n";
        let accept = "\n[ immediate reg 0 accept ]";
        // ip daddr 10.1.0.0/16 accept
        assert_eq!(
            rule(v4([10, 1, 0, 0]), 16),
            format!(
                "{v4_head}[ payload load 2b @ network header + 16 => reg 1 ]\n\
                 [ cmp eq reg 1 0x0000010a ]{accept}"
            )
        );
        // ip daddr 10.16.0.0/12 accept (host bits given are cleared)
        assert_eq!(
            rule(v4([10, 31, 255, 1]), 12),
            format!(
                "{v4_head}[ payload load 4b @ network header + 16 => reg 1 ]\n\
                 [ bitwise reg 1 = ( reg 1 & 0x0000f0ff ) ^ 0x00000000 ]\n\
                 [ cmp eq reg 1 0x0000100a ]{accept}"
            )
        );
        // ip daddr 0.0.0.0/0 accept
        assert_eq!(
            rule(v4([0, 0, 0, 0]), 0),
            format!(
                "{v4_head}[ payload load 4b @ network header + 16 => reg 1 ]\n\
                 [ bitwise reg 1 = ( reg 1 & 0x00000000 ) ^ 0x00000000 ]\n\
                 [ cmp eq reg 1 0x00000000 ]{accept}"
            )
        );
        // ip daddr 10.3.0.1 accept (and a prefix beyond 32 is 32)
        let host = format!(
            "{v4_head}[ payload load 4b @ network header + 16 => reg 1 ]\n\
             [ cmp eq reg 1 0x0100030a ]{accept}"
        );
        assert_eq!(rule(v4([10, 3, 0, 1]), 32), host);
        assert_eq!(rule(v4([10, 3, 0, 1]), 200), host);
        // ip6 daddr 2001:db8::1 accept
        assert_eq!(
            rule(v6("2001:db8::1"), 128),
            format!(
                "{v6_head}[ payload load 16b @ network header + 24 => reg 1 ]\n\
                 [ cmp eq reg 1 0xb80d0120 0x00000000 0x00000000 0x01000000 ]{accept}"
            )
        );
        // ip6 daddr 2001:db8:1:2::/64 accept
        assert_eq!(
            rule(v6("2001:db8:1:2::"), 64),
            format!(
                "{v6_head}[ payload load 8b @ network header + 24 => reg 1 ]\n\
                 [ cmp eq reg 1 0xb80d0120 0x02000100 ]{accept}"
            )
        );
        // ip6 daddr 2001:db8:8000::/33 accept
        assert_eq!(
            rule(v6("2001:db8:8000::"), 33),
            format!(
                "{v6_head}[ payload load 16b @ network header + 24 => reg 1 ]\n\
                 [ bitwise reg 1 = ( reg 1 & 0xffffffff 0x00000080 0x00000000 0x00000000 ) ^ \
                 0x00000000 0x00000000 0x00000000 0x00000000 ]\n\
                 [ cmp eq reg 1 0xb80d0120 0x00000080 0x00000000 0x00000000 ]{accept}"
            )
        );
        // ip6 daddr ::/0 accept
        assert_eq!(
            rule(v6("::"), 0),
            format!(
                "{v6_head}[ payload load 16b @ network header + 24 => reg 1 ]\n\
                 [ bitwise reg 1 = ( reg 1 & 0x00000000 0x00000000 0x00000000 0x00000000 ) ^ \
                 0x00000000 0x00000000 0x00000000 0x00000000 ]\n\
                 [ cmp eq reg 1 0x00000000 0x00000000 0x00000000 0x00000000 ]{accept}"
            )
        );
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn protocols_and_port_ranges_are_one_rule_each() {
        let net = "[ meta load nfproto => reg 1 ]\n[ cmp eq reg 1 0x00000002 ]\n\
                   [ payload load 2b @ network header + 16 => reg 1 ]\n\
                   [ cmp eq reg 1 0x0000010a ]\n";
        let tcp = "[ meta load l4proto => reg 1 ]\n[ cmp eq reg 1 0x00000006 ]\n";
        let udp = "[ meta load l4proto => reg 1 ]\n[ cmp eq reg 1 0x00000011 ]\n";
        let dport = "[ payload load 2b @ transport header + 2 => reg 1 ]\n";
        let accept = "[ immediate reg 0 accept ]";
        let port80 = format!("{dport}[ cmp eq reg 1 0x00005000 ]\n");
        let https = format!("{dport}[ cmp gte reg 1 0x0000bb01 ]\n[ cmp lte reg 1 0x0000bc01 ]\n");
        let a = v4([10, 1, 0, 0]);
        // ip daddr 10.1.0.0/16 tcp dport 80 accept; ... tcp dport 443-444 accept
        assert_eq!(
            allow_rules(&[allow(a, 16, Some(Proto::Tcp), &[(80, 80), (444, 443)])], &[]),
            [format!("{net}{tcp}{port80}{accept}"), format!("{net}{tcp}{https}{accept}")]
        );
        // tcp, then udp, for every range
        assert_eq!(
            allow_rules(&[allow(a, 16, None, &[(80, 80), (443, 444)])], &[]),
            [
                format!("{net}{tcp}{port80}{accept}"),
                format!("{net}{tcp}{https}{accept}"),
                format!("{net}{udp}{port80}{accept}"),
                format!("{net}{udp}{https}{accept}"),
            ]
        );
        // ip daddr 10.1.0.0/16 meta l4proto udp accept
        assert_eq!(
            allow_rules(&[allow(a, 16, Some(Proto::Udp), &[])], &[]),
            [format!("{net}{udp}{accept}")]
        );
        // ip daddr 10.1.0.0/16 accept: every protocol
        assert_eq!(allow_rules(&[allow(a, 16, None, &[])], &[]), [format!("{net}{accept}")]);
    }
}
