//! Pseudo-terminals: the pair a sandbox gets with [`Sandbox::pty`](crate::Sandbox::pty), and
//! [`relay`], which connects its master to the caller's own terminal.

use crate::error::{Error, Operation};
use crate::sys;
use crate::{Child, WaitInfo};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fs::OFlags;
use rustix::io::Errno;
use rustix::termios::{LocalModes, OptionalActions, SpecialCodeIndex, Termios, Winsize};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// How often [`relay`] looks at the caller's window size when nothing else wakes it: without
/// `SIGWINCH` blocked, and with it (a safety net, should another thread have taken the signal).
const WINDOW_SIZE_CHECK: Duration = Duration::from_millis(100);
const WINDOW_SIZE_CHECK_WITH_SIGNALFD: Duration = Duration::from_secs(1);
/// `SIGWINCH` in a signal mask.
const SIGWINCH_BIT: u64 = 1 << (28 - 1);
/// How often [`relay`] looks at the pty's mode and input queue once the caller's input has ended.
const END_OF_INPUT_CHECK: Duration = Duration::from_millis(50);
/// How long a program in non-canonical mode may stay silent, with all of its input read, after
/// the caller's input has ended, before [`relay`] sends the sandbox a hang-up's `SIGHUP`.
pub const HANG_UP_AFTER: Duration = Duration::from_secs(2);
/// How long after that `SIGHUP` a program still silent in non-canonical mode has before
/// [`relay`] closes the terminal.
pub const CLOSE_AFTER: Duration = Duration::from_secs(1);
/// In non-canonical mode, how long a program may stay silent with all of its input read before
/// [`relay`] types Ctrl-D again, and how many times it types it in all: a Ctrl-D typed at a
/// moment the program was not at its prompt (between two commands of a shell, while its line
/// editor handed the terminal back) can be taken as something else.
const RETYPE_AFTER: Duration = Duration::from_millis(400);
const KEYS_AT_MOST: u8 = 3;

