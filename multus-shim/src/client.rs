//! A blocking HTTP/1.1 client over the daemon's unix socket: one request per
//! connection (`Connection: close`), the response parsed with `httparse`.
//!
//! No async runtime: the shim is exec'd once per CNI call, and operator tools
//! (`multus-ctl daemon ...`) make a handful of calls. Responses with `Content-Length`,
//! `Transfer-Encoding: chunked` or a body delimited by the end of the connection are
//! all read, up to [`MAX_RESPONSE_BYTES`].

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest response read (a CNI result or a metrics page is far smaller).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Largest response head (status line and headers).
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Header slots given to httparse.
const MAX_HEADERS: usize = 64;

/// Why a request got no HTTP answer.
#[derive(Debug)]
pub enum ClientError {
    /// Nothing listens on the socket (missing file, connection refused): the daemon is
    /// not running.
    Unreachable {
        /// The socket path.
        socket: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The connection was made but the exchange failed (reset, timeout, ...).
    Io {
        /// The socket path.
        socket: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The daemon's answer is not valid HTTP/1.1.
    BadResponse {
        /// The socket path.
        socket: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable { socket, source } => write!(
                f,
                "cannot reach multus-daemon at {}: {source} (is the daemon running?)",
                socket.display()
            ),
            Self::Io { socket, source } => write!(
                f,
                "request to multus-daemon at {} failed: {source}",
                socket.display()
            ),
            Self::BadResponse { socket, reason } => write!(
                f,
                "multus-daemon at {} sent an invalid HTTP response: {reason}",
                socket.display()
            ),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unreachable { source, .. } | Self::Io { source, .. } => Some(source),
            Self::BadResponse { .. } => None,
        }
    }
}

impl ClientError {
    /// Whether the daemon is not there at all (as opposed to failing mid-request).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }

    /// Whether the socket exists but this process may not connect to it (the socket is
    /// root's, mode 0600).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Self::Unreachable { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied)
    }
}

/// An HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client of one socket.
#[derive(Clone, Debug)]
pub struct SocketClient {
    socket: PathBuf,
    timeout: Duration,
}

impl SocketClient {
    /// A client of the socket at `socket`, with a 5-minute time limit per request
    /// (an ADD may wait in the daemon's queue and run slow delegates).
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            timeout: Duration::from_secs(300),
        }
    }

    /// The same client with another time limit for reading and writing.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<HttpResponse, ClientError> {
        self.request("GET", path, None)
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &[u8]) -> Result<HttpResponse, ClientError> {
        self.request("POST", path, Some(body))
    }

    /// One request; `body` is sent as `application/json` with its length.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, ClientError> {
        let mut stream = loop {
            match UnixStream::connect(&self.socket) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => {
                    break other.map_err(|source| ClientError::Unreachable {
                        socket: self.socket.clone(),
                        source,
                    })?;
                }
            }
        };
        let io = |source: std::io::Error| ClientError::Io {
            socket: self.socket.clone(),
            source,
        };
        let timeout = Some(self.timeout).filter(|t| !t.is_zero());
        stream.set_read_timeout(timeout).map_err(io)?;
        stream.set_write_timeout(timeout).map_err(io)?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: dummy\r\nConnection: close\r\n");
        if let Some(body) = body {
            head.push_str("Content-Type: application/json\r\n");
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        } else if method == "POST" {
            head.push_str("Content-Length: 0\r\n");
        }
        head.push_str("\r\n");
        let mut message = head.into_bytes();
        message.extend_from_slice(body.unwrap_or_default());
        if let Err(e) = stream.write_all(&message).and_then(|()| stream.flush()) {
            // The daemon may answer (413, 503) and close before reading a large body:
            // its answer is still worth reading.
            if e.kind() != std::io::ErrorKind::BrokenPipe
                && e.kind() != std::io::ErrorKind::ConnectionReset
            {
                return Err(io(e));
            }
        }
        read_response(&self.socket, &mut stream)
    }
}

/// Read and parse one HTTP/1.1 response from `stream` (the daemon at `socket`, named in
/// errors). Public for the fuzz target of the response reader.
pub fn read_response(socket: &Path, stream: &mut impl Read) -> Result<HttpResponse, ClientError> {
    let head = read_head(socket, stream)?;
    let body = read_body(socket, stream, head.status, &head.headers, head.rest)?;
    Ok(HttpResponse {
        status: head.status,
        headers: head.headers,
        body,
    })
}

/// A response that is not HTTP as the client reads it.
fn bad_response(socket: &Path, reason: String) -> ClientError {
    ClientError::BadResponse {
        socket: socket.to_owned(),
        reason,
    }
}

fn io_error(socket: &Path, source: std::io::Error) -> ClientError {
    ClientError::Io {
        socket: socket.to_owned(),
        source,
    }
}

/// A response's head, and what was read past it.
struct Head {
    status: u16,
    /// Names lower-cased.
    headers: Vec<(String, String)>,
    rest: Vec<u8>,
}

