//! A running sandbox: [`Child`], built on a pidfd.

use crate::Error;
use crate::error::Operation;
use rustix::io::Errno;
use rustix::process::WaitIdOptions;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{ChildStderr, ChildStdin, ChildStdout, ExitStatus, Output};
use std::time::{Duration, Instant};

/// A program running in a sandbox, as [`std::process::Child`], but held through a pidfd.
///
/// The pidfd (from `CLONE_PIDFD`) names this process and no other, even after its pid is reused:
/// [`signal`](Child::signal) uses `pidfd_send_signal` and [`wait`](Child::wait) uses
/// `waitid(P_PIDFD)`, so nscell never calls `waitpid(-1)` and installs no `SIGCHLD` handler. The
/// pidfd becomes readable when the program exits, so async code can poll [`Child::pidfd`].
///
/// # Dropping
///
/// A sandbox does not outlive its handle: dropping a `Child` that has not been waited for sends
/// it `SIGKILL` and reaps it, so neither a running sandbox nor a zombie is left behind. (With a
/// PID namespace, killing its PID 1 ends every process inside; without one, only the direct
/// child is killed.) To let the program finish, call [`wait`](Child::wait) or
/// [`wait_with_output`](Child::wait_with_output) before dropping.
#[derive(Debug)]
#[must_use = "dropping a Child kills the sandbox; call wait() to let it run"]
pub struct Child {
    pid: i32,
    pidfd: OwnedFd,
    status: Option<ExitStatus>,
    /// The caller's end of the program's stdin, when it is [`Stdio::piped`](crate::Stdio::piped).
    pub stdin: Option<ChildStdin>,
    /// The caller's end of the program's stdout, when it is piped.
    pub stdout: Option<ChildStdout>,
    /// The caller's end of the program's stderr, when it is piped.
    pub stderr: Option<ChildStderr>,
    /// Timeout, terminal, init stack, resource usage ([`crate::lifecycle`]).
    pub(crate) life: crate::lifecycle::ChildLife,
    /// What Landlock enforces on the program, filled in by the spawn.
    pub(crate) landlock_status: Option<crate::landlock::Status>,
    /// The sandbox's cgroup ([`crate::cgroup`]), ended with the sandbox.
    pub(crate) cgroup: Option<crate::cgroup::Cgroup>,
    /// The network helper ([`crate::net`]), stopped when the sandbox ends.
    pub(crate) network: Option<crate::net::Helper>,
}

impl Child {
    pub(crate) fn new(pid: i32, pidfd: OwnedFd, pipes: [Option<OwnedFd>; 3]) -> Child {
        let [i, o, e] = pipes;
        Child {
            pid,
            pidfd,
            status: None,
            stdin: i.map(ChildStdin::from),
            stdout: o.map(ChildStdout::from),
            stderr: e.map(ChildStderr::from),
            life: Default::default(),
            landlock_status: None,
            cgroup: None,
            network: None,
        }
    }

    /// The pid of the sandbox's network helper (pasta or slirp4netns), while it runs: from
    /// the spawn until the sandbox has been waited for.
    pub fn network_helper_id(&self) -> Option<u32> {
        self.network.as_ref().map(crate::net::Helper::id)
    }

    /// Whether the program has been waited for.
    pub(crate) fn has_ended(&self) -> bool {
        self.status.is_some()
    }

    /// The program's pid, as the caller's PID namespace numbers it.
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// What Landlock enforces on the program: how much of the requested policy the running
    /// kernel applied at this spawn, and its Landlock ABI (`None` without Landlock rules). With
    /// [`CompatLevel::HardRequirement`](crate::landlock::CompatLevel::HardRequirement) a spawn
    /// that returns a `Child` enforced everything.
    pub fn landlock_status(&self) -> Option<crate::landlock::Status> {
        self.landlock_status
    }

    /// The sandbox's cgroup, with [`Sandbox::limits`](crate::Sandbox::limits): its usage so
    /// far, what holds, and freezing and killing everything in it. It is removed when the
    /// sandbox ends (once waited for, or when the `Child` is dropped).
    pub fn cgroup(&self) -> Option<&crate::cgroup::Cgroup> {
        self.cgroup.as_ref()
    }

