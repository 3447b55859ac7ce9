//! `nscell`: runs a program in new Linux namespaces without host root.
//!
//! A thin front over the library: options (named as bubblewrap names them) become [`Sandbox`]
//! settings, and the program's fate becomes nscell's exit status. The only thing it does on its
//! own is pass SIGINT, SIGTERM and SIGHUP on to the program.
#![deny(unsafe_code)]

use nscell::landlock::{self, Access as LandlockAccess};
use nscell::rlimit::{self, Resource};
use nscell::{Capabilities, Error, IdMap, Namespaces, Sandbox};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

/// The program run when no command is given (the seed's behaviour).
const DEFAULT_COMMAND: &str = "/bin/bash";

/// Exit status when the sandbox cannot be set up (as `docker run`, `podman run`).
const EXIT_SETUP: i32 = 125;
/// Exit status when the program exists but cannot be executed (as a shell).
const EXIT_CANNOT_EXECUTE: i32 = 126;
/// Exit status when the program is not found (as a shell).
const EXIT_NOT_FOUND: i32 = 127;
/// Exit status for a bad command line.
const EXIT_USAGE: i32 = 2;
/// Exit status when --timeout ended the command (as timeout(1)).
const EXIT_TIMEOUT: i32 = 124;

const HELP: &str = "\
Usage: nscell [OPTIONS] [--] [COMMAND [ARG...]]

Runs COMMAND (default /bin/bash) in new user, PID, mount, UTS and IPC namespaces, as root inside
(your uid and gid are mapped to 0), as PID 1, with a fresh /proc. No host root is needed.
The first argument that is not an option, or everything after --, starts the command; it and its
arguments are passed on as they are, options included.

Namespaces (naming any replaces the default set with exactly those; without root, a user
namespace mapping your own ids is added when --unshare-user is not named):
  --unshare-user          new user namespace: its own uids and gids
  --unshare-pid           new PID namespace: the command is PID 1 and sees only its descendants
  --unshare-mount         new mount namespace: mounts made inside stay inside
  --unshare-uts           new UTS namespace: its own hostname and domain name
  --unshare-ipc           new IPC namespace: its own System V IPC and POSIX message queues
  --unshare-net           new network namespace: only a loopback interface (brought up)
  --unshare-cgroup        new cgroup namespace: the current cgroup is its root
  --unshare-time          new time namespace (Linux 5.6+)
  --unshare-all           all of the above

User and group ids (need a user namespace):
  --uid N                 run as uid N inside: N is mapped to your uid (default 0, root)
  --gid N                 run as gid N inside: N is mapped to your gid (default 0)
  --map-users IN:OUT:COUNT
                          map COUNT uids starting at IN inside to OUT outside (repeatable; the
                          order of /proc/PID/uid_map). Ids other than your own need root, or
                          newuidmap and ranges in /etc/subuid
  --map-groups IN:OUT:COUNT
                          the same for gids (newgidmap, /etc/subgid)

The command's surroundings:
  --hostname NAME         set the hostname (needs a UTS namespace)
  --domainname NAME       set the NIS domain name (needs a UTS namespace)
  --chdir DIR             start in DIR, as seen inside
  --setenv VAR VALUE      set an environment variable
  --unsetenv VAR          remove an environment variable
  --clearenv              start from an empty environment (--setenv still applies)
  --no-proc               do not mount a fresh /proc (one is mounted when the PID and mount
                          namespaces are both new)

Filesystem (any of these gives the command a new root: an empty tmpfs that the options fill in
order and that becomes /, the host's root detached; nothing else is mounted in it, not even
/proc; they imply --unshare-mount):
  --bind SRC DEST         bind-mount the host path SRC on DEST, read-write (nosuid, nodev)
  --bind-try SRC DEST     the same, skipped when SRC does not exist
  --ro-bind SRC DEST      bind-mount SRC on DEST read-only, every mount below it included
  --ro-bind-try SRC DEST  the same, skipped when SRC does not exist
  --dev-bind SRC DEST     bind-mount SRC on DEST read-write with device nodes usable
  --dev-bind-try SRC DEST the same, skipped when SRC does not exist
  --remount-ro DEST       make the mount at DEST read-only
  --tmpfs DEST            mount an empty tmpfs on DEST
  --proc DEST             mount a fresh procfs on DEST (needs --unshare-pid without root)
  --dev DEST              a minimal /dev on DEST: null zero full random urandom tty, pts, shm
  --mqueue DEST           mount a POSIX message queue filesystem on DEST
  --dir DEST              create the directory DEST
  --symlink TARGET DEST   create the symlink DEST pointing to TARGET
  --file FD DEST          create the file DEST with what is read from file descriptor FD
  --chmod OCTAL PATH      change the mode of PATH
  --rootfs DIR            use the host directory DIR read-only as the new root, with a fresh
                          /proc and a minimal /dev in it (DIR needs proc and dev directories)
  --perms OCTAL           the mode of the next --tmpfs, --dir or --file
  --size BYTES            the size limit of the next --tmpfs
Destinations are paths in the new root; symlinks in them resolve inside it, never to the host.

Hardening (defaults: no_new_privs; root inside keeps its capabilities over the sandbox's
namespaces; nscell's seccomp policy denies kexec, kernel modules, bpf, perf_event_open,
userfaultfd, keyctl/add_key/request_key, ptrace, process_vm_*, personality changes, TIOCSTI,
TIOCLINUX, x32 calls):
  --cap-drop CAP          drop capability CAP (CAP_NET_ADMIN, net_admin, or ALL) from every set
  --cap-add CAP           give capability CAP back (or ALL); a non-root --uid keeps it through
                          the ambient set. --cap-drop/--cap-add apply in order from the default
  --seccomp FD            read a compiled seccomp program (raw struct sock_filter array, as
                          bwrap --seccomp) from FD and make it the whole policy. FD is read to
                          its end from its current offset (a file, pipe or socket), at most
                          32768 bytes (4096 instructions), and stays open
  --add-seccomp-fd FD     read a compiled seccomp program from FD and stack it on the policy
  --no-default-seccomp    do not install nscell's default seccomp policy
  --deny-io-uring         also deny io_uring_setup, io_uring_enter and io_uring_register
                          (EPERM), with or without the default seccomp policy
  --disable-userns        the command cannot create user namespaces (needs a user namespace;
                          it also loses its capabilities over the sandbox's namespaces)
  --keep-session-keyring  let the command keep this process's session keyring and its keys (by
                          default it gets a new, empty one, counted in kernel.keys.maxkeys)
  --landlock-ro PATH      Landlock: allow reading beneath PATH (any of these three options
  --landlock-exec PATH    reading and executing beneath PATH       denies every other file
  --landlock-rw PATH      every file access beneath PATH           access)
  --landlock-tcp-bind PORT
                          Landlock: allow TCP bind on PORT, and no other port (repeatable;
                          'none': no TCP bind at all; Linux 6.7+)
  --landlock-tcp-connect PORT
                          Landlock: allow TCP connect to PORT, on any address, and no other
                          port (repeatable; 'none': no TCP connect at all; Linux 6.7+)
  --landlock-required     fail (exit 125) unless the kernel enforces every Landlock rule
                          given; without it, Landlock is best effort on older kernels
  --rlimit NAME=SOFT[:HARD]
                          set a resource limit (AS, CORE, CPU, FSIZE, NOFILE, NPROC, STACK,
                          MEMLOCK; a number or 'unlimited'; HARD defaults to SOFT)
  --keep-fd FD            pass file descriptor FD to the command (every other fd above 2 is
                          closed)

