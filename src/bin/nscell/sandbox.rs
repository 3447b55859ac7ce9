//! The [`Sandbox`] a parsed command line describes: [`sandbox`].

use crate::cli::{Cli, DEFAULT_COMMAND, EnvChange, FsOp, HardenOpt};
use crate::fds::Fds;
use nscell::{IdMap, Namespaces, Sandbox};
use std::ffi::OsStr;

/// The sandbox the options describe. `fds`: the claimed fds (a `--file` gets a duplicate of
/// its own); `programs`: the seccomp programs read from the `--seccomp`/`--add-seccomp-fd`
/// fds, in the order those were given.
pub fn sandbox(cli: &Cli, fds: &Fds, programs: &[Vec<u8>]) -> Sandbox {
    let (program, args) = match cli.command.split_first() {
        Some((program, args)) => (program.as_os_str(), args),
        None => (OsStr::new(DEFAULT_COMMAND), &[][..]),
    };
    let mut sb = Sandbox::new(program);
    sb.args(args);
    if let Some(ns) = cli.namespaces {
        sb.namespaces(ns);
    }
    // To run as id N inside, N is mapped to the caller's id (the kernel lets a process map only
    // its effective ids to itself).
    if let Some(uid) = cli.uid {
        sb.uid_map(IdMap::new(uid, rustix::process::geteuid().as_raw(), 1));
    }
    if let Some(gid) = cli.gid {
        sb.gid_map(IdMap::new(gid, rustix::process::getegid().as_raw(), 1));
    }
    for m in &cli.uid_maps {
        sb.uid_map(*m);
    }
    for m in &cli.gid_maps {
        sb.gid_map(*m);
    }
    if let Some(name) = &cli.hostname {
        sb.hostname(name);
    }
    if let Some(name) = &cli.domainname {
        sb.domainname(name);
    }
    if let Some(dir) = &cli.chdir {
        sb.current_dir(dir);
    }
    for change in &cli.env {
        match change {
            EnvChange::Set(var, val) => sb.env(var, val),
            EnvChange::Unset(var) => sb.env_remove(var),
            EnvChange::Clear => sb.env_clear(),
        };
    }
    if cli.no_proc {
        sb.mount_proc(false);
    }
    apply_harden(&mut sb, &cli.harden, fds, programs);
    if cli.cgroup.any() {
        sb.limits(limits(&cli.cgroup));
    }
    if let Some(network) = network(&cli.net) {
        sb.network(network);
    }
    if !cli.fs.is_empty() {
        if let Some(ns) = cli.namespaces {
            sb.namespaces(ns | Namespaces::MOUNT);
        }
    }
    for op in &cli.fs {
        match op {
            FsOp::Bind(name, src, dest) => match *name {
                "--bind" => sb.bind(src, dest),
                "--bind-try" => sb.bind_try(src, dest),
                "--ro-bind" => sb.ro_bind(src, dest),
                "--ro-bind-try" => sb.ro_bind_try(src, dest),
                "--dev-bind" => sb.dev_bind(src, dest),
                _ => sb.dev_bind_try(src, dest),
            },
            FsOp::RemountRo(dest) => sb.remount_ro(dest),
            FsOp::CgroupView(dest) => sb.cgroup_view(dest),
            FsOp::Tmpfs { dest, size, mode } => sb.tmpfs_with(dest, *size, *mode),
            FsOp::Proc(dest) => sb.proc(dest),
            FsOp::Dev(dest) => sb.dev(dest),
            FsOp::Mqueue(dest) => sb.mqueue(dest),
            FsOp::Dir { dest, mode: Some(mode) } => sb.dir_with_mode(dest, *mode),
            FsOp::Dir { dest, mode: None } => sb.dir(dest),
            FsOp::Symlink { target, dest } => sb.symlink(target, dest),
            // The fd was claimed and checked; a duplicate goes to the library.
            FsOp::File { fd, dest, mode } => match fds.file(*fd) {
                Ok(file) => sb.file_from_fd(dest, file, *mode),
                Err(_) => &mut sb,
            },
            FsOp::Chmod { mode, path } => sb.chmod(path, *mode),
            FsOp::Rootfs(dir) => sb.rootfs(dir),
        };
    }
    sb.init(cli.init).die_with_parent(cli.die_with_parent);
    if let Some(new_session) = cli.new_session {
        sb.new_session(new_session);
    }
    if let Some(timeout) = cli.timeout {
        sb.timeout(timeout);
    }
    sb
}

