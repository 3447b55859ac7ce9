//! Starting the user-mode network helper at the `NamespacesCreated` checkpoint, waiting until
//! it is ready, and stopping it with the sandbox.

use super::{Backend, Proto, Publish, UserNet};
use crate::error::{Error, Step};
use rustix::fd::{AsRawFd, OwnedFd};
use std::ffi::OsString;
use std::io::{Read, Seek, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a helper may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The fd numbers the helper gets: its ready pipe, the sandbox's network namespace, the user
/// namespace that owns it, and (slirp4netns) its exit fd.
const READY_FD: i32 = 3;
const NETNS_FD: i32 = 4;
const USERNS_FD: i32 = 5;
const EXIT_FD: i32 = 6;

/// A helper to start: found and checked before `clone`, run by the parent's hook.
#[derive(Debug)]
pub(crate) struct Start {
    backend: Backend,
    program: PathBuf,
    args: Vec<OsString>,
    userns: bool,
    /// slirp4netns publishes through its API socket once it runs.
    publish: Vec<Publish>,
    /// The helper, once started and ready.
    pub(crate) started: Option<Helper>,
}

/// The running helper, kept by the [`Child`](crate::Child): killed and reaped when the
/// sandbox ends, or dropped.
#[derive(Debug)]
pub(crate) struct Helper {
    process: std::process::Child,
    /// slirp4netns's `--exit-fd`: it exits when this closes (also when the caller dies).
    _exit: Option<OwnedFd>,
}

impl Helper {
    /// The helper's pid.
    pub(crate) fn id(&self) -> u32 {
        self.process.id()
    }
}

impl Helper {
    /// Lets the helper run on without this handle; returns its pid.
    pub(crate) fn detach(self) -> u32 {
        let pid = self.id();
        std::mem::forget(self);
        pid
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// `/proc/sys/net/ipv4/ip_unprivileged_port_start` (1024 if unreadable).
fn unprivileged_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024)
}

impl Start {
    /// Finds the helper and renders its arguments. `root`: the caller is root (pasta would
    /// otherwise switch to nobody); `userns`: the sandbox has a user namespace of its own.
    pub(crate) fn new(
        backend: Backend,
        u: &UserNet,
        root: bool,
        userns: bool,
    ) -> Result<Start, Error> {
        let (name, package) = backend.program();
        let program = crate::userns::find_in_path(name).ok_or_else(|| Error::NetworkHelper {
            helper: name.into(),
            message: "not found in PATH".into(),
            hint: Some(format!(
                "install it (Debian and Ubuntu: apt-get install {package}; Fedora: dnf install \
                 {package}), or choose the other backend"
            )),
        })?;
        let first = unprivileged_port_start();
        for p in &u.publish {
            if !root && p.host.port() < first {
                return Err(Error::invalid(format!(
                    "publishing host port {} needs root: ports below {first} \
                     (net.ipv4.ip_unprivileged_port_start) are privileged",
                    p.host.port()
                )));
            }
            check_port_free(p)?;
        }
        let fd = |n: i32| format!("/proc/self/fd/{n}");
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |a: &str| args.push(a.into());
        match backend {
            Backend::Pasta => {
                for a in ["--config-net", "--foreground", "--quiet", "--ns-ifname", "tap0"] {
                    push(a);
                }
                if root {
                    push("--runas");
                    push("0:0");
                }
                push("--address");
                push(&u.address.to_string());
                push("--netmask");
                push(&u.prefix.to_string());
                push("--gateway");
                push(&u.gateway.to_string());
                if !u.host_loopback {
                    push("--no-map-gw");
                }
                if !u.ipv6 {
                    push("-4");
                }
                if let Some(d) = u.dns {
                    push("--dns-forward");
                    push(&d.to_string());
                }
                // pasta's default for each is "auto", which opens ports: only what is asked.
                let spec = |proto: Proto| {
                    let specs: Vec<String> = u
                        .publish
                        .iter()
                        .filter(|p| p.proto == proto)
                        .map(|p| match p.host.ip() {
                            std::net::IpAddr::V4(a) if a.is_unspecified() => {
                                format!("{}:{}", p.host.port(), p.sandbox_port)
                            }
                            a => format!("{a}/{}:{}", p.host.port(), p.sandbox_port),
                        })
                        .collect();
                    if specs.is_empty() { vec!["none".to_string()] } else { specs }
                };
                for s in spec(Proto::Tcp) {
                    push("-t");
                    push(&s);
                }
                for s in spec(Proto::Udp) {
                    push("-u");
                    push(&s);
                }
                for a in ["-T", "none", "-U", "none"] {
                    push(a);
                }
                push("--pid");
                push(&fd(READY_FD));
                if userns {
                    push("--userns");
                    push(&fd(USERNS_FD));
                }
                push("--netns");
                push(&fd(NETNS_FD));
            }
            Backend::Slirp4netns => {
                for a in ["--configure", "--mtu=65520", "--enable-seccomp"] {
                    push(a);
                }
                push(&format!("--ready-fd={READY_FD}"));
                push(&format!("--exit-fd={EXIT_FD}"));
                push(&format!("--cidr={}/{}", u.network(), u.prefix));
                if !u.host_loopback {
                    push("--disable-host-loopback");
                }
                if u.ipv6 {
                    push("--enable-ipv6");
                }
                if u.dns.is_none() {
                    push("--disable-dns");
                }
                if !u.publish.is_empty() {
                    push("--api-socket");
                    push("/dev/null"); // replaced by the socket's path at start
                }
                if userns {
                    push(&format!("--userns-path={}", fd(USERNS_FD)));
                }
                push("--netns-type=path");
            }
        }
        // The user's own arguments come last (before slirp4netns's positional ones).
        args.extend(u.args.iter().cloned());
        if backend == Backend::Slirp4netns {
            args.push(fd(NETNS_FD).into());
            args.push("tap0".into());
        }
        Ok(Start { backend, program, args, userns, publish: u.publish.clone(), started: None })
    }

    /// Starts the helper for the child `pid` (waiting at `NamespacesCreated`) and returns once
    /// it is ready: the sandbox's interface is configured.
    pub(crate) fn run(&mut self, pid: i32) -> Result<(), Error> {
        let ns = |name: &str| {
            let path = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
            rustix::fs::open(
                &path,
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                0.into(),
            )
            .map_err(|e| Error::setup(Step::OpenNetworkNamespace, Some(path), e.raw_os_error()))
        };
        let netns = ns("net")?;
        let userns = if self.userns { Some(ns("user")?) } else { None };
        let pipe_err = |e: rustix::io::Errno| Error::setup(Step::Pipe, None, e.raw_os_error());
        let (ready_r, ready_w) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(pipe_err)?;
        let exit = if self.backend == Backend::Slirp4netns {
            Some(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(pipe_err)?)
        } else {
            None
        };
        // Its stderr, read if it fails: a file, so a chatty helper never blocks on it.
        let log = rustix::fs::memfd_create("nscell-net-helper", rustix::fs::MemfdFlags::CLOEXEC)
            .map_err(pipe_err)?;
        let api = if self.backend == Backend::Slirp4netns && !self.publish.is_empty() {
            Some(ApiDir::new()?)
        } else {
            None
        };

        let mut cmd = Command::new(&self.program);
        let mut args = self.args.clone();
        if let Some(dir) = &api {
            if let Some(a) = args.iter_mut().find(|a| *a == "/dev/null") {
                *a = dir.socket().into();
            }
        }
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::from(
                log.try_clone()
                    .map_err(|e| Error::setup(Step::Pipe, None, e.raw_os_error().unwrap_or(0)))?,
            )))
            // Not in the caller's process group: a terminal's ^C is for the program (and the
            // caller), and must not cut the sandbox's network.
            .process_group(0);
        let mut fds = vec![(ready_w.as_raw_fd(), READY_FD), (netns.as_raw_fd(), NETNS_FD)];
        if let Some(u) = &userns {
            fds.push((u.as_raw_fd(), USERNS_FD));
        }
        if let Some((r, _)) = &exit {
            fds.push((r.as_raw_fd(), EXIT_FD));
        }
        crate::sys::helper_setup(&mut cmd, fds);
        let process = cmd.spawn().map_err(|e| Error::NetworkHelper {
            helper: self.program.clone(),
            message: format!("cannot start it: {e}"),
            hint: None,
        })?;
        drop(ready_w);
        drop(netns);
        drop(userns);
        let mut helper = Helper {
            process,
            _exit: exit.map(|(r, w)| {
                drop(r);
                w
            }),
        };
        if let Err(message) = wait_ready(&ready_r, &mut helper.process) {
            let _ = helper.process.kill();
            let _ = helper.process.wait();
            return Err(self.failed(message, log));
        }
        if let Some(dir) = &api {
            for p in &self.publish {
                dir.add_hostfwd(p).map_err(|message| Error::NetworkHelper {
                    helper: self.program.clone(),
                    message: format!(
                        "cannot publish {} port {} as {}: {message}",
                        proto_name(p.proto),
                        p.host,
                        p.sandbox_port
                    ),
                    hint: Some(port_hint(p)),
                })?;
            }
        }
        self.started = Some(helper);
        Ok(())
    }

    /// The error for a helper that failed to get ready: what it said, and the known causes.
    fn failed(&self, message: String, log: OwnedFd) -> Error {
        let mut file = std::fs::File::from(log);
        let mut text = String::new();
        let _ = file.rewind();
        let _ = file.take(64 * 1024).read_to_string(&mut text);
        // Without a syslog socket, pasta says so for every line: not the user's business.
        let said: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("Failed to send") && !l.contains("syslog"))
            .collect();
        let said = said.join("; ");
        let hint = if said.contains("/dev/net/tun") || said.contains("tun socket") {
            Some(
                "the caller cannot open /dev/net/tun (the kernel makes it 0666; some systems make \
                 it 0600): chmod 0666 /dev/net/tun, or run as root"
                    .to_string(),
            )
        } else if said.contains("External interface not usable") {
            Some(
                "pasta needs a host interface with a default route (is the machine offline?): \
                 use slirp4netns (Network::Slirp4netns, --network slirp4netns)"
                    .to_string(),
            )
        } else if said.contains("Address already in use")
            || said.contains("ermission denied") && !self.publish.is_empty()
        {
            self.publish.first().map(port_hint)
        } else {
            None
        };
        let message = if said.is_empty() { message } else { format!("{message}: {said}") };
        Error::NetworkHelper { helper: self.program.clone(), message, hint }
    }
}

fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    }
}

fn port_hint(p: &Publish) -> String {
    format!(
        "a published host port must be free and, without root, at least \
         net.ipv4.ip_unprivileged_port_start ({}); {} is asked for",
        unprivileged_port_start(),
        p.host
    )
}

/// Refuses a published port some process already holds (the helper would fail later and less
/// clearly). A race with another binder is still the helper's to report.
fn check_port_free(p: &Publish) -> Result<(), Error> {
    let r = match p.proto {
        Proto::Tcp => std::net::TcpListener::bind(p.host).map(drop),
        Proto::Udp => std::net::UdpSocket::bind(p.host).map(drop),
    };
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(Error::setup_hint(
            Step::PublishPort,
            Some(PathBuf::from(format!("{}/{}", p.host, proto_name(p.proto)))),
            e.raw_os_error().unwrap_or(0),
            format!(
                "another process has {} port {}: choose another host port",
                proto_name(p.proto),
                p.host
            ),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => Err(Error::invalid(format!(
            "cannot publish on {}: no interface of the caller's has that address",
            p.host
        ))),
        // Anything else (a privileged port as root is fine): the helper will say.
        Err(_) => Ok(()),
    }
}

/// Waits until the helper writes to its ready fd; `Err` if it exits or takes too long.
fn wait_ready(ready: &OwnedFd, process: &mut std::process::Child) -> Result<(), String> {
    use rustix::event::{PollFd, PollFlags, poll};
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut buf = [0u8; 32];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("not ready after {} s", READY_TIMEOUT.as_secs()));
        }
        let ts = rustix::event::Timespec::try_from(left).ok();
        let mut fds = [PollFd::new(ready, PollFlags::IN)];
        match poll(&mut fds, ts.as_ref()) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(format!("cannot wait for it: {e}")),
        }
        match rustix::io::read(ready, &mut buf) {
            Ok(0) => {
                let status = process.wait().map(|s| s.to_string()).unwrap_or_default();
                return Err(format!("it ended before it was ready ({status})"));
            }
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => continue,
            Err(e) => return Err(format!("cannot read its ready fd: {e}")),
        }
    }
}

