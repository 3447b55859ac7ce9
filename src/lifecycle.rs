//! The sandbox's life and death: an init as PID 1, a new session, a pseudo-terminal, death with
//! the parent, a wall-clock timeout, and what [`Child::wait_info`](crate::Child::wait_info)
//! reports (status, timeout, resource usage).
//!
//! The setters live here as a second `impl Sandbox` block; the child side is in
//! [`crate::init`], the terminal in [`crate::pty`].

use crate::error::{Error, Step};
use crate::{Namespaces, Sandbox};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// What the caller asked for (one field of [`Sandbox`]).
#[derive(Debug, Default, Clone)]
pub(crate) struct Lifecycle {
    init: bool,
    die_with_parent: bool,
    new_session: Option<bool>,
    pty: bool,
    timeout: Option<Duration>,
    /// Polled while the sandbox is set up; readable: the setup is abandoned.
    abort: Option<std::sync::Arc<OwnedFd>>,
}

/// The child's part of the plan (one field of [`crate::plan::Plan`]).
#[derive(Debug, Default)]
pub(crate) struct LifecyclePlan {
    /// Run [`crate::init`] as PID 1 and the program as its child.
    pub init: bool,
    /// `setsid()` before exec (always with a terminal).
    pub new_session: bool,
    /// The pty slave to make the controlling terminal (`TIOCSCTTY`), or -1.
    pub terminal: RawFd,
    /// A pidfd of the spawning thread (or process), or -1. The child's setup ends when the
    /// spawner does (`PR_SET_PDEATHSIG` until just before `execve`), whether or not the sandbox
    /// dies with it afterwards.
    pub parent_pidfd: RawFd,
    /// Keep `PR_SET_PDEATHSIG` through `execve` ([`Sandbox::die_with_parent`]).
    pub die_with_parent: bool,
    /// The top of the stack the init's program child runs on until it execs (0 without init).
    pub program_stack: usize,
}

impl Sandbox {
    /// Runs a tiny init as PID 1 of the sandbox, with the program as its child (as
    /// `docker run --init`). Default: off, the program itself is PID 1. Needs
    /// [`Namespaces::PID`].
    ///
    /// As PID 1 of a PID namespace, a program receives only the signals it has handlers for
    /// (`SIGTERM` does nothing to `sleep`), and it inherits every orphan in the namespace, which
    /// stays a zombie unless it is reaped. The init fixes both: it reaps every process that ends
    /// in the sandbox, forwards `SIGINT`, `SIGTERM`, `SIGHUP`, `SIGQUIT`, `SIGUSR1`, `SIGUSR2`
    /// and `SIGWINCH` to the program (except those a terminal sent to the whole foreground
    /// process group, which the program got already; a hang-up `SIGHUP` is always passed on),
    /// and when the program ends it kills what is left and exits with the program's status:
    /// its exit code, or 128+N after signal N. Use it for any non-interactive program that does
    /// not handle `SIGTERM` or that starts children.
    ///
    /// The init does no allocation and runs no program of its own: it is nscell's code, running
    /// in a copy of the caller's memory (a fork-style `clone`, without `CLONE_VM`) that it makes
    /// non-dumpable, so the program can neither ptrace it nor read that copy through
    /// `/proc/1/mem`. Sharing the caller's memory instead, as the other paths do until `execve`,
    /// would let the program read and write the caller's memory for as long as the sandbox runs.
    /// The copy costs page-table copies that grow with the caller's size (the other paths do
    /// not). With it, [`Child::wait_info`](crate::Child::wait_info) reports the resource usage of
    /// the whole sandbox. [`Child::id`](crate::Child::id) is the init's pid.
    #[doc(alias = "tini")]
    pub fn init(&mut self, init: bool) -> &mut Self {
        self.lifecycle.init = init;
        self
    }

    /// Kills the sandbox (`SIGKILL`) when the thread that spawned it ends, with
    /// [`PR_SET_PDEATHSIG`](https://man7.org/linux/man-pages/man2/PR_SET_PDEATHSIG.2const.html).
    /// Default: off.
    ///
    /// It follows the spawning *thread*, not the process: spawn from a thread that lives as
    /// long as the sandbox should (the kernel's rule). The race where the spawner dies before
    /// the child has set the signal is closed: the child checks a pidfd of the spawning thread,
    /// opened before `clone`, and leaves if it has already ended. With a PID namespace the
    /// signal ends PID 1 and so every process inside; without one, only the program, not its
    /// children. Executing a set-user-ID or file-capability program inside clears the setting.
    #[doc(alias = "PR_SET_PDEATHSIG")]
    pub fn die_with_parent(&mut self, die: bool) -> &mut Self {
        self.lifecycle.die_with_parent = die;
        self
    }

