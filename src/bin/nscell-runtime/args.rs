//! The command line, as runc's: global flags, a verb, its flags and the container ID. Parsing
//! does no I/O.

use lexopt::prelude::*;
use std::ffi::OsString;
use std::path::PathBuf;

/// The flags before the verb.
#[derive(Clone, Debug, Default)]
pub struct Global {
    /// `--root`: the state directory.
    pub root: Option<PathBuf>,
    /// `--log`: where errors (and, with `--debug`, more) are written.
    pub log: Option<PathBuf>,
    /// `--log-format json`.
    pub log_json: bool,
    /// `--debug`.
    pub debug: bool,
    /// `--systemd-cgroup`: `cgroupsPath` as `slice:prefix:name`.
    pub systemd_cgroup: bool,
}

/// `create` and `run`.
#[derive(Debug, Default)]
pub struct Create {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// `run --detach`: create and start, then exit.
    pub detach: bool,
}

/// `exec`.
#[derive(Debug, Default)]
pub struct Exec {
    pub id: String,
    pub process: Option<PathBuf>,
    pub args: Vec<OsString>,
    pub tty: bool,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
}

/// What to do.
#[derive(Debug)]
pub enum Verb {
    Create(Create),
    Run(Create),
    Start(String),
    State(String),
    Kill {
        id: String,
        all: bool,
        signal: String,
    },
    Delete {
        id: String,
        force: bool,
    },
    Ps {
        id: String,
        json: bool,
    },
    List {
        json: bool,
        quiet: bool,
    },
    Pause(String),
    Resume(String),
    Exec(Box<Exec>),
    /// `update -r FILE` (parsed; refused for now).
    Update {
        id: String,
        _resources: Option<PathBuf>,
    },
    Spec {
        rootless: bool,
        bundle: Option<PathBuf>,
    },
    Features,
    Version,
    Help,
    /// A verb of runc's that nscell-runtime does not implement.
    Unsupported(String),
}

#[derive(Debug)]
pub struct Cmd {
    pub global: Global,
    pub verb: Verb,
}

pub const USAGE: &str = "usage: nscell-runtime [--root DIR] [--log FILE] [--log-format text|json] \
[--debug] [--systemd-cgroup] VERB [OPTIONS] ID

verbs: create, start, state, kill, delete, run, exec, ps, list, pause, resume, update, spec,
features (checkpoint, restore and events are not supported)";

fn text(v: OsString) -> Result<String, String> {
    v.into_string().map_err(|v| format!("{v:?} is not valid UTF-8"))
}

fn number(v: OsString, what: &str) -> Result<u32, String> {
    let t = text(v)?;
    t.parse().map_err(|_| format!("{what}: {t:?} is not a number"))
}

/// A bool flag that may be written `--flag=true` or `--flag=false` (urfave/cli's form).
fn flag(p: &mut lexopt::Parser) -> Result<bool, String> {
    match p.optional_value() {
        None => Ok(true),
        Some(v) => match text(v)?.as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            other => Err(format!("{other:?} is not true or false")),
        },
    }
}

fn err(e: lexopt::Error) -> String {
    e.to_string()
}

