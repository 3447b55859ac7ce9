//! Joining existing namespaces (`Sandbox::join`, `join_after_setup`) against the real kernel:
//! the program sees the joined namespace's inode, new namespaces come beside the joined ones,
//! bad fds are errors before anything is created, no namespace fd reaches the program, and a
//! failed setup leaves nothing. Runs as root and as an unprivileged user.

mod common;

use common::{children, is_root, stdout};
use nscell::{Child, Error, Namespaces, Sandbox, Step};
use std::fs::File;

/// A running sandbox (`sleep`) with `namespaces`, to join.
fn target(namespaces: Namespaces) -> Child {
    let mut sb = Sandbox::new("sleep");
    sb.arg("100").namespaces(namespaces);
    sb.spawn().unwrap()
}

/// `/proc/PID/ns/NAME` of `child`, opened, and what it reads as (`user:[4026...]`).
fn ns_of(child: &Child, name: &str) -> (File, String) {
    let path = format!("/proc/{}/ns/{name}", child.id());
    let link = std::fs::read_link(&path).unwrap().to_string_lossy().into_owned();
    (File::open(&path).unwrap(), link)
}

fn end(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

fn readlink_in(sb: &mut Sandbox, what: &str) -> String {
    let out = sb.args(["-c", what]).output().unwrap();
    stdout(&out).trim().to_string()
}

#[test]
fn joining_a_user_namespace_shows_its_inode() {
    let t = target(Namespaces::DEFAULT);
    let (fd, link) = ns_of(&t, "user");
    // No namespaces of the sandbox's own.
    let mut sb = Sandbox::new("/bin/sh");
    sb.namespaces(Namespaces::empty()).join(Namespaces::USER, fd);
    assert_eq!(readlink_in(&mut sb, "readlink /proc/self/ns/user"), link);
    // The default set without USER: new PID, mount, UTS and IPC namespaces owned by the
    // joined one (with a fresh /proc of the new PID namespace), the same user namespace.
    let (fd, _) = ns_of(&t, "user");
    let mut sb = Sandbox::new("/bin/sh");
    sb.join(Namespaces::USER, fd).hostname("joined");
    let text = readlink_in(&mut sb, "readlink /proc/self/ns/user; echo $$; hostname; id -u");
    assert_eq!(text, format!("{link}\n1\njoined\n0"), "the caller is 0 in the target's maps");
    end(t);
}

#[test]
fn joining_user_and_pid_namespaces_with_a_new_mount_namespace() {
    // What bubblewrap's test-specifying-pidns.sh does: --userns 11 --pidns 12 with --bind / /
    // --tmpfs /tmp (a mount namespace of its own), readlink /proc/self/ns/pid.
    let t = target(Namespaces::DEFAULT);
    let (user, _) = ns_of(&t, "user");
    let (pid, link) = ns_of(&t, "pid");
    let mut sb = Sandbox::new("/bin/sh");
    sb.namespaces(Namespaces::MOUNT)
        .join(Namespaces::USER, user)
        .join(Namespaces::PID, pid)
        .bind("/", "/")
        .tmpfs("/tmp");
    let text = readlink_in(&mut sb, "readlink /proc/self/ns/pid; ls -A /tmp | wc -l");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(link.as_str()));
    assert_eq!(lines.next(), Some("0"), "the new mount namespace's /tmp is a fresh tmpfs");
    // The program is a further child in the joined namespace, never its PID 1 (the target is).
    let (user, _) = ns_of(&t, "user");
    let (pid, _) = ns_of(&t, "pid");
    let mut sb = Sandbox::new("/bin/sh");
    sb.namespaces(Namespaces::MOUNT).join(Namespaces::USER, user).join(Namespaces::PID, pid);
    sb.mount_proc(true);
    let text = readlink_in(&mut sb, "echo $$; ps -e -o comm= | sort | tr '\\n' ' '");
    let (pid_inside, comms) = text.split_once('\n').unwrap();
    assert_ne!(pid_inside, "1", "{text}");
    assert!(comms.contains("sleep"), "the joined namespace's own processes: {text}");
    end(t);
}

#[test]
fn joining_a_network_namespace() {
    let t = target(Namespaces::DEFAULT | Namespaces::NET);
    let (user, _) = ns_of(&t, "user");
    let (net, link) = ns_of(&t, "net");
    let mut sb = Sandbox::new("/bin/sh");
    sb.join(Namespaces::USER, user).join(Namespaces::NET, net);
    assert_eq!(readlink_in(&mut sb, "readlink /proc/self/ns/net"), link);
    // Without its user namespace: root may, anyone else is refused by the kernel, in the child,
    // with the type named and a hint.
    let (net, _) = ns_of(&t, "net");
    let mut sb = Sandbox::new("/bin/sh");
    sb.namespaces(Namespaces::empty()).join(Namespaces::NET, net);
    if is_root() {
        assert_eq!(readlink_in(&mut sb, "readlink /proc/self/ns/net"), link);
    } else {
        let e = sb.arg("-c").arg("true").output().unwrap_err();
        assert_eq!(e.step(), Some(Step::JoinNamespace), "{e}");
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
        let text = e.to_string();
        assert!(text.starts_with("cannot join the net namespace: "), "{text}");
        assert!(text.contains("join(Namespaces::USER"), "{text}");
    }
    end(t);
}

#[test]
fn joining_a_time_namespace_takes_the_forked_path() {
    let t = target(Namespaces::DEFAULT | Namespaces::TIME);
    let (user, _) = ns_of(&t, "user");
    let (time, link) = ns_of(&t, "time");
    let mut sb = Sandbox::new("/bin/sh");
    sb.join(Namespaces::USER, user).join(Namespaces::TIME, time);
    assert_eq!(readlink_in(&mut sb, "readlink /proc/self/ns/time"), link);
    end(t);
}