    /// Starts the program in a new session
    /// ([`setsid`](https://man7.org/linux/man-pages/man2/setsid.2.html)), so the caller's
    /// terminal is no longer its controlling terminal: it cannot push input into it with
    /// `TIOCSTI` (CVE-2017-5226), nor get `SIGINT` from its Ctrl-C. Default: on, unless a
    /// [`pty`](Sandbox::pty) is used (the program then gets a session of its own anyway).
    /// `new_session(false)` shares the caller's terminal: an interactive program inherited on
    /// a terminal needs that for job control when it has no pty.
    #[doc(alias = "setsid")]
    pub fn new_session(&mut self, new_session: bool) -> &mut Self {
        self.lifecycle.new_session = Some(new_session);
        self
    }

    /// Gives the program a new pseudo-terminal as its controlling terminal, and as its stdin,
    /// stdout and stderr where those are not configured. Default: off.
    ///
    /// The pair is allocated in the caller (`/dev/ptmx`); the program gets the slave in a new
    /// session (`setsid` + `TIOCSCTTY`), the caller gets the master from
    /// [`Child::take_pty`](crate::Child::take_pty), or lets [`crate::pty::relay`] connect it to
    /// its own terminal. When the caller's stdin is a terminal, its mode and window size are
    /// copied to the new one.
    #[doc(alias = "openpty")]
    pub fn pty(&mut self, pty: bool) -> &mut Self {
        self.lifecycle.pty = pty;
        self
    }

    /// Kills the sandbox when it runs longer than `timeout` (wall clock, from `spawn`).
    ///
    /// The deadline is enforced while the caller waits ([`Child::wait`](crate::Child::wait),
    /// [`wait_info`](crate::Child::wait_info), [`try_wait`](crate::Child::try_wait),
    /// [`wait_with_output`](crate::Child::wait_with_output), [`output`](Sandbox::output),
    /// [`status`](Sandbox::status), [`crate::pty::relay`]): nscell polls the pidfd with a
    /// timeout; it installs no signal handler and uses no `SIGALRM`. When it passes, PID 1 of
    /// the sandbox gets `SIGKILL`, which with a PID namespace ends every process inside
    /// (without one, only the program itself), and [`WaitInfo::timed_out`] says so. A timeout
    /// too long for the clock to represent (`Duration::MAX`) means no deadline.
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.lifecycle.timeout = Some(timeout);
        self
    }

    /// Abandons the setup of a sandbox when `fd` polls readable before the program has been
    /// executed: [`spawn`](Sandbox::spawn) then kills and reaps the half-built sandbox and
    /// returns [`Error::SetupInterrupted`]. Nothing is read from `fd`. Default: none.
    ///
    /// A setup step can block: [`file_from_fd`](Sandbox::file_from_fd) reads its source to the
    /// end, and a pipe's writer may never close it. [`timeout`](Sandbox::timeout) bounds the
    /// whole spawn; this lets the caller end it on an event of its own. A program that blocks
    /// `SIGINT` and `SIGTERM` and waits for them with a `signalfd` (as the `nscell` binary does)
    /// passes a duplicate of that signalfd, so a Ctrl-C during setup ends the setup. With either
    /// set, the child is spawned on the path where the caller's thread waits in user space
    /// (`clone` without `CLONE_VFORK`), a few microseconds dearer than the default.
    pub fn abort_setup_on(&mut self, fd: impl Into<OwnedFd>) -> &mut Self {
        self.lifecycle.abort = Some(std::sync::Arc::new(fd.into()));
        self
    }
}

/// The fds and settings of one spawn, kept until the child exists.
pub(crate) struct Armed {
    plan: LifecyclePlan,
    master: Option<OwnedFd>,
    slave: Option<OwnedFd>,
    _parent_pidfd: Option<OwnedFd>,
    timeout: Option<Duration>,
    abort: Option<std::sync::Arc<OwnedFd>>,
    started: Instant,
}

/// `PIDFD_THREAD` (Linux 6.9): a pidfd of one thread, which polls readable when it ends.
const PIDFD_THREAD: u32 = 0o200;