pub fn parse(argv: impl IntoIterator<Item = OsString>) -> Result<Cmd, String> {
    let mut p = lexopt::Parser::from_args(argv);
    let mut g = Global::default();
    let verb = loop {
        let Some(arg) = p.next().map_err(err)? else { return Err(USAGE.to_string()) };
        match arg {
            Long("root") => g.root = Some(p.value().map_err(err)?.into()),
            Long("log") => g.log = Some(p.value().map_err(err)?.into()),
            Long("log-format") => {
                g.log_json = match text(p.value().map_err(err)?)?.as_str() {
                    "json" => true,
                    "text" => false,
                    other => return Err(format!("--log-format {other:?}: use text or json")),
                }
            }
            // runc's: its level is what --debug says here.
            Long("log-level") => g.debug = text(p.value().map_err(err)?)? == "debug",
            Long("debug") => g.debug = flag(&mut p)?,
            Long("systemd-cgroup") => g.systemd_cgroup = flag(&mut p)?,
            // runc's --rootless auto|true|false: nscell-runtime always detects it.
            Long("rootless") => {
                p.value().map_err(err)?;
            }
            Long("criu") => {
                p.value().map_err(err)?;
            }
            Long("help") | Short('h') => return Ok(Cmd { global: g, verb: Verb::Help }),
            Long("version") | Short('v') => return Ok(Cmd { global: g, verb: Verb::Version }),
            Value(v) => break text(v)?,
            other => return Err(other.unexpected().to_string()),
        }
    };
    let verb = match verb.as_str() {
        "create" | "run" => {
            let run = verb == "run";
            let mut c = Create { bundle: ".".into(), ..Default::default() };
            let mut id = None;
            while let Some(arg) = p.next().map_err(err)? {
                match arg {
                    Long("bundle") | Short('b') => c.bundle = p.value().map_err(err)?.into(),
                    Long("pid-file") => c.pid_file = Some(p.value().map_err(err)?.into()),
                    Long("console-socket") => {
                        c.console_socket = Some(p.value().map_err(err)?.into())
                    }
                    Long("preserve-fds") => {
                        c.preserve_fds = number(p.value().map_err(err)?, "--preserve-fds")?
                    }
                    Long("no-pivot") => c.no_pivot = flag(&mut p)?,
                    Long("no-new-keyring") => c.no_new_keyring = flag(&mut p)?,
                    Long("detach") | Short('d') if run => c.detach = flag(&mut p)?,
                    Long("keep") | Long("no-subreaper") if run => {
                        flag(&mut p)?;
                    }
                    Value(v) if id.is_none() => id = Some(text(v)?),
                    other => return Err(other.unexpected().to_string()),
                }
            }
            c.id = id.ok_or_else(|| format!("{verb}: missing the container ID"))?;
            if run { Verb::Run(c) } else { Verb::Create(c) }
        }
        "start" | "state" | "pause" | "resume" => {
            let id = only_id(&mut p, &verb)?;
            match verb.as_str() {
                "start" => Verb::Start(id),
                "state" => Verb::State(id),
                "pause" => Verb::Pause(id),
                _ => Verb::Resume(id),
            }
        }
        "kill" => {
            let (mut all, mut rest) = (false, Vec::new());
            while let Some(arg) = p.next().map_err(err)? {
                match arg {
                    Long("all") | Short('a') => all = flag(&mut p)?,
                    Value(v) if rest.len() < 2 => rest.push(text(v)?),
                    other => return Err(other.unexpected().to_string()),
                }
            }
            let mut rest = rest.into_iter();
            let id = rest.next().ok_or("kill: missing the container ID")?;
            Verb::Kill { id, all, signal: rest.next().unwrap_or_else(|| "SIGTERM".into()) }
        }
        "delete" => {
            let (mut force, mut id) = (false, None);
            while let Some(arg) = p.next().map_err(err)? {
                match arg {
                    Long("force") | Short('f') => force = flag(&mut p)?,
                    Value(v) if id.is_none() => id = Some(text(v)?),
                    other => return Err(other.unexpected().to_string()),
                }
            }
            Verb::Delete { id: id.ok_or("delete: missing the container ID")?, force }
        }
        "ps" => {
            let (mut json, mut id) = (false, None);
            while let Some(arg) = p.next().map_err(err)? {
                match arg {
                    Long("format") | Short('f') => json = format_json(p.value().map_err(err)?)?,
                    Value(v) if id.is_none() => id = Some(text(v)?),
                    // runc passes what follows the ID to ps(1); nscell-runtime lists pids.
                    Value(_) => {}
                    other => return Err(other.unexpected().to_string()),
                }
            }
            Verb::Ps { id: id.ok_or("ps: missing the container ID")?, json }
        }
        "list" => {
            let (mut json, mut quiet) = (false, false);
            while let Some(arg) = p.next().map_err(err)? {
                match arg {
                    Long("format") | Short('f') => json = format_json(p.value().map_err(err)?)?,
                    Long("quiet") | Short('q') => quiet = flag(&mut p)?,
                    other => return Err(other.unexpected().to_string()),
                }
            }
            Verb::List { json, quiet }
        }
        "exec" => Verb::Exec(Box::new(parse_exec(&mut p)?)),
        "update" => {
            let (mut resources, mut id) = (None, None);
            while let Some(arg) = p.next().map_err(err)? {
                match arg {
                    Long("resources") | Short('r') => {
                        resources = Some(p.value().map_err(err)?.into())
                    }
                    Value(v) if id.is_none() => id = Some(text(v)?),
                    Long(o) => {
                        return Err(format!(
                            "update --{o}: not supported; give the resources as JSON with -r FILE"
                        ));
                    }
                    other => return Err(other.unexpected().to_string()),
                }
            }
            Verb::Update {
                id: id.ok_or("update: missing the container ID")?,
                _resources: resources,
            }
        }
        "spec" => {
            let (mut rootless, mut bundle) = (false, None);
            while let Some(arg) = p.next().map_err(err)? {
                match arg {
                    Long("rootless") => rootless = flag(&mut p)?,
                    Long("bundle") | Short('b') => bundle = Some(p.value().map_err(err)?.into()),
                    other => return Err(other.unexpected().to_string()),
                }
            }
            Verb::Spec { rootless, bundle }
        }
        "features" => Verb::Features,
        "help" => Verb::Help,
        "checkpoint" | "restore" | "events" => Verb::Unsupported(verb),
        other => return Err(format!("unknown verb {other:?}\n{USAGE}")),
    };
    Ok(Cmd { global: g, verb })
}

