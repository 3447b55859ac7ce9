//! `--log` and `--log-format`: errors go to stderr, and to the log file (a line of JSON as runc
//! writes it, `{"level":"error","msg":…,"time":…}`, which containerd's shim reads back).

use crate::args::Global;
use std::io::Write;

/// RFC 3339 UTC time of `t` (what the logs and `state`'s `created` show).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

fn write(global: &Global, level: &str, msg: &str) {
    let Some(path) = &global.log else { return };
    let line = if global.log_json {
        let v = serde_json::json!({
            "level": level,
            "msg": msg,
            "time": rfc3339(std::time::SystemTime::now()),
        });
        format!("{v}\n")
    } else {
        format!("{} {level} {msg}\n", rfc3339(std::time::SystemTime::now()))
    };
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(line.as_bytes());
    }
}

/// A verb's failure: stderr and the log.
pub fn error(global: &Global, msg: &str) {
    eprintln!("nscell-runtime: {msg}");
    write(global, "error", msg);
}

/// With `--debug`: what a verb does, in the log only.
pub fn debug(global: &Global, msg: &str) {
    if global.debug {
        write(global, "debug", msg);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_rfc3339_utc() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(951_782_400 + 86_399, 5);
        // 2000-02-29 (a leap day) 23:59:59.
        assert_eq!(super::rfc3339(t), "2000-02-29T23:59:59.000000005Z");
        assert_eq!(super::rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
    }
}
