//! What the command line names outside nscell, looked at once the fds are claimed: the checks
//! of the fds to read from ([`check_seccomp_fds`], [`check_files`]) and the reading of the
//! seccomp programs ([`read_seccomp_programs`]).

use crate::cli::{Cli, FsOp, HardenOpt};
use crate::fds::Fds;
use nscell::Namespaces;
use rustix::fs::OFlags;
use std::os::fd::BorrowedFd;
use std::time::Instant;

/// The largest seccomp program the kernel takes: `BPF_MAXINSNS` instructions of 8 bytes.
const MAX_SECCOMP_BYTES: u64 = 4096 * 8;

/// The flags of an open fd (`F_GETFL`).
fn flags(fd: BorrowedFd<'_>) -> Option<OFlags> {
    rustix::fs::fcntl_getfl(fd).ok()
}

/// Refuses a `--seccomp`/`--add-seccomp-fd` fd that is open for writing only (the write end of
/// a pipe: reading it would never end). `Err` is one line for stderr.
pub fn check_seccomp_fds(cli: &Cli, fds: &Fds) -> Result<(), String> {
    for opt in &cli.harden {
        let HardenOpt::Seccomp { fd, replace } = opt else { continue };
        let Some(file) = fds.get(*fd) else { continue };
        if flags(file).unwrap_or(OFlags::RDONLY) & OFlags::RWMODE == OFlags::WRONLY {
            let option = HardenOpt::seccomp_option(*replace);
            return Err(format!(
                "{option} {fd}: cannot read the seccomp program: fd {fd} is not open for reading"
            ));
        }
    }
    Ok(())
}

/// Checks that an fd to read a file's contents from is not a directory and is open for
/// reading (not write-only, not `O_PATH`). `Err` is one line for stderr.
pub fn check_files(cli: &Cli, fds: &Fds) -> Result<(), String> {
    for op in &cli.fs {
        let FsOp::File { fd, .. } = op else { continue };
        let Some(file) = fds.get(*fd) else { continue };
        let is_dir = rustix::fs::fstat(file).is_ok_and(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
        });
        let readable = flags(file)
            .is_some_and(|f| f & OFlags::RWMODE != OFlags::WRONLY && !f.contains(OFlags::PATH));
        let why = if is_dir {
            "is a directory"
        } else if !readable {
            "is not open for reading"
        } else {
            continue;
        };
        return Err(format!(
            "--file {fd}: fd {fd} {why} (--file reads a file, a pipe or a socket)"
        ));
    }
    Ok(())
}

/// Checks what the personality tells differently: bubblewrap names a missing bind source
/// before anything is set up (`Can't find source path SRC: No such file or directory`); the
/// SELinux labels are applied nowhere, so they are refused where SELinux is enabled (where it
/// is not, bubblewrap ignores them too). `Err` is one line for stderr.
pub fn check_personality(cli: &Cli) -> Result<(), String> {
    if let Some((option, label)) = cli.selinux_labels.first() {
        if std::path::Path::new("/sys/fs/selinux/enforce").exists() {
            return Err(format!(
                "{option} {label:?}: SELinux labels are not supported by nscell (SELinux is \
                 enabled here)"
            ));
        }
    }
    if cli.userns_block_fd.is_some() {
        // bubblewrap's rules and words: the caller writes the maps of a new user namespace,
        // after it has read the child's pid from --info-fd.
        let user_ns = crate::sandbox::namespaces(cli).is_none_or(|n| n.contains(Namespaces::USER));
        if !user_ns || cli.join.user.is_some() {
            return Err("--userns-block-fd requires --unshare-user".into());
        }
        if cli.info_fd.is_none() {
            return Err("--userns-block-fd requires --info-fd".into());
        }
        if cli.harden.iter().any(|h| matches!(h, HardenOpt::DisableUserns)) {
            return Err("--disable-userns is not compatible with  --userns-block-fd".into());
        }
    }
    if !cli.personality.is_bwrap() {
        return Ok(());
    }
    for op in &cli.fs {
        let FsOp::Bind(name, src, _) = op else { continue };
        if name.ends_with("-try") {
            continue;
        }
        if let Err(e) = std::fs::metadata(src) {
            let e = rustix::io::Errno::from_io_error(&e).map_or(e.to_string(), errno_text);
            return Err(format!("Can't find source path {}: {e}", src.to_string_lossy()));
        }
    }
    Ok(())
}