/// Connects the caller's terminal to the sandbox's pseudo-terminal until the program ends, and
/// returns how it ended (as [`Child::wait_info`]). The sandbox must have been spawned with
/// [`Sandbox::pty`](crate::Sandbox::pty).
///
/// ```no_run
/// use nscell::Sandbox;
/// let mut child = Sandbox::new("/bin/bash").pty(true).spawn()?;
/// let info = nscell::pty::relay(&mut child)?;
/// std::process::exit(info.status.code().unwrap_or(1));
/// # Ok::<(), nscell::Error>(())
/// ```
///
/// What it does to the calling process, and nothing more:
///
/// - When stdin is a terminal, it is put in raw mode (`cfmakeraw`: keys go to the program as
///   they are typed, Ctrl-C and Ctrl-Z included, and the pty inside does the echoing and line
///   editing), and its mode is restored on every way out of this function: return, error and
///   panic. Only a `SIGKILL` of the caller can leave the terminal raw (`stty sane` fixes it).
/// - Bytes from stdin go to the pty, bytes from the pty go to stdout.
/// - When stdin ends (it is not a terminal: a file, a pipe, `/dev/null`), the end reaches the
///   program as it would from a person at a terminal, decided by the pty's mode at each moment
///   (the relay looks at it, and at whether the program has read all it was given, every
///   50 ms from then on):
///   - in canonical mode (line by line, the default: `cat`, `read`, `sh` reading commands), the
///     terminal's end-of-file character (`VEOF`, Ctrl-D) is typed whenever the program has read
///     everything, so *every* later read returns end-of-file, not only the first (as when a
///     person presses Ctrl-D again at each prompt: `sh -c 'cat; cat'` ends);
///   - in non-canonical mode (a line editor such as bash's readline, a full-screen program), a
///     terminal has no end of file: the relay types Ctrl-D (readline, and most programs that
///     read keys, take it on an empty line as "end" and exit), again after 400 ms in which the
///     program read it and stayed silent, three times at most (one typed while a shell ran a
///     command rather than sat at its prompt can be taken as something else) and, should the
///     program
///     then stay in non-canonical mode with nothing left to read and write nothing for
///     [`HANG_UP_AFTER`], hangs up as a terminal whose line drops does, in two steps. First the
///     sandbox's PID 1, the pty's session leader, gets `SIGHUP` (through its pidfd; an
///     [`init`](crate::Sandbox::init) passes it on to the program), while the program's output
///     is still relayed. (A pty master cannot send `SIGHUP` with `TIOCSIG`: the kernel allows
///     only `SIGINT`, `SIGQUIT` and `SIGTSTP` there.) Should the program still be there and
///     silent in non-canonical mode [`CLOSE_AFTER`] later (it ignores `SIGHUP`, as PID 1 of a
///     PID namespace without a handler does), the relay closes the pty's master side, which
///     hangs the terminal up for good: the program's reads return end-of-file and its writes
///     fail, and the relay waits for it to end (bounded by the
///     [`timeout`](crate::Sandbox::timeout), if there is one). A program that does not read
///     its input, or keeps writing, is left alone.
/// - Window size: the caller's size is given to the pty at the start and whenever it changes
///   (`TIOCSWINSZ`, which sends `SIGWINCH` to the program). The relay installs no signal handler
///   and never changes the signal mask. If the calling thread has `SIGWINCH` blocked (block it
///   in every thread, as the `nscell` binary does in `main` before starting any), the relay
///   reads it from a `signalfd` and passes a resize on at once; otherwise it compares the size
///   each time it wakes up, and at least every 100 ms, so a resize reaches the program within
///   that time.
/// - It returns once the sandbox's PID 1 has ended and the output it left in the pty has been
///   written. With a PID namespace nothing else is left inside; without one, a background
///   process that still holds the terminal is not waited for. The
///   [`timeout`](crate::Sandbox::timeout) is enforced as in [`Child::wait`].
///
/// Runs on the calling thread and blocks it; signals the caller wants passed on to the program
/// (as the `nscell` binary does for `SIGINT`, `SIGTERM`, `SIGHUP`) are the caller's business.
pub fn relay(child: &mut Child) -> Result<WaitInfo, Error> {
    let master = child.take_pty().ok_or_else(|| {
        Error::invalid("relay needs a sandbox spawned with pty(true), whose pty was not taken")
    })?;
    let io_err = |e: Errno| Error::process(Operation::RelayTerminal, e);
    let stdin = rustix::stdio::stdin();
    let stdout = rustix::stdio::stdout();
    let pidfd = rustix::io::fcntl_dupfd_cloexec(child.pidfd(), 3).map_err(io_err)?;
    let _raw = RawMode::enter(stdin).map_err(io_err)?;
    rustix::fs::fcntl_setfl(&master, OFlags::NONBLOCK | OFlags::RDWR).map_err(io_err)?;
    let size_source = [stdin, stdout].into_iter().find(|fd| rustix::termios::isatty(fd));
    let mut size = None;
    let mut input_open = true;
    // Typed input the pty could not take yet (the program is not reading).
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let winch = sys::blocked_signals()
        .is_ok_and(|mask| mask & SIGWINCH_BIT != 0)
        .then(|| sys::signalfd(SIGWINCH_BIT).ok())
        .flatten();
    let size_check =
        if winch.is_some() { WINDOW_SIZE_CHECK_WITH_SIGNALFD } else { WINDOW_SIZE_CHECK };
    let mut end_of_input = EndOfInput::default();
    let mut output = false;
    loop {
        if let Some(fd) = size_source {
            sync_window_size(fd, &master, &mut size);
        }
        let deadline_left =
            child.life.deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let check = if input_open { size_check } else { END_OF_INPUT_CHECK };
        let wait = deadline_left.map_or(check, |d| d.min(check));
        let master_events =
            if pending.is_empty() { PollFlags::IN } else { PollFlags::IN | PollFlags::OUT };
        let mut fds = vec![PollFd::new(&pidfd, PollFlags::IN), PollFd::new(&master, master_events)];
        if let Some(fd) = &winch {
            fds.push(PollFd::new(fd, PollFlags::IN));
        }
        let stdin_at = fds.len();
        if input_open && pending.is_empty() {
            fds.push(PollFd::new(&stdin, PollFlags::IN));
        }
        let ts = crate::process::timespec(wait);
        match poll(&mut fds, Some(&ts)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(io_err(e)),
        }
        let ready: Vec<PollFlags> = fds.iter().map(|f| f.revents()).collect();
        drop(fds);
        if deadline_left.is_some_and(|d| d.is_zero()) || !ready[0].is_empty() {
            // PID 1 ended (or the deadline passed: try_wait kills it then).
            if child.try_wait()?.is_some() {
                drain(&master, stdout, &mut buf);
                break;
            }
        }
        if !ready[1].is_empty() {
            match rustix::io::read(&master, &mut buf) {
                Ok(0) | Err(Errno::IO) => {
                    // Nothing holds the slave any more: the sandbox is gone.
                    break;
                }
                Ok(n) => {
                    output = true;
                    write_all(stdout, &buf[..n]).map_err(io_err)?
                }
                Err(Errno::AGAIN) | Err(Errno::INTR) => {}
                Err(e) => return Err(io_err(e)),
            }
        }
        if let Some(fd) = &winch {
            if !ready[2].is_empty() {
                // Take the signals; the size is compared at the top of the loop.
                while rustix::io::read(fd, &mut buf).is_ok_and(|n| n > 0) {}
            }
        }
        if ready.get(stdin_at).is_some_and(|r| !r.is_empty()) {
            match rustix::io::read(stdin, &mut buf) {
                Ok(0) | Err(Errno::IO) | Err(Errno::BADF) => input_open = false,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
                Err(Errno::AGAIN) | Err(Errno::INTR) => {}
                Err(e) => return Err(io_err(e)),
            }
        }
        if !pending.is_empty() {
            match rustix::io::write(&master, &pending) {
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(Errno::AGAIN) | Err(Errno::INTR) => {}
                // The sandbox is going away; its end is noticed above.
                Err(_) => pending.clear(),
            }
        }
        if !input_open && pending.is_empty() {
            match end_of_input.step(&master, std::mem::take(&mut output)) {
                None => {}
                Some(HangUp::Signal) => child.signal(SIGHUP)?,
                Some(HangUp::Close) => {
                    // For good: the program's reads see end-of-file once the master is gone.
                    drain(&master, stdout, &mut buf);
                    drop(master);
                    break;
                }
            }
        }
    }
    child.wait_info()
}