Life and death:
  --init                  run a tiny init as PID 1 that reaps orphans, passes SIGINT, SIGTERM,
                          SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH on to the command and
                          exits with its status (needs the PID namespace; as docker run --init).
                          Use it for a command that does not handle SIGTERM or starts children
  --die-with-parent       kill the sandbox when nscell dies (PR_SET_PDEATHSIG)
  --new-session           start the command in a new session (setsid), so it cannot push input
                          into this terminal (TIOCSTI). The default, unless it gets a pty;
                          --share-terminal turns it off
  --share-terminal        let the command use this terminal as its controlling terminal, as a
                          job of its own (its own process group, in the foreground when nscell
                          is; Ctrl-Z stops nscell with it). No pty unless --pty is given too
  --timeout SECONDS       kill the sandbox after SECONDS (decimals allowed); exit status 124
  --pty                   give the command a new pseudo-terminal, relayed to this terminal in
                          raw mode, with window size changes passed on (default when stdin is a
                          terminal, unless --share-terminal)
  --no-pty                do not: the command uses nscell's stdin, stdout and stderr as they are

Reporting:
  --json-status-fd FD     write JSON lines to file descriptor FD: {\"child-pid\": N,
                          \"user-namespace\": INODE, ...} (one entry per new namespace) once the
                          command has started, and {\"exit-code\": N} when it has ended
  --check                 show what this kernel and user can use; exit 0 if the default
                          sandbox works, 1 if not
  -h, --help              show this help
  -V, --version           show the version

Exit status:
  the command's own; 128+N when it was killed by signal N; 125 when the sandbox could not be set
  up (the message names the step, the error and a hint); 126 when the command cannot be
  executed; 127 when it is not found; 2 for a bad command line, a value included that cannot
  work (a 65-byte hostname, overlapping id maps, an fd that is not open, --init without a PID
  namespace, ...).

Signals:
  SIGINT, SIGTERM and SIGHUP sent to nscell are passed on to the command. In a new PID namespace
  the command is PID 1, and the kernel delivers to PID 1 only the signals it has a handler for:
  a program without handlers (sleep, many servers) ignores SIGTERM, SIGINT and Ctrl-C there, and
  only SIGKILL ends it. Use --init for such a program: the init is PID 1 and passes the signals
  on.
";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
enum Action {
    Help,
    Version,
    Check,
    Run(Box<Cli>),
}

/// The options of a run, as given.
#[derive(Debug, Default, PartialEq)]
struct Cli {
    /// `None`: the library's default set.
    namespaces: Option<Namespaces>,
    uid: Option<u32>,
    gid: Option<u32>,
    uid_maps: Vec<IdMap>,
    gid_maps: Vec<IdMap>,
    hostname: Option<OsString>,
    domainname: Option<OsString>,
    chdir: Option<PathBuf>,
    /// `--setenv`, `--unsetenv` and `--clearenv`, in order.
    env: Vec<EnvChange>,
    no_proc: bool,
    json_status_fd: Option<i32>,
    /// Hardening options, in order.
    harden: Vec<HardenOpt>,
    /// Filesystem operations, in order; any of them means a new root.
    fs: Vec<FsOp>,
    init: bool,
    die_with_parent: bool,
    /// `--new-session` (true) or `--share-terminal` (false); `None`: the library's default.
    new_session: Option<bool>,
    timeout: Option<std::time::Duration>,
    /// `--pty` / `--no-pty`; `None`: a pty when stdin is a terminal.
    pty: Option<bool>,
    /// Program and arguments; empty means [`DEFAULT_COMMAND`].
    command: Vec<OsString>,
}

/// A filesystem option, as given.
#[derive(Debug, PartialEq)]
enum FsOp {
    /// `--bind` and friends: (option name, source, destination).
    Bind(&'static str, OsString, OsString),
    RemountRo(OsString),
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
}

impl FsOp {
    /// The option that gave this operation and the path in the new root it acts on.
    fn destination(&self) -> (&'static str, &OsStr) {
        match self {
            FsOp::Bind(name, _, dest) => (name, dest),
            FsOp::RemountRo(dest) => ("--remount-ro", dest),
            FsOp::Tmpfs { dest, .. } => ("--tmpfs", dest),
            FsOp::Proc(dest) => ("--proc", dest),
            FsOp::Dev(dest) => ("--dev", dest),
            FsOp::Mqueue(dest) => ("--mqueue", dest),
            FsOp::Dir { dest, .. } => ("--dir", dest),
            FsOp::Symlink { dest, .. } => ("--symlink", dest),
            FsOp::File { dest, .. } => ("--file", dest),
            FsOp::Chmod { path, .. } => ("--chmod", path),
            FsOp::Rootfs(_) => ("--rootfs", OsStr::new("/")),
        }
    }
}

#[derive(Debug, PartialEq)]
enum EnvChange {
    Set(OsString, OsString),
    Unset(OsString),
    Clear,
}

/// Parses the arguments after the program name. `Err` is one line for stderr.
fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Action, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut cli = Cli::default();
    // --perms and --size wait for the option they apply to.
    let mut perms: Option<u32> = None;
    let mut size: Option<u64> = None;
    let unshare = |cli: &mut Cli, ns: Namespaces| {
        cli.namespaces = Some(cli.namespaces.unwrap_or(Namespaces::empty()) | ns);
    };
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(Action::Help),
            Short('V') | Long("version") => return Ok(Action::Version),
            Long("check") => return Ok(Action::Check),
            Long("unshare-user") => unshare(&mut cli, Namespaces::USER),
            Long("unshare-pid") => unshare(&mut cli, Namespaces::PID),
            Long("unshare-mount") => unshare(&mut cli, Namespaces::MOUNT),
            Long("unshare-uts") => unshare(&mut cli, Namespaces::UTS),
            Long("unshare-ipc") => unshare(&mut cli, Namespaces::IPC),
            Long("unshare-net") => unshare(&mut cli, Namespaces::NET),
            Long("unshare-cgroup") => unshare(&mut cli, Namespaces::CGROUP),
            Long("unshare-time") => unshare(&mut cli, Namespaces::TIME),
            Long("unshare-all") => unshare(&mut cli, Namespaces::all()),
            Long("uid") => cli.uid = Some(number(&mut p, "--uid")?),
            Long("gid") => cli.gid = Some(number(&mut p, "--gid")?),
            Long("map-users") => cli.uid_maps.push(id_map(&mut p, "--map-users")?),
            Long("map-groups") => cli.gid_maps.push(id_map(&mut p, "--map-groups")?),
            Long("hostname") => cli.hostname = Some(value(&mut p, "--hostname")?),
            Long("domainname") => cli.domainname = Some(value(&mut p, "--domainname")?),
            Long("chdir") => cli.chdir = Some(value(&mut p, "--chdir")?.into()),
            Long("setenv") => {
                let var = value(&mut p, "--setenv")?;
                let val = p
                    .value()
                    .map_err(|_| "missing VALUE for option '--setenv' (--setenv VAR VALUE)")?;
                cli.env.push(EnvChange::Set(var, val));
            }
            Long("unsetenv") => cli.env.push(EnvChange::Unset(value(&mut p, "--unsetenv")?)),
            Long("clearenv") => cli.env.push(EnvChange::Clear),
            Long("no-proc") => cli.no_proc = true,
            Long("init") => cli.init = true,
            Long("die-with-parent") => cli.die_with_parent = true,
            Long("new-session") => cli.new_session = Some(true),
            Long("share-terminal") => cli.new_session = Some(false),
            Long("pty") => cli.pty = Some(true),
            Long("no-pty") => cli.pty = Some(false),
            Long("timeout") => {
                let v = value(&mut p, "--timeout")?;
                let secs = v.to_str().and_then(|s| s.parse::<f64>().ok());
                match secs.and_then(|s| std::time::Duration::try_from_secs_f64(s).ok()) {
                    Some(d) => cli.timeout = Some(d),
                    None => return Err(format!("--timeout: {v:?} is not a number of seconds")),
                }
            }
            Long("json-status-fd") => {
                let fd = number(&mut p, "--json-status-fd")?;
                let fd = i32::try_from(fd)
                    .map_err(|_| format!("--json-status-fd: {fd} is not a file descriptor"))?;
                cli.json_status_fd = Some(fd);
            }
            Long(name) if HARDEN_OPTIONS.contains(&name) => {
                let name = name.to_string();
                cli.harden.push(harden_option(&name, &mut p)?);
            }
            Long(
                name @ ("bind" | "bind-try" | "ro-bind" | "ro-bind-try" | "dev-bind"
                | "dev-bind-try"),
            ) => {
                let name = match name {
                    "bind" => "--bind",
                    "bind-try" => "--bind-try",
                    "ro-bind" => "--ro-bind",
                    "ro-bind-try" => "--ro-bind-try",
                    "dev-bind" => "--dev-bind",
                    _ => "--dev-bind-try",
                };
                let (src, dest) = two(&mut p, name, "SRC DEST")?;
                cli.fs.push(FsOp::Bind(name, src, dest));
            }
            Long("remount-ro") => cli.fs.push(FsOp::RemountRo(value(&mut p, "--remount-ro")?)),
            Long("tmpfs") => {
                let dest = value(&mut p, "--tmpfs")?;
                cli.fs.push(FsOp::Tmpfs { dest, size: size.take(), mode: perms.take() });
            }
            Long("proc") => cli.fs.push(FsOp::Proc(value(&mut p, "--proc")?)),
            Long("dev") => cli.fs.push(FsOp::Dev(value(&mut p, "--dev")?)),
            Long("mqueue") => cli.fs.push(FsOp::Mqueue(value(&mut p, "--mqueue")?)),
            Long("dir") => {
                let dest = value(&mut p, "--dir")?;
                cli.fs.push(FsOp::Dir { dest, mode: perms.take() });
            }
            Long("symlink") => {
                let (target, dest) = two(&mut p, "--symlink", "TARGET DEST")?;
                cli.fs.push(FsOp::Symlink { target, dest });
            }
            Long("file") => {
                let (fd, dest) = two(&mut p, "--file", "FD DEST")?;
                let fd = parse_u32(&fd)
                    .and_then(|fd| i32::try_from(fd).ok())
                    .ok_or_else(|| format!("--file: {fd:?} is not a file descriptor"))?;
                cli.fs.push(FsOp::File { fd, dest, mode: perms.take() });
            }
            Long("chmod") => {
                let (mode, path) = two(&mut p, "--chmod", "OCTAL PATH")?;
                let mode = octal(&mode, "--chmod")?;
                cli.fs.push(FsOp::Chmod { mode, path });
            }
            Long("rootfs") => cli.fs.push(FsOp::Rootfs(value(&mut p, "--rootfs")?)),
            Long("perms") => perms = Some(octal(&value(&mut p, "--perms")?, "--perms")?),
            Long("size") => {
                let v = value(&mut p, "--size")?;
                let n = v.to_str().and_then(|s| s.parse().ok());
                let n = n.ok_or_else(|| format!("--size: {v:?} is not a number of bytes"))?;
                if n == 0 {
                    // The kernel's size=0 is no limit at all; bubblewrap refuses it too.
                    return Err("--size: 0 is not a size limit (at least 1 byte; leave --size \
                                out for the default)"
                        .into());
                }
                size = Some(n);
            }
            Value(program) => {
                cli.command.push(program);
                cli.command.extend(p.raw_args().map_err(|e| e.to_string())?);
                break;
            }
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    if perms.is_some() {
        return Err("--perms must be followed by --tmpfs, --dir or --file".into());
    }
    if size.is_some() {
        return Err("--size must be followed by --tmpfs".into());
    }
    Ok(Action::Run(Box::new(cli)))
}

/// The two values of an option like `--bind SRC DEST`.
fn two(p: &mut lexopt::Parser, option: &str, names: &str) -> Result<(OsString, OsString), String> {
    let missing = || format!("missing argument for option '{option}' ({option} {names})");
    let a = p.value().map_err(|_| missing())?;
    let b = p.value().map_err(|_| missing())?;
    Ok((a, b))
}

/// A permission mode in octal, as chmod(1) takes it.
fn octal(v: &OsStr, option: &str) -> Result<u32, String> {
    v.to_str()
        .and_then(|s| u32::from_str_radix(s, 8).ok())
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{option}: {v:?} is not an octal mode from 0 to 7777"))
}

fn value(p: &mut lexopt::Parser, option: &str) -> Result<OsString, String> {
    p.value().map_err(|_| format!("missing argument for option '{option}'"))
}

fn number(p: &mut lexopt::Parser, option: &str) -> Result<u32, String> {
    let v = value(p, option)?;
    parse_u32(&v).ok_or_else(|| format!("{option}: {v:?} is not a number from 0 to 4294967295"))
}

fn parse_u32(v: &OsStr) -> Option<u32> {
    v.to_str()?.parse().ok()
}

/// `INSIDE:OUTSIDE:COUNT`, the order of `IdMap::new` and of `/proc/PID/uid_map`.
fn id_map(p: &mut lexopt::Parser, option: &str) -> Result<IdMap, String> {
    let v = value(p, option)?;
    let fields: Option<Vec<u32>> =
        v.to_str().and_then(|s| s.split(':').map(|f| f.parse().ok()).collect());
    match fields.as_deref() {
        Some(&[inside, outside, count]) => Ok(IdMap::new(inside, outside, count)),
        _ => Err(format!("{option}: {v:?} is not INSIDE:OUTSIDE:COUNT (three numbers)")),
    }
}

/// The sandbox the options describe.
fn sandbox(cli: &Cli) -> Sandbox {
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
    apply_harden(&mut sb, &cli.harden);
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
            FsOp::Tmpfs { dest, size, mode } => sb.tmpfs_with(dest, *size, *mode),
            FsOp::Proc(dest) => sb.proc(dest),
            FsOp::Dev(dest) => sb.dev(dest),
            FsOp::Mqueue(dest) => sb.mqueue(dest),
            FsOp::Dir { dest, mode: Some(mode) } => sb.dir_with_mode(dest, *mode),
            FsOp::Dir { dest, mode: None } => sb.dir(dest),
            FsOp::Symlink { target, dest } => sb.symlink(target, dest),
            // `check_fds` has checked that the fd is open.
            FsOp::File { fd, dest, mode } => match signals::status_file(*fd) {
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

/// The hardening options (issue 7), one entry per option given.
#[derive(Debug, PartialEq)]
enum HardenOpt {
    CapDrop(Capabilities),
    CapAdd(Capabilities),
    /// `--seccomp` (true: replaces the default policy) or `--add-seccomp-fd` (false): the fd
    /// and, once [`read_seccomp_programs`] has read it, the program.
    Seccomp(i32, Vec<u8>, bool),
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

const HARDEN_OPTIONS: &[&str] = &[
    "cap-drop",
    "cap-add",
    "seccomp",
    "add-seccomp-fd",
    "no-default-seccomp",
    "deny-io-uring",
    "disable-userns",
    "keep-session-keyring",
    "landlock-ro",
    "landlock-rw",
    "landlock-exec",
    "landlock-tcp-bind",
    "landlock-tcp-connect",
    "landlock-required",
    "rlimit",
    "keep-fd",
];

fn harden_option(name: &str, p: &mut lexopt::Parser) -> Result<HardenOpt, String> {
    let option = format!("--{name}");
    let capability = |p: &mut lexopt::Parser| -> Result<Capabilities, String> {
        let v = value(p, &option)?;
        v.to_str()
            .and_then(Capabilities::parse)
            .ok_or_else(|| format!("{option}: {v:?} is not a capability (CAP_NET_ADMIN, ALL, ...)"))
    };
    let fd = |p: &mut lexopt::Parser| -> Result<i32, String> {
        let n = number(p, &option)?;
        i32::try_from(n).map_err(|_| format!("{option}: {n} is not a file descriptor"))
    };
    Ok(match name {
        "cap-drop" => HardenOpt::CapDrop(capability(p)?),
        "cap-add" => HardenOpt::CapAdd(capability(p)?),
        "seccomp" | "add-seccomp-fd" => {
            let n = fd(p)?;
            // Read later, bounded by --timeout and ended by a signal; checked now.
            seccomp_file(&option, n)?;
            HardenOpt::Seccomp(n, Vec::new(), name == "seccomp")
        }
        "no-default-seccomp" => HardenOpt::NoDefaultSeccomp,
        "deny-io-uring" => HardenOpt::DenyIoUring,
        "disable-userns" => HardenOpt::DisableUserns,
        "keep-session-keyring" => HardenOpt::KeepSessionKeyring,
        "landlock-tcp-bind" | "landlock-tcp-connect" => {
            let v = value(p, &option)?;
            let port = match v.to_str() {
                Some("none") => None,
                s => Some(s.and_then(|s| s.parse::<u16>().ok()).ok_or_else(|| {
                    format!("{option}: {v:?} is not a port from 0 to 65535 (or 'none')")
                })?),
            };
            HardenOpt::LandlockTcp(name == "landlock-tcp-bind", port)
        }
        "landlock-required" => HardenOpt::LandlockRequired,
        "landlock-ro" | "landlock-rw" | "landlock-exec" => {
            let access = match name {
                "landlock-ro" => LandlockAccess::ReadOnly,
                "landlock-rw" => LandlockAccess::ReadWrite,
                _ => LandlockAccess::Execute,
            };
            HardenOpt::Landlock(value(p, &option)?.into(), access)
        }
        "rlimit" => {
            let v = value(p, &option)?;
            match rlimit(v.to_str().unwrap_or("")) {
                Some(HardenOpt::Rlimit(_, soft, hard)) if soft > hard => {
                    return Err(format!(
                        "{option}: {v:?}: the soft limit {soft} is above the hard limit {hard}"
                    ));
                }
                Some(opt) => opt,
                None => {
                    return Err(format!(
                        "{option}: {v:?} is not NAME=SOFT[:HARD] (NOFILE=1024:4096, CORE=0)"
                    ));
                }
            }
        }
        _ => HardenOpt::KeepFd(fd(p)?),
    })
}

/// The largest seccomp program the kernel takes: `BPF_MAXINSNS` instructions of 8 bytes.
const MAX_SECCOMP_BYTES: u64 = 4096 * 8;

/// Why reading the seccomp programs stopped.
#[derive(Debug, PartialEq)]
enum ReadStop {
    /// A usage error: the message.
    Usage(String),
    /// `--timeout` passed.
    TimedOut,
    /// This signal came.
    Signal(libc::c_int),
}

/// A duplicate of the caller's fd `fd` that shares its open file (and offset), refused when
/// `fd` is not open for reading.
fn seccomp_file(option: &str, fd: i32) -> Result<std::fs::File, String> {
    let file = signals::status_file(fd)
        .map_err(|e| format!("{option} {fd}: cannot read the seccomp program: {e}"))?;
    let flags = rustix::fs::fcntl_getfl(&file).unwrap_or(rustix::fs::OFlags::RDONLY);
    if flags & rustix::fs::OFlags::RWMODE == rustix::fs::OFlags::WRONLY {
        return Err(format!(
            "{option} {fd}: cannot read the seccomp program: fd {fd} is not open for reading"
        ));
    }
    Ok(file)
}

/// Reads each `--seccomp`/`--add-seccomp-fd` program from the caller's fd, as bubblewrap does:
/// from the fd itself (a pipe, a socket, a file from its current offset), to its end, and at
/// most [`MAX_SECCOMP_BYTES`] of it. The fd stays open. (Reopening `/proc/self/fd/N` instead
/// fails for a socket, ignores a file's offset, and on the write end of a pipe opens a reader
/// that waits for nscell itself to write.) A writer that never closes the fd is a setup step
/// that blocks: `--timeout` bounds it, and a signal on `abort` (a signalfd) ends it, as for
/// the library's setup steps.
fn read_seccomp_programs(
    opts: &mut [HardenOpt],
    deadline: Option<std::time::Instant>,
    abort: Option<&std::os::fd::OwnedFd>,
) -> Result<(), ReadStop> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    for opt in opts {
        let HardenOpt::Seccomp(fd, bytes, replace) = opt else { continue };
        let option = if *replace { "--seccomp" } else { "--add-seccomp-fd" };
        let file = seccomp_file(option, *fd).map_err(ReadStop::Usage)?;
        let cannot = |e: rustix::io::Errno| {
            ReadStop::Usage(format!("{option} {fd}: cannot read the seccomp program: {e}"))
        };
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return Err(ReadStop::TimedOut);
            }
            let timeout = left
                .map(|w| Timespec { tv_sec: w.as_secs() as i64, tv_nsec: w.subsec_nanos() as i64 });
            let mut fds = vec![PollFd::new(&file, PollFlags::IN)];
            if let Some(abort) = abort {
                fds.push(PollFd::new(abort, PollFlags::IN));
            }
            match poll(&mut fds, timeout.as_ref()) {
                Ok(0) | Err(rustix::io::Errno::INTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(cannot(e)),
            }
            if fds.get(1).is_some_and(|f| !f.revents().is_empty()) {
                let sig = abort.and_then(signals::take_signal).unwrap_or(libc::SIGTERM);
                return Err(ReadStop::Signal(sig));
            }
            match rustix::io::read(&file, &mut buf) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
                Err(e) => return Err(cannot(e)),
            }
            if bytes.len() as u64 > MAX_SECCOMP_BYTES {
                return Err(ReadStop::Usage(format!(
                    "{option} {fd}: the seccomp program is longer than {MAX_SECCOMP_BYTES} bytes \
                     (4096 instructions, the kernel's limit)"
                )));
            }
        }
    }
    Ok(())
}

fn rlimit(v: &str) -> Option<HardenOpt> {
    let (name, values) = v.split_once('=')?;
    let limit = |s: &str| match s {
        "unlimited" | "infinity" => Some(rlimit::INFINITY),
        _ => s.parse().ok(),
    };
    let (soft, hard) = match values.split_once(':') {
        Some((s, h)) => (limit(s)?, limit(h)?),
        None => (limit(values)?, limit(values)?),
    };
    Some(HardenOpt::Rlimit(Resource::parse(name)?, soft, hard))
}

fn apply_harden(sb: &mut Sandbox, opts: &[HardenOpt]) {
    for opt in opts {
        match opt {
            HardenOpt::CapDrop(c) => sb.drop_capabilities(*c),
            HardenOpt::CapAdd(c) => sb.add_capabilities(*c),
            HardenOpt::Seccomp(_, bytes, replace) => {
                if *replace {
                    sb.default_seccomp(false);
                }
                sb.seccomp_program(bytes)
            }
            HardenOpt::NoDefaultSeccomp => sb.default_seccomp(false),
            HardenOpt::DenyIoUring => sb.deny_io_uring(true),
            HardenOpt::DisableUserns => sb.allow_nested_userns(false),
            HardenOpt::KeepSessionKeyring => sb.new_session_keyring(false),
            HardenOpt::Landlock(path, access) => sb.landlock_path(path, *access),
            HardenOpt::LandlockTcp(true, port) => sb.landlock_tcp_bind(port.as_slice()),
            HardenOpt::LandlockTcp(false, port) => sb.landlock_tcp_connect(port.as_slice()),
            HardenOpt::LandlockRequired => {
                sb.landlock_compat_level(landlock::CompatLevel::HardRequirement)
            }
            HardenOpt::Rlimit(r, soft, hard) => sb.rlimit(*r, *soft, *hard),
            // `check_fds` has checked that the fd is open: the sandbox gets a duplicate, put at
            // the same number in the program.
            HardenOpt::KeepFd(fd) => match signals::status_file(*fd) {
                Ok(file) => sb.map_fd(file, *fd),
                Err(_) => &mut *sb,
            },
        };
    }
}

/// nscell's exit status for a sandbox that could not run the program.
fn error_status(e: &Error) -> i32 {
    match e {
        Error::Exec { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            EXIT_NOT_FOUND
        }
        Error::Exec { .. } => EXIT_CANNOT_EXECUTE,
        // A value the library refused before anything was spawned: the command line is wrong.
        Error::InvalidInput(_) => EXIT_USAGE,
        _ => EXIT_SETUP,
    }
}

/// nscell's exit status for the program's: its code, or 128+N for signal N.
fn exit_status(status: std::process::ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => EXIT_SETUP,
    }
}

/// The first JSON line of `--json-status-fd`: the pid and each namespace of the program that is
/// not nscell's own (the user namespace included when one was added implicitly). A namespace
/// whose link can no longer be read (the program already ended) is left out.
fn start_record(pid: u32) -> String {
    let mut line = format!("{{\"child-pid\": {pid}");
    for ns in Namespaces::all().iter() {
        let Some(name) = ns.proc_name() else { continue };
        let inode =
            |who: &str| std::fs::metadata(format!("/proc/{who}/ns/{name}")).map(|m| m.ino());
        if let (Ok(theirs), Ok(ours)) = (inode(&pid.to_string()), inode("self")) {
            if theirs != ours {
                line.push_str(&format!(", \"{name}-namespace\": {theirs}"));
            }
        }
    }
    line.push_str("}\n");
    line
}

/// The kernel's limit on a hostname or domain name (`__NEW_UTS_LEN`).
const MAX_UTS_NAME: usize = 64;

/// Checks what the options ask for together, before anything is opened or spawned, so a value
/// that cannot work is a usage error naming its option (the library would refuse it too, in
/// its own terms). `root`: nscell runs as host root (no user namespace is added implicitly).
fn check(cli: &Cli, root: bool) -> Result<(), String> {
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

/// Checks that every fd named on the command line is open, and that an fd to read a file's
/// contents from is not a directory. `Err` is one line for stderr.
fn check_fds(cli: &Cli) -> Result<(), String> {
    let fs = cli.fs.iter().filter_map(|op| match op {
        FsOp::File { fd, .. } => Some(("--file", *fd)),
        _ => None,
    });
    let keep = cli.harden.iter().filter_map(|h| match h {
        HardenOpt::KeepFd(fd) => Some(("--keep-fd", *fd)),
        _ => None,
    });
    for (option, fd) in fs.chain(keep) {
        let file = signals::status_file(fd).map_err(|e| format!("{option} {fd}: {e}"))?;
        if option != "--file" {
            continue;
        }
        let why = if file.metadata().is_ok_and(|m| m.is_dir()) {
            "is a directory"
        } else if !signals::readable(&file) {
            "is not open for reading"
        } else {
            continue;
        };
        return Err(format!(
            "--file {fd}: fd {fd} {why} (--file reads a file, a pipe or a socket)"
        ));
    }
    Ok(())
}

fn main() {
    std::process::exit(run(std::env::args_os().skip(1)));
}

fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let start = std::time::Instant::now();
    let mut cli = match parse(args) {
        Ok(Action::Run(cli)) => cli,
        Ok(Action::Help) => {
            print!("{HELP}");
            return 0;
        }
        Ok(Action::Version) => {
            println!("nscell {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        Ok(Action::Check) => {
            let support = Sandbox::check();
            println!("{support}");
            return if support.default_works() { 0 } else { 1 };
        }
        Err(msg) => {
            eprintln!("nscell: {msg} (see nscell --help)");
            return EXIT_USAGE;
        }
    };
    let json = match cli.json_status_fd.map(signals::status_file).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("nscell: --json-status-fd {}: {e}", cli.json_status_fd.unwrap_or(-1));
            return EXIT_USAGE;
        }
    };

    if let Err(msg) = check(&cli, rustix::process::geteuid().is_root()) {
        eprintln!("nscell: {msg} (see nscell --help)");
        return EXIT_USAGE;
    }
    if let Err(msg) = check_fds(&cli) {
        eprintln!("nscell: {msg}");
        return EXIT_USAGE;
    }

    // A terminal on stdin: the command gets a pty of its own, relayed to it; unless it is to
    // share this terminal.
    let pty = cli.pty.unwrap_or_else(|| {
        cli.new_session != Some(false) && rustix::termios::isatty(rustix::stdio::stdin())
    });
    // Before the program exists, so a signal that comes early waits for it instead of ending
    // nscell and leaving the program behind.
    signals::block(!pty && cli.new_session == Some(false));
    // A signal that comes while the sandbox is being set up ends the setup (a step can block:
    // --file reads its fd to the end); one that comes later is passed on to the program.
    let abort = signals::signalfd().ok();
    let deadline = cli.timeout.and_then(|t| start.checked_add(t));
    match read_seccomp_programs(&mut cli.harden, deadline, abort.as_ref()) {
        Ok(()) => {}
        Err(ReadStop::Usage(msg)) => {
            eprintln!("nscell: {msg} (see nscell --help)");
            return EXIT_USAGE;
        }
        Err(ReadStop::TimedOut) => {
            eprintln!(
                "nscell: --timeout passed while reading a seccomp program: its fd was never \
                 closed by its writer"
            );
            return EXIT_TIMEOUT;
        }
        Err(ReadStop::Signal(sig)) => return 128 + sig,
    }
    // The rest of --timeout is the sandbox's.
    cli.timeout = cli.timeout.map(|t| t.saturating_sub(start.elapsed()));
    let mut sb = sandbox(&cli);
    sb.pty(pty);
    if let Some(fd) = abort.as_ref().and_then(|fd| fd.try_clone().ok()) {
        sb.abort_setup_on(fd);
    }
    let mut child = match sb.spawn() {
        Ok(child) => child,
        Err(Error::SetupInterrupted) => {
            // As if the signal had ended nscell: the program never ran.
            let sig = abort.as_ref().and_then(signals::take_signal).unwrap_or(libc::SIGTERM);
            return 128 + sig;
        }
        // Whatever `check` did not catch, the library's sentence names the value.
        Err(Error::InvalidInput(msg)) => {
            eprintln!("nscell: {msg} (see nscell --help)");
            return EXIT_USAGE;
        }
        Err(e) => {
            eprintln!("nscell: {e}");
            return error_status(&e);
        }
    };
    // Only a command in nscell's own session gets the terminal's Ctrl-C itself.
    let shares_terminal = !pty && cli.new_session == Some(false);
    // From a thread of its own: a reader that does not read (a full pipe) must not keep nscell
    // from enforcing --timeout and passing signals on while the program runs. A reader that
    // went away does not stop the program either.
    let json = json.map(|mut f| {
        let record = start_record(child.id());
        std::thread::spawn(move || {
            let _ = f.write_all(record.as_bytes());
            f
        })
    });
    let ended = if pty {
        // The relay has a loop of its own; the signals are passed on from a thread beside it.
        if let Err(e) = signals::forward(&child) {
            eprintln!("nscell: warning: signals will not be passed on to the program: {e}");
        }
        nscell::pty::relay(&mut child)
    } else {
        // As the library does: a deadline the clock cannot represent is never reached.
        let deadline = cli.timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        signals::wait_forwarding(&mut child, shares_terminal, deadline)
    };
    let code = match ended {
        Ok(info) if info.timed_out => {
            if info.timed_out_in_setup {
                eprintln!(
                    "nscell: the sandbox was still being set up when --timeout passed: a setup \
                     step blocked (a --file whose input never ends, say)"
                );
            }
            EXIT_TIMEOUT
        }
        Ok(info) => exit_status(info.status),
        Err(e) => {
            eprintln!("nscell: {e}");
            EXIT_SETUP
        }
    };
    // After the start record, once its reader has taken that.
    if let Some(mut f) = json.and_then(|writer| writer.join().ok()) {
        let _ = f.write_all(format!("{{\"exit-code\": {code}}}\n").as_bytes());
    }
    code
}

