//! The session keyring: a sandbox gets a new, empty one unless the caller keeps its own. A test
//! binary of its own, because one test fills the uid's key quota on purpose; its tests take
//! turns (`ONE_AT_A_TIME`). Runs as root and as an unprivileged user.

mod common;

use common::{is_root, nscell_bin, stdout as text};
use nscell::{Sandbox, Stdio, Step};
use std::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const KEYCTL_GET_KEYRING_ID: i64 = 0;
const KEYCTL_JOIN_SESSION_KEYRING: i64 = 1;
const KEYCTL_DESCRIBE: i64 = 6;
const KEYCTL_READ: i64 = 11;
const KEY_SPEC_SESSION_KEYRING: i64 = -3;

/// examples/try_syscall.rs, which `cargo test` builds in target/<profile>/examples/ (a missing
/// one makes the spawn fail naming this path).
fn try_syscall() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("examples/try_syscall")
}

/// Runs `f` on a thread of its own that has joined a new session keyring holding one "user"
/// key; `f` gets the key's serial number. Keyrings are per thread: the rest of the test binary
/// keeps what it had.
fn with_session_key<T: Send>(f: impl FnOnce(i64) -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: keyctl and add_key with integers and NUL-terminated strings that outlive
            // the calls.
            let key = unsafe {
                let joined = libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0);
                assert!(joined > 0, "join: {}", std::io::Error::last_os_error());
                libc::syscall(
                    libc::SYS_add_key,
                    c"user".as_ptr(),
                    c"nscell-test-secret".as_ptr(),
                    b"secret".as_ptr(),
                    6usize,
                    KEY_SPEC_SESSION_KEYRING,
                )
            };
            assert!(key > 0, "add_key: {}", std::io::Error::last_os_error());
            f(key)
        })
        .join()
        .unwrap()
    })
}

/// `try_syscall keyctl KEYCTL_READ KEY 0 0` (the payload's length, or the errno) in `sb`'s
/// configuration with `sb` built by `configure`.
fn read_key_in(key: i64, configure: impl FnOnce(&mut Sandbox)) -> String {
    let mut sb = Sandbox::new(try_syscall());
    sb.args(["keyctl", &KEYCTL_READ.to_string(), &key.to_string(), "0", "0"]);
    sb.default_seccomp(false);
    configure(&mut sb);
    let o = sb.output().expect("spawn");
    text(&o).trim().to_string()
}

#[test]
fn a_sandbox_cannot_read_the_callers_session_keys() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    with_session_key(|key| {
        // The caller itself can (KEYCTL_READ with no buffer gives the payload's length).
        // SAFETY: integers only.
        let n = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_READ, key, 0, 0) };
        assert_eq!(n, 6, "{}", std::io::Error::last_os_error());
        // Without seccomp's keyctl denial, only the fresh keyring stands in the way: the key is
        // no longer possessed, and its owner's rights do not include reading.
        assert_eq!(read_key_in(key, |_| {}), "errno 13 EACCES");
        assert_eq!(
            read_key_in(key, |sb| {
                sb.init(true);
            }),
            "errno 13 EACCES"
        );
        // The opt-out keeps the caller's keyring: the key is read (so the checks above can fail).
        assert_eq!(
            read_key_in(key, |sb| {
                sb.new_session_keyring(false);
            }),
            "ok 6"
        );
        let keep = |sb: &mut Sandbox| {
            sb.new_session_keyring(false).init(true);
        };
        assert_eq!(read_key_in(key, keep), "ok 6");
        // The command line, from the same thread (a child process inherits its keyring).
        let cli = |extra: &[&str]| {
            let o = std::process::Command::new(nscell_bin())
                .arg("--no-default-seccomp")
                .args(extra)
                .arg("--")
                .arg(try_syscall())
                .args(["keyctl", &KEYCTL_READ.to_string(), &key.to_string(), "0", "0"])
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap();
            text(&o).trim().to_string()
        };
        assert_eq!(cli(&[]), "errno 13 EACCES");
        assert_eq!(cli(&["--keep-session-keyring"]), "ok 6");
    });
}

/// The description of this thread's session keyring ("_uid_ses.N" when it has none of its own
/// and the uid's user session keyring stands in).
fn session_keyring_description() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer outlives the call and its length is passed.
    let n = unsafe {
        let id =
            libc::syscall(libc::SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
        assert!(id > 0, "{}", std::io::Error::last_os_error());
        libc::syscall(libc::SYS_keyctl, KEYCTL_DESCRIBE, id, buf.as_mut_ptr(), buf.len())
    };
    assert!(n > 0, "{}", std::io::Error::last_os_error());
    let text = String::from_utf8_lossy(&buf[..(n as usize).min(buf.len())]);
    text.trim_end_matches('\0').rsplit(';').next().unwrap_or("").to_string()
}

