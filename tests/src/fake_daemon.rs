//! A stand-in for multus-daemon's socket that answers from fixed documents, for
//! deterministic `multus-ctl daemon` output.

use std::io::{Read, Write};
use std::path::Path;

use crate::ctl::fixtures;

/// multus-daemon's socket, stood in for by a thread: it answers `GET /healthz` (200),
/// `/readyz` (200, or 500 when not `ready`), `/metrics` and `/config` (the fixtures `daemon/metrics.txt` and `daemon/config.json`), anything
/// else 404. It serves until the test process ends; the socket goes with the directory.
#[derive(Debug)]
pub struct FakeDaemon {
    dir: tempfile::TempDir,
}

impl FakeDaemon {
    /// Listen on `<tempdir>/multus.sock`.
    pub fn start(ready: bool) -> Self {
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
