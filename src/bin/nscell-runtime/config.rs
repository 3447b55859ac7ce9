//! config.json (parsed by `oci-spec`) onto a [`Sandbox`], through nscell's public API only.
//!
//! The filesystem part is planned first as a list of [`FsOp`]s (pure, unit-tested), then
//! applied to the builder. What nscell cannot do yet is refused with a message naming the
//! field, never silently dropped, except where dropping only takes privilege away (listed in
//! the README's "OCI runtime" section).

use crate::Result;
use nscell::seccomp::{Action, ArgCmp, Filter, Rule};
use nscell::{Capabilities, IdMap, Namespaces, Sandbox};
use oci_spec::runtime::{Linux, LinuxSeccomp, Mount, Spec};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// An enum of oci-spec's as the JSON names it (`"CAP_CHOWN"`, `"RLIMIT_NOFILE"`, `"pid"`).
fn name_of<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(e) => e.to_string(),
    }
}

/// What the runtime keeps beside the builder.
pub struct Built {
    pub sandbox: Sandbox,
    /// `process.terminal`: the sandbox has a pty, whose master goes to the console socket.
    pub terminal: bool,
    /// The container has a user namespace of its own (not the runtime's, not joined).
    pub own_userns: bool,
    /// The config's `hooks`, as JSON.
    pub hooks: Value,
    /// `process.oomScoreAdj`, written by the runtime for the container's process.
    pub oom_score_adj: Option<i32>,
    /// `linux.cgroupsPath` as a path: the container's cgroup is made below it.
    pub cgroup_parent: Option<PathBuf>,
}

/// One filesystem operation of the container's root.
#[derive(Debug, Clone, PartialEq)]
pub enum FsOp {
    Root {
        path: PathBuf,
        read_only: bool,
    },
    Bind {
        src: PathBuf,
        dest: PathBuf,
        read_only: bool,
        devices: bool,
    },
    Proc(PathBuf),
    /// A tmpfs on `/dev`: nscell's minimal `/dev` (the default devices, `pts`, `shm`).
    Dev(PathBuf),
    Tmpfs {
        dest: PathBuf,
        size: Option<u64>,
        mode: Option<u32>,
    },
    Mqueue(PathBuf),
    /// `sysfs`: a read-only sysfs of the container's own with a network namespace of its
    /// own, else the host's `/sys` bound read-only.
    Sysfs(PathBuf),
    Cgroup(PathBuf),
    /// A masked file: an empty read-only file over it.
    MaskFile(PathBuf),
    /// A masked directory: an empty read-only tmpfs over it.
    MaskDir(PathBuf),
    ReadOnly(PathBuf),
}

fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// The config's mounts, root, masked and read-only paths as operations. `exists` says what
/// a path in the root is (`Some(true)` a directory, `Some(false)` something else, `None`
/// nothing), for the masks.
pub fn plan_fs(
    root: &Path,
    root_ro: bool,
    mounts: &[Mount],
    masked: &[String],
    read_only: &[String],
    bundle: &Path,
    exists: &dyn Fn(&Path) -> Option<bool>,
) -> Result<Vec<FsOp>> {
    let mut ops = vec![FsOp::Root { path: root.to_path_buf(), read_only: root_ro }];
    let mut dev = None::<PathBuf>;
    for m in mounts {
        let dest = m.destination().clone();
        if !dest.is_absolute() {
            return Err(format!("mount destination {} is not absolute", dest.display()));
        }
        let opts: Vec<&str> =
            m.options().as_deref().unwrap_or_default().iter().map(String::as_str).collect();
        let typ = m.typ().as_deref().unwrap_or("");
        let is_bind = typ == "bind" || opts.iter().any(|o| *o == "bind" || *o == "rbind");
        // Under nscell's /dev, what it made already.
        if dev.as_ref().is_some_and(|d| [d.join("pts"), d.join("shm")].contains(&dest))
            && !is_bind
            && matches!(typ, "devpts" | "tmpfs")
        {
            continue;
        }
        let op = if is_bind {
            let src = m
                .source()
                .clone()
                .ok_or_else(|| format!("the bind mount on {} has no source", dest.display()))?;
            let src = if src.is_absolute() { src } else { bundle.join(src) };
            FsOp::Bind {
                src,
                dest,
                read_only: opts.contains(&"ro"),
                devices: !opts.contains(&"nodev"),
            }
        } else {
            match typ {
                "proc" => FsOp::Proc(dest),
                "tmpfs" if dest == Path::new("/dev") => {
                    dev = Some(dest.clone());
                    FsOp::Dev(dest)
                }
                "tmpfs" => {
                    let opt = |key: &str| opts.iter().find_map(|o| o.strip_prefix(key));
                    let size = match opt("size=") {
                        Some(s) => Some(parse_size(s).ok_or_else(|| format!("tmpfs size={s}?"))?),
                        None => None,
                    };
                    let mode = match opt("mode=") {
                        Some(m) => Some(
                            u32::from_str_radix(m, 8).map_err(|_| format!("tmpfs mode={m}?"))?,
                        ),
                        None => None,
                    };
                    FsOp::Tmpfs { dest, size, mode }
                }
                "mqueue" => FsOp::Mqueue(dest),
                "sysfs" => FsOp::Sysfs(dest),
                "cgroup" | "cgroup2" => FsOp::Cgroup(dest),
                "devpts" => {
                    return Err(format!(
                        "a devpts on {} without a tmpfs on /dev before it: not supported",
                        dest.display()
                    ));
                }
                other => {
                    return Err(format!(
                        "mount type {other:?} on {}: not supported (bind, proc, tmpfs, devpts \
                         on /dev/pts, mqueue, sysfs, cgroup are)",
                        dest.display()
                    ));
                }
            }
        };
        ops.push(op);
    }
    for p in masked {
        let path = PathBuf::from(p);
        match exists(&path) {
            Some(true) => ops.push(FsOp::MaskDir(path)),
            Some(false) => ops.push(FsOp::MaskFile(path)),
            None => {}
        }
    }
    for p in read_only {
        let path = PathBuf::from(p);
        if exists(&path).is_some() {
            ops.push(FsOp::ReadOnly(path));
        }
    }
    Ok(ops)
}

fn apply_fs(sb: &mut Sandbox, ops: &[FsOp], has_limits: bool, own_net: bool) {
    for op in ops {
        match op {
            FsOp::Root { path, read_only: true } => sb.ro_bind(path, "/"),
            FsOp::Root { path, read_only: false } => sb.bind(path, "/"),
            FsOp::Bind { src, dest, read_only: true, .. } => sb.ro_bind(src, dest),
            FsOp::Bind { src, dest, devices: true, .. } => sb.dev_bind(src, dest),
            FsOp::Bind { src, dest, .. } => sb.bind(src, dest),
            FsOp::Proc(d) => sb.proc(d),
            FsOp::Dev(d) => sb.dev(d),
            FsOp::Tmpfs { dest, size, mode } => sb.tmpfs_with(dest, *size, *mode),
            FsOp::Mqueue(d) => sb.mqueue(d),
            // A sysfs of its own needs a network namespace of its own.
            FsOp::Sysfs(d) if own_net => sb.sysfs(d),
            FsOp::Sysfs(d) => sb.ro_bind("/sys", d),
            FsOp::Cgroup(d) if has_limits => sb.cgroup_view(d),
            // Without a cgroup of its own: the host's /sys (read-only) shows the hierarchy.
            FsOp::Cgroup(_) => sb,
            FsOp::MaskFile(d) => sb.ro_bind_data(d, Vec::<u8>::new(), None),
            FsOp::MaskDir(d) => sb.tmpfs_with(d, Some(4096), Some(0o755)).read_only(d),
            FsOp::ReadOnly(d) => sb.read_only(d),
        };
    }
}

/// What a path in the rootfs is, looked up on the host without following a symlink out of it
/// (a symlink counts as a file: the mask or read-only bind then fails or covers it, in the
/// container's own resolution).
fn kind_in(root: &Path, path: &Path) -> Option<bool> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    // /proc and /sys paths are the kernel's: look at the host's.
    let host = if rel.starts_with("proc") || rel.starts_with("sys") {
        Path::new("/").join(rel)
    } else {
        root.join(rel)
    };
    let meta = std::fs::symlink_metadata(host).ok()?;
    Some(meta.is_dir())
}

