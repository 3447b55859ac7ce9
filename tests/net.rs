//! User-mode networking (pasta, slirp4netns), against the real helpers.
//!
//! **No packet leaves the machine.** Each test re-runs itself inside an outer network namespace
//! it creates (with `unshare`): loopback, a dead-end veth pair for the default route pasta
//! needs (192.0.2.2/24 via 192.0.2.1, which nothing answers), an `/etc/resolv.conf` naming
//! the outer 127.0.0.1, where the test runs its own DNS server. The "host" servers listen on
//! the outer namespace's addresses. As root the outer namespace has no user namespace (the
//! helpers run as real root); as anyone else it is a user namespace mapping only the caller's
//! own uid, and the test program runs without capabilities, as an ordinary user. There, a
//! usable tun node is needed: `/dev/net/tun` is 0600 on some machines, and `.ci/run` makes a
//! 0666 node (`NSCELL_TEST_TUN`) that the outer mount namespace binds over it.
mod common;

use nscell::net::{Network, Proto, UserNet};
use nscell::{Error, Sandbox, Stdio};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

const INNER: &str = "NSCELL_NET_OUTER";

/// The outer namespace's setup, run with its capabilities before the test program.
const SETUP: &str = r#"set -e
ip link set lo up
if [ "$NSCELL_OUTER_ROUTE" = 1 ]; then
  ip link add nsa type veth peer name nsb
  ip addr add 192.0.2.2/24 dev nsa
  ip link set nsa up
  ip link set nsb up
  ip route add default via 192.0.2.1
fi
if [ -n "$NSCELL_OUTER_TUN" ]; then mount --bind "$NSCELL_OUTER_TUN" /dev/net/tun; fi
printf 'nameserver 127.0.0.1\n' >"$NSCELL_OUTER_DIR/resolv.conf"
mount --bind "$NSCELL_OUTER_DIR/resolv.conf" /etc/resolv.conf
# Port 53 for the test's DNS server, without capabilities; 1 to 52 stay privileged.
echo 53 >/proc/sys/net/ipv4/ip_unprivileged_port_start
if [ "$(id -u)" = 0 ]; then exec "$@"; fi
exec setpriv --inh-caps=-all --ambient-caps=-all "$@"
"#;

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// What the outer namespace has.
#[derive(Clone, Copy)]
struct Outer {
    /// The dead-end default route (pasta refuses a host without one).
    route: bool,
    /// A usable tun node bound over /dev/net/tun (rootless only).
    tun: bool,
}

const FULL: Outer = Outer { route: true, tun: true };

/// In the test process: runs the test `name` again inside its outer namespace and returns
/// false (the test has then passed there, or this panics). Inside: true, run the body.
/// `None`: it cannot run here (printed).
fn outer(name: &str, o: Outer, helpers: &[&str]) -> Option<bool> {
    if std::env::var_os(INNER).is_some() {
        return Some(true);
    }
    for h in helpers.iter().chain(&["unshare", "ip", "setpriv"]) {
        if !have(h) {
            eprintln!(
                "SKIPPED net::{name}: {h} is not installed (apt-get install passt slirp4netns iproute2 util-linux)"
            );
            return None;
        }
    }
    let root = common::is_root();
    let tun = if root || !o.tun {
        None
    } else {
        let node = std::env::var("NSCELL_TEST_TUN").unwrap_or_else(|_| "/dev/net/tun".into());
        if std::fs::OpenOptions::new().read(true).write(true).open(&node).is_err() {
            eprintln!(
                "SKIPPED net::{name}: {node} is not usable by this user; set NSCELL_TEST_TUN to \
                 a 0666 tun node (as root: mknod -m 0666 FILE c 10 200), as .ci/run does"
            );
            return None;
        }
        Some(node)
    };
    let dir = common::TempDir::new(&format!("net-{name}"));
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new("unshare");
    if !root {
        cmd.args(["--user", "--map-current-user", "--keep-caps"]);
    }
    cmd.args(["--net", "--mount", "--propagation", "private", "sh", "-c", SETUP, "sh"])
        .arg(&exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(INNER, "1")
        .env("NSCELL_OUTER_ROUTE", if o.route { "1" } else { "0" })
        .env("NSCELL_OUTER_TUN", tun.unwrap_or_default())
        .env("NSCELL_OUTER_DIR", dir.path())
        .stdin(std::process::Stdio::null());
    let out = cmd.output().expect("run unshare");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // The inner run's own skips and failures are this test's.
    for line in text.lines().filter(|l| l.starts_with("SKIPPED")) {
        eprintln!("{line}");
    }
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{name} failed in its outer namespace ({}):\n{text}",
        out.status
    );
    Some(false)
}

