//! The async face of a sandbox, for tokio (cargo feature `tokio`): [`Sandbox::spawn_async`](crate::Sandbox::spawn_async)
//! returns a [`Child`] whose `wait`, `wait_info`, `wait_with_output` and `kill` are futures.
//!
//! They are driven by the sandbox's pidfd, registered with tokio's IO driver
//! ([`tokio::io::unix::AsyncFd`]): no thread per child, no `SIGCHLD` handler, no `waitpid(-1)`,
//! so it never reaps a process it did not spawn. Piped stdio comes as tokio's pipe types
//! ([`Sender`], [`Receiver`]), which are `AsyncWrite`/`AsyncRead`. A
//! [`timeout`](crate::Sandbox::timeout) is enforced by a timer of the runtime, without a blocking
//! thread.
//!
//! ```no_run
//! # async fn run() -> Result<(), nscell::Error> {
//! let mut sb = nscell::Sandbox::new("echo");
//! sb.arg("hi").stdout(nscell::Stdio::piped());
//! let out = sb.spawn_async()?.wait_with_output().await?;
//! assert_eq!(out.stdout, b"hi\n");
//! # Ok(()) }
//! ```
//!
//! # What the runtime needs
//!
//! `spawn_async` must be called within a tokio runtime with its IO driver enabled
//! (`Builder::enable_io`, or `enable_all`), and its time driver too when the sandbox has a
//! timeout; it returns [`Error::InvalidInput`] outside a runtime. The child and its futures
//! are `Send + 'static`.
//!
//! # Spawning on a runtime thread
//!
//! The spawn itself stays synchronous: it is a vfork-style `clone` that returns once the
//! program has been executed, about a millisecond, which a runtime thread can afford as it
//! affords a small `read`. Some setups can take longer: a `newuidmap` run, a network helper's
//! readiness wait, a `--file` read from a pipe. Spawn those with
//! `tokio::task::block_in_place` (multi-threaded runtime) or from a thread of your own.
//! But never spawn from `spawn_blocking` a sandbox that dies with its parent
//! ([`die_with_parent`](crate::Sandbox::die_with_parent)) or has a network helper: the parent-death
//! signal follows the *thread* that spawned it, and the runtime ends idle blocking threads.
//!
//! # Dropping
//!
//! As with the sync [`crate::Child`], dropping a child that has not been waited for kills the
//! sandbox (`SIGKILL`). Reaping it can take a little while (a PID 1's exit waits for its whole
//! namespace, and its cgroup can only be removed after that), so the drop does not wait: a
//! task on the runtime captured at spawn reaps it and ends its live parts (cgroup, network
//! helper). Should that runtime be gone, a single process-wide thread does it instead.
//! Dropping a future (a cancelled `wait`) leaves the child as it was.

#![allow(unsafe_code)]

use crate::{Error, Operation, WaitInfo};
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::pin::pin;
use std::process::{ExitStatus, Output};
use std::task::Poll;
use tokio::io::unix::AsyncFd;
pub use tokio::net::unix::pipe::{Receiver, Sender};

/// A running sandbox, awaited through tokio: see the [module docs](self).
#[derive(Debug)]
#[must_use = "dropping a Child kills the sandbox; await wait() to let it run"]
pub struct Child {
    /// The sync child; `None` only once it has been handed to the reaper.
    inner: Option<crate::Child>,
    /// A duplicate of its pidfd, registered with the runtime's IO driver.
    pidfd: AsyncFd<OwnedFd>,
    /// The runtime that reaps the sandbox if the child is dropped.
    handle: tokio::runtime::Handle,
    /// The caller's end of the program's stdin, when it is [`Stdio::piped`](crate::Stdio::piped).
    pub stdin: Option<Sender>,
    /// The caller's end of the program's stdout, when it is piped.
    pub stdout: Option<Receiver>,
    /// The caller's end of the program's stderr, when it is piped.
    pub stderr: Option<Receiver>,
}

/// `fd` registered with the current runtime's IO driver, for readability.
fn registered(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an OwnedFd stays open and names the same file description for as long as it is
    // owned, and its as_raw_fd always returns that fd: the AsyncFd owns it.
    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(Into::into)
}

