//! User namespaces map ids: the caller's uid can be root inside, or stay itself.
//!
//! ```text
//! cargo run --example id_mapping
//! ```

use nscell::{IdMap, Namespaces, Sandbox};

fn run(title: &str, sandbox: &mut Sandbox) -> Result<(), nscell::Error> {
    let out = sandbox.args(["-c", "id; cat /proc/self/uid_map"]).output()?;
    println!("{title}:");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        println!("  {}", line.trim());
    }
    Ok(())
}

fn main() -> Result<(), nscell::Error> {
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    println!("outside: uid {uid}, gid {gid}");

    // Without maps, the caller's uid and gid become 0 inside: root, with every capability over
    // the sandbox's own namespaces and none over the host's.
    run("mapped to root (the default)", Sandbox::new("/bin/sh").namespaces(Namespaces::USER))?;

    // To keep its own ids, map each to itself: the id inside that maps to the caller's id is the
    // one the program runs as. (`IdMap::new(inside, outside, count)`, the columns of uid_map.)
    run(
        "mapped to itself",
        Sandbox::new("/bin/sh")
            .namespaces(Namespaces::USER)
            .uid_map(IdMap::new(uid, uid, 1))
            .gid_map(IdMap::new(gid, gid, 1)),
    )?;

    // Any id inside can be the caller's: here uid and gid 1000.
    run(
        "mapped to 1000",
        Sandbox::new("/bin/sh")
            .namespaces(Namespaces::USER)
            .uid_map(IdMap::new(1000, uid, 1))
            .gid_map(IdMap::new(1000, gid, 1)),
    )?;
    Ok(())
}