/// strerror's words for `errno`, without Rust's "(os error N)".
pub fn errno_text(errno: rustix::io::Errno) -> String {
    let text = std::io::Error::from_raw_os_error(errno.raw_os_error()).to_string();
    match text.rfind(" (os error") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

/// `--assert-userns-disabled`: the command must not be able to make a user namespace. With
/// `--disable-userns` nscell makes sure of it; otherwise a probe sandbox with a user namespace
/// of its own is tried from here, and its success is the failure.
pub fn assert_userns_disabled(cli: &Cli) -> Result<(), String> {
    if cli.harden.contains(&HardenOpt::DisableUserns) {
        return Ok(());
    }
    let mut probe = nscell::Sandbox::new("/proc/self/exe");
    probe
        .arg("--version")
        .namespaces(nscell::Namespaces::USER)
        .stdout(nscell::Stdio::null())
        .stderr(nscell::Stdio::null());
    match probe.status() {
        Ok(_) => Err("creation of new user namespaces was not disabled as requested".into()),
        Err(_) => Ok(()),
    }
}

/// Why reading the seccomp programs stopped.
#[derive(Debug, PartialEq)]
pub enum ReadStop {
    /// A usage error: the message.
    Usage(String),
    /// `--timeout` passed.
    TimedOut,
    /// A signal came (it is pending on the abort fd).
    Signal,
}

/// Reads each `--seccomp`/`--add-seccomp-fd` program from its claimed fd, in the order given,
/// as bubblewrap does: from the fd itself (a pipe, a socket, a file from its current offset),
/// to its end, and at most [`MAX_SECCOMP_BYTES`] of it. The fd stays open. (Reopening
/// `/proc/self/fd/N` instead fails for a socket, ignores a file's offset, and on the write end
/// of a pipe opens a reader that waits for nscell itself to write.) A writer that never closes
/// the fd is a setup step that blocks: `--timeout` bounds it, and `abort` polling readable (a
/// signalfd of the forwarded signals) ends it, as for the library's setup steps.
pub fn read_seccomp_programs(
    cli: &Cli,
    fds: &Fds,
    deadline: Option<Instant>,
    abort: Option<BorrowedFd<'_>>,
) -> Result<Vec<Vec<u8>>, ReadStop> {
    let mut programs = Vec::new();
    let bwrap = cli.personality.is_bwrap();
    // bubblewrap closes each fd once it has read it: a second use finds it closed.
    let mut read = Vec::new();
    for opt in &cli.harden {
        let HardenOpt::Seccomp { fd, replace } = opt else { continue };
        let option = HardenOpt::seccomp_option(*replace);
        let cannot = |e: rustix::io::Errno| match bwrap {
            true => ReadStop::Usage(format!("Can't read seccomp data: {e}")),
            false => {
                ReadStop::Usage(format!("{option} {fd}: cannot read the seccomp program: {e}"))
            }
        };
        if bwrap && read.contains(fd) {
            return Err(cannot(rustix::io::Errno::BADF));
        }
        read.push(*fd);
        let file = fds.get(*fd).ok_or(cannot(rustix::io::Errno::BADF))?;
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match readable(file, abort, deadline).map_err(cannot)? {
                Readiness::TimedOut => return Err(ReadStop::TimedOut),
                Readiness::Aborted => return Err(ReadStop::Signal),
                Readiness::Readable => {}
            }
            match rustix::io::read(file, &mut buf) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
                Err(e) => return Err(cannot(e)),
            }
            if bytes.len() as u64 > MAX_SECCOMP_BYTES {
                return Err(ReadStop::Usage(format!(
                    "{option} {fd}: the seccomp program is longer than {MAX_SECCOMP_BYTES} bytes \
                     (4096 instructions, the kernel's limit)"
                )));
            }
        }
        if bwrap && bytes.len() % 8 != 0 {
            return Err(ReadStop::Usage("Invalid seccomp data, must be multiple of 8".into()));
        }
        programs.push(bytes);
    }
    Ok(programs)
}

