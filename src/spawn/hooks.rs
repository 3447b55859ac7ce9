//! The caller's own hooks at the setup's checkpoints ([`crate::Sandbox::on_setup`]): the public
//! stage and what a hook is given, and the list a `Sandbox` keeps.

use crate::error::{Error, Step};
use crate::plan::Checkpoint;
use std::sync::Mutex;

/// A point of a sandbox's setup at which [`Sandbox::on_setup`](crate::Sandbox::on_setup) hooks
/// run, in the caller's process, while the sandbox waits. In the order the setup reaches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SetupStage {
    /// The sandbox's new namespaces exist (the sandbox's first task is in them), before
    /// anything was done in them: no id map is written yet (unless nscell writes them from the
    /// caller's process: those come first), no hostname set, no mount made. This is where a
    /// caller writes `/proc/PID/uid_map`, `/proc/PID/setgroups` and `/proc/PID/gid_map`
    /// (itself, or through `newuidmap`/`newgidmap`) with
    /// [`id_maps_by_caller`](crate::Sandbox::id_maps_by_caller), and where bubblewrap writes
    /// its `--info-fd` record and waits on `--userns-block-fd`. A network helper nscell starts
    /// ([`Sandbox::network`](crate::Sandbox::network)) has started before the caller's hooks run
    /// (after them with `id_maps_by_caller`: it needs the maps).
    NamespacesCreated,
    /// The sandbox's mounts are in place (a new root built, not yet made the root with
    /// `pivot_root`; the fresh `/proc`), before they are locked against the program. OCI's
    /// `createRuntime` and `createContainer` hooks run here.
    MountsReady,
    /// The last point before the program's hardening (capabilities, `no_new_privs`, Landlock,
    /// seccomp) and `execve`: its stdio, fds and working directory are in place. OCI's `start`
    /// runs here. With an [`init`](crate::Sandbox::init) this is in the program's task, which
    /// the init has just started; the hook is still given the init's pid.
    BeforeExec,
}

impl SetupStage {
    /// Every stage, in the order the setup reaches them (a slice: a later version may add
    /// stages).
    pub const ALL: &'static [SetupStage] =
        &[SetupStage::NamespacesCreated, SetupStage::MountsReady, SetupStage::BeforeExec];

    /// The child's checkpoint for this stage.
    pub(crate) const fn checkpoint(self) -> Checkpoint {
        match self {
            SetupStage::NamespacesCreated => Checkpoint::NamespacesCreated,
            SetupStage::MountsReady => Checkpoint::MountsReady,
            SetupStage::BeforeExec => Checkpoint::BeforeExec,
        }
    }
}

/// What a setup hook ([`Sandbox::on_setup`](crate::Sandbox::on_setup)) is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SetupInfo {
    /// Where the setup is.
    pub stage: SetupStage,
    /// The pid, in the caller's PID namespace, of the sandbox's first task: the task in the
    /// sandbox's new namespaces, whose `/proc/PID/uid_map` and `/proc/PID/ns/*` are the
    /// sandbox's. It is the pid [`Child::id`](crate::Child::id) returns once the spawn is done:
    /// the program's (which has not been executed yet), or, with an
    /// [`init`](crate::Sandbox::init), the init's. After [`join`](crate::Sandbox::join)s it is
    /// the task cloned in the joined namespaces, not the one that joined them.
    pub pid: u32,
}

/// A hook as [`Sandbox::on_setup`](crate::Sandbox::on_setup) keeps it.
pub(crate) type HookFn = Box<dyn FnMut(SetupInfo) -> std::io::Result<()> + Send>;

/// The caller's hooks, in the order they were set. Each sits in a `Mutex` only so that a
/// `Sandbox` stays `Sync` (a hook need only be `Send`); it is reached through `&mut`, never
/// locked (and so never poisoned).
#[derive(Default)]
pub(crate) struct CallerHooks {
    hooks: Vec<(SetupStage, Mutex<HookFn>)>,
    /// The panic of a hook, caught while the spawn cleans up.
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

impl std::fmt::Debug for CallerHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.hooks.iter().map(|(stage, _)| stage)).finish()
    }
}

impl CallerHooks {
    /// Adds `hook` at `stage`, after those set there already.
    pub fn push(&mut self, stage: SetupStage, hook: HookFn) {
        self.hooks.push((stage, Mutex::new(hook)));
    }

    /// Whether any hook is set at `stage`.
    pub fn has(&self, stage: SetupStage) -> bool {
        self.hooks.iter().any(|(s, _)| *s == stage)
    }

    /// The checkpoints at which a hook is set (a set of [`Checkpoint::bit`]s).
    pub fn checkpoints(&self) -> u8 {
        self.hooks.iter().fold(0, |set, (stage, _)| set | stage.checkpoint().bit())
    }

