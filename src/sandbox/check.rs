//! [`Sandbox::check`]: what this kernel and user can use, found by probing.

use crate::error::Error;
use crate::support::Support;
use crate::userns;
use crate::{Namespaces, Sandbox};

fn probe(ns: Namespaces, proc: bool) -> Result<(), Error> {
    let mut sb = Sandbox::new("/");
    sb.namespaces(ns).mount_proc(proc);
    let mut child = sb.probe()?;
    let status = child.wait()?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Unsupported { feature: "the probe", reason: format!("it ended with {status}") })
    }
}

impl Sandbox {
    /// Finds out which namespaces and features this kernel and user can use, without running
    /// any program: each namespace is tried in a child that sets up and exits.
    ///
    /// ```
    /// let support = nscell::Sandbox::check();
    /// println!("{support}");
    /// ```
    pub fn check() -> Support {
        let uid = rustix::process::geteuid().as_raw();
        let gid = rustix::process::getegid().as_raw();
        let root = uid == 0;
        let namespaces = Namespaces::all()
            .iter()
            .map(|ns| {
                let with_user = if root { ns } else { ns | Namespaces::USER };
                (ns, probe(with_user, false))
            })
            .collect();
        Support {
            kernel: String::from_utf8_lossy(rustix::system::uname().release().to_bytes()).into(),
            root,
            namespaces,
            default_sandbox: probe(Namespaces::DEFAULT, true),
            userns_restriction: crate::error::userns_restriction(),
            newuidmap: userns::find_helper("newuidmap"),
            newgidmap: userns::find_helper("newgidmap"),
            subuid: userns::subid_ranges("/etc/subuid", uid),
            subgid: userns::subid_ranges("/etc/subgid", gid),
            features: crate::kernel::features(),
            cgroups: crate::cgroup::support(),
            networks: crate::net::support(),
        }
    }
}
