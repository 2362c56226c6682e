//! `multus-node probe daemon`: one HTTP/1.1 GET to the thick daemon over its unix
//! socket, for the DaemonSet's exec liveness and readiness probes (the daemon serves
//! `/healthz` and `/readyz` on the socket only, which kubelet's HTTP probes cannot
//! reach).

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::error::NodeError;

/// Largest answer read (status line and a short body are all that matter).
const MAX_ANSWER: u64 = 64 * 1024;

/// GET `path` over the socket; `Ok` with the status line when the answer is 200.
pub fn daemon(socket: &Path, path: &str, timeout: Duration) -> Result<String, NodeError> {
    if !path.starts_with('/') || path.contains(char::is_whitespace) {
        return Err(NodeError::Usage(format!(
            "--path {path:?} must be a URL path"
        )));
    }
    let fail = |what: String| NodeError::Probe(format!("{} {path}: {what}", socket.display()));
    let mut stream =
        UnixStream::connect(socket).map_err(|e| fail(format!("cannot connect: {e}")))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| fail(e.to_string()))?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: multus-daemon\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| fail(format!("cannot send: {e}")))?;
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .map_err(|e| fail(format!("no answer: {e}")))?;
    let text = String::from_utf8_lossy(&answer);
    let status_line = text.lines().next().unwrap_or_default().trim().to_owned();
    let code = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| fail(format!("not an HTTP answer: {status_line:?}")))?;
    if code == 200 {
        Ok(status_line)
    } else {
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().trim();
        Err(fail(format!("{status_line} {body}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn serve_once(listener: UnixListener, answer: &'static str) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let n = stream.read(&mut buf).unwrap();
            stream.write_all(answer.as_bytes()).unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        })
    }

    #[test]
    fn two_hundred_is_success_anything_else_fails() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("multus.sock");
        let server = serve_once(
            UnixListener::bind(&socket).unwrap(),
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        );
        let ok = daemon(&socket, "/readyz", Duration::from_secs(2)).unwrap();
        assert_eq!(ok, "HTTP/1.1 200 OK");
        assert!(
            server
                .join()
                .unwrap()
                .starts_with("GET /readyz HTTP/1.1\r\n")
        );

        std::fs::remove_file(&socket).unwrap();
        let server = serve_once(
            UnixListener::bind(&socket).unwrap(),
            "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 13\r\n\r\nshutting down",
        );
        let err = daemon(&socket, "/readyz", Duration::from_secs(2)).unwrap_err();
        assert!(err.to_string().contains("500"), "{err}");
        assert!(err.to_string().contains("shutting down"), "{err}");
        server.join().unwrap();

        let err = daemon(
            &dir.path().join("none.sock"),
            "/healthz",
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(err.to_string().contains("cannot connect"), "{err}");
    }
}
