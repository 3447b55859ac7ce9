//! Run a program in new Linux namespaces, without host root.
//!
//! nscell is [`std::process::Command`] that can also isolate: a [`Sandbox`] runs a program in new
//! user, PID, mount, UTS, IPC, network, cgroup and time namespaces ([`Namespaces`]), with the
//! caller mapped to root inside, its own hostname and its own `/proc`.
//!
//! ```
//! use nscell::{Sandbox, Stdio};
//!
//! // By default: new user, PID, mount, UTS and IPC namespaces, root inside, a fresh /proc.
//! let out = Sandbox::new("sh")
//!     .args(["-c", "id -u; hostname; echo $$"])
//!     .hostname("cell")
//!     .output()?;
//! assert_eq!(String::from_utf8_lossy(&out.stdout), "0\ncell\n1\n");
//! # Ok::<(), nscell::Error>(())
//! ```
//!
//! # Rootless
//!
//! Everything works as an ordinary user where the kernel allows unprivileged user namespaces
//! (most distributions; see [`Sandbox::check`] and the README's troubleshooting for the sysctls
//! and AppArmor settings that forbid them). Without root, every namespace but the user namespace
//! needs a user namespace beside it: nscell adds one when it is not asked for.
//!
//! # How a sandbox is spawned
//!
//! All strings, pointer arrays and id maps are prepared before `clone`. The child is created with
//! `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD | CLONE_NEW…)` on a fresh stack, the way
//! `posix_spawn` works: the caller's thread waits until the program is exec'd, nothing of the
//! caller's memory is copied, so spawning costs the same from a small process as from one of
//! many gigabytes. The child writes its own id maps, sets the hostname, makes mounts private,
//! mounts `/proc`, locks its mounts against the program (a copy of its mount namespace through a
//! throwaway user namespace: see the README's security model), puts stdio in place, closes every
//! other fd, and execs. It makes raw system
//! calls only: no allocation, no locks, no `errno`. A failure is reported to the parent as a
//! (step, errno) record and becomes an [`Error`] naming the step, the errno, the path and a hint.
//!
//! When the parent must act between `clone` and `exec` (id maps beyond the caller's own id, which
//! only root or `newuidmap`/`newgidmap` may write), the child waits on a pipe while the parent
//! writes the maps; it still shares the caller's memory instead of copying it. The caller can
//! act there too: [`Sandbox::on_setup`] runs its hooks at each [`SetupStage`] while the child
//! waits, and with [`Sandbox::id_maps_by_caller`] such a hook writes the id maps itself (as
//! bubblewrap's `--userns-block-fd` lets its caller do).
//!
//! # The API
//!
//! The builder ([`Sandbox`]), the running program ([`Child`]), the errors ([`Error`], [`Step`],
//! [`Operation`]) and what they take or return ([`Namespaces`], [`IdMap`], [`Stdio`],
//! [`Capabilities`], [`WaitInfo`], [`ResourceUsage`], [`Support`]) are at the root. Each
//! hardening layer has a module of its own, as in rustix: [`seccomp`] (rules and the default
//! policy), [`landlock`] (path and port rules, what was enforced), [`rlimit`] (per-process
//! resource limits), [`cgroup`] (limits on the whole sandbox: memory, tasks, CPU), [`net`]
//! (a network through pasta or slirp4netns, published ports, an egress allowlist); [`pty`]
//! relays a pseudo-terminal. Fds passed to the program ([`Sandbox::keep_fd`],
//! [`Sandbox::map_fd`]) are owned fds, which the `Sandbox` closes when it is dropped; what
//! Landlock enforced comes back with each spawn ([`Child::landlock_status`]).
//!
//! # Caveats of namespaces
//!
//! - As PID 1 of a new PID namespace, the program receives only the signals it has handlers for
//!   (plus `SIGKILL` and `SIGSTOP` from outside): `Child::signal(SIGTERM)` does nothing to a
//!   shell. Use [`Child::kill`], or [`Sandbox::init`]: an init as PID 1 passes signals on and
//!   reaps the orphans that PID 1 inherits. See also [`Sandbox::new_session`] (on by default),
//!   [`Sandbox::pty`] and [`pty::relay`], [`Sandbox::die_with_parent`], [`Sandbox::timeout`].
//! - `/proc` must be remounted to show a new PID namespace; nscell does it when `PID` and `MOUNT`
//!   are both new ([`Sandbox::mount_proc`]).
//! - Root inside a user namespace has every capability *over that namespace's resources* (its
//!   hostname, its mounts), none over the host's. A namespace is isolation, not by itself a
//!   security boundary against a hostile program.
//! - Dropping a [`Child`] that was not waited for kills it (see [`Child`]).
//! - The caller's process is never changed: no environment, working directory, signal handler,
//!   or subreaper change, and no `waitpid(-1)`.
//!
//! # Cargo features
//!
//! - `cli` (default): the `nscell` binary (its command-line parser, lexopt). Library users can
//!   turn it off with `default-features = false`.
//! - `tokio`: the async face, `nscell::asynchronous`: `Sandbox::spawn_async` and a `Child` whose
//!   waits are futures driven by its pidfd, with tokio pipes for its stdio.
//!
//! # Stability
//!
//! The public API is what this crate page documents: the items at the root and in its public
//! modules. The `nscell` binary's command line and exit statuses are kept as stable as the API.
//! Before 1.0 a minor version may break either (CHANGELOG.md says how); a patch version does
//! not. Enums that grow as the kernel and nscell do (`Error`, `Step`, `Operation`,
//! `SetupStage`, the network and cgroup choices) and structs that gain fields (`WaitInfo`,
//! `SetupInfo`) are `#[non_exhaustive]`: match them with a `_` arm, and build them only
//! through this crate. Minimum Rust: the `rust-version` of Cargo.toml (checked in CI).
#![deny(unsafe_code)]
// docs.rs builds with --cfg docsrs (Cargo.toml): each optional item names its feature there.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

