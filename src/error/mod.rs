//! Errors: what failed, with the errno, the path and a hint a person can act on.

// The record the child writes: under the child's rules (see `after_clone!` in lib.rs).
after_clone! { mod failure; }
pub(crate) use failure::Failure;

use crate::Namespaces;
use std::io;
use std::path::{Path, PathBuf};

/// The steps, written once: each becomes a variant (numbered from 1 in this order, the number
/// the child's failure record carries), an entry of [`Step::ALL`], a case of [`Step::from_u8`],
/// and the phrase of its error message ("cannot …").
macro_rules! steps {
    (
        $(#[$first_meta:meta])* $first:ident => $first_phrase:literal,
        $($(#[$meta:meta])* $name:ident => $phrase:literal,)*
    ) => {
        /// A step of setting a sandbox up, named in [`Error::Setup`].
        ///
        /// Steps in the parent (before `clone` and while handing over id maps) and in the child
        /// (after `clone`, before `execve`) are listed together, in the order they happen.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        #[repr(u8)]
        pub enum Step {
            $(#[$first_meta])* $first = 1,
            $($(#[$meta])* $name,)*
        }

        impl Step {
            /// Every step, in order: the step numbered `n` is `ALL[n - 1]`.
            pub(crate) const ALL: &[Step] = &[Step::$first, $(Step::$name,)*];

            pub(crate) fn from_u8(v: u8) -> Option<Step> {
                Step::ALL.get(usize::from(v).checked_sub(1)?).copied()
            }

            /// What the step does, as the object of "cannot …".
            fn phrase(self) -> &'static str {
                match self {
                    Step::$first => $first_phrase,
                    $(Step::$name => $phrase,)*
                }
            }
        }
    };
}

steps! {
    /// Allocating the child's stack (`mmap`).
    AllocStack => "allocate the child's stack",
    /// Creating a pipe (`pipe2`).
    Pipe => "create a pipe",
    /// Opening `/dev/null` for [`Stdio::null`](crate::Stdio::null).
    OpenNull => "open /dev/null",
    /// Creating the child in its new namespaces (`clone`).
    #[doc(alias = "clone")]
    Clone => "create the namespaces (clone)",
    /// Resetting the child's signal handlers to their defaults (`rt_sigaction`).
    ResetSignals => "reset signal handlers in the child",
    /// Waiting for the parent to write the id maps.
    Handshake => "hand the id maps to the child",
    /// Writing `deny` to `/proc/self/setgroups`.
    WriteSetgroups => "write",
    /// Writing the user namespace's `uid_map`.
    WriteUidMap => "write",
    /// Writing the user namespace's `gid_map`.
    WriteGidMap => "write",
    /// Running `newuidmap` or `newgidmap`.
    RunIdMapHelper => "run",
    /// Setting the hostname (`sethostname`).
    #[doc(alias = "sethostname")]
    SetHostname => "set the hostname",
    /// Setting the NIS domain name (`setdomainname`).
    #[doc(alias = "setdomainname")]
    SetDomainname => "set the domain name",
    /// Making every mount private (`mount(MS_REC | MS_PRIVATE)` on `/`).
    MakeMountsPrivate => "make mounts private",
    /// Mounting a fresh procfs on `/proc`.
    MountProc => "mount proc on",
    /// Bringing up the loopback interface of a new network namespace.
    LoopbackUp => "bring up the loopback interface",
    /// Creating the time namespace (`unshare(CLONE_NEWTIME)`).
    UnshareTime => "create the time namespace",
    /// Changing to the working directory (`chdir`).
    #[doc(alias = "chdir")]
    Chdir => "change directory to",
    /// Putting the program's stdin, stdout and stderr in place (`dup2`).
    Stdio => "set up stdio",
    /// Closing every other file descriptor (`close_range`).
    CloseFds => "close inherited file descriptors",
    /// Restoring the signal mask before `execve`.
    SignalMask => "restore the signal mask",
    /// Executing the program (`execve`); reported as [`Error::Exec`].
    #[doc(alias = "execve")]
    Exec => "execute",
    /// Putting the fds passed with `keep_fd`/`map_fd` in place (`dup3`).
    PassFds => "pass a file descriptor to the program",
    /// Setting a resource limit (`prlimit`).
    #[doc(alias = "setrlimit")]
    Rlimit => "set a resource limit",
    /// Limiting nested user namespaces (`user.max_user_namespaces`, `unshare(CLONE_NEWUSER)`).
    NestedUserns => "limit nested user namespaces",
    /// Dropping or keeping capabilities (`capset`, `PR_CAPBSET_DROP`, `PR_CAP_AMBIENT`).
    #[doc(alias = "capset")]
    Capabilities => "set the program's capabilities",
    /// Setting no_new_privs (`PR_SET_NO_NEW_PRIVS`).
    NoNewPrivs => "set no_new_privs",
    /// Applying the Landlock ruleset (`landlock_restrict_self`).
    Landlock => "apply the Landlock ruleset",
    /// Installing a seccomp filter (`seccomp(SECCOMP_SET_MODE_FILTER)`).
    #[doc(alias = "seccomp")]
    Seccomp => "install the seccomp filter",
    /// Creating the new root: a tmpfs (or the [`rootfs`](crate::Sandbox::rootfs) bind)
    /// attached in the child's private mount namespace on the first of `/tmp`, `/run`, `/mnt`
    /// and `/var/tmp` that is a directory there, until `pivot_root` makes it `/`.
    NewRoot => "create the new root (a tmpfs or the rootfs bind, attached on the first of /tmp, \
                /run, /mnt and /var/tmp that is a directory, until pivot_root)",
    /// A bind mount of a filesystem operation ([`bind`](crate::Sandbox::bind) and friends).
    BindMount => "bind",
    /// Mounting a tmpfs ([`tmpfs`](crate::Sandbox::tmpfs)).
    MountTmpfs => "mount a tmpfs on",
    /// Mounting a procfs inside the new root ([`proc`](crate::Sandbox::proc)).
    MountProcAt => "mount proc on",
    /// Building a minimal `/dev` ([`dev`](crate::Sandbox::dev)).
    MountDev => "create a minimal /dev on",
    /// Mounting an mqueue filesystem ([`mqueue`](crate::Sandbox::mqueue)).
    MountMqueue => "mount mqueue on",
    /// Creating a directory ([`dir`](crate::Sandbox::dir)).
    CreateDir => "create the directory",
    /// Creating a symlink ([`symlink`](crate::Sandbox::symlink)).
    CreateSymlink => "create the symlink",
    /// Creating a file ([`file`](crate::Sandbox::file)).
    CreateFile => "create the file",
    /// Changing a path's mode ([`chmod`](crate::Sandbox::chmod)).
    Chmod => "change the mode of",
    /// Making a mount read-only ([`remount_ro`](crate::Sandbox::remount_ro)).
    RemountReadOnly => "remount read-only",
    /// Switching to the new root (`pivot_root`) and detaching the old one.
    #[doc(alias = "pivot_root")]
    PivotRoot => "switch to the new root (pivot_root)",
    /// Starting a new session (`setsid`).
    #[doc(alias = "setsid")]
    NewSession => "start a new session (setsid)",
    /// Making the pseudo-terminal the controlling terminal (`TIOCSCTTY`).
    #[doc(alias = "TIOCSCTTY")]
    ControllingTerminal => "make the pseudo-terminal the controlling terminal",
    /// Arranging for the sandbox to die with its spawner (`PR_SET_PDEATHSIG`, `pidfd_open`).
    #[doc(alias = "PR_SET_PDEATHSIG")]
    ParentDeathSignal => "tie the sandbox's life to its spawner (PR_SET_PDEATHSIG)",
    /// Starting the program from the init (`clone`).
    StartProgram => "start the program from the init",
    /// Allocating a pseudo-terminal (`/dev/ptmx`).
    #[doc(alias = "openpty")]
    OpenPty => "allocate a pseudo-terminal",
    /// Locking every mount of the sandbox against the program: a copy of its mount namespace
    /// through a throwaway user namespace (`clone(CLONE_NEWUSER | CLONE_NEWNS)`, `setns`,
    /// `unshare(CLONE_NEWNS)`); see the README's security model.
    LockMounts => "lock the sandbox's mounts against the program",
    /// Joining a new, empty session keyring
    /// (`keyctl(KEYCTL_JOIN_SESSION_KEYRING)`, see
    /// [`new_session_keyring`](crate::Sandbox::new_session_keyring)). In the child right after
    /// the id maps, before the hostname, the mounts and the hardening.
    #[doc(alias = "KEYCTL_JOIN_SESSION_KEYRING")]
    SessionKeyring => "join a new session keyring",
    /// Giving a sandbox that shares the caller's terminal a process group of its own (`setpgid`).
    #[doc(alias = "setpgid")]
    ProcessGroup => "give the sandbox a process group of its own (setpgid)",
    /// Making that process group the terminal's foreground group (`tcsetpgrp`).
    #[doc(alias = "tcsetpgrp")]
    ForegroundTerminal => "put the sandbox in the terminal's foreground (tcsetpgrp)",
    /// Making the sandbox's cgroup (`mkdir` of its leaf, in the parent before `clone`).
    CreateCgroup => "create the sandbox's cgroup",
    /// Enabling controllers in the cgroup parent's `cgroup.subtree_control` (cgroup v2).
    EnableControllers => "enable cgroup controllers",
    /// Writing a limit into the sandbox's cgroup (`memory.max`, `pids.max`, ...).
    WriteCgroupLimit => "write the cgroup limit",
    /// Creating the child inside its cgroup2 leaf (`clone3` with `CLONE_INTO_CGROUP`).
    #[doc(alias = "CLONE_INTO_CGROUP")]
    CloneIntoCgroup => "create the sandbox inside its cgroup (clone3 CLONE_INTO_CGROUP)",
    /// The child moving itself into its cgroup (`cgroup.procs`), its first step.
    JoinCgroup => "join the sandbox's cgroup",
    /// The child making its cgroup namespace once it is in its cgroups.
    #[doc(alias = "CLONE_NEWCGROUP")]
    UnshareCgroup => "create the cgroup namespace (unshare CLONE_NEWCGROUP)",
    /// Opening a recorded cgroup ([`Cgroup::open`](crate::cgroup::Cgroup::open)).
    OpenCgroup => "open the cgroup",
    /// Freezing or thawing a sandbox ([`Cgroup::freeze`](crate::cgroup::Cgroup::freeze)).
    FreezeCgroup => "freeze or thaw the sandbox's cgroup",
    /// Killing everything in a sandbox's cgroup (`cgroup.kill`).
    KillCgroup => "kill the sandbox's cgroup",
    /// Removing a sandbox's cgroup ([`Cgroup::remove`](crate::cgroup::Cgroup::remove)).
    RemoveCgroup => "remove the sandbox's cgroup",
    /// Making the cgroup filesystems read-only in the sandbox's mount namespace.
    ReadOnlyCgroupfs => "make the cgroup filesystem read-only in the sandbox",
    /// The parent opening the sandbox's network or user namespace (`/proc/PID/ns/net`) for
    /// the network helper.
    OpenNetworkNamespace => "open the sandbox's namespace for the network helper",
    /// Publishing a host port into the sandbox.
    PublishPort => "publish the port",
    /// The child covering `/etc/resolv.conf` and `/etc/hosts` with the network's own (without
    /// a new root).
    NetworkEtcFiles => "give the sandbox its /etc/resolv.conf and /etc/hosts",
    /// The child installing the egress allowlist (an nftables ruleset, over netlink).
    #[doc(alias = "nftables")]
    InstallEgress => "install the egress allowlist (nftables)",
    /// Joining an existing namespace ([`join`](crate::Sandbox::join),
    /// [`join_after_setup`](crate::Sandbox::join_after_setup): `setns`); the error's path names
    /// the namespace's type (`user`, `pid`, `net`, ...).
    #[doc(alias = "setns")]
    JoinNamespace => "join an existing namespace",
    /// The init opening a file and taking a read lock on it ([`lock_file`](crate::Sandbox::lock_file):
    /// `open`, `fcntl(F_SETLK, F_RDLCK)`).
    #[doc(alias = "F_SETLK")]
    LockFile => "lock the file",
    /// Finding and opening a filesystem operation's source on the host, while the host view
    /// is intact: a bind's source, an overlay's layers, the path an fd of
    /// [`bind_fd`](crate::Sandbox::bind_fd) names. The error's path is the source alone.
    FindSource => "find the source path",
    /// Mounting an overlayfs ([`overlay`](crate::Sandbox::overlay),
    /// [`tmp_overlay`](crate::Sandbox::tmp_overlay), [`ro_overlay`](crate::Sandbox::ro_overlay)).
    #[doc(alias = "overlayfs")]
    MountOverlay => "mount an overlay on",
    /// Making a file of data and binding it ([`bind_data`](crate::Sandbox::bind_data)).
    BindData => "bind a file of data on",
    /// A hook of the caller's ([`on_setup`](crate::Sandbox::on_setup)) returned an error (its
    /// `source`, errno and message included) or panicked: the sandbox was told to leave and
    /// reaped before anything of it ran.
    SetupHook => "run the caller's setup hook",
    /// Getting ready to wait at the start gate ([`start_gate`](crate::Sandbox::start_gate)):
    /// making the waiting task non-dumpable, handing the setup channel back.
    StartGate => "wait at the start gate",
    /// Mounting a sysfs ([`sysfs`](crate::Sandbox::sysfs)).
    MountSysfs => "mount sysfs on",
    /// Writing a kernel parameter ([`sysctl`](crate::Sandbox::sysctl)) under `/proc/sys`.
    #[doc(alias = "sysctl")]
    Sysctl => "set the kernel parameter",
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.phrase())
    }
}

/// What was being done with a running sandbox when [`Error::Process`] happened: a failure
/// after the spawn, never a setup [`Step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Waiting for the sandbox to end ([`Child::wait`](crate::Child::wait) and friends:
    /// `waitid(P_PIDFD)`, `poll` on the pidfd).
    #[doc(alias = "waitid")]
    Wait,
    /// Sending it a signal ([`Child::signal`](crate::Child::signal): `pidfd_send_signal`).
    #[doc(alias = "pidfd_send_signal")]
    Signal,
    /// Reading its piped stdout and stderr
    /// ([`Child::wait_with_output`](crate::Child::wait_with_output)).
    ReadOutput,
    /// Relaying between the caller's terminal and the sandbox's pseudo-terminal
    /// ([`pty::relay`](crate::pty::relay)).
    RelayTerminal,
}

impl std::fmt::Display for Operation {
    /// What the operation does, as the object of "cannot …".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operation::Wait => "wait for the sandbox",
            Operation::Signal => "signal the sandbox",
            Operation::ReadOutput => "read the sandbox's output",
            Operation::RelayTerminal => "relay the sandbox's terminal",
        })
    }
}