fn namespace_flag(typ: &str) -> Result<Namespaces> {
    Ok(match typ {
        "pid" => Namespaces::PID,
        "network" => Namespaces::NET,
        "mount" => Namespaces::MOUNT,
        "ipc" => Namespaces::IPC,
        "uts" => Namespaces::UTS,
        "user" => Namespaces::USER,
        "cgroup" => Namespaces::CGROUP,
        "time" => Namespaces::TIME,
        other => return Err(format!("linux.namespaces: unknown type {other:?}")),
    })
}

/// The new namespaces, and those joined by path.
pub fn plan_namespaces(
    linux: &Linux,
    rootless: bool,
) -> Result<(Namespaces, Vec<(Namespaces, PathBuf)>)> {
    let (mut new, mut joined) = (Namespaces::empty(), Vec::new());
    for ns in linux.namespaces().as_deref().unwrap_or_default() {
        let flag = namespace_flag(&name_of(&ns.typ()))?;
        match ns.path() {
            Some(p) if !p.as_os_str().is_empty() => joined.push((flag, p.clone())),
            _ => new |= flag,
        }
    }
    let has_user =
        new.contains(Namespaces::USER) || joined.iter().any(|(f, _)| *f == Namespaces::USER);
    if rootless && !has_user {
        // As crun does: without root here (euid 0 of this user namespace, rootless
        // podman's included, has what it needs), every other namespace needs a user
        // namespace.
        new |= Namespaces::USER;
    }
    Ok((new, joined))
}

fn caps(list: Option<&oci_spec::runtime::Capabilities>) -> Result<Capabilities> {
    let mut out = Capabilities::empty();
    for c in list.into_iter().flatten() {
        let name = name_of(c);
        // A capability this kernel or nscell does not know cannot be had: skip it.
        if let Some(cap) = Capabilities::parse(&name) {
            out |= cap;
        }
    }
    Ok(out)
}

/// The OCI seccomp profile as a program for [`Sandbox::seccomp_program`].
pub fn seccomp_program(profile: &LinuxSeccomp) -> Result<Vec<u8>> {
    let action =
        |a: &oci_spec::runtime::LinuxSeccompAction, errno: Option<u32>| -> Result<Action> {
            Ok(match name_of(a).as_str() {
                "SCMP_ACT_ALLOW" => Action::Allow,
                "SCMP_ACT_ERRNO" => Action::Errno(errno.map_or(libc::EPERM, |e| e as i32)),
                "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
                "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
                "SCMP_ACT_TRAP" => Action::Trap,
                "SCMP_ACT_LOG" => Action::Log,
                // No tracer: fail the call as libseccomp's runtimes do without one.
                "SCMP_ACT_TRACE" => Action::Errno(libc::ENOSYS),
                other => return Err(format!("linux.seccomp: action {other} is not supported")),
            })
        };
    let default = action(&profile.default_action(), profile.default_errno_ret())?;
    let mut filter = Filter::new(default);
    for sc in profile.syscalls().as_deref().unwrap_or_default() {
        let act = action(&sc.action(), sc.errno_ret())?;
        let args = sc.args().as_deref().unwrap_or_default();
        let cmp = match args {
            [] => None,
            [a] => {
                let i = a.index() as u8;
                Some(match name_of(&a.op()).as_str() {
                    "SCMP_CMP_EQ" => ArgCmp::Eq(i, a.value()),
                    "SCMP_CMP_NE" => ArgCmp::Ne(i, a.value()),
                    "SCMP_CMP_MASKED_EQ" => {
                        ArgCmp::MaskedEq(i, a.value_two().unwrap_or(0), a.value())
                    }
                    other => {
                        return Err(format!(
                            "linux.seccomp: comparison {other} is not supported (EQ, NE, \
                             MASKED_EQ are)"
                        ));
                    }
                })
            }
            _ => {
                return Err(format!(
                    "linux.seccomp: a rule for {:?} compares {} arguments; one at most is \
                     supported",
                    sc.names(),
                    args.len()
                ));
            }
        };
        for name in sc.names() {
            // A name this architecture lacks (a profile lists every arch's) is skipped, as
            // libseccomp does.
            if nscell::seccomp::syscall_number(name).is_none() {
                continue;
            }
            let rule = Rule::new(name, act);
            filter.rule(match cmp {
                Some(c) => rule.when(c),
                None => rule,
            });
        }
    }
    filter.compile().map_err(|e| format!("linux.seccomp: {e}"))
}

