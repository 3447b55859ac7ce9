//! The options table: one [`Opt`] per option, with its value names, its help text and the
//! handler that parses it. [`help`] renders `--help` from the table and [`parse`] dispatches
//! from it, so an option cannot be parsed without being in `--help`, nor the other way round.
//!
//! Parsing turns the arguments into a plain [`Cli`] and does no I/O: the fds the options name
//! are claimed and read afterwards (see `fds.rs` and `inputs.rs`).

use crate::cli::{Action, Cli, EnvChange, FsOp, HardenOpt};
use crate::personality::Personality;
use nscell::landlock::Access as LandlockAccess;
use nscell::rlimit::Resource;
use nscell::{Capabilities, IdMap, Namespaces};
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
    /// `--overlay-src`s waiting for their overlay.
    overlay_srcs: Vec<OsString>,
    /// Set by `--help`, `--version`, `--check`: parsing ends there.
    done: Option<Action>,
}

impl State {
    fn unshare(&mut self, ns: Namespaces) -> Result<(), Error> {
        self.cli.namespaces = Some(self.cli.namespaces.unwrap_or(Namespaces::empty()) | ns);
        Ok(())
    }

    fn set(&mut self, change: impl FnOnce(&mut Cli)) -> Result<(), Error> {
        change(&mut self.cli);
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

    fn overlay(
        &mut self,
        upper_work: Option<(OsString, OsString)>,
        ro: bool,
        dest: OsString,
        option: &str,
        least: usize,
    ) -> Result<(), Error> {
        let lowers = std::mem::take(&mut self.overlay_srcs);
        if lowers.len() < least {
            let what = if least == 1 { "one" } else { "two" };
            return Err(format!("{option} requires at least {what} --overlay-src").into());
        }
        self.fs(FsOp::Overlay { lowers, upper_work, ro, dest })
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
    /// Whose messages a bad value gets.
    personality: Personality,
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

    /// `DEV:RATE` of `--device-read-bps` (`which` 0) and friends: bytes (with a suffix) for
    /// the bps ones, a count for the iops ones.
    fn io_rate(&mut self, s: &mut State, which: usize) -> Result<(), Error> {
        let v = self.one()?;
        let name = self.name();
        let text = v.to_str().unwrap_or("");
        let Some((dev, rate)) = text.rsplit_once(':').filter(|(d, _)| !d.is_empty()) else {
            return Err(format!("{name}: {v:?} is not DEVICE:RATE (/dev/vda:10m)").into());
        };
        let rate = if which < 2 {
            bytes(name, OsStr::new(rate))?
        } else {
            rate.parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{name}: {rate:?} is not a number of operations"))?
        };
        s.cli.cgroup.io_max.push((dev.into(), which, rate));
        Ok(())
    }

    /// A size in bytes, with an optional k, m, g or t suffix.
    fn bytes(&mut self) -> Result<u64, Error> {
        let v = self.one()?;
        bytes(self.name(), &v)
    }

    fn fd(&mut self) -> Result<i32, Error> {
        if self.personality.is_bwrap() {
            // bubblewrap's words for any fd that is not a non-negative int.
            let v = self.one()?;
            let n = parse_u32(&v).and_then(|n| i32::try_from(n).ok());
            return Ok(n.ok_or_else(|| format!("Invalid fd: {}", v.to_string_lossy()))?);
        }
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
        "unlimited" | "infinity" => Some(nscell::rlimit::INFINITY),
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
            opt(
                "--unshare-user-try",
                "",
                "a new user namespace if this kernel lets this user make one",
                |s, _| {
                    s.cli.try_namespaces |= Namespaces::USER;
                    s.unshare(Namespaces::USER)
                },
            ),
            opt(
                "--unshare-cgroup-try",
                "",
                "a new cgroup namespace if this kernel has them",
                |s, _| {
                    s.cli.try_namespaces |= Namespaces::CGROUP;
                    s.unshare(Namespaces::CGROUP)
                },
            ),
            opt(
                "--userns",
                "FD",
                "join the user namespace FD names (/proc/PID/ns/user) instead of\n\
                 making one; the new namespaces are then owned by it",
                |s, v| {
                    s.cli.join.user = Some(v.fd()?);
                    Ok(())
                },
            ),
            opt(
                "--userns2",
                "FD",
                "after the setup, move into the user namespace FD names (a child of\n\
                 the sandbox's own)",
                |s, v| {
                    s.cli.join.user2 = Some(v.fd()?);
                    Ok(())
                },
            ),
            opt(
                "--pidns",
                "FD",
                "join the PID namespace FD names (/proc/PID/ns/pid); needs the user\n\
                 namespace that owns it (--userns)",
                |s, v| {
                    s.cli.join.pid = Some(v.fd()?);
                    Ok(())
                },
            ),
            opt(
                "--assert-userns-disabled",
                "",
                "fail unless making a user namespace is impossible for the command\n\
                 (with --userns: one made with --disable-userns)",
                |s, _| s.set(|c| c.assert_userns_disabled = true),
            ),
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
                s.cli.chdir_given += 1;
                s.cli.chdir = Some(v.one()?.into());
                Ok(())
            }),
            opt(
                "--argv0",
                "VALUE",
                "the command's argv[0] (default: the command as given); once",
                |s, v| {
                    let argv0 = v.one()?;
                    if s.cli.argv0.is_some() {
                        return Err(Error::Value("--argv0 used multiple times".into()));
                    }
                    s.cli.argv0 = Some(argv0);
                    Ok(())
                },
            ),
            opt(
                "--args",
                "FD",
                "read more arguments from FD, NUL-separated, in place of this option\n\
                 (repeatable, and the arguments read may hold --args again)",
                // The fds are read before parsing (`expand_args`): one left here was not.
                |_, v| Err(format!("--args {:?}: its arguments were not read", v.one()?).into()),
            ),
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
                |s, _| s.set(|c| c.env.push(EnvChange::Clear)),
            ),
            opt(
                "--no-proc",
                "",
                "do not mount a fresh /proc (one is mounted when the PID and mount\n\
                 namespaces are both new)",
                |s, _| s.set(|c| c.no_proc = true),
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
            opt(
                "--cgroup-view",
                "DEST",
                "show the sandbox's own cgroups at DEST, read-only (needs a limit\n\
                 such as --memory; /sys/fs/cgroup is the usual DEST)",
                |s, v| {
                    let dest = v.one()?;
                    s.fs(FsOp::CgroupView(dest))
                },
            ),
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
            opt("--bind-fd", "FD DEST", "bind the directory or file FD names on DEST", |s, v| {
                let fd = v.fd()?;
                let dest = v.last_named("DEST")?;
                s.fs(FsOp::BindFd { fd, dest, ro: false })
            }),
            opt("--ro-bind-fd", "FD DEST", "the same, read-only", |s, v| {
                let fd = v.fd()?;
                let dest = v.last_named("DEST")?;
                s.fs(FsOp::BindFd { fd, dest, ro: true })
            }),
            opt(
                "--bind-data",
                "FD DEST",
                "bind a file holding what FD gives (read to its end) on DEST (0600)",
                |s, v| {
                    let fd = v.fd()?;
                    let dest = v.last_named("DEST")?;
                    let mode = s.perms.take();
                    s.fs(FsOp::BindData { fd, dest, ro: false, mode })
                },
            ),
            opt("--ro-bind-data", "FD DEST", "the same, read-only", |s, v| {
                let fd = v.fd()?;
                let dest = v.last_named("DEST")?;
                let mode = s.perms.take();
                s.fs(FsOp::BindData { fd, dest, ro: true, mode })
            }),
            opt(
                "--overlay-src",
                "SRC",
                "a lower layer (host path) of the next --overlay, --tmp-overlay or\n\
                 --ro-overlay (repeatable, lowest first)",
                |s, v| {
                    s.overlay_srcs.push(v.one()?);
                    Ok(())
                },
            ),
            opt(
                "--overlay",
                "RWSRC WORKDIR DEST",
                "an overlayfs on DEST: the --overlay-src layers under RWSRC, which\n\
                 takes the changes (WORKDIR: an empty directory on its filesystem)",
                |s, v| {
                    let upper = v.one()?;
                    let work = v.last_named("WORKDIR")?;
                    let dest = v.last_named("DEST")?;
                    s.overlay(Some((upper, work)), false, dest, "--overlay", 1)
                },
            ),
            opt(
                "--tmp-overlay",
                "DEST",
                "the same with the changes on a tmpfs, gone with the sandbox",
                |s, v| {
                    let dest = v.one()?;
                    s.overlay(None, false, dest, "--tmp-overlay", 1)
                },
            ),
            opt("--ro-overlay", "DEST", "the --overlay-src layers, read-only", |s, v| {
                let dest = v.one()?;
                s.overlay(None, true, dest, "--ro-overlay", 2)
            }),
            opt(
                "--perms",
                "OCTAL",
                "the mode of the next --tmpfs, --dir, --file or --bind-data (once)",
                |s, v| {
                    if s.perms.is_some() {
                        return Err("--perms given twice for one operation".to_string().into());
                    }
                    s.perms = Some(octal(&v.one()?, v.name())?);
                    Ok(())
                },
            ),
            opt("--size", "BYTES", "the size limit of the next --tmpfs (once)", |s, v| {
                if s.size.is_some() {
                    return Err("--size given twice for one operation".to_string().into());
                }
                let val = v.one()?;
                // At most half the address space, as bubblewrap: no sign, no blank, no suffix.
                let n = val
                    .to_str()
                    .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|t| t.parse::<u64>().ok())
                    .filter(|&n| n <= u64::MAX / 2);
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
                    if s.cli.personality.is_bwrap() {
                        // bubblewrap: not with --add-seccomp-fd, and only the last one counts.
                        let seccomp = |o: &HardenOpt| matches!(o, HardenOpt::Seccomp { .. });
                        if s.cli.harden.iter().any(seccomp) && s.cli.seccomp_given == 0 {
                            return Err(Error::Value(
                                "--seccomp cannot be combined with --add-seccomp-fd".into(),
                            ));
                        }
                        s.cli.harden.retain(|o| !seccomp(o));
                    }
                    s.cli.seccomp_given += 1;
                    s.harden(HardenOpt::Seccomp { fd, replace: true })
                },
            ),
            opt(
                "--add-seccomp-fd",
                "FD",
                "read a compiled seccomp program from FD and stack it on the policy",
                |s, v| {
                    let fd = v.fd()?;
                    if s.cli.personality.is_bwrap() && s.cli.seccomp_given > 0 {
                        return Err(Error::Value(
                            "--add-seccomp-fd cannot be combined with --seccomp".into(),
                        ));
                    }
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
                |s, _| s.set(|c| c.init = true),
            ),
            opt(
                "--as-pid-1",
                "",
                "with a new PID namespace, the command itself is PID 1 (no init; the\n\
                 default of the nscell name, not of bwrap's)",
                |s, _| s.set(|c| c.as_pid_1 = true),
            ),
            opt(
                "--die-with-parent",
                "",
                "kill the sandbox when nscell dies, and nscell when the process that\n\
                 started it dies (PR_SET_PDEATHSIG)",
                |s, _| s.set(|c| c.die_with_parent = true),
            ),
            opt(
                "--lock-file",
                "DEST",
                "hold a read lock on DEST (a path inside) while the sandbox lives\n\
                 (the init holds it)",
                |s, v| {
                    s.cli.lock_files.push(v.one()?);
                    Ok(())
                },
            ),
            opt(
                "--sync-fd",
                "FD",
                "keep FD open while the sandbox lives (the init holds it): its other\n\
                 end sees EOF when the sandbox has ended",
                |s, v| {
                    s.cli.sync_fd = Some(v.fd()?);
                    Ok(())
                },
            ),
            opt(
                "--block-fd",
                "FD",
                "once the sandbox is set up, wait until FD can be read (or is closed)\n\
                 before starting the command",
                |s, v| {
                    s.cli.block_fd = Some(v.fd()?);
                    Ok(())
                },
            ),
            opt(
                "--userns-block-fd",
                "FD",
                "wait until FD can be read once the user namespace exists, writing\n\
                 no id maps: the caller writes them for --info-fd's child-pid\n\
                 (needs --unshare-user and --info-fd)",
                |s, v| {
                    s.cli.userns_block_fd = Some(v.fd()?);
                    Ok(())
                },
            ),
            opt(
                "--new-session",
                "",
                "start the command in a new session (setsid), so it cannot push input\n\
                 into this terminal (TIOCSTI). The default, unless it gets a pty;\n\
                 --share-terminal turns it off",
                |s, _| s.set(|c| c.new_session = Some(true)),
            ),
            opt(
                "--share-terminal",
                "",
                "let the command use this terminal as its controlling terminal, as a\n\
                 job of its own (its own process group, in the foreground when nscell\n\
                 is; Ctrl-Z stops nscell with it). No pty unless --pty is given too",
                |s, _| s.set(|c| c.new_session = Some(false)),
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
                |s, _| s.set(|c| c.pty = Some(true)),
            ),
            opt(
                "--no-pty",
                "",
                "do not: the command uses nscell's stdin, stdout and stderr as they are",
                |s, _| s.set(|c| c.pty = Some(false)),
            ),
        ],
        foot: "",
    },
    Section {
        head: "\nResource limits (a cgroup of the sandbox's own; rootless, the caller's cgroup must be\n\
               delegated to it, as systemd's Delegate=yes does):\n",
        options: &[
            opt(
                "--memory",
                "BYTES",
                "the most memory the sandbox may use (k, m, g suffixes); past it the\n\
                 OOM killer kills in the sandbox. No swap unless --memory-swap",
                |s, v| {
                    s.cli.cgroup.memory = Some(v.bytes()?);
                    Ok(())
                },
            ),
            opt(
                "--memory-swap",
                "BYTES",
                "memory plus swap in all, as podman's (at least --memory; -1: swap\n\
                 without limit)",
                |s, v| {
                    let val = v.one()?;
                    s.cli.cgroup.memory_swap =
                        Some(if val == "-1" { None } else { Some(bytes("--memory-swap", &val)?) });
                    Ok(())
                },
            ),
            opt(
                "--memory-high",
                "BYTES",
                "throttle and reclaim above BYTES (cgroup v2 memory.high)",
                |s, v| {
                    s.cli.cgroup.memory_high = Some(v.bytes()?);
                    Ok(())
                },
            ),
            opt(
                "--pids-limit",
                "N",
                "at most N tasks (processes and threads) at once: a fork bomb stops\n\
                 there",
                |s, v| {
                    s.cli.cgroup.pids_limit = Some(u64::from(v.number()?));
                    Ok(())
                },
            ),
            opt(
                "--cpus",
                "N.N",
                "at most N.N CPUs' worth of time (a quota every 100 ms, as docker's)",
                |s, v| {
                    let val = v.one()?;
                    let cpus = val.to_str().and_then(|s| s.parse::<f64>().ok());
                    s.cli.cgroup.cpus =
                        Some(cpus.ok_or_else(|| format!("--cpus: {val:?} is not a number"))?);
                    Ok(())
                },
            ),
            opt(
                "--cpu-weight",
                "N",
                "the sandbox's share of contended CPU time, 1 to 10000 (default 100;\n\
                 cpu.shares on cgroup v1, 100 = 1024)",
                |s, v| {
                    s.cli.cgroup.cpu_weight = Some(u64::from(v.number()?));
                    Ok(())
                },
            ),
            opt("--cpuset-cpus", "LIST", "run only on these CPUs (0-3,8)", |s, v| {
                let val = v.one()?;
                let list = val.to_str().ok_or_else(|| format!("--cpuset-cpus: {val:?}"))?;
                s.cli.cgroup.cpuset_cpus = Some(list.to_string());
                Ok(())
            }),
            opt(
                "--io-weight",
                "N",
                "the sandbox's share of contended block IO, 1 to 10000 (default 100)",
                |s, v| {
                    s.cli.cgroup.io_weight = Some(u64::from(v.number()?));
                    Ok(())
                },
            ),
            opt(
                "--device-read-bps",
                "DEV:RATE",
                "read at most RATE bytes per second from the block device DEV\n\
                 (/dev/vda:10m; repeatable)",
                |s, v| v.io_rate(s, 0),
            ),
            opt(
                "--device-write-bps",
                "DEV:RATE",
                "write at most RATE bytes per second to DEV",
                |s, v| v.io_rate(s, 1),
            ),
            opt(
                "--device-read-iops",
                "DEV:RATE",
                "at most RATE reads per second from DEV",
                |s, v| v.io_rate(s, 2),
            ),
            opt(
                "--device-write-iops",
                "DEV:RATE",
                "at most RATE writes per second to DEV",
                |s, v| v.io_rate(s, 3),
            ),
            opt(
                "--cgroup-parent",
                "PATH",
                "make the sandbox's cgroup under PATH: relative, below nscell's own\n\
                 cgroup; absolute, a cgroup path as /proc/self/cgroup shows them",
                |s, v| {
                    s.cli.cgroup.parent = Some(v.one()?.into());
                    Ok(())
                },
            ),
            opt(
                "--cgroup-required",
                "",
                "fail (exit 125) unless every limit given holds here; without it,\n\
                 a limit this host cannot enforce is left out with a warning",
                |s, _| s.set(|c| c.cgroup.required = true),
            ),
            opt(
                "--gc",
                "",
                "remove the cgroups left by sandboxes whose nscell was killed (under\n\
                 --cgroup-parent if given before it), and what still runs in them",
                |s, _| {
                    let parent = s.cli.cgroup.parent.take();
                    s.done(Action::Gc(parent))
                },
            ),
        ],
        foot: "",
    },
    Section {
        head: "\nNetwork (a network namespace of the sandbox's own, served by a user-mode helper):\n",
        options: &[
            opt(
                "--network",
                "MODE",
                "none (loopback only), host, pasta[:ARG,...] or slirp4netns[:ARG,...]\n\
                 (the helper in PATH: Debian's passt or slirp4netns; ARGs go to it\n\
                 last). The sandbox is 10.0.2.100/24, gateway 10.0.2.2, DNS 10.0.2.3",
                |s, v| {
                    let val = v.one()?;
                    s.cli.net.mode = Some(net_mode(&val)?);
                    Ok(())
                },
            ),
            Opt {
                short: Some('p'),
                ..opt(
                    "--publish",
                    "[IP:]HOSTPORT:PORT[/PROTO]",
                    "publish the sandbox's PORT as HOSTPORT on the host's IP (127.0.0.1\n\
                     unless given: podman's default is 0.0.0.0); PROTO tcp (default) or\n\
                     udp; repeatable",
                    |s, v| {
                        let val = v.one()?;
                        let p = publish(&val).ok_or_else(|| {
                            format!(
                                "--publish: {val:?} is not [IP:]HOSTPORT:PORT[/tcp|udp] \
                                 (8080:80, 0.0.0.0:5353:53/udp, [::1]:8080:80)"
                            )
                        })?;
                        s.cli.net.publish.push(p);
                        Ok(())
                    },
                )
            },
            opt(
                "--host-loopback",
                "",
                "let the gateway address reach the host's 127.0.0.1 (off: the host's\n\
                 loopback servers are out of reach)",
                |s, _| s.set(|c| c.net.host_loopback = true),
            ),
            opt("--ipv6", "", "IPv6 through the helper too (default: IPv4 only)", |s, _| {
                s.set(|c| c.net.ipv6 = true)
            }),
            opt(
                "--allow-egress",
                "DEST[:PORTS][/PROTO]",
                "allow connections to DEST only (an address, a CIDR, [IPv6/len], or a\n\
                 host name resolved once at spawn), on PORTS (80,443,8000-8100); every\n\
                 other destination is refused (nftables in the sandbox); repeatable",
                |s, v| {
                    let val = v.one()?;
                    let e = egress(&val).ok_or_else(|| {
                        format!(
                            "--allow-egress: {val:?} is not DEST[:PORTS][/tcp|udp] \
                             (10.0.0.0/8:443, [2001:db8::/32]:80,443, example.com:443/tcp)"
                        )
                    })?;
                    s.cli.net.allow.push(e);
                    Ok(())
                },
            ),
            opt(
                "--deny-egress",
                "",
                "refuse every destination but those --allow-egress names (and DNS to\n\
                 the forwarder, and replies on published ports)",
                |s, _| s.set(|c| c.net.deny_all = true),
            ),
            opt("--dns", "IP", "the DNS forwarder's address inside, or none", |s, v| {
                let val = v.one()?;
                let dns =
                    match val.to_str() {
                        Some("none") => None,
                        Some(ip) => Some(ip.parse().map_err(|_| {
                            format!("--dns: {val:?} is not an IPv4 address (or none)")
                        })?),
                        None => return Err(format!("--dns: {val:?} is not an IPv4 address").into()),
                    };
                s.cli.net.dns = Some(dns);
                Ok(())
            }),
            opt(
                "--share-net",
                "",
                "keep the host's network (undoes --unshare-net and --unshare-all's)",
                |s, _| {
                    if let Some(ns) = &mut s.cli.namespaces {
                        ns.remove(Namespaces::NET);
                    }
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
                 \"user-namespace\": INODE, ...} (one entry per new namespace, and\n\
                 \"network-helper-pid\" with --network pasta|slirp4netns) once the\n\
                 command has started, and {\"exit-code\": N} when it has ended",
                |s, v| {
                    s.cli.json_status_fd = Some(v.fd()?);
                    Ok(())
                },
            ),
            opt(
                "--info-fd",
                "FD",
                "write {\"child-pid\": N, \"user-namespace\": INODE, ...} to FD once\n\
                 the command has started, then close it",
                |s, v| {
                    s.cli.info_fd = Some(v.fd()?);
                    Ok(())
                },
            ),
            opt(
                "--level-prefix",
                "",
                "start each message with its syslog level (<3> error, <4> warning)",
                |s, _| s.set(|c| c.level_prefix = true),
            ),
            opt(
                "--exec-label",
                "LABEL",
                "the SELinux label the command runs with (refused where SELinux is\n\
                 enabled: not supported; ignored where it is not, as bubblewrap does)",
                |s, v| {
                    s.cli.selinux_labels.push(("--exec-label", v.one()?));
                    Ok(())
                },
            ),
            opt(
                "--file-label",
                "LABEL",
                "the SELinux label of the files nscell creates (as --exec-label)",
                |s, v| {
                    s.cli.selinux_labels.push(("--file-label", v.one()?));
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

/// `64m`, `1g`, `4096`: bytes, with an optional k, m, g or t suffix (powers of 1024, as
/// podman's), at least 1.
/// `--network`'s value.
fn net_mode(v: &OsStr) -> Result<crate::cli::NetMode, Error> {
    use crate::cli::NetMode;
    let text = v.to_str().ok_or_else(|| format!("--network: {v:?} is not a mode"))?;
    let (mode, args) = match text.split_once(':') {
        Some((m, a)) => (m, a.split(',').filter(|a| !a.is_empty()).map(OsString::from).collect()),
        None => (text, Vec::new()),
    };
    match (mode, args.is_empty()) {
        ("none", true) => Ok(NetMode::None),
        ("host", true) => Ok(NetMode::Host),
        ("pasta", _) => Ok(NetMode::Pasta(args)),
        ("slirp4netns", _) => Ok(NetMode::Slirp4netns(args)),
        ("none" | "host", false) => Err(format!("--network {mode} takes no arguments").into()),
        _ => Err(format!(
            "--network: {mode:?} is not none, host, pasta[:ARG,...] or slirp4netns[:ARG,...]"
        )
        .into()),
    }
}

/// A protocol suffix (`/tcp`, `/udp`) split off `text`.
fn proto_suffix(text: &str) -> Option<(&str, Option<nscell::net::Proto>)> {
    use nscell::net::Proto;
    Some(match text.rsplit_once('/') {
        Some((rest, "tcp")) => (rest, Some(Proto::Tcp)),
        Some((rest, "udp")) => (rest, Some(Proto::Udp)),
        Some((_, p)) if p.parse::<u8>().is_err() && !p.contains(':') => return None,
        _ => (text, None),
    })
}

/// `-p`'s value: `[IP:]HOSTPORT:PORT[/tcp|udp]`, IPv6 in brackets.
fn publish(v: &OsStr) -> Option<(nscell::net::Proto, std::net::SocketAddr, u16)> {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    let (text, proto) = proto_suffix(v.to_str()?)?;
    let (host, port) = text.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
    let (ip, host_port) = match host.rsplit_once(':') {
        Some((ip, hp)) => {
            let ip = ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')).unwrap_or(ip);
            (ip.parse::<IpAddr>().ok()?, hp)
        }
        None => (IpAddr::V4(Ipv4Addr::LOCALHOST), host),
    };
    let host_port: u16 = host_port.parse().ok().filter(|&p| p != 0)?;
    Some((proto.unwrap_or(nscell::net::Proto::Tcp), SocketAddr::new(ip, host_port), port))
}

/// `--allow-egress`'s value: `DEST[:PORTS][/tcp|udp]`, an IPv6 DEST in brackets.
fn egress(v: &OsStr) -> Option<crate::cli::EgressOpt> {
    let text = v.to_str()?;
    let (dest, rest) = match text.strip_prefix('[') {
        Some(t) => {
            let (d, r) = t.split_once(']')?;
            (d, r.strip_prefix(':').map_or_else(|| (r.is_empty()).then_some(""), Some)?)
        }
        None => match text.split_once(':') {
            Some((d, r)) => (d, r),
            None => {
                // No ports: a protocol suffix is not a prefix length.
                let (d, proto) = match text.rsplit_once('/') {
                    Some((d, "tcp")) => (d, Some(nscell::net::Proto::Tcp)),
                    Some((d, "udp")) => (d, Some(nscell::net::Proto::Udp)),
                    _ => (text, None),
                };
                return (!d.is_empty()).then(|| crate::cli::EgressOpt {
                    dest: d.to_string(),
                    proto,
                    ports: Vec::new(),
                });
            }
        },
    };
    let (ports_text, proto) = match rest.rsplit_once('/') {
        Some((p, "tcp")) => (p, Some(nscell::net::Proto::Tcp)),
        Some((p, "udp")) => (p, Some(nscell::net::Proto::Udp)),
        Some(_) => return None,
        None => (rest, None),
    };
    let mut ports = Vec::new();
    for part in ports_text.split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (lo, hi): (u16, u16) = (lo.parse().ok()?, hi.parse().ok()?);
        if lo == 0 || lo > hi {
            return None;
        }
        ports.push((lo, hi));
    }
    if dest.is_empty() || (!rest.is_empty() && ports.is_empty() && proto.is_none()) {
        return None;
    }
    Some(crate::cli::EgressOpt { dest: dest.to_string(), proto, ports })
}

fn bytes(name: &str, v: &OsStr) -> Result<u64, Error> {
    let s = v.to_str().unwrap_or("").to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (digits, shift) = match s.char_indices().last() {
        Some((i, 'k')) => (&s[..i], 10),
        Some((i, 'm')) => (&s[..i], 20),
        Some((i, 'g')) => (&s[..i], 30),
        Some((i, 't')) => (&s[..i], 40),
        _ => (s, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .filter(|&n| n > 0)
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| format!("{name}: {v:?} is not a size in bytes (64m, 1g, 4096)").into())
}

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

/// The start of bubblewrap's `--help` (its usage line names the program as it was started),
/// before the first section's options: in place of nscell's own.
fn bwrap_head(argv0: &str) -> String {
    format!(
        "usage: {argv0} [OPTIONS...] [--] COMMAND [ARGS...]

nscell as bubblewrap {}: runs COMMAND in an empty tmpfs root that the filesystem options fill
in order, with the namespaces the options ask for (a user namespace mapping your own ids when
you are not root), no /proc unless --proc, no capabilities unless --cap-add or uid 0 inside.
Every option of nscell works here too.

Namespaces:
",
        crate::personality::BUBBLEWRAP_VERSION
    )
}

/// The text of `--help`.
#[cfg(test)]
pub fn help() -> String {
    help_as(Personality::Nscell, "nscell")
}

/// The text of `--help` of `personality`, started as `argv0`.
pub fn help_as(personality: Personality, argv0: &str) -> String {
    let mut out = String::new();
    for (i, section) in SECTIONS.iter().enumerate() {
        match personality {
            Personality::Bwrap if i == 0 => out.push_str(&bwrap_head(argv0)),
            _ => out.push_str(section.head),
        }
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
    match personality {
        Personality::Nscell => out.push_str(TAIL),
        Personality::Bwrap => out.push_str(BWRAP_TAIL),
    }
    out
}

/// The end of bubblewrap's `--help`.
const BWRAP_TAIL: &str = "
Exit status: the command's own; 128+N when it was killed by signal N; 1 when bwrap failed (the
message says why), the command could not be run, or the command line is wrong.
";

/// bubblewrap's words for an `--overlay-src` that no overlay takes.
const OVERLAY_SRC_ALONE: &str = "--overlay-src must be followed by another --overlay-src or one \
                                 of --overlay, --tmp-overlay, or --ro-overlay";

/// The most `--args` that one command line may expand (they may nest).
const MAX_ARGS_FDS: usize = 1024;

/// Replaces each `--args FD` among the options (not in the command) with the arguments
/// `read(FD)` returns, NUL-separated, in place; arguments read may hold `--args` again.
/// `read` does the I/O (and closes the fd, as bubblewrap does), so this stays testable.
pub fn expand_args(
    mut args: Vec<OsString>,
    mut read: impl FnMut(i32) -> Result<Vec<u8>, String>,
) -> Result<Vec<OsString>, Error> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let mut i = 0;
    let mut expanded = 0;
    while let Some(arg) = args.get(i) {
        let text = arg.as_bytes();
        if text == b"--" || !text.starts_with(b"-") || text == b"-" {
            break;
        }
        if text == b"--args" || text.starts_with(b"--args=") {
            let (value, width) = match text.strip_prefix(b"--args=") {
                Some(v) => (Some(OsStr::from_bytes(v).to_owned()), 1),
                None => (args.get(i + 1).cloned(), 2),
            };
            let value = value
                .ok_or_else(|| "missing argument for option '--args' (--args FD)".to_string())?;
            let fd = parse_u32(&value)
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| format!("--args: {value:?} is not a file descriptor"))?;
            expanded += 1;
            if expanded > MAX_ARGS_FDS {
                return Err(format!("--args: more than {MAX_ARGS_FDS} of them").into());
            }
            let bytes = read(fd).map_err(|e| format!("--args {fd}: {e}"))?;
            let mut words: Vec<&[u8]> = bytes.split(|&b| b == 0).collect();
            // The last argument ends with a NUL: nothing follows it.
            if words.last().is_some_and(|w| w.is_empty()) {
                words.pop();
            }
            let new = words.into_iter().map(|w| OsString::from_vec(w.to_vec()));
            args.splice(i..i + width, new);
            continue;
        }
        i += 1 + option_values(text);
    }
    Ok(args)
}

/// How many values follow the option `text` (`--bind` 2, `--bind=SRC` 1, a flag 0; an
/// unknown option 0: parsing says it is unknown).
fn option_values(text: &[u8]) -> usize {
    let (name, inline) = match text.iter().position(|&b| b == b'=') {
        Some(eq) if text.starts_with(b"--") => (&text[..eq], 1),
        _ => (text, 0),
    };
    let found = if name.starts_with(b"--") {
        options().find(|o| o.name.as_bytes() == name)
    } else if name.len() == 2 {
        options().find(|o| o.short.is_some_and(|c| u32::from(c) == u32::from(name[1])))
    } else {
        None
    };
    found.map_or(0, |o| o.values.split_whitespace().count().saturating_sub(inline))
}

/// Parses the arguments after the program name into what they ask for, dispatching each
/// option to its entry in the table. No I/O.
#[cfg(test)]
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Action, Error> {
    parse_as(Personality::Nscell, args)
}

/// [`parse`], for `personality`.
pub fn parse_as(
    personality: Personality,
    args: impl IntoIterator<Item = OsString>,
) -> Result<Action, Error> {
    use lexopt::Arg::{Long, Short, Value};
    let mut parser = lexopt::Parser::from_args(args);
    let mut state = State::default();
    state.cli.personality = personality;
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
        (option.parse)(&mut state, &mut Values { parser: &mut parser, option, personality })?;
        let overlay = ["--overlay-src", "--overlay", "--tmp-overlay", "--ro-overlay"];
        if !state.overlay_srcs.is_empty() && !overlay.contains(&option.name) {
            return Err(OVERLAY_SRC_ALONE.to_string().into());
        }
        if let Some(action) = state.done.take() {
            return Ok(action);
        }
    }
    if !state.overlay_srcs.is_empty() {
        return Err(OVERLAY_SRC_ALONE.to_string().into());
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
pub mod tests;
