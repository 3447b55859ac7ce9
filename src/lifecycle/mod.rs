//! The sandbox's life and death: an init as PID 1, a new session, a pseudo-terminal, death with
//! the parent, a wall-clock timeout, and what [`Child::wait_info`](crate::Child::wait_info)
//! reports (status, timeout, resource usage).
//!
//! The setters live with the builder (`src/sandbox/lifecycle.rs`); the child side is in
//! [`crate::child::init`], the terminal in [`pty`].

use crate::Namespaces;
use crate::error::{Error, Step};
use crate::sys;
use rustix::io::Errno;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// What the caller asked for (one field of [`Sandbox`](crate::Sandbox)).
#[derive(Debug, Default, Clone)]
pub(crate) struct Lifecycle {
    pub(crate) init: bool,
    pub(crate) die_with_parent: bool,
    pub(crate) new_session: Option<bool>,
    pub(crate) pty: bool,
    pub(crate) timeout: Option<Duration>,
    /// Polled while the sandbox is set up; readable: the setup is abandoned.
    pub(crate) abort: Option<std::sync::Arc<OwnedFd>>,
    /// [`Sandbox::start_gate`](crate::Sandbox::start_gate): the program's task waits on it
    /// before `execve`, and the spawn returns before.
    pub(crate) start_gate: Option<std::sync::Arc<OwnedFd>>,
}

/// The child's part of the plan (one field of [`crate::plan::Plan`]). Its fds are borrowed from
/// the [`Armed`] it came from ([`Armed::plan`]), which so outlives the spawn.
#[derive(Debug)]
pub(crate) struct LifecyclePlan<'a> {
    /// Run [`crate::child::init`] as PID 1 and the program as its child.
    pub init: bool,
    /// `setsid()` before exec (always with a terminal).
    pub new_session: bool,
    /// The pty slave to make the controlling terminal (`TIOCSCTTY`).
    pub terminal: Option<BorrowedFd<'a>>,
    /// A pidfd of the spawning thread (or process). The child's setup ends when the spawner
    /// does (`PR_SET_PDEATHSIG` until just before `execve`), whether or not the sandbox dies
    /// with it afterwards.
    pub parent_pidfd: BorrowedFd<'a>,
    /// Keep `PR_SET_PDEATHSIG` through `execve` ([`Sandbox::die_with_parent`](crate::Sandbox::die_with_parent)).
    pub die_with_parent: bool,
    /// The top of the stack the init's program child runs on until it execs (0 without init).
    pub program_stack: usize,
    /// Where the caller's command line and environment lie in the init's copy of its memory.
    pub caller_memory: CallerMemory,
    /// `setpgid(0, 0)`: a process group of its own in the caller's session.
    pub own_group: bool,
    /// The caller's controlling terminal, whose foreground the caller's group has, for the child
    /// to take (`tcsetpgrp`).
    pub foreground_tty: Option<BorrowedFd<'a>>,
    /// The write end of the init's stop pipe.
    pub stop_fd: Option<BorrowedFd<'a>>,
    /// The start gate ([`crate::Sandbox::start_gate`]): the program's task waits until it is
    /// readable, after its setup, before the last of the hardening and `execve`.
    pub start_gate: Option<BorrowedFd<'a>>,
}

/// The caller's memory layout as `/proc/self/stat` shows it (fields 26–28 and 45–51), read
/// before `clone`: the forked init, which has a copy of that memory, blanks its copies of the
/// caller's command line and environment and points the kernel at a name of its own
/// (`PR_SET_MM_MAP`), so `/proc/1/cmdline` shows nothing of the caller's.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CallerMemory {
    pub start_code: u64,
    pub end_code: u64,
    pub start_stack: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
}

impl CallerMemory {
    /// Reads the calling process's layout from `/proc/self/stat`.
    pub(crate) fn read() -> std::io::Result<CallerMemory> {
        let stat = std::fs::read_to_string("/proc/self/stat")?;
        let bad = || std::io::Error::from(std::io::ErrorKind::InvalidData);
        // "pid (comm) state ..." — the comm may hold anything, so count from the last ')':
        // the first field after it is field 3.
        let rest = stat.rsplit_once(')').ok_or_else(bad)?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| -> std::io::Result<u64> {
            fields.get(n - 3).and_then(|f| f.parse().ok()).ok_or_else(bad)
        };
        Ok(CallerMemory {
            start_code: field(26)?,
            end_code: field(27)?,
            start_stack: field(28)?,
            start_data: field(45)?,
            end_data: field(46)?,
            start_brk: field(47)?,
            arg_start: field(48)?,
            arg_end: field(49)?,
            env_start: field(50)?,
            env_end: field(51)?,
        })
    }
}

