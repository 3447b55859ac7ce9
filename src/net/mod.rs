//! Networking: the sandbox's own network namespace, reached through a user-mode helper
//! ([pasta](https://passt.top) or [slirp4netns](https://github.com/rootless-containers/slirp4netns)),
//! with published ports, DNS, and an egress allowlist the kernel enforces.
//!
//! [`Sandbox::network`](crate::Sandbox::network) takes a [`Network`]:
//!
//! - [`Network::Host`]: the caller's network (no network namespace).
//! - [`Network::Loopback`]: a new network namespace with only `lo`, up.
//! - [`Network::Pasta`] and [`Network::Slirp4netns`]: a new network namespace with a `tap0`
//!   interface the helper serves, configured before the program's first instruction. Both
//!   backends give the same addresses by default ([`UserNet`]): the sandbox is 10.0.2.100/24,
//!   its gateway 10.0.2.2, its DNS forwarder 10.0.2.3.
//!
//! The helper is started by the parent once the sandbox's namespaces exist (the handshake's
//! `NamespacesCreated` checkpoint), with the fds of the sandbox's network namespace and of the
//! user namespace that owns it, and the child is released to exec only when the helper says it
//! is ready. It never outlives the sandbox: it is stopped when the sandbox is waited for or its
//! [`Child`](crate::Child) dropped, and when the caller dies (`PR_SET_PDEATHSIG`, which the
//! kernel sends when the *thread* that spawned the sandbox ends: spawn networked sandboxes from
//! a thread that lives as long as they do; slirp4netns also exits when its `--exit-fd` closes).
//!
//! # The egress allowlist
//!
//! [`UserNet::allow_egress`] and [`UserNet::deny_egress_all`] install an nftables ruleset in
//! the sandbox's own network namespace before exec (the child sends it over netlink: no `nft`
//! program runs): outgoing packets are dropped unless they go to `lo`, belong to a connection
//! already established (replies on published ports), go to the DNS forwarder on port 53, or
//! match an allowed destination. Anything else is refused at once: a TCP `connect` fails
//! with `EHOSTUNREACH` (`EACCES` for IPv6: the ruleset ends with `reject with icmpx
//! admin-prohibited`), a UDP `sendto` with `EPERM`. The program loses `CAP_NET_ADMIN` (it could flush the rules) and
//! `CAP_NET_RAW` (packet sockets bypass the inet hooks) from every capability set. DNS itself
//! can carry data out (in the names it asks the forwarder to resolve).

mod helper;
pub(crate) mod nft;

use crate::error::Error;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

pub(crate) use helper::{Helper, Start};

/// The sandbox's network.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Network {
    /// The caller's own network: no network namespace (with [`Namespaces::NET`](crate::Namespaces::NET)
    /// this is invalid input).
    Host,
    /// A new network namespace with only the loopback interface, up (as
    /// [`Namespaces::NET`](crate::Namespaces::NET) alone gives). The default when the sandbox
    /// has [`Namespaces::NET`](crate::Namespaces::NET).
    #[default]
    Loopback,
    /// A new network namespace served by pasta (Debian's package `passt`).
    Pasta(UserNet),
    /// A new network namespace served by slirp4netns (Debian's package `slirp4netns`).
    Slirp4netns(UserNet),
}

/// A transport protocol, for published ports and the egress allowlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// An IPv4 or IPv6 network: an address and a prefix length (`10.0.0.0/8`, `2001:db8::/32`;
/// a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network of `addr` with `prefix` bits; `None` if the prefix is longer than the
    /// address. The host bits are cleared.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > bits {
            return None;
        }
        let addr = match addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        Some(Cidr { addr, prefix })
    }

    /// The network's first address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

