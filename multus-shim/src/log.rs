//! The shim's logging: upstream's format (`<RFC3339 time> [<level>] <message>`) to the
//! configured `logFile` and/or stderr, never stdout (the CNI channel). A handful of
//! lines per call, so a file opened in append mode per process is enough.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Upstream's levels, least verbose first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Only fatal conditions (the default).
    Panic,
    /// Errors.
    Error,
    /// Progress of each call.
    Verbose,
    /// Everything.
    Debug,
}

impl Level {
    /// Parse `logLevel` (case-insensitive); `None` for unknown values.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_lowercase().as_str() {
            "panic" => Self::Panic,
            "error" => Self::Error,
            "verbose" => Self::Verbose,
            "debug" => Self::Debug,
            _ => return None,
        })
    }

    fn label(self) -> &'static str {
        match self {
            Self::Panic => "panic",
            Self::Error => "error",
            Self::Verbose => "verbose",
            Self::Debug => "debug",
        }
    }
}

#[derive(Debug)]
struct Logger {
    level: Level,
    file: Option<Mutex<File>>,
    stderr: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Configure logging once per process (later calls are ignored).
pub fn init(level: Option<&str>, file: Option<&Path>, stderr: bool) {
    let level = match level.filter(|l| !l.is_empty()) {
        None => Level::Panic,
        Some(text) => Level::parse(text).unwrap_or_else(|| {
            eprintln!(
                "multus-shim: unknown logLevel {text:?}; expected debug, verbose, error or panic"
            );
            Level::Panic
        }),
    };
    let file = file.and_then(|path| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| eprintln!("multus-shim: cannot open logFile {}: {e}", path.display()))
            .ok()
            .map(Mutex::new)
    });
    let _ = LOGGER.set(Logger {
        level,
        file,
        stderr,
    });
}

/// Log `message` at `level`.
pub fn log(level: Level, message: &str) {
    let Some(logger) = LOGGER.get() else {
        return;
    };
    if level > logger.level {
        return;
    }
    let line = format!("{} [{}] {message}\n", rfc3339_now(), level.label());
    if let Some(file) = &logger.file {
        if let Ok(mut file) = file.lock() {
            let _ = file.write_all(line.as_bytes());
        }
    }
    if logger.stderr {
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` of now (UTC).
fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or_default();
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_786_000_000), "2026-08-06T07:06:40Z");
    }

    #[test]
    fn levels_parse_case_insensitively_and_order() {
        assert_eq!(Level::parse("VERBOSE"), Some(Level::Verbose));
        assert_eq!(Level::parse("info"), None);
        assert!(Level::Debug > Level::Error);
    }
}