/// The fds and settings of one spawn, kept until the child exists: the owner of the fds the
/// child's part of the plan ([`Armed::plan`]) borrows.
pub(crate) struct Armed {
    /// The settings of [`LifecyclePlan`] (its fields of the same names).
    init: bool,
    new_session: bool,
    die_with_parent: bool,
    caller_memory: CallerMemory,
    own_group: bool,
    pub(crate) job: Option<JobTerminal>,
    /// The init's end of its stop pipe, kept until the init has it.
    stop_write: Option<OwnedFd>,
    /// The child is to take the terminal's foreground (the caller's group has it; `job`'s
    /// terminal is the plan's `foreground_tty`).
    pub(crate) took_foreground: bool,
    pub(crate) master: Option<OwnedFd>,
    pub(crate) slave: Option<OwnedFd>,
    parent_pidfd: OwnedFd,
    pub(crate) timeout: Option<Duration>,
    pub(crate) abort: Option<std::sync::Arc<OwnedFd>>,
    start_gate: Option<std::sync::Arc<OwnedFd>>,
    pub(crate) started: Instant,
}

/// `PIDFD_THREAD` (Linux 6.9): a pidfd of one thread, which polls readable when it ends.
pub(crate) const PIDFD_THREAD: u32 = 0o200;

impl Lifecycle {
    /// The plan step: checks the settings against the namespaces and opens what the child
    /// needs (the plan) and what the `Child` keeps (the live part).
    pub(crate) fn plan(&self, ctx: &crate::context::Context<'_>) -> Result<Armed, Error> {
        let namespaces = ctx.namespaces;
        let started = Instant::now();
        if self.init && !namespaces.contains(Namespaces::PID) {
            return Err(Error::invalid(
                "init(true) needs Namespaces::PID (the init reaps and kills what is in its PID \
                 namespace; without one it would reach the host's processes)",
            ));
        }
        if self.start_gate.is_some() && self.init {
            return Err(Error::invalid(
                "start_gate() cannot be used with an init (init(true), lock_file or hold_fd): \
                 the program waiting at the gate is the sandbox's first task",
            ));
        }
        let mut new_session = self.new_session.unwrap_or(true);
        let (mut own_group, mut took_foreground) = (false, false);
        let mut caller_memory = CallerMemory::default();
        if self.init {
            caller_memory = CallerMemory::read().map_err(|e| {
                let errno = e.raw_os_error().unwrap_or(libc::EIO);
                Error::setup(Step::StartProgram, Some("/proc/self/stat".into()), errno)
            })?;
        }
        // Always: a setup child whose spawner has died must not go on to run the program
        // unsupervised.
        let parent_pidfd = {
            use rustix::process::{PidfdFlags, pidfd_open};
            let tid = rustix::thread::gettid();
            pidfd_open(tid, PidfdFlags::from_bits_retain(PIDFD_THREAD))
                .or_else(|_| pidfd_open(rustix::process::getpid(), PidfdFlags::empty()))
                .and_then(crate::stdio::above_stdio)
                .map_err(|e| Error::setup(Step::ParentDeathSignal, None, e.raw_os_error()))?
        };
        let mut stop_write = None;
        let job = if !new_session && !self.pty {
            own_group = true;
            let job = JobTerminal::find()
                .map_err(|e| Error::setup(Step::ForegroundTerminal, None, e.raw_os_error()))?;
            took_foreground = job.tty.as_ref().is_some_and(|tty| job.caller_has_it(tty));
            if self.init {
                let (r, w) = rustix::pipe::pipe_with(
                    rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
                )
                .and_then(|(r, w)| {
                    Ok((crate::stdio::above_stdio(r)?, crate::stdio::above_stdio(w)?))
                })
                .map_err(|e| Error::setup(Step::Pipe, None, e.raw_os_error()))?;
                stop_write = Some(w);
                Some(JobTerminal { stops: Some(r), ..job })
            } else {
                Some(job)
            }
        } else {
            None
        };
        let (master, slave) = if self.pty {
            let (m, s) =
                open_pty_pair().map_err(|e| Error::setup(Step::OpenPty, None, e.raw_os_error()))?;
            new_session = true;
            (Some(m), Some(s))
        } else {
            (None, None)
        };
        Ok(Armed {
            init: self.init,
            new_session,
            die_with_parent: self.die_with_parent,
            caller_memory,
            own_group,
            job,
            stop_write,
            took_foreground,
            master,
            slave,
            parent_pidfd,
            timeout: self.timeout,
            abort: self.abort.clone(),
            start_gate: self.start_gate.clone(),
            started,
        })
    }
}