/// The end of the caller's input, passed on to the program ([`relay`]'s docs say how).
#[derive(Default)]
struct EndOfInput {
    /// How often Ctrl-D was typed for the current stretch of non-canonical mode, and when last.
    keys_typed: u8,
    last_key: Option<Instant>,
    /// Without a way to look at the program's input queue: `VEOF` was typed for the current
    /// stretch of canonical mode.
    eof_typed: bool,
    /// Since when the program, in non-canonical mode, has had nothing to read and been silent.
    idle_since: Option<Instant>,
    /// `SIGHUP` was sent.
    hung_up: bool,
}

/// The two steps of a hang-up.
enum HangUp {
    /// `SIGHUP` to the sandbox's PID 1.
    Signal,
    /// Close the pty's master side.
    Close,
}

impl EndOfInput {
    /// One look at the pty, on each turn of the relay's loop once the input has ended and all of
    /// it has been written; `output` says whether the program wrote since the last look.
    fn step(&mut self, master: &OwnedFd, output: bool) -> Option<HangUp> {
        let Ok(mode) = rustix::termios::tcgetattr(master) else { return None };
        let eof = mode.special_codes[SpecialCodeIndex::VEOF];
        let unread = unread_input(master);
        // A disabled VEOF (_POSIX_VDISABLE) leaves no end of file to type: as non-canonical.
        if mode.local_modes.contains(LocalModes::ICANON) && eof != 0 {
            (self.keys_typed, self.last_key, self.idle_since) = (0, None, None);
            // Keep one end of file waiting: each read of the program's takes one.
            let type_it = match unread {
                Some(unread) => !unread,
                None => !std::mem::replace(&mut self.eof_typed, true),
            };
            if type_it {
                let _ = rustix::io::write(master, &[eof]);
            }
            return None;
        }
        self.eof_typed = false;
        if unread == Some(true) {
            // It has not read what it was given: not waiting for more.
            self.idle_since = None;
            return None;
        }
        let now = Instant::now();
        if output {
            // It answered: a later Ctrl-D counts from here.
            self.last_key = self.last_key.map(|_| now);
        }
        let due = self.last_key.is_none_or(|at| now - at >= RETYPE_AFTER);
        if eof != 0 && self.keys_typed < KEYS_AT_MOST && due {
            self.keys_typed += 1;
            self.last_key = Some(now);
            self.idle_since = None;
            let _ = rustix::io::write(master, &[eof]);
            return None;
        }
        let since = match self.idle_since {
            Some(since) if !output => since,
            _ => *self.idle_since.insert(now),
        };
        if now - since < if self.hung_up { CLOSE_AFTER } else { HANG_UP_AFTER } {
            return None;
        }
        if self.hung_up {
            return Some(HangUp::Close);
        }
        self.hung_up = true;
        self.idle_since = Some(now);
        Some(HangUp::Signal)
    }
}

