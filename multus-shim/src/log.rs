//! The shim's logging: upstream's format (`<RFC3339 time> [<level>] <message>`) to the
//! configured `logFile` and/or stderr, never stdout (the CNI channel). A handful of
//! lines per call, so a file opened in append mode per process is enough.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

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
    let line = format!(
        "{} [{}] {message}\n",
        multus_host::time::rfc3339_now(),
        level.label()
    );
    if let Some(file) = &logger.file {
        if let Ok(mut file) = file.lock() {
            let _ = file.write_all(line.as_bytes());
        }
    }
    if logger.stderr {
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_case_insensitively_and_order() {
        assert_eq!(Level::parse("VERBOSE"), Some(Level::Verbose));
        assert_eq!(Level::parse("info"), None);
        assert!(Level::Debug > Level::Error);
    }
}
