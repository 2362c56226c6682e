//! Delegate plugins run as child processes, as a CNI runtime runs them, through the
//! one runner in [`process`]: [`ProcessExec`] on the calling thread (the thin plugin),
//! [`PooledExec`] on tokio's blocking pool (the daemon).

mod child;
pub mod process;
mod spawn;

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;

use async_trait::async_trait;
use multus_core::cni::CniError;
use multus_core::seams::{DelegateExec, ExecError, ExecRequest};
use multus_host::is_executable;

pub use process::DEFAULT_OUTPUT_LIMIT;
use process::{End, Spawn};

/// `PATH` given to plugins when multus itself has none.
pub use multus_host::DEFAULT_PATH;
/// How much of a failing plugin's stderr is kept in the error.
const STDERR_LIMIT: usize = 4096;

/// The `CNI_*` variables of one call, as a runtime sets them.
#[derive(Clone, Copy, Debug, Default)]
pub struct CniEnv<'a> {
    /// `CNI_COMMAND`.
    pub command: &'a str,
    /// `CNI_CONTAINERID`.
    pub container_id: &'a str,
    /// `CNI_NETNS`.
    pub netns: &'a str,
    /// `CNI_IFNAME`.
    pub ifname: &'a str,
    /// `CNI_ARGS`.
    pub args: &'a str,
    /// `CNI_PATH`.
    pub path: &'a str,
}

impl<'a> CniEnv<'a> {
    /// The variables, by name.
    pub fn vars(&self) -> [(&'static str, &'a str); 6] {
        [
            ("CNI_COMMAND", self.command),
            ("CNI_CONTAINERID", self.container_id),
            ("CNI_NETNS", self.netns),
            ("CNI_IFNAME", self.ifname),
            ("CNI_ARGS", self.args),
            ("CNI_PATH", self.path),
        ]
    }
}

/// Runs plugins with the runner of [`process`], blocking the calling thread.
///
/// The child's environment is built explicitly: the `CNI_*` variables of the call and
/// `PATH` (plugins such as bridge and portmap run `iptables`).
#[derive(Clone, Debug)]
pub struct ProcessExec {
    path_env: String,
    chroot: Option<Arc<CStr>>,
    output_limit: usize,
}

impl Default for ProcessExec {
    fn default() -> Self {
        Self::new(std::env::var("PATH").ok())
    }
}

/// `chrootDir` cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("chrootDir {0} contains a NUL byte")]
pub struct ChrootError(pub PathBuf);

impl ProcessExec {
    /// A runner passing `path_env` (or a standard default) as the plugins' `PATH`.
    pub fn new(path_env: Option<String>) -> Self {
        Self {
            path_env: path_env
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| DEFAULT_PATH.to_owned()),
            chroot: None,
            output_limit: DEFAULT_OUTPUT_LIMIT,
        }
    }

    /// Run plugins under `chroot(dir)` (upstream's "exec under chroot", `chrootDir`):
    /// only the child changes root, before exec.
    pub fn with_chroot(mut self, dir: &Path) -> Result<Self, ChrootError> {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| ChrootError(dir.to_owned()))?;
        self.chroot = Some(Arc::from(c));
        Ok(self)
    }

    /// Keep at most `limit` bytes of each of stdout and stderr (default
    /// [`DEFAULT_OUTPUT_LIMIT`]); a plugin printing more fails.
    pub fn with_output_limit(mut self, limit: usize) -> Self {
        self.output_limit = limit;
        self
    }

    /// Run one call on this thread.
    pub fn run(&self, request: &ExecRequest) -> Result<Vec<u8>, ExecError> {
        let plugin = request.plugin_type.clone();
        // As upstream: the binary is looked up in multus' own file system (in the
        // daemon the host's plugin directory is mounted at the same path), and run at
        // that path inside the chroot, if any.
        let binary = find_plugin(&request.plugin_type, &request.search_path).ok_or_else(|| {
            ExecError::NotFound {
                plugin: plugin.clone(),
                searched: request.search_path.clone(),
            }
        })?;
        let cni_path = std::env::join_paths(&request.search_path)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cni = CniEnv {
            command: request.command.as_str(),
            container_id: &request.container_id,
            netns: &request.netns,
            ifname: &request.ifname,
            args: &request.args,
            path: &cni_path,
        };
        let [a, b, c, d, e, f] = cni.vars();
        let env = [a, b, c, d, e, f, ("PATH", self.path_env.as_str())];
        let finished = process::run(&Spawn {
            binary: &binary,
            env: &env,
            stdin: &request.stdin,
            timeout: request.timeout,
            output_limit: self.output_limit,
            chroot: self.chroot.as_ref(),
        })
        .map_err(|e| ExecError::Spawn {
            plugin: plugin.clone(),
            reason: e.to_string(),
        })?;
        match finished.end {
            End::Exited(status) => {
                plugin_outcome(plugin, status, finished.stdout, &finished.stderr)
            }
            End::TimedOut => Err(ExecError::Timeout {
                plugin,
                seconds: request.timeout.as_secs(),
            }),
            End::OutputLimit(stream) => Err(ExecError::OutputTooLarge {
                plugin,
                stream: stream.name().to_owned(),
                limit: self.output_limit,
            }),
        }
    }
}

#[async_trait]
impl DelegateExec for ProcessExec {
    async fn exec(&self, request: ExecRequest) -> Result<Vec<u8>, ExecError> {
        self.run(&request)
    }

