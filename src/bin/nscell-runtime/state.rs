//! The state directory: one directory per container under `--root`, holding `state.json` (our
//! record), `exec.fifo` while the container is created and not started, and a lock (`flock`
//! on the container's directory) that every verb on the container holds while it acts.

use crate::Result;
use crate::args::Global;
use serde_json::{Value, json};
use std::fs::File;
use std::path::{Path, PathBuf};

/// The runtime spec version nscell-runtime implements.
pub const OCI_VERSION: &str = "1.2.0";

/// Whether this process is rootless: not uid 0, or uid 0 of a user namespace that maps less
/// than every id (rootless podman's), read from `/proc/self/uid_map` rather than the euid.
pub fn rootless() -> bool {
    let uid_map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    !rustix::process::geteuid().is_root() || !full_id_map(&uid_map)
}

/// Whether a `uid_map` is the initial namespace's, mapping every id to itself.
pub fn full_id_map(map: &str) -> bool {
    let lines: Vec<Vec<&str>> = map.lines().map(|l| l.split_whitespace().collect()).collect();
    matches!(lines.as_slice(), [l] if l.as_slice() == ["0", "0", "4294967295"])
}

/// `--root`, or the default: `/run/nscell` for real root; rootless `$XDG_RUNTIME_DIR/nscell`,
/// or, without `XDG_RUNTIME_DIR`, `/tmp/nscell-runtime-UID` (made 0700, refused if another
/// user owns it).
pub fn root_dir(global: &Global) -> Result<PathBuf> {
    let root = match &global.root {
        Some(r) => r.clone(),
        None if !rootless() => PathBuf::from("/run/nscell"),
        None => match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            Some(d) => PathBuf::from(d).join("nscell"),
            None => PathBuf::from(format!(
                "/tmp/nscell-runtime-{}",
                rustix::process::geteuid().as_raw()
            )),
        },
    };
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&root)
        .map_err(|e| format!("cannot create the state directory {}: {e}", root.display()))?;
    let meta = std::fs::metadata(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(format!(
            "the state directory {} belongs to uid {}, not to this user: give --root",
            root.display(),
            meta.uid()
        ));
    }
    Ok(root)
}

/// A container ID as runc takes them: letters, digits and `_ + - .`, not `.` or `..`.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid container ID {id:?}: use letters, digits, _ + - ."))
    }
}

/// What the state directory keeps of a container.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    pub pid: i32,
    /// `/proc/PID/stat` field 22: with the pid, names the process and no later one.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub created: String,
    pub annotations: Value,
    /// [`nscell::cgroup::Cgroup::record`], when the container has one.
    pub cgroup: Option<String>,
    /// The config's `hooks` (for start and delete, which must not depend on the bundle).
    pub hooks: Value,
    /// Its namespaces' `/proc/PID/ns` paths are joined by exec; whether it has a user
    /// namespace of its own decides how.
    pub own_userns: bool,
    /// The cgroupsPath directories the runtime made (delete removes them).
    pub made_cgroups: Vec<PathBuf>,
}

impl Record {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "pid": self.pid,
            "startTime": self.start_time,
            "bundle": self.bundle,
            "created": self.created,
            "annotations": self.annotations,
            "cgroup": self.cgroup,
            "hooks": self.hooks,
            "ownUserns": self.own_userns,
            "madeCgroups": self.made_cgroups,
        })
    }

    pub fn from_json(v: &Value) -> Option<Record> {
        Some(Record {
            id: v.get("id")?.as_str()?.to_string(),
            pid: i32::try_from(v.get("pid")?.as_i64()?).ok()?,
            start_time: v.get("startTime")?.as_u64()?,
            bundle: PathBuf::from(v.get("bundle")?.as_str()?),
            created: v.get("created")?.as_str()?.to_string(),
            annotations: v.get("annotations").cloned().unwrap_or(json!({})),
            cgroup: v.get("cgroup").and_then(Value::as_str).map(str::to_string),
            hooks: v.get("hooks").cloned().unwrap_or(Value::Null),
            own_userns: v.get("ownUserns").and_then(Value::as_bool).unwrap_or(false),
            made_cgroups: v
                .get("madeCgroups")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(PathBuf::from).collect())
                .unwrap_or_default(),
        })
    }
}

/// What `state` says of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// A process's state letter and start time (`/proc/PID/stat` fields 3 and 22).
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

pub fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 3 is fields[0]: field 22 is fields[19].
    Some((state, fields.get(19)?.parse().ok()?))
}

/// One container's directory, locked.
pub struct Container {
    pub dir: PathBuf,
    pub record: Record,
    _lock: File,
}

