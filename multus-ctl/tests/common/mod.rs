//! What the multus-ctl tests share: running the built binary with a clean environment,
//! and a work directory laid out from the fixtures.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `PATH` for every process the tests start.
pub use multus_integration_tests::binaries::SYSTEM_PATH;

/// The built `multus-ctl`.
pub fn ctl_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_multus-ctl"))
}

/// What one run did.
#[derive(Debug, Clone)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

impl Run {
    /// Assert the exit code; return stdout.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &str {
        assert_eq!(
            self.code, code,
            "exit code {} (expected {code})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        &self.stdout
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// Run `program args...` in `cwd` with only `PATH` (and `env`) in its environment.
pub fn run_in(program: &Path, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", SYSTEM_PATH)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run multus-ctl in `cwd`.
pub fn ctl(cwd: &Path, args: &[&str]) -> Run {
    run_in(&ctl_binary(), cwd, args, &[])
}

/// The fixtures directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Copy a directory tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Write an executable shell script.
pub fn write_script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A fake CNI plugin that answers VERSION with the versions 0.3.0 to 1.0.0.
pub const VERSION_PLUGIN: &str = r#"if [ "$CNI_COMMAND" = VERSION ]; then
  echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}'
  exit 0
fi
echo '{"cniVersion":"1.0.0","code":4,"msg":"fake plugin: VERSION only"}'
exit 1"#;

/// A work directory laid out from the fixtures: `multus.conf`, `nads/`, `confdir/`,
/// `cni/sandboxes/` (the fixture records) and `bin/` (fake plugins: bridge, macvlan,
/// tuning, ptp, host-local that answer VERSION, and `mute`, which answers nonsense).
pub fn workdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("mctl-").tempdir().unwrap();
    let root = dir.path();
    let fixtures = fixtures();
    std::fs::copy(fixtures.join("multus.conf"), root.join("multus.conf")).unwrap();
    copy_tree(&fixtures.join("nads"), &root.join("nads"));
    copy_tree(&fixtures.join("confdir"), &root.join("confdir"));
    copy_tree(&fixtures.join("sandboxes"), &root.join("cni/sandboxes"));
    std::fs::create_dir_all(root.join("bin")).unwrap();
    for plugin in ["bridge", "macvlan", "tuning", "ptp", "host-local"] {
        write_script(&root.join("bin").join(plugin), VERSION_PLUGIN);
    }
    write_script(&root.join("bin/mute"), "echo 'not json'");
    dir
}

/// A table with its padding and rules collapsed (runs of spaces and of `─`/`═` become
/// one), so that values of varying length (paths, ports, PIDs) do not move the columns of
/// a snapshot.
pub fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last: Option<char> = None;
    for c in text.chars() {
        if matches!(c, ' ' | '─' | '═') && last == Some(c) {
            continue;
        }
        out.push(c);
        last = Some(c);
    }
    out
}

/// A stand-in for multus-daemon's socket, for deterministic output: a thread answers
/// `GET /healthz` (200), `/readyz` (200, or 500 when not `ready`), `/metrics` and
/// `/config` (the fixtures `daemon/metrics.txt` and `daemon/config.json`), anything
/// else 404. It serves until the test process ends; the socket goes with the directory.
#[derive(Debug)]
pub struct FakeDaemon {
    dir: tempfile::TempDir,
}

impl FakeDaemon {
    /// Listen on `<tempdir>/multus.sock`.
    pub fn start(ready: bool) -> Self {
        use std::io::{Read, Write};
        let dir = tempfile::Builder::new()
            .prefix("mctl-fake-daemon-")
            .tempdir()
            .unwrap();
        let listener =
            std::os::unix::net::UnixListener::bind(dir.path().join("multus.sock")).unwrap();
        let metrics = std::fs::read_to_string(fixtures().join("daemon/metrics.txt")).unwrap();
        let config = std::fs::read_to_string(fixtures().join("daemon/config.json")).unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let (status, kind, body) = match path.as_str() {
                    "/healthz" => ("200 OK", "text/plain", String::new()),
                    "/readyz" if ready => ("200 OK", "text/plain", String::new()),
                    "/readyz" => ("500 Internal Server Error", "text/plain", String::new()),
                    "/metrics" => (
                        "200 OK",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        metrics.clone(),
                    ),
                    "/config" => ("200 OK", "application/json", config.clone()),
                    _ => ("404 Not Found", "text/plain", String::new()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { dir }
    }

    /// The socket directory (`--socket-dir`).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }
}
