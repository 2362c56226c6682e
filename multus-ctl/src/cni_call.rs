//! Running a CNI plugin as a runtime does: an explicit environment (`env_clear`, the
//! `CNI_*` variables and `PATH`), the configuration on stdin, stdout and stderr read to
//! the end, a time limit that kills.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use multus_core::cni::{CniError, ErrorCode};
use serde::Serialize;
use serde_json::Value;
use wait_timeout::ChildExt;

use crate::error::{CtlError, one_line};

/// `PATH` for the plugin (bridge, portmap and friends run iptables).
pub use multus_cni::exec::DEFAULT_PATH as PLUGIN_PATH_ENV;

/// One call.
#[derive(Debug, Clone)]
pub struct Call {
    /// The plugin binary.
    pub binary: PathBuf,
    /// `CNI_*` variables (and nothing else: `PATH` is added).
    pub env: BTreeMap<String, String>,
    /// stdin.
    pub stdin: Vec<u8>,
    /// Time limit.
    pub timeout: Duration,
}

/// What the plugin did.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Exit code (`None`: killed by a signal or by the time limit).
    pub code: Option<i32>,
    /// Whether the time limit killed it.
    pub timed_out: bool,
    /// stdout.
    pub stdout: Vec<u8>,
    /// stderr, as text.
    pub stderr: String,
}

impl Finished {
    /// Exit 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// A CNI error document, decoded for people and kept raw for scripts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecodedError {
    /// The CNI error code (0 when the plugin printed no error document).
    pub code: u32,
    /// What the code means.
    pub meaning: String,
    /// `msg`.
    pub msg: String,
    /// `details`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub details: String,
    /// The document as printed (`null` when stdout held none).
    pub raw: Value,
}

impl DecodedError {
    /// Decode a failed call.
    pub fn from_finished(finished: &Finished) -> Self {
        let raw: Value = serde_json::from_slice(&finished.stdout).unwrap_or(Value::Null);
        if let Some(error) = CniError::from_plugin_output(&finished.stdout) {
            return Self {
                code: error.code,
                meaning: code_meaning(error.code),
                msg: error.msg.clone(),
                details: error.details.clone(),
                raw,
            };
        }
        let why = if finished.timed_out {
            "the plugin did not finish in time and was killed".to_owned()
        } else {
            match finished.code {
                Some(code) => format!("the plugin exited with code {code} without a CNI error"),
                None => "the plugin was killed by a signal".to_owned(),
            }
        };
        let stderr = finished.stderr.trim();
        let stdout = String::from_utf8_lossy(&finished.stdout).trim().to_owned();
        let details = if !stderr.is_empty() {
            stderr.to_owned()
        } else {
            stdout
        };
        Self {
            code: 0,
            meaning: "no CNI error document".to_owned(),
            msg: why,
            details,
            raw,
        }
    }
}

/// The name of a CNI or multus error code.
pub fn code_meaning(code: u32) -> String {
    ErrorCode::from_code(code).map_or_else(
        || {
            if code >= 100 {
                "plugin-specific error".to_owned()
            } else {
                "unknown code".to_owned()
            }
        },
        |c| c.description().to_owned(),
    )
}

/// Run one call to the end.
pub fn run(call: &Call) -> Result<Finished, CtlError> {
    // A bare name would be searched in PATH: run exactly the file named.
    let binary = std::path::absolute(&call.binary).unwrap_or_else(|_| call.binary.clone());
    let mut child = Command::new(&binary)
        .env_clear()
        .envs(&call.env)
        .env("PATH", PLUGIN_PATH_ENV)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            CtlError::Unreachable(format!(
                "cannot run {}: {}; check the path and that it is executable",
                call.binary.display(),
                one_line(e)
            ))
        })?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    if let Some(mut stdin) = child.stdin.take() {
        let bytes = call.stdin.clone();
        // A plugin may answer without reading stdin (a bad environment, say).
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
    }
    let waited = child.wait_timeout(call.timeout).map_err(|e| {
        CtlError::Unreachable(format!(
            "cannot wait for {}: {}",
            call.binary.display(),
            one_line(e)
        ))
    })?;
    let (code, timed_out) = match waited {
        Some(status) => (status.code(), false),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            (None, true)
        }
    };
    Ok(Finished {
        code,
        timed_out,
        stdout: stdout.join().unwrap_or_default(),
        stderr: String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned(),
    })
}

fn drain<R: Read + Send + 'static>(reader: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut reader) = reader {
            let _ = reader.read_to_end(&mut bytes);
        }
        bytes
    })
}

pub use multus_host::is_executable;

/// The plugin to run: `--multus`, else `multus` (`multus-shim` when `shim`) next to this
/// program, else in `/opt/cni/bin`.
pub fn plugin_binary(flag: Option<&Path>, shim: bool) -> Result<PathBuf, CtlError> {
    let name = if shim { "multus-shim" } else { "multus" };
    if let Some(path) = flag {
        if is_executable(path) {
            return Ok(path.to_owned());
        }
        let what = format!("the {name} plugin {} ", path.display());
        return Err(if path.exists() {
            CtlError::Unreachable(format!("{what}is not an executable file; check --multus"))
        } else {
            CtlError::NotFound(format!("{what}does not exist; check --multus"))
        });
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)));
    let candidates: Vec<PathBuf> = beside
        .into_iter()
        .chain([Path::new("/opt/cni/bin").join(name)])
        .collect();
    candidates
        .iter()
        .find(|p| is_executable(p))
        .cloned()
        .ok_or_else(|| {
            CtlError::NotFound(format!(
                "cannot find the {name} plugin (tried {}); pass --multus PATH",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}