impl Armed {
    /// The pty slave, for the stdio slots the caller did not configure.
    pub(crate) fn terminal(&self) -> Option<BorrowedFd<'_>> {
        self.slave.as_ref().map(AsFd::as_fd)
    }

    /// What bounds the setup: the deadline (unless it lies beyond what an `Instant` can
    /// hold, which is no deadline) and the abort fd.
    pub(crate) fn setup_bound(&self) -> SetupBound<'_> {
        use std::os::fd::AsFd;
        SetupBound {
            deadline: self.timeout.and_then(|t| self.started.checked_add(t)),
            abort: self.abort.as_deref().map(|fd| fd.as_fd()),
        }
    }

    /// The child's part, for the plan: its fds borrowed from this, which the borrow keeps
    /// alive until the plan is done with (the child has exec'd).
    pub(crate) fn plan(&self) -> LifecyclePlan<'_> {
        let job_tty = self.job.as_ref().and_then(|job| job.tty.as_ref());
        LifecyclePlan {
            init: self.init,
            new_session: self.new_session,
            terminal: self.terminal(),
            parent_pidfd: self.parent_pidfd.as_fd(),
            die_with_parent: self.die_with_parent,
            program_stack: 0,
            caller_memory: self.caller_memory,
            own_group: self.own_group,
            foreground_tty: job_tty.filter(|_| self.took_foreground).map(AsFd::as_fd),
            stop_fd: self.stop_write.as_ref().map(AsFd::as_fd),
            start_gate: self.start_gate.as_deref().map(AsFd::as_fd),
        }
    }

    /// What the [`Child`](crate::Child) keeps, `pid` the sandbox's first process.
    pub(crate) fn into_child(mut self, pid: i32) -> ChildLife {
        let job = self.job.take().map(|job| JobTerminal { pgid: pid, ..job });
        ChildLife {
            // A deadline past what the clock can represent is never reached: no deadline.
            deadline: self.timeout.and_then(|t| self.started.checked_add(t)),
            timed_out: false,
            timed_out_in_setup: false,
            pty: self.master.take(),
            usage: None,
            job,
        }
    }
}

/// The lifecycle state of a [`Child`](crate::Child).
#[derive(Debug, Default)]
pub(crate) struct ChildLife {
    pub deadline: Option<Instant>,
    pub timed_out: bool,
    pub timed_out_in_setup: bool,
    pub pty: Option<OwnedFd>,
    pub usage: Option<ResourceUsage>,
    /// With [`Sandbox::new_session`](crate::Sandbox::new_session)`(false)`: the terminal and the process groups.
    pub job: Option<JobTerminal>,
}

/// The caller's controlling terminal and the two process groups that take turns on it.
#[derive(Debug)]
pub(crate) struct JobTerminal {
    /// A duplicate of the caller's controlling terminal, if fd 0, 1 or 2 is one.
    pub(crate) tty: Option<OwnedFd>,
    /// The caller's process group (when the sandbox was spawned).
    pub(crate) caller_pgrp: i32,
    /// The sandbox's process group: its first process's pid (0 until spawned).
    pub(crate) pgid: i32,
    /// With an init: the read end of the pipe on which it writes the program's stops.
    pub(crate) stops: Option<OwnedFd>,
}

/// `SIGTTOU` in a signal mask.
pub(crate) const SIGTTOU_BIT: u64 = 1 << (22 - 1);