/// An io error as this crate's error of `operation`.
fn failed(operation: Operation, e: io::Error) -> Error {
    let errno = rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO);
    Error::process(operation, errno)
}

impl Child {
    /// The async face of `inner`, just spawned; its futures run on the runtime of `handle`.
    pub(crate) fn new(
        mut inner: crate::Child,
        handle: tokio::runtime::Handle,
    ) -> Result<Child, Error> {
        let _entered = handle.enter();
        let register = |e| failed(Operation::Wait, e);
        let pidfd = inner.pidfd().try_clone_to_owned().map_err(register)?;
        let pidfd = registered(pidfd).map_err(register)?;
        let pipe = |e| failed(Operation::ReadOutput, e);
        let stdin = inner.stdin.take().map(OwnedFd::from).map(Sender::from_owned_fd);
        let stdout = inner.stdout.take().map(OwnedFd::from).map(Receiver::from_owned_fd);
        let stderr = inner.stderr.take().map(OwnedFd::from).map(Receiver::from_owned_fd);
        Ok(Child {
            inner: Some(inner),
            pidfd,
            handle: handle.clone(),
            stdin: stdin.transpose().map_err(pipe)?,
            stdout: stdout.transpose().map_err(pipe)?,
            stderr: stderr.transpose().map_err(pipe)?,
        })
    }

    fn inner(&mut self) -> &mut crate::Child {
        // Only Drop takes it, and nothing runs after Drop.
        self.inner.as_mut().expect("the child is only taken by Drop")
    }

    /// The sync child underneath, for what it tells: [`id`](crate::Child::id),
    /// [`cgroup`](crate::Child::cgroup), [`network_helper_id`](crate::Child::network_helper_id),
    /// [`landlock_status`](crate::Child::landlock_status).
    pub fn as_sync(&self) -> &crate::Child {
        self.inner.as_ref().expect("the child is only taken by Drop")
    }

    /// The sandbox's pid (its PID 1, or the program's without a PID namespace).
    pub fn id(&self) -> u32 {
        self.as_sync().id()
    }