/// A private directory for slirp4netns's API socket, removed when dropped.
struct ApiDir(PathBuf);

impl ApiDir {
    fn new() -> Result<ApiDir, Error> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = base.join(format!("nscell-slirp-{}-{n}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(|e| {
            Error::setup(Step::PublishPort, Some(dir.clone()), e.raw_os_error().unwrap_or(0))
        })?;
        Ok(ApiDir(dir))
    }

    fn socket(&self) -> PathBuf {
        self.0.join("api.sock")
    }

    /// One `add_hostfwd` request.
    fn add_hostfwd(&self, p: &Publish) -> Result<(), String> {
        let mut s =
            std::os::unix::net::UnixStream::connect(self.socket()).map_err(|e| e.to_string())?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let host =
            if p.host.is_ipv4() { p.host.ip().to_string() } else { format!("[{}]", p.host.ip()) };
        let req = format!(
            r#"{{"execute": "add_hostfwd", "arguments": {{"proto": "{}", "host_addr": "{}", "host_port": {}, "guest_port": {}}}}}"#,
            proto_name(p.proto),
            host.trim_matches(|c| c == '[' || c == ']'),
            p.host.port(),
            p.sandbox_port
        );
        s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut reply = String::new();
        s.read_to_string(&mut reply).map_err(|e| e.to_string())?;
        if reply.contains("\"return\"") { Ok(()) } else { Err(reply.trim().to_string()) }
    }
}

impl Drop for ApiDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let _ = std::fs::remove_dir(&self.0);
    }
}
