//! The [`Sandbox`] a parsed command line describes: [`sandbox`].

use crate::cli::{Cli, DEFAULT_COMMAND, EnvChange, FsOp, HardenOpt};
use crate::fds::Fds;
use nscell::{IdMap, Namespaces, Sandbox};
use std::ffi::OsStr;

/// The namespaces the sandbox gets: those named (`--unshare-*-try` ones only where this
/// kernel has them); `None`, the library's default set. bubblewrap's personality always has a
/// mount namespace (its root is always a new one) and names none by default.
pub fn namespaces(cli: &Cli) -> Option<Namespaces> {
    let mut ns = match (cli.namespaces, cli.personality.is_bwrap()) {
        (Some(ns), false) => ns,
        (None, false) => return None,
        (ns, true) => ns.unwrap_or(Namespaces::empty()) | Namespaces::MOUNT,
    };
    for (try_ns, file) in [(Namespaces::USER, "user"), (Namespaces::CGROUP, "cgroup")] {
        if cli.try_namespaces.contains(try_ns)
            && !std::path::Path::new("/proc/self/ns").join(file).exists()
        {
            ns.remove(try_ns);
        }
    }
    Some(ns)
}

/// Whether the sandbox has nscell's init as PID 1, the program its child: with `--init`, and
/// in bubblewrap's personality in a PID namespace (its reaper) unless `--as-pid-1`.
pub fn has_init(cli: &Cli) -> bool {
    let pid_ns = namespaces(cli).is_some_and(|n| n.contains(Namespaces::PID));
    let reaper = cli.personality.is_bwrap() && pid_ns;
    (cli.init || reaper) && !cli.as_pid_1
}

/// Whether the command gets a new session: as asked, else the library's default (bubblewrap's
/// personality: no new session unless `--new-session`).
pub fn new_session(cli: &Cli) -> Option<bool> {
    match cli.personality.is_bwrap() {
        true => Some(cli.new_session.unwrap_or(false)),
        false => cli.new_session,
    }
}

