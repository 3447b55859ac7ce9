//! Passing signals on to a sandbox: [`Forwarder`].
//!
//! A front end that runs one sandbox and waits for it (the `nscell` binary, an OCI runtime's
//! `run`) stands between the user and the program: a `SIGTERM` from a service manager, or a
//! `SIGHUP` when the terminal goes away, is meant for the program. A [`Forwarder`] passes such
//! signals on without a signal handler: the signals are *blocked* in the calling thread
//! ([`pthread_sigmask`]), so they stay pending instead of ending the caller, and are taken from
//! a [`signalfd`] polled beside the sandbox's pidfd, then sent on with [`pidfd_send_signal`].
//!
//! Nothing here installs a handler or changes a disposition. Blocking is the one change to the
//! caller, made only by [`ForwarderBuilder::block`], on the calling thread, and left in place
//! when the `Forwarder` is dropped (a signal pending then would otherwise be delivered to the
//! caller at once: call [`Forwarder::unblock`] to restore the mask on purpose). Threads inherit
//! their creator's mask, so block in `main` before any thread is started, or a signal sent to
//! the process may be delivered to another thread that does not block it.
//!
//! ```no_run
//! use nscell::{Sandbox, signals::Forwarder};
//!
//! let fwd = Forwarder::builder(&nscell::signals::DEFAULT_FORWARDED).block()?;
//! let mut sb = Sandbox::new("sleep");
//! sb.arg("10");
//! // A Ctrl-C while the sandbox is being set up ends the setup.
//! if let Some(fd) = fwd.signal_fd() {
//!     sb.abort_setup_on(fd.try_clone_to_owned()?);
//! }
//! let mut child = sb.spawn()?;
//! let info = fwd.wait(&mut child, None)?;
//! println!("{:?}", info.status);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`pthread_sigmask`]: https://man7.org/linux/man-pages/man3/pthread_sigmask.3.html
//! [`signalfd`]: https://man7.org/linux/man-pages/man2/signalfd.2.html
//! [`pidfd_send_signal`]: https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html

use crate::process::timespec;
use crate::{Child, Error, WaitInfo, sys};
use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Puts the calling process's `SIGCHLD` back to its default if it is ignored, and says whether it
/// was; a handler is left alone. Call it on purpose, at the start of a front end that may be
/// started with `SIGCHLD` ignored (dispositions survive `execve`): then the kernel reaps every
/// child as it ends, and no wait can report its status (`Child::wait` fails with `ECHILD`, as
/// std's does). Nothing in this crate calls it for you: a disposition is the whole process's.
/// A sandbox's program always starts with `SIGCHLD` at its default, whatever the caller's.
pub fn default_sigchld() -> io::Result<bool> {
    sys::default_ignored_sigchld().map_err(io::Error::from)
}

/// The signals the `nscell` binary passes on: `SIGINT`, `SIGTERM` and `SIGHUP`.
pub const DEFAULT_FORWARDED: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Sharing the terminal: how often [`Forwarder::wait`] looks whether a shell's `fg` made the
/// caller's group the foreground one (a running job gets no `SIGCONT`), to pass the terminal on.
const FOREGROUND_LOOK: Duration = Duration::from_millis(200);

/// Without a signalfd: how long the forwarding thread waits for a signal before it looks
/// whether the program has ended.
const THREAD_LOOK: Duration = Duration::from_millis(100);

/// The bit of `sig` in a kernel signal mask.
/// What job control adds to the forwarded signals: `SIGCHLD` (the program stopped) and
/// `SIGCONT` (the caller was continued).
const JOB_CONTROL: u64 = bit(libc::SIGCHLD) | bit(libc::SIGCONT);

const fn bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

/// What a [`Forwarder`] is to do, before anything is blocked: [`Forwarder::builder`].
#[derive(Debug, Clone)]
#[must_use = "nothing is blocked until block() is called"]
pub struct ForwarderBuilder {
    forwarded: u64,
    job_control: bool,
    window_size: bool,
    invalid: Option<i32>,
    unforwarded: Option<fn(&io::Error)>,
}