/// `SIGHUP`.
const SIGHUP: i32 = 1;

/// Whether the program has input it has not read yet (in canonical mode: a whole line, or an end
/// of file), from a look at the pty's slave side (`TIOCGPTPEER`, opened only for the look, so
/// the master still sees the end of the sandbox as `EIO`). `None` when it cannot be opened.
fn unread_input(master: &OwnedFd) -> Option<bool> {
    use rustix::pty::{OpenptFlags, ioctl_tiocgptpeer};
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let slave = ioctl_tiocgptpeer(master, flags).ok()?;
    let mut fds = [PollFd::new(&slave, PollFlags::IN)];
    let now = Timespec { tv_sec: 0, tv_nsec: 0 };
    poll(&mut fds, Some(&now)).ok()?;
    Some(fds[0].revents().contains(PollFlags::IN))
}

/// Copies the size of the caller's terminal to the pty when it has changed.
fn sync_window_size(from: BorrowedFd<'_>, master: &OwnedFd, last: &mut Option<Winsize>) {
    if let Ok(now) = rustix::termios::tcgetwinsize(from) {
        let changed = last.is_none_or(|l| {
            (l.ws_row, l.ws_col, l.ws_xpixel, l.ws_ypixel)
                != (now.ws_row, now.ws_col, now.ws_xpixel, now.ws_ypixel)
        });
        if changed && rustix::termios::tcsetwinsize(master, now).is_ok() {
            *last = Some(now);
        }
    }
}

/// Writes what is left in the pty (the program's last output) to `out`: until `EIO`, which the
/// kernel returns once every process has closed the slave and its buffered output has been read.
/// Bounded in time: without a PID namespace, a process left behind may hold the slave open.
fn drain(master: &OwnedFd, out: BorrowedFd<'_>, buf: &mut [u8]) {
    const QUIET: Duration = Duration::from_millis(200);
    const AT_MOST: Duration = Duration::from_secs(2);
    let start = Instant::now();
    let mut last_data = start;
    loop {
        match rustix::io::read(master, &mut *buf) {
            Ok(0) | Err(Errno::IO) => return,
            Ok(n) => {
                if write_all(out, &buf[..n]).is_err() {
                    return;
                }
                last_data = Instant::now();
            }
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                let now = Instant::now();
                if now - last_data >= QUIET || now - start >= AT_MOST {
                    return;
                }
                let wait = QUIET - (now - last_data);
                let ts = crate::process::timespec(wait);
                let mut fds = [PollFd::new(master, PollFlags::IN)];
                let _ = poll(&mut fds, Some(&ts));
            }
            Err(_) => return,
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
                let _ = poll(&mut fds, None);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The caller's terminal in raw mode, restored when dropped (unwinding included).
struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: Option<Termios>,
}

impl<'a> RawMode<'a> {
    /// Raw mode when `fd` is a terminal; nothing otherwise.
    fn enter(fd: BorrowedFd<'a>) -> Result<RawMode<'a>, Errno> {
        if !rustix::termios::isatty(fd) {
            return Ok(RawMode { fd, saved: None });
        }
        let saved = rustix::termios::tcgetattr(fd)?;
        let mut raw = saved.clone();
        raw.make_raw();
        // TCSADRAIN, not TCSAFLUSH: what the user typed ahead, before the program started, is
        // still to be read and relayed to it (ssh and script(1) do the same).
        rustix::termios::tcsetattr(fd, OptionalActions::Drain, &raw)?;
        Ok(RawMode { fd, saved: Some(saved) })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = rustix::termios::tcsetattr(self.fd.as_fd(), OptionalActions::Now, saved);
        }
    }
}
