//! A test helper: makes one system call, named or numbered, and prints the result.
//!
//! ```text
//! try_syscall NAME|NUMBER [ARG...]
//! ```
//!
//! Each ARG is a number (decimal, `0x…` hex, or negative) or `buf` for a pointer to a zeroed
//! 4 KiB buffer. Prints `ok VALUE` or `errno N NAME` and exits 0 either way (2 on bad usage), so
//! the tests in tests/hardening.rs can see exactly what the kernel, or a seccomp filter, said.

fn number(s: &str) -> Option<u64> {
    if let Some(hex) = s.strip_prefix("0x") {
        u64::from_str_radix(hex, 16).ok()
    } else if let Some(neg) = s.strip_prefix('-') {
        neg.parse::<i64>().ok().map(|v| (-v) as u64)
    } else {
        s.parse().ok()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(first) = args.first() else {
        eprintln!("usage: try_syscall NAME|NUMBER [ARG...]");
        std::process::exit(2);
    };
    let Some(nr) = number(first).or_else(|| nscell::seccomp::syscall_number(first).map(u64::from))
    else {
        eprintln!("try_syscall: unknown system call {first:?}");
        std::process::exit(2);
    };
    let mut buf = vec![0u8; 4096];
    let mut a = [0u64; 6];
    for (i, s) in args[1..].iter().take(6).enumerate() {
        a[i] = if s == "buf" {
            buf.as_mut_ptr() as u64
        } else if let Some(v) = number(s) {
            v
        } else {
            eprintln!("try_syscall: bad argument {s:?}");
            std::process::exit(2);
        };
    }
    // SAFETY: a test helper making whatever call it is asked to; the arguments are numbers or a
    // pointer to our own buffer.
    let ret = unsafe { libc::syscall(nr as libc::c_long, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if ret < 0 {
        let err = std::io::Error::last_os_error();
        let code = err.raw_os_error().unwrap_or(0);
        println!("errno {code} {}", errno_name(code));
    } else {
        println!("ok {ret}");
    }
    drop(buf);
}

fn errno_name(code: i32) -> &'static str {
    match code {
        libc::EPERM => "EPERM",
        libc::ENOSYS => "ENOSYS",
        libc::EINVAL => "EINVAL",
        libc::EFAULT => "EFAULT",
        libc::ENOTTY => "ENOTTY",
        libc::EBADF => "EBADF",
        libc::ESRCH => "ESRCH",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EXDEV => "EXDEV",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ENOENT => "ENOENT",
        _ => "?",
    }
}
