//! Runs the command given on the command line in a sandbox (the default namespaces, root inside,
//! a fresh /proc) and prints its captured output and exit status.
//!
//! ```text
//! cargo run --example run_command -- sh -c 'id; hostname; ps -e'
//! ```

use nscell::Sandbox;
use std::io::Write;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: run_command PROGRAM [ARG...]");
        std::process::exit(2);
    };

    let result = Sandbox::new(program).args(args).hostname("nscell").output();
    match result {
        Ok(out) => {
            println!("--- stdout ---");
            std::io::stdout().write_all(&out.stdout).unwrap();
            println!("--- stderr ---");
            std::io::stdout().write_all(&out.stderr).unwrap();
            println!("--- {} ---", out.status);
        }
        Err(e) => {
            eprintln!("run_command: {e}");
            std::process::exit(125);
        }
    }
}