/// Resolves the `--allow-egress` destinations, once, at spawn: addresses and networks as
/// they are, a host name to each of its addresses (IPv6 ones only with `--ipv6`).
pub fn resolve_egress(net: &mut crate::cli::NetOpts) -> Result<(), String> {
    use nscell::net::Cidr;
    use std::net::ToSocketAddrs;
    for e in &net.allow {
        if let Ok(cidr) = e.dest.parse::<Cidr>() {
            net.resolved.push((cidr, e.proto, e.ports.clone()));
            continue;
        }
        let addrs = (e.dest.as_str(), 0)
            .to_socket_addrs()
            .map_err(|err| format!("--allow-egress: cannot resolve {:?}: {err}", e.dest))?;
        let mut any = false;
        for a in addrs.filter(|a| a.is_ipv4() || net.ipv6) {
            let cidr = Cidr::from(a.ip());
            if !net
                .resolved
                .iter()
                .any(|(c, p, ports)| *c == cidr && *p == e.proto && *ports == e.ports)
            {
                net.resolved.push((cidr, e.proto, e.ports.clone()));
            }
            any = true;
        }
        if !any {
            return Err(format!(
                "--allow-egress: {:?} has no IPv4 address (--ipv6 for IPv6)",
                e.dest
            ));
        }
    }
    Ok(())
}

/// What a wait for an fd to become readable met first.
enum Readiness {
    Readable,
    /// `abort` became readable: a signal came.
    Aborted,
    /// The deadline passed.
    TimedOut,
}

/// Waits until `fd` can be read (or is closed), a signal makes `abort` readable, or the
/// `deadline` passes, whichever comes first.
fn readable(
    fd: BorrowedFd<'_>,
    abort: Option<BorrowedFd<'_>>,
    deadline: Option<Instant>,
) -> Result<Readiness, rustix::io::Errno> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            return Ok(Readiness::TimedOut);
        }
        let timeout =
            left.map(|w| Timespec { tv_sec: w.as_secs() as i64, tv_nsec: w.subsec_nanos() as i64 });
        let mut polled = vec![PollFd::new(&fd, PollFlags::IN)];
        if let Some(abort) = &abort {
            polled.push(PollFd::new(abort, PollFlags::IN));
        }
        match poll(&mut polled, timeout.as_ref()) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(e),
        }
        if polled.get(1).is_some_and(|f| !f.revents().is_empty()) {
            return Ok(Readiness::Aborted);
        }
        return Ok(Readiness::Readable);
    }
}

/// Waits until `fd` can be read, then takes one byte from it (bubblewrap's `--block-fd` and
/// `--userns-block-fd`). A signal on `abort` or the `deadline` ends the wait first; the
/// library, which watches the same fd and clock, then ends the setup.
pub fn wait_unblocked(
    fd: &std::fs::File,
    abort: Option<&std::os::fd::OwnedFd>,
    deadline: Option<Instant>,
) -> std::io::Result<()> {
    use std::os::fd::AsFd;
    loop {
        match readable(fd.as_fd(), abort.map(AsFd::as_fd), deadline)? {
            Readiness::Aborted | Readiness::TimedOut => return Ok(()),
            Readiness::Readable => {}
        }
        let mut byte = [0u8; 1];
        match rustix::io::read(fd, &mut byte) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
