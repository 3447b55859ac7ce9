//! Joining existing namespaces (`setns`), before any namespace of the sandbox's own.
//!
//! With joins, the task that `clone` creates is not the sandbox's first task but a joining
//! task ([`Joiner`]), cloned with no namespace flags. It enters the plan's namespaces in order
//! (those owned by the caller's user namespace, the user namespace, then what that one owns)
//! and clones the sandbox's first task with the plan's `CLONE_NEW*` flags, so that:
//!
//! - every namespace the sandbox creates is owned by the joined user namespace (a namespace
//!   belongs to the user namespace of the task that creates it), or, when the sandbox creates
//!   its own user namespace, the joined namespaces were entered while the joining task still
//!   had its capabilities in the caller's;
//! - a joined PID namespace (which `setns` applies to the task's later children only) is the
//!   first task's own: the program, or the init, is that further child.
//!
//! The first task is cloned with `CLONE_PARENT`: it is the caller's child, as it would be
//! without joins, and the parent takes it as the sandbox once the joining task has exited
//! (the kernel stores its pid in the plan with `CLONE_PARENT_SETTID` before it runs; it sends
//! it on the setup channel itself, first thing, [`announce`]). It shares the joining task's
//! memory (the caller's on the vfork and handshake paths, the joining task's own copy on the
//! forked one) and runs the order table as always. On the vfork path the joining task waits
//! (`CLONE_VFORK`) until the first task has exec'd, so the caller resumes only then; otherwise
//! it exits at once.
//!
//! A joined time namespace, and a user namespace whose creators were not the caller's euid,
//! change what a task sharing the caller's memory must not change (the memory's time pages; its
//! dumpability, through `commit_creds`): the spawn is forked then (`Plan::joins_need_own_memory`).
#![allow(unsafe_code)]

use crate::child::{CLONE_ENTRY, Entry, fail, report};
use crate::error::{Failure, Step};
use crate::plan::Plan;
use crate::sys;
use core::ffi::{c_int, c_void};
use std::sync::atomic::Ordering;

/// `CLONE_NEWUSER`, the type of the namespace [`after_setup`] enters.
const CLONE_NEWUSER: c_int = 0x1000_0000;

/// The failure index that names the user namespace entered after setup (the others name the
/// entry of `Plan::joins` that failed).
pub(crate) const AFTER_SETUP_INDEX: usize = u16::MAX as usize;

/// The joining task: enters the joined namespaces, then starts the sandbox's first task.
pub(crate) struct Joiner;

impl Entry for Joiner {
    type Arg<'a> = Plan<'a>;
    fn run(plan: &Plan<'_>) -> c_int {
        let failure = match enter(plan).and_then(|()| start_sandbox(plan)) {
            Ok(()) => sys::exit(0),
            Err(f) => f,
        };
        report(plan, failure)
    }
}

/// `setns` into each joined namespace, in the plan's order.
fn enter(plan: &Plan<'_>) -> Result<(), Failure> {
    for (i, &(fd, nstype)) in plan.joins.iter().enumerate() {
        sys::setns(fd, nstype).map_err(|e| Failure::new(Step::JoinNamespace, e).at(i))?;
    }
    Ok(())
}

/// Clones the sandbox's first task as a child of the caller, in new namespaces of the plan's
/// flags, on the plan's second stack.
fn start_sandbox(plan: &Plan<'_>) -> Result<(), Failure> {
    // Without a channel (the vfork path) the caller must not resume before the exec.
    let vfork = if plan.channel.fd() < 0 { sys::CLONE_VFORK } else { 0 };
    let flags = sys::CLONE_VM | sys::CLONE_PARENT | vfork | plan.namespace_flags | sys::SIGCHLD;
    // SAFETY: sandbox_stack is the top of a stack the parent allocated for this task and keeps
    // until the setup is over (the channel's EOF, or the vfork's end); CLONE_ENTRY follows the
    // child's rules and only reads the plan, which outlives the task's use of it as it does
    // for a first task the caller clones; `successor` is an atomic of the plan.
    let cloned = unsafe {
        sys::clone_on_stack_settid(
            flags,
            plan.sandbox_stack,
            CLONE_ENTRY,
            plan as *const Plan<'_> as *mut c_void,
            &plan.successor,
        )
    };
    cloned.map(|_| ()).map_err(fail(Step::Clone))
}

/// First step of the sandbox's first task after joins: tells the parent its pid (as the
/// caller's PID namespace numbers it), before any checkpoint at which the parent acts on it.
pub(crate) fn announce(plan: &Plan<'_>) -> Result<(), Failure> {
    if !plan.joins.is_empty() {
        let pid = plan.successor.load(Ordering::Relaxed);
        plan.channel.send_record(crate::plan::successor_message(pid));
    }
    Ok(())
}

/// The user namespace of [`crate::Sandbox::join_after_setup`], once everything that needs the
/// capabilities of the sandbox's own user namespace is done.
pub(crate) fn after_setup(plan: &Plan<'_>) -> Result<(), Failure> {
    if let Some(fd) = plan.join_after_setup {
        sys::setns(fd, CLONE_NEWUSER)
            .map_err(|e| Failure::new(Step::JoinNamespace, e).at(AFTER_SETUP_INDEX))?;
    }
    Ok(())
}

/// The entry point spawn passes to `clone` when the plan joins namespaces.
pub(crate) const JOIN_ENTRY: extern "C" fn(*mut c_void) -> c_int =
    crate::child::trampoline::<Joiner>;