/// Passing SIGINT, SIGTERM and SIGHUP on to the program; the only raw calls of the binary.
#[allow(unsafe_code)]
mod signals {
    use std::fs::File;
    use std::io;
    use std::mem::MaybeUninit;
    use std::os::fd::{FromRawFd, OwnedFd, RawFd};

    const FORWARDED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

    fn forwarded_set() -> libc::sigset_t {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set it is given; sigaddset only fails for invalid
        // signal numbers, and these are valid.
        unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            for sig in FORWARDED {
                libc::sigaddset(set.as_mut_ptr(), sig);
            }
            set.assume_init()
        }
    }

    /// The forwarded signals, and the two a sandbox sharing the terminal needs: `SIGCHLD` (its
    /// program stopped) and `SIGCONT` (nscell was continued).
    fn job_control_set() -> libc::sigset_t {
        let mut set = forwarded_set();
        // SAFETY: an initialised set and valid signal numbers.
        unsafe {
            libc::sigaddset(&mut set, libc::SIGCHLD);
            libc::sigaddset(&mut set, libc::SIGCONT);
        }
        set
    }

    /// When the sandbox that shares nscell's terminal has stopped: nscell stops too, with the
    /// same signal (`SIGSTOP` if nscell ignores that one), so the shell that started it sees
    /// its job stop and takes the terminal (which the library has given back to nscell's
    /// group); once continued (`fg`, `bg`), it continues the sandbox, handing it the terminal
    /// when nscell has it. What `sudo` does for a command in a process group of its own.
    fn follow_stop(child: &mut nscell::Child) -> Result<(), nscell::Error> {
        let Some(sig) = child.stopped()? else { return Ok(()) };
        let mut old = MaybeUninit::<libc::sigaction>::zeroed();
        // SAFETY: a query only (no new action), into room for one sigaction.
        let queried = unsafe { libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) } == 0;
        // SAFETY: zero-initialised, and filled in by the kernel when the query worked.
        let default = queried && unsafe { old.assume_init() }.sa_sigaction == libc::SIG_DFL;
        let sig = if default { sig } else { libc::SIGSTOP };
        // SAFETY: a signal to this process; it returns once the process has been continued.
        unsafe { libc::kill(libc::getpid(), sig) };
        child.resume()
    }

    /// Blocks the forwarded signals in the calling thread (main, before any other thread is
    /// started, so every later thread inherits the mask). They stay pending until the
    /// forwarding thread takes them. The program starts with an empty mask: the library
    /// clears it before `execve`. With `job_control`, `SIGCHLD` and `SIGCONT` too, for
    /// [`wait_forwarding`]'s signalfd.
    pub fn block(job_control: bool) {
        let mut set = if job_control { job_control_set() } else { forwarded_set() };
        // SIGWINCH too: the pty relay then reads it from a signalfd instead of polling the
        // window size. (Not forwarded: the relay passes the size on, which signals the command.)
        // SAFETY: an initialised set and a valid signal number.
        unsafe { libc::sigaddset(&mut set, libc::SIGWINCH) };
        // SAFETY: a valid, initialised set; the old mask is not wanted (null).
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    }

    /// A signalfd of the forwarded signals (blocked by [`block`]), non-blocking: it polls
    /// readable while one is pending.
    pub fn signalfd() -> io::Result<OwnedFd> {
        signalfd_of(&forwarded_set())
    }

    /// A non-blocking signalfd of the (blocked) signals of `set`.
    fn signalfd_of(set: &libc::sigset_t) -> io::Result<OwnedFd> {
        // SAFETY: a valid, initialised set; -1 asks for a new fd.
        let raw = unsafe { libc::signalfd(-1, set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd just created this fd and nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(raw) })
    }

    /// Takes the next pending signal from a [`signalfd`]: its number.
    pub fn take_signal(fd: &OwnedFd) -> Option<libc::c_int> {
        use std::os::fd::AsFd;
        // struct signalfd_siginfo: u32 ssi_signo, then more; 128 bytes in all.
        let mut info = [0u8; 128];
        match rustix::io::read(fd.as_fd(), &mut info) {
            Ok(128) => Some(i32::from_ne_bytes([info[0], info[1], info[2], info[3]])),
            _ => None,
        }
    }

    /// Starts a thread that takes each forwarded signal with `sigwaitinfo` and sends it to the
    /// program with `pidfd_send_signal` (on a duplicate of the child's pidfd, which names the
    /// program and no other process even after it has been reaped).
    pub fn forward(child: &nscell::Child) -> io::Result<()> {
        let pidfd = rustix::io::fcntl_dupfd_cloexec(child.pidfd(), 3)?;
        std::thread::Builder::new().name("signals".into()).spawn(move || {
            let set = forwarded_set();
            loop {
                // SAFETY: a valid set of blocked signals; the siginfo is not wanted (null).
                let sig = unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) };
                // A terminal's Ctrl-C reaches nscell only when nscell's process group is the
                // foreground one, and the sandbox never is in that group (a session of its own,
                // or a group of its own when it shares the terminal): it did not get it.
                let sig = match sig {
                    libc::SIGINT => rustix::process::Signal::INT,
                    libc::SIGTERM => rustix::process::Signal::TERM,
                    libc::SIGHUP => rustix::process::Signal::HUP,
                    _ => continue, // EINTR
                };
                // ESRCH: the program has ended; nscell is about to exit too.
                let _ = rustix::process::pidfd_send_signal(&pidfd, sig);
            }
        })?;
        Ok(())
    }

    /// Waits for the program while passing the forwarded signals on to it, from this thread: a
    /// signalfd of the (blocked) signals is polled beside the program's pidfd. Costs no thread
    /// (a forwarding thread was a measurable share of a short sandbox's run time). Falls back to
    /// the thread when no signalfd can be had.
    pub fn wait_forwarding(
        child: &mut nscell::Child,
        shares_terminal: bool,
        deadline: Option<std::time::Instant>,
    ) -> Result<nscell::WaitInfo, nscell::Error> {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let set = if shares_terminal { job_control_set() } else { forwarded_set() };
        let Ok(sigfd) = signalfd_of(&set) else {
            if let Err(e) = forward(child) {
                eprintln!("nscell: warning: signals will not be passed on to the program: {e}");
            }
            return child.wait_info();
        };
        // Sharing the terminal: how often to look whether a shell's `fg` made nscell's group
        // the foreground one (it sends no SIGCONT to a running job), to pass the terminal on.
        let look = shares_terminal.then_some(std::time::Duration::from_millis(200));
        loop {
            if shares_terminal {
                child.take_foreground();
            }
            let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
            let wait = match (left, look) {
                (Some(left), Some(look)) => Some(left.min(look)),
                (left, look) => left.or(look),
            };
            let timeout = wait
                .map(|w| Timespec { tv_sec: w.as_secs() as i64, tv_nsec: w.subsec_nanos() as i64 });
            let (exited, signalled, stop_event) = {
                let pidfd = child.pidfd();
                let mut fds =
                    vec![PollFd::new(&pidfd, PollFlags::IN), PollFd::new(&sigfd, PollFlags::IN)];
                // With an init, its program's stops come through a pipe (see `follow_stop`).
                let stops = child.stop_events();
                if let Some(fd) = &stops {
                    fds.push(PollFd::new(fd, PollFlags::IN));
                }
                match poll(&mut fds, timeout.as_ref()) {
                    // The deadline: wait_info enforces it (kills the sandbox, says timed out).
                    Ok(0) if deadline.is_some_and(|d| std::time::Instant::now() >= d) => break,
                    Ok(0) => continue,
                    Ok(_) => {
                        let ready = |i: usize| fds.get(i).is_some_and(|f| !f.revents().is_empty());
                        (ready(0), ready(1), ready(2))
                    }
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(_) => break,
                }
            };
            if stop_event {
                follow_stop(child)?;
            }
            if signalled {
                if let Some(signo) = take_signal(&sigfd) {
                    if signo == libc::SIGCHLD {
                        // The program (nscell's child without an init) may have stopped.
                        follow_stop(child)?;
                    } else if signo == libc::SIGCONT {
                        // Continued (a shell's `fg` or `bg` of nscell's job): so is the sandbox.
                        child.resume()?;
                    } else {
                        // See `forward`: a terminal's Ctrl-C that reached nscell did not reach
                        // the sandbox.
                        let _ = child.signal(signo);
                    }
                }
            }
            if exited {
                break;
            }
        }
        child.wait_info()
    }

    /// Whether `file` is open for reading (not write-only, not `O_PATH`).
    pub fn readable(file: &File) -> bool {
        use std::os::fd::AsRawFd;
        // SAFETY: F_GETFL reads no memory; the fd is open for as long as `file` lives.
        let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
        flags >= 0 && flags & libc::O_ACCMODE != libc::O_WRONLY && flags & libc::O_PATH == 0
    }

    /// A CLOEXEC duplicate of `fd` (the same open file, so its offset and append mode are
    /// shared): to write the JSON status to, to read a `--file` or a seccomp program from.
    /// Dropping it leaves `fd` open. Fails with `EBADF` when `fd` is not open.
    pub fn status_file(fd: RawFd) -> io::Result<File> {
        // SAFETY: F_DUPFD_CLOEXEC reads no memory; it fails for a closed or invalid fd.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if dup < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `dup` was just created by fcntl and nothing else owns it.
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(dup) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    pub(super) fn cli(list: &[&str]) -> Cli {
        match parse(args(list)) {
            Ok(Action::Run(cli)) => *cli,
            other => panic!("{list:?} parsed to {other:?}"),
        }
    }

    #[test]
    fn no_options_is_the_default_sandbox_running_bash() {
        let c = cli(&[]);
        assert_eq!(c, Cli::default());
        let sb = sandbox(&c);
        assert_eq!(sb.get_program(), DEFAULT_COMMAND);
        assert_eq!(sb.get_namespaces(), Namespaces::DEFAULT);
    }

    #[test]
    fn unshare_options_replace_the_default_set() {
        assert_eq!(cli(&["--unshare-net"]).namespaces, Some(Namespaces::NET));
        let c = cli(&["--unshare-user", "--unshare-pid", "--unshare-cgroup", "--unshare-time"]);
        assert_eq!(
            c.namespaces,
            Some(Namespaces::USER | Namespaces::PID | Namespaces::CGROUP | Namespaces::TIME)
        );
        let c = cli(&["--unshare-mount", "--unshare-uts", "--unshare-ipc", "--unshare-net"]);
        assert_eq!(
            c.namespaces,
            Some(Namespaces::MOUNT | Namespaces::UTS | Namespaces::IPC | Namespaces::NET)
        );
        assert_eq!(cli(&["--unshare-all"]).namespaces, Some(Namespaces::all()));
        assert_eq!(sandbox(&cli(&["--unshare-uts"])).get_namespaces(), Namespaces::UTS);
    }

    #[test]
    fn the_command_starts_at_the_first_non_option_and_is_not_parsed() {
        let c = cli(&["--hostname", "h", "echo", "--uid", "x", "--", "-V"]);
        assert_eq!(c.hostname.as_deref(), Some(OsStr::new("h")));
        assert_eq!(c.uid, None);
        assert_eq!(c.command, args(&["echo", "--uid", "x", "--", "-V"]));
        let c = cli(&["--", "--help", "--"]);
        assert_eq!(c.command, args(&["--help", "--"]));
        assert_eq!(sandbox(&cli(&["--", "-x"])).get_program(), "-x");
    }

    #[test]
    fn values_ids_maps_and_environment() {
        let c = cli(&[
            "--uid=5",
            "--gid",
            "6",
            "--map-users",
            "1:100000:10",
            "--map-groups",
            "2:200000:20",
            "--map-users",
            "20:300000:1",
            "--setenv",
            "A",
            "1",
            "--unsetenv",
            "B",
            "--clearenv",
            "--chdir",
            "/tmp",
            "--domainname",
            "d",
            "--no-proc",
            "--json-status-fd",
            "3",
        ]);
        assert_eq!((c.uid, c.gid), (Some(5), Some(6)));
        assert_eq!(c.uid_maps, [IdMap::new(1, 100000, 10), IdMap::new(20, 300000, 1)]);
        assert_eq!(c.gid_maps, [IdMap::new(2, 200000, 20)]);
        assert_eq!(
            c.env,
            [
                EnvChange::Set("A".into(), "1".into()),
                EnvChange::Unset("B".into()),
                EnvChange::Clear
            ]
        );
        assert_eq!(c.chdir, Some(PathBuf::from("/tmp")));
        assert_eq!(c.domainname.as_deref(), Some(OsStr::new("d")));
        assert!(c.no_proc);
        assert_eq!(c.json_status_fd, Some(3));
        assert!(c.command.is_empty());
    }

    #[test]
    fn help_version_and_check() {
        assert_eq!(parse(args(&["-h"])), Ok(Action::Help));
        assert_eq!(parse(args(&["--unshare-net", "--help"])), Ok(Action::Help));
        assert_eq!(parse(args(&["-V"])), Ok(Action::Version));
        assert_eq!(parse(args(&["--version"])), Ok(Action::Version));
        assert_eq!(parse(args(&["--check"])), Ok(Action::Check));
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        let err = |list: &[&str]| parse(args(list)).unwrap_err();
        assert_eq!(err(&["--bogus"]), "invalid option '--bogus'");
        assert_eq!(err(&["-x"]), "invalid option '-x'");
        assert_eq!(err(&["--hostname"]), "missing argument for option '--hostname'");
        assert!(err(&["--setenv", "A"]).contains("missing VALUE"));
        assert!(err(&["--uid", "root"]).starts_with("--uid: \"root\" is not a number"));
        assert!(err(&["--uid", "-1"]).starts_with("--uid: "));
        assert!(err(&["--map-users", "0:1000"]).contains("INSIDE:OUTSIDE:COUNT"));
        assert!(err(&["--map-groups", "0:1000:x"]).contains("INSIDE:OUTSIDE:COUNT"));
        assert!(err(&["--map-groups", "0:1:2:3"]).contains("INSIDE:OUTSIDE:COUNT"));
        assert!(err(&["--json-status-fd", "4294967295"]).contains("not a file descriptor"));
        assert_eq!(err(&["--no-proc=yes"]), "unexpected argument for option '--no-proc': \"yes\"");
    }

    #[test]
    fn help_names_every_option() {
        for option in [
            "--unshare-user",
            "--unshare-pid",
            "--unshare-mount",
            "--unshare-uts",
            "--unshare-ipc",
            "--unshare-net",
            "--unshare-cgroup",
            "--unshare-time",
            "--unshare-all",
            "--uid",
            "--gid",
            "--map-users",
            "--map-groups",
            "--hostname",
            "--domainname",
            "--chdir",
            "--setenv",
            "--unsetenv",
            "--clearenv",
            "--no-proc",
            "--json-status-fd",
            "--init",
            "--die-with-parent",
            "--new-session",
            "--share-terminal",
            "--keep-session-keyring",
            "--timeout",
            "--pty",
            "--no-pty",
            "--check",
            "--help",
            "--version",
        ] {
            assert!(HELP.contains(option), "--help does not mention {option}");
        }
    }

    #[test]
    fn errors_map_like_a_shell() {
        // Error's struct variants are non_exhaustive: real errors, from real spawns.
        let spawn = |program: &std::path::Path, cwd: &str| {
            Sandbox::new(program).namespaces(Namespaces::empty()).current_dir(cwd).spawn()
        };
        let exec = |program: &str| {
            let e = spawn(program.as_ref(), "/").unwrap_err();
            assert!(matches!(e, Error::Exec { .. }), "{e}");
            e
        };
        assert_eq!(error_status(&exec("/nonexistent/p")), 127);
        // EACCES: not a regular file.
        assert_eq!(error_status(&exec("/dev/null")), 126);
        let noexec = std::env::temp_dir().join(format!("nscell-noexec-{}", std::process::id()));
        std::fs::write(&noexec, [0u8; 16]).unwrap();
        std::fs::set_permissions(&noexec, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let e = spawn(&noexec, "/").unwrap_err();
        let _ = std::fs::remove_file(&noexec);
        assert!(matches!(e, Error::Exec { .. }), "{e}");
        assert_eq!(error_status(&e), 126);
        // A value refused before spawning is a bad command line, not a failed setup.
        assert_eq!(error_status(&Error::InvalidInput("bad".into())), 2);
        let setup = spawn("/bin/true".as_ref(), "/nonexistent-directory").unwrap_err();
        assert!(matches!(setup, Error::Setup { .. }), "{setup}");
        assert_eq!(error_status(&setup), 125);
    }

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
        let rl = parse(args(&["--rlimit", "NOFILE=10:5"])).unwrap_err();
        assert!(rl.contains("--rlimit: \"NOFILE=10:5\": the soft limit 10 is above"), "{rl}");
    }

    #[test]
    fn lifecycle_options() {
        let c = cli(&["--init", "--die-with-parent", "--timeout", "1.5", "--no-pty", "true"]);
        assert!(c.init && c.die_with_parent);
        assert_eq!(c.timeout, Some(std::time::Duration::from_millis(1500)));
        assert_eq!(c.pty, Some(false));
        assert_eq!(c.new_session, None);
        assert_eq!(cli(&["--pty"]).pty, Some(true));
        assert_eq!(cli(&["--new-session"]).new_session, Some(true));
        assert_eq!(cli(&["--share-terminal"]).new_session, Some(false));
        let err = parse(args(&["--timeout", "soon"])).unwrap_err();
        assert!(err.contains("not a number of seconds"), "{err}");
        assert!(parse(args(&["--timeout", "-1"])).is_err());
    }

    #[test]
    fn statuses_map_like_a_shell() {
        use std::process::ExitStatus;
        assert_eq!(exit_status(ExitStatus::from_raw(42 << 8)), 42);
        assert_eq!(exit_status(ExitStatus::from_raw(libc::SIGTERM)), 143);
        assert_eq!(exit_status(ExitStatus::from_raw(libc::SIGSEGV | 0x80)), 128 + 11);
    }

    #[test]
    fn filesystem_options_in_order_with_perms_and_size() {
        let c = cli(&[
            "--ro-bind",
            "/usr",
            "/usr",
            "--bind-try",
            "/a",
            "/b",
            "--symlink",
            "usr/bin",
            "/bin",
            "--size",
            "1024",
            "--perms",
            "700",
            "--tmpfs",
            "/tmp",
            "--tmpfs",
            "/t2",
            "--perms",
            "0755",
            "--dir",
            "/d",
            "--file",
            "5",
            "/f",
            "--chmod",
            "1777",
            "/tmp",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--mqueue",
            "/dev/mqueue",
            "--remount-ro",
            "/",
            "--rootfs",
            "/img",
            "sh",
        ]);
        let o = |s: &str| OsString::from(s);
        assert_eq!(
            c.fs,
            [
                FsOp::Bind("--ro-bind", o("/usr"), o("/usr")),
                FsOp::Bind("--bind-try", o("/a"), o("/b")),
                FsOp::Symlink { target: o("usr/bin"), dest: o("/bin") },
                FsOp::Tmpfs { dest: o("/tmp"), size: Some(1024), mode: Some(0o700) },
                FsOp::Tmpfs { dest: o("/t2"), size: None, mode: None },
                FsOp::Dir { dest: o("/d"), mode: Some(0o755) },
                FsOp::File { fd: 5, dest: o("/f"), mode: None },
                FsOp::Chmod { mode: 0o1777, path: o("/tmp") },
                FsOp::Proc(o("/proc")),
                FsOp::Dev(o("/dev")),
                FsOp::Mqueue(o("/dev/mqueue")),
                FsOp::RemountRo(o("/")),
                FsOp::Rootfs(o("/img")),
            ]
        );
        assert_eq!(c.command, [o("sh")]);
        // Naming namespaces without a mount namespace still gets one for the new root.
        let c = cli(&["--unshare-pid", "--tmpfs", "/t"]);
        assert!(sandbox(&c).get_namespaces().contains(Namespaces::MOUNT));

        for (line, msg) in [
            (&["--bind", "/a"][..], "missing argument for option '--bind' (--bind SRC DEST)"),
            (&["--perms", "9"], "--perms: \"9\" is not an octal mode"),
            (&["--perms", "700"], "--perms must be followed by"),
            (&["--size", "1k", "--tmpfs", "/t"], "--size: \"1k\" is not a number"),
            (&["--size", "1"], "--size must be followed by --tmpfs"),
            (&["--size", "0", "--tmpfs", "/t"], "--size: 0 is not a size limit"),
            (&["--size", "-1", "--tmpfs", "/t"], "--size: \"-1\" is not a number"),
            (&["--size", "18446744073709551616", "--tmpfs", "/t"], "is not a number of bytes"),
            (&["--file", "x", "/f"], "--file: \"x\" is not a file descriptor"),
            (&["--chmod", "1", "/a", "--chmod", "77777", "/b"], "not an octal mode"),
        ] {
            let err = parse(args(line)).expect_err(msg);
            assert!(err.contains(msg), "{line:?}: {err}");
        }
        for option in [
            "--bind",
            "--bind-try",
            "--ro-bind",
            "--ro-bind-try",
            "--dev-bind",
            "--dev-bind-try",
            "--remount-ro",
            "--tmpfs",
            "--proc",
            "--dev",
            "--mqueue",
            "--dir",
            "--symlink",
            "--file",
            "--chmod",
            "--rootfs",
            "--perms",
            "--size",
        ] {
            assert!(HELP.contains(option), "--help does not mention {option}");
        }
    }
}