impl ForwarderBuilder {
    /// Also follow the sandbox's stops, for a sandbox that shares the caller's terminal as a
    /// job of its own ([`Sandbox::new_session`](crate::Sandbox::new_session)`(false)` without a
    /// pty): `SIGCHLD` and `SIGCONT` are blocked too. When the program stops (Ctrl-Z), the
    /// caller stops with the same signal (`SIGSTOP` if the caller does not have the default
    /// action for it), so the shell that started the caller sees its job stop; once continued
    /// (`fg`, `bg`), the caller continues the sandbox, handing it the terminal when the caller
    /// has it. What `sudo` does for a command in a process group of its own. See
    /// [`Child::stopped`] and [`Child::resume`]. Default: off.
    #[doc(alias = "SIGCHLD")]
    #[doc(alias = "SIGTSTP")]
    pub fn job_control(mut self, on: bool) -> Self {
        self.job_control = on;
        self
    }

    /// Also block `SIGWINCH`, so that [`pty::relay`](crate::pty::relay) (and
    /// [`Forwarder::relay`]) read it from a signalfd and pass a window size change on at once
    /// instead of looking every 100 ms. Its default action is to ignore it, so blocking it
    /// changes nothing else unless the caller has a handler for it. Default: off.
    #[doc(alias = "SIGWINCH")]
    pub fn window_size(mut self, on: bool) -> Self {
        self.window_size = on;
        self
    }

    /// A function called when [`Forwarder::wait`] or [`Forwarder::relay`] can pass no signal
    /// on (neither a signalfd nor a thread could be had): the wait goes on without. Default:
    /// none.
    pub fn on_unforwarded(mut self, report: fn(&io::Error)) -> Self {
        self.unforwarded = Some(report);
        self
    }

    /// Blocks the signals in the calling thread ([`pthread_sigmask`]`(SIG_BLOCK)`), so they
    /// stay pending for the [`Forwarder`] instead of being delivered. Threads started later by
    /// this thread inherit the mask; a program spawned by a [`Sandbox`](crate::Sandbox) starts
    /// with an empty mask all the same. Fails with [`io::ErrorKind::InvalidInput`] for a
    /// signal that is not between 1 and 64, for `SIGKILL` or `SIGSTOP` (which cannot be
    /// blocked), and for the real-time signals below `SIGRTMIN` that the C library keeps for
    /// itself (32 and 33 with glibc).
    ///
    /// A signalfd of the forwarded signals is made too ([`Forwarder::signal_fd`]); without one
    /// (the kernel refused it), the forwarder works on.
    ///
    /// [`pthread_sigmask`]: https://man7.org/linux/man-pages/man3/pthread_sigmask.3.html
    #[doc(alias = "sigprocmask")]
    pub fn block(self) -> io::Result<Forwarder> {
        if let Some(sig) = self.invalid {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "signal {sig} cannot be forwarded (1 to 64, not SIGKILL, SIGSTOP or one the C \
                     library keeps)"
                ),
            ));
        }
        let mut blocked = self.forwarded;
        if self.job_control {
            blocked |= JOB_CONTROL;
        }
        if self.window_size {
            blocked |= bit(libc::SIGWINCH);
        }
        let old = sys::blocked_signals().map_err(io::Error::from)?;
        sys::set_signal_mask(old | blocked).map_err(io::Error::from)?;
        Ok(Forwarder {
            forwarded: self.forwarded,
            job_control: self.job_control,
            old_mask: old,
            setup: sys::signalfd(self.forwarded).ok(),
            unforwarded: self.unforwarded,
        })
    }
}