    /// Lets the sandbox go on without this handle: unlike dropping it, nothing is killed.
    /// Returns what another process needs to reach the sandbox later: its pid and its cgroup
    /// (which, detached, removes nothing when dropped; its [`record`](crate::cgroup::Cgroup::record)
    /// opens it again with [`Cgroup::open`](crate::cgroup::Cgroup::open)). A network helper
    /// goes on serving the sandbox, detached too (its pid is in [`Detached`]). Nothing reaps
    /// the sandbox for the caller any more: when the caller exits first, the kernel gives it
    /// to the nearest subreaper. This is how an OCI runtime's `create` leaves a sandbox that
    /// waits at its [`start_gate`](crate::Sandbox::start_gate).
    pub fn detach(mut self) -> Detached {
        let mut cgroup = self.cgroup.take();
        if let Some(cg) = cgroup.as_mut() {
            cg.disown();
        }
        let network_helper = self.network.take().map(crate::net::Helper::detach);
        // Marked ended, so that the drop kills nothing.
        self.status = Some(ExitStatus::from_raw(0));
        Detached { pid: self.id(), cgroup, network_helper }
    }

    /// The pidfd of the program. It polls readable once the program has exited.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Sends `SIGKILL`. With a PID namespace this ends every process in it (it kills its PID
    /// 1); with a cgroup ([`Sandbox::limits`](crate::Sandbox::limits)) everything in the
    /// cgroup is killed too; with neither, only the program: its children live on.
    /// Does nothing if the program has already been waited for, like std.
    #[doc(alias = "kill_tree")]
    pub fn kill(&mut self) -> Result<(), Error> {
        if self.status.is_none() {
            if let Some(cg) = &self.cgroup {
                let _ = cg.kill();
            }
        }
        self.signal(libc_sig::SIGKILL)
    }

    /// Sends signal `sig` (1 to 64) with
    /// [`pidfd_send_signal`](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html).
    ///
    /// As PID 1 of a new PID namespace, the program only receives the signals it has a handler
    /// for, plus `SIGKILL` and `SIGSTOP` (a kernel rule): a plain `SIGTERM` to a shell that is
    /// PID 1 does nothing.
    pub fn signal(&mut self, sig: i32) -> Result<(), Error> {
        if !(1..=crate::sys::SIGRTMAX).contains(&sig) {
            return Err(Error::invalid(format!("signal {sig} is not between 1 and 64")));
        }
        if self.status.is_some() {
            return Ok(());
        }
        match crate::sys::pidfd_send_signal(self.pidfd.as_raw_fd(), sig) {
            Ok(()) | Err(Errno::SRCH) => Ok(()),
            Err(e) => Err(Error::process(Operation::Signal, e)),
        }
    }

    /// Waits for the program to exit and returns its status. Closes `stdin` first, so a program
    /// reading it sees EOF instead of waiting forever. Enforces the
    /// [`timeout`](crate::Sandbox::timeout), if one is set.
    pub fn wait(&mut self) -> Result<ExitStatus, Error> {
        self.wait_info().map(|i| i.status)
    }

    /// Waits like [`wait`](Child::wait), and says more: whether the
    /// [`timeout`](crate::Sandbox::timeout) ended the sandbox, and its resource usage.
    pub fn wait_info(&mut self) -> Result<crate::WaitInfo, Error> {
        drop(self.stdin.take());
        // Without a deadline, one waitid that blocks (not waitid, poll, waitid again).
        let hang = if self.life.deadline.is_some() {
            WaitIdOptions::NOHANG
        } else {
            WaitIdOptions::empty()
        };
        loop {
            if let Some(info) = self.reap_with(hang)? {
                return Ok(info);
            }
            let timeout = self.life.deadline.map(|d| d.saturating_duration_since(Instant::now()));
            wait_readable(self.pidfd.as_fd(), timeout)
                .map_err(|e| Error::process(Operation::Wait, e))?;
        }
    }

    /// Returns the status if the program has exited, `None` if it is still running (after the
    /// [`timeout`](crate::Sandbox::timeout), it is killed and waited for).
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, Error> {
        Ok(self.reap()?.map(|i| i.status))
    }