impl From<IpAddr> for Cidr {
    fn from(addr: IpAddr) -> Cidr {
        Cidr { addr, prefix: if addr.is_ipv4() { 32 } else { 128 } }
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let bad = || format!("{s:?} is not an address or a network (10.0.0.0/8, 2001:db8::/32)");
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        match p {
            None => Ok(Cidr::from(addr)),
            Some(p) => {
                let p: u8 = p.parse().map_err(|_| bad())?;
                Cidr::new(addr, p).ok_or_else(bad)
            }
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A port published from the host into the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Publish {
    pub proto: Proto,
    pub host: SocketAddr,
    pub sandbox_port: u16,
}

/// One allowed egress destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Allow {
    pub net: Cidr,
    pub proto: Option<Proto>,
    pub ports: Vec<(u16, u16)>,
}

/// The settings of a user-mode network (pasta or slirp4netns), the same for both backends.
///
/// ```
/// use nscell::net::{Network, Proto, UserNet};
///
/// let mut net = UserNet::new();
/// net.publish_port(Proto::Tcp, 8080, 80)      // 127.0.0.1:8080 on the host -> port 80 inside
///     .allow_egress("192.0.2.0/24".parse().unwrap(), None, &[(443, 443)]);
/// let network = Network::Pasta(net);
/// # let _ = network;
/// ```
#[derive(Debug, Clone)]
pub struct UserNet {
    pub(crate) publish: Vec<Publish>,
    pub(crate) host_loopback: bool,
    pub(crate) ipv6: bool,
    pub(crate) address: Ipv4Addr,
    pub(crate) prefix: u8,
    pub(crate) gateway: Ipv4Addr,
    pub(crate) dns: Option<Ipv4Addr>,
    pub(crate) egress: Option<Vec<Allow>>,
    pub(crate) args: Vec<OsString>,
    pub(crate) resolv_conf: bool,
}

impl Default for UserNet {
    fn default() -> UserNet {
        UserNet::new()
    }
}

impl UserNet {
    /// The defaults: address 10.0.2.100/24, gateway 10.0.2.2, DNS forwarder 10.0.2.3, IPv4
    /// only, no published port, the host's loopback unreachable, every destination allowed.
    pub fn new() -> UserNet {
        UserNet {
            publish: Vec::new(),
            host_loopback: false,
            ipv6: false,
            address: Ipv4Addr::new(10, 0, 2, 100),
            prefix: 24,
            gateway: Ipv4Addr::new(10, 0, 2, 2),
            dns: Some(Ipv4Addr::new(10, 0, 2, 3)),
            egress: None,
            args: Vec::new(),
            resolv_conf: true,
        }
    }

    /// Publishes `host` (an address and port of the caller's network) as `sandbox_port` of
    /// the sandbox: a connection to `host` reaches a server listening on that port inside.
    /// pasta cannot map a UDP port to a different one (`spawn` says so).
    pub fn publish(&mut self, proto: Proto, host: SocketAddr, sandbox_port: u16) -> &mut Self {
        self.publish.push(Publish { proto, host, sandbox_port });
        self
    }

    /// [`publish`](UserNet::publish) on the host's 127.0.0.1 (podman binds 0.0.0.0: name that
    /// address to publish on every interface).
    pub fn publish_port(&mut self, proto: Proto, host_port: u16, sandbox_port: u16) -> &mut Self {
        self.publish(proto, SocketAddr::from((Ipv4Addr::LOCALHOST, host_port)), sandbox_port)
    }

    /// Whether the gateway address reaches the host's own loopback (its 127.0.0.1). Off by
    /// default: a server bound to the host's loopback is out of the program's reach.
    pub fn host_loopback(&mut self, on: bool) -> &mut Self {
        self.host_loopback = on;
        self
    }

    /// IPv6 through the helper as well (off by default: IPv4 only). Unlike IPv4 it is not
    /// configured before the program starts: slirp4netns gives its address (in `fd00::/64`) by
    /// router advertisement a moment later, and pasta offers IPv6 only where the caller's
    /// network has an IPv6 default route.
    pub fn ipv6(&mut self, on: bool) -> &mut Self {
        self.ipv6 = on;
        self
    }

    /// The sandbox's IPv4 address and prefix length (default 10.0.2.100/24). slirp4netns
    /// derives everything from the network: the address must then be its `.100`, the gateway
    /// its `.2` and the DNS forwarder its `.3`.
    pub fn address(&mut self, addr: Ipv4Addr, prefix: u8) -> &mut Self {
        self.address = addr;
        self.prefix = prefix;
        self
    }

    /// The gateway (default 10.0.2.2): with [`host_loopback`](UserNet::host_loopback), the
    /// host's 127.0.0.1.
    pub fn gateway(&mut self, addr: Ipv4Addr) -> &mut Self {
        self.gateway = addr;
        self
    }

    /// The DNS forwarder's address inside (default 10.0.2.3; `None`: no DNS). Queries to it
    /// go to the host's resolver. With a mount namespace the program gets an
    /// `/etc/resolv.conf` naming it and an `/etc/hosts` (see [`UserNet::resolv_conf`]).
    pub fn dns(&mut self, addr: Option<Ipv4Addr>) -> &mut Self {
        self.dns = addr;
        self
    }

    /// Whether a sandbox with a mount namespace gets a generated `/etc/resolv.conf` (naming
    /// the DNS forwarder) and `/etc/hosts` (on by default).
    pub fn resolv_conf(&mut self, on: bool) -> &mut Self {
        self.resolv_conf = on;
        self
    }

    /// Allows connections to `net`, for `proto` (`None`: TCP and UDP, and with no ports any
    /// protocol) and the inclusive port ranges `ports` (empty: every port). Repeatable; the
    /// first call turns the allowlist on: every destination not allowed is refused at once,
    /// but for `lo`, replies and DNS to the forwarder.
    pub fn allow_egress(
        &mut self,
        net: Cidr,
        proto: Option<Proto>,
        ports: &[(u16, u16)],
    ) -> &mut Self {
        self.egress.get_or_insert_with(Vec::new).push(Allow { net, proto, ports: ports.to_vec() });
        self
    }

    /// Turns the allowlist on with nothing allowed (but `lo`, replies on published ports and
    /// DNS to the forwarder).
    pub fn deny_egress_all(&mut self) -> &mut Self {
        self.egress.get_or_insert_with(Vec::new);
        self
    }

    /// An extra argument for the helper, after nscell's own.
    pub fn arg(&mut self, arg: impl Into<OsString>) -> &mut Self {
        self.args.push(arg.into());
        self
    }

    /// The first address of the sandbox's network (10.0.2.0 for 10.0.2.100/24).
    pub(crate) fn network(&self) -> Ipv4Addr {
        network_of(self.address, self.prefix)
    }

    /// Checks what either backend would refuse.
    pub(crate) fn validate(&self, backend: Backend) -> Result<(), Error> {
        let bad = |m: String| Err(Error::invalid(m));
        if self.prefix == 0 || self.prefix > 30 {
            return bad(format!("the sandbox's prefix length /{} is not 1 to 30", self.prefix));
        }
        let base = u32::from(self.network());
        if network_of(self.gateway, self.prefix) != self.network() || self.gateway == self.address {
            return bad(format!(
                "the gateway {} is not another address of the sandbox's network {}/{}",
                self.gateway, self.address, self.prefix
            ));
        }
        for p in &self.publish {
            if p.host.port() == 0 || p.sandbox_port == 0 {
                return bad("a published port is 0".into());
            }
            if backend == Backend::Pasta && p.proto == Proto::Udp && p.host.port() != p.sandbox_port
            {
                return bad(format!(
                    "pasta cannot publish UDP port {} as another port ({}): use the same port, \
                     or slirp4netns",
                    p.host.port(),
                    p.sandbox_port
                ));
            }
        }
        for a in self.egress.iter().flatten() {
            if a.ports.iter().any(|&(lo, hi)| lo == 0 || lo > hi) {
                return bad(format!(
                    "the egress port ranges of {} are not 1-65535, low-high",
                    a.net
                ));
            }
            if a.net.addr.is_ipv6() && !self.ipv6 {
                return bad(format!("allowing egress to {} needs ipv6(true) (--ipv6)", a.net));
            }
        }
        if backend == Backend::Slirp4netns
            && !self.host_loopback
            && self.publish.iter().any(|p| p.proto == Proto::Udp)
        {
            // Its UDP forwarding answers from the host's loopback, which
            // --disable-host-loopback cuts off: the replies never arrive.
            return bad("slirp4netns publishes UDP ports only with host_loopback(true) \
                        (--host-loopback): use pasta to keep the host's loopback out of reach"
                .into());
        }
        if backend == Backend::Slirp4netns {
            let at = |n: u32| Ipv4Addr::from(base.wrapping_add(n));
            let dns_ok = self.dns.is_none_or(|d| d == at(3));
            if self.address != at(100) || self.gateway != at(2) || !dns_ok || self.prefix > 24 {
                return bad(format!(
                    "slirp4netns derives the addresses from the network: the sandbox is its .100 \
                     ({}), the gateway .2 ({}), DNS .3 ({}), with a prefix of /24 or shorter",
                    at(100),
                    at(2),
                    at(3)
                ));
            }
        }
        Ok(())
    }
}

/// Each backend, and whether it can work here (without starting it): the helper in `PATH`,
/// `/dev/net/tun` usable by the caller, and for pasta a default route.
pub(crate) fn support() -> Vec<(&'static str, Result<std::path::PathBuf, String>)> {
    let tun = std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun");
    let route = ["/proc/net/route", "/proc/net/ipv6_route"].iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|t| {
            t.lines().skip(usize::from(f.ends_with("/route"))).any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                match f.ends_with("ipv6_route") {
                    // ::/0, not the kernel's own unreachable one on lo
                    true => {
                        w.first() == Some(&"00000000000000000000000000000000")
                            && w.get(1) == Some(&"00")
                            && w.last() != Some(&"lo")
                    }
                    false => w.get(1) == Some(&"00000000"),
                }
            })
        })
    });
    [Backend::Pasta, Backend::Slirp4netns]
        .into_iter()
        .map(|b| {
            let (name, package) = b.program();
            let r = match (crate::userns::find_in_path(name), &tun) {
                (None, _) => Err(format!("not installed (Debian: apt-get install {package})")),
                (Some(_), Err(e)) => Err(format!(
                    "/dev/net/tun is not usable by this user ({e}): chmod 0666 /dev/net/tun"
                )),
                (Some(_), Ok(_)) if b == Backend::Pasta && !route => {
                    Err("no default route here (pasta needs one; slirp4netns does not)".to_string())
                }
                (Some(p), Ok(_)) => Ok(p),
            };
            (name, r)
        })
        .collect()
}