/// Passes signals sent to the caller on to a sandbox: see the [module docs](self).
///
/// Made by [`Forwarder::builder`]`(signals)`[`.block()`](ForwarderBuilder::block); then
/// [`wait`](Forwarder::wait) (or [`relay`](Forwarder::relay) for a sandbox with a pty) instead
/// of [`Child::wait_info`]. A forwarded signal that came before the sandbox existed stays
/// pending and is passed on once it does; one that comes during
/// [`Sandbox::spawn`](crate::Sandbox::spawn) can end the setup instead
/// ([`signal_fd`](Forwarder::signal_fd)).
///
/// A program that is PID 1 of a new PID namespace receives only the signals it has a handler
/// for: forwarding a `SIGTERM` to a shell there does nothing (see
/// [`Sandbox::init`](crate::Sandbox::init)).
#[derive(Debug)]
pub struct Forwarder {
    forwarded: u64,
    job_control: bool,
    /// The calling thread's mask before [`ForwarderBuilder::block`].
    old_mask: u64,
    /// A signalfd of the forwarded signals, for the setup.
    setup: Option<OwnedFd>,
    unforwarded: Option<fn(&io::Error)>,
}

impl Forwarder {
    /// The options of a forwarder of `signals` (see [`DEFAULT_FORWARDED`]).
    pub fn builder(signals: &[i32]) -> ForwarderBuilder {
        // The C library keeps the first real-time signals for itself (thread cancellation,
        // set*id across threads): blocking them would break it.
        let reserved = 32..libc::SIGRTMIN();
        let invalid = signals.iter().copied().find(|&s| {
            !(1..=sys::SIGRTMAX).contains(&s)
                || s == sys::SIGKILL
                || s == sys::SIGSTOP
                || reserved.contains(&s)
        });
        let forwarded = signals
            .iter()
            .filter(|&&s| (1..=sys::SIGRTMAX).contains(&s))
            .fold(0, |m, &s| m | bit(s));
        ForwarderBuilder {
            forwarded,
            job_control: false,
            window_size: false,
            invalid,
            unforwarded: None,
        }
    }

