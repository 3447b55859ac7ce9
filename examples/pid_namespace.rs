//! A PID namespace with a fresh /proc: the program is PID 1 and sees only its own processes.
//!
//! ```text
//! cargo run --example pid_namespace
//! ```

use nscell::{Namespaces, Sandbox};

fn main() -> Result<(), nscell::Error> {
    // USER makes it work without root; PID | MOUNT together make nscell mount a fresh /proc
    // (a /proc shows the PID namespace it was mounted in, so the host's would list the host's
    // processes).
    let out = Sandbox::new("/bin/sh")
        .args(["-c", "echo \"my pid: $$\"; ps -e -o pid=,comm="])
        .namespaces(Namespaces::USER | Namespaces::PID | Namespaces::MOUNT)
        .output()?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));

    // Outside, the same process had an ordinary pid; /proc here still lists every process.
    let host_processes = std::fs::read_dir("/proc")
        .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok()))
        .map(Iterator::count)
        .unwrap_or(0);
    println!("processes the host sees: {host_processes}");
    println!("this program's pid outside: {}", std::process::id());
    Ok(())
}