/// The first address of `addr`'s network of `prefix` bits.
fn network_of(addr: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0);
    Ipv4Addr::from(u32::from(addr) & mask)
}

/// The two helper backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Pasta,
    Slirp4netns,
}

impl Backend {
    /// The program and the Debian package that has it.
    pub(crate) fn program(self) -> (&'static str, &'static str) {
        match self {
            Backend::Pasta => ("pasta", "passt"),
            Backend::Slirp4netns => ("slirp4netns", "slirp4netns"),
        }
    }
}

/// What the network contributes to a spawn, before `clone`.
pub(crate) struct NetPlan {
    /// The helper to start at the `NamespacesCreated` checkpoint.
    pub start: Option<Start>,
    /// The egress ruleset, as the child sends it (one netlink batch).
    pub egress: Option<Vec<u8>>,
    /// Files for the program's `/etc` and their contents, with a mount namespace.
    pub files: Vec<(EtcName, Vec<u8>)>,
}

/// Where one of the network's `/etc` files goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EtcName {
    /// Its path in the sandbox.
    pub path: &'static str,
    /// The same, for the child.
    pub target: &'static core::ffi::CStr,
    /// Its name in the child's tmpfs.
    pub name: &'static core::ffi::CStr,
}

const RESOLV_CONF: EtcName =
    EtcName { path: "/etc/resolv.conf", target: c"/etc/resolv.conf", name: c"resolv.conf" };
