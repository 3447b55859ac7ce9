//! The options table: one [`Opt`] per option, with its value names, its help text and the
//! handler that parses it. [`help`] renders `--help` from the table and [`parse`] dispatches
//! from it, so an option cannot be parsed without being in `--help`, nor the other way round.
//!
//! Parsing turns the arguments into a plain [`Cli`] and does no I/O: the fds the options name
//! are claimed and read afterwards (see `fds.rs` and `inputs.rs`).

use crate::cli::{Action, Cli, EnvChange, FsOp, HardenOpt};
use nscell::{Capabilities, IdMap, LandlockAccess, Namespaces, Resource};
use std::ffi::{OsStr, OsString};
use std::fmt;

/// Why a command line could not be parsed. Its `Display` is the one line nscell prints.
#[derive(Debug)]
pub enum Error {
    /// lexopt's own: an unknown option, a missing value, a value given to an option that
    /// takes none.
    Lexopt(lexopt::Error),
    /// A value its option cannot take, or one missing from a pair: the sentence.
    Value(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Lexopt(e) => e.fmt(f),
            Error::Value(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Lexopt(e) => Some(e),
            Error::Value(_) => None,
        }
    }
}

impl From<lexopt::Error> for Error {
    fn from(e: lexopt::Error) -> Error {
        Error::Lexopt(e)
    }
}

impl From<String> for Error {
    fn from(msg: String) -> Error {
        Error::Value(msg)
    }
}

/// One option: how `--help` shows it and how it is parsed.
pub struct Opt {
    /// `--name`.
    name: &'static str,
    /// The short form (`-h`), if there is one.
    short: Option<char>,
    /// The names of its values, as `--help` shows them (`SRC DEST`); empty for a flag.
    values: &'static str,
    /// Its help, one line of the table per line.
    help: &'static str,
    /// Takes its values from the command line and records them.
    parse: fn(&mut State, &mut Values<'_>) -> Result<(), Error>,
}

/// A part of `--help`: the text before its options, the options, the text after them.
struct Section {
    head: &'static str,
    options: &'static [Opt],
    foot: &'static str,
}

/// What parsing has gathered so far.
#[derive(Default)]
struct State {
    cli: Cli,
    // --perms and --size wait for the option they apply to.
    perms: Option<u32>,
    size: Option<u64>,
    /// Set by `--help`, `--version`, `--check`: parsing ends there.
    done: Option<Action>,
}

impl State {
    fn unshare(&mut self, ns: Namespaces) -> Result<(), Error> {
        self.cli.namespaces = Some(self.cli.namespaces.unwrap_or(Namespaces::empty()) | ns);
        Ok(())
    }

    fn fs(&mut self, op: FsOp) -> Result<(), Error> {
        self.cli.fs.push(op);
        Ok(())
    }

    fn harden(&mut self, opt: HardenOpt) -> Result<(), Error> {
        self.cli.harden.push(opt);
        Ok(())
    }

    fn done(&mut self, action: Action) -> Result<(), Error> {
        self.done = Some(action);
        Ok(())
    }
}

/// The values of the option being parsed, taken from the command line as its handler asks.
struct Values<'a> {
    parser: &'a mut lexopt::Parser,
    option: &'static Opt,
}

