//! Logging set-up from the multus configuration. stdout is the CNI channel, so logs go
//! only to stderr and/or the configured log file.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use tracing::level_filters::LevelFilter;

/// Map upstream's log levels (`panic` < `error` < `verbose` < `debug`) onto tracing's.
/// Unknown values keep the default and are reported on stderr, as upstream does.
pub fn level_filter(level: Option<&str>) -> LevelFilter {
    match level.map(str::to_ascii_lowercase).as_deref() {
        None | Some("panic") => LevelFilter::ERROR,
        Some("error") => LevelFilter::WARN,
        Some("verbose") => LevelFilter::INFO,
        Some("debug") => LevelFilter::DEBUG,
        Some(other) => {
            eprintln!(
                "multus: unknown logLevel {other:?}; expected debug, verbose, error or panic"
            );
            LevelFilter::ERROR
        }
    }
}

/// Install the global subscriber: to `log_file` (appended, 0600) when given, else to
/// stderr when `to_stderr`. Safe to call once per process; later calls are ignored.
pub fn init(level: Option<&str>, log_file: Option<&Path>, to_stderr: bool) {
    let filter = level_filter(level);
    let builder = tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_target(false)
        .with_ansi(false);
    let file = log_file.and_then(|path| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| eprintln!("multus: cannot open logFile {}: {e}", path.display()))
            .ok()
    });
    let result = match file {
        Some(file) => builder.with_writer(Mutex::new(file)).try_init(),
        None if to_stderr => builder.with_writer(std::io::stderr).try_init(),
        None => return,
    };
    let _ = result;
}