/// Read up to the end of the head.
fn read_head(socket: &Path, stream: &mut impl Read) -> Result<Head, ClientError> {
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut slots);
        match response.parse(&buffer) {
            Ok(httparse::Status::Complete(len)) => {
                let headers = response
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).trim().to_owned(),
                        )
                    })
                    .collect::<Vec<_>>();
                return Ok(Head {
                    status: response.code.unwrap_or_default(),
                    headers,
                    rest: buffer.split_off(len),
                });
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => return Err(bad_response(socket, e.to_string())),
        }
        if buffer.len() > MAX_HEAD_BYTES {
            return Err(bad_response(socket, "response head too large".into()));
        }
        let n = read_retrying(stream, &mut chunk).map_err(|e| io_error(socket, e))?;
        if n == 0 {
            return Err(if buffer.is_empty() {
                io_error(
                    socket,
                    std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the daemon closed the connection without answering",
                    ),
                )
            } else {
                bad_response(socket, "connection closed inside the response head".into())
            });
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// The body after the head: chunked, of Content-Length, none, or up to the close.
fn read_body(
    socket: &Path,
    stream: &mut impl Read,
    status: u16,
    headers: &[(String, String)],
    mut rest: Vec<u8>,
) -> Result<Vec<u8>, ClientError> {
    let bad = |reason: String| bad_response(socket, reason);
    let io = |source: std::io::Error| io_error(socket, source);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let chunked =
        header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        read_to_end_limited(stream, &mut rest).map_err(io)?;
        return decode_chunked(&rest).map_err(bad);
    }
    if let Some(length) = header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| bad(format!("invalid Content-Length {length:?}")))?;
        if length > MAX_RESPONSE_BYTES {
            return Err(bad(format!("response body of {length} bytes is too large")));
        }
        let mut chunk = [0u8; 8192];
        while rest.len() < length {
            let n = read_retrying(stream, &mut chunk).map_err(io)?;
            if n == 0 {
                return Err(bad("connection closed inside the response body".into()));
            }
            rest.extend_from_slice(&chunk[..n]);
        }
        rest.truncate(length);
        return Ok(rest);
    }
    if status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(Vec::new());
    }
    read_to_end_limited(stream, &mut rest).map_err(io)?;
    Ok(rest)
}

fn read_to_end_limited(stream: &mut impl Read, into: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 8192];
    loop {
        let n = read_retrying(stream, &mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        into.extend_from_slice(&chunk[..n]);
        if into.len() > MAX_RESPONSE_BYTES {
            return Err(std::io::Error::other("response body too large"));
        }
    }
}

/// Decode a complete chunked body.
fn decode_chunked(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size line")?;
        let size_text = std::str::from_utf8(&data[..line_end]).map_err(|e| e.to_string())?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("invalid chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        // A size near usize::MAX from a hostile peer must not overflow.
        if size.checked_add(2).is_none_or(|needed| data.len() < needed) {
            return Err("truncated chunk".into());
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// `read`, retried when a signal interrupts it (the shim may run in a process that gets
/// SIGCHLD, and a timeout read is not restarted by the kernel).
fn read_retrying(stream: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match stream.read(buffer) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_chunk_size_is_an_error_not_a_panic() {
        let answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab\r\n0\r\n\r\n";
        let err = read_response(Path::new("/s"), &mut &answer[..]).unwrap_err();
        assert!(err.to_string().contains("truncated chunk"), "{err}");
        let ok = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n";
        assert_eq!(
            read_response(Path::new("/s"), &mut &ok[..]).unwrap().body,
            b"ab"
        );
    }
    use std::os::unix::net::UnixListener;

    /// A one-shot server: reads the request head and body, sends `answer`.
    fn serve_once(
        answer: &'static [u8],
    ) -> (tempfile::TempDir, PathBuf, std::thread::JoinHandle<Vec<u8>>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut received = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = stream.read(&mut chunk).unwrap();
                received.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&received).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                    if received.len() >= end + 4 + length {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            stream.write_all(answer).unwrap();
            received
        });
        (dir, path, handle)
    }

    #[test]
    fn posts_json_and_reads_a_content_length_body() {
        let (_dir, path, server) =
            serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n{\"Result\":1}");
        let response = SocketClient::new(&path)
            .post_json("/cni", br#"{"env":{}}"#)
            .unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"{\"Result\":1");
        let request = String::from_utf8(server.join().unwrap()).unwrap();
        assert!(request.starts_with("POST /cni HTTP/1.1\r\n"), "{request}");
        assert!(request.contains("Content-Length: 10\r\n"));
        assert!(request.contains("Connection: close\r\n"));
        assert!(request.ends_with("\r\n\r\n{\"env\":{}}"));
    }

    #[test]
    fn reads_chunked_and_close_delimited_bodies() {
        let (_dir, path, _server) = serve_once(
            b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"co\r\n3\r\nde\"\r\n0\r\n\r\n",
        );
        let response = SocketClient::new(&path).get("/x").unwrap();
        assert_eq!(response.status, 400);
        assert_eq!(response.body, b"{\"code\"");
        let (_dir, path, _server) = serve_once(b"HTTP/1.1 500 Internal Server Error\r\n\r\nbye");
        let response = SocketClient::new(&path).get("/readyz").unwrap();
        assert_eq!((response.status, response.text().as_str()), (500, "bye"));
    }

    #[test]
    fn a_missing_socket_is_unreachable_and_garbage_is_a_bad_response() {
        let dir = tempfile::tempdir().unwrap();
        let err = SocketClient::new(dir.path().join("none.sock"))
            .get("/healthz")
            .unwrap_err();
        assert!(err.is_unreachable(), "{err}");
        assert!(err.to_string().contains("is the daemon running?"));
        let (_dir, path, _server) = serve_once(b"SSH-2.0-nope\r\n\r\n");
        let err = SocketClient::new(&path).get("/healthz").unwrap_err();
        assert!(matches!(err, ClientError::BadResponse { .. }), "{err}");
    }
}