#[test]
fn a_caller_without_a_session_keyring_spawns_too() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Read on a fresh thread: the test binary's own keyring, as a CI runner's.
    let own = std::thread::spawn(session_keyring_description).join().unwrap();
    if own.starts_with("_uid_ses.") {
        eprintln!("the caller has no session keyring of its own ({own}): the CI case");
    } else {
        eprintln!("the caller has a session keyring ({own}); checking the spawn from it");
    }
    let s = std::thread::spawn(|| {
        let mut sb = Sandbox::new("/bin/sh");
        sb.args(["-c", "echo ran"]);
        let mut keep = Sandbox::new("/bin/sh");
        keep.args(["-c", "echo kept"]).new_session_keyring(false);
        (text(&sb.output().expect("spawn")), text(&keep.output().expect("spawn")))
    })
    .join()
    .unwrap();
    assert_eq!(s, ("ran\n".to_string(), "kept\n".to_string()));
}

#[test]
fn nscell_runs_inside_a_sandbox_whose_seccomp_denies_keyctl() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // The outer sandbox's default policy fails keyctl with EPERM (so does Docker's default
    // profile): the inner one cannot join a keyring, and the program under that filter cannot
    // reach one either, so the step is skipped. Without the filter the join is not skipped.
    let mut sb = Sandbox::new(nscell_bin());
    sb.args(["--", "/bin/sh", "-c", "echo inner"]);
    let o = sb.output().expect("spawn");
    assert_eq!(text(&o), "inner\n", "{}", String::from_utf8_lossy(&o.stderr));
}

/// The number of keys charged to `uid` (the `qnkeys` of /proc/key-users), if it has any.
fn charged_keys(uid: u32) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/key-users").ok()?;
    table.lines().find_map(|l| {
        let (who, rest) = l.trim().split_once(':')?;
        if who.trim().parse::<u32>().ok()? != uid {
            return None;
        }
        rest.split_whitespace().nth(2)?.split('/').next()?.parse().ok()
    })
}

fn sysctl(name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/sys/kernel/keys/{name}"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_full_key_quota_fails_the_spawn_with_a_hint() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    const SANDBOXES: usize = 250;
    let uid = rustix::process::getuid().as_raw();
    let limit = if is_root() { sysctl("root_maxkeys") } else { sysctl("maxkeys") };
    if !is_root() && limit >= SANDBOXES as u64 {
        skip!("kernel.keys.maxkeys is {limit}: {SANDBOXES} sandboxes do not reach it");
    }
    if is_root() {
        // Past the harness's capture: what this run checks is always seen.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "as root the key quota is kernel.keys.root_maxkeys = {limit}, which {SANDBOXES} \
             sandboxes do not reach: checking that all start and that each keyring is charged \
             to uid 0 (/proc/key-users); the EDQUOT case runs as an unprivileged user"
        );
    }
    with_session_key(|_| {
        let before = charged_keys(uid).unwrap_or(0);
        let mut running = Vec::new();
        let mut refused = None;
        while running.len() < SANDBOXES {
            let mut sb = Sandbox::new("/bin/sleep");
            sb.arg("60").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
            match sb.spawn() {
                Ok(child) => running.push(child),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        let charged = charged_keys(uid).unwrap_or(0);
        // With the quota used up, the opt-out still spawns.
        let mut keep = Sandbox::new("/bin/true");
        keep.new_session_keyring(false);
        let kept = keep.status();
        for child in &mut running {
            child.kill().unwrap();
        }
        for child in &mut running {
            child.wait().unwrap();
        }
        // The kernel frees a released keyring (and its quota) a moment later, in its key
        // collector: leave the quota as found for the tests that follow.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while charged_keys(uid).unwrap_or(0) > before && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(kept.as_ref().is_ok_and(|s| s.success()), "{kept:?}");
        if is_root() {
            assert!(refused.is_none(), "{refused:?}");
            // Each live sandbox holds one (keys the earlier tests released may be collected
            // meanwhile, so this does not count on `before`).
            assert!(charged >= SANDBOXES as u64, "{before} -> {charged} keys");
            return;
        }
        let e = refused.unwrap_or_else(|| panic!("{SANDBOXES} sandboxes held keyrings"));
        assert_eq!(e.step(), Some(Step::SessionKeyring), "{e}");
        assert_eq!(e.raw_os_error(), Some(libc::EDQUOT), "{e}");
        let text = e.to_string();
        for part in ["kernel.keys.maxkeys", "new_session_keyring(false)", "--keep-session-keyring"]
        {
            assert!(text.contains(part), "{part}: {text}");
        }
        assert!(running.len() < limit as usize, "{} started, quota {limit}", running.len());
    });
}