    /// The status and usage once the sandbox has been reaped; `None` while it runs. When its
    /// deadline has passed, kills it and waits for it.
    fn reap(&mut self) -> Result<Option<crate::WaitInfo>, Error> {
        self.reap_with(WaitIdOptions::NOHANG)
    }

    /// [`reap`](Child::reap), blocking until the sandbox exits unless `hang` is `NOHANG`.
    fn reap_with(&mut self, hang: WaitIdOptions) -> Result<Option<crate::WaitInfo>, Error> {
        self.reap_as(hang, true)
    }

    /// The status and usage once the sandbox has been reaped; `None` while it runs, whatever
    /// its deadline (the async face enforces it without blocking: [`Child::time_out`]).
    #[cfg(feature = "tokio")]
    pub(crate) fn reap_now(&mut self) -> Result<Option<crate::WaitInfo>, Error> {
        self.reap_as(WaitIdOptions::NOHANG, false)
    }

    /// When the [`timeout`](crate::Sandbox::timeout) ends the sandbox, if one is set.
    #[cfg(feature = "tokio")]
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.life.deadline
    }

    /// Ends the sandbox because its timeout passed: it is killed, and reported as timed out
    /// once reaped.
    #[cfg(feature = "tokio")]
    pub(crate) fn time_out(&mut self) {
        if self.status.is_none() {
            self.life.timed_out = true;
            let _ = self.kill();
        }
    }

    /// Whether the sandbox has been reaped.
    #[cfg(feature = "tokio")]
    pub(crate) fn reaped(&self) -> bool {
        self.status.is_some()
    }

    /// [`reap_with`](Child::reap_with); past the deadline, kills and waits (blocking) only when
    /// `enforce`.
    fn reap_as(
        &mut self,
        hang: WaitIdOptions,
        enforce: bool,
    ) -> Result<Option<crate::WaitInfo>, Error> {
        if self.status.is_none() {
            let options = WaitIdOptions::EXITED | hang;
            let mut reaped = wait_pidfd(self.pidfd.as_fd(), options)?;
            let late = self.life.deadline.is_some_and(|d| Instant::now() >= d);
            if reaped.is_none() && enforce && late {
                self.life.timed_out = true;
                let _ = crate::sys::pidfd_send_signal(self.pidfd.as_raw_fd(), libc_sig::SIGKILL);
                reaped = wait_pidfd(self.pidfd.as_fd(), WaitIdOptions::EXITED)?;
            }
            let Some(Waited { status, usage }) = reaped else { return Ok(None) };
            self.status = Some(status);
            self.life.usage = Some(usage);
            // The sandbox has ended: its network helper with it.
            self.network = None;
            if let Some(job) = &self.life.job {
                job.give_back();
            }
        }
        Ok(self.status.map(|status| crate::WaitInfo {
            status,
            timed_out: self.life.timed_out,
            timed_out_in_setup: self.life.timed_out_in_setup,
            usage: self.life.usage.unwrap_or_default(),
            // What the program left in its cgroup ends with it (the first time); then the
            // final count.
            cgroup: self.cgroup.as_mut().map(|c| c.finish()),
        }))
    }

    /// Waits for the program, collecting all of its piped stdout and stderr.
    pub fn wait_with_output(mut self) -> Result<Output, Error> {
        drop(self.stdin.take());
        let deadline = self.life.deadline;
        let (stdout, stderr) = read_both(self.stdout.take(), self.stderr.take(), deadline, || {
            let _ = self.reap();
        })
        .map_err(|e| Error::process(Operation::ReadOutput, e))?;
        let status = self.wait()?;
        Ok(Output { status, stdout, stderr })
    }
}

impl AsFd for Child {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }
}

/// A sandbox that goes on without its [`Child`] ([`Child::detach`]).
#[derive(Debug)]
#[non_exhaustive]
pub struct Detached {
    /// The sandbox's first process, as the caller's PID namespace numbers it.
    pub pid: u32,
    /// Its cgroup, with [`Sandbox::limits`](crate::Sandbox::limits); it removes nothing when
    /// dropped.
    pub cgroup: Option<crate::cgroup::Cgroup>,
    /// The network helper's pid, which goes on running.
    pub network_helper: Option<u32>,
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = crate::sys::pidfd_send_signal(self.pidfd.as_raw_fd(), libc_sig::SIGKILL);
            let _ = wait_pidfd(self.pidfd.as_fd(), WaitIdOptions::EXITED);
            if let Some(job) = &self.life.job {
                job.give_back();
            }
        }
    }
}