/// Everything that can go wrong when building, spawning or waiting for a sandbox.
///
/// Setup failures are never confused with the program's own exit status: [`Sandbox::spawn`](crate::Sandbox::spawn)
/// returns `Err` for the first and a [`Child`] whose `wait` gives the second.
///
/// [`Sandbox::spawn`]: crate::Sandbox::spawn
/// [`Child`]: crate::Child
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot work: a NUL byte, an empty program, a bad id map, a hostname
    /// that is too long or set without a UTS namespace. Found before anything is spawned.
    #[error("invalid sandbox configuration: {0}")]
    InvalidInput(String),

    /// The running kernel or system lacks something the configuration needs.
    #[error("{feature} is not supported here: {reason}")]
    #[non_exhaustive]
    Unsupported {
        /// What was asked for.
        feature: &'static str,
        /// Why it cannot be had, and what to do about it.
        reason: String,
    },

    /// A setup step failed, in the parent or in the child before `execve`.
    #[error("cannot {}: {source}{}", subject(*step, path.as_deref()), hint_suffix(hint))]
    #[non_exhaustive]
    Setup {
        /// Which step.
        step: Step,
        /// The path (or value) the step worked on, when there is one.
        path: Option<PathBuf>,
        /// The operating system's error.
        #[source]
        source: io::Error,
        /// What usually causes this, and what to do.
        hint: Option<String>,
    },

    /// The sandbox was set up but the program could not be executed.
    #[error("cannot execute {}: {source}{}", program.display(), hint_suffix(hint))]
    #[non_exhaustive]
    Exec {
        /// The program as given, or the `PATH` candidate that failed.
        program: PathBuf,
        /// The operating system's error: `NotFound` (127 in a shell), `PermissionDenied` (126).
        #[source]
        source: io::Error,
        /// What usually causes this, and what to do.
        hint: Option<String>,
    },

    /// The fd given to [`abort_setup_on`](crate::Sandbox::abort_setup_on) became readable while
    /// the sandbox was being set up: the child was killed and reaped; nothing ran.
    #[error("setting the sandbox up was interrupted")]
    SetupInterrupted,

    /// `newuidmap` or `newgidmap` ran but refused the mapping.
    #[error("{} refused the mapping ({status}): {}{}", helper.display(), stderr.trim(), hint_suffix(hint))]
    #[non_exhaustive]
    IdMapHelper {
        /// The helper that ran.
        helper: PathBuf,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed on stderr.
        stderr: String,
        /// What usually causes this, and what to do.
        hint: Option<String>,
    },

    /// The network helper (pasta, slirp4netns) is missing, failed, or was not ready in time.
    #[error("network helper {}: {message}{}", helper.display(), hint_suffix(hint))]
    #[non_exhaustive]
    NetworkHelper {
        /// The helper.
        helper: PathBuf,
        /// What went wrong, with what the helper said on stderr.
        message: String,
        /// What usually causes this, and what to do.
        hint: Option<String>,
    },

    /// The sandbox was spawned, but waiting for it, signalling it, reading its output or
    /// relaying its terminal failed. The program may still be running: dropping the
    /// [`Child`](crate::Child) kills and reaps it.
    #[error("cannot {operation}: {source}")]
    #[non_exhaustive]
    Process {
        /// What was being done.
        operation: Operation,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

fn subject(step: Step, path: Option<&Path>) -> String {
    match (step, path) {
        (Step::Landlock, Some(p)) => format!("add a Landlock rule for {}", p.display()),
        (Step::JoinNamespace, Some(p)) => format!("join the {} namespace", p.display()),
        (_, Some(p)) => format!("{step} {}", p.display()),
        (_, None) => step.to_string(),
    }
}

fn hint_suffix(hint: &Option<String>) -> String {
    match hint {
        Some(h) => format!(" — {h}"),
        None => String::new(),
    }
}

impl Error {
    /// The step that failed, for [`Error::Setup`] and [`Error::Exec`].
    pub fn step(&self) -> Option<Step> {
        match self {
            Error::Setup { step, .. } => Some(*step),
            Error::Exec { .. } => Some(Step::Exec),
            Error::IdMapHelper { .. } => Some(Step::RunIdMapHelper),
            _ => None,
        }
    }

    /// The errno, when the failure came from a system call.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Setup { source, .. }
            | Error::Exec { source, .. }
            | Error::Process { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// The path involved, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::Setup { path, .. } => path.as_deref(),
            Error::Exec { program, .. } => Some(program),
            Error::IdMapHelper { helper, .. } | Error::NetworkHelper { helper, .. } => Some(helper),
            _ => None,
        }
    }

    /// The hint for known causes, when one applies.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Setup { hint, .. }
            | Error::Exec { hint, .. }
            | Error::IdMapHelper { hint, .. }
            | Error::NetworkHelper { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }

    /// True for [`Error::InvalidInput`].
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Error::InvalidInput(_))
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Error {
        Error::InvalidInput(msg.into())
    }

    /// A setup failure in the parent with a hint of the caller's own.
    pub(crate) fn setup_hint(step: Step, path: Option<PathBuf>, errno: i32, hint: String) -> Error {
        Error::Setup { step, path, source: io::Error::from_raw_os_error(errno), hint: Some(hint) }
    }

    /// A setup failure outside any user namespace of the sandbox's (in the parent, before
    /// `clone`), with the hint for its known causes.
    pub(crate) fn setup(step: Step, path: Option<PathBuf>, errno: i32) -> Error {
        Error::setup_in(step, path, errno, Namespaces::empty())
    }

    /// A setup failure of a sandbox with `namespaces`, with the hint for its known causes:
    /// with [`Namespaces::USER`] among them, a denied step is also blamed on what restricts
    /// user namespaces here.
    pub(crate) fn setup_in(
        step: Step,
        path: Option<PathBuf>,
        errno: i32,
        namespaces: Namespaces,
    ) -> Error {
        let userns = namespaces.contains(Namespaces::USER);
        Error::Setup {
            step,
            path,
            source: io::Error::from_raw_os_error(errno),
            hint: hint(step, errno, userns),
        }
    }

    /// A failure with a running sandbox.
    pub(crate) fn process(operation: Operation, errno: rustix::io::Errno) -> Error {
        Error::Process { operation, source: io::Error::from_raw_os_error(errno.raw_os_error()) }
    }

    pub(crate) fn exec(program: PathBuf, errno: i32) -> Error {
        let hint = match errno {
            libc::EACCES => Some(
                "the file is not executable, a directory on its path is not searchable, or its \
                 filesystem is mounted noexec"
                    .to_string(),
            ),
            libc::ENOEXEC => {
                Some("the file is not a binary the kernel can run and has no #! line".to_string())
            }
            _ => None,
        };
        Error::Exec { program, source: io::Error::from_raw_os_error(errno), hint }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::InvalidInput(_) => io::ErrorKind::InvalidInput,
            Error::Unsupported { .. } => io::ErrorKind::Unsupported,
            Error::Setup { source, .. }
            | Error::Exec { source, .. }
            | Error::Process { source, .. } => source.kind(),
            Error::IdMapHelper { .. } => io::ErrorKind::PermissionDenied,
            Error::NetworkHelper { .. } => io::ErrorKind::Other,
            Error::SetupInterrupted => io::ErrorKind::Interrupted,
        };
        io::Error::new(kind, e)
    }
}

