//! Spawn latency: nscell against the kernel floor and the peers.
//!
//! Every case spawns `/bin/true` and waits for it. Two groups:
//!
//! - `spawn`: `std_command` (no isolation), `floor_raw_clone` (the kernel's cost for the default
//!   isolation, written here with libc and no builder), `c_floor*` (the same in C, with the mount
//!   lock, the session keyring and seccomp as options: `benches/floor.c`, built with `cc` at start
//!   and loaded with `dlopen`), `nscell_user`, `nscell_default`, `nscell_default_bare` (hardening
//!   off), `nscell_all`, and `bwrap` / `unshare` with the same isolation when they are installed.
//! - `large_parent`: `nscell_default` from this process while it is small, then after it has
//!   mapped and touched 2 GiB; `fork_exec` (plain `fork` + `execve`, no namespaces) beside it shows
//!   what a fork-style spawn pays for the same parent.
//!
//! Run one group with a filter: `cargo bench --bench spawn -- spawn/` (see BENCHMARKS.md).
//! `SPAWN_INTERLEAVE=400 cargo bench --bench spawn` skips criterion and runs the ratio cases
//! round-robin instead, which keeps the ratios steady on a noisy (shared, virtual) machine;
//! `SPAWN_CASES=a,b` keeps only those cases.

use criterion::{BenchmarkGroup, Criterion, criterion_group, measurement::WallTime};
use nscell::{Namespaces, Sandbox};
use std::ffi::{CString, c_char, c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const TRUE: &str = "/bin/true";
const BWRAP: &str = "/usr/bin/bwrap";
const UNSHARE: &str = "/usr/bin/unshare";

/// Moderate settings: the whole `cargo bench` takes about a minute on two cores.
fn configure(group: &mut BenchmarkGroup<'_, WallTime>, samples: usize, secs: u64) {
    group.sample_size(samples);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(secs));
}

/// A fresh `Sandbox` every time: includes building the configuration and compiling the default
/// seccomp filter (once per `Sandbox`).
fn nscell(namespaces: Namespaces) {
    run(Sandbox::new(TRUE).namespaces(namespaces));
}

/// A `Sandbox` built once and spawned many times, as a test runner or build tool would.
fn reused(namespaces: Namespaces) -> Sandbox {
    let mut sb = Sandbox::new(TRUE);
    sb.namespaces(namespaces);
    sb
}

fn run(sb: &mut Sandbox) {
    let status = sb.status().expect("nscell spawn");
    assert!(status.success(), "nscell: /bin/true exited with {status}");
}

/// The default sandbox with cgroup limits on memory, tasks and CPU (`limits/` in BENCHMARKS.md),
/// or why this user cannot have them here (no delegated cgroup).
fn limited() -> Result<Sandbox, String> {
    let mut sb = reused(Namespaces::DEFAULT);
    sb.limits(nscell::cgroup::Limits::new().memory_max(64 << 20).pids_max(50).cpus(0.5));
    match sb.status() {
        Ok(s) if s.success() => Ok(sb),
        Ok(s) => Err(format!("/bin/true exited with {s}")),
        Err(e) => Err(e.to_string()),
    }
}

fn command(cmd: &mut Command) {
    let status = cmd.status().expect("spawn");
    assert!(status.success(), "{cmd:?} exited with {status}");
}

/// The kernel floor for `nscell_default`: the same clone flags and the same single-line id maps,
/// written directly with libc. The child runs on the caller's memory (`CLONE_VM | CLONE_VFORK`,
/// as posix_spawn does), so it only reads `Floor` and makes system calls.
mod floor {
    use super::*;

    pub struct Floor {
        stack: *mut c_void,
        stack_len: usize,
        uid_map: Vec<u8>,
        gid_map: Vec<u8>,
        path: CString,
        argv: [*const c_char; 2],
        envp: Vec<*const c_char>,
        _env: Vec<CString>,
        /// With a filter: no_new_privs and this seccomp program before execve.
        filter: Vec<libc::sock_filter>,
        /// The work nscell's default sandbox adds for its mount lock and session keyring
        /// (README, "Locked mounts"): clone without CLONE_NEWNS; after the maps, a new session
        /// keyring, then a CLONE_VFORK helper in new user and mount namespaces opens its mount
        /// namespace for the child to setns() into; the mounts; a final unshare(CLONE_NEWNS).
        locked: bool,
        /// The helper's stack (16-byte aligned top at `helper_top`).
        _helper_stack: Vec<u8>,
        helper_top: usize,
    }

