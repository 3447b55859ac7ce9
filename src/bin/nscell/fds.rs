//! Claiming the fds the command line names by number (`--seccomp`, `--add-seccomp-fd`,
//! `--json-status-fd`, `--file`, `--keep-fd`): [`claim`], the binary's only unsafe code.
//!
//! An fd number on the command line names an fd nscell inherited from its caller. Making an
//! [`OwnedFd`] of a number is sound only while the number still names that fd and nothing else
//! in the process owns it, so `main` claims every named fd right after parsing (which does no
//! I/O) and before anything else opens, reads or closes one, and each number is claimed once:
//! an fd named by two options is a usage error. Everything after works on the [`Fds`] it
//! returns, never on a number.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

/// The claimed fds, by the number the command line gave them. Dropping it closes them (those
/// above 2; for 0, 1 and 2 it holds duplicates).
#[derive(Debug, Default)]
pub struct Fds {
    claimed: Vec<(i32, OwnedFd)>,
}

impl Fds {
    /// The claimed fd `fd`.
    pub fn get(&self, fd: i32) -> Option<BorrowedFd<'_>> {
        self.claimed.iter().find(|(n, _)| *n == fd).map(|(_, owned)| owned.as_fd())
    }

    /// A CLOEXEC duplicate of the claimed fd `fd` (the same open file, so its offset and
    /// append mode are shared), to hand over: a `--file` to the library, the status to its
    /// writer. `EBADF` if `fd` was not claimed.
    pub fn file(&self, fd: i32) -> io::Result<File> {
        let fd = self.get(fd).ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?;
        Ok(File::from(fd.try_clone_to_owned()?))
    }
}

/// Why an fd could not be claimed.
#[derive(Debug)]
pub enum ClaimError {
    /// `option fd` names an fd that is not open (or cannot be duplicated): the errno.
    NotOpen { option: &'static str, fd: i32, source: io::Error },
    /// `option fd` names an fd that `first` named already.
    Twice { option: &'static str, fd: i32, first: &'static str },
}

impl ClaimError {
    /// Whether the message is one about the command line itself, to be followed by
    /// "(see nscell --help)" (the seccomp options' own, as when they were checked in parsing).
    pub fn points_to_help(&self) -> bool {
        match self {
            ClaimError::NotOpen { option, .. } => option.contains("seccomp"),
            ClaimError::Twice { .. } => true,
        }
    }
}

impl ClaimError {
    /// bubblewrap's words, where its callers match them: it reads and closes a seccomp fd as
    /// it parses, so an fd given twice is a closed fd the second time.
    pub fn bwrap_message(&self) -> Option<String> {
        match self {
            ClaimError::NotOpen { option, source, .. } if option.contains("seccomp") => {
                Some(format!("Can't read seccomp data: {source}"))
            }
            ClaimError::Twice { option, .. } if option.contains("seccomp") => {
                let source = io::Error::from_raw_os_error(libc::EBADF);
                Some(format!("Can't read seccomp data: {source}"))
            }
            _ => None,
        }
    }
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimError::NotOpen { option, fd, source } if option.contains("seccomp") => {
                write!(f, "{option} {fd}: cannot read the seccomp program: {source}")
            }
            ClaimError::NotOpen { option, fd, source } => write!(f, "{option} {fd}: {source}"),
            ClaimError::Twice { option, fd, first } => write!(
                f,
                "{option} {fd}: fd {fd} is already given to {first} (an fd goes to one option \
                 only)"
            ),
        }
    }
}