mod libc_sig {
    pub const SIGKILL: i32 = crate::sys::SIGKILL;
}

/// What [`wait_pidfd`] reports of a process: its status and its resource usage.
pub(crate) struct Waited {
    /// Exited or killed; with `WSTOPPED` or `WCONTINUED` also stopped or continued.
    pub(crate) status: ExitStatus,
    /// The process's and the children it waited for (`waitid`'s `rusage`).
    pub(crate) usage: crate::ResourceUsage,
}

/// [`waitid(P_PIDFD, pidfd, …)`](https://man7.org/linux/man-pages/man2/waitid.2.html), retried
/// on `EINTR`: the one way nscell waits for a process, so only the process the pidfd names is
/// ever reaped (or looked at, with `WNOWAIT`, `WSTOPPED`, `WCONTINUED`). `None` with `WNOHANG`
/// while it has no state change of the kinds in `options`.
pub(crate) fn wait_pidfd(
    pidfd: BorrowedFd<'_>,
    options: WaitIdOptions,
) -> Result<Option<Waited>, Error> {
    loop {
        match crate::sys::waitid_pidfd(pidfd, options) {
            Ok(w) => {
                return Ok(w.map(|(raw, usage)| Waited {
                    status: ExitStatus::from_raw(raw),
                    usage: crate::ResourceUsage::from_raw(&usage),
                }));
            }
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::process(Operation::Wait, e)),
        }
    }
}