    const FLAGS: c_int = libc::CLONE_VM
        | libc::CLONE_VFORK
        | libc::CLONE_NEWUSER
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::SIGCHLD;

    impl Floor {
        pub fn new() -> Floor {
            let stack_len = 256 * 1024;
            // SAFETY: a fresh anonymous mapping, used only as the child's stack.
            let stack = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    stack_len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                    -1,
                    0,
                )
            };
            assert_ne!(stack, libc::MAP_FAILED);
            // SAFETY: plain getters.
            let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
            let env: Vec<CString> = std::env::vars_os()
                .filter_map(|(k, v)| {
                    let mut kv = k.as_bytes().to_vec();
                    kv.push(b'=');
                    kv.extend_from_slice(v.as_bytes());
                    CString::new(kv).ok()
                })
                .collect();
            let mut envp: Vec<*const c_char> = env.iter().map(|e| e.as_ptr()).collect();
            envp.push(std::ptr::null());
            let path = CString::new(TRUE).unwrap();
            Floor {
                stack,
                stack_len,
                uid_map: format!("0 {uid} 1\n").into_bytes(),
                gid_map: format!("0 {gid} 1\n").into_bytes(),
                argv: [path.as_ptr(), std::ptr::null()],
                path,
                envp,
                _env: env,
                filter: Vec::new(),
                locked: false,
                _helper_stack: Vec::new(),
                helper_top: 0,
            }
        }

        /// [`Floor::with_seccomp`] plus the mount lock and the session keyring, the way nscell's
        /// default sandbox does them.
        pub fn locked_with_seccomp() -> Floor {
            let mut floor = Floor::with_seccomp();
            floor.locked = true;
            floor._helper_stack = vec![0u8; 32 * 1024];
            let end = floor._helper_stack.as_ptr() as usize + floor._helper_stack.len();
            floor.helper_top = end & !15;
            floor
        }

        /// The floor plus what nscell's default hardening asks of the kernel: no_new_privs and
        /// a seccomp filter of the same shape and size as nscell's default policy (an
        /// architecture check, x32 refused, 25 system calls refused with EPERM through a
        /// binary search on the number, the rest allowed: 71 instructions against nscell's 60).
        pub fn with_seccomp() -> Floor {
            let mut floor = Floor::new();
            floor.filter = default_like_filter();
            floor
        }

        /// One spawn of `/bin/true` in new user, PID, mount, UTS and IPC namespaces with a fresh
        /// `/proc`, waited for with `waitpid` on its pid.
        pub fn spawn_and_wait(&self) {
            // SAFETY: the child only reads `self`, which outlives it (CLONE_VFORK suspends us
            // until it has exec'd or exited); the stack is ours.
            let flags = if self.locked { FLAGS & !libc::CLONE_NEWNS } else { FLAGS };
            let pid = unsafe {
                let top = self.stack.cast::<u8>().add(self.stack_len).cast::<c_void>();
                libc::clone(child, top, flags, self as *const Floor as *mut c_void)
            };
            assert!(pid > 0, "clone: {}", std::io::Error::last_os_error());
            let mut status = 0;
            // SAFETY: waiting for our own child.
            let r = unsafe { libc::waitpid(pid, &mut status, 0) };
            assert_eq!(r, pid);
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "floor child failed at step {} (status {status:#x})",
                libc::WEXITSTATUS(status)
            );
        }
    }

    impl Drop for Floor {
        fn drop(&mut self) {
            // SAFETY: our own mapping; no child uses it any more.
            unsafe { libc::munmap(self.stack, self.stack_len) };
        }
    }

    /// Writes `bytes` to `path` with open/write/close.
    ///
    /// # Safety
    ///
    /// `path` is NUL-terminated.
    unsafe fn write_file(path: &[u8], bytes: &[u8]) -> bool {
        // SAFETY: the caller vouches for the path; bytes is a valid buffer.
        unsafe {
            let fd = libc::open(path.as_ptr().cast(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return false;
            }
            let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
            libc::close(fd);
            n == bytes.len() as isize
        }
    }

    /// A classic BPF program shaped like nscell's default seccomp policy.
    fn default_like_filter() -> Vec<libc::sock_filter> {
        const LD_W_ABS: u16 = 0x20;
        const JEQ_K: u16 = 0x15;
        const JGE_K: u16 = 0x35;
        const RET_K: u16 = 0x06;
        const ALLOW: u32 = 0x7fff_0000;
        const EPERM: u32 = 0x0005_0000 | 1;
        const KILL: u32 = 0x8000_0000;
        const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
        let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
        let denied: [libc::c_long; 25] = [
            libc::SYS_kexec_load,
            libc::SYS_kexec_file_load,
            libc::SYS_init_module,
            libc::SYS_finit_module,
            libc::SYS_delete_module,
            libc::SYS_bpf,
            libc::SYS_perf_event_open,
            libc::SYS_userfaultfd,
            libc::SYS_keyctl,
            libc::SYS_add_key,
            libc::SYS_request_key,
            libc::SYS_ptrace,
            libc::SYS_process_vm_readv,
            libc::SYS_process_vm_writev,
            libc::SYS_personality,
            libc::SYS_acct,
            libc::SYS_swapon,
            libc::SYS_swapoff,
            libc::SYS_reboot,
            libc::SYS_syslog,
            libc::SYS_uselib,
            libc::SYS_vhangup,
            libc::SYS_lookup_dcookie,
            libc::SYS_nfsservctl,
            libc::SYS_quotactl,
        ];
        let mut f = vec![
            op(LD_W_ABS, 0, 0, 4), // seccomp_data.arch
            op(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
            op(RET_K, 0, 0, KILL),
            op(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
            op(JGE_K, 0, 1, 0x4000_0000),
            op(RET_K, 0, 0, EPERM),
        ];
        // A binary search on the number, as nscell's generator does (a chain makes the kernel's
        // action-cache preparation at install walk the whole chain for every number).
        fn search(nrs: &[u32]) -> Vec<libc::sock_filter> {
            let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
            if nrs.len() <= 4 {
                let mut f = Vec::new();
                for &nr in nrs {
                    f.push(op(JEQ_K, 0, 1, nr));
                    f.push(op(RET_K, 0, 0, EPERM));
                }
                f.push(op(RET_K, 0, 0, ALLOW));
                return f;
            }
            let mid = nrs.len() / 2;
            let (low, high) = (search(&nrs[..mid]), search(&nrs[mid..]));
            let mut f = vec![op(JGE_K, low.len() as u8, 0, nrs[mid])];
            f.extend(low);
            f.extend(high);
            f
        }
        let mut sorted: Vec<u32> = denied.iter().map(|&nr| nr as u32).collect();
        sorted.sort_unstable();
        f.extend(search(&sorted));
        f
    }

    /// The mount lock's helper: opens its mount namespace into the fd table it shares with the
    /// child, stores the fd through `arg`, exits.
    extern "C" fn helper(arg: *mut c_void) -> c_int {
        // SAFETY: the child passes a pointer to a c_int that outlives us (CLONE_VFORK).
        unsafe {
            *(arg as *mut c_int) =
                libc::open(c"/proc/thread-self/ns/mnt".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        }
        0
    }

    /// The child: id maps, private mounts, /proc, exec. The exit code names the failed step.
    extern "C" fn child(arg: *mut c_void) -> c_int {
        // SAFETY: spawn_and_wait passes a live Floor and keeps it alive until we exec or exit;
        // every pointer below points into it or at a static NUL-terminated string.
        unsafe {
            let f = &*(arg as *const Floor);
            if !write_file(b"/proc/self/setgroups\0", b"deny") {
                libc::_exit(10);
            }
            if !write_file(b"/proc/self/uid_map\0", &f.uid_map) {
                libc::_exit(11);
            }
            if !write_file(b"/proc/self/gid_map\0", &f.gid_map) {
                libc::_exit(12);
            }
            if f.locked {
                // KEYCTL_JOIN_SESSION_KEYRING, a new anonymous one.
                if libc::syscall(libc::SYS_keyctl, 1, 0) < 0 {
                    libc::_exit(20);
                }
                let mut ns: c_int = -1;
                let flags = libc::CLONE_VM
                    | libc::CLONE_VFORK
                    | libc::CLONE_FILES
                    | libc::CLONE_NEWUSER
                    | libc::CLONE_NEWNS;
                let h = libc::clone(
                    helper,
                    f.helper_top as *mut c_void,
                    flags,
                    (&mut ns as *mut c_int).cast(),
                );
                if h < 0 || libc::waitpid(h, std::ptr::null_mut(), libc::__WALL) != h || ns < 0 {
                    libc::_exit(21);
                }
                if libc::setns(ns, libc::CLONE_NEWNS) != 0 {
                    libc::_exit(22);
                }
                libc::close(ns);
            }
            let none = std::ptr::null::<c_char>();
            if libc::mount(
                none,
                c"/".as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                libc::_exit(13);
            }
            let nosuid = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
            if libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                nosuid,
                std::ptr::null(),
            ) != 0
            {
                libc::_exit(14);
            }
            if f.locked && libc::unshare(libc::CLONE_NEWNS) != 0 {
                libc::_exit(23);
            }
            if !f.filter.is_empty() {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    libc::_exit(16);
                }
                let prog = libc::sock_fprog {
                    len: f.filter.len() as u16,
                    filter: f.filter.as_ptr() as *mut libc::sock_filter,
                };
                if libc::syscall(libc::SYS_seccomp, 1, 0, &prog as *const libc::sock_fprog) != 0 {
                    libc::_exit(17);
                }
            }
            libc::execve(f.path.as_ptr(), f.argv.as_ptr(), f.envp.as_ptr());
            libc::_exit(15)
        }
    }
}

/// The minimal C floor of `benches/floor.c`, compiled at start with `cc -O2 -shared -fPIC` and
/// loaded with `dlopen`, so that it runs in this process, interleaved with the nscell cases.
mod cfloor {
    use super::*;
    use std::path::PathBuf;

    /// The mount lock and the session keyring (`FLOOR_LOCKED` in floor.c).
    pub const LOCKED: c_int = 1;
    /// no_new_privs and a seccomp filter (`FLOOR_SECCOMP`).
    pub const SECCOMP: c_int = 2;
    /// A new session (`FLOOR_SETSID`).
    pub const SETSID: c_int = 4;

    pub struct CFloor {
        spawn: extern "C" fn(c_int) -> c_int,
    }

    /// Removes the files it names when dropped.
    struct Scratch(Vec<PathBuf>);

    impl Drop for Scratch {
        fn drop(&mut self) {
            for p in &self.0 {
                let _ = std::fs::remove_file(p);
            }
        }
    }

    impl CFloor {
        /// Compiles and loads floor.c; `None` (with the reason on stderr) without a working `cc`.
        pub fn load() -> Option<CFloor> {
            let r = Self::try_load();
            if let Err(why) = &r {
                eprintln!("note: no C floor ({why}): skipping the c_floor cases");
            }
            r.ok()
        }

        fn try_load() -> Result<CFloor, String> {
            let stem = std::env::temp_dir().join(format!("nscell-floor-{}", std::process::id()));
            let (src, lib) = (stem.with_extension("c"), stem.with_extension("so"));
            let _scratch = Scratch(vec![src.clone(), lib.clone()]);
            std::fs::write(&src, include_str!("floor.c"))
                .map_err(|e| format!("{}: {e}", src.display()))?;
            let out = Command::new("cc")
                .args(["-O2", "-shared", "-fPIC", "-o"])
                .args([&lib, &src])
                .output()
                .map_err(|e| format!("cannot run cc: {e}"))?;
            if !out.status.success() {
                return Err(format!("cc failed: {}", String::from_utf8_lossy(&out.stderr)));
            }
            let path = CString::new(lib.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
            // SAFETY: a library we just built; its initialisers do nothing. It stays loaded for
            // the rest of the process (never dlclose'd), so its functions stay valid.
            let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
            if handle.is_null() {
                // SAFETY: dlerror returns a NUL-terminated message after a failed dlopen.
                let msg = unsafe { std::ffi::CStr::from_ptr(libc::dlerror()) };
                return Err(format!("dlopen: {}", msg.to_string_lossy()));
            }
            // SAFETY: symbols of the library above, with the C signatures floor.c gives them.
            let (init, spawn) = unsafe {
                let init = libc::dlsym(handle, c"floor_init".as_ptr());
                let spawn = libc::dlsym(handle, c"floor_spawn".as_ptr());
                if init.is_null() || spawn.is_null() {
                    return Err("floor_init or floor_spawn missing".into());
                }
                (
                    std::mem::transmute::<*mut c_void, extern "C" fn() -> c_int>(init),
                    std::mem::transmute::<*mut c_void, extern "C" fn(c_int) -> c_int>(spawn),
                )
            };
            if init() != 0 {
                return Err(format!("floor_init: {}", std::io::Error::last_os_error()));
            }
            Ok(CFloor { spawn })
        }

        /// One spawn of `/bin/true` in floor.c's way `how` (0, [`LOCKED`], [`SECCOMP`]).
        pub fn spawn_and_wait(&self, how: c_int) {
            let step = (self.spawn)(how);
            assert_eq!(step, 0, "C floor ({how}) failed at step {step}");
        }
    }
}

fn installed(path: &str, name: &str) -> bool {
    let ok = Path::new(path).exists();
    if !ok {
        eprintln!("note: {name} is not installed ({path} missing): skipping spawn/{name}");
    }
    ok
}

fn spawn(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn");
    configure(&mut group, 50, 3);

    group.bench_function("std_command", |b| b.iter(|| command(&mut Command::new(TRUE))));

    let floor = floor::Floor::new();
    group.bench_function("floor_raw_clone", |b| b.iter(|| floor.spawn_and_wait()));
    let floor_seccomp = floor::Floor::with_seccomp();
    group.bench_function("floor_raw_clone_seccomp", |b| b.iter(|| floor_seccomp.spawn_and_wait()));
    let floor_locked = floor::Floor::locked_with_seccomp();
    group.bench_function("floor_locked_seccomp", |b| b.iter(|| floor_locked.spawn_and_wait()));
    drop(floor);
    if let Some(c) = cfloor::CFloor::load() {
        use cfloor::{LOCKED, SECCOMP};
        group.bench_function("c_floor", |b| b.iter(|| c.spawn_and_wait(0)));
        group.bench_function("c_floor_locked", |b| b.iter(|| c.spawn_and_wait(LOCKED)));
        let both = LOCKED | SECCOMP;
        group.bench_function("c_floor_locked_seccomp", |b| b.iter(|| c.spawn_and_wait(both)));
    }

    let mut user = reused(Namespaces::USER);
    group.bench_function("nscell_user", |b| b.iter(|| run(&mut user)));
    let mut default = reused(Namespaces::DEFAULT);
    group.bench_function("nscell_default", |b| b.iter(|| run(&mut default)));
    match limited() {
        Ok(mut sb) => {
            group.bench_function("nscell_default_limits", |b| b.iter(|| run(&mut sb)));
        }
        Err(why) => {
            eprintln!("note: no cgroup limits here ({why}): skipping nscell_default_limits")
        }
    }
    // The cost of the default hardening: the same without the seccomp filter, and without it and
    // no_new_privs (the closest to what floor_raw_clone does).
    let mut no_seccomp = reused(Namespaces::DEFAULT);
    no_seccomp.default_seccomp(false);
    group.bench_function("nscell_default_no_seccomp", |b| b.iter(|| run(&mut no_seccomp)));
    let mut bare = reused(Namespaces::DEFAULT);
    bare.default_seccomp(false).no_new_privs(false);
    group.bench_function("nscell_default_bare", |b| b.iter(|| run(&mut bare)));
    // A new Sandbox per spawn: also builds the configuration and compiles the seccomp filter.
    group.bench_function("nscell_default_fresh", |b| b.iter(|| nscell(Namespaces::DEFAULT)));
    let mut all = reused(Namespaces::all());
    group.bench_function("nscell_all", |b| b.iter(|| run(&mut all)));

    if installed(BWRAP, "bwrap") {
        let mut cmd = Command::new(BWRAP);
        cmd.args(["--unshare-user", "--unshare-pid", "--unshare-uts", "--unshare-ipc"])
            .args(["--bind", "/", "/", "--proc", "/proc", TRUE]);
        group.bench_function("bwrap", |b| b.iter(|| command(&mut cmd)));
    }
    if installed(UNSHARE, "unshare") {
        let mut cmd = Command::new(UNSHARE);
        cmd.args(["--user", "--map-root-user", "--pid", "--fork", "--mount", "--uts", "--ipc"])
            .args(["--mount-proc", TRUE]);
        group.bench_function("unshare", |b| b.iter(|| command(&mut cmd)));
    }
    group.finish();
}

/// An anonymous 2 GiB mapping with every page written, in 4 KiB pages (no transparent huge
/// pages, so a fork-style spawn has all 524288 page-table entries to copy).
struct Ballast {
    ptr: *mut c_void,
    len: usize,
}

impl Ballast {
    fn new(len: usize) -> Ballast {
        // SAFETY: a fresh anonymous mapping that only this struct uses.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED, "mmap 2 GiB");
        // SAFETY: our own mapping; a failed madvise only leaves huge pages possible.
        unsafe { libc::madvise(ptr, len, libc::MADV_NOHUGEPAGE) };
        let bytes = ptr.cast::<u8>();
        for off in (0..len).step_by(4096) {
            // SAFETY: inside our own writable mapping.
            unsafe { bytes.add(off).write_volatile(1) };
        }
        Ballast { ptr, len }
    }
}

impl Drop for Ballast {
    fn drop(&mut self) {
        // SAFETY: our own mapping.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// `fork` + `execve("/bin/true")` + `waitpid`: the fork-style spawn, for contrast.
fn fork_exec() {
    let path = c"/bin/true";
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null::<c_char>()];
    // SAFETY: the child only calls execve and _exit, both async-signal-safe.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: valid NUL-terminated path and NULL-terminated arrays.
        unsafe {
            libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    assert!(pid > 0, "fork: {}", std::io::Error::last_os_error());
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert_eq!(status, 0, "fork_exec child status {status:#x}");
}

fn large_parent(c: &mut Criterion) {
    const SIZE: usize = 2 << 30;
    let mut group = c.benchmark_group("large_parent");
    configure(&mut group, 30, 3);
    group.bench_function("small/nscell_default", |b| b.iter(|| nscell(Namespaces::DEFAULT)));
    group.bench_function("small/fork_exec", |b| b.iter(fork_exec));

    // Allocated only when a 2 GiB case is selected by the filter, and after the small cases.
    let mut ballast: Option<Ballast> = None;
    group.bench_function("2GiB/nscell_default", |b| {
        ballast.get_or_insert_with(|| Ballast::new(SIZE));
        b.iter(|| nscell(Namespaces::DEFAULT))
    });
    group.sample_size(10);
    group.bench_function("2GiB/fork_exec", |b| {
        ballast.get_or_insert_with(|| Ballast::new(SIZE));
        b.iter(fork_exec)
    });
    group.finish();
    drop(ballast);
}

criterion_group!(benches, spawn, large_parent);

type Spawner<'a> = Box<dyn FnMut() + 'a>;

/// `SPAWN_INTERLEAVE=<rounds>`: instead of criterion, run the ratio cases round-robin (one spawn
/// of each per round, so a drift of the host hits every case alike), then the large-parent pair
/// in two phases, and print medians and the target ratios.
fn interleaved(rounds: usize) {
    let floor = floor::Floor::new();
    let floor_seccomp = floor::Floor::with_seccomp();
    let floor_locked = floor::Floor::locked_with_seccomp();
    let mut bwrap = Command::new(BWRAP);
    bwrap
        .args(["--unshare-user", "--unshare-pid", "--unshare-uts", "--unshare-ipc"])
        .args(["--bind", "/", "/", "--proc", "/proc", TRUE]);
    let mut unshare = Command::new(UNSHARE);
    unshare
        .args(["--user", "--map-root-user", "--pid", "--fork", "--mount", "--uts", "--ipc"])
        .args(["--mount-proc", TRUE]);
    let mut std_cmd = Command::new(TRUE);
    let mut default = reused(Namespaces::DEFAULT);
    let mut no_seccomp = reused(Namespaces::DEFAULT);
    no_seccomp.default_seccomp(false);
    let mut bare = reused(Namespaces::DEFAULT);
    bare.default_seccomp(false).no_new_privs(false);
    // The same in the caller's session (its own process group): what the new session costs.
    let mut same_session = reused(Namespaces::DEFAULT);
    same_session.default_seccomp(false).no_new_privs(false).new_session(false);
    let c_floor = cfloor::CFloor::load();
    let limits = limited().map_err(|why| eprintln!("note: no cgroup limits here ({why})")).ok();
    let mut cases: Vec<(&str, Spawner<'_>)> = vec![
        ("std_command", Box::new(|| command(&mut std_cmd))),
        ("floor_raw_clone", Box::new(|| floor.spawn_and_wait())),
        ("floor_raw_clone_seccomp", Box::new(|| floor_seccomp.spawn_and_wait())),
        ("floor_locked_seccomp", Box::new(|| floor_locked.spawn_and_wait())),
        ("nscell_default", Box::new(move || run(&mut default))),
        ("nscell_default_no_seccomp", Box::new(move || run(&mut no_seccomp))),
        ("nscell_default_bare", Box::new(move || run(&mut bare))),
        ("nscell_default_bare_same_session", Box::new(move || run(&mut same_session))),
    ];
    if let Some(c) = &c_floor {
        use cfloor::{LOCKED, SECCOMP, SETSID};
        cases.push(("c_floor", Box::new(|| c.spawn_and_wait(0))));
        cases.push(("c_floor_locked", Box::new(|| c.spawn_and_wait(LOCKED))));
        cases.push(("c_floor_locked_seccomp", Box::new(|| c.spawn_and_wait(LOCKED | SECCOMP))));
        cases.push(("c_floor_locked_setsid", Box::new(|| c.spawn_and_wait(LOCKED | SETSID))));
    }
    if let Some(mut sb) = limits {
        cases.push(("nscell_default_limits", Box::new(move || run(&mut sb))));
    }
    if installed(BWRAP, "bwrap") {
        cases.push(("bwrap", Box::new(|| command(&mut bwrap))));
    }
    if installed(UNSHARE, "unshare") {
        cases.push(("unshare", Box::new(|| command(&mut unshare))));
    }
    // SPAWN_CASES=a,b,c: only these (fewer cases, more rounds in the same time).
    if let Ok(only) = std::env::var("SPAWN_CASES") {
        cases.retain(|(name, _)| only.split(',').any(|o| o == *name));
    }
    let time_into = |f: &mut dyn FnMut(), n: usize, out: &mut Vec<f64>| {
        for _ in 0..n {
            let t = std::time::Instant::now();
            f();
            out.push(t.elapsed().as_secs_f64() * 1e6);
        }
    };
    let mut times = vec![Vec::with_capacity(rounds); cases.len()];
    for (_, f) in cases.iter_mut() {
        time_into(f.as_mut(), rounds / 10 + 1, &mut Vec::new());
    }
    // A new order every round (xorshift shuffle), so no case always follows the same one: the
    // namespaces a spawn leaves behind are torn down partly after it returns (RCU, kworkers).
    let mut order: Vec<usize> = (0..cases.len()).collect();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..rounds {
        for k in (1..order.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(k, (seed % (k as u64 + 1)) as usize);
        }
        for &i in &order {
            time_into(cases[i].1.as_mut(), 1, &mut times[i]);
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // Per round, before the medians sort the times: the median of a / b over the rounds, which
    // a change of the host's load that lasts a few rounds cannot move.
    let index = |name: &str| cases.iter().position(|(n, _)| *n == name);
    let mut paired = Vec::new();
    for (a, b) in [
        ("nscell_default_bare", "c_floor_locked"),
        ("nscell_default", "c_floor_locked"),
        ("nscell_default", "c_floor_locked_seccomp"),
    ] {
        if let (Some(i), Some(j)) = (index(a), index(b)) {
            let mut r: Vec<f64> = times[i].iter().zip(&times[j]).map(|(x, y)| x / y).collect();
            paired.push((a, b, med(&mut r)));
        }
    }
    let mut m = std::collections::BTreeMap::new();
    for (i, (name, _)) in cases.iter().enumerate() {
        let x = med(&mut times[i]);
        println!("interleaved/{name:<26} median {x:9.1} µs  ({rounds} rounds)");
        m.insert(*name, x);
    }
    drop(cases);

    // Small and 2 GiB phases alternate twice, so a drift of the host does not favour either.
    let (mut small, mut large) = (Vec::new(), Vec::new());
    let phases = if std::env::var_os("SPAWN_CASES").is_some() { 0 } else { 2 };
    for _ in 0..phases {
        time_into(&mut || nscell(Namespaces::DEFAULT), rounds / 2, &mut small);
        let ballast = Ballast::new(2 << 30);
        time_into(&mut || nscell(Namespaces::DEFAULT), rounds / 2, &mut large);
        drop(ballast);
    }
    if phases == 0 {
        small.push(f64::NAN);
        large.push(f64::NAN);
    }
    let (small, large) = (med(&mut small), med(&mut large));
    println!("interleaved/large_parent small median {small:9.1} µs, 2GiB median {large:9.1} µs");

    let ratio = |a: &str, b: &str, target: &str| {
        if let (Some(x), Some(y)) = (m.get(a), m.get(b)) {
            println!("ratio {a} / {b} = {:.3}  (target {target})", x / y);
        }
    };
    // Against the minimal C floor (benches/floor.c): "bare" is the default sandbox with its
    // hardening off (no seccomp filter, no no_new_privs); the mount lock and the session keyring
    // stay, as they have no switch of their own, and c_floor_locked does them too.
    ratio("nscell_default_bare", "c_floor_locked", "<= 1.10");
    ratio("nscell_default", "c_floor_locked", "<= 1.25");
    ratio("nscell_default", "c_floor_locked_seccomp", "like for like");
    ratio("nscell_default_bare", "c_floor", "the lock and the keyring included");
    for (a, b, r) in paired {
        println!("paired {a} / {b} = {r:.3}  (the median of the rounds' ratios)");
    }
    ratio("floor_locked_seccomp", "c_floor_locked_seccomp", "the Rust floor against the C one");
    // The Rust floors without the mount lock: for reference only since every default sandbox
    // locks its mounts (the lock is about a quarter of a spawn, the kernel's cost).
    ratio("nscell_default", "floor_raw_clone", "none: the floor has no mount lock");
    ratio("nscell_default", "floor_raw_clone_seccomp", "none: the floor has no mount lock");
    ratio("nscell_default", "floor_locked_seccomp", "<= 1.10");
    ratio("nscell_default_no_seccomp", "floor_raw_clone", "none: the floor has no mount lock");
    ratio("nscell_default", "bwrap", "<= 0.35");
    ratio("nscell_default", "unshare", "< 1");
    println!("ratio large_parent 2GiB / small = {:.3}  (target <= 1.3)", large / small);
    ratio("nscell_default_limits", "nscell_default", "the cost of memory + pids + cpu limits");
    if let (Some(x), Some(y)) = (m.get("nscell_default_limits"), m.get("nscell_default")) {
        println!(
            "delta nscell_default_limits - nscell_default = {:.1} µs  (target <= 600 on v1)",
            x - y
        );
    }
}

fn main() {
    match std::env::var("SPAWN_INTERLEAVE").ok().and_then(|s| s.parse().ok()) {
        Some(rounds) => interleaved(rounds),
        None => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}