/// Claims each `(option, fd)`: checks that `fd` is open (`F_GETFD`) and that no option before
/// it named the same number, and takes it as an [`OwnedFd`], made CLOEXEC so it reaches no
/// helper that the library runs (a `--keep-fd` still reaches the program: the library passes
/// it on as a copy). For 0, 1 and 2, which stay nscell's stdio and the sandbox's, a CLOEXEC
/// duplicate is claimed instead.
///
/// Call it once, at start-up, after parsing and before anything opens or closes an fd.
#[allow(unsafe_code)]
pub fn claim(wanted: &[(&'static str, i32)]) -> Result<Fds, ClaimError> {
    let mut fds = Fds::default();
    let mut given: Vec<(i32, &'static str)> = Vec::new();
    // Every number above 2 first: a duplicate of stdio made before would take the lowest free
    // number, which may be one still to be claimed.
    for &(option, fd) in wanted {
        if let Some(&(_, first)) = given.iter().find(|(n, _)| *n == fd) {
            return Err(ClaimError::Twice { option, fd, first });
        }
        given.push((fd, option));
        if (0..=2).contains(&fd) {
            continue;
        }
        let not_open = |source| ClaimError::NotOpen { option, fd, source };
        // SAFETY: F_GETFD reads no memory: it only asks whether the number is open (EBADF if
        // not, a negative number included).
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(not_open(io::Error::last_os_error()));
        }
        // SAFETY: `fd` is open (just checked). nscell inherited it: nothing in this process
        // has opened an fd yet (parsing does no I/O, this runs right after it, and the stdio
        // duplicates below are made once every number is claimed), so no object of the
        // process owns it; above 2 it is not std's stdio; and each number is taken once
        // (`given`).
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)
            .map_err(|e| not_open(e.into()))?;
        fds.claimed.push((fd, owned));
    }
    for &(option, fd) in wanted {
        let dup = match fd {
            0 => io::stdin().as_fd().try_clone_to_owned(),
            1 => io::stdout().as_fd().try_clone_to_owned(),
            2 => io::stderr().as_fd().try_clone_to_owned(),
            _ => continue,
        };
        fds.claimed.push((fd, dup.map_err(|source| ClaimError::NotOpen { option, fd, source })?));
    }
    Ok(fds)
}

/// `--args FD`: reads fd `fd` to its end and closes it, as bubblewrap does. Called before
/// parsing (the arguments read are parsed with the rest) and so before [`claim`]: nothing has
/// opened an fd yet, and the number is checked to be open before it is taken.
#[allow(unsafe_code)]
pub fn read_args_fd(fd: i32) -> Result<Vec<u8>, String> {
    use std::io::Read;
    if fd == 1 || fd == 2 {
        return Err("fd 1 and 2 are not for reading arguments".into());
    }
    if fd == 0 {
        // Stdin stays nscell's: read it without closing it.
        let mut bytes = Vec::new();
        io::stdin().lock().read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        return Ok(bytes);
    }
    // SAFETY: F_GETFD reads no memory: it only asks whether the number is open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error().to_string());
    }
    // SAFETY: `fd` is open (just checked) and above 2; nscell inherited it and nothing in the
    // process owns it (no fd has been opened yet: this runs before parsing, and each --args
    // fd is closed once read, so a number named twice is found closed the second time).
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// bubblewrap's personality passes every fd it inherited without close-on-exec on to the
/// program (flatpak relies on it): claims those above 2 that `fds` does not hold already, made
/// CLOEXEC here (the library puts each back at its number in the program). Call it right
/// after [`claim`].
#[allow(unsafe_code)]
pub fn claim_inherited(fds: &mut Fds) -> io::Result<Vec<i32>> {
    let dir = std::fs::read_dir("/proc/self/fd")?;
    let mut numbers: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&n: &i32| n > 2 && fds.get(n).is_none())
        .collect();
    numbers.sort_unstable();
    let mut kept = Vec::new();
    for n in numbers {
        // SAFETY: F_GETFD reads no memory. The directory's own fd is closed by now (EBADF).
        let flags = unsafe { libc::fcntl(n, libc::F_GETFD) };
        if flags < 0 || flags & libc::FD_CLOEXEC != 0 {
            continue;
        }
        // SAFETY: `n` is open and inherited without CLOEXEC: nscell opens every fd of its own
        // CLOEXEC (std, rustix), so nothing in this process owns it; `fds` does not hold it
        // (filtered above) and each number is taken once.
        let owned = unsafe { OwnedFd::from_raw_fd(n) };
        rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)?;
        fds.claimed.push((n, owned));
        kept.push(n);
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, IntoRawFd};

    #[test]
    fn an_fd_is_claimed_as_it_is_and_made_cloexec_stdio_as_a_copy() {
        let file = OwnedFd::from(File::open("/dev/null").unwrap());
        // As an inherited fd usually is: not CLOEXEC (std opened this one CLOEXEC).
        rustix::io::fcntl_setfd(&file, rustix::io::FdFlags::empty()).unwrap();
        let raw = file.into_raw_fd();
        let fds = claim(&[("--keep-fd", raw), ("--file", 0)]).unwrap();
        let got = fds.get(raw).unwrap();
        assert_eq!(got.as_raw_fd(), raw, "the fd itself, not a copy");
        assert_eq!(rustix::io::fcntl_getfd(got).unwrap(), rustix::io::FdFlags::CLOEXEC);
        // 0 is duplicated: stdin stays where it is.
        assert_ne!(fds.get(0).unwrap().as_raw_fd(), 0);
        let dup = fds.file(raw).unwrap();
        assert_ne!(dup.as_raw_fd(), raw);
        assert!(fds.get(5000).is_none());
        assert_eq!(fds.file(5000).unwrap_err().raw_os_error(), Some(libc::EBADF));
    }

    #[test]
    fn an_fd_named_twice_or_not_open_is_refused_with_its_option() {
        let err = claim(&[("--file", 0), ("--seccomp", 0)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--seccomp 0: fd 0 is already given to --file (an fd goes to one option only)"
        );
        assert!(err.points_to_help());
        let err = claim(&[("--keep-fd", 999_999)]).unwrap_err();
        assert_eq!(err.to_string(), "--keep-fd 999999: Bad file descriptor (os error 9)");
        assert!(!err.points_to_help());
        let err = claim(&[("--seccomp", 999_999)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--seccomp 999999: cannot read the seccomp program: Bad file descriptor (os error 9)"
        );
        assert!(err.points_to_help());
    }
}
