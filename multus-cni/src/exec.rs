//! Delegate plugins run as child processes, as a CNI runtime runs them.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;

use async_trait::async_trait;
use multus_core::cni::CniError;
use multus_core::seams::{DelegateExec, ExecError, ExecRequest};
use wait_timeout::ChildExt;

/// `PATH` given to plugins when multus itself has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How much of a failing plugin's stderr is kept in the error.
const STDERR_LIMIT: usize = 4096;

/// Runs plugins with `std::process`, blocking the calling thread.
///
/// The child's environment is built explicitly: the `CNI_*` variables of the call and
/// `PATH` (plugins such as bridge and portmap run `iptables`).
#[derive(Clone, Debug)]
pub struct ProcessExec {
    path_env: String,
}

impl Default for ProcessExec {
    fn default() -> Self {
        Self::new(std::env::var("PATH").ok())
    }
}

impl ProcessExec {
    /// A runner passing `path_env` (or a standard default) as the plugins' `PATH`.
    pub fn new(path_env: Option<String>) -> Self {
        Self {
            path_env: path_env
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| DEFAULT_PATH.to_owned()),
        }
    }

    fn run(&self, request: &ExecRequest) -> Result<Vec<u8>, ExecError> {
        let plugin = request.plugin_type.clone();
        let binary = find_plugin(&request.plugin_type, &request.search_path).ok_or_else(|| {
            ExecError::NotFound {
                plugin: plugin.clone(),
                searched: request.search_path.clone(),
            }
        })?;
        let cni_path = std::env::join_paths(&request.search_path)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let spawn_error = |e: std::io::Error| ExecError::Spawn {
            plugin: plugin.clone(),
            reason: e.to_string(),
        };
        let mut child = Command::new(&binary)
            .env_clear()
            .env("CNI_COMMAND", request.command.as_str())
            .env("CNI_CONTAINERID", &request.container_id)
            .env("CNI_NETNS", &request.netns)
            .env("CNI_IFNAME", &request.ifname)
            .env("CNI_ARGS", &request.args)
            .env("CNI_PATH", cni_path)
            .env("PATH", &self.path_env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        let readers = Readers::start(&mut child);
        if let Some(mut stdin) = child.stdin.take() {
            // A plugin may exit without reading stdin; that is its answer, not our error.
            let _ = stdin.write_all(&request.stdin);
        }
        let status = match child.wait_timeout(request.timeout).map_err(spawn_error)? {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ExecError::Timeout {
                    plugin,
                    seconds: request.timeout.as_secs(),
                });
            }
        };
        let (stdout, stderr) = readers.finish();
        if !stderr.is_empty() {
            tracing::debug!(plugin, stderr = %String::from_utf8_lossy(&stderr), "plugin stderr");
        }
        if status.success() {
            return Ok(stdout);
        }
        if let Some(error) = CniError::from_plugin_output(&stdout) {
            return Err(ExecError::Plugin { plugin, error });
        }
        let mut stderr_text = String::from_utf8_lossy(&stderr).trim().to_owned();
        if stderr_text.is_empty() {
            stderr_text = String::from_utf8_lossy(&stdout).trim().to_owned();
        }
        stderr_text.truncate(floor_char_boundary(&stderr_text, STDERR_LIMIT));
        Err(ExecError::Crashed {
            plugin,
            status: status.to_string(),
            stderr: stderr_text,
        })
    }
}

#[async_trait]
impl DelegateExec for ProcessExec {
    async fn exec(&self, request: ExecRequest) -> Result<Vec<u8>, ExecError> {
        self.run(&request)
    }
}

/// The first executable file named `plugin_type` in `search_path`.
pub fn find_plugin(plugin_type: &str, search_path: &[PathBuf]) -> Option<PathBuf> {
    if plugin_type.is_empty() || plugin_type.contains('/') || plugin_type == ".." {
        return None;
    }
    search_path
        .iter()
        .map(|dir| dir.join(plugin_type))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

/// Threads draining the child's stdout and stderr so a chatty plugin never blocks.
struct Readers {
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Readers {
    fn start(child: &mut Child) -> Self {
        Self {
            stdout: child.stdout.take().map(spawn_reader::<ChildStdout>),
            stderr: child.stderr.take().map(spawn_reader::<ChildStderr>),
        }
    }

    fn finish(self) -> (Vec<u8>, Vec<u8>) {
        let join =
            |h: Option<JoinHandle<Vec<u8>>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
        (join(self.stdout), join(self.stderr))
    }
}

fn spawn_reader<R: Read + Send + 'static>(mut reader: R) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buffer = Vec::new();
        let _ = reader.read_to_end(&mut buffer);
        buffer
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use multus_core::request::Command as CniCommand;
    use std::time::Duration;

    fn script(dir: &Path, name: &str, body: &str) {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn request(dir: &Path, plugin: &str) -> ExecRequest {
        ExecRequest {
            plugin_type: plugin.into(),
            command: CniCommand::Add,
            container_id: "c1".into(),
            netns: "/var/run/netns/x".into(),
            ifname: "net1".into(),
            args: "A=b=c".into(),
            search_path: vec![dir.join("missing"), dir.to_path_buf()],
            stdin: br#"{"cniVersion":"1.0.0"}"#.to_vec(),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn plugin_gets_env_and_stdin_and_returns_stdout() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "echoer",
            r#"printf '{"env":"%s|%s|%s|%s|%s","in":%s}' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_IFNAME" "$CNI_ARGS" "$HOME" "$(cat)""#,
        );
        let out = ProcessExec::new(Some("/usr/bin:/bin".into()))
            .run(&request(dir.path(), "echoer"))
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc["env"], "ADD|c1|net1|A=b=c|");
        assert_eq!(doc["in"]["cniVersion"], "1.0.0");
    }

    #[test]
    fn cni_error_output_is_returned_as_plugin_error() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "failer",
            r#"cat >/dev/null; echo '{"code":999,"msg":"operation not supported"}'; exit 1"#,
        );
        let err = ProcessExec::default()
            .run(&request(dir.path(), "failer"))
            .unwrap_err();
        match err {
            ExecError::Plugin { error, .. } => {
                assert_eq!(error.code, 999);
                assert_eq!(error.msg, "operation not supported");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn crash_without_error_document_keeps_stderr() {
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "crasher", "echo boom >&2; exit 3");
        let err = ProcessExec::default()
            .run(&request(dir.path(), "crasher"))
            .unwrap_err();
        assert!(
            matches!(err, ExecError::Crashed { ref stderr, .. } if stderr == "boom"),
            "{err:?}"
        );
    }

    #[test]
    fn slow_plugin_is_killed_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "sleeper", "sleep 30");
        let mut req = request(dir.path(), "sleeper");
        req.timeout = Duration::from_millis(200);
        let started = std::time::Instant::now();
        let err = ProcessExec::default().run(&req).unwrap_err();
        assert!(matches!(err, ExecError::Timeout { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn missing_and_unsafe_plugins_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = ProcessExec::default()
            .run(&request(dir.path(), "nope"))
            .unwrap_err();
        assert!(matches!(err, ExecError::NotFound { .. }));
        assert_eq!(find_plugin("../sh", &[PathBuf::from("/bin")]), None);
        assert_eq!(find_plugin("..", &[PathBuf::from("/bin")]), None);
    }
}