    /// On a thread of its own, which starts and reaps the plugin (so its parent-death
    /// signal fires only if multus dies) and then ends.
    async fn exec_concurrently(&self, request: ExecRequest) -> Result<Vec<u8>, ExecError> {
        let runner = self.clone();
        let plugin = request.plugin_type.clone();
        let (done, answer) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("delegate".into())
            .spawn(move || {
                let _ = done.send(runner.run(&request));
            });
        let failed = |reason: String| ExecError::Spawn {
            plugin: plugin.clone(),
            reason,
        };
        if let Err(e) = spawned {
            return Err(failed(format!("cannot start a runner thread: {e}")));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(failed("the runner thread failed".into())))
    }
}

/// [`ProcessExec`] on tokio's blocking thread pool, for a multi-threaded runtime (the
/// daemon). Each call starts and reaps its plugin on one pool thread, so the plugin's
/// parent-death signal fires only when the process dies, never when an idle pool
/// thread retires.
#[derive(Clone, Debug)]
pub struct PooledExec {
    inner: Arc<ProcessExec>,
}

impl PooledExec {
    /// Run `inner` on the blocking pool.
    pub fn new(inner: ProcessExec) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }
}

#[async_trait]
impl DelegateExec for PooledExec {
    async fn exec(&self, request: ExecRequest) -> Result<Vec<u8>, ExecError> {
        let inner = self.inner.clone();
        let plugin = request.plugin_type.clone();
        tokio::task::spawn_blocking(move || inner.run(&request))
            .await
            .unwrap_or_else(|e| {
                Err(ExecError::Spawn {
                    plugin,
                    reason: format!("the runner thread failed: {e}"),
                })
            })
    }
}

/// What a finished plugin call means: its stdout on success, else its CNI error, else
/// a crash with its stderr (or stdout), bounded.
pub fn plugin_outcome(
    plugin: String,
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: &[u8],
) -> Result<Vec<u8>, ExecError> {
    if !stderr.is_empty() {
        tracing::debug!(plugin, stderr = %String::from_utf8_lossy(stderr), "plugin stderr");
    }
    if status.success() {
        return Ok(stdout);
    }
    if let Some(error) = CniError::from_plugin_output(&stdout) {
        return Err(ExecError::Plugin { plugin, error });
    }
    let mut text = String::from_utf8_lossy(stderr).trim().to_owned();
    if text.is_empty() {
        text = String::from_utf8_lossy(&stdout).trim().to_owned();
    }
    text.truncate(floor_char_boundary(&text, STDERR_LIMIT));
    Err(ExecError::Crashed {
        plugin,
        status: status.to_string(),
        stderr: text,
    })
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

fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use multus_core::request::Command as CniCommand;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
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
    fn background_process_holding_stdout_does_not_stall() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "forker",
            "cat >/dev/null; sleep 5 & echo '{\"ok\":1}'",
        );
        let started = std::time::Instant::now();
        let out = ProcessExec::default()
            .run(&request(dir.path(), "forker"))
            .unwrap();
        assert_eq!(out, b"{\"ok\":1}\n");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn large_stdin_and_stdout_pass_through() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "catter",
            "cat; head -c 300000 /dev/zero | tr '\\0' x >&2",
        );
        let mut req = request(dir.path(), "catter");
        let big = format!("{{\"pad\":\"{}\"}}", "y".repeat(200_000));
        req.stdin = big.clone().into_bytes();
        let out = ProcessExec::default().run(&req).unwrap();
        assert_eq!(out, big.into_bytes());
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

    #[test]
    fn output_over_the_limit_fails_the_call() {
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "loud", "cat >/dev/null; yes '{}'");
        let err = ProcessExec::default()
            .with_output_limit(1024 * 1024)
            .run(&request(dir.path(), "loud"))
            .unwrap_err();
        assert!(
            matches!(err, ExecError::OutputTooLarge { ref stream, limit: 1_048_576, .. } if stream == "stdout"),
            "{err:?}"
        );
        assert_eq!(
            err.cni_code(),
            multus_core::cni::ErrorCode::DelegateFailed.code()
        );
    }

    #[test]
    fn concurrent_calls_overlap_without_a_runtime() {
        let dir = tempfile::tempdir().unwrap();
        // Each waits until the other has started: only overlapping calls finish.
        script(
            dir.path(),
            "meet",
            &format!(
                "cat >/dev/null; touch {d}/$CNI_IFNAME; i=0; while [ ! -e {d}/net1 ] || [ ! -e {d}/net2 ]; do i=$((i+1)); [ $i -gt 500 ] && exit 1; sleep 0.01; done; echo '{{}}'",
                d = dir.path().display()
            ),
        );
        let exec = ProcessExec::default();
        let mut a = request(dir.path(), "meet");
        let mut b = a.clone();
        a.ifname = "net1".into();
        b.ifname = "net2".into();
        let (a, b) = pollster::block_on(futures_util::future::join(
            exec.exec_concurrently(a),
            exec.exec_concurrently(b),
        ));
        assert_eq!(a.unwrap(), b"{}\n");
        assert_eq!(b.unwrap(), b"{}\n");
    }

    #[tokio::test]
    async fn pooled_runs_on_the_blocking_pool() {
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "plugin", "cat >/dev/null; echo '{}'");
        let pooled = PooledExec::new(ProcessExec::default());
        let (a, b) = tokio::join!(
            pooled.exec(request(dir.path(), "plugin")),
            pooled.exec(request(dir.path(), "plugin"))
        );
        assert_eq!(a.unwrap(), b"{}\n");
        assert_eq!(b.unwrap(), b"{}\n");
    }
}