/// `d` as the `Timespec` of a `poll` timeout, saturating at the largest one (never a negative
/// one, which `poll` refuses).
pub(crate) fn timespec(d: Duration) -> rustix::event::Timespec {
    rustix::event::Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

/// Polls `fd` until it is readable or `timeout` (None: no limit) has passed.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> Result<bool, Errno> {
    use rustix::event::{PollFd, PollFlags, poll};
    let ts = timeout.map(timespec);
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    match poll(&mut fds, ts.as_ref()) {
        Ok(n) => Ok(n > 0),
        Err(Errno::INTR) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reads two pipes to EOF at the same time, so neither can fill up and stall the program. Once
/// `deadline` has passed, calls `expired` (which kills the sandbox) and reads on without one.
fn read_both(
    out: Option<ChildStdout>,
    err: Option<ChildStderr>,
    mut deadline: Option<Instant>,
    mut expired: impl FnMut(),
) -> Result<(Vec<u8>, Vec<u8>), Errno> {
    use rustix::event::{PollFd, PollFlags, poll};
    let (mut out_buf, mut err_buf) = (Vec::new(), Vec::new());
    let mut streams: [(Option<OwnedFd>, &mut Vec<u8>); 2] =
        [(out.map(OwnedFd::from), &mut out_buf), (err.map(OwnedFd::from), &mut err_buf)];
    loop {
        let open: Vec<usize> = (0..2).filter(|&i| streams[i].0.is_some()).collect();
        if open.is_empty() {
            break;
        }
        let timeout = match deadline {
            Some(d) if Instant::now() >= d => {
                expired();
                deadline = None;
                continue;
            }
            Some(d) => Some(timespec(d.saturating_duration_since(Instant::now()))),
            None => None,
        };
        let mut fds: Vec<PollFd<'_>> = open
            .iter()
            .map(|&i| PollFd::new(streams[i].0.as_ref().unwrap(), PollFlags::IN))
            .collect();
        match poll(&mut fds, timeout.as_ref()) {
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        for (k, &i) in open.iter().enumerate() {
            if !ready[k] {
                continue;
            }
            let (fd, buf) = &mut streams[i];
            let mut chunk = [0u8; 8192];
            match rustix::io::read(fd.as_ref().unwrap(), &mut chunk) {
                Ok(0) => *fd = None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(Errno::INTR) | Err(Errno::AGAIN) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok((out_buf, err_buf))
}

/// The lifecycle's live parts: the job-control terminal a sandbox shares with its caller, and
/// the pty.
impl Child {
    /// For a sandbox that shares the caller's terminal ([`Sandbox::new_session`](crate::Sandbox::new_session)`(false)`):
    /// whether its program has stopped since the last call (Ctrl-Z, `SIGTSTP`, `SIGTTIN`,
    /// `SIGTTOU`, `SIGSTOP`), and with which signal. When it has, the terminal goes back to the
    /// caller's group (if the sandbox had it), so the caller can do what a shell does: stop in
    /// its turn, and [`resume`](crate::Child::resume) the sandbox once it is continued
    /// itself. The `nscell` binary does that, as `sudo` does. `None` otherwise, and always
    /// with a session of its own.
    ///
    /// Call it when something may have stopped: without an [`init`](crate::Sandbox::init), on
    /// `SIGCHLD` (the program is the caller's child: `waitid(WSTOPPED)` on its pidfd); with an
    /// init, which never stops itself (PID 1 ignores stop signals sent from inside), when
    /// [`stop_events`](crate::Child::stop_events) polls readable: the init writes its
    /// program's stops there.
    #[doc(alias = "WSTOPPED")]
    pub fn stopped(&mut self) -> Result<Option<i32>, Error> {
        let Some(job) = &self.life.job else { return Ok(None) };
        if self.has_ended() {
            return Ok(None);
        }
        let sig = match &job.stops {
            Some(pipe) => {
                let mut last = None;
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = rustix::io::read(pipe, &mut buf) {
                    last = Some(i32::from(buf[n - 1]));
                }
                last
            }
            None => {
                use rustix::process::WaitIdOptions;
                let options = WaitIdOptions::STOPPED | WaitIdOptions::NOHANG;
                match wait_pidfd(self.pidfd(), options) {
                    Ok(w) => w.and_then(|w| w.status.stopped_signal()),
                    Err(e) if e.raw_os_error() == Some(Errno::CHILD.raw_os_error()) => None,
                    Err(e) => return Err(e),
                }
            }
        };
        if sig.is_some() {
            job.give_back();
        }
        Ok(sig)
    }

    /// For a running sandbox that shares the caller's terminal: when the caller's group is the
    /// terminal's foreground group, hands the terminal to the sandbox's group, and says so.
    /// That happens when a shell brings the caller's job, spawned in the background, to the
    /// foreground (`fg`): the shell sends no `SIGCONT` to a job that is running, so nothing
    /// tells the caller; look now and then (the `nscell` binary does every 200 ms while the
    /// sandbox runs). False with a session of its own or once the sandbox has been waited for.
    pub fn take_foreground(&mut self) -> bool {
        let Some(job) = &self.life.job else { return false };
        !self.has_ended() && job.hand_to_sandbox()
    }

    /// The init's stop pipe, for a sandbox with an [`init`](crate::Sandbox::init) that shares the
    /// caller's terminal: it polls readable when the program has stopped (then call
    /// [`stopped`](crate::Child::stopped)). `None` otherwise.
    pub fn stop_events(&self) -> Option<BorrowedFd<'_>> {
        self.life.job.as_ref()?.stops.as_ref().map(|fd| fd.as_fd())
    }

    /// Continues a sandbox that shares the caller's terminal after a stop: when the caller's
    /// group is the terminal's foreground group (a shell's `fg` continued it), the sandbox's
    /// group gets the terminal back, and then `SIGCONT`. Does nothing with a session of its own
    /// or once the sandbox has been waited for.
    pub fn resume(&mut self) -> Result<(), Error> {
        let Some(job) = &self.life.job else { return Ok(()) };
        if self.has_ended() {
            return Ok(());
        }
        job.hand_to_sandbox();
        // Not reaped yet, so no other group can have the sandbox's number.
        if let Some(pgid) = rustix::process::Pid::from_raw(job.pgid) {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::CONT);
        }
        Ok(())
    }

    /// The master side of the sandbox's pseudo-terminal ([`Sandbox::pty`](crate::Sandbox::pty)), the first time it
    /// is asked for. Reading it gives what the program writes to its terminal; writing it is
    /// typing. [`crate::pty::relay`] does both with the caller's terminal.
    pub fn take_pty(&mut self) -> Option<OwnedFd> {
        self.life.pty.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses_map_to_a_shells_codes() {
        assert_eq!(crate::lifecycle::shell_code(0), 0);
        assert_eq!(crate::lifecycle::shell_code(42 << 8), 42);
        assert_eq!(crate::lifecycle::shell_code(255 << 8), 255);
        assert_eq!(crate::lifecycle::shell_code(libc::SIGTERM), 143);
        assert_eq!(crate::lifecycle::shell_code(libc::SIGSEGV | 0x80), 139);
        // Stopped by SIGTSTP, as bash's `$?` after Ctrl-Z; continued stays a valid code.
        assert_eq!(crate::lifecycle::shell_code(libc::SIGTSTP << 8 | 0x7f), 148);
        assert_eq!(crate::lifecycle::shell_code(0xffff), 255);
        // The parent's statuses come through ExitStatus unchanged.
        assert_eq!(
            crate::lifecycle::shell_code(ExitStatus::from_raw(libc::SIGKILL).into_raw()),
            137
        );
    }

    /// A process of the test's and its pidfd; killed and reaped when the test ends, also when
    /// it fails (a stopped one would keep the harness waiting).
    struct Spawned(std::process::Child, OwnedFd);

    fn spawn(program: &str, args: &[&str]) -> Spawned {
        let child = std::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).unwrap();
        Spawned(child, pidfd)
    }

    impl Drop for Spawned {
        fn drop(&mut self) {
            let _ = crate::sys::pidfd_send_signal(self.1.as_raw_fd(), libc::SIGKILL);
            let _ = wait_pidfd(self.1.as_fd(), WaitIdOptions::EXITED);
        }
    }

    #[test]
    fn wait_pidfd_reports_stops_continues_and_the_end_of_only_its_process() {
        let mut sleeper = spawn("sleep", &["30"]);
        let fd = sleeper.1.as_fd();
        let signal = |sig| crate::sys::pidfd_send_signal(fd.as_raw_fd(), sig).unwrap();
        let all = WaitIdOptions::EXITED | WaitIdOptions::STOPPED | WaitIdOptions::CONTINUED;
        assert!(wait_pidfd(fd, all | WaitIdOptions::NOHANG).unwrap().is_none(), "running");
        let blocking = |options| wait_pidfd(fd, options).unwrap().unwrap().status;
        signal(libc::SIGSTOP);
        assert_eq!(blocking(WaitIdOptions::STOPPED).stopped_signal(), Some(libc::SIGSTOP));
        signal(libc::SIGCONT);
        assert!(blocking(WaitIdOptions::CONTINUED).continued());
        signal(libc::SIGKILL);
        // WNOWAIT leaves it waitable.
        let peeked = blocking(WaitIdOptions::EXITED | WaitIdOptions::NOWAIT);
        assert_eq!(peeked.signal(), Some(libc::SIGKILL));
        let reaped = blocking(WaitIdOptions::EXITED);
        assert_eq!((reaped.signal(), reaped.core_dumped()), (Some(libc::SIGKILL), false));
        let e = wait_pidfd(fd, WaitIdOptions::EXITED).err().unwrap();
        assert!(matches!(e, Error::Process { operation: Operation::Wait, .. }), "{e}");
        assert_eq!(e.raw_os_error(), Some(libc::ECHILD));
        // Reaped: std's handle has no child left to wait for.
        assert!(sleeper.0.try_wait().is_err());
    }

    #[test]
    fn wait_pidfd_gives_the_exit_code_and_resource_usage() {
        let script = "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 42";
        let child = spawn("sh", &["-c", script]);
        let w = wait_pidfd(child.1.as_fd(), WaitIdOptions::EXITED).unwrap().unwrap();
        assert_eq!(w.status.code(), Some(42));
        assert!(w.usage.max_rss_kib > 0, "{:?}", w.usage);
        assert!(w.usage.user_time + w.usage.system_time > Duration::ZERO, "{:?}", w.usage);
    }
}
