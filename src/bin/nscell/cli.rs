//! What a command line asks for, as plain data: [`Action`] and [`Cli`], built by
//! [`crate::options::parse`] without any I/O, and [`check`], which refuses values that cannot
//! work together before anything is opened or spawned.

use crate::personality::Personality;
use nscell::landlock::Access as LandlockAccess;
use nscell::rlimit::Resource;
use nscell::{Capabilities, IdMap, Namespaces};
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

/// The program run when no command is given: an interactive shell, root inside.
pub const DEFAULT_COMMAND: &str = "/bin/bash";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Action {
    Help,
    Version,
    Check,
    /// `--gc`: remove the cgroups of sandboxes whose caller was killed, under this parent.
    Gc(Option<PathBuf>),
    Run(Box<Cli>),
}

/// The options of a run, as given.
#[derive(Debug, Default, PartialEq)]
pub struct Cli {
    /// The name nscell runs under: its defaults.
    pub personality: Personality,
    /// `None`: the library's default set.
    pub namespaces: Option<Namespaces>,
    /// The namespaces of `namespaces` asked for with `--unshare-*-try`: left out where this
    /// kernel or user cannot make them.
    pub try_namespaces: Namespaces,
    /// `--userns`, `--userns2`, `--pidns`.
    pub join: JoinFds,
    pub assert_userns_disabled: bool,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub uid_maps: Vec<IdMap>,
    pub gid_maps: Vec<IdMap>,
    pub hostname: Option<OsString>,
    pub domainname: Option<OsString>,
    pub chdir: Option<PathBuf>,
    /// How many `--chdir`s were given (only the last counts).
    pub chdir_given: usize,
    /// How many `--seccomp` options were given (bubblewrap warns when more than one).
    pub seccomp_given: usize,
    pub argv0: Option<OsString>,
    /// `--setenv`, `--unsetenv` and `--clearenv`, in order.
    pub env: Vec<EnvChange>,
    pub no_proc: bool,
    pub json_status_fd: Option<i32>,
    pub info_fd: Option<i32>,
    pub level_prefix: bool,
    /// `--exec-label`, `--file-label`: (option, label).
    pub selinux_labels: Vec<(&'static str, OsString)>,
    /// Hardening options, in order.
    pub harden: Vec<HardenOpt>,
    /// Filesystem operations, in order; any of them means a new root.
    pub fs: Vec<FsOp>,
    pub init: bool,
    pub as_pid_1: bool,
    pub die_with_parent: bool,
    /// `--lock-file`: paths inside, held locked while the sandbox lives.
    pub lock_files: Vec<OsString>,
    pub sync_fd: Option<i32>,
    pub block_fd: Option<i32>,
    pub userns_block_fd: Option<i32>,
    /// `--new-session` (true) or `--share-terminal` (false); `None`: the library's default.
    pub new_session: Option<bool>,
    pub timeout: Option<std::time::Duration>,
    /// `--pty` / `--no-pty`; `None`: a pty when stdin is a terminal.
    pub pty: Option<bool>,
    /// The cgroup options (`--memory` and friends).
    pub cgroup: CgroupOpts,
    /// The network options (`--network` and friends).
    pub net: NetOpts,
    /// Program and arguments; empty means [`DEFAULT_COMMAND`].
    pub command: Vec<OsString>,
}

/// The namespaces to join, by the fds that name them.
#[derive(Debug, Default, PartialEq)]
pub struct JoinFds {
    pub user: Option<i32>,
    /// Entered after the setup.
    pub user2: Option<i32>,
    pub pid: Option<i32>,
}

/// The cgroup options, as given (podman's names and meanings).
#[derive(Debug, Default, PartialEq)]
pub struct CgroupOpts {
    pub memory: Option<u64>,
    /// `--memory-swap`: memory plus swap in all; `None` for -1 (no swap limit).
    pub memory_swap: Option<Option<u64>>,
    pub memory_high: Option<u64>,
    pub pids_limit: Option<u64>,
    pub cpus: Option<f64>,
    pub cpu_weight: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub io_weight: Option<u64>,
    /// `--device-read-bps` and friends: (device, which rate: 0 read bps, 1 write bps, 2 read
    /// iops, 3 write iops, the rate).
    pub io_max: Vec<(PathBuf, usize, u64)>,
    pub parent: Option<PathBuf>,
    pub required: bool,
}

impl CgroupOpts {
    /// Whether any was given: the sandbox then gets a cgroup.
    pub fn any(&self) -> bool {
        *self != CgroupOpts::default()
    }
}

/// `--network`'s mode, with the helper's extra arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum NetMode {
    /// `none`: loopback only.
    None,
    Host,
    Pasta(Vec<OsString>),
    Slirp4netns(Vec<OsString>),
}