fn apply_harden(sb: &mut Sandbox, opts: &[HardenOpt], fds: &Fds, programs: &[Vec<u8>]) {
    let mut programs = programs.iter();
    for opt in opts {
        match opt {
            HardenOpt::CapDrop(c) => sb.drop_capabilities(*c),
            HardenOpt::CapAdd(c) => sb.add_capabilities(*c),
            HardenOpt::Seccomp { replace, .. } => {
                if *replace {
                    sb.default_seccomp(false);
                }
                sb.seccomp_program(programs.next().map_or(&[][..], Vec::as_slice))
            }
            HardenOpt::NoDefaultSeccomp => sb.default_seccomp(false),
            HardenOpt::DenyIoUring => sb.deny_io_uring(true),
            HardenOpt::DisableUserns => sb.allow_nested_userns(false),
            HardenOpt::KeepSessionKeyring => sb.new_session_keyring(false),
            HardenOpt::Landlock(path, access) => sb.landlock_path(path, *access),
            HardenOpt::LandlockTcp(true, port) => sb.landlock_tcp_bind(port.as_slice()),
            HardenOpt::LandlockTcp(false, port) => sb.landlock_tcp_connect(port.as_slice()),
            HardenOpt::LandlockRequired => {
                sb.landlock_compat_level(nscell::landlock::CompatLevel::HardRequirement)
            }
            HardenOpt::Rlimit(r, soft, hard) => sb.rlimit(*r, *soft, *hard),
            // A duplicate of the claimed fd, put back at its number in the program.
            HardenOpt::KeepFd(fd) => match fds.file(*fd) {
                Ok(file) => sb.map_fd(file, *fd),
                Err(_) => sb,
            },
        };
    }
}

/// The cgroup limits the options give (podman's `--memory-swap` is memory plus swap).
fn limits(o: &crate::cli::CgroupOpts) -> nscell::cgroup::Limits {
    use nscell::cgroup::{CompatLevel, Limits};
    let mut l = Limits::new();
    if let Some(m) = o.memory {
        l = l.memory_max(m);
        match o.memory_swap {
            Some(Some(total)) => l = l.memory_swap_max(total.saturating_sub(m)),
            Some(None) => l = l.memory_swap_max(u64::MAX),
            None => {}
        }
    }
    if let Some(h) = o.memory_high {
        l = l.memory_high(h);
    }
    if let Some(n) = o.pids_limit {
        l = l.pids_max(n);
    }
    if let Some(c) = o.cpus {
        l = l.cpus(c);
    }
    if let Some(w) = o.cpu_weight {
        l = l.cpu_weight(w);
    }
    if let Some(list) = &o.cpuset_cpus {
        l = l.cpus_allowed(list.clone());
    }
    if let Some(w) = o.io_weight {
        l = l.io_weight(w);
    }
    // One IoMax per device, in the order the devices were first named.
    let mut devices: Vec<(&std::path::Path, nscell::cgroup::IoMax)> = Vec::new();
    for (dev, which, rate) in &o.io_max {
        let i = match devices.iter().position(|(d, _)| d == dev) {
            Some(i) => i,
            None => {
                devices.push((dev, Default::default()));
                devices.len() - 1
            }
        };
        let max = &mut devices[i].1;
        let slot = [&mut max.read_bps, &mut max.write_bps, &mut max.read_iops, &mut max.write_iops];
        if let Some(r) = slot.into_iter().nth(*which) {
            *r = Some(*rate);
        }
    }
    for (dev, max) in devices {
        l = l.io_max(dev, max);
    }
    if let Some(p) = &o.parent {
        l = l.parent(p);
    }
    if o.required {
        l = l.compat(CompatLevel::HardRequirement);
    }
    l
}

/// The network the options give (`None`: as the namespaces say).
fn network(o: &crate::cli::NetOpts) -> Option<nscell::net::Network> {
    use crate::cli::NetMode;
    use nscell::net::{Network, UserNet};
    let user = |args: &[std::ffi::OsString]| {
        let mut u = UserNet::new();
        for &(proto, host, port) in &o.publish {
            u.publish(proto, host, port);
        }
        u.host_loopback(o.host_loopback).ipv6(o.ipv6);
        if let Some(dns) = o.dns {
            u.dns(dns);
        }
        for (net, proto, ports) in &o.resolved {
            u.allow_egress(*net, *proto, ports);
        }
        if o.deny_all {
            u.deny_egress_all();
        }
        for a in args {
            u.arg(a);
        }
        u
    };
    Some(match o.mode.as_ref()? {
        NetMode::None => Network::Loopback,
        NetMode::Host => Network::Host,
        NetMode::Pasta(args) => Network::Pasta(user(args)),
        NetMode::Slirp4netns(args) => Network::Slirp4netns(user(args)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::tests::cli;

    fn sb(list: &[&str]) -> Sandbox {
        sandbox(&cli(list), &Fds::default(), &[])
    }

    #[test]
    fn no_options_is_the_default_sandbox_running_bash() {
        let sb = sb(&[]);
        assert_eq!(sb.get_program(), DEFAULT_COMMAND);
        assert_eq!(sb.get_namespaces(), Namespaces::DEFAULT);
    }

    #[test]
    fn named_namespaces_replace_the_default_set_and_a_new_root_adds_mount() {
        assert_eq!(sb(&["--unshare-uts"]).get_namespaces(), Namespaces::UTS);
        assert_eq!(sb(&["--", "-x"]).get_program(), "-x");
        // Naming namespaces without a mount namespace still gets one for the new root.
        assert!(
            sb(&["--unshare-pid", "--tmpfs", "/t"]).get_namespaces().contains(Namespaces::MOUNT)
        );
    }
}
