//! Who nscell is this run: itself, or bubblewrap ([`Personality`]), picked from the name it was
//! started under. The personality picks defaults and the style of messages and exit statuses;
//! every option is parsed and run by the same code in both.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;

/// The bubblewrap release whose options and behaviour the `bwrap` personality follows, as
/// `bwrap --version` prints it (callers parse it to feature-test).
pub const BUBBLEWRAP_VERSION: &str = "0.11.1";

/// The name nscell runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Personality {
    /// `nscell`: its own defaults (user, PID, mount, UTS and IPC namespaces, root inside, a
    /// seccomp policy, a pty for a terminal) and exit statuses (125, 126, 127, 2).
    #[default]
    Nscell,
    /// `bwrap` (a name starting with it: a symlink or a copy): bubblewrap's defaults, messages
    /// and exit statuses (1 for every failure of its own).
    Bwrap,
}

static CURRENT: OnceLock<Personality> = OnceLock::new();

impl Personality {
    /// The personality of a program started as `argv0`: bubblewrap's when the file name
    /// starts with `bwrap`.
    pub fn of(argv0: &OsStr) -> Personality {
        let name = argv0.as_bytes().rsplit(|&b| b == b'/').next().unwrap_or_default();
        if name.starts_with(b"bwrap") { Personality::Bwrap } else { Personality::Nscell }
    }

    /// Makes `self` the personality of this run (what [`prefix`] says). The first call wins.
    pub fn set(self) {
        let _ = CURRENT.set(self);
    }

    /// The personality of this run.
    pub fn current() -> Personality {
        CURRENT.get().copied().unwrap_or_default()
    }

    /// The name its messages start with.
    pub fn name(self) -> &'static str {
        match self {
            Personality::Nscell => "nscell",
            Personality::Bwrap => "bwrap",
        }
    }

    /// Whether this is bubblewrap's.
    pub fn is_bwrap(self) -> bool {
        self == Personality::Bwrap
    }

    /// The `--version` line.
    pub fn version(self) -> String {
        let ours = env!("CARGO_PKG_VERSION");
        match self {
            Personality::Nscell => format!("nscell {ours}"),
            Personality::Bwrap => format!("bubblewrap {BUBBLEWRAP_VERSION} (nscell {ours})"),
        }
    }

    /// The exit status for a failure of nscell's own whose nscell status is `status` (a bad
    /// command line, a sandbox that could not be set up, a program that could not be run):
    /// bubblewrap exits 1 for all of them.
    pub fn failure(self, status: i32) -> i32 {
        match self {
            Personality::Nscell => status,
            Personality::Bwrap => 1,
        }
    }
}

/// The prefix of every message of this run: `nscell` or `bwrap` (with bubblewrap's
/// `--level-prefix`, a syslog level before it: [`set_level_prefix`]).
pub fn prefix() -> &'static str {
    Personality::current().name()
}

static LEVEL_PREFIX: OnceLock<bool> = OnceLock::new();

/// `--level-prefix`: messages start with their syslog level (`<3>` for errors, `<4>` for
/// warnings), as bubblewrap's do.
pub fn set_level_prefix(on: bool) {
    let _ = LEVEL_PREFIX.set(on);
}

/// The start of an error message: `bwrap: ` or `<3>bwrap: `.
pub fn error_start() -> String {
    level(3)
}

/// The start of a warning: `bwrap: warning: `, bubblewrap's `bwrap: ` or `<4>bwrap: `.
pub fn warning_start() -> String {
    match Personality::current() {
        Personality::Nscell => format!("{}warning: ", level(4)),
        Personality::Bwrap => level(4),
    }
}

fn level(n: u8) -> String {
    if LEVEL_PREFIX.get().copied().unwrap_or(false) {
        format!("<{n}>{}: ", prefix())
    } else {
        format!("{}: ", prefix())
    }
}

/// Prints an error line: `nscell: MSG`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => {
        eprintln!("{}{}", $crate::personality::error_start(), format_args!($($arg)*))
    };
}

/// Prints a warning line: `nscell: warning: MSG` (bubblewrap's: `bwrap: MSG`).
#[macro_export]
macro_rules! warning {
    ($($arg:tt)*) => {
        eprintln!("{}{}", $crate::personality::warning_start(), format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_started_under_picks_the_personality() {
        for (argv0, p) in [
            ("bwrap", Personality::Bwrap),
            ("/usr/local/bin/bwrap", Personality::Bwrap),
            ("./bwrap-0.11", Personality::Bwrap),
            ("nscell", Personality::Nscell),
            ("/opt/bwrap/nscell", Personality::Nscell),
            ("", Personality::Nscell),
        ] {
            assert_eq!(Personality::of(OsStr::new(argv0)), p, "{argv0:?}");
        }
    }

    #[test]
    fn bubblewraps_version_line_is_the_shape_callers_parse() {
        let line = Personality::Bwrap.version();
        let mut words = line.split(' ');
        assert_eq!(words.next(), Some("bubblewrap"));
        assert_eq!(words.next(), Some(BUBBLEWRAP_VERSION));
        assert!(Personality::Nscell.version().starts_with("nscell "));
        assert_eq!(Personality::Bwrap.failure(125), 1);
        assert_eq!(Personality::Nscell.failure(125), 125);
    }
}
