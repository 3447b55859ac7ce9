//! The caller's setup hooks and id maps the caller writes ([`crate::spawn::CallerHooks`]).

use crate::Sandbox;
use crate::spawn::{SetupInfo, SetupStage};

impl Sandbox {
    /// Runs `hook` when the sandbox's setup reaches `stage`, in the caller's process, while the
    /// sandbox waits: the setup goes on once the hook returns `Ok(())`. The hook is given the
    /// stage and the pid of the sandbox's first task ([`SetupInfo`]), as the caller's PID
    /// namespace numbers it: the task in the sandbox's new namespaces, whose
    /// `/proc/PID/uid_map` a caller writes, and which has not executed the program yet (with
    /// an [`init`](Sandbox::init), the init). This is how bubblewrap's `--info-fd`,
    /// `--block-fd` and `--userns-block-fd` are built: a hook that writes the pid where the
    /// caller reads it and then blocks until the caller says go.
    ///
    /// - Each [`spawn`](Sandbox::spawn) (and [`status`](Sandbox::status),
    ///   [`output`](Sandbox::output)) runs the hooks, on the thread that spawns, once per stage.
    ///   Several may be set: they run in stage order, and in the order they were set within a
    ///   stage; what nscell itself does at a stage (id maps it writes from the caller's process,
    ///   a network helper's start) comes first.
    /// - An `Err` (or a panic) ends the spawn: no later hook runs, the sandbox is told to leave
    ///   before anything of it ran, and is reaped; nothing is left behind, and `spawn` returns
    ///   [`Error::Setup`](crate::Error::Setup) with [`Step::SetupHook`](crate::Step::SetupHook)
    ///   and the hook's `io::Error` as its source (its errno is the error's
    ///   [`raw_os_error`](crate::Error::raw_os_error)). A panic goes on once the sandbox is
    ///   reaped.
    /// - The hook is the caller's: nscell cannot interrupt it. A [`timeout`](Sandbox::timeout)
    ///   that passes, or an [`abort_setup_on`](Sandbox::abort_setup_on) fd that becomes
    ///   readable, while a hook runs, takes effect when it returns: the setup is cut there,
    ///   before the sandbox goes on (a timeout kills the sandbox, an abort fails the spawn with
    ///   [`Error::SetupInterrupted`](crate::Error::SetupInterrupted)). A hook that waits on
    ///   something of its own should wait with a bound of its own too.
    /// - The sandbox's first task stays alive while a hook runs (it waits for the answer), so
    ///   its pid names it; it has every capability in its user namespace but none of the
    ///   caller's beyond.
    ///
    /// Cost: a sandbox with hooks is spawned on the path where the caller's thread waits in
    /// user space (`clone` without `CLONE_VFORK`, a setup channel; under a cgroup memory limit a
    /// fork-style copy of the caller's memory, as an init gets): a few microseconds dearer than
    /// the default, which is untouched without hooks.
    ///
    /// ```
    /// use nscell::{Sandbox, SetupStage};
    ///
    /// let mut sb = Sandbox::new("/bin/true");
    /// sb.on_setup(SetupStage::NamespacesCreated, |info| {
    ///     let ns = std::fs::read_link(format!("/proc/{}/ns/pid", info.pid))?;
    ///     eprintln!("the sandbox's first task is {} in {}", info.pid, ns.display());
    ///     Ok(())
    /// });
    /// assert!(sb.status()?.success());
    /// # Ok::<(), nscell::Error>(())
    /// ```
    pub fn on_setup(
        &mut self,
        stage: SetupStage,
        hook: impl FnMut(SetupInfo) -> std::io::Result<()> + Send + 'static,
    ) -> &mut Self {
        self.setup_hooks.push(stage, Box::new(hook));
        self
    }

    /// Lets the caller write the user namespace's id maps: nscell writes no `uid_map`,
    /// `gid_map` or `setgroups` of the sandbox's new user namespace, neither from the sandbox
    /// nor from the caller's process; a hook at [`SetupStage::NamespacesCreated`]
    /// ([`on_setup`](Sandbox::on_setup)) writes them (or has another process write them, as
    /// `newuidmap` and `newgidmap` do) before it returns. bubblewrap's `--userns-block-fd`.
    /// Default: off.
    ///
    /// The setup goes on with whatever maps were written: the program's ids inside are those
    /// its caller's ids map to (unmapped, they read as 65534), and it has every capability in
    /// its user namespace until the hardening (a program that is not uid 0 inside loses them at
    /// `execve`, as without this). What nscell does later in the user namespace needs the
    /// caller's own uid and gid mapped: locking the mounts and
    /// [`allow_nested_userns(false)`](Sandbox::allow_nested_userns) (whose nested namespace
    /// maps the program's ids, read once they are set, to themselves) create user namespaces,
    /// which the kernel allows only to a task whose ids are mapped; a
    /// [`network`](Sandbox::network) helper starts after the caller's `NamespacesCreated` hooks.
    /// To write a gid map unprivileged, write `deny` to `setgroups` first (the kernel's rule).
    ///
    /// [`spawn`](Sandbox::spawn) returns [`Error::InvalidInput`](crate::Error::InvalidInput)
    /// when this cannot work: with [`uid_map`](Sandbox::uid_map) or
    /// [`gid_map`](Sandbox::gid_map) (the maps are nscell's or the caller's), without a new
    /// user namespace (none asked for, or one joined), or without a hook at
    /// `NamespacesCreated` (nothing would write them).
    ///
    /// ```
    /// use nscell::{Sandbox, SetupStage, Stdio};
    ///
    /// let uid = rustix::process::geteuid().as_raw();
    /// let gid = rustix::process::getegid().as_raw();
    /// let out = Sandbox::new("/bin/sh")
    ///     .args(["-c", "id -u"])
    ///     .id_maps_by_caller(true)
    ///     .on_setup(SetupStage::NamespacesCreated, move |info| {
    ///         let proc = format!("/proc/{}", info.pid);
    ///         std::fs::write(format!("{proc}/uid_map"), format!("0 {uid} 1"))?;
    ///         std::fs::write(format!("{proc}/setgroups"), "deny")?;
    ///         std::fs::write(format!("{proc}/gid_map"), format!("0 {gid} 1"))
    ///     })
    ///     .output()?;
    /// assert_eq!(out.stdout, b"0\n");
    /// # Ok::<(), nscell::Error>(())
    /// ```
    pub fn id_maps_by_caller(&mut self, by_caller: bool) -> &mut Self {
        self.id_maps_by_caller = by_caller;
        self
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_sandbox_with_hooks_stays_send_and_sync() {
        fn both<T: Send + Sync>(_: &T) {}
        let mut sb = crate::Sandbox::new("/bin/true");
        sb.on_setup(crate::SetupStage::BeforeExec, |_| Ok(()));
        both(&sb);
    }
}
