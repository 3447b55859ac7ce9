//! The lifecycle setters of [`Sandbox`] ([`crate::lifecycle`]): init, session, pty, timeout.

use crate::Sandbox;
use std::os::fd::OwnedFd;
use std::time::Duration;

impl Sandbox {
    /// Runs a tiny init as PID 1 of the sandbox, with the program as its child (as
    /// `docker run --init`). Default: off, the program itself is PID 1. Needs
    /// [`Namespaces::PID`](crate::Namespaces::PID).
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
    /// Its `/proc/1/cmdline` and `/proc/1/comm` read `nscell-init`: the init blanks its copy of
    /// the caller's command line and environment before the program starts.
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
    ///
    /// Sharing the session, the sandbox still gets a process group of its own (`setpgid`), as
    /// a job of a shell does: process groups span PID namespaces, and in the caller's group
    /// `kill(0, sig)` from inside would signal the caller and every process of its job. When
    /// the caller's group is the foreground group of its controlling terminal (found among
    /// fds 0, 1 and 2), the sandbox takes the foreground (`tcsetpgrp`), so Ctrl-C, Ctrl-Z and
    /// reading the terminal reach it and not the caller; a caller in the background (a shell's
    /// `nscell --share-terminal … &`) keeps it there. The terminal goes back to the caller's
    /// group when the sandbox is reaped ([`Child::wait`](crate::Child::wait),
    /// [`try_wait`](crate::Child::try_wait), [`wait_info`](crate::Child::wait_info), drop) and
    /// when it stops ([`Child::stopped`](crate::Child::stopped)), if the sandbox still has it.
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
    /// (without one, only the program itself), and [`WaitInfo::timed_out`](crate::WaitInfo::timed_out) says so. A timeout
    /// too long for the clock to represent (`Duration::MAX`) means no deadline.
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.lifecycle.timeout = Some(timeout);
        self
    }

    /// Abandons the setup of a sandbox when `fd` polls readable before the program has been
    /// executed: [`spawn`](Sandbox::spawn) then kills and reaps the half-built sandbox and
    /// returns [`Error::SetupInterrupted`](crate::Error::SetupInterrupted). Nothing is read from `fd`. Default: none.
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

    /// Creates the sandbox now and starts its program later, when `fd` polls readable: the
    /// OCI runtime's `create` and `start`. Default: none (the program starts at once).
    ///
    /// [`spawn`](Sandbox::spawn) does the whole setup (namespaces, id maps, mounts, the new
    /// root, cgroups, fds, working directory, rlimits, capabilities, `no_new_privs`,
    /// Landlock) and returns once the program's task waits, before its seccomp filter and
    /// `execve`. Every failure up to there is the spawn's `Err`, as without a gate. The task
    /// then waits until `fd` is readable and reads one byte from it: a byte starts the program;
    /// end of file (every writer closed without writing) makes the task exit with status 0
    /// instead. A failure after the gate (the seccomp filter, `execve`) can only show in the
    /// exit status: 127 (the program was not found or the filter refused), or 126.
    ///
    /// The waiting task is a copy of the caller's memory (a fork-style `clone`, as for an
    /// [`init`](Sandbox::init)), made non-dumpable before it waits, so no process in the
    /// sandbox can ptrace it or open its `/proc/PID/exe` (the caller's binary, CVE-2019-5736)
    /// or `/proc/PID/mem`; it holds no fd but its stdio and those the sandbox passes (and the
    /// gate, closed before `execve`). It is not tied to the spawner: the spawner may exit and
    /// another process start it, through a FIFO `fd` reads (opened
    /// `O_RDONLY | O_NONBLOCK`, a writer opens it and writes a byte) or a socket.
    /// [`Child::detach`](crate::Child::detach) lets the handle go without killing it. The
    /// `Sandbox` closes its own copy of `fd` when a spawn succeeds, so once the program has
    /// started (or the sandbox ended) nothing reads the gate: a FIFO's writer then fails
    /// with `ENXIO`.
    /// Not with an [`init`](Sandbox::init) (nor lock files or held fds, which imply one):
    /// the program is the sandbox's first task, PID 1 of its PID namespace.
    #[doc(alias = "exec.fifo")]
    pub fn start_gate(&mut self, fd: impl Into<OwnedFd>) -> &mut Self {
        self.lifecycle.start_gate = Some(std::sync::Arc::new(fd.into()));
        self
    }
}

impl Sandbox {
    /// Has the sandbox's init hold a read lock on `path` for as long as the sandbox lives:
    /// once the setup is done, before the program starts, the init opens `path` as the sandbox
    /// sees it (`O_RDONLY | O_CLOEXEC`; give it absolute) and takes
    /// [`fcntl(F_SETLK, F_RDLCK)`](https://man7.org/linux/man-pages/man2/fcntl.2.html) on the
    /// whole file. While the sandbox runs, a process outside that asks for a write lock on the
    /// file is refused; once the sandbox has ended (its program exited, or the sandbox was
    /// killed), it gets it. This is bubblewrap's `--lock-file DEST`, with which flatpak tells
    /// whether an instance still runs. At most 16.
    ///
    /// Implies an [`init`](Sandbox::init): the program is its child. Without a PID namespace
    /// of the sandbox's own the init is not PID 1: it supervises the program (passing signals
    /// on, exiting with its status), the program dies with it (`PR_SET_PDEATHSIG`), and it
    /// kills nothing else. A file that cannot be opened or locked (another process holds a
    /// write lock) fails the spawn with [`Step::LockFile`](crate::Step::LockFile).
    #[doc(alias = "F_SETLK")]
    pub fn lock_file(&mut self, path: impl AsRef<std::path::Path>) -> &mut Self {
        use std::os::unix::ffi::OsStrExt;
        let path = path.as_ref();
        match std::ffi::CString::new(path.as_os_str().as_bytes()) {
            Ok(c) => self.lock_files.push((path.to_path_buf(), c)),
            Err(_) => self.bad(format!("lock file {path:?} contains a NUL byte")),
        }
        self
    }

    /// Has the sandbox's init keep `fd` open for as long as the sandbox lives; the program
    /// does not get it. A pipe's other end so sees EOF (or `POLLHUP`) exactly when the sandbox
    /// has ended. This is bubblewrap's `--sync-fd FD`. The `Sandbox` closes its own copy when a
    /// spawn succeeds (a later spawn holds no such fd unless given one again). At most 16.
    /// Implies an [`init`](Sandbox::init), as [`lock_file`](Sandbox::lock_file) does.
    pub fn hold_fd(&mut self, fd: impl Into<OwnedFd>) -> &mut Self {
        self.held_fds.push(fd.into());
        self
    }
}