const HOSTS: EtcName = EtcName { path: "/etc/hosts", target: c"/etc/hosts", name: c"hosts" };

/// One file the network gives the program's `/etc` without a new root: `contents` in a small
/// tmpfs of the sandbox's own, bind-mounted over `target` (which must exist).
pub(crate) struct EtcFile<'a> {
    /// Its name in the tmpfs.
    pub name: &'a core::ffi::CStr,
    /// The file it covers (`/etc/resolv.conf`); a symlink is followed.
    pub target: &'a core::ffi::CStr,
    pub contents: &'a [u8],
}

impl NetPlan {
    /// Nothing to do: the host's network, or loopback only.
    pub(crate) fn none() -> NetPlan {
        NetPlan { start: None, egress: None, files: Vec::new() }
    }
}

impl Network {
    /// The plan of the network: the helper found in `PATH` and its arguments, the egress
    /// ruleset, the `/etc` files. `root`: the caller is root (pasta then keeps its ids).
    pub(crate) fn plan(&self, root: bool, userns: bool, mount: bool) -> Result<NetPlan, Error> {
        let (backend, user) = match self {
            Network::Pasta(u) => (Backend::Pasta, u),
            Network::Slirp4netns(u) => (Backend::Slirp4netns, u),
            Network::Host | Network::Loopback => {
                return Ok(NetPlan::none());
            }
        };
        user.validate(backend)?;
        let start = Start::new(backend, user, root, userns)?;
        let egress = user.egress.as_ref().map(|allow| {
            let dns: Vec<IpAddr> = user.dns.iter().map(|&d| IpAddr::V4(d)).collect();
            let allow: Vec<nft::Allow> = allow
                .iter()
                .map(|a| nft::Allow {
                    net: a.net.addr,
                    prefix: a.net.prefix,
                    proto: a.proto.map(|p| match p {
                        Proto::Tcp => nft::Proto::Tcp,
                        Proto::Udp => nft::Proto::Udp,
                    }),
                    ports: a.ports.clone(),
                })
                .collect();
            nft::ruleset(&allow, &dns)
        });
        let mut files = Vec::new();
        if mount && user.resolv_conf {
            let resolv = match user.dns {
                Some(d) => format!("nameserver {d}\n"),
                None => String::new(),
            };
            files.push((RESOLV_CONF, resolv.into_bytes()));
            let hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
            files.push((HOSTS, hosts.as_bytes().to_vec()));
        }
        Ok(NetPlan { start: Some(start), egress, files })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_clear_host_bits() {
        let c: Cidr = "10.1.2.3/16".parse().unwrap();
        assert_eq!(c.to_string(), "10.1.0.0/16");
        assert_eq!("192.0.2.7".parse::<Cidr>().unwrap().to_string(), "192.0.2.7/32");
        assert_eq!("2001:db8::1/32".parse::<Cidr>().unwrap().to_string(), "2001:db8::/32");
        assert_eq!("0.0.0.0/0".parse::<Cidr>().unwrap().to_string(), "0.0.0.0/0");
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("example.com".parse::<Cidr>().is_err());
        assert!("10.0.0.0/x".parse::<Cidr>().is_err());
    }

    #[test]
    fn slirp4netns_takes_only_its_own_layout() {
        let mut u = UserNet::new();
        assert!(u.validate(Backend::Slirp4netns).is_ok());
        u.address(Ipv4Addr::new(10, 0, 3, 100), 24).gateway(Ipv4Addr::new(10, 0, 3, 2));
        assert!(u.validate(Backend::Slirp4netns).is_err(), "DNS still .2.3");
        u.dns(Some(Ipv4Addr::new(10, 0, 3, 3)));
        assert!(u.validate(Backend::Slirp4netns).is_ok());
        u.address(Ipv4Addr::new(10, 0, 3, 5), 24);
        assert!(u.validate(Backend::Slirp4netns).is_err());
        assert!(u.validate(Backend::Pasta).is_ok());
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut u = UserNet::new();
        u.gateway(Ipv4Addr::new(10, 9, 9, 9));
        assert!(u.validate(Backend::Pasta).is_err());
        let mut u = UserNet::new();
        u.publish_port(Proto::Udp, 5353, 53);
        assert!(u.validate(Backend::Pasta).is_err(), "pasta cannot remap UDP");
        assert!(u.validate(Backend::Slirp4netns).is_err(), "slirp4netns UDP needs host loopback");
        u.host_loopback(true);
        assert!(u.validate(Backend::Slirp4netns).is_ok());
        let mut u = UserNet::new();
        u.allow_egress("2001:db8::/32".parse().unwrap(), None, &[]);
        assert!(u.validate(Backend::Pasta).is_err(), "v6 without ipv6(true)");
        let mut u = UserNet::new();
        u.allow_egress("10.0.0.0/8".parse().unwrap(), None, &[(90, 80)]);
        assert!(u.validate(Backend::Pasta).is_err());
    }
}