    /// A non-blocking [`signalfd`] of the forwarded signals: it polls readable while one is
    /// pending. Poll it beside a step of the caller's own that may block, and pass a duplicate
    /// to [`Sandbox::abort_setup_on`](crate::Sandbox::abort_setup_on), so such a signal ends
    /// the setup; [`take_signal`](Forwarder::take_signal) then says which one came. `None`
    /// when the kernel gave none.
    ///
    /// [`signalfd`]: https://man7.org/linux/man-pages/man2/signalfd.2.html
    pub fn signal_fd(&self) -> Option<BorrowedFd<'_>> {
        self.setup.as_ref().map(|fd| fd.as_fd())
    }

    /// Takes the next pending forwarded signal, if there is one: its number. After a setup
    /// that a signal ended ([`Error::SetupInterrupted`]), a front end usually exits with
    /// 128 + that number, as if the signal had ended it.
    pub fn take_signal(&self) -> Option<i32> {
        self.setup.as_ref().and_then(|fd| take_signal(fd.as_fd()))
    }

    /// Waits for `child` while passing the forwarded signals on to it
    /// ([`Child::signal`]), from the calling thread: a [`signalfd`] of them is polled beside
    /// the sandbox's pidfd, which costs no thread. When no signalfd can be had, a thread
    /// passes them on instead (it ends within 100 ms of the sandbox). Returns what
    /// [`Child::wait_info`] returns; `deadline` is when to stop polling and let
    /// `wait_info` enforce the sandbox's [`timeout`](crate::Sandbox::timeout) (`None`: none).
    ///
    /// With [`job_control`](ForwarderBuilder::job_control), it also follows the sandbox's
    /// stops and hands it the terminal when a shell brings the caller to the foreground.
    ///
    /// [`signalfd`]: https://man7.org/linux/man-pages/man2/signalfd.2.html
    pub fn wait(&self, child: &mut Child, deadline: Option<Instant>) -> Result<WaitInfo, Error> {
        let set = if self.job_control { self.forwarded | JOB_CONTROL } else { self.forwarded };
        let Ok(sigfd) = sys::signalfd(set) else {
            let _thread = self.forward_on_thread(child);
            return child.wait_info();
        };
        let look = self.job_control.then_some(FOREGROUND_LOOK);
        loop {
            if self.job_control {
                child.take_foreground();
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let wait = match (left, look) {
                (Some(left), Some(look)) => Some(left.min(look)),
                (left, look) => left.or(look),
            };
            let (exited, signalled, stop_event) = {
                let pidfd = child.pidfd();
                // With an init, its program's stops come through a pipe.
                let stops = child.stop_events();
                let mut fds = [
                    PollFd::new(&pidfd, PollFlags::IN),
                    PollFd::new(&sigfd, PollFlags::IN),
                    PollFd::new(&pidfd, PollFlags::empty()),
                ];
                let n = match &stops {
                    Some(fd) => {
                        fds[2] = PollFd::new(fd, PollFlags::IN);
                        3
                    }
                    None => 2,
                };
                let fds = &mut fds[..n];
                match poll(fds, wait.map(timespec).as_ref()) {
                    // The deadline: wait_info enforces it (kills the sandbox, says timed out).
                    Ok(0) if deadline.is_some_and(|d| Instant::now() >= d) => break,
                    Ok(0) | Err(Errno::INTR) => continue,
                    Ok(_) => {
                        let ready = |i: usize| fds.get(i).is_some_and(|f| !f.revents().is_empty());
                        (ready(0), ready(1), ready(2))
                    }
                    Err(_) => break,
                }
            };
            if stop_event {
                follow_stop(child)?;
            }
            if let Some(sig) = signalled.then(|| take_signal(sigfd.as_fd())).flatten() {
                if sig == libc::SIGCHLD {
                    // The program (the caller's child, without an init) may have stopped.
                    follow_stop(child)?;
                } else if sig == libc::SIGCONT {
                    // Continued (a shell's `fg` or `bg` of the caller's job): so is the sandbox.
                    child.resume()?;
                } else {
                    // A terminal's Ctrl-C reaches the caller only when its process group is the
                    // foreground one, and the sandbox is never in that group (a session of its
                    // own, or a group of its own when it shares the terminal): it did not get it.
                    let _ = child.signal(sig);
                }
            }
            if exited {
                break;
            }
        }
        child.wait_info()
    }

    /// Relays the terminal to the sandbox's pty ([`pty::relay`](crate::pty::relay), on the
    /// calling thread) while a thread passes the forwarded signals on to it. The thread ends
    /// with the relay. Spawn the sandbox with [`pty`](crate::Sandbox::pty)`(true)`, and build
    /// the forwarder with [`window_size`](ForwarderBuilder::window_size)`(true)` so that
    /// window size changes are passed on at once.
    pub fn relay(&self, child: &mut Child) -> Result<WaitInfo, Error> {
        let _thread = self.forward_on_thread(child);
        crate::pty::relay(child)
    }

    /// Restores the calling thread's signal mask to what it was before
    /// [`block`](ForwarderBuilder::block). A forwarded signal still pending is then delivered
    /// to the caller at once (for `SIGTERM` with its default action: the caller ends). Call it
    /// on the thread that blocked.
    pub fn unblock(self) -> io::Result<()> {
        sys::set_signal_mask(self.old_mask).map(|_| ()).map_err(io::Error::from)
    }

    /// Starts a thread that passes the forwarded signals on to `child` (through a duplicate of
    /// its pidfd, which names the program and no other process even after it has been
    /// reaped) until the program has ended or the handle returned is dropped. The thread is
    /// not joined: it ends on its own once told (at once with a signalfd, within
    /// [`THREAD_LOOK`] without one).
    fn forward_on_thread(&self, child: &Child) -> StopThread {
        let flag = Arc::new(AtomicBool::new(false));
        let set = self.forwarded;
        let started = (|| -> io::Result<Option<OwnedFd>> {
            let pidfd = rustix::io::fcntl_dupfd_cloexec(child.pidfd(), 3)?;
            // With a signalfd, the thread sleeps in poll until a signal, the program's end or
            // the end of this pipe (its write end dropped) wakes it.
            let (fds, wake) = match sys::signalfd(set) {
                Ok(sigfd) => {
                    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
                    (Some((sigfd, r)), Some(w))
                }
                Err(_) => (None, None),
            };
            let flag = Arc::clone(&flag);
            std::thread::Builder::new()
                .name("signals".into())
                .spawn(move || forward_until(set, fds, &pidfd, &flag))?;
            Ok(wake)
        })();
        let wake = started.unwrap_or_else(|e| {
            if let Some(report) = self.unforwarded {
                report(&e);
            }
            None
        });
        StopThread { flag, wake }
    }
}