fn format_json(v: OsString) -> Result<bool, String> {
    match text(v)?.as_str() {
        "json" => Ok(true),
        "table" => Ok(false),
        other => Err(format!("--format {other:?}: use table or json")),
    }
}

fn only_id(p: &mut lexopt::Parser, verb: &str) -> Result<String, String> {
    let mut id = None;
    while let Some(arg) = p.next().map_err(err)? {
        match arg {
            Value(v) if id.is_none() => id = Some(text(v)?),
            other => return Err(other.unexpected().to_string()),
        }
    }
    id.ok_or_else(|| format!("{verb}: missing the container ID"))
}

fn parse_exec(p: &mut lexopt::Parser) -> Result<Exec, String> {
    let mut e = Exec::default();
    let mut id = None;
    while let Some(arg) = p.next().map_err(err)? {
        match arg {
            Long("process") | Short('p') => e.process = Some(p.value().map_err(err)?.into()),
            Long("tty") | Short('t') => e.tty = flag(p)?,
            Long("console-socket") => e.console_socket = Some(p.value().map_err(err)?.into()),
            Long("detach") | Short('d') => e.detach = flag(p)?,
            Long("pid-file") => e.pid_file = Some(p.value().map_err(err)?.into()),
            Long("preserve-fds") => {
                e.preserve_fds = number(p.value().map_err(err)?, "--preserve-fds")?
            }
            Long("cwd") => e.cwd = Some(p.value().map_err(err)?.into()),
            Long("env") | Short('e') => e.env.push(text(p.value().map_err(err)?)?),
            Long("user") | Short('u') => e.user = Some(text(p.value().map_err(err)?)?),
            Long("cap") | Short('c') => e.caps.push(text(p.value().map_err(err)?)?),
            Long("no-new-privs") => e.no_new_privs = flag(p)?,
            // Accepted as runc does; nothing to do here.
            Long("process-label") | Long("apparmor") | Long("cgroup") => {
                p.value().map_err(err)?;
            }
            Value(v) => {
                id = Some(text(v)?);
                e.args = p.raw_args().map_err(err)?.collect();
                break;
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    e.id = id.ok_or("exec: missing the container ID")?;
    if e.process.is_none() && e.args.is_empty() {
        return Err("exec: give the program to run, or --process FILE".into());
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Cmd, String> {
        parse(s.split_whitespace().map(OsString::from))
    }

    #[test]
    fn global_flags_come_before_the_verb_as_containerd_passes_them() {
        let c = parse_str(
            "--root /run/x --log /tmp/log.json --log-format json --systemd-cgroup create \
             --bundle /b --pid-file /p id1",
        )
        .unwrap();
        assert_eq!(c.global.root.as_deref(), Some(std::path::Path::new("/run/x")));
        assert!(c.global.log_json && c.global.systemd_cgroup);
        let Verb::Create(cr) = c.verb else { panic!("{:?}", c.verb) };
        assert_eq!((cr.id.as_str(), cr.bundle.to_str()), ("id1", Some("/b")));
        assert_eq!(cr.pid_file.as_deref(), Some(std::path::Path::new("/p")));
    }

    #[test]
    fn kill_takes_an_optional_signal_and_exec_keeps_the_programs_own_flags() {
        let Verb::Kill { id, all, signal } = parse_str("kill --all c1 KILL").unwrap().verb else {
            panic!()
        };
        assert_eq!((id.as_str(), all, signal.as_str()), ("c1", true, "KILL"));
        let Verb::Kill { signal, .. } = parse_str("kill c1").unwrap().verb else { panic!() };
        assert_eq!(signal, "SIGTERM");
        let Verb::Exec(e) = parse_str("exec -e A=1 c1 sh -c --help").unwrap().verb else {
            panic!()
        };
        assert_eq!(e.args, ["sh", "-c", "--help"]);
        assert_eq!(e.env, ["A=1"]);
    }

    #[test]
    fn mistakes_are_one_clear_line() {
        assert!(parse_str("create").unwrap_err().contains("missing the container ID"));
        assert!(parse_str("frobnicate x").unwrap_err().contains("unknown verb"));
        assert!(parse_str("--log-format xml state x").unwrap_err().contains("text or json"));
        assert!(parse_str("exec c1").unwrap_err().contains("--process"));
        assert!(matches!(parse_str("events x").unwrap().verb, Verb::Unsupported(_)));
    }
}