const SEE: &str = "see README.md#troubleshooting";

fn read_sysctl(path: &str) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// What the system says about user namespaces for this user, as a hint; `None` when nothing
/// restricts them.
pub(crate) fn userns_restriction() -> Option<String> {
    if read_sysctl("/proc/sys/kernel/unprivileged_userns_clone") == Some(0)
        && !rustix::process::geteuid().is_root()
    {
        return Some(format!(
            "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0); \
             enable them with `sysctl -w kernel.unprivileged_userns_clone=1`; {SEE}"
        ));
    }
    if read_sysctl("/proc/sys/user/max_user_namespaces") == Some(0) {
        return Some(format!(
            "user namespaces are disabled (user.max_user_namespaces=0); raise it with \
             `sysctl -w user.max_user_namespaces=15000`; {SEE}"
        ));
    }
    if read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == Some(1)
        && !rustix::process::geteuid().is_root()
    {
        return Some(format!(
            "unprivileged user namespaces are restricted by AppArmor \
             (kernel.apparmor_restrict_unprivileged_userns=1): the new namespace has no \
             capabilities; give the program an AppArmor profile that allows userns, or set the \
             sysctl to 0; {SEE}"
        ));
    }
    None
}

/// The hint for the cgroup v2 rule that a cgroup with processes enables no controllers.
pub(crate) const NO_INTERNAL_PROCESSES: &str = "cgroup v2 enables controllers only in cgroups \
     without processes, and this parent has some (the caller's own cgroup?): run the caller in a \
     leaf of a delegated cgroup and give that cgroup as Limits::parent (--cgroup-parent): with \
     systemd, systemd-run --user --scope -p Delegate=yes; in a container, move its processes to \
     a child cgroup such as /init first";