impl Lifecycle {
    /// Checks the settings against the namespaces and opens what the child needs.
    pub(crate) fn arm(&self, namespaces: Namespaces) -> Result<Armed, Error> {
        let started = Instant::now();
        if self.init && !namespaces.contains(Namespaces::PID) {
            return Err(Error::invalid(
                "init(true) needs Namespaces::PID (the init reaps and kills what is in its PID \
                 namespace; without one it would reach the host's processes)",
            ));
        }
        let mut plan = LifecyclePlan {
            init: self.init,
            new_session: self.new_session.unwrap_or(true),
            terminal: -1,
            parent_pidfd: -1,
            die_with_parent: self.die_with_parent,
            program_stack: 0,
        };
        // Always: a setup child whose spawner has died must not go on to run the program
        // unsupervised.
        let parent_pidfd = {
            use rustix::process::{PidfdFlags, pidfd_open};
            let tid = rustix::thread::gettid();
            let fd = pidfd_open(tid, PidfdFlags::from_bits_retain(PIDFD_THREAD))
                .or_else(|_| pidfd_open(rustix::process::getpid(), PidfdFlags::empty()))
                .and_then(crate::stdio::above_stdio)
                .map_err(|e| {
                    Error::setup(Step::ParentDeathSignal, None, e.raw_os_error(), false)
                })?;
            plan.parent_pidfd = fd.as_raw_fd();
            Some(fd)
        };
        let (master, slave) = if self.pty {
            let (m, s) = crate::pty::open_pair()
                .map_err(|e| Error::setup(Step::OpenPty, None, e.raw_os_error(), false))?;
            plan.terminal = s.as_raw_fd();
            plan.new_session = true;
            (Some(m), Some(s))
        } else {
            (None, None)
        };
        Ok(Armed {
            plan,
            master,
            slave,
            _parent_pidfd: parent_pidfd,
            timeout: self.timeout,
            abort: self.abort.clone(),
            started,
        })
    }
}

impl Armed {
    /// The pty slave, for the stdio slots the caller did not configure.
    pub(crate) fn terminal(&self) -> Option<RawFd> {
        self.slave.as_ref().map(|s| s.as_raw_fd())
    }

    /// What bounds the setup: the deadline (unless it lies beyond what an `Instant` can
    /// hold, which is no deadline) and the abort fd.
    pub(crate) fn setup_bound(&self) -> crate::spawn::SetupBound<'_> {
        use std::os::fd::AsFd;
        crate::spawn::SetupBound {
            deadline: self.timeout.and_then(|t| self.started.checked_add(t)),
            abort: self.abort.as_deref().map(|fd| fd.as_fd()),
        }
    }

    /// The child's part, for the plan.
    pub(crate) fn take_plan(&mut self) -> LifecyclePlan {
        std::mem::take(&mut self.plan)
    }

    /// What the [`Child`](crate::Child) keeps.
    pub(crate) fn into_child(mut self) -> ChildLife {
        ChildLife {
            // A deadline past what the clock can represent is never reached: no deadline.
            deadline: self.timeout.and_then(|t| self.started.checked_add(t)),
            timed_out: false,
            timed_out_in_setup: false,
            pty: self.master.take(),
            usage: None,
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
}

impl crate::Child {
    /// The master side of the sandbox's pseudo-terminal ([`Sandbox::pty`]), the first time it
    /// is asked for. Reading it gives what the program writes to its terminal; writing it is
    /// typing. [`crate::pty::relay`] does both with the caller's terminal.
    pub fn take_pty(&mut self) -> Option<OwnedFd> {
        self.life.pty.take()
    }
}

/// How the sandbox ended: [`Child::wait_info`](crate::Child::wait_info).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WaitInfo {
    /// The exit status of the sandbox's PID 1 (the program, or with
    /// [`init`](Sandbox::init) the init, which exits with the program's status).
    pub status: ExitStatus,
    /// True when the [`timeout`](Sandbox::timeout) passed and nscell killed the sandbox.
    pub timed_out: bool,
    /// True when the timeout passed before the program was even executed: a setup step blocked
    /// (a [`file_from_fd`](Sandbox::file_from_fd) source whose writer never closes it, say).
    pub timed_out_in_setup: bool,
    /// Resource usage of PID 1 and of every descendant it waited for (with an init: the whole
    /// sandbox), from `waitid`'s `rusage`.
    pub usage: ResourceUsage,
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
