//! `nscell`: runs a program in new Linux namespaces without host root.
//!
//! A thin front over the library: options (named as bubblewrap names them) become [`Sandbox`]
//! settings, and the program's fate becomes nscell's exit status. The only thing it does on its
//! own is pass SIGINT, SIGTERM and SIGHUP on to the program ([`nscell::signals`]).
//!
//! A run goes one way: [`options::parse`] turns the arguments into a plain [`cli::Cli`] (no
//! I/O); [`fds::claim`] claims the fds it names, before anything else opens one; the checks
//! and the seccomp programs' reading follow ([`inputs`]); [`sandbox::sandbox`] builds the
//! sandbox; [`status`] maps how it ended to the exit status.
#![deny(unsafe_code)]

mod cli;
mod fds;
mod inputs;
mod options;
#[macro_use]
mod personality;
mod sandbox;
mod status;

use cli::Action;
use inputs::ReadStop;
use nscell::signals::{DEFAULT_FORWARDED, Forwarder};
use nscell::{Error, Sandbox};
use personality::Personality;
use status::{EXIT_SETUP, EXIT_TIMEOUT, EXIT_USAGE, JsonStatus};
use std::ffi::OsString;
use std::time::Instant;

fn main() {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    let personality = Personality::of(&argv0);
    personality.set();
    // Started with SIGCHLD ignored, nscell could not learn how the sandbox ended: the kernel
    // would reap it unasked.
    let _ = nscell::signals::default_sigchld();
    std::process::exit(run(personality, &argv0.to_string_lossy(), args.collect()));
}

/// A usage error: one line naming what is wrong, pointing to `--help` (bubblewrap's: the line
/// alone, exit status 1).
fn usage(msg: impl std::fmt::Display) -> i32 {
    match Personality::current() {
        Personality::Nscell => {
            error!("{msg} (see nscell --help)");
            EXIT_USAGE
        }
        Personality::Bwrap => {
            error!("{msg}");
            1
        }
    }
}

/// A failure of nscell's own whose nscell status is `status`, told in one line.
fn fail(msg: impl std::fmt::Display, status: i32) -> i32 {
    error!("{msg}");
    Personality::current().failure(status)
}

/// The message of a command line that could not be parsed, in the personality's words.
fn parse_message(e: &options::Error) -> String {
    match (Personality::current(), e) {
        (Personality::Bwrap, options::Error::Lexopt(lexopt::Error::UnexpectedOption(o))) => {
            format!("Unknown option {o}")
        }
        _ => e.to_string(),
    }
}