/// One `--allow-egress`: a destination as given (an address, a network or a host name,
/// resolved at spawn) and its ports.
#[derive(Debug, Clone, PartialEq)]
pub struct EgressOpt {
    pub dest: String,
    pub proto: Option<nscell::net::Proto>,
    pub ports: Vec<(u16, u16)>,
}

/// One resolved `--allow-egress` destination: network, protocol, port ranges.
pub type Resolved = (nscell::net::Cidr, Option<nscell::net::Proto>, Vec<(u16, u16)>);

/// The network options, as given (podman's names).
#[derive(Debug, Default, PartialEq)]
pub struct NetOpts {
    pub mode: Option<NetMode>,
    /// `-p`: (protocol, host address and port, sandbox port).
    pub publish: Vec<(nscell::net::Proto, std::net::SocketAddr, u16)>,
    pub host_loopback: bool,
    pub ipv6: bool,
    pub allow: Vec<EgressOpt>,
    pub deny_all: bool,
    /// `--dns`: `Some(None)` for `none`.
    pub dns: Option<Option<std::net::Ipv4Addr>>,
    /// `allow` with its host names resolved ([`crate::inputs::resolve_egress`]).
    pub resolved: Vec<Resolved>,
}

impl NetOpts {
    /// The option that needs a user-mode network, if one was given.
    pub fn user_mode_option(&self) -> Option<&'static str> {
        if !self.publish.is_empty() {
            Some("--publish")
        } else if self.host_loopback {
            Some("--host-loopback")
        } else if self.ipv6 {
            Some("--ipv6")
        } else if !self.allow.is_empty() {
            Some("--allow-egress")
        } else if self.deny_all {
            Some("--deny-egress")
        } else if self.dns.is_some() {
            Some("--dns")
        } else {
            None
        }
    }
}

