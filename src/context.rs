//! What every feature's plan step knows of the sandbox it plans for: the one argument of each
//! `Config::plan` (see ARCHITECTURE.md, "Adding a feature").

use crate::Namespaces;
use std::path::Path;

/// The sandbox as the feature plans see it, worked out by the builder before they run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// The namespaces the sandbox gets (an implicit user namespace included).
    pub namespaces: Namespaces,
    /// Whether the child mounts a view of the filesystem of its own (a new root, a fresh
    /// `/proc`): paths the program names are then opened in the child, in that view.
    pub paths_in_child: bool,
    /// The program's working directory, when one is set.
    pub cwd: Option<&'a Path>,
    /// The uid and gid the program has inside: what the caller's ids map to.
    pub ids_inside: (u32, u32),
    /// The sandbox's cgroup leaves and their hierarchies' names, for a cgroup view.
    pub cgroup_leaves: &'a [(std::path::PathBuf, String)],
}