/// Tells a forwarding thread to end when dropped.
struct StopThread {
    flag: Arc<AtomicBool>,
    /// The write end of the thread's wake-up pipe, when it polls a signalfd.
    wake: Option<OwnedFd>,
}

impl Drop for StopThread {
    fn drop(&mut self) {
        self.flag.store(true, Ordering::Relaxed);
        drop(self.wake.take());
    }
}

/// The forwarding thread: takes each signal of `set` and sends it on through `pidfd`, until
/// the program's end or `stop`. With `fds` (a signalfd of `set` and the read end of the
/// wake-up pipe) it sleeps in `poll`; without, in `sigtimedwait`, looking at `stop` and the
/// program every [`THREAD_LOOK`].
fn forward_until(set: u64, fds: Option<(OwnedFd, OwnedFd)>, pidfd: &OwnedFd, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let sig = match &fds {
            Some((sigfd, wake)) => {
                let mut polled = [
                    PollFd::new(pidfd, PollFlags::IN),
                    PollFd::new(sigfd, PollFlags::IN),
                    PollFd::new(wake, PollFlags::IN),
                ];
                match poll(&mut polled, None) {
                    Ok(_) if polled.iter().step_by(2).any(|f| !f.revents().is_empty()) => return,
                    Ok(_) => take_signal(sigfd.as_fd()),
                    Err(Errno::INTR) => None,
                    Err(_) => return,
                }
            }
            None => match sys::wait_signal_for(set, THREAD_LOOK) {
                Ok(None) if program_ended(pidfd) => return,
                Ok(sig) => sig,
                Err(_) => return,
            },
        };
        if let Some(sig) = sig {
            // ESRCH: the program has ended; the caller is about to know.
            let _ = sys::pidfd_send_signal(pidfd.as_raw_fd(), sig);
        }
    }
}

/// Whether the program behind `pidfd` has ended (its pidfd polls readable).
fn program_ended(pidfd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    poll(&mut fds, Some(&timespec(Duration::ZERO))).is_ok_and(|n| n > 0)
}

/// Takes the next pending signal from a signalfd: its number.
fn take_signal(fd: BorrowedFd<'_>) -> Option<i32> {
    // struct signalfd_siginfo: u32 ssi_signo, then more; 128 bytes in all.
    let mut info = [0u8; 128];
    match rustix::io::read(fd, &mut info) {
        Ok(128) => Some(i32::from_ne_bytes([info[0], info[1], info[2], info[3]])),
        _ => None,
    }
}