/// Runs the body only inside the outer namespace.
macro_rules! outer {
    ($name:literal, $o:expr, $helpers:expr) => {
        match outer($name, $o, $helpers) {
            Some(true) => {}
            _ => return,
        }
    };
}

fn user_net(backend: &str, u: UserNet) -> Network {
    match backend {
        "pasta" => Network::Pasta(u),
        _ => Network::Slirp4netns(u),
    }
}

fn sh(script: &str, net: Network) -> Sandbox {
    let mut sb = Sandbox::new("/bin/bash");
    sb.args(["-c", script]).network(net).stdout(Stdio::piped()).stderr(Stdio::piped());
    sb
}

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A TCP server on `addr` that answers each connection with `reply`, on a thread.
fn serve_tcp(addr: &str, reply: &'static str) -> u16 {
    let l = TcpListener::bind(addr).unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let _ = c.write_all(reply.as_bytes());
        }
    });
    port
}

/// bash: connect to HOST:PORT, print what it answers, or "refused: <why>".
fn fetch(host: &str, port: u16) -> String {
    format!("timeout 3 bash -c 'exec 3<>/dev/tcp/{host}/{port} && cat <&3' 2>&1 || echo refused")
}

/// The program's first instruction already sees its interface configured.
fn ready_at_start(backend: &str) {
    let out =
        sh("cat /proc/net/route; ip -4 -o addr show dev tap0", user_net(backend, UserNet::new()))
            .output()
            .unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t} {}", String::from_utf8_lossy(&out.stderr));
    // The default route (destination 0, gateway 10.0.2.2 little-endian) and the address.
    assert!(t.lines().any(|l| l.starts_with("tap0\t00000000\t0202000A")), "{t}");
    assert!(t.contains("inet 10.0.2.100/24"), "{t}");
}

#[test]
fn pasta_ready_at_start() {
    outer!("pasta_ready_at_start", FULL, &["pasta"]);
    ready_at_start("pasta");
}

#[test]
fn slirp4netns_ready_at_start() {
    outer!("slirp4netns_ready_at_start", FULL, &["slirp4netns"]);
    ready_at_start("slirp4netns");
}

/// With host_loopback the gateway reaches the outer 127.0.0.1; without it, it does not.
fn host_loopback(backend: &str) {
    let port = serve_tcp("127.0.0.1:0", "from-the-host\n");
    let mut u = UserNet::new();
    u.host_loopback(true);
    let out = sh(&fetch("10.0.2.2", port), user_net(backend, u)).output().unwrap();
    assert_eq!(text(&out).trim(), "from-the-host", "{}", String::from_utf8_lossy(&out.stderr));
    let out = sh(&fetch("10.0.2.2", port), user_net(backend, UserNet::new())).output().unwrap();
    assert!(!text(&out).contains("from-the-host"), "{}", text(&out));
}

#[test]
fn pasta_host_loopback() {
    outer!("pasta_host_loopback", FULL, &["pasta"]);
    host_loopback("pasta");
}

#[test]
fn slirp4netns_host_loopback() {
    outer!("slirp4netns_host_loopback", FULL, &["slirp4netns"]);
    host_loopback("slirp4netns");
}

