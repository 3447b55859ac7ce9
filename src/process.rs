//! A running sandbox: [`Child`], built on a pidfd.

use crate::Error;
use crate::error::Operation;
use rustix::io::Errno;
use rustix::process::{WaitId, WaitIdOptions, WaitIdStatus};
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
        }
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

    /// The pidfd of the program. It polls readable once the program has exited.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Sends `SIGKILL`. With a PID namespace this ends every process in it (it kills its PID
    /// 1); without one, only the program: its children live on.
    /// Does nothing if the program has already been waited for, like std.
    #[doc(alias = "kill_tree")]
    pub fn kill(&mut self) -> Result<(), Error> {
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
        loop {
            if let Some(info) = self.reap()? {
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
        if self.status.is_none() {
            let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG;
            let mut reaped = crate::sys::waitid_pidfd(self.pidfd.as_fd(), options)
                .map_err(|e| Error::process(Operation::Wait, e))?;
            if reaped.is_none() && self.life.deadline.is_some_and(|d| Instant::now() >= d) {
                self.life.timed_out = true;
                let _ = crate::sys::pidfd_send_signal(self.pidfd.as_raw_fd(), libc_sig::SIGKILL);
                reaped = crate::sys::waitid_pidfd(self.pidfd.as_fd(), WaitIdOptions::EXITED)
                    .map_err(|e| Error::process(Operation::Wait, e))?;
            }
            let Some((raw, usage)) = reaped else { return Ok(None) };
            self.status = Some(ExitStatus::from_raw(raw));
            self.life.usage = Some(crate::ResourceUsage::from_raw(&usage));
            if let Some(job) = &self.life.job {
                job.give_back();
            }
        }
        Ok(self.status.map(|status| crate::WaitInfo {
            status,
            timed_out: self.life.timed_out,
            timed_out_in_setup: self.life.timed_out_in_setup,
            usage: self.life.usage.unwrap_or_default(),
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

/// `waitid(P_PIDFD, pidfd, …)`, retried on EINTR, as std's `ExitStatus`.
pub(crate) fn wait_pidfd(
    pidfd: BorrowedFd<'_>,
    options: WaitIdOptions,
) -> Result<Option<ExitStatus>, Error> {
    loop {
        match rustix::process::waitid(WaitId::PidFd(pidfd), options) {
            Ok(s) => return Ok(s.map(|s| to_exit_status(&s))),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::process(Operation::Wait, e)),
        }
    }
}

fn to_exit_status(s: &WaitIdStatus) -> ExitStatus {
    let raw = if let Some(code) = s.exit_status() {
        (code & 0xff) << 8
    } else if let Some(sig) = s.terminating_signal() {
        sig | if s.dumped() { 0x80 } else { 0 }
    } else {
        0
    };
    ExitStatus::from_raw(raw)
}

/// Polls `fd` until it is readable or `timeout` (None: no limit) has passed.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> Result<bool, Errno> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let ts = timeout.map(|t| Timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(t.subsec_nanos()),
    });
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
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
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
            Some(d) => {
                let t = d.saturating_duration_since(Instant::now());
                Some(Timespec { tv_sec: t.as_secs() as i64, tv_nsec: i64::from(t.subsec_nanos()) })
            }
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