impl JobTerminal {
    /// The caller's controlling terminal among fds 0, 1 and 2 (`tcgetsid` is the caller's
    /// session), duplicated, and the caller's group. When the caller's session or group leader
    /// lives in an ancestor PID namespace (ids read as 0 here), the terminal is left alone: the
    /// caller's group cannot be named to give the terminal back, so the sandbox runs as a
    /// background job of it.
    pub(crate) fn find() -> Result<JobTerminal, Errno> {
        let (sid, caller_pgrp) = sys::session_and_group()?;
        let tty = if sid > 0 && caller_pgrp > 0 {
            [rustix::stdio::stdin(), rustix::stdio::stdout(), rustix::stdio::stderr()]
                .into_iter()
                .find(|fd| rustix::termios::isatty(fd) && sys::terminal_session(*fd) == Ok(sid))
                .map(|fd| rustix::io::fcntl_dupfd_cloexec(fd, 3))
                .transpose()?
        } else {
            None
        };
        Ok(JobTerminal { tty, caller_pgrp, pgid: 0, stops: None })
    }

    /// Whether the caller's group is the terminal's foreground group.
    pub(crate) fn caller_has_it(&self, tty: &OwnedFd) -> bool {
        foreground(tty) == Some(self.caller_pgrp)
    }

    /// Makes `to` the terminal's foreground group when `from` has it, with `SIGTTOU` blocked
    /// in the calling thread for that call only (a background group's `tcsetpgrp` raises it),
    /// so no handler or disposition of the caller's changes. True if it did.
    pub(crate) fn hand_over(&self, from: Option<i32>, to: i32) -> bool {
        let Some(tty) = &self.tty else { return false };
        let Some(now) = foreground(tty) else { return false };
        if from.is_some_and(|from| from != now) || now == to {
            return false;
        }
        let Some(to) = rustix::process::Pid::from_raw(to) else { return false };
        let Ok(old) = sys::blocked_signals() else { return false };
        if sys::set_signal_mask(old | SIGTTOU_BIT).is_err() {
            return false;
        }
        let done = rustix::termios::tcsetpgrp(tty, to).is_ok();
        let _ = sys::set_signal_mask(old);
        done
    }

    /// Gives the terminal back to the caller's group if the sandbox's group has it.
    pub(crate) fn give_back(&self) {
        self.hand_over(Some(self.pgid), self.caller_pgrp);
    }

    /// Hands the terminal to the sandbox's group if the caller's group has it.
    pub(crate) fn hand_to_sandbox(&self) -> bool {
        self.hand_over(Some(self.caller_pgrp), self.pgid)
    }
}

/// The terminal's foreground group.
pub(crate) fn foreground(tty: &OwnedFd) -> Option<i32> {
    rustix::termios::tcgetpgrp(tty).ok().map(|p| p.as_raw_nonzero().get())
}

impl Drop for Armed {
    fn drop(&mut self) {
        // A spawn that failed after the child took the terminal: its group is gone (the child
        // has been reaped), and the terminal goes back to the caller's group.
        let Some(job) = self.job.as_ref().filter(|_| self.took_foreground) else { return };
        let Some(fg) = job.tty.as_ref().and_then(foreground) else { return };
        let gone = rustix::process::Pid::from_raw(fg)
            .is_some_and(|p| rustix::process::test_kill_process_group(p) == Err(Errno::SRCH));
        if fg != job.caller_pgrp && gone {
            job.hand_over(Some(fg), job.caller_pgrp);
        }
    }
}

/// How the sandbox ended: [`Child::wait_info`](crate::Child::wait_info).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WaitInfo {
    /// The exit status of the sandbox's PID 1 (the program, or with
    /// [`init`](crate::Sandbox::init) the init, which exits with the program's status).
    pub status: ExitStatus,
    /// True when the [`timeout`](crate::Sandbox::timeout) passed and nscell killed the sandbox.
    pub timed_out: bool,
    /// True when the timeout passed before the program was even executed: a setup step blocked
    /// (a [`file_from_fd`](crate::Sandbox::file_from_fd) source whose writer never closes it, say).
    pub timed_out_in_setup: bool,
    /// Resource usage of PID 1 and of every descendant it waited for (with an init: the whole
    /// sandbox), from `waitid`'s `rusage`.
    pub usage: ResourceUsage,
    /// What the sandbox's cgroup counted, with [`Sandbox::limits`](crate::Sandbox::limits):
    /// the whole sandbox's peak memory, OOM kills, tasks and CPU time.
    pub cgroup: Option<crate::cgroup::Usage>,
}