/// Whether AppArmor is enabled here (only then does an `apparmorProfile` mean anything).
fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

/// Options of `create` and `exec` that shape the builder.
#[derive(Default)]
pub struct Options {
    pub rootless: bool,
    pub no_new_keyring: bool,
    pub systemd_cgroup: bool,
}

/// The process's capabilities, rlimits, `noNewPrivileges`, seccomp profile, keyring and
/// terminal. Returns whether it has a terminal.
fn harden(
    sb: &mut Sandbox,
    process: &oci_spec::runtime::Process,
    linux: &Linux,
    o: &Options,
) -> Result<bool> {
    if let Some(c) = process.capabilities() {
        let keep = caps(c.bounding().as_ref())?
            | caps(c.permitted().as_ref())?
            | caps(c.effective().as_ref())?;
        sb.keep_capabilities(keep);
    } else {
        sb.drop_capabilities(Capabilities::ALL);
    }
    for r in process.rlimits().as_deref().unwrap_or_default() {
        let name = name_of(&r.typ());
        let res = nscell::rlimit::Resource::parse(&name)
            .ok_or_else(|| format!("process.rlimits: unknown {name}"))?;
        sb.rlimit(res, r.soft(), r.hard());
    }
    sb.no_new_privs(process.no_new_privileges().unwrap_or(false));
    sb.default_seccomp(false);
    if let Some(profile) = linux.seccomp() {
        if profile.listener_path().is_some() {
            return Err("linux.seccomp.listenerPath: not supported yet".into());
        }
        sb.seccomp_program(&seccomp_program(profile)?);
    }
    sb.new_session_keyring(!o.no_new_keyring);
    let terminal = process.terminal().unwrap_or(false);
    if terminal {
        sb.pty(true);
    }
    Ok(terminal)
}

/// An `exec`'s `process`, hardened as the container's `linux` says (its seccomp profile): no
/// root, no namespaces of its own.
pub fn build_exec(
    process: &oci_spec::runtime::Process,
    linux: &Linux,
    o: &Options,
) -> Result<Built> {
    let mut sb = process_part(process)?;
    let terminal = harden(&mut sb, process, linux, o)?;
    Ok(Built {
        sandbox: sb,
        terminal,
        own_userns: false,
        hooks: Value::Null,
        oom_score_adj: process.oom_score_adj(),
        cgroup_parent: None,
    })
}

/// A builder for the process's program, arguments, environment, working directory, user.
fn process_part(process: &oci_spec::runtime::Process) -> Result<Sandbox> {
    let args = process.args().as_deref().unwrap_or_default();
    let (program, rest) = args.split_first().ok_or("process.args is empty")?;
    let mut sb = Sandbox::new(program);
    sb.args(rest);
    sb.env_clear();
    for kv in process.env().as_deref().unwrap_or_default() {
        match kv.split_once('=') {
            Some((k, v)) => sb.env(k, v),
            None => sb.env(kv, ""),
        };
    }
    if !process.cwd().is_absolute() {
        return Err(format!("process.cwd {} is not absolute", process.cwd().display()));
    }
    sb.current_dir(process.cwd());
    let user = process.user();
    if user.uid() != 0 || user.gid() != 0 {
        return Err(format!(
            "process.user {}:{}: only uid 0 and gid 0 inside are supported yet",
            user.uid(),
            user.gid()
        ));
    }
    Ok(sb)
}