/// A free port on the outer 127.0.0.1 (for TCP and UDP).
fn free_port() -> u16 {
    loop {
        let t = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = t.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// Waits for a line on the sandbox's stdout (its server says "listening").
fn wait_line(child: &mut nscell::Child, want: &str) {
    let out = child.stdout.as_mut().unwrap();
    let mut seen = Vec::new();
    let mut b = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains(want) {
        match out.read(&mut b) {
            Ok(1) => seen.push(b[0]),
            _ => panic!(
                "the sandbox ended before saying {want:?}: {}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
}

const UDP_ECHO: &str = "import socket,sys\n\
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
s.bind(('0.0.0.0',int(sys.argv[1])))\n\
print('listening',flush=True)\n\
d,a=s.recvfrom(100)\n\
s.sendto(b'echo:'+d,a)\n";

/// A server in the sandbox answers on the published host port: TCP, and UDP.
fn published(backend: &str, remap: bool, deny_egress: bool) {
    let (host, inside) = (free_port(), 8000);
    let inside_udp = if remap { 5353 } else { host };
    let mut u = UserNet::new();
    if deny_egress {
        // Replies on published ports are established connections: the allowlist lets them out.
        u.deny_egress_all();
    }
    u.publish_port(Proto::Tcp, host, inside).publish_port(Proto::Udp, host, inside_udp);
    // slirp4netns's UDP forwarding needs the host's loopback (spawn says so without it).
    if backend == "slirp4netns" {
        let e = sh("true", user_net(backend, u.clone())).spawn().unwrap_err();
        assert!(e.is_invalid_input() && e.to_string().contains("host_loopback"), "{e}");
        u.host_loopback(true);
    }
    let script = format!(
        "python3 -c \"import socket\n\
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
s.bind(('0.0.0.0',{inside})); s.listen(1); print('listening', flush=True)\n\
c,_=s.accept(); c.sendall(b'from-the-sandbox'); c.close()\" && python3 -c \"$0\" {inside_udp}"
    );
    let mut sb = Sandbox::new("/bin/bash");
    sb.args(["-c", &script, UDP_ECHO]).network(user_net(backend, u)).stdout(Stdio::piped());
    let mut child = sb.spawn().unwrap();
    wait_line(&mut child, "listening");
    let mut c = TcpStream::connect(("127.0.0.1", host)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    assert_eq!(got, "from-the-sandbox");
    wait_line(&mut child, "listening");
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    let n = s.send_to(b"ping", ("127.0.0.1", host)).and_then(|_| s.recv(&mut buf)).unwrap();
    assert_eq!(&buf[..n], b"echo:ping");
    assert!(child.wait().unwrap().success());
}

#[test]
fn pasta_publishes_tcp_and_udp() {
    outer!("pasta_publishes_tcp_and_udp", FULL, &["pasta", "python3"]);
    published("pasta", false, false);
}

#[test]
fn pasta_publishes_under_deny_egress() {
    outer!("pasta_publishes_under_deny_egress", FULL, &["pasta", "python3"]);
    published("pasta", false, true);
}

#[test]
fn slirp4netns_publishes_under_deny_egress() {
    outer!("slirp4netns_publishes_under_deny_egress", FULL, &["slirp4netns", "python3"]);
    published("slirp4netns", true, true);
}

#[test]
fn slirp4netns_publishes_tcp_and_udp() {
    outer!("slirp4netns_publishes_tcp_and_udp", FULL, &["slirp4netns", "python3"]);
    published("slirp4netns", true, false);
}

/// Whether a process `pid` is still alive (a zombie counts as gone: this host's PID 1 may reap
/// orphans late).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
}

fn gone_within(pid: u32, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    !alive(pid)
}

/// The helper ends with the sandbox: waited for, dropped, timed out.
fn helper_lifetime(backend: &str) {
    // Nothing of the helper's stays open in the caller, and none of its fds reach the program.
    let fds = common::fd_count();
    let out = sh("ls /proc/self/fd | wc -l", user_net(backend, UserNet::new())).output().unwrap();
    assert_eq!(text(&out).trim(), "4", "the program's fds: 0-2 and ls's own directory");
    assert_eq!(common::fd_count(), fds, "fds left open in the caller");
    let mut child = sh("exit 3", user_net(backend, UserNet::new())).spawn().unwrap();
    let pid = child.network_helper_id().expect("a helper pid");
    assert!(alive(pid));
    assert_eq!(child.wait().unwrap().code(), Some(3));
    assert!(child.network_helper_id().is_none());
    assert!(gone_within(pid, Duration::from_secs(1)), "helper {pid} outlived the wait");

    let child = sh("sleep 100", user_net(backend, UserNet::new())).spawn().unwrap();
    let pid = child.network_helper_id().unwrap();
    drop(child);
    assert!(gone_within(pid, Duration::from_secs(1)), "helper {pid} outlived the drop");

    let mut sb = sh("sleep 100", user_net(backend, UserNet::new()));
    sb.timeout(Duration::from_millis(300));
    let mut child = sb.spawn().unwrap();
    let pid = child.network_helper_id().unwrap();
    let info = child.wait_info().unwrap();
    assert!(info.timed_out);
    assert!(gone_within(pid, Duration::from_secs(1)), "helper {pid} outlived the timeout");
}

#[test]
fn pasta_helper_ends_with_the_sandbox() {
    outer!("pasta_helper_ends_with_the_sandbox", FULL, &["pasta"]);
    helper_lifetime("pasta");
}

#[test]
fn slirp4netns_helper_ends_with_the_sandbox() {
    outer!("slirp4netns_helper_ends_with_the_sandbox", FULL, &["slirp4netns"]);
    helper_lifetime("slirp4netns");
}

/// SIGKILL of the caller (the nscell binary) takes its helper with it.
fn caller_killed(backend: &str) {
    // The JSON status on nscell's stdout (the program, sleep, prints nothing).
    let mut caller = Command::new(common::nscell_bin())
        .args(["--network", backend, "--die-with-parent", "--json-status-fd", "1", "--"])
        .args(["sleep", "100"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut r = std::io::BufReader::new(caller.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut r, &mut line).unwrap();
    let number = |key: &str| -> u32 {
        line.split(&format!("\"{key}\": "))
            .nth(1)
            .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
    };
    let (pid, program) = (number("network-helper-pid"), number("child-pid"));
    assert!(alive(pid) && alive(program));
    caller.kill().unwrap();
    caller.wait().unwrap();
    assert!(gone_within(pid, Duration::from_secs(1)), "helper {pid} outlived its caller");
    assert!(gone_within(program, Duration::from_secs(1)), "the sandbox outlived its caller");
}

#[test]
fn pasta_helper_ends_with_a_killed_caller() {
    outer!("pasta_helper_ends_with_a_killed_caller", FULL, &["pasta"]);
    caller_killed("pasta");
}

#[test]
fn slirp4netns_helper_ends_with_a_killed_caller() {
    outer!("slirp4netns_helper_ends_with_a_killed_caller", FULL, &["slirp4netns"]);
    caller_killed("slirp4netns");
}

/// 8 sandboxes at once: each gets its own working network.
#[test]
fn eight_sandboxes_have_separate_networks() {
    outer!("eight_sandboxes_have_separate_networks", FULL, &["pasta", "slirp4netns"]);
    let port = serve_tcp("127.0.0.1:0", "ok\n");
    let mut children = Vec::new();
    for i in 0..8 {
        let mut u = UserNet::new();
        u.host_loopback(true);
        let backend = if i % 2 == 0 { "pasta" } else { "slirp4netns" };
        let script = format!("readlink /proc/self/ns/net; {}", fetch("10.0.2.2", port));
        children.push(sh(&script, user_net(backend, u)).spawn().unwrap());
    }
    let mut netns = std::collections::HashSet::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let t = text(&out);
        assert!(t.contains("ok"), "{t}");
        netns.insert(t.lines().next().unwrap().to_string());
    }
    assert_eq!(netns.len(), 8, "{netns:?}");
}

/// The egress allowlist: the allowed destination connects; another port or another address
/// is refused; the rules cannot be flushed nor bypassed with a packet socket; DNS only to the
/// forwarder.
fn egress(backend: &str) {
    let allowed = serve_tcp("127.0.0.1:0", "allowed\n");
    let other_port = serve_tcp("127.0.0.1:0", "other-port\n");
    let other_addr = serve_tcp("192.0.2.2:0", "other-addr\n");
    let mut u = UserNet::new();
    u.host_loopback(true).allow_egress(
        "10.0.2.2".parse().unwrap(),
        Some(Proto::Tcp),
        &[(allowed, allowed)],
    );
    let script = format!(
        "{}; {}; {}; nft flush ruleset 2>&1 && echo flushed; {}; \
         python3 -c \"import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\" 2>&1 | tail -1",
        fetch("10.0.2.2", allowed),
        fetch("10.0.2.2", other_port),
        fetch("192.0.2.2", other_addr),
        fetch("10.0.2.2", other_port),
    );
    let out = sh(&script, user_net(backend, u)).output().unwrap();
    let t = text(&out);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.first(), Some(&"allowed"), "{t}");
    assert!(!t.contains("other-port") && !t.contains("other-addr"), "{t}");
    assert!(!t.contains("flushed"), "{t}");
    assert!(t.contains("Operation not permitted"), "{t}");
}

#[test]
fn pasta_egress_allowlist() {
    outer!("pasta_egress_allowlist", FULL, &["pasta", "nft", "python3"]);
    egress("pasta");
}

#[test]
fn slirp4netns_egress_allowlist() {
    outer!("slirp4netns_egress_allowlist", FULL, &["slirp4netns", "nft", "python3"]);
    egress("slirp4netns");
}

/// The DNS server of the outer namespace: answers every A question with 192.0.2.53.
fn dns_server() {
    let s = UdpSocket::bind("127.0.0.1:53").expect("bind the outer 127.0.0.1:53");
    std::thread::spawn(move || {
        let mut b = [0u8; 512];
        while let Ok((n, from)) = s.recv_from(&mut b) {
            if n < 12 {
                continue;
            }
            let mut r = b[..n].to_vec();
            r[2] = 0x81;
            r[3] = 0x80;
            r[7] = 1; // one answer
            r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 53]);
            let _ = s.send_to(&r, from);
        }
    });
}

/// DNS through the forwarder (named by the generated /etc/resolv.conf of a new root); with the
/// allowlist, to the forwarder only.
fn dns(backend: &str) {
    dns_server();
    let resolve = "import socket,sys\n\
try: print(socket.gethostbyname(sys.argv[1]))\n\
except Exception as e: print('failed', e)\n";
    let query = "import socket,sys\n\
q=b'\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x07example\\x03com\\x00\\x00\\x01\\x00\\x01'\n\
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(2)\n\
try: s.sendto(q,(sys.argv[1],53)); s.recv(512); print('answered')\n\
except Exception as e: print('refused', e)\n";
    let mut u = UserNet::new();
    u.deny_egress_all();
    let mut sb = common::minimal(&format!(
        "cat /etc/resolv.conf; python3 -c \"$0\" example.com; python3 -c \"$1\" 10.0.2.3; \
         python3 -c \"$1\" 192.0.2.2 {}",
        ""
    ));
    sb.args([resolve, query])
        .ro_bind("/etc", "/etc")
        .network(user_net(backend, u))
        .stdout(Stdio::piped());
    let out = sb.output().unwrap();
    let t = text(&out);
    assert!(t.contains("nameserver 10.0.2.3"), "{t}");
    assert!(t.contains("192.0.2.53"), "{t} {}", String::from_utf8_lossy(&out.stderr));
    assert!(t.contains("answered"), "{t}");
    assert!(t.contains("refused"), "{t}");
}

#[test]
fn pasta_dns_through_the_forwarder_only() {
    outer!("pasta_dns_through_the_forwarder_only", FULL, &["pasta", "python3"]);
    dns("pasta");
}

#[test]
fn slirp4netns_dns_through_the_forwarder_only() {
    outer!("slirp4netns_dns_through_the_forwarder_only", FULL, &["slirp4netns", "python3"]);
    dns("slirp4netns");
}

fn helper_error(e: &Error) -> String {
    assert!(matches!(e, Error::NetworkHelper { .. }), "{e:?}");
    e.to_string()
}

/// pasta in an outer namespace without a default route: the error says to use slirp4netns.
#[test]
fn pasta_offline_suggests_slirp4netns() {
    outer!("pasta_offline_suggests_slirp4netns", Outer { route: false, tun: true }, &["pasta"]);
    let e = sh("true", Network::Pasta(UserNet::new())).spawn().unwrap_err();
    let msg = helper_error(&e);
    assert!(msg.contains("slirp4netns"), "{msg}");
    assert!(!msg.contains("syslog"), "{msg}");
}

/// The real /dev/net/tun, where the caller cannot open it (0600 here): the error says so.
#[test]
fn tun_not_usable() {
    if common::is_root() {
        skip!("root can open any tun node: the unprivileged run tests this");
    }
    if std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun").is_ok() {
        skip!("/dev/net/tun is usable by this user here");
    }
    outer!("tun_not_usable", Outer { route: true, tun: false }, &["pasta", "slirp4netns"]);
    for net in [Network::Pasta(UserNet::new()), Network::Slirp4netns(UserNet::new())] {
        let e = sh("true", net).spawn().unwrap_err();
        let msg = helper_error(&e);
        assert!(msg.contains("/dev/net/tun"), "{msg}");
    }
}

/// A published port someone holds, and one below ip_unprivileged_port_start.
#[test]
fn published_port_conflicts() {
    outer!("published_port_conflicts", FULL, &["pasta", "slirp4netns"]);
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    for backend in ["pasta", "slirp4netns"] {
        let mut u = UserNet::new();
        u.publish_port(Proto::Tcp, port, 80);
        let e = sh("true", user_net(backend, u)).spawn().unwrap_err();
        assert_eq!(e.step(), Some(nscell::Step::PublishPort), "{e}");
        assert_eq!(e.raw_os_error(), Some(rustix::io::Errno::ADDRINUSE.raw_os_error()), "{e}");
        if !common::is_root() {
            let mut u = UserNet::new();
            // The outer namespace makes ports from 53 up unprivileged (for its DNS server).
            u.publish(Proto::Tcp, SocketAddr::from((Ipv4Addr::LOCALHOST, 52)), 80);
            let e = sh("true", user_net(backend, u)).spawn().unwrap_err();
            assert!(
                e.is_invalid_input() && e.to_string().contains("ip_unprivileged_port_start"),
                "{e}"
            );
        }
    }
}

/// A PATH without the helper: the error names the package.
#[test]
fn helper_missing_names_the_package() {
    let empty = common::TempDir::new("net-empty-path");
    for (backend, package) in
        [("pasta", "apt-get install passt"), ("slirp4netns", "apt-get install slirp4netns")]
    {
        let out = Command::new(common::nscell_bin())
            .args(["--network", backend, "--", "/bin/true"])
            .env("PATH", empty.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{err}");
        assert!(err.contains("not found in PATH") && err.contains(package), "{err}");
    }
}

/// Host with a network namespace is invalid input; so are helper options without a helper.
#[test]
fn bad_network_input() {
    let e = Sandbox::new("true")
        .namespaces(nscell::Namespaces::USER | nscell::Namespaces::NET)
        .network(Network::Host)
        .spawn()
        .unwrap_err();
    assert!(e.is_invalid_input(), "{e}");
    let out = Command::new(common::nscell_bin()).args(["-p", "8080:80", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--publish needs --network pasta"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // Refused before any helper starts: the allowlist's capabilities cannot be added back.
    if have("pasta") {
        let out = Command::new(common::nscell_bin())
            .args(["--network", "pasta", "--deny-egress", "--cap-add", "CAP_NET_RAW", "true"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("cannot be added back"), "{err}");
    }
}

/// `--check` says which backends work here, and why not: offline, pasta cannot.
#[test]
fn check_says_which_backends_work() {
    outer!(
        "check_says_which_backends_work",
        Outer { route: false, tun: true },
        &["pasta", "slirp4netns"]
    );
    let out = Command::new(common::nscell_bin()).arg("--check").output().unwrap();
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.contains("network pasta: no: no default route"), "{t}");
    assert!(t.contains("network slirp4netns: works"), "{t}");
}

/// IPv6 through slirp4netns, under the allowlist: the address comes by router advertisement
/// after the start; an allowed destination passes the rules (slirp4netns answers it: nothing
/// serves its IPv6 gateway here, so the connect is refused by the helper, not by the rules), a
/// port not allowed is rejected by the rules (EACCES for IPv6).
#[test]
fn slirp4netns_ipv6_egress_rules() {
    outer!("slirp4netns_ipv6_egress_rules", FULL, &["slirp4netns"]);
    let mut u = UserNet::new();
    u.ipv6(true).host_loopback(true).allow_egress(
        "fd00::2".parse().unwrap(),
        Some(Proto::Tcp),
        &[(8001, 8001)],
    );
    let script = "for i in $(seq 100); do ip -6 addr show tap0 | grep -q 'inet6 fd00' && break; sleep 0.05; done; \
                  ip -6 addr show tap0 | grep -o 'inet6 fd00[^ ]*'; \
                  for p in 8001 8002; do echo $p: $(timeout 3 bash -c \"exec 3<>/dev/tcp/fd00::2/$p\" 2>&1 | tail -1); done";
    let out = sh(script, Network::Slirp4netns(u)).output().unwrap();
    let t = text(&out);
    assert!(t.contains("inet6 fd00::"), "{t}");
    let line = |p: &str| t.lines().find(|l| l.starts_with(p)).unwrap_or_default().to_string();
    assert!(line("8001:").contains("Connection refused"), "{t}");
    assert!(line("8002:").contains("Permission denied"), "{t}");
}