impl Values<'_> {
    fn name(&self) -> &'static str {
        self.option.name
    }

    /// The one value.
    fn one(&mut self) -> Result<OsString, Error> {
        Ok(self.parser.value()?)
    }

    /// The two values of an option like `--bind SRC DEST`.
    fn two(&mut self) -> Result<(OsString, OsString), Error> {
        let (name, values) = (self.name(), self.option.values);
        let missing = || format!("missing argument for option '{name}' ({name} {values})");
        let a = self.parser.value().map_err(|_| missing())?;
        let b = self.parser.value().map_err(|_| missing())?;
        Ok((a, b))
    }

    /// The last value, `what`, of an option like `--setenv VAR VALUE`.
    fn last_named(&mut self, what: &str) -> Result<OsString, Error> {
        let (name, values) = (self.name(), self.option.values);
        self.parser.value().map_err(|_| {
            Error::Value(format!("missing {what} for option '{name}' ({name} {values})"))
        })
    }

    fn number(&mut self) -> Result<u32, Error> {
        let v = self.one()?;
        let name = self.name();
        Ok(parse_u32(&v)
            .ok_or_else(|| format!("{name}: {v:?} is not a number from 0 to 4294967295"))?)
    }

    fn fd(&mut self) -> Result<i32, Error> {
        let n = self.number()?;
        let name = self.name();
        Ok(i32::try_from(n).map_err(|_| format!("{name}: {n} is not a file descriptor"))?)
    }

    /// `INSIDE:OUTSIDE:COUNT`, the order of `IdMap::new` and of `/proc/PID/uid_map`.
    fn id_map(&mut self) -> Result<IdMap, Error> {
        let v = self.one()?;
        let fields: Option<Vec<u32>> =
            v.to_str().and_then(|s| s.split(':').map(|f| f.parse().ok()).collect());
        match fields.as_deref() {
            Some(&[inside, outside, count]) => Ok(IdMap::new(inside, outside, count)),
            _ => Err(format!("{}: {v:?} is not INSIDE:OUTSIDE:COUNT (three numbers)", self.name())
                .into()),
        }
    }

    fn capability(&mut self) -> Result<Capabilities, Error> {
        let v = self.one()?;
        let name = self.name();
        Ok(v.to_str().and_then(Capabilities::parse).ok_or_else(|| {
            format!("{name}: {v:?} is not a capability (CAP_NET_ADMIN, ALL, ...)")
        })?)
    }

    /// A port, or `none`.
    fn port(&mut self) -> Result<Option<u16>, Error> {
        let v = self.one()?;
        let name = self.name();
        match v.to_str() {
            Some("none") => Ok(None),
            s => Ok(Some(s.and_then(|s| s.parse::<u16>().ok()).ok_or_else(|| {
                format!("{name}: {v:?} is not a port from 0 to 65535 (or 'none')")
            })?)),
        }
    }

    fn rlimit(&mut self) -> Result<HardenOpt, Error> {
        let v = self.one()?;
        let name = self.name();
        match rlimit(v.to_str().unwrap_or("")) {
            Some(HardenOpt::Rlimit(_, soft, hard)) if soft > hard => {
                Err(format!("{name}: {v:?}: the soft limit {soft} is above the hard limit {hard}")
                    .into())
            }
            Some(opt) => Ok(opt),
            None => {
                Err(format!("{name}: {v:?} is not NAME=SOFT[:HARD] (NOFILE=1024:4096, CORE=0)")
                    .into())
            }
        }
    }

    fn bind(&mut self, s: &mut State) -> Result<(), Error> {
        let (src, dest) = self.two()?;
        s.fs(FsOp::Bind(self.name(), src, dest))
    }

    fn landlock(&mut self, s: &mut State, access: LandlockAccess) -> Result<(), Error> {
        let path = self.one()?;
        s.harden(HardenOpt::Landlock(path.into(), access))
    }
}