impl WaitInfo {
    /// The exit code a shell would give for [`status`](WaitInfo::status): the program's exit
    /// code, or 128+N when signal N ended it (SIGTERM: 143). Always 0 to 255, so a front end can
    /// exit with it (the `nscell` binary does, when no [`timeout`](crate::Sandbox::timeout)
    /// ended the sandbox).
    pub fn shell_code(&self) -> i32 {
        shell_code(self.status.into_raw())
    }

    /// True when the OOM killer ended the sandbox: it was killed by `SIGKILL` (or its init
    /// exited as such, 137) and its cgroup counted an OOM kill. Needs
    /// [`Sandbox::limits`](crate::Sandbox::limits) with a memory limit.
    pub fn oom_killed(&self) -> bool {
        let killed = self.status.signal() == Some(libc::SIGKILL) || self.status.code() == Some(137);
        killed && self.cgroup.and_then(|c| c.oom_kills).is_some_and(|n| n > 0)
    }
}

/// Resource usage, as `getrusage(2)` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ResourceUsage {
    /// CPU time spent in user mode.
    pub user_time: Duration,
    /// CPU time spent in the kernel.
    pub system_time: Duration,
    /// The largest resident set size of a single process, in KiB (`ru_maxrss`).
    pub max_rss_kib: u64,
}

impl ResourceUsage {
    pub(crate) fn from_raw(ru: &libc::rusage) -> ResourceUsage {
        let time = |tv: libc::timeval| {
            Duration::from_secs(tv.tv_sec.max(0) as u64)
                + Duration::from_micros(tv.tv_usec.max(0) as u64)
        };
        ResourceUsage {
            user_time: time(ru.ru_utime),
            system_time: time(ru.ru_stime),
            max_rss_kib: ru.ru_maxrss.max(0) as u64,
        }
    }
}

/// What ends a setup that has not reached `execve`: the sandbox's timeout, counted from
/// `spawn`, and an fd that polls readable ([`crate::Sandbox::abort_setup_on`]).
#[derive(Default)]
pub(crate) struct SetupBound<'a> {
    pub(crate) deadline: Option<std::time::Instant>,
    pub(crate) abort: Option<std::os::fd::BorrowedFd<'a>>,
}

impl SetupBound<'_> {
    pub(crate) fn is_set(&self) -> bool {
        self.deadline.is_some() || self.abort.is_some()
    }
}

/// Opens a new pty pair (master, slave), both CLOEXEC and above stdio. When the caller's stdin
/// is a terminal, its mode and window size are copied to the new one.
fn open_pty_pair() -> Result<(OwnedFd, OwnedFd), Errno> {
    use rustix::fs::{Mode, OFlags};
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    let master = crate::stdio::above_stdio(master)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let slave =
        rustix::fs::open(&name, OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty())?;
    let slave = crate::stdio::above_stdio(slave)?;
    let stdin = rustix::stdio::stdin();
    if rustix::termios::isatty(stdin) {
        if let Ok(mode) = rustix::termios::tcgetattr(stdin) {
            let _ =
                rustix::termios::tcsetattr(&slave, rustix::termios::OptionalActions::Now, &mode);
        }
        if let Ok(size) = rustix::termios::tcgetwinsize(stdin) {
            let _ = rustix::termios::tcsetwinsize(&slave, size);
        }
    }
    Ok((master, slave))
}

/// The exit code a shell gives for the wait status `raw` (as `wait4` and
/// `ExitStatus::into_raw` have it): the program's exit code, or 128+N when signal N ended it
/// (SIGTERM: 143; a core dump changes nothing: SIGSEGV is 139). A stop by signal N counts as
/// 128+N as well, as a shell's `$?` after Ctrl-Z. Always 0 to 255.
///
/// A `const fn` that neither allocates nor panics, so that the init, after `clone`, can exit
/// with it as well as the parent.
pub(crate) const fn shell_code(raw: i32) -> i32 {
    match raw & 0x7f {
        0 => (raw >> 8) & 0xff,
        // Stopped (the signal in the second byte) or continued (0xffff).
        0x7f => 128 + ((raw >> 8) & 0x7f),
        sig => 128 + sig,
    }
}
