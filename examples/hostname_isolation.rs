//! A UTS namespace gives the sandbox its own hostname: the program sets one, and the host's
//! stays what it was.
//!
//! ```text
//! cargo run --example hostname_isolation
//! ```

use nscell::{Namespaces, Sandbox};

/// The host's hostname, as the kernel reports it.
fn host_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string()
}

fn main() -> Result<(), nscell::Error> {
    let before = host_hostname();

    // A user namespace (root inside, so changing the hostname is allowed) and a UTS namespace
    // (so the change stays inside). `hostname` sets the name before the program starts; the
    // program then changes it once more from inside.
    let out = Sandbox::new("/bin/sh")
        .args(["-c", "hostname; hostname changed-inside; hostname"])
        .namespaces(Namespaces::USER | Namespaces::UTS)
        .hostname("isolated")
        .output()?;
    let inside = String::from_utf8_lossy(&out.stdout);
    let mut lines = inside.lines();

    println!("inside, at start:   {}", lines.next().unwrap_or("?"));
    println!("inside, after `hostname changed-inside`: {}", lines.next().unwrap_or("?"));
    println!("outside, before:    {before}");
    println!("outside, after:     {}", host_hostname());
    Ok(())
}