/// Takes `file`'s lock (blocking until the verb that holds it is done).
pub fn lock_file(file: &File) -> Result<()> {
    rustix::fs::flock(file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| format!("cannot lock the container's state: {e}"))
}

impl Container {
    /// The container `id`, locked, with its record.
    pub fn open(root: &Path, id: &str) -> Result<Container> {
        check_id(id)?;
        let dir = root.join(id);
        let lock = File::open(&dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("container {id:?} does not exist"),
            _ => format!("cannot open {}: {e}", dir.display()),
        })?;
        lock_file(&lock)?;
        let text = std::fs::read_to_string(dir.join("state.json")).map_err(|e| {
            format!(
                "container {id:?} has no state ({}: {e}); delete --force removes it",
                dir.display()
            )
        })?;
        let record =
            serde_json::from_str(&text).ok().and_then(|v| Record::from_json(&v)).ok_or_else(
                || format!("container {id:?}: {}/state.json is not nscell's", dir.display()),
            )?;
        Ok(Container { dir, record, _lock: lock })
    }

    /// Its status now: stopped once its process has ended (or another took its pid), created
    /// while it waits at its gate, paused while its cgroup is frozen.
    pub fn status(&self) -> Status {
        match proc_stat(self.record.pid) {
            Some((state, start))
                if start == self.record.start_time && state != 'Z' && state != 'X' =>
            {
                if self.dir.join("exec.fifo").exists() {
                    Status::Created
                } else if self.frozen() {
                    Status::Paused
                } else {
                    Status::Running
                }
            }
            _ => Status::Stopped,
        }
    }

    fn frozen(&self) -> bool {
        let Some(cg) = &self.record.cgroup else { return false };
        cg.lines().any(|dir| {
            let dir = Path::new(dir);
            let v2 = std::fs::read_to_string(dir.join("cgroup.freeze"));
            let v1 = std::fs::read_to_string(dir.join("freezer.state"));
            v2.is_ok_and(|s| s.trim() == "1") || v1.is_ok_and(|s| s.trim() == "FROZEN")
        })
    }

    /// The state JSON of the runtime spec.
    pub fn oci_state(&self) -> Value {
        oci_state(&self.record, self.status())
    }

    /// A pidfd of the container's process, if it is the one the record names.
    pub fn pidfd(&self) -> Option<std::os::fd::OwnedFd> {
        let pid = rustix::process::Pid::from_raw(self.record.pid)?;
        let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()?;
        // Opened first, checked after: the pidfd names the process the record names.
        match proc_stat(self.record.pid) {
            Some((_, start)) if start == self.record.start_time => Some(fd),
            _ => None,
        }
    }
}

pub fn oci_state(record: &Record, status: Status) -> Value {
    let mut v = json!({
        "ociVersion": OCI_VERSION,
        "id": record.id,
        "status": status.name(),
        "bundle": record.bundle,
        "annotations": record.annotations,
    });
    if status != Status::Stopped {
        v["pid"] = json!(record.pid);
    }
    v
}

/// Writes `contents` to `path` through a temporary file and a rename: readers see the old or
/// the new, never half.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootlessness_comes_from_the_uid_map() {
        assert!(full_id_map("         0          0 4294967295\n"));
        assert!(!full_id_map("0 1000 1\n"));
        assert!(!full_id_map("0 1000 1\n1 100000 65536\n"));
        assert!(!full_id_map(""));
    }

    #[test]
    fn ids_are_checked_and_stat_is_read_past_the_command_name() {
        assert!(check_id("abc-1.2_3+x").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "x\n"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        let stat = "42 (a) b) c) S 1 42 42 0 -1 4194560 10 0 0 0 0 0 0 0 20 0 1 0 12345 1000";
        assert_eq!(parse_stat(stat), Some(('S', 12345)));
    }

    #[test]
    fn the_record_round_trips_and_the_state_omits_the_pid_once_stopped() {
        let r = Record {
            id: "c".into(),
            pid: 7,
            start_time: 9,
            bundle: "/b".into(),
            created: "t".into(),
            annotations: json!({"k": "v"}),
            cgroup: Some("/sys/fs/cgroup/x\n".into()),
            hooks: json!({"poststop": []}),
            own_userns: true,
            made_cgroups: vec!["/sys/fs/cgroup/pids/a".into()],
        };
        assert_eq!(Record::from_json(&r.to_json()), Some(r.clone()));
        let running = oci_state(&r, Status::Running);
        assert_eq!(running["pid"], 7);
        assert_eq!(running["status"], "running");
        assert_eq!(running["annotations"]["k"], "v");
        assert!(oci_state(&r, Status::Stopped).get("pid").is_none());
    }
}
