//! The setters for joining existing namespaces ([`crate::namespaces::Joins`]), and how a
//! failed join is described.

use crate::error::{Error, Failure, Step};
use crate::namespaces::JoinPlan;
use crate::{Namespaces, Sandbox};
use std::os::fd::OwnedFd;

impl Sandbox {
    /// Runs the program in an existing namespace of type `namespace` instead of a new one:
    /// `fd` is a namespace fd, such as an open `/proc/PID/ns/net` (or `/proc/PID/ns/user`,
    /// `.../pid`, ...) of a running process, or a bind mount of one. One call per namespace type;
    /// the `Sandbox` keeps the fd (closed when it is dropped, never passed to the program).
    /// Joined with [`setns`](https://man7.org/linux/man-pages/man2/setns.2.html), before any
    /// namespace of the sandbox's own is created, in the kernel's order: namespaces owned by
    /// the caller's user namespace first, then a joined user namespace, then what it owns.
    ///
    /// What a join means:
    ///
    /// - A namespace cannot be both joined and new: a type given to
    ///   [`namespaces`](Sandbox::namespaces) as well is an error of `spawn`. Without a call of
    ///   `namespaces`, the joined types leave [`Namespaces::DEFAULT`].
    /// - [`Namespaces::USER`]: the program runs with the joined namespace's id maps (none are
    ///   written: [`uid_map`](Sandbox::uid_map) is an error) and every namespace the sandbox
    ///   creates is owned by it, so the joined user namespace's root has every capability over
    ///   them. Rootless, a namespace of another sandbox can only be joined together with its user
    ///   namespace (`setns` needs `CAP_SYS_ADMIN` over the namespace's owner and in the joining
    ///   task's own user namespace).
    /// - [`Namespaces::PID`]: the kernel puts only a task's later children in a joined PID
    ///   namespace; the sandbox's first task (the program, or the [`init`](Sandbox::init)) is
    ///   such a child, never PID 1 there. A fresh `/proc` is not mounted by default (it would
    ///   show the joined namespace: ask for it with [`mount_proc`](Sandbox::mount_proc)).
    /// - [`Namespaces::MOUNT`]: the sandbox starts from the joined mount namespace's root, and
    ///   the working directory is that root unless [`current_dir`](Sandbox::current_dir) says
    ///   otherwise.
    /// - [`Namespaces::TIME`], and a user namespace that tasks of other uids than the caller's
    ///   euid created: joining changes the joining task's memory (its time pages) or its
    ///   dumpability, which a task sharing the caller's memory must not: the spawn copies the
    ///   caller's memory then (as [`init`](Sandbox::init) does).
    ///
    /// `spawn` checks every fd before it creates anything: an fd that is no namespace, or of
    /// another type (`ioctl(NS_GET_NSTYPE)`), the caller's own user namespace, or one that is
    /// not below the caller's, is an `InvalidInput` error. A join the kernel refuses is an
    /// [`Error::Setup`] of [`Step::JoinNamespace`] whose path names the type.
    ///
    /// The OCI runtime's `linux.namespaces[].path`, bubblewrap's `--userns FD` and
    /// `--pidns FD` (`join(Namespaces::USER, fd)`, `join(Namespaces::PID, fd)`).
    #[doc(alias = "setns")]
    pub fn join(&mut self, namespace: Namespaces, fd: impl Into<OwnedFd>) -> &mut Self {
        let fd = fd.into();
        if namespace.proc_name().is_none() {
            self.bad(format!("join takes one namespace type at a time, not {namespace:?}"));
        } else if self.joins.at_start.iter().any(|(ns, _)| *ns == namespace) {
            self.bad(format!(
                "the {} namespace is joined twice",
                namespace.proc_name().unwrap_or("?")
            ));
        } else {
            self.joins.at_start.push((namespace, fd));
        }
        self
    }

    /// Moves the sandbox into the user namespace `fd` at the end of its setup: after its
    /// mounts, network and hostname are in place, before the program's hardening (and, with an
    /// [`init`](Sandbox::init), before the init starts the program, so both run in it). Only
    /// [`Namespaces::USER`] is taken.
    ///
    /// The namespace is usually one below the sandbox's (joined or new) user namespace, made by
    /// an earlier sandbox: the program then has no capability over what the sandbox's user
    /// namespace owns, its mount namespace included, whose mounts it so cannot change. This
    /// is bubblewrap's `--userns2 FD`. Checked as [`join`](Sandbox::join) checks its fds; not
    /// with [`allow_nested_userns(false)`](Sandbox::allow_nested_userns).
    pub fn join_after_setup(&mut self, namespace: Namespaces, fd: impl Into<OwnedFd>) -> &mut Self {
        if namespace != Namespaces::USER {
            self.bad(format!("join_after_setup takes Namespaces::USER only, not {namespace:?}"));
        } else {
            self.joins.after_setup = Some(fd.into());
        }
        self
    }
}

/// The error of a failed join: the type in the path, and what usually causes the errno.
pub(super) fn describe(f: &Failure, joins: &JoinPlan<'_>, namespaces: Namespaces) -> Option<Error> {
    if f.step != Step::JoinNamespace {
        return None;
    }
    let index = usize::from(f.index);
    let ns = joins.type_at(index);
    let after = index >= joins.order.len();
    let name = ns.proc_name().unwrap_or("?");
    let hint = match (f.errno, ns) {
        (libc::EPERM, Namespaces::USER) if after => {
            "join_after_setup takes a user namespace below the sandbox's own, where the sandbox \
             has CAP_SYS_ADMIN"
                .to_string()
        }
        (libc::EPERM, Namespaces::USER) => "entering a user namespace needs CAP_SYS_ADMIN in it: \
             it must lie below the caller's, created by the caller's uid or entered as root"
            .to_string(),
        (libc::EPERM, _) => format!(
            "entering a {name} namespace needs CAP_SYS_ADMIN over the user namespace that owns \
             it and in the joining task's own: without root, join that user namespace too \
             (join(Namespaces::USER, ..), --userns){}",
            if namespaces.contains(Namespaces::USER) {
                "; the sandbox's new user namespace comes only after the joins"
            } else {
                ""
            }
        ),
        (libc::EINVAL, Namespaces::USER) => "the kernel refuses a user namespace the task is \
             in already, and a task that shares its filesystem context or has threads"
            .to_string(),
        (libc::EINVAL, Namespaces::PID) => "a PID namespace can be entered only from the one \
             above it (the caller's, or an ancestor of the joined one)"
            .to_string(),
        (libc::EINVAL, _) => format!("the fd is not a {name} namespace, or the kernel lacks it"),
        (libc::EUSERS, Namespaces::TIME) => {
            "a time namespace is entered only by a task that shares its memory with no other"
                .to_string()
        }
        _ => format!("the kernel refused to enter the {name} namespace"),
    };
    Some(Error::setup_hint(f.step, Some(name.into()), f.errno, hint))
}