/// When the sandbox that shares the caller's terminal has stopped: the caller stops too, with
/// the same signal (`SIGSTOP` if the caller's action for it is not the default), and once
/// continued, continues the sandbox ([`ForwarderBuilder::job_control`]).
fn follow_stop(child: &mut Child) -> Result<(), Error> {
    let Some(sig) = child.stopped()? else { return Ok(()) };
    let sig = if sys::has_default_action(sig) { sig } else { libc::SIGSTOP };
    let me = rustix::process::getpid().as_raw_nonzero().get();
    // Returns once the caller has been continued.
    let _ = sys::kill(me, sig);
    child.resume()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_that_cannot_be_blocked_are_refused_before_anything_is_blocked() {
        let before = sys::blocked_signals().unwrap();
        for bad in [0, 65, -1, libc::SIGKILL, libc::SIGSTOP, 32] {
            let err = Forwarder::builder(&[libc::SIGTERM, bad]).block().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad}: {err}");
        }
        assert_eq!(sys::blocked_signals().unwrap(), before);
    }

    #[test]
    #[allow(unsafe_code)]
    fn block_blocks_exactly_the_asked_signals_in_this_thread_and_unblock_restores() {
        // On a thread of its own: the mask is per thread.
        std::thread::spawn(|| {
            let before = sys::blocked_signals().unwrap();
            let fwd = Forwarder::builder(&[libc::SIGUSR1])
                .job_control(true)
                .window_size(true)
                .block()
                .unwrap();
            let want =
                bit(libc::SIGUSR1) | bit(libc::SIGCHLD) | bit(libc::SIGCONT) | bit(libc::SIGWINCH);
            assert_eq!(sys::blocked_signals().unwrap(), before | want);
            // A signal sent to this thread stays pending and is read from the signalfd.
            let tid = rustix::thread::gettid().as_raw_nonzero().get();
            let pid = rustix::process::getpid().as_raw_nonzero().get();
            // SAFETY: a signal to this thread, which blocks it.
            assert_eq!(unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGUSR1) }, 0);
            assert_eq!(fwd.take_signal(), Some(libc::SIGUSR1));
            assert_eq!(fwd.take_signal(), None);
            fwd.unblock().unwrap();
            assert_eq!(sys::blocked_signals().unwrap(), before);
        })
        .join()
        .unwrap();
    }

    /// Runs [`forward_until`] on a thread of its own (blocking `SIGUSR1` there) for a shell that
    /// exits 7 on `SIGUSR1`, sends that thread `SIGUSR1`, and returns the shell's exit code.
    #[allow(unsafe_code)]
    fn forward_usr1_to_a_shell(with_signalfd: bool) -> Option<i32> {
        use std::io::BufRead;
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "trap 'exit 7' USR1; echo ready; while :; do sleep 0.01; done"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(sh.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
        let pid = rustix::process::Pid::from_raw(sh.id() as i32).unwrap();
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).unwrap();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let forwarder = std::thread::spawn(move || {
            let set = bit(libc::SIGUSR1);
            let old = sys::blocked_signals().unwrap();
            sys::set_signal_mask(old | set).unwrap();
            let (_wake, fds) = if with_signalfd {
                let (r, w) = rustix::pipe::pipe().unwrap();
                (Some(w), Some((sys::signalfd(set).unwrap(), r)))
            } else {
                (None, None)
            };
            tid_tx.send(rustix::thread::gettid().as_raw_nonzero().get()).unwrap();
            forward_until(set, fds, &pidfd, &AtomicBool::new(false));
        });
        let tid = tid_rx.recv().unwrap();
        let me = rustix::process::getpid().as_raw_nonzero().get();
        // SAFETY: a signal to the forwarding thread, which blocks it.
        assert_eq!(unsafe { libc::syscall(libc::SYS_tgkill, me, tid, libc::SIGUSR1) }, 0);
        let status = sh.wait().unwrap();
        // It ends with the program.
        forwarder.join().unwrap();
        status.code()
    }

    #[test]
    fn the_forwarding_thread_passes_a_signal_on_and_ends_with_the_program() {
        assert_eq!(forward_usr1_to_a_shell(true), Some(7), "with a signalfd");
        assert_eq!(forward_usr1_to_a_shell(false), Some(7), "with sigtimedwait");
    }

    #[test]
    fn sigtimedwait_without_a_signal_returns_none_after_its_timeout() {
        std::thread::spawn(|| {
            let set = bit(libc::SIGUSR2);
            let old = sys::blocked_signals().unwrap();
            sys::set_signal_mask(old | set).unwrap();
            let start = Instant::now();
            assert_eq!(sys::wait_signal_for(set, Duration::from_millis(30)), Ok(None));
            assert!(start.elapsed() >= Duration::from_millis(25));
            sys::set_signal_mask(old).unwrap();
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_default_action_is_told_from_an_ignored_signal() {
        // The test harness ignores SIGPIPE (the Rust runtime does) and leaves SIGUSR1 alone.
        assert!(!sys::has_default_action(libc::SIGPIPE));
        assert!(sys::has_default_action(libc::SIGUSR1));
    }
}
