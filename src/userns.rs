//! Id maps written from outside the new user namespace: by a root parent directly, or by an
//! unprivileged one through the setuid helpers `newuidmap`/`newgidmap` (package `uidmap`).

use crate::Namespaces;
use crate::error::{Error, Step};
use crate::idmap::IdMap;
use std::path::{Path, PathBuf};

/// How the parent writes maps that the child cannot write for itself.
#[derive(Debug, Clone)]
pub(crate) enum Writer {
    /// A caller with CAP_SETUID/CAP_SETGID writes `/proc/PID/{uid,gid}_map` itself.
    Direct,
    /// An unprivileged caller runs the helpers.
    Helpers { newuidmap: PathBuf, newgidmap: PathBuf },
}

/// Maps the parent writes on the handshake path.
#[derive(Debug, Clone)]
pub(crate) struct ParentMaps {
    pub writer: Writer,
    pub uid_map: Vec<IdMap>,
    pub gid_map: Vec<IdMap>,
}

const HELPER_HINT: &str = "install the uidmap package (newuidmap, newgidmap) and give this user \
     ranges in /etc/subuid and /etc/subgid (usermod --add-subuids/--add-subgids); see \
     README.md#troubleshooting";

/// Finds a helper the way a shell would, falling back to the usual places.
pub(crate) fn find_helper(name: &str) -> Option<PathBuf> {
    find_in_path(name).or_else(|| {
        ["/usr/bin", "/bin", "/usr/sbin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| is_executable(p))
    })
}

/// The first executable `name` in the caller's `PATH`.
pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    rustix::fs::access(p, rustix::fs::Access::EXEC_OK).is_ok() && p.is_file()
}

impl Writer {
    pub(crate) fn for_caller(uid_map: &[IdMap], gid_map: &[IdMap]) -> Result<Writer, Error> {
        if rustix::process::geteuid().is_root() {
            return Ok(Writer::Direct);
        }
        let newuidmap = find_helper("newuidmap");
        let newgidmap = find_helper("newgidmap");
        match (newuidmap, newgidmap) {
            (Some(newuidmap), Some(newgidmap)) => Ok(Writer::Helpers { newuidmap, newgidmap }),
            _ => Err(Error::Unsupported {
                feature: "an id map beyond the caller's own id",
                reason: format!(
                    "uid map [{}] and gid map [{}] must be written by newuidmap/newgidmap, which \
                     are not installed; {HELPER_HINT}",
                    join(uid_map),
                    join(gid_map)
                ),
            }),
        }
    }
}

fn join(maps: &[IdMap]) -> String {
    maps.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(", ")
}

impl ParentMaps {
    /// Writes both maps for process `pid`, gid first so a helper can still check setgroups.
    pub(crate) fn write(&self, pid: i32) -> Result<(), Error> {
        match &self.writer {
            Writer::Direct => {
                for (file, maps, step) in [
                    ("uid_map", &self.uid_map, Step::WriteUidMap),
                    ("gid_map", &self.gid_map, Step::WriteGidMap),
                ] {
                    let path = PathBuf::from(format!("/proc/{pid}/{file}"));
                    std::fs::write(&path, crate::idmap::render(maps)).map_err(|e| {
                        let errno = e.raw_os_error().unwrap_or(0);
                        Error::setup_in(step, Some(path.clone()), errno, Namespaces::USER)
                    })?;
                }
                Ok(())
            }
            Writer::Helpers { newuidmap, newgidmap } => {
                run_helper(newuidmap, pid, &self.uid_map)?;
                run_helper(newgidmap, pid, &self.gid_map)
            }
        }
    }
}

fn run_helper(helper: &Path, pid: i32, maps: &[IdMap]) -> Result<(), Error> {
    let mut cmd = std::process::Command::new(helper);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([m.inside.to_string(), m.outside.to_string(), m.count.to_string()]);
    }
    cmd.stdin(std::process::Stdio::null());
    let out = cmd.output().map_err(|e| {
        let errno = e.raw_os_error().unwrap_or(0);
        Error::setup_in(Step::RunIdMapHelper, Some(helper.into()), errno, Namespaces::USER)
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::IdMapHelper {
        helper: helper.into(),
        status: out.status,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        hint: Some(format!(
            "the ranges must be the caller's own id or lie within its entries in /etc/subuid \
             and /etc/subgid; {HELPER_HINT}"
        )),
    })
}

/// The caller's ranges in `/etc/subuid` or `/etc/subgid` (matched by name or number).
pub(crate) fn subid_ranges(file: &str, id: u32) -> Vec<(u32, u32)> {
    let name = user_name(id);
    let Ok(text) = std::fs::read_to_string(file) else { return Vec::new() };
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            let id_text = id.to_string();
            (who == id_text || Some(who) == name.as_deref())
                .then(|| Some((start.parse().ok()?, count.parse().ok()?)))
                .flatten()
        })
        .collect()
}

fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _ = f.next()?;
        (f.next()?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}