/// Declares a module whose code runs after `clone` (in a task that shares the caller's memory),
/// with the child's rules checked by the compiler: nothing there may panic (the panic hook
/// allocates and takes the stderr lock), overflow, allocate, format or lock (clippy.toml lists
/// the disallowed macros and methods). The one list of those lints; tests of pure helpers opt
/// out in their own `mod tests`.
macro_rules! after_clone {
    ($(#[$attr:meta])* $vis:vis mod $name:ident;) => {
        $(#[$attr])*
        #[deny(
            clippy::indexing_slicing,
            clippy::unwrap_used,
            clippy::expect_used,
            clippy::panic,
            clippy::unreachable,
            clippy::todo,
            clippy::unimplemented,
            clippy::arithmetic_side_effects,
            clippy::disallowed_macros,
            clippy::disallowed_methods
        )]
        $vis mod $name;
    };
}

#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod asynchronous;
mod caps;
pub mod cgroup;
after_clone! { mod child; }
mod context;
mod error;
mod fs;
mod harden;
mod idmap;
mod kernel;
pub mod landlock;
mod lifecycle;
mod namespaces;
pub mod net;
mod plan;
mod process;
pub mod pty;
pub mod rlimit;
mod sandbox;
pub mod seccomp;
pub mod signals;
mod spawn;
mod stdio;
mod support;
mod sys;
mod userns;

pub use caps::Capabilities;
pub use error::{Error, Operation, Step};
pub use idmap::IdMap;
pub use kernel::KernelFeatures;
pub use lifecycle::{ResourceUsage, WaitInfo};
pub use namespaces::Namespaces;
pub use process::{Child, Detached};
pub use sandbox::Sandbox;
pub use spawn::{SetupInfo, SetupStage};
pub use stdio::Stdio;
pub use support::Support;