/// A permission mode in octal, as chmod(1) takes it.
fn octal(v: &OsStr, option: &str) -> Result<u32, Error> {
    Ok(v.to_str()
        .and_then(|s| u32::from_str_radix(s, 8).ok())
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{option}: {v:?} is not an octal mode from 0 to 7777"))?)
}

fn parse_u32(v: &OsStr) -> Option<u32> {
    v.to_str()?.parse().ok()
}

fn rlimit(v: &str) -> Option<HardenOpt> {
    let (name, values) = v.split_once('=')?;
    let limit = |s: &str| match s {
        "unlimited" | "infinity" => Some(nscell::RLIM_INFINITY),
        _ => s.parse().ok(),
    };
    let (soft, hard) = match values.split_once(':') {
        Some((s, h)) => (limit(s)?, limit(h)?),
        None => (limit(values)?, limit(values)?),
    };
    Some(HardenOpt::Rlimit(Resource::parse(name)?, soft, hard))
}

/// Shorthand for a table entry without a short form.
const fn opt(
    name: &'static str,
    values: &'static str,
    help: &'static str,
    parse: fn(&mut State, &mut Values<'_>) -> Result<(), Error>,
) -> Opt {
    Opt { name, short: None, values, help, parse }
}

/// The column where the help of an option starts.
const HELP_COLUMN: usize = 26;

static SECTIONS: &[Section] = &[
    Section {
        head: "\
Usage: nscell [OPTIONS] [--] [COMMAND [ARG...]]

Runs COMMAND (default /bin/bash) in new user, PID, mount, UTS and IPC namespaces, as root inside
(your uid and gid are mapped to 0), as PID 1, with a fresh /proc. No host root is needed.
The first argument that is not an option, or everything after --, starts the command; it and its
arguments are passed on as they are, options included.

Namespaces (naming any replaces the default set with exactly those; without root, a user
namespace mapping your own ids is added when --unshare-user is not named):
",
        options: &[
            opt("--unshare-user", "", "new user namespace: its own uids and gids", |s, _| {
                s.unshare(Namespaces::USER)
            }),
            opt(
                "--unshare-pid",
                "",
                "new PID namespace: the command is PID 1 and sees only its descendants",
                |s, _| s.unshare(Namespaces::PID),
            ),
            opt(
                "--unshare-mount",
                "",
                "new mount namespace: mounts made inside stay inside",
                |s, _| s.unshare(Namespaces::MOUNT),
            ),
            opt(
                "--unshare-uts",
                "",
                "new UTS namespace: its own hostname and domain name",
                |s, _| s.unshare(Namespaces::UTS),
            ),
            opt(
                "--unshare-ipc",
                "",
                "new IPC namespace: its own System V IPC and POSIX message queues",
                |s, _| s.unshare(Namespaces::IPC),
            ),
            opt(
                "--unshare-net",
                "",
                "new network namespace: only a loopback interface (brought up)",
                |s, _| s.unshare(Namespaces::NET),
            ),
            opt(
                "--unshare-cgroup",
                "",
                "new cgroup namespace: the current cgroup is its root",
                |s, _| s.unshare(Namespaces::CGROUP),
            ),
            opt("--unshare-time", "", "new time namespace (Linux 5.6+)", |s, _| {
                s.unshare(Namespaces::TIME)
            }),
            opt("--unshare-all", "", "all of the above", |s, _| s.unshare(Namespaces::all())),
        ],
        foot: "",
    },
    Section {
        head: "\nUser and group ids (need a user namespace):\n",
        options: &[
            opt(
                "--uid",
                "N",
                "run as uid N inside: N is mapped to your uid (default 0, root)",
                |s, v| {
                    s.cli.uid = Some(v.number()?);
                    Ok(())
                },
            ),
            opt(
                "--gid",
                "N",
                "run as gid N inside: N is mapped to your gid (default 0)",
                |s, v| {
                    s.cli.gid = Some(v.number()?);
                    Ok(())
                },
            ),
            opt(
                "--map-users",
                "IN:OUT:COUNT",
                "map COUNT uids starting at IN inside to OUT outside (repeatable; the\n\
                 order of /proc/PID/uid_map). Ids other than your own need root, or\n\
                 newuidmap and ranges in /etc/subuid",
                |s, v| {
                    s.cli.uid_maps.push(v.id_map()?);
                    Ok(())
                },
            ),
            opt(
                "--map-groups",
                "IN:OUT:COUNT",
                "the same for gids (newgidmap, /etc/subgid)",
                |s, v| {
                    s.cli.gid_maps.push(v.id_map()?);
                    Ok(())
                },
            ),
        ],
        foot: "",
    },
    Section {
        head: "\nThe command's surroundings:\n",
        options: &[
            opt("--hostname", "NAME", "set the hostname (needs a UTS namespace)", |s, v| {
                s.cli.hostname = Some(v.one()?);
                Ok(())
            }),
            opt(
                "--domainname",
                "NAME",
                "set the NIS domain name (needs a UTS namespace)",
                |s, v| {
                    s.cli.domainname = Some(v.one()?);
                    Ok(())
                },
            ),
            opt("--chdir", "DIR", "start in DIR, as seen inside", |s, v| {
                s.cli.chdir = Some(v.one()?.into());
                Ok(())
            }),
            opt("--setenv", "VAR VALUE", "set an environment variable", |s, v| {
                let var = v.one()?;
                let val = v.last_named("VALUE")?;
                s.cli.env.push(EnvChange::Set(var, val));
                Ok(())
            }),
            opt("--unsetenv", "VAR", "remove an environment variable", |s, v| {
                s.cli.env.push(EnvChange::Unset(v.one()?));
                Ok(())
            }),
            opt(
                "--clearenv",
                "",
                "start from an empty environment (--setenv still applies)",
                |s, _| {
                    s.cli.env.push(EnvChange::Clear);
                    Ok(())
                },
            ),
            opt(
                "--no-proc",
                "",
                "do not mount a fresh /proc (one is mounted when the PID and mount\n\
                 namespaces are both new)",
                |s, _| {
                    s.cli.no_proc = true;
                    Ok(())
                },
            ),
        ],
        foot: "",
    },
    Section {
        head: "
Filesystem (any of these gives the command a new root: an empty tmpfs that the options fill in
order and that becomes /, the host's root detached; nothing else is mounted in it, not even
/proc; they imply --unshare-mount):
",
        options: &[
            opt(
                "--bind",
                "SRC DEST",
                "bind-mount the host path SRC on DEST, read-write (nosuid, nodev)",
                |s, v| v.bind(s),
            ),
            opt("--bind-try", "SRC DEST", "the same, skipped when SRC does not exist", |s, v| {
                v.bind(s)
            }),
            opt(
                "--ro-bind",
                "SRC DEST",
                "bind-mount SRC on DEST read-only, every mount below it included",
                |s, v| v.bind(s),
            ),
            opt(
                "--ro-bind-try",
                "SRC DEST",
                "the same, skipped when SRC does not exist",
                |s, v| v.bind(s),
            ),
            opt(
                "--dev-bind",
                "SRC DEST",
                "bind-mount SRC on DEST read-write with device nodes usable",
                |s, v| v.bind(s),
            ),
            opt(
                "--dev-bind-try",
                "SRC DEST",
                "the same, skipped when SRC does not exist",
                |s, v| v.bind(s),
            ),
            opt("--remount-ro", "DEST", "make the mount at DEST read-only", |s, v| {
                let dest = v.one()?;
                s.fs(FsOp::RemountRo(dest))
            }),
            opt("--tmpfs", "DEST", "mount an empty tmpfs on DEST", |s, v| {
                let dest = v.one()?;
                let (size, mode) = (s.size.take(), s.perms.take());
                s.fs(FsOp::Tmpfs { dest, size, mode })
            }),
            opt(
                "--proc",
                "DEST",
                "mount a fresh procfs on DEST (needs --unshare-pid without root)",
                |s, v| {
                    let dest = v.one()?;
                    s.fs(FsOp::Proc(dest))
                },
            ),
            opt(
                "--dev",
                "DEST",
                "a minimal /dev on DEST: null zero full random urandom tty, pts, shm",
                |s, v| {
                    let dest = v.one()?;
                    s.fs(FsOp::Dev(dest))
                },
            ),
            opt("--mqueue", "DEST", "mount a POSIX message queue filesystem on DEST", |s, v| {
                let dest = v.one()?;
                s.fs(FsOp::Mqueue(dest))
            }),
            opt("--dir", "DEST", "create the directory DEST", |s, v| {
                let dest = v.one()?;
                let mode = s.perms.take();
                s.fs(FsOp::Dir { dest, mode })
            }),
            opt(
                "--symlink",
                "TARGET DEST",
                "create the symlink DEST pointing to TARGET",
                |s, v| {
                    let (target, dest) = v.two()?;
                    s.fs(FsOp::Symlink { target, dest })
                },
            ),
            opt(
                "--file",
                "FD DEST",
                "create the file DEST with what is read from file descriptor FD",
                |s, v| {
                    let (fd, dest) = v.two()?;
                    let fd = parse_u32(&fd)
                        .and_then(|fd| i32::try_from(fd).ok())
                        .ok_or_else(|| format!("{}: {fd:?} is not a file descriptor", v.name()))?;
                    let mode = s.perms.take();
                    s.fs(FsOp::File { fd, dest, mode })
                },
            ),
            opt("--chmod", "OCTAL PATH", "change the mode of PATH", |s, v| {
                let (mode, path) = v.two()?;
                let mode = octal(&mode, v.name())?;
                s.fs(FsOp::Chmod { mode, path })
            }),
            opt(
                "--rootfs",
                "DIR",
                "use the host directory DIR read-only as the new root, with a fresh\n\
                 /proc and a minimal /dev in it (DIR needs proc and dev directories)",
                |s, v| {
                    let dir = v.one()?;
                    s.fs(FsOp::Rootfs(dir))
                },
            ),
            opt("--perms", "OCTAL", "the mode of the next --tmpfs, --dir or --file", |s, v| {
                s.perms = Some(octal(&v.one()?, v.name())?);
                Ok(())
            }),
            opt("--size", "BYTES", "the size limit of the next --tmpfs", |s, v| {
                let val = v.one()?;
                let n = val.to_str().and_then(|s| s.parse().ok());
                let n = n.ok_or_else(|| format!("--size: {val:?} is not a number of bytes"))?;
                if n == 0 {
                    // The kernel's size=0 is no limit at all; bubblewrap refuses it too.
                    return Err(Error::Value(
                        "--size: 0 is not a size limit (at least 1 byte; leave --size out for \
                         the default)"
                            .into(),
                    ));
                }
                s.size = Some(n);
                Ok(())
            }),
        ],
        foot: "Destinations are paths in the new root; symlinks in them resolve inside it, never \
               to the host.\n",
    },
    Section {
        head: "
Hardening (defaults: no_new_privs; root inside keeps its capabilities over the sandbox's
namespaces; nscell's seccomp policy denies kexec, kernel modules, bpf, perf_event_open,
userfaultfd, keyctl/add_key/request_key, ptrace, process_vm_*, personality changes, TIOCSTI,
TIOCLINUX, x32 calls):
",
        options: &[
            opt(
                "--cap-drop",
                "CAP",
                "drop capability CAP (CAP_NET_ADMIN, net_admin, or ALL) from every set",
                |s, v| {
                    let cap = v.capability()?;
                    s.harden(HardenOpt::CapDrop(cap))
                },
            ),
            opt(
                "--cap-add",
                "CAP",
                "give capability CAP back (or ALL); a non-root --uid keeps it through\n\
                 the ambient set. --cap-drop/--cap-add apply in order from the default",
                |s, v| {
                    let cap = v.capability()?;
                    s.harden(HardenOpt::CapAdd(cap))
                },
            ),
            opt(
                "--seccomp",
                "FD",
                "read a compiled seccomp program (raw struct sock_filter array, as\n\
                 bwrap --seccomp) from FD and make it the whole policy. FD is read to\n\
                 its end from its current offset (a file, pipe or socket), at most\n\
                 32768 bytes (4096 instructions), and stays open",
                |s, v| {
                    let fd = v.fd()?;
                    s.harden(HardenOpt::Seccomp { fd, replace: true })
                },
            ),
            opt(
                "--add-seccomp-fd",
                "FD",
                "read a compiled seccomp program from FD and stack it on the policy",
                |s, v| {
                    let fd = v.fd()?;
                    s.harden(HardenOpt::Seccomp { fd, replace: false })
                },
            ),
            opt(
                "--no-default-seccomp",
                "",
                "do not install nscell's default seccomp policy",
                |s, _| s.harden(HardenOpt::NoDefaultSeccomp),
            ),
            opt(
                "--deny-io-uring",
                "",
                "also deny io_uring_setup, io_uring_enter and io_uring_register\n\
                 (EPERM), with or without the default seccomp policy",
                |s, _| s.harden(HardenOpt::DenyIoUring),
            ),
            opt(
                "--disable-userns",
                "",
                "the command cannot create user namespaces (needs a user namespace;\n\
                 it also loses its capabilities over the sandbox's namespaces)",
                |s, _| s.harden(HardenOpt::DisableUserns),
            ),
            opt(
                "--keep-session-keyring",
                "",
                "let the command keep this process's session keyring and its keys (by\n\
                 default it gets a new, empty one, counted in kernel.keys.maxkeys)",
                |s, _| s.harden(HardenOpt::KeepSessionKeyring),
            ),
            opt(
                "--landlock-ro",
                "PATH",
                "Landlock: allow reading beneath PATH. Any of --landlock-ro,\n\
                 --landlock-exec and --landlock-rw denies every other file access",
                |s, v| v.landlock(s, LandlockAccess::ReadOnly),
            ),
            opt(
                "--landlock-exec",
                "PATH",
                "Landlock: allow reading and executing beneath PATH",
                |s, v| v.landlock(s, LandlockAccess::Execute),
            ),
            opt(
                "--landlock-rw",
                "PATH",
                "Landlock: allow every file access beneath PATH",
                |s, v| v.landlock(s, LandlockAccess::ReadWrite),
            ),
            opt(
                "--landlock-tcp-bind",
                "PORT",
                "Landlock: allow TCP bind on PORT, and no other port (repeatable;\n\
                 'none': no TCP bind at all; Linux 6.7+)",
                |s, v| {
                    let port = v.port()?;
                    s.harden(HardenOpt::LandlockTcp(true, port))
                },
            ),
            opt(
                "--landlock-tcp-connect",
                "PORT",
                "Landlock: allow TCP connect to PORT, on any address, and no other\n\
                 port (repeatable; 'none': no TCP connect at all; Linux 6.7+)",
                |s, v| {
                    let port = v.port()?;
                    s.harden(HardenOpt::LandlockTcp(false, port))
                },
            ),
            opt(
                "--landlock-required",
                "",
                "fail (exit 125) unless the kernel enforces every Landlock rule\n\
                 given; without it, Landlock is best effort on older kernels",
                |s, _| s.harden(HardenOpt::LandlockRequired),
            ),
            opt(
                "--rlimit",
                "NAME=SOFT[:HARD]",
                "set a resource limit (AS, CORE, CPU, FSIZE, NOFILE, NPROC, STACK,\n\
                 MEMLOCK; a number or 'unlimited'; HARD defaults to SOFT)",
                |s, v| {
                    let limit = v.rlimit()?;
                    s.harden(limit)
                },
            ),
            opt(
                "--keep-fd",
                "FD",
                "pass file descriptor FD to the command (every other fd above 2 is\n\
                 closed)",
                |s, v| {
                    let fd = v.fd()?;
                    s.harden(HardenOpt::KeepFd(fd))
                },
            ),
        ],
        foot: "",
    },
    Section {
        head: "\nLife and death:\n",
        options: &[
            opt(
                "--init",
                "",
                "run a tiny init as PID 1 that reaps orphans, passes SIGINT, SIGTERM,\n\
                 SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH on to the command and\n\
                 exits with its status (needs the PID namespace; as docker run --init).\n\
                 Use it for a command that does not handle SIGTERM or starts children",
                |s, _| {
                    s.cli.init = true;
                    Ok(())
                },
            ),
            opt(
                "--die-with-parent",
                "",
                "kill the sandbox when nscell dies (PR_SET_PDEATHSIG)",
                |s, _| {
                    s.cli.die_with_parent = true;
                    Ok(())
                },
            ),
            opt(
                "--new-session",
                "",
                "start the command in a new session (setsid), so it cannot push input\n\
                 into this terminal (TIOCSTI). The default, unless it gets a pty;\n\
                 --share-terminal turns it off",
                |s, _| {
                    s.cli.new_session = Some(true);
                    Ok(())
                },
            ),
            opt(
                "--share-terminal",
                "",
                "let the command use this terminal as its controlling terminal, as a\n\
                 job of its own (its own process group, in the foreground when nscell\n\
                 is; Ctrl-Z stops nscell with it). No pty unless --pty is given too",
                |s, _| {
                    s.cli.new_session = Some(false);
                    Ok(())
                },
            ),
            opt(
                "--timeout",
                "SECONDS",
                "kill the sandbox after SECONDS (decimals allowed); exit status 124",
                |s, v| {
                    let val = v.one()?;
                    let secs = val.to_str().and_then(|s| s.parse::<f64>().ok());
                    match secs.and_then(|s| std::time::Duration::try_from_secs_f64(s).ok()) {
                        Some(d) => s.cli.timeout = Some(d),
                        None => {
                            return Err(
                                format!("--timeout: {val:?} is not a number of seconds").into()
                            );
                        }
                    }
                    Ok(())
                },
            ),
            opt(
                "--pty",
                "",
                "give the command a new pseudo-terminal, relayed to this terminal in\n\
                 raw mode, with window size changes passed on (default when stdin is a\n\
                 terminal, unless --share-terminal)",
                |s, _| {
                    s.cli.pty = Some(true);
                    Ok(())
                },
            ),
            opt(
                "--no-pty",
                "",
                "do not: the command uses nscell's stdin, stdout and stderr as they are",
                |s, _| {
                    s.cli.pty = Some(false);
                    Ok(())
                },
            ),
        ],
        foot: "",
    },
    Section {
        head: "\nReporting:\n",
        options: &[
            opt(
                "--json-status-fd",
                "FD",
                "write JSON lines to file descriptor FD: {\"child-pid\": N,\n\
                 \"user-namespace\": INODE, ...} (one entry per new namespace) once the\n\
                 command has started, and {\"exit-code\": N} when it has ended",
                |s, v| {
                    s.cli.json_status_fd = Some(v.fd()?);
                    Ok(())
                },
            ),
            opt(
                "--check",
                "",
                "show what this kernel and user can use; exit 0 if the default\n\
                 sandbox works, 1 if not",
                |s, _| s.done(Action::Check),
            ),
            Opt {
                short: Some('h'),
                ..opt("--help", "", "show this help", |s, _| s.done(Action::Help))
            },
            Opt {
                short: Some('V'),
                ..opt("--version", "", "show the version", |s, _| s.done(Action::Version))
            },
        ],
        foot: "",
    },
];

/// The end of `--help`, after the options.
const TAIL: &str = "
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

/// Every option, in the order of `--help`.
fn options() -> impl Iterator<Item = &'static Opt> {
    SECTIONS.iter().flat_map(|s| s.options)
}

/// The text of `--help`.
pub fn help() -> String {
    let mut out = String::new();
    for section in SECTIONS {
        out.push_str(section.head);
        for opt in section.options {
            let start = out.len();
            out.push_str("  ");
            if let Some(short) = opt.short {
                out.push_str(&format!("-{short}, "));
            }
            out.push_str(opt.name);
            if !opt.values.is_empty() {
                out.push(' ');
                out.push_str(opt.values);
            }
            // Too long for the column: the help starts on the next line.
            if out.len() - start >= HELP_COLUMN {
                out.push('\n');
                out.push_str(&" ".repeat(HELP_COLUMN));
            } else {
                out.push_str(&" ".repeat(HELP_COLUMN - (out.len() - start)));
            }
            out.push_str(&opt.help.replace('\n', &format!("\n{:HELP_COLUMN$}", "")));
            out.push('\n');
        }
        out.push_str(section.foot);
    }
    out.push_str(TAIL);
    out
}

/// Parses the arguments after the program name into what they ask for, dispatching each
/// option to its entry in the table. No I/O.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Action, Error> {
    use lexopt::Arg::{Long, Short, Value};
    let mut parser = lexopt::Parser::from_args(args);
    let mut state = State::default();
    while let Some(arg) = parser.next()? {
        let option = match arg {
            Long(name) => options()
                .find(|o| o.name.strip_prefix("--") == Some(name))
                .ok_or_else(|| Long(name).unexpected())?,
            Short(c) => {
                options().find(|o| o.short == Some(c)).ok_or_else(|| Short(c).unexpected())?
            }
            Value(program) => {
                state.cli.command.push(program);
                state.cli.command.extend(parser.raw_args()?);
                break;
            }
        };
        (option.parse)(&mut state, &mut Values { parser: &mut parser, option })?;
        if let Some(action) = state.done.take() {
            return Ok(action);
        }
    }
    if state.perms.is_some() {
        return Err(Error::Value("--perms must be followed by --tmpfs, --dir or --file".into()));
    }
    if state.size.is_some() {
        return Err(Error::Value("--size must be followed by --tmpfs".into()));
    }
    Ok(Action::Run(Box::new(state.cli)))
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::cli::HardenOpt;
    use std::path::PathBuf;

    pub fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    /// The run a command line asks for; panics if it is anything else.
    pub fn cli(list: &[&str]) -> Cli {
        match parse(args(list)) {
            Ok(Action::Run(cli)) => *cli,
            other => panic!("{list:?} parsed to {other:?}"),
        }
    }

    /// The one line a bad command line gets.
    fn err(list: &[&str]) -> String {
        match parse(args(list)) {
            Err(e) => e.to_string(),
            other => panic!("{list:?} parsed: {other:?}"),
        }
    }

    #[test]
    fn no_options_is_the_default_run() {
        assert_eq!(cli(&[]), Cli::default());
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
    }

    #[test]
    fn the_command_starts_at_the_first_non_option_and_is_not_parsed() {
        let c = cli(&["--hostname", "h", "echo", "--uid", "x", "--", "-V"]);
        assert_eq!(c.hostname.as_deref(), Some(OsStr::new("h")));
        assert_eq!(c.uid, None);
        assert_eq!(c.command, args(&["echo", "--uid", "x", "--", "-V"]));
        let c = cli(&["--", "--help", "--"]);
        assert_eq!(c.command, args(&["--help", "--"]));
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
        let action = |list: &[&str]| parse(args(list)).unwrap();
        assert_eq!(action(&["-h"]), Action::Help);
        assert_eq!(action(&["--unshare-net", "--help"]), Action::Help);
        assert_eq!(action(&["-V"]), Action::Version);
        assert_eq!(action(&["--version"]), Action::Version);
        assert_eq!(action(&["--check"]), Action::Check);
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
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
        let rl = err(&["--rlimit", "NOFILE=10:5"]);
        assert!(rl.contains("--rlimit: \"NOFILE=10:5\": the soft limit 10 is above"), "{rl}");
    }

    #[test]
    fn lexopt_errors_are_carried_as_lexopt_errors() {
        for (list, lexopt) in
            [(&["--bogus"][..], true), (&["--hostname"], true), (&["--uid", "x"], false)]
        {
            let e = parse(args(list)).unwrap_err();
            assert_eq!(matches!(e, Error::Lexopt(_)), lexopt, "{list:?}: {e:?}");
            assert_eq!(std::error::Error::source(&e).is_some(), lexopt, "{list:?}");
        }
    }

    #[test]
    fn parsing_opens_nothing_the_fds_are_only_numbers() {
        // An fd that is not open parses: claiming it is a later step.
        let c = cli(&["--seccomp", "999999", "--add-seccomp-fd", "999998", "--keep-fd", "999997"]);
        assert_eq!(
            c.harden,
            [
                HardenOpt::Seccomp { fd: 999999, replace: true },
                HardenOpt::Seccomp { fd: 999998, replace: false },
                HardenOpt::KeepFd(999997),
            ]
        );
    }

    #[test]
    fn each_option_has_one_line_of_help_that_starts_with_its_name_and_values() {
        let help = help();
        for o in options() {
            let mut head = String::from("  ");
            if let Some(c) = o.short {
                head.push_str(&format!("-{c}, "));
            }
            head.push_str(o.name);
            if !o.values.is_empty() {
                head.push(' ');
                head.push_str(o.values);
            }
            let lines = help.lines().filter(|l| l.starts_with(&format!("{head} "))).count()
                + help.lines().filter(|l| *l == head).count();
            assert_eq!(lines, 1, "{head:?}");
        }
        // The help column: past it, the help starts on the next line.
        assert!(help.contains("\n  --dev-bind-try SRC DEST the same"));
        assert!(help.contains(
            "\n  --landlock-tcp-bind PORT\n                          Landlock: allow TCP bind"
        ));
        assert!(help.contains("\n  -h, --help              show this help\n"));
    }

    /// A plausible value for each value name of the table.
    fn sample(name: &str) -> &'static str {
        match name {
            "N" | "FD" | "BYTES" | "SECONDS" => "5",
            "IN:OUT:COUNT" => "1:100000:1",
            "OCTAL" => "755",
            "CAP" => "ALL",
            "PORT" => "80",
            "NAME=SOFT[:HARD]" => "CORE=0",
            "NAME" | "VAR" | "VALUE" => "x",
            "DIR" | "SRC" | "DEST" | "PATH" | "TARGET" => "/x",
            other => panic!("no sample for {other}: teach this test the new value"),
        }
    }

    #[test]
    fn every_option_takes_exactly_the_values_its_help_names() {
        for o in options() {
            let mut list = vec![o.name];
            list.extend(o.values.split_whitespace().map(sample));
            // --perms and --size wait for a --tmpfs; the command marks where the options end.
            list.extend(["--tmpfs", "/t", "prog"]);
            match parse(args(&list)) {
                Ok(Action::Run(c)) => {
                    assert_eq!(c.command, args(&["prog"]), "{list:?}");
                    assert!(
                        matches!(c.fs.last(), Some(FsOp::Tmpfs { dest, .. }) if dest == "/t"),
                        "{list:?}: {:?}",
                        c.fs
                    );
                }
                Ok(_) => assert!(["--help", "--version", "--check"].contains(&o.name)),
                Err(e) => panic!("{list:?}: {e}"),
            }
        }
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
        assert!(err(&["--timeout", "soon"]).contains("not a number of seconds"));
        assert!(parse(args(&["--timeout", "-1"])).is_err());
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
            let e = err(line);
            assert!(e.contains(msg), "{line:?}: {e}");
        }
    }

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
        assert!(err(&["--cap-drop", "CAP_NOPE"]).contains("not a capability"));
        assert!(err(&["--rlimit", "NOFILE"]).contains("NAME=SOFT[:HARD]"));
        assert!(err(&["--rlimit", "BOGUS=1"]).contains("NAME=SOFT[:HARD]"));
        for bad in ["65536", "-1", "http", ""] {
            let e = err(&["--landlock-tcp-connect", bad]);
            assert!(e.contains("is not a port from 0 to 65535"), "{bad}: {e}");
        }
        assert!(err(&["--landlock-tcp-bind"]).contains("missing argument"));
    }
}