fn run(personality: Personality, argv0: &str, args: Vec<OsString>) -> i32 {
    let start = Instant::now();
    // bubblewrap without arguments prints its usage (to stderr) and fails.
    if personality.is_bwrap() && args.is_empty() {
        eprint!("{}", options::help_as(personality, argv0));
        return 1;
    }
    // `--args FD` first: the arguments it reads are parsed with the rest.
    let args = match options::expand_args(args, fds::read_args_fd) {
        Ok(args) => args,
        Err(e) => return usage(e),
    };
    let mut cli = match options::parse_as(personality, args) {
        Ok(Action::Run(cli)) => cli,
        Ok(Action::Help) => {
            print!("{}", options::help_as(personality, argv0));
            return 0;
        }
        Ok(Action::Version) => {
            println!("{}", personality.version());
            return 0;
        }
        Ok(Action::Check) => {
            let support = Sandbox::check();
            println!("{support}");
            return if support.default_works() { 0 } else { 1 };
        }
        Ok(Action::Gc(parent)) => {
            return match nscell::cgroup::collect_garbage(parent.as_deref()) {
                Ok(removed) => {
                    for dir in removed {
                        println!("removed {}", dir.display());
                    }
                    0
                }
                Err(e) => usage(e.to_string()),
            };
        }
        Err(e) => return usage(parse_message(&e)),
    };
    personality::set_level_prefix(cli.level_prefix);
    if personality.is_bwrap() && cli.command.is_empty() {
        eprint!("{}", options::help_as(personality, argv0));
        return 1;
    }
    // First of all, before anything opens an fd: the numbers still name what the caller gave.
    let mut fds = match fds::claim(&cli.named_fds()) {
        Ok(fds) => fds,
        Err(e) if personality.is_bwrap() && e.bwrap_message().is_some() => {
            return fail(e.bwrap_message().unwrap_or_default(), EXIT_USAGE);
        }
        Err(e) if e.points_to_help() => return usage(e),
        Err(e) => return fail(e, EXIT_USAGE),
    };
    // bubblewrap passes on what it inherited without close-on-exec.
    let inherited = match personality.is_bwrap() {
        true => fds::claim_inherited(&mut fds).unwrap_or_default(),
        false => Vec::new(),
    };
    if cli.die_with_parent {
        // The process that started nscell dying ends nscell too (and so the sandbox).
        let parent = rustix::process::getppid();
        let _ =
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
        if rustix::process::getppid() != parent {
            return fail("the process that started nscell has ended", EXIT_SETUP);
        }
    }
    if cli.chdir_given > 1 {
        warning!("Only the last --chdir option will take effect");
    }
    if cli.seccomp_given > 1 && cli.personality.is_bwrap() {
        warning!("Only the last --seccomp option will take effect");
    }
    if let Err(msg) = inputs::check_personality(&cli) {
        return fail(msg, EXIT_USAGE);
    }
    if let Err(msg) = inputs::check_seccomp_fds(&cli, &fds) {
        return usage(msg);
    }
    let json = match cli.json_status_fd.map(|fd| fds.file(fd)).transpose() {
        Ok(f) => f,
        Err(e) => {
            let fd = cli.json_status_fd.unwrap_or(-1);
            return fail(format!("--json-status-fd {fd}: {e}"), EXIT_USAGE);
        }
    };
    let info = match cli.info_fd.map(|fd| fds.file(fd)).transpose() {
        Ok(f) => f,
        Err(e) => return fail(format!("--info-fd {}: {e}", cli.info_fd.unwrap_or(-1)), EXIT_USAGE),
    };
    if let Err(msg) = cli::check(&cli, rustix::process::geteuid().is_root()) {
        return usage(msg);
    }
    if let Err(msg) = inputs::resolve_egress(&mut cli.net) {
        return fail(msg, EXIT_USAGE);
    }
    if let Err(msg) = inputs::check_files(&cli, &fds) {
        return fail(msg, EXIT_USAGE);
    }
    if cli.assert_userns_disabled {
        if let Err(msg) = inputs::assert_userns_disabled(&cli) {
            return fail(msg, EXIT_SETUP);
        }
    }

    // A terminal on stdin: the command gets a pty of its own, relayed to it; unless it is to
    // share this terminal.
    let pty = cli.pty.unwrap_or_else(|| {
        !personality.is_bwrap()
            && cli.new_session != Some(false)
            && rustix::termios::isatty(rustix::stdio::stdin())
    });
    // Only a command in nscell's own session gets the terminal's Ctrl-C itself.
    let shares_terminal = !pty && sandbox::new_session(&cli) == Some(false);
    // Before the program exists (and before any thread, which inherits the mask), so a signal
    // that comes early waits for it instead of ending nscell and leaving the program behind.
    // SIGWINCH too: the pty relay then reads it from a signalfd instead of polling the size.
    let forwarder = Forwarder::builder(&DEFAULT_FORWARDED)
        .job_control(shares_terminal)
        .window_size(true)
        .on_unforwarded(|e| warning!("signals will not be passed on to the program: {e}"))
        .block();
    let forwarder = match forwarder {
        Ok(f) => Some(f),
        Err(e) => {
            warning!("signals will not be passed on to the program: {e}");
            None
        }
    };
    // A signal that comes while the sandbox is being set up ends the setup (a step can block:
    // --file reads its fd to the end); one that comes later is passed on to the program.
    let abort = forwarder.as_ref().and_then(Forwarder::signal_fd);
    // As if the signal had ended nscell: the program never ran.
    let ended_by_signal =
        || 128 + forwarder.as_ref().and_then(Forwarder::take_signal).unwrap_or(libc::SIGTERM);
    let deadline = cli.timeout.and_then(|t| start.checked_add(t));
    let programs = match inputs::read_seccomp_programs(&cli, &fds, deadline, abort) {
        Ok(programs) => programs,
        Err(ReadStop::Usage(msg)) => return usage(msg),
        Err(ReadStop::TimedOut) => {
            error!(
                "--timeout passed while reading a seccomp program: its fd was never closed by \
                 its writer"
            );
            return EXIT_TIMEOUT;
        }
        Err(ReadStop::Signal) => return ended_by_signal(),
    };
    // The rest of --timeout is the sandbox's.
    cli.timeout = cli.timeout.map(|t| t.saturating_sub(start.elapsed()));
    let mut sb = sandbox::sandbox(&cli, &fds, &programs, &inherited);
    sb.pty(pty);
    // Only a setup step that reads an fd (--file) can block; without one the setup takes the
    // fast path, and a signal that comes meanwhile reaches the program once it runs.
    let blocks = cli.block_fd.is_some() || cli.userns_block_fd.is_some();
    let setup_can_block = blocks || cli.fs.iter().any(|op| matches!(op, cli::FsOp::File { .. }));
    if let Some(fd) = abort.filter(|_| setup_can_block).and_then(|fd| fd.try_clone_to_owned().ok())
    {
        sb.abort_setup_on(fd);
    }
    // With a block fd, the caller waits for the start record before it unblocks the setup (it
    // may write the id maps first): the records are written from the setup, once the
    // namespaces exist, as bubblewrap writes them right after its clone.
    let (mut info, mut json) = (info, json);
    let early_json = std::sync::Arc::new(std::sync::Mutex::new(None));
    // The namespaces, seen while the sandbox is set up: a short program may be gone (its
    // links unreadable) by the time spawn returns.
    let seen = status::Seen::default();
    if info.is_some() || json.is_some() {
        for stage in [nscell::SetupStage::NamespacesCreated, nscell::SetupStage::BeforeExec] {
            let seen = seen.clone();
            sb.on_setup(stage, move |at| {
                status::look_at(&seen, at.pid);
                Ok(())
            });
        }
    }
    if blocks {
        let (mut info, mut json, slot) = (info.take(), json.take(), early_json.clone());
        let early_seen = seen.clone();
        let wait_for = |fd: Option<i32>| fd.and_then(|fd| fds.file(fd).ok());
        let (mut userns_block, block) = (wait_for(cli.userns_block_fd), wait_for(cli.block_fd));
        let abort = || abort.and_then(|fd| fd.try_clone_to_owned().ok());
        let (abort1, abort2) = (abort(), abort());
        let deadline = cli.timeout.and_then(|t| Instant::now().checked_add(t));
        sb.on_setup(nscell::SetupStage::NamespacesCreated, move |at| {
            let record = status::start_record(at.pid, false, None, &early_seen);
            if let Some(info) = info.take() {
                // Before the setup goes on: the caller reads it, then unblocks.
                let _ = status::write_info(info, &record).join();
            }
            if let Some(json) = json.take() {
                let started = JsonStatus::start(json, record);
                *slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(started);
            }
            if let Some(fd) = userns_block.take() {
                inputs::wait_unblocked(&fd, abort1.as_ref(), deadline)?;
            }
            Ok(())
        });
        if let Some(fd) = block {
            sb.on_setup(nscell::SetupStage::BeforeExec, move |_| {
                inputs::wait_unblocked(&fd, abort2.as_ref(), deadline)
            });
        }
    }
    let mut child = match sb.spawn() {
        Ok(child) => child,
        Err(Error::SetupInterrupted) => return ended_by_signal(),
        // Whatever `check` did not catch, the library's sentence names the value.
        Err(Error::InvalidInput(msg)) => return usage(msg),
        Err(e) => return fail(status::message(&cli, &e), status::error_status(&e)),
    };
    if let Some(cg) = child.cgroup() {
        for (limit, held) in cg.holds() {
            if let nscell::cgroup::Held::No(why) = held {
                warning!("{limit} does not hold here: {why}");
            }
        }
    }
    // One look at the program's namespaces serves both records.
    let record = if info.is_some() || json.is_some() {
        status::start_record(child.id(), sandbox::has_init(&cli), child.network_helper_id(), &seen)
    } else {
        String::new()
    };
    let info_written = info.map(|info| status::write_info(info, &record));
    let early_json = early_json.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    let json = json.map(|f| JsonStatus::start(f, record)).or(early_json);
    // As the library does: a deadline the clock cannot represent is never reached.
    let deadline = cli.timeout.and_then(|t| Instant::now().checked_add(t));
    let ended = match (&forwarder, pty) {
        // The relay has a loop of its own; the signals are passed on from a thread beside it.
        (Some(f), true) => f.relay(&mut child),
        (Some(f), false) => f.wait(&mut child, deadline),
        (None, true) => nscell::pty::relay(&mut child),
        (None, false) => child.wait_info(),
    };
    let oom_killed = ended.as_ref().is_ok_and(|info| info.oom_killed());
    if oom_killed {
        error!("the command was killed by the OOM killer: it reached its --memory limit");
    }
    let code = match ended {
        Ok(info) if info.timed_out => {
            if info.timed_out_in_setup {
                error!(
                    "the sandbox was still being set up when --timeout passed: a setup step \
                     blocked (a --file whose input never ends, say)"
                );
            }
            EXIT_TIMEOUT
        }
        Ok(info) => info.shell_code(),
        Err(e) => fail(e, EXIT_SETUP),
    };
    if let Some(json) = json {
        json.finish(code, oom_killed);
    }
    if let Some(written) = info_written {
        let _ = written.join();
    }
    code
}