#[test]
fn bad_fds_are_errors_before_clone() {
    let invalid = |sb: &mut Sandbox| -> Error {
        let e = sb.output().unwrap_err();
        assert!(e.is_invalid_input(), "{e}");
        e
    };
    // A namespace of another type.
    let e = invalid(
        Sandbox::new("true").join(Namespaces::NET, File::open("/proc/self/ns/user").unwrap()),
    );
    assert!(e.to_string().contains("is a user namespace, not a net namespace"), "{e}");
    // No namespace at all.
    let e = invalid(Sandbox::new("true").join(Namespaces::USER, File::open("/dev/null").unwrap()));
    assert!(e.to_string().contains("not a namespace"), "{e}");
    // The caller's own user namespace.
    let e = invalid(
        Sandbox::new("true").join(Namespaces::USER, File::open("/proc/self/ns/user").unwrap()),
    );
    assert!(e.to_string().contains("caller's own"), "{e}");
    // Two types at once, one type twice, joined and new.
    let fd = || File::open("/proc/self/ns/net").unwrap();
    invalid(Sandbox::new("true").join(Namespaces::NET | Namespaces::USER, fd()));
    invalid(Sandbox::new("true").join(Namespaces::NET, fd()).join(Namespaces::NET, fd()));
    let e = invalid(
        Sandbox::new("true")
            .namespaces(Namespaces::DEFAULT | Namespaces::NET)
            .join(Namespaces::NET, fd()),
    );
    assert!(e.to_string().contains("both joined"), "{e}");
    // Maps with a joined user namespace.
    let t = target(Namespaces::DEFAULT);
    let (user, _) = ns_of(&t, "user");
    invalid(Sandbox::new("true").join(Namespaces::USER, user).uid_map(nscell::IdMap::new(0, 0, 1)));
    end(t);
}

#[test]
fn no_namespace_fd_reaches_the_program() {
    let t = target(Namespaces::DEFAULT);
    let (user, _) = ns_of(&t, "user");
    let (pid, _) = ns_of(&t, "pid");
    for init in [false, true] {
        let (user, pid) = (user.try_clone().unwrap(), pid.try_clone().unwrap());
        let mut sb = Sandbox::new("/bin/sh");
        sb.namespaces(Namespaces::MOUNT).join(Namespaces::USER, user).join(Namespaces::PID, pid);
        if init {
            // An init that is not PID 1 (lock files imply one) closes them too.
            sb.hold_fd(File::open("/dev/null").unwrap());
        }
        let text =
            readlink_in(&mut sb, "ls /proc/self/fd | wc -l; readlink /proc/self/fd/* || true");
        assert!(
            !["user:[", "pid:[", "mnt:["].iter().any(|ns| text.contains(ns)),
            "a namespace fd is open in the program: {text}"
        );
        // 0, 1, 2 and the fd ls reads the directory with.
        assert_eq!(text.lines().next(), Some("4"), "{text}");
    }
    end(t);
}

#[test]
fn a_failed_setup_after_joins_leaves_nothing() {
    let t = target(Namespaces::DEFAULT);
    let (_, pid_link) = ns_of(&t, "pid");
    let in_target = || {
        children().into_iter().filter(|&c| c != t.id()).any(|c| {
            std::fs::read_link(format!("/proc/{c}/ns/pid"))
                .is_ok_and(|l| l.to_string_lossy() == pid_link)
        })
    };
    for program in ["/nonexistent", "/bin/true"] {
        let (user, _) = ns_of(&t, "user");
        let (pid, _) = ns_of(&t, "pid");
        let mut sb = Sandbox::new(program);
        sb.namespaces(Namespaces::MOUNT).join(Namespaces::USER, user).join(Namespaces::PID, pid);
        if program == "/bin/true" {
            // A setup step that fails after the joins, in the sandbox's first task.
            sb.current_dir("/nonexistent-dir");
        }
        let e = sb.output().unwrap_err();
        let want = if program == "/bin/true" { Step::Chdir } else { Step::Exec };
        assert_eq!(e.step(), Some(want), "{e}");
        assert!(!in_target(), "a process of the failed sandbox is left");
    }
    end(t);
}

#[test]
fn joining_a_user_namespace_after_setup() {
    // A sandbox whose program runs in a nested user namespace (allow_nested_userns(false)):
    // the nested one, and its parent, the sandbox's own.
    let t = {
        let mut sb = Sandbox::new("sleep");
        sb.arg("100").allow_nested_userns(false);
        sb.spawn().unwrap()
    };
    let (nested, nested_link) = ns_of(&t, "user");
    // NS_GET_PARENT: the sandbox's own user namespace.
    // SAFETY: the ioctl takes no argument and returns a new fd.
    let outer = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&nested), 0xb702) };
    assert!(outer >= 0, "NS_GET_PARENT: {}", std::io::Error::last_os_error());
    // SAFETY: a new fd nothing else owns.
    let outer = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(outer) };
    let mut sb = Sandbox::new("/bin/sh");
    sb.join(Namespaces::USER, outer).join_after_setup(Namespaces::USER, nested);
    let text = readlink_in(
        &mut sb,
        "readlink /proc/self/ns/user; mount -o remount,rw / 2>/dev/null && echo changed || echo locked",
    );
    assert_eq!(text, format!("{nested_link}\nlocked"));
    end(t);
}
