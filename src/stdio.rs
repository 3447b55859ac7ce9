//! What the program's stdin, stdout and stderr are connected to.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// The configuration of one of the program's standard streams, as [`std::process::Stdio`].
///
/// ```
/// use nscell::{Sandbox, Stdio};
/// let out = Sandbox::new("/bin/echo").arg("hi").stdout(Stdio::piped()).output()?;
/// assert_eq!(out.stdout, b"hi\n");
/// # Ok::<(), nscell::Error>(())
/// ```
#[derive(Debug)]
pub struct Stdio(pub(crate) Kind);

#[derive(Debug)]
pub(crate) enum Kind {
    Inherit,
    Null,
    Piped,
    Fd(OwnedFd),
}

impl Stdio {
    /// The program uses the caller's stream.
    pub fn inherit() -> Stdio {
        Stdio(Kind::Inherit)
    }

    /// The stream is connected to `/dev/null`.
    pub fn null() -> Stdio {
        Stdio(Kind::Null)
    }

    /// A new pipe; the caller's end appears in [`Child`](crate::Child)'s `stdin`, `stdout` or
    /// `stderr` field.
    pub fn piped() -> Stdio {
        Stdio(Kind::Piped)
    }
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Stdio {
        Stdio(Kind::Fd(fd))
    }
}

impl From<File> for Stdio {
    fn from(f: File) -> Stdio {
        Stdio(Kind::Fd(f.into()))
    }
}

macro_rules! from_owned {
    ($($t:ty),*) => {$(
        impl From<$t> for Stdio {
            fn from(v: $t) -> Stdio {
                Stdio(Kind::Fd(OwnedFd::from(v)))
            }
        }
    )*};
}
from_owned!(
    std::process::ChildStdin,
    std::process::ChildStdout,
    std::process::ChildStderr,
    std::io::PipeReader,
    std::io::PipeWriter
);

/// One stream of one spawn, ready for the child: the fd it dups onto 0, 1 or 2 (None: inherit),
/// and the parent's end of a pipe.
pub(crate) struct Prepared<'a> {
    /// Kept open until the child has exec'd; the child dups it.
    pub child_end: Option<OwnedFd>,
    /// Borrowed from the sandbox's configuration (`Stdio::from(fd)`) or the spawn's pty slave,
    /// dup'd by the child.
    pub borrowed: Option<BorrowedFd<'a>>,
    pub parent_end: Option<OwnedFd>,
}

impl Prepared<'_> {
    /// The fd the child dups onto the stream's slot (None: inherit), borrowed from this, so the
    /// plan that holds it keeps this alive until the child has exec'd.
    pub fn child_fd(&self) -> Option<BorrowedFd<'_>> {
        self.child_end.as_ref().map(AsFd::as_fd).or(self.borrowed)
    }
}

/// Keeps fds of the spawn machinery away from 0, 1 and 2 (a caller may have closed those), so the
/// child's `dup2` onto the standard slots can never overwrite one it still needs.
pub(crate) fn above_stdio(fd: OwnedFd) -> rustix::io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    if fd.as_raw_fd() > 2 { Ok(fd) } else { rustix::io::fcntl_dupfd_cloexec(fd.as_fd(), 3) }
}

impl Kind {
    /// `is_input`: the program reads this stream (stdin).
    pub(crate) fn prepare(
        &self,
        is_input: bool,
    ) -> Result<Prepared<'_>, (crate::Step, rustix::io::Errno)> {
        use rustix::fs::{Mode, OFlags};
        use std::os::fd::AsRawFd;
        Ok(match self {
            Kind::Inherit => Prepared { child_end: None, borrowed: None, parent_end: None },
            Kind::Null => {
                let fd =
                    rustix::fs::open(c"/dev/null", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
                        .and_then(above_stdio)
                        .map_err(|e| (crate::Step::OpenNull, e))?;
                Prepared { child_end: Some(fd), borrowed: None, parent_end: None }
            }
            Kind::Piped => {
                let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                    .map_err(|e| (crate::Step::Pipe, e))?;
                let (child, parent) = if is_input { (r, w) } else { (w, r) };
                let child = above_stdio(child).map_err(|e| (crate::Step::Pipe, e))?;
                Prepared { child_end: Some(child), borrowed: None, parent_end: Some(parent) }
            }
            Kind::Fd(fd) if fd.as_raw_fd() > 2 => {
                Prepared { child_end: None, borrowed: Some(fd.as_fd()), parent_end: None }
            }
            Kind::Fd(fd) => {
                let dup = rustix::io::fcntl_dupfd_cloexec(fd.as_fd(), 3)
                    .map_err(|e| (crate::Step::Stdio, e))?;
                Prepared { child_end: Some(dup), borrowed: None, parent_end: None }
            }
        })
    }
}