    /// Runs the hooks of checkpoint `at`, in the order they were set, for the sandbox's first
    /// task `pid`; the first error ends the run (the spawn fails with [`Step::SetupHook`]).
    pub fn run(&mut self, at: Checkpoint, pid: i32) -> Result<(), Error> {
        for (stage, hook) in &mut self.hooks {
            if stage.checkpoint() != at {
                continue;
            }
            // Never locked (`get_mut`), so never poisoned.
            let hook = hook.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
            let info = SetupInfo { stage: *stage, pid: pid as u32 };
            // A panic is caught here, so the spawn can end the child and reap it first, and
            // goes on once it has ([`CallerHooks::resume_panic`]).
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(info)));
            let source = match ran {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e,
                Err(payload) => {
                    *self.panic.get_mut().unwrap_or_else(|p| p.into_inner()) = Some(payload);
                    std::io::Error::other("the setup hook panicked")
                }
            };
            return Err(Error::Setup { step: Step::SetupHook, path: None, source, hint: None });
        }
        Ok(())
    }

    /// Goes on with the panic of a hook of the last spawn, if one panicked: the spawn has
    /// ended its child and reaped it.
    pub fn resume_panic(&mut self) {
        if let Some(payload) = self.panic.get_mut().unwrap_or_else(|p| p.into_inner()).take() {
            std::panic::resume_unwind(payload);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// What the hooks saw: (which hook, stage, pid).
    type Log = Arc<Mutex<Vec<(u8, SetupStage, u32)>>>;

    fn recorder(log: &Log, n: u8) -> HookFn {
        let log = Arc::clone(log);
        Box::new(move |info: SetupInfo| {
            log.lock().unwrap().push((n, info.stage, info.pid));
            Ok(())
        })
    }

    #[test]
    fn stages_map_to_their_checkpoints_in_order() {
        let checkpoints: Vec<Checkpoint> = SetupStage::ALL.iter().map(|s| s.checkpoint()).collect();
        assert_eq!(
            checkpoints,
            [Checkpoint::NamespacesCreated, Checkpoint::MountsReady, Checkpoint::BeforeExec]
        );
        assert!(SetupStage::NamespacesCreated < SetupStage::MountsReady);
        assert!(SetupStage::MountsReady < SetupStage::BeforeExec);
    }

    #[test]
    fn checkpoints_are_those_with_a_hook() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut hooks = CallerHooks::default();
        assert_eq!(hooks.checkpoints(), 0);
        hooks.push(SetupStage::BeforeExec, recorder(&log, 1));
        hooks.push(SetupStage::BeforeExec, recorder(&log, 2));
        assert_eq!(hooks.checkpoints(), Checkpoint::BeforeExec.bit());
        assert!(hooks.has(SetupStage::BeforeExec) && !hooks.has(SetupStage::NamespacesCreated));
        hooks.push(SetupStage::NamespacesCreated, recorder(&log, 3));
        assert_eq!(
            hooks.checkpoints(),
            Checkpoint::BeforeExec.bit() | Checkpoint::NamespacesCreated.bit()
        );
    }

    #[test]
    fn hooks_run_at_their_checkpoint_in_the_order_set() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut hooks = CallerHooks::default();
        hooks.push(SetupStage::BeforeExec, recorder(&log, 1));
        hooks.push(SetupStage::NamespacesCreated, recorder(&log, 2));
        hooks.push(SetupStage::BeforeExec, recorder(&log, 3));
        hooks.run(Checkpoint::MountsReady, 7).unwrap();
        assert!(log.lock().unwrap().is_empty());
        hooks.run(Checkpoint::NamespacesCreated, 7).unwrap();
        hooks.run(Checkpoint::BeforeExec, 7).unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            [
                (2, SetupStage::NamespacesCreated, 7),
                (1, SetupStage::BeforeExec, 7),
                (3, SetupStage::BeforeExec, 7)
            ]
        );
    }

    #[test]
    fn the_first_error_stops_the_run_and_names_the_step_and_errno() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut hooks = CallerHooks::default();
        hooks.push(SetupStage::MountsReady, recorder(&log, 1));
        hooks.push(
            SetupStage::MountsReady,
            Box::new(|_| Err(std::io::Error::from_raw_os_error(libc::EACCES))),
        );
        hooks.push(SetupStage::MountsReady, recorder(&log, 3));
        let e = hooks.run(Checkpoint::MountsReady, 9).unwrap_err();
        assert_eq!(e.step(), Some(Step::SetupHook), "{e}");
        assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
        assert!(e.to_string().starts_with("cannot run the caller's setup hook: "), "{e}");
        assert_eq!(*log.lock().unwrap(), [(1, SetupStage::MountsReady, 9)]);
        // An error without an errno keeps its message.
        let mut hooks = CallerHooks::default();
        hooks.push(SetupStage::MountsReady, Box::new(|_| Err(std::io::Error::other("no map"))));
        let e = hooks.run(Checkpoint::MountsReady, 9).unwrap_err();
        assert_eq!((e.step(), e.raw_os_error()), (Some(Step::SetupHook), None));
        assert!(e.to_string().ends_with("no map"), "{e}");
    }

    #[test]
    fn the_hooks_are_send_and_sync() {
        fn both<T: Send + Sync>() {}
        both::<CallerHooks>();
    }
}