/// Tests of the hardening options, apart from `tests` so the two grow without touching.
#[cfg(test)]
mod harden_tests {
    use super::tests::{args, cli};
    use super::*;

    #[test]
    fn hardening_options_parse_in_order() {
        let c = cli(&[
            "--cap-drop",
            "ALL",
            "--cap-add=net_admin",
            "--no-default-seccomp",
            "--disable-userns",
            "--keep-session-keyring",
            "--landlock-ro",
            "/usr",
            "--landlock-rw",
            "/tmp",
            "--landlock-exec",
            "/bin",
            "--rlimit",
            "NOFILE=64:128",
            "--rlimit",
            "core=0",
            "--rlimit",
            "AS=unlimited",
            "--keep-fd",
            "5",
            "--deny-io-uring",
            "--landlock-tcp-bind",
            "8080",
            "--landlock-tcp-connect=443",
            "--landlock-tcp-connect",
            "none",
            "--landlock-required",
            "true",
        ]);
        assert_eq!(
            c.harden,
            [
                HardenOpt::CapDrop(Capabilities::ALL),
                HardenOpt::CapAdd(Capabilities::NET_ADMIN),
                HardenOpt::NoDefaultSeccomp,
                HardenOpt::DisableUserns,
                HardenOpt::KeepSessionKeyring,
                HardenOpt::Landlock("/usr".into(), LandlockAccess::ReadOnly),
                HardenOpt::Landlock("/tmp".into(), LandlockAccess::ReadWrite),
                HardenOpt::Landlock("/bin".into(), LandlockAccess::Execute),
                HardenOpt::Rlimit(Resource::Nofile, 64, 128),
                HardenOpt::Rlimit(Resource::Core, 0, 0),
                HardenOpt::Rlimit(Resource::As, u64::MAX, u64::MAX),
                HardenOpt::KeepFd(5),
                HardenOpt::DenyIoUring,
                HardenOpt::LandlockTcp(true, Some(8080)),
                HardenOpt::LandlockTcp(false, Some(443)),
                HardenOpt::LandlockTcp(false, None),
                HardenOpt::LandlockRequired,
            ]
        );
        let err = |list: &[&str]| match parse(args(list)) {
            Err(e) => e,
            other => panic!("{list:?} parsed: {other:?}"),
        };
        assert!(err(&["--cap-drop", "CAP_NOPE"]).contains("not a capability"));
        assert!(err(&["--rlimit", "NOFILE"]).contains("NAME=SOFT[:HARD]"));
        assert!(err(&["--rlimit", "BOGUS=1"]).contains("NAME=SOFT[:HARD]"));
        assert!(err(&["--seccomp", "999999"]).contains("cannot read the seccomp program"));
        for bad in ["65536", "-1", "http", ""] {
            let e = err(&["--landlock-tcp-connect", bad]);
            assert!(e.contains("is not a port from 0 to 65535"), "{bad}: {e}");
        }
        assert!(err(&["--landlock-tcp-bind"]).contains("missing argument"));
        for option in HARDEN_OPTIONS {
            assert!(HELP.contains(&format!("--{option}")), "--help does not mention --{option}");
        }
    }
}