fn hint(step: Step, errno: i32, userns: bool) -> Option<String> {
    let denied = errno == libc::EPERM || errno == libc::EACCES;
    match step {
        Step::StartGate if errno == libc::ECHILD => Some(
            "the sandbox ended before its start gate without saying why: without no_new_privs \
             the seccomp filter goes in before the capabilities are set, and it refuses a \
             system call of the rest of the setup (capset, prctl, close, ppoll, read, sendto); \
             allow those or set no_new_privs"
                .to_string(),
        ),
        Step::Clone => match errno {
            libc::EPERM | libc::EACCES | libc::EUSERS if userns => {
                userns_restriction().or_else(|| {
                    Some(format!(
                        "creating namespaces is not permitted here; inside a container a seccomp \
                     profile or a missing CAP_SYS_ADMIN can forbid it; {SEE}"
                    ))
                })
            }
            libc::EPERM => Some(format!(
                "creating namespaces other than a user namespace needs CAP_SYS_ADMIN; add \
                 Namespaces::USER; {SEE}"
            )),
            libc::ENOSPC => Some(format!(
                "a namespace limit is reached (user.max_user_namespaces and friends in \
                 /proc/sys/user), or user namespaces are nested more than 32 deep; {SEE}"
            )),
            libc::EINVAL => Some(
                "the kernel refuses these clone flags: nscell needs Linux 5.10+ (CLONE_PIDFD), \
                 built with the requested namespaces"
                    .to_string(),
            ),
            _ => None,
        },
        Step::WriteSetgroups
        | Step::WriteUidMap
        | Step::WriteGidMap
        | Step::SetHostname
        | Step::SetDomainname
        | Step::MakeMountsPrivate
        | Step::LoopbackUp
            if denied && userns =>
        {
            userns_restriction()
        }
        Step::MountProc if denied => userns_restriction().or_else(|| {
            Some(format!(
                "in a user namespace the kernel mounts /proc only for a PID namespace that the \
                 user namespace owns (add Namespaces::PID), and only where a fully visible /proc \
                 exists (no part of it covered by another mount, as in many containers; use \
                 mount_proc(false) there); {SEE}"
            ))
        }),
        Step::CloneIntoCgroup | Step::JoinCgroup => match errno {
            libc::EACCES | libc::EPERM => Some(
                "moving a process into a cgroup needs write access to cgroup.procs of the leaf                  and, on cgroup v2, of the common ancestor of the caller's cgroup and the leaf:                  run the caller inside the delegated cgroup it gives as the parent"
                    .to_string(),
            ),
            libc::EBUSY => Some(NO_INTERNAL_PROCESSES.to_string()),
            libc::ENOSPC => Some(
                "the cgroup v1 cpuset has no CPUs or memory nodes (cpuset.cpus, cpuset.mems)"
                    .to_string(),
            ),
            libc::EOPNOTSUPP | libc::ENODEV => Some(
                "the leaf is a threaded or a dying cgroup, which takes no new process".to_string(),
            ),
            _ => None,
        },
        Step::UnshareCgroup if errno == libc::EINVAL => {
            Some("this kernel has no cgroup namespaces (CONFIG_CGROUPS, Linux 4.6+)".to_string())
        }
        Step::InstallEgress => Some(match errno {
            libc::EPERM => "the child has no CAP_NET_ADMIN over the sandbox's network namespace"
                .to_string(),
            libc::EMSGSIZE => "too many egress rules for one netlink message (about 400): \
                               allow wider networks"
                .to_string(),
            _ => "the kernel refused the nftables ruleset: it needs nf_tables with the inet \
                  family and the ct, meta and reject expressions (CONFIG_NF_TABLES_INET, \
                  CONFIG_NFT_CT, CONFIG_NFT_REJECT_INET), built in or loadable"
                .to_string(),
        }),
        Step::UnshareTime if errno == libc::EINVAL => {
            Some("this kernel has no time namespaces (CONFIG_TIME_NS, Linux 5.6+)".to_string())
        }
        Step::Seccomp if errno == libc::EACCES => Some(
            "without no_new_privs, seccomp and Landlock need CAP_SYS_ADMIN in the sandbox's user \
             namespace: keep it, or leave no_new_privs on"
                .to_string(),
        ),
        Step::Landlock if errno == libc::EPERM => Some(
            "without no_new_privs, seccomp and Landlock need CAP_SYS_ADMIN in the sandbox's user \
             namespace: keep it, or leave no_new_privs on"
                .to_string(),
        ),
        Step::Rlimit if errno == libc::EPERM => Some(
            "raising a hard limit above the caller's own needs CAP_SYS_RESOURCE on the host"
                .to_string(),
        ),
        Step::NestedUserns => Some(
            "allow_nested_userns(false) writes /proc/sys/user/max_user_namespaces inside the \
             sandbox and needs a /proc and capabilities there"
                .to_string(),
        ),
        Step::OpenPty => Some(
            "a pseudo-terminal needs /dev/ptmx and a devpts filesystem on /dev/pts (in a \
             container, mount devpts with ptmxmode=0666); or run without a pty (--no-pty)"
                .to_string(),
        ),
        Step::LockMounts => Some(format!(
            "nscell locks its mounts through a second, throwaway user namespace, {}; or drop \
             CAP_SYS_ADMIN (drop_capabilities, --cap-drop ALL): the program then cannot change a \
             mount, and nothing needs locking; {SEE}",
            match errno {
                libc::EPERM => {
                    "which only a task whose own uid and gid are in the sandbox's id maps may \
                     create: the caller's own uid or gid is not in the sandbox's id maps (map it, \
                     as --uid and --gid do), or a seccomp policy refuses CLONE_NEWUSER"
                }
                libc::ENOSPC | libc::EUSERS => {
                    "and the limit on user namespaces is reached (user.max_user_namespaces)"
                }
                _ => "which failed here",
            }
        )),
        Step::Chdir if errno == libc::ELOOP => Some(
            "the working directory is resolved without following magic links such as \
             /proc/self/fd/N, which could lead out of the sandbox's root; name the directory by \
             its path inside the sandbox"
                .to_string(),
        ),
        Step::Chdir if errno == libc::EXDEV => Some(
            "the directory is outside the sandbox's root; name a directory inside it".to_string(),
        ),
        Step::SessionKeyring if errno == libc::EDQUOT => Some(
            "this uid's key quota is used up: every sandbox holds a new session keyring, which \
             counts against kernel.keys.maxkeys (200 keys for a non-root uid) and \
             kernel.keys.maxbytes (root: kernel.keys.root_maxkeys) when the caller has a \
             session keyring of its own; end some sandboxes, raise the sysctl \
             (`sysctl -w kernel.keys.maxkeys=2000`), or keep the caller's keyring with \
             new_session_keyring(false) (--keep-session-keyring)"
                .to_string(),
        ),
        Step::SessionKeyring => Some(
            "keep the caller's session keyring with new_session_keyring(false) \
             (--keep-session-keyring) if a security module here denies keyrings"
                .to_string(),
        ),
        Step::Chdir if errno == libc::ENOENT => {
            Some("the directory does not exist in the sandbox's view of the filesystem".to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_error_reads_like_a_sentence() {
        let e = Error::Setup {
            step: Step::WriteUidMap,
            path: Some("/proc/self/uid_map".into()),
            source: io::Error::from_raw_os_error(libc::EPERM),
            hint: Some("a hint".into()),
        };
        let text = e.to_string();
        assert!(
            text.starts_with(
                "cannot write /proc/self/uid_map: Operation not permitted (os error 1)"
            ),
            "{text}"
        );
        assert!(text.ends_with(" — a hint"), "{text}");
        assert_eq!(e.step(), Some(Step::WriteUidMap));
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        assert_eq!(e.path(), Some(Path::new("/proc/self/uid_map")));
    }

    #[test]
    fn exec_error_names_the_program() {
        let e = Error::exec("/nonexistent".into(), libc::ENOENT);
        assert_eq!(
            e.to_string(),
            "cannot execute /nonexistent: No such file or directory (os error 2)"
        );
        assert_eq!(e.step(), Some(Step::Exec));
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn process_errors_read_like_a_sentence_and_name_no_step() {
        use rustix::io::Errno;
        for (operation, text) in [
            (Operation::Wait, "cannot wait for the sandbox: No child processes (os error 10)"),
            (Operation::Signal, "cannot signal the sandbox: No child processes (os error 10)"),
            (
                Operation::ReadOutput,
                "cannot read the sandbox's output: No child processes (os error 10)",
            ),
            (
                Operation::RelayTerminal,
                "cannot relay the sandbox's terminal: No child processes (os error 10)",
            ),
        ] {
            let e = Error::process(operation, Errno::CHILD);
            assert_eq!(e.to_string(), text);
            assert_eq!((e.step(), e.raw_os_error(), e.hint()), (None, Some(libc::ECHILD), None));
            assert!(std::error::Error::source(&e).is_some(), "{e}");
        }
    }

    #[test]
    fn the_new_root_message_names_every_place_it_may_be_attached() {
        let e = Error::setup(Step::NewRoot, None, libc::EPERM);
        assert_eq!(
            e.to_string(),
            "cannot create the new root (a tmpfs or the rootfs bind, attached on the first of \
             /tmp, /run, /mnt and /var/tmp that is a directory, until pivot_root): Operation not \
             permitted (os error 1)"
        );
    }

    #[test]
    fn steps_round_trip_through_u8() {
        for &s in Step::ALL {
            assert_eq!(Step::from_u8(s as u8), Some(s));
        }
        assert_eq!(Step::from_u8(0), None);
        assert_eq!(Step::from_u8(Step::ALL.len() as u8 + 1), None);
    }

    #[test]
    fn key_quota_hint_names_the_sysctl_and_the_opt_out() {
        let e = Error::setup_in(Step::SessionKeyring, None, libc::EDQUOT, Namespaces::USER);
        let text = e.to_string();
        assert!(text.starts_with("cannot join a new session keyring: Disk quota exceeded"), "{e}");
        for part in ["kernel.keys.maxkeys", "new_session_keyring(false)", "--keep-session-keyring"]
        {
            assert!(text.contains(part), "{part}: {e}");
        }
    }

    #[test]
    fn time_namespace_einval_gets_a_hint() {
        let e = Error::setup_in(Step::UnshareTime, None, libc::EINVAL, Namespaces::USER);
        assert!(e.to_string().contains("Linux 5.6"), "{e}");
    }
}
