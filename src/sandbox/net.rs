//! The network's setters ([`crate::net`]).

use super::Sandbox;
use crate::net::Network;

impl Sandbox {
    /// The sandbox's network ([`Network`]): the host's, loopback only, or a user-mode network
    /// served by pasta or slirp4netns, with published ports, DNS and an egress allowlist.
    /// All but [`Network::Host`] give the sandbox a new network namespace (adding
    /// [`Namespaces::NET`](crate::Namespaces::NET)); `Host` with `Namespaces::NET` is invalid
    /// input. See [`crate::net`] for the helper's lifetime and the allowlist.
    ///
    /// ```no_run
    /// use nscell::net::{Network, Proto, UserNet};
    /// use nscell::Sandbox;
    ///
    /// let mut net = UserNet::new();
    /// net.publish_port(Proto::Tcp, 8080, 80);
    /// let status = Sandbox::new("busybox")
    ///     .args(["httpd", "-f", "-p", "80"])
    ///     .network(Network::Pasta(net))
    ///     .status()?;
    /// # Ok::<(), nscell::Error>(())
    /// ```
    pub fn network(&mut self, network: Network) -> &mut Self {
        self.network = Some(network);
        self
    }
}