/// The builder for `spec`'s container, whose bundle is `bundle`.
pub fn build(spec: &Spec, bundle: &Path, o: &Options) -> Result<Built> {
    let process = spec.process().as_ref().ok_or("config.json has no process")?;
    let mut sb = process_part(process)?;
    let linux = spec.linux().clone().unwrap_or_default();
    let (new, joined) = plan_namespaces(&linux, !rustix::process::geteuid().is_root())?;
    sb.namespaces(new);
    for (flag, path) in &joined {
        let f = std::fs::File::open(path)
            .map_err(|e| format!("cannot open the namespace {}: {e}", path.display()))?;
        sb.join(*flag, f);
    }
    if new.contains(Namespaces::USER) {
        for m in linux.uid_mappings().as_deref().unwrap_or_default() {
            sb.uid_map(IdMap::new(m.container_id(), m.host_id(), m.size()));
        }
        for m in linux.gid_mappings().as_deref().unwrap_or_default() {
            sb.gid_map(IdMap::new(m.container_id(), m.host_id(), m.size()));
        }
    }
    // In a UTS namespace it joins (a pod's), the names are the namespace's own.
    let own_uts = new.contains(Namespaces::UTS);
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty() && own_uts) {
        sb.hostname(h);
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty() && own_uts) {
        sb.domainname(d);
    }

    // Cgroups: resources and cgroupsPath.
    let limits = crate::verbs::limits_of(&linux, o)?;
    let has_limits = limits.is_some();
    let mut cgroup_parent = None;
    if let Some((l, parent)) = limits {
        sb.limits(l);
        cgroup_parent = parent;
    }

    let root = spec.root().as_ref().ok_or("config.json has no root")?;
    let root_path =
        if root.path().is_absolute() { root.path().clone() } else { bundle.join(root.path()) };
    let ops = plan_fs(
        &root_path,
        root.readonly().unwrap_or(false),
        spec.mounts().as_deref().unwrap_or_default(),
        linux.masked_paths().as_deref().unwrap_or_default(),
        linux.readonly_paths().as_deref().unwrap_or_default(),
        bundle,
        &|p| kind_in(&root_path, p),
    )?;
    apply_fs(&mut sb, &ops, has_limits, new.contains(Namespaces::NET));
    for d in linux.devices().as_deref().unwrap_or_default() {
        // mknod and the device cgroup are root's: the host's node, bound (as rootless runc).
        if !d.path().exists() {
            return Err(format!(
                "linux.devices: {} does not exist on the host to bind (nscell-runtime does \
                 not mknod)",
                d.path().display()
            ));
        }
        sb.dev_bind(d.path(), d.path());
    }
    for (k, v) in linux.sysctl().clone().unwrap_or_default() {
        sb.sysctl(&k, v);
    }
    if let Some(p) = linux.personality() {
        if name_of(&p.domain()) != "LINUX" {
            return Err(format!("linux.personality {}: not supported", name_of(&p.domain())));
        }
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) {
        return Err("linux.timeOffsets: not supported yet".into());
    }
    if let Some(p) = process.apparmor_profile().as_deref().filter(|p| !p.is_empty()) {
        if apparmor_enabled() {
            return Err(format!("process.apparmorProfile {p:?}: AppArmor is not supported yet"));
        }
    }

    let terminal = harden(&mut sb, process, &linux, o)?;
    let hooks =
        spec.hooks().as_ref().map_or(Value::Null, |h| serde_json::to_value(h).unwrap_or_default());
    Ok(Built {
        sandbox: sb,
        terminal,
        own_userns: new.contains(Namespaces::USER),
        hooks,
        oom_score_adj: process.oom_score_adj(),
        cgroup_parent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    fn mounts(json: &str) -> Vec<Mount> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn runcs_default_mounts_become_nscells_operations() {
        let m = mounts(
            r#"[
            {"destination":"/proc","type":"proc","source":"proc"},
            {"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]},
            {"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620","gid=5"]},
            {"destination":"/dev/shm","type":"tmpfs","source":"shm","options":["nosuid","noexec","nodev","mode=1777","size=65536k"]},
            {"destination":"/dev/mqueue","type":"mqueue","source":"mqueue"},
            {"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]},
            {"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup"},
            {"destination":"/tmp","type":"tmpfs","options":["size=1m","mode=1777"]},
            {"destination":"/data","type":"none","source":"data","options":["rbind","ro"]},
            {"destination":"/etc/hosts","type":"bind","source":"/etc/hosts","options":["nodev"]}
        ]"#,
        );
        let exists = |p: &Path| match p.to_str() {
            Some("/proc/kcore") => Some(false),
            Some("/proc/acpi") | Some("/proc/sys") => Some(true),
            _ => None,
        };
        let ops = plan_fs(
            Path::new("/b/rootfs"),
            true,
            &m,
            &["/proc/kcore".into(), "/proc/acpi".into(), "/proc/gone".into()],
            &["/proc/sys".into(), "/proc/gone".into()],
            Path::new("/b"),
            &exists,
        )
        .unwrap();
        assert_eq!(
            ops,
            vec![
                FsOp::Root { path: "/b/rootfs".into(), read_only: true },
                FsOp::Proc("/proc".into()),
                FsOp::Dev("/dev".into()),
                FsOp::Mqueue("/dev/mqueue".into()),
                FsOp::Sysfs("/sys".into()),
                FsOp::Cgroup("/sys/fs/cgroup".into()),
                FsOp::Tmpfs { dest: "/tmp".into(), size: Some(1 << 20), mode: Some(0o1777) },
                FsOp::Bind {
                    src: "/b/data".into(),
                    dest: "/data".into(),
                    read_only: true,
                    devices: true
                },
                FsOp::Bind {
                    src: "/etc/hosts".into(),
                    dest: "/etc/hosts".into(),
                    read_only: false,
                    devices: false
                },
                FsOp::MaskFile("/proc/kcore".into()),
                FsOp::MaskDir("/proc/acpi".into()),
                FsOp::ReadOnly("/proc/sys".into()),
            ]
        );
    }

    #[test]
    fn what_cannot_be_mounted_is_refused_by_name() {
        let e = plan_fs(
            Path::new("/r"),
            false,
            &mounts(r#"[{"destination":"/x","type":"nfs","source":"s"}]"#),
            &[],
            &[],
            Path::new("/b"),
            &|_| None,
        )
        .unwrap_err();
        assert!(e.contains("\"nfs\"") && e.contains("/x"), "{e}");
        let e = plan_fs(
            Path::new("/r"),
            false,
            &mounts(r#"[{"destination":"rel","type":"proc"}]"#),
            &[],
            &[],
            Path::new("/b"),
            &|_| None,
        )
        .unwrap_err();
        assert!(e.contains("not absolute"), "{e}");
        assert_eq!(parse_size("64k"), Some(65536));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn namespaces_are_new_or_joined_and_rootless_adds_a_user_namespace() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/proc/1/ns/net"},{"type":"mount"}]}}"#,
        );
        let linux = s.linux().clone().unwrap();
        let (new, joined) = plan_namespaces(&linux, false).unwrap();
        assert_eq!(new, Namespaces::PID | Namespaces::MOUNT);
        assert_eq!(joined, vec![(Namespaces::NET, PathBuf::from("/proc/1/ns/net"))]);
        let (new, _) = plan_namespaces(&linux, true).unwrap();
        assert_eq!(new, Namespaces::PID | Namespaces::MOUNT | Namespaces::USER);
    }

    #[test]
    fn a_seccomp_profile_compiles_and_what_nscell_cannot_compare_is_refused() {
        let profile: LinuxSeccomp = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"names":["read","write","no_such_call"],"action":"SCMP_ACT_ALLOW"},
            {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]},
            {"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
        )
        .unwrap();
        let program = seccomp_program(&profile).unwrap();
        assert!(!program.is_empty() && program.len().is_multiple_of(8));
        let gt: LinuxSeccomp = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_GT"}]}]}"#,
        )
        .unwrap();
        assert!(seccomp_program(&gt).unwrap_err().contains("SCMP_CMP_GT"));
    }

    #[test]
    fn what_the_config_asks_and_nscell_cannot_do_is_an_error_naming_the_field() {
        let base = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/","args":["sh"],"user":{"uid":UID,"gid":0}},"linux":{"namespaces":[{"type":"mount"}]}}"#;
        let e = build(&spec(&base.replace("UID", "1000")), Path::new("/b"), &Options::default())
            .err()
            .unwrap();
        assert!(e.contains("process.user 1000:0"), "{e}");
        let no_args = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"cwd":"/","args":[],"user":{"uid":0,"gid":0}}}"#;
        let e = build(&spec(no_args), Path::new("/b"), &Options::default()).err().unwrap();
        assert!(e.contains("process.args is empty"), "{e}");
        let built = build(&spec(&base.replace("UID", "0")), Path::new("/b"), &Options::default());
        assert!(built.is_ok());
    }
}