    /// The pidfd the futures are driven by.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.as_sync().pidfd()
    }

    /// Sends signal `sig`, as [`crate::Child::signal`].
    pub fn signal(&mut self, sig: i32) -> Result<(), Error> {
        self.inner().signal(sig)
    }

    /// Kills the sandbox (as [`crate::Child::kill`]) and waits for it to end.
    pub async fn kill(&mut self) -> Result<ExitStatus, Error> {
        self.inner().kill()?;
        self.wait().await
    }

    /// Returns the status if the sandbox has ended, `None` while it runs (past its timeout it
    /// is killed, and reported as timed out once it has ended).
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, Error> {
        let inner = self.inner();
        if inner.deadline().is_some_and(|d| std::time::Instant::now() >= d) {
            inner.time_out();
        }
        Ok(inner.reap_now()?.map(|i| i.status))
    }

    /// Waits for the sandbox to end and returns the program's status. Closes `stdin` first,
    /// as std does. Enforces the [`timeout`](crate::Sandbox::timeout).
    pub async fn wait(&mut self) -> Result<ExitStatus, Error> {
        self.wait_info().await.map(|i| i.status)
    }

    /// Waits like [`wait`](Child::wait) and says more: [`WaitInfo`].
    pub async fn wait_info(&mut self) -> Result<WaitInfo, Error> {
        drop(self.stdin.take());
        loop {
            if let Some(info) = self.inner().reap_now()? {
                return Ok(info);
            }
            let deadline = self.inner().deadline();
            let ready = self.pidfd.readable();
            let guard = match deadline {
                Some(d) => tokio::time::timeout_at(d.into(), ready).await.ok(),
                None => Some(ready.await),
            };
            match guard {
                // Readable: it has ended, unless this was a stale readiness.
                Some(guard) => {
                    let mut guard = guard.map_err(|e| failed(Operation::Wait, e))?;
                    if let Some(info) = self.inner.as_mut().expect("not dropped").reap_now()? {
                        return Ok(info);
                    }
                    guard.clear_ready();
                }
                None => self.inner().time_out(),
            }
        }
    }

    /// Waits for the sandbox, collecting all of its piped stdout and stderr (read at the same
    /// time, so neither pipe can fill up and stall the program).
    pub async fn wait_with_output(mut self) -> Result<Output, Error> {
        use tokio::io::AsyncReadExt;
        drop(self.stdin.take());
        async fn all(r: Option<Receiver>) -> io::Result<Vec<u8>> {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                r.read_to_end(&mut v).await?;
            }
            Ok(v)
        }
        let (mut out, mut err) = (pin!(all(self.stdout.take())), pin!(all(self.stderr.take())));
        let (mut o, mut e) = (None, None);
        let both = std::future::poll_fn(|cx| {
            if o.is_none() {
                if let Poll::Ready(r) = out.as_mut().poll(cx) {
                    o = Some(r);
                }
            }
            if e.is_none() {
                if let Poll::Ready(r) = err.as_mut().poll(cx) {
                    e = Some(r);
                }
            }
            match (o.is_some(), e.is_some()) {
                (true, true) => Poll::Ready(()),
                _ => Poll::Pending,
            }
        });
        let mut both = pin!(both);
        if let Some(d) = self.inner().deadline() {
            // Past the timeout the sandbox is killed; its pipes close as it ends.
            if tokio::time::timeout_at(d.into(), both.as_mut()).await.is_err() {
                self.inner().time_out();
                both.await;
            }
        } else {
            both.await;
        }
        let read = |r: Option<io::Result<Vec<u8>>>| {
            r.unwrap_or_else(|| Ok(Vec::new())).map_err(|e| failed(Operation::ReadOutput, e))
        };
        let (stdout, stderr) = (read(o)?, read(e)?);
        let status = self.wait().await?;
        Ok(Output { status, stdout, stderr })
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let Some(mut inner) = self.inner.take() else { return };
        if inner.reaped() {
            return;
        }
        let _ = inner.kill();
        let Ok(fd) = self.pidfd.get_ref().try_clone() else { return };
        let reaper = Reaper(Some(inner));
        // The task owns the child; if the runtime is gone (or drops the task unfinished),
        // the Reaper's own drop hands it to the process-wide thread.
        let _entered = self.handle.enter();
        match registered(fd) {
            Ok(fd) => {
                self.handle.spawn(reap(reaper, fd));
            }
            Err(_) => drop(reaper),
        }
    }
}

/// A killed child on its way to being reaped.
struct Reaper(Option<crate::Child>);

async fn reap(mut reaper: Reaper, fd: AsyncFd<OwnedFd>) {
    loop {
        let Some(inner) = reaper.0.as_mut() else { return };
        match inner.reap_now() {
            Ok(Some(_)) | Err(_) => {
                // Reaped (its cgroup and helper ended with it), or beyond reaping.
                reaper.0 = None;
                return;
            }
            Ok(None) => {}
        }
        match fd.readable().await {
            Ok(mut guard) => guard.clear_ready(),
            Err(_) => return,
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            if !child.reaped() {
                reaper_thread(child);
            }
        }
    }
}

/// Hands `child` (killed, not yet reaped) to the one process-wide thread that reaps what a
/// gone runtime left; the sync child's drop waits for it there.
fn reaper_thread(child: crate::Child) {
    use std::sync::{Mutex, OnceLock, mpsc};
    static QUEUE: OnceLock<Mutex<mpsc::Sender<Box<crate::Child>>>> = OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Box<crate::Child>>();
        let spawned = std::thread::Builder::new()
            .name("nscell-reaper".into())
            .spawn(move || rx.into_iter().for_each(drop));
        if spawned.is_err() {
            // No thread to be had: whoever sends drops the child itself (its drop reaps it).
        }
        Mutex::new(tx)
    });
    let sent = queue.lock().map(|tx| tx.send(Box::new(child)));
    // A failed send hands the child back, and dropping it here reaps it on this thread.
    if let Ok(Err(mpsc::SendError(child))) = sent {
        drop(child);
    }
}

impl AsRawFd for Child {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.as_sync().pidfd().as_raw_fd()
    }
}