/// A filesystem option, as given.
#[derive(Debug, PartialEq)]
pub enum FsOp {
    /// `--bind` and friends: (option name, source, destination).
    Bind(&'static str, OsString, OsString),
    RemountRo(OsString),
    CgroupView(OsString),
    Tmpfs {
        dest: OsString,
        size: Option<u64>,
        mode: Option<u32>,
    },
    Proc(OsString),
    Dev(OsString),
    Mqueue(OsString),
    Dir {
        dest: OsString,
        mode: Option<u32>,
    },
    Symlink {
        target: OsString,
        dest: OsString,
    },
    File {
        fd: i32,
        dest: OsString,
        mode: Option<u32>,
    },
    Chmod {
        mode: u32,
        path: OsString,
    },
    Rootfs(OsString),
    /// `--bind-fd` (false) / `--ro-bind-fd` (true): the directory or file an fd names.
    BindFd {
        fd: i32,
        dest: OsString,
        ro: bool,
    },
    /// `--bind-data` / `--ro-bind-data`: a file of an fd's contents, bound.
    BindData {
        fd: i32,
        dest: OsString,
        ro: bool,
        mode: Option<u32>,
    },
    /// `--overlay-src`... then `--overlay` (upper and work), `--tmp-overlay` (none) or
    /// `--ro-overlay` (`ro`).
    Overlay {
        lowers: Vec<OsString>,
        upper_work: Option<(OsString, OsString)>,
        ro: bool,
        dest: OsString,
    },
}

impl FsOp {
    /// The option that gave this operation and the path in the new root it acts on.
    fn destination(&self) -> (&'static str, &OsStr) {
        match self {
            FsOp::Bind(name, _, dest) => (name, dest),
            FsOp::RemountRo(dest) => ("--remount-ro", dest),
            FsOp::CgroupView(dest) => ("--cgroup-view", dest),
            FsOp::Tmpfs { dest, .. } => ("--tmpfs", dest),
            FsOp::Proc(dest) => ("--proc", dest),
            FsOp::Dev(dest) => ("--dev", dest),
            FsOp::Mqueue(dest) => ("--mqueue", dest),
            FsOp::Dir { dest, .. } => ("--dir", dest),
            FsOp::Symlink { dest, .. } => ("--symlink", dest),
            FsOp::File { dest, .. } => ("--file", dest),
            FsOp::Chmod { path, .. } => ("--chmod", path),
            FsOp::Rootfs(_) => ("--rootfs", OsStr::new("/")),
            FsOp::BindFd { dest, .. } => ("--bind-fd", dest),
            FsOp::BindData { dest, .. } => ("--bind-data", dest),
            FsOp::Overlay { dest, .. } => ("--overlay", dest),
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum EnvChange {
    Set(OsString, OsString),
    Unset(OsString),
    Clear,
}

/// The hardening options, one entry per option given.
#[derive(Debug, PartialEq)]
pub enum HardenOpt {
    CapDrop(Capabilities),
    CapAdd(Capabilities),
    /// `--seccomp` (`replace`: the program is the whole policy) or `--add-seccomp-fd`: the fd
    /// to read the program from, after parsing.
    Seccomp {
        fd: i32,
        replace: bool,
    },
    NoDefaultSeccomp,
    DenyIoUring,
    DisableUserns,
    KeepSessionKeyring,
    Landlock(PathBuf, LandlockAccess),
    /// `--landlock-tcp-bind` (true) or `--landlock-tcp-connect` (false); `None`: no port.
    LandlockTcp(bool, Option<u16>),
    LandlockRequired,
    Rlimit(Resource, u64, u64),
    KeepFd(i32),
}

impl HardenOpt {
    /// The option of a `--seccomp` or `--add-seccomp-fd` entry.
    pub fn seccomp_option(replace: bool) -> &'static str {
        if replace { "--seccomp" } else { "--add-seccomp-fd" }
    }
}

impl Cli {
    /// Every fd the command line names, with its option, in the order their errors are told:
    /// the seccomp programs', the status fd, `--file`'s, `--keep-fd`'s.
    pub fn named_fds(&self) -> Vec<(&'static str, i32)> {
        let seccomp = self.harden.iter().filter_map(|h| match h {
            HardenOpt::Seccomp { fd, replace } => Some((HardenOpt::seccomp_option(*replace), *fd)),
            _ => None,
        });
        let json = [
            ("--json-status-fd", self.json_status_fd),
            ("--info-fd", self.info_fd),
            ("--userns", self.join.user),
            ("--userns2", self.join.user2),
            ("--pidns", self.join.pid),
            ("--sync-fd", self.sync_fd),
            ("--block-fd", self.block_fd),
            ("--userns-block-fd", self.userns_block_fd),
        ]
        .into_iter()
        .filter_map(|(option, fd)| Some((option, fd?)));
        let files = self.fs.iter().filter_map(|op| match op {
            FsOp::File { fd, .. } => Some(("--file", *fd)),
            FsOp::BindFd { fd, .. } => Some(("--bind-fd", *fd)),
            FsOp::BindData { fd, .. } => Some(("--bind-data", *fd)),
            _ => None,
        });
        let keep = self.harden.iter().filter_map(|h| match h {
            HardenOpt::KeepFd(fd) => Some(("--keep-fd", *fd)),
            _ => None,
        });
        seccomp.chain(json).chain(files).chain(keep).collect()
    }
}

/// The kernel's limit on a hostname or domain name (`__NEW_UTS_LEN`).
const MAX_UTS_NAME: usize = 64;

/// Checks what the options ask for together, before anything is opened or spawned, so a value
/// that cannot work is a usage error naming its option (the library would refuse it too, in
/// its own terms). `root`: nscell runs as host root (no user namespace is added implicitly).
pub fn check(cli: &Cli, root: bool) -> Result<(), String> {
    if cli.command.first().is_some_and(|p| p.is_empty()) {
        return Err("the command is an empty string (name a program, or none for /bin/bash)".into());
    }
    for (option, name) in [("--hostname", &cli.hostname), ("--domainname", &cli.domainname)] {
        let Some(name) = name else { continue };
        if name.len() > MAX_UTS_NAME {
            return Err(format!(
                "{option}: the name is {} bytes; the kernel takes at most {MAX_UTS_NAME}",
                name.len()
            ));
        }
    }
    for op in &cli.fs {
        let (option, dest) = op.destination();
        if std::path::Path::new(dest).components().any(|c| c == std::path::Component::ParentDir) {
            return Err(format!(
                "{option}: the destination {dest:?} contains '..'; name the place inside the new \
                 root directly"
            ));
        }
    }
    let user_mode = matches!(cli.net.mode, Some(NetMode::Pasta(_) | NetMode::Slirp4netns(_)));
    if let (false, Some(option)) = (user_mode, cli.net.user_mode_option()) {
        return Err(format!("{option} needs --network pasta or --network slirp4netns"));
    }
    if cli.net.mode == Some(NetMode::Host)
        && cli.namespaces.is_some_and(|n| n.contains(Namespaces::NET))
    {
        return Err("--network host with --unshare-net: pick one".into());
    }
    let cg = &cli.cgroup;
    match (cg.memory, cg.memory_swap) {
        (None, Some(_)) => {
            return Err("--memory-swap needs --memory (it is memory plus swap in all)".into());
        }
        (Some(m), Some(Some(total))) if total < m => {
            return Err(format!(
                "--memory-swap {total} is below --memory {m}: it is memory plus swap in all"
            ));
        }
        _ => {}
    }
    // Named namespaces replace the default set: some options need one that was left out.
    let Some(ns) = cli.namespaces else { return Ok(()) };
    let user = ns.contains(Namespaces::USER) || !root;
    let needs = [
        (cli.hostname.is_some(), "--hostname", Namespaces::UTS, "--unshare-uts"),
        (cli.domainname.is_some(), "--domainname", Namespaces::UTS, "--unshare-uts"),
        (cli.init, "--init", Namespaces::PID, "--unshare-pid"),
    ];
    for (given, option, needed, unshare) in needs {
        if given && !ns.contains(needed) {
            let what = if needed == Namespaces::PID { "PID" } else { "UTS" };
            return Err(format!("{option} needs a {what} namespace (add {unshare})"));
        }
    }
    let maps = [
        (cli.uid.is_some(), "--uid"),
        (cli.gid.is_some(), "--gid"),
        (!cli.uid_maps.is_empty(), "--map-users"),
        (!cli.gid_maps.is_empty(), "--map-groups"),
        (cli.harden.contains(&HardenOpt::DisableUserns), "--disable-userns"),
    ];
    if let Some((_, option)) = maps.iter().find(|(given, _)| *given && !user) {
        return Err(format!("{option} needs a user namespace (add --unshare-user)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::tests::cli;

    #[test]
    fn values_that_cannot_work_are_usage_errors_naming_the_option() {
        let err = |list: &[&str], root: bool| check(&cli(list), root).unwrap_err();
        let long = "h".repeat(65);
        for (list, msg) in [
            (&["--hostname", &long][..], "--hostname: the name is 65 bytes"),
            (&["--domainname", &long], "--domainname: the name is 65 bytes"),
            (&["--unshare-user", "--hostname", "h"], "--hostname needs a UTS namespace"),
            (&["--unshare-pid", "--domainname", "d"], "--domainname needs a UTS namespace"),
            (&["--unshare-user", "--init"], "--init needs a PID namespace"),
            (&["--memory-swap", "1g"], "--memory-swap needs --memory"),
            (&["--memory", "1g", "--memory-swap", "512m"], "--memory-swap 536870912 is below"),
            (&["--tmpfs", "/a/../b"], "--tmpfs: the destination \"/a/../b\" contains '..'"),
            (&["--bind", "/x", ".."], "--bind: the destination \"..\""),
            (&["--chmod", "700", "../x"], "--chmod: the destination"),
            (&["--symlink", "../ok", "/d/.."], "--symlink: the destination \"/d/..\""),
            (&["--", ""], "the command is an empty string"),
        ] {
            assert!(err(list, false).contains(msg), "{list:?}: {}", err(list, false));
        }
        // Root gets no user namespace unless it asks for one.
        assert!(err(&["--unshare-pid", "--uid", "1"], true).contains("--uid needs a user"));
        assert!(err(&["--unshare-pid", "--disable-userns"], true).contains("--disable-userns"));
        assert!(check(&cli(&["--unshare-pid", "--uid", "1"]), false).is_ok());
        for ok in [
            &["--hostname", &"h".repeat(64)][..],
            &["--unshare-uts", "--hostname", "h"],
            &["--unshare-pid", "--init"],
            &["--symlink", "../usr/bin", "/bin"],
            &["--unshare-user", "--unshare-pid", "--uid", "1", "--disable-userns"],
        ] {
            assert_eq!(check(&cli(ok), true), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn named_fds_come_in_the_order_their_errors_are_told() {
        let c = cli(&[
            "--keep-fd",
            "7",
            "--file",
            "6",
            "/f",
            "--json-status-fd",
            "5",
            "--add-seccomp-fd",
            "4",
            "--seccomp",
            "3",
        ]);
        assert_eq!(
            c.named_fds(),
            [
                ("--add-seccomp-fd", 4),
                ("--seccomp", 3),
                ("--json-status-fd", 5),
                ("--file", 6),
                ("--keep-fd", 7)
            ]
        );
    }
}
