//! User and group id mappings of a user namespace.

use std::fmt;

/// One line of a user namespace's `uid_map` or `gid_map`: `count` consecutive ids starting at
/// `inside` in the new namespace correspond to the ids starting at `outside` in the caller's.
///
/// The order of the arguments is the order of the columns in `/proc/PID/uid_map`.
/// See [user_namespaces(7)](https://man7.org/linux/man-pages/man7/user_namespaces.7.html).
///
/// ```
/// use nscell::IdMap;
/// // uid 0 inside is uid 1000 outside
/// let root = IdMap::new(0, 1000, 1);
/// assert_eq!(root.to_string(), "0 1000 1");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdMap {
    /// The first id inside the new namespace.
    pub inside: u32,
    /// The first id in the caller's namespace.
    pub outside: u32,
    /// How many consecutive ids the line maps.
    pub count: u32,
}

impl IdMap {
    /// A map of `count` ids from `inside` (in the new namespace) to `outside` (in the caller's).
    pub const fn new(inside: u32, outside: u32, count: u32) -> Self {
        IdMap { inside, outside, count }
    }
}

impl fmt::Display for IdMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.inside, self.outside, self.count)
    }
}

/// The kernel's limit on the lines of one map (since Linux 4.15).
pub const MAX_LINES: usize = 340;
/// The kernel takes a map in one write of less than a page.
const MAX_BYTES: usize = 4096;

/// Checks a whole map the way the kernel will, so a bad one fails before anything is spawned.
/// Returns a sentence saying what is wrong.
pub(crate) fn validate(maps: &[IdMap]) -> Result<(), String> {
    if maps.is_empty() {
        return Err("the map is empty".into());
    }
    if maps.len() > MAX_LINES {
        return Err(format!("{} lines; the kernel takes at most {MAX_LINES}", maps.len()));
    }
    for m in maps {
        if m.count == 0 {
            return Err(format!("line \"{m}\" maps no ids (count 0)"));
        }
        // The kernel refuses a range that wraps or reaches id 4294967295 (which means "no id").
        for (name, first) in [("inside", m.inside), ("outside", m.outside)] {
            if u64::from(first) + u64::from(m.count) > u64::from(u32::MAX) {
                return Err(format!(
                    "line \"{m}\": the {name} range goes past the largest id 4294967294"
                ));
            }
        }
    }
    for (i, a) in maps.iter().enumerate() {
        for b in &maps[i + 1..] {
            if overlaps(a.inside, b.inside, a.count, b.count) {
                return Err(format!("lines \"{a}\" and \"{b}\" overlap inside"));
            }
            if overlaps(a.outside, b.outside, a.count, b.count) {
                return Err(format!("lines \"{a}\" and \"{b}\" overlap outside"));
            }
        }
    }
    let len = render(maps).len();
    if len >= MAX_BYTES {
        return Err(format!("it renders to {len} bytes; the kernel takes less than {MAX_BYTES}"));
    }
    Ok(())
}

fn overlaps(a: u32, b: u32, a_count: u32, b_count: u32) -> bool {
    let (a, b) = (u64::from(a), u64::from(b));
    a < b + u64::from(b_count) && b < a + u64::from(a_count)
}

/// The bytes to write to `uid_map` or `gid_map`: one line per entry.
pub(crate) fn render(maps: &[IdMap]) -> Vec<u8> {
    let mut out = String::new();
    for m in maps {
        out.push_str(&m.to_string());
        out.push('\n');
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_line_per_entry() {
        let maps = [IdMap::new(0, 1000, 1), IdMap::new(1, 100000, 65536)];
        assert_eq!(render(&maps), b"0 1000 1\n1 100000 65536\n");
    }

    #[test]
    fn accepts_adjacent_ranges() {
        assert_eq!(validate(&[IdMap::new(0, 1000, 1), IdMap::new(1, 1001, 10)]), Ok(()));
    }

    #[test]
    fn rejects_overlap_inside_and_outside() {
        let e = validate(&[IdMap::new(0, 1000, 10), IdMap::new(5, 5000, 10)]).unwrap_err();
        assert!(e.contains("overlap inside"), "{e}");
        let e = validate(&[IdMap::new(0, 1000, 10), IdMap::new(50, 1009, 1)]).unwrap_err();
        assert!(e.contains("overlap outside"), "{e}");
    }

    #[test]
    fn rejects_count_zero_overflow_and_empty() {
        assert!(validate(&[IdMap::new(0, 1000, 0)]).unwrap_err().contains("count 0"));
        assert!(validate(&[IdMap::new(u32::MAX, 0, 1)]).unwrap_err().contains("largest id"));
        assert!(validate(&[IdMap::new(0, u32::MAX - 5, 10)]).unwrap_err().contains("outside"));
        assert!(validate(&[IdMap::new(0, 4294967294, 1)]).is_ok());
        assert!(validate(&[]).is_err());
    }

    #[test]
    fn rejects_too_many_lines_and_too_many_bytes() {
        let many: Vec<_> = (0..341).map(|i| IdMap::new(i, i, 1)).collect();
        assert!(validate(&many).unwrap_err().contains("341 lines"));
        // 340 lines of long numbers exceed a page although the line count is allowed.
        let big: Vec<_> =
            (0..340).map(|i| IdMap::new(1_000_000_000 + i, 2_000_000_000 + i, 1)).collect();
        assert!(validate(&big).unwrap_err().contains("bytes"));
    }
}