/// The sandbox the options describe. `fds`: the claimed fds (a `--file` gets a duplicate of
/// its own); `programs`: the seccomp programs read from the `--seccomp`/`--add-seccomp-fd`
/// fds, in the order those were given; `inherited`: fds passed on at their numbers
/// (bubblewrap's personality: every one inherited without close-on-exec).
pub fn sandbox(cli: &Cli, fds: &Fds, programs: &[Vec<u8>], inherited: &[i32]) -> Sandbox {
    let (program, args) = match cli.command.split_first() {
        Some((program, args)) => (program.as_os_str(), args),
        None => (OsStr::new(DEFAULT_COMMAND), &[][..]),
    };
    let bwrap = cli.personality.is_bwrap();
    let mut sb = Sandbox::new(program);
    sb.args(args);
    if let Some(argv0) = &cli.argv0 {
        sb.arg0(argv0);
    }
    let ns = namespaces(cli);
    if let Some(ns) = ns {
        sb.namespaces(ns);
    }
    let (euid, egid) = (rustix::process::geteuid(), rustix::process::getegid());
    // To run as id N inside, N is mapped to the caller's id (the kernel lets a process map only
    // its effective ids to itself). bubblewrap maps the caller to itself by default.
    let own = |id: Option<u32>, maps: &[IdMap], caller: u32| match (id, bwrap) {
        (Some(id), _) => Some(id),
        (None, true) if maps.is_empty() => Some(caller),
        (None, _) => None,
    };
    // --userns-block-fd: the caller writes the maps (once it has read the pid from --info-fd).
    let user_ns = cli.join.user.is_none()
        && cli.userns_block_fd.is_none()
        && (ns.is_some_and(|n| n.contains(Namespaces::USER)) || !euid.is_root());
    if cli.userns_block_fd.is_some() {
        sb.id_maps_by_caller(true);
    }
    if user_ns || cli.uid.is_some() {
        if let Some(uid) = own(cli.uid, &cli.uid_maps, euid.as_raw()) {
            sb.uid_map(IdMap::new(uid, euid.as_raw(), 1));
        }
    }
    if user_ns || cli.gid.is_some() {
        if let Some(gid) = own(cli.gid, &cli.gid_maps, egid.as_raw()) {
            sb.gid_map(IdMap::new(gid, egid.as_raw(), 1));
        }
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
    match (&cli.chdir, bwrap) {
        // bubblewrap sets PWD to the directory it enters.
        (Some(dir), true) => sb.current_dir_candidates([dir]),
        (Some(dir), false) => sb.current_dir(dir),
        // bubblewrap keeps the caller's directory where it exists inside, else $HOME, else /.
        (None, true) => {
            let mut dirs: Vec<std::path::PathBuf> = std::env::current_dir().into_iter().collect();
            dirs.extend(std::env::var_os("HOME").map(Into::into));
            dirs.push("/".into());
            sb.current_dir_candidates(dirs)
        }
        (None, false) => &mut sb,
    };
    for (ns, fd) in [(Namespaces::USER, cli.join.user), (Namespaces::PID, cli.join.pid)] {
        if let Some(file) = fd.and_then(|fd| fds.file(fd).ok()) {
            sb.join(ns, file);
        }
    }
    if let Some(file) = cli.join.user2.and_then(|fd| fds.file(fd).ok()) {
        sb.join_after_setup(Namespaces::USER, file);
    }
    for path in &cli.lock_files {
        sb.lock_file(path);
    }
    if let Some(file) = cli.sync_fd.and_then(|fd| fds.file(fd).ok()) {
        sb.hold_fd(file);
    }
    for change in &cli.env {
        match change {
            EnvChange::Set(var, val) => sb.env(var, val),
            EnvChange::Unset(var) => sb.env_remove(var),
            EnvChange::Clear => sb.env_clear(),
        };
    }
    if cli.no_proc || bwrap {
        sb.mount_proc(false);
    }
    if bwrap {
        // bubblewrap has no seccomp policy of its own.
        sb.default_seccomp(false);
    }
    for &fd in inherited {
        if let Ok(file) = fds.file(fd) {
            sb.map_fd(file, fd);
        }
    }
    // bubblewrap's capabilities are the caller's: a root caller's effective set, none for any
    // other caller (in every set, the bounding set included, so no execve gets one back), with
    // --cap-add and --cap-drop applied on top. A non-root uid inside loses them at execve
    // unless --cap-add raised them as ambient.
    if bwrap {
        match rustix::process::getuid().is_root() {
            true => {
                let own = rustix::thread::capabilities(None).map(|c| c.effective.bits());
                let own = nscell::Capabilities::from_bits_retain(own.unwrap_or(0));
                sb.keep_capabilities(own)
            }
            false => sb.drop_capabilities(nscell::Capabilities::ALL),
        };
    }
    apply_harden(&mut sb, &cli.harden, fds, programs);
    if cli.cgroup.any() {
        sb.limits(limits(&cli.cgroup));
    }
    if let Some(network) = network(&cli.net) {
        sb.network(network);
    }
    if !cli.fs.is_empty() {
        if let Some(ns) = ns {
            sb.namespaces(ns | Namespaces::MOUNT);
        }
    }
    let pid_ns = ns.is_some_and(|n| n.contains(Namespaces::PID));
    if bwrap && cli.fs.is_empty() {
        // bubblewrap's root is always a new, empty tmpfs (0755), even with no filesystem
        // option.
        sb.chmod("/", 0o755);
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
            // Sharing the caller's PID namespace, bubblewrap binds the host's procfs (a new
            // one needs a PID namespace the user namespace owns), with the parts that could
            // change the host read-only when they are writable.
            FsOp::Proc(dest) if bwrap && !pid_ns && cli.join.pid.is_none() => {
                sb.bind("/proc", dest);
                for sub in ["sys", "sysrq-trigger", "irq", "bus"] {
                    let host = std::path::Path::new("/proc").join(sub);
                    if rustix::fs::access(&host, rustix::fs::Access::WRITE_OK).is_ok() {
                        sb.ro_bind(&host, std::path::Path::new(dest).join(sub));
                    }
                }
                &mut sb
            }
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
            FsOp::BindFd { fd, dest, ro } => match fds.file(*fd) {
                Ok(file) if *ro => sb.ro_bind_fd(file, dest),
                Ok(file) => sb.bind_fd(file, dest),
                Err(_) => &mut sb,
            },
            FsOp::BindData { fd, dest, ro, mode } => match fds.file(*fd) {
                Ok(file) if *ro => sb.ro_bind_data_from_fd(dest, file, *mode),
                Ok(file) => sb.bind_data_from_fd(dest, file, *mode),
                Err(_) => &mut sb,
            },
            FsOp::Overlay { lowers, upper_work: Some((upper, work)), dest, .. } => {
                sb.overlay(lowers, upper, work, dest)
            }
            FsOp::Overlay { lowers, ro: true, dest, .. } => sb.ro_overlay(lowers, dest),
            FsOp::Overlay { lowers, dest, .. } => sb.tmp_overlay(lowers, dest),
        };
    }
    sb.init(has_init(cli)).die_with_parent(cli.die_with_parent);
    if let Some(new_session) = new_session(cli) {
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
        sandbox(&cli(list), &Fds::default(), &[], &[])
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
