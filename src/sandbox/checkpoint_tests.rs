//! The parent's hooks at the child's checkpoints, through whole spawns ([`crate::spawn`]).

use crate::error::Error;
use crate::plan::Checkpoint;
use crate::spawn::TEST_HOOK;
use crate::{Sandbox, Stdio};
use std::sync::{Arc, Mutex};

/// What the test hook saw of the child at each checkpoint: (checkpoint, its executable is
/// still ours, its uid_map, its NoNewPrivs, its mount namespace differs from ours, its pid).
type Seen = Vec<(Checkpoint, bool, String, String, bool, i32)>;

fn watch(set: u8, fail_at: Option<Checkpoint>) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let ours = std::fs::read_link("/proc/self/exe").unwrap();
    let our_mnt = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let hook = move |at: Checkpoint, pid: i32| {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap_or_default();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let nnp = status.lines().find(|l| l.starts_with("NoNewPrivs:")).unwrap().to_string();
        let mnt = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
        let other_mnt = mnt.is_some_and(|m| m != our_mnt);
        log.lock().unwrap().push((at, exe.as_ref() == Some(&ours), map, nnp, other_mnt, pid));
        match fail_at {
            Some(f) if f == at => Err(Error::invalid("the test hook refuses")),
            _ => Ok(()),
        }
    };
    TEST_HOOK.with_borrow_mut(|h| *h = Some((set, Box::new(hook))));
    seen
}

fn all() -> u8 {
    Checkpoint::NamespacesCreated.bit()
        | Checkpoint::MountsReady.bit()
        | Checkpoint::BeforeExec.bit()
}

#[test]
fn the_parent_acts_at_each_checkpoint_in_order_before_exec() {
    let seen = watch(all(), None);
    let mut sb = Sandbox::new("/bin/true");
    sb.stdout(Stdio::null());
    let status = sb.status();
    TEST_HOOK.with_borrow_mut(|h| *h = None);
    assert!(status.unwrap().success());
    let seen = seen.lock().unwrap();
    let order: Vec<Checkpoint> = seen.iter().map(|s| s.0).collect();
    assert_eq!(
        order,
        [Checkpoint::NamespacesCreated, Checkpoint::MountsReady, Checkpoint::BeforeExec]
    );
    // Not exec'd at any of them.
    assert!(seen.iter().all(|s| s.1), "{seen:?}");
    // Before the child wrote its own id maps, after.
    assert_eq!(seen[0].2, "", "{seen:?}");
    assert_ne!(seen[1].2, "", "{seen:?}");
    // In a mount namespace of its own by the time its mounts are ready.
    assert!(seen[1].4, "{seen:?}");
    // Before its hardening: no_new_privs comes after the last checkpoint.
    assert!(seen[2].3.ends_with('0'), "{seen:?}");
}

#[test]
fn a_failing_hook_ends_the_spawn_with_its_error_and_reaps_the_child() {
    let seen = watch(all(), Some(Checkpoint::MountsReady));
    let dir = std::env::temp_dir().join(format!("nscell-hook-{}", std::process::id()));
    let mut sb = Sandbox::new("/bin/sh");
    sb.args(["-c", &format!("mkdir {}", dir.display())]);
    let e = sb.spawn().unwrap_err();
    TEST_HOOK.with_borrow_mut(|h| *h = None);
    assert!(e.is_invalid_input(), "{e}");
    let seen = seen.lock().unwrap();
    let order: Vec<Checkpoint> = seen.iter().map(|s| s.0).collect();
    assert_eq!(order, [Checkpoint::NamespacesCreated, Checkpoint::MountsReady]);
    assert!(!dir.exists(), "the program ran");
    // Reaped: no zombie of ours left under that pid.
    let pid = seen[0].5;
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "child {pid} is left");
}
