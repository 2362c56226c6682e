//! Delegate plugins run as child processes of the daemon, on tokio: a time limit per
//! call, the child killed when it is exceeded, and optionally `chroot(chrootDir)` in the
//! child between fork and exec (upstream's "exec under chroot", for plugins that need
//! host files). The daemon's own threads never change root.
//!
//! This is the one module of the daemon allowed `unsafe`: `pre_exec`.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use multus_cni::exec::{DEFAULT_PATH, find_plugin, plugin_outcome};
use multus_core::seams::{DelegateExec, ExecError, ExecRequest};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::metrics::Metrics;

/// After the plugin exited, how long its pipes may stay open (a background child of
/// the plugin holding them) before what was read is taken as its output.
const PIPE_GRACE: Duration = Duration::from_millis(200);
/// Attempts to start a plugin whose binary is being replaced ("text file busy").
const SPAWN_ATTEMPTS: u32 = 5;

/// Runs delegate plugins on the tokio runtime.
#[derive(Clone, Debug)]
pub struct TokioExec {
    chroot: Option<Arc<std::ffi::CString>>,
    path_env: String,
    metrics: Arc<Metrics>,
}

impl TokioExec {
    /// A runner; `chroot` is `chrootDir`.
    pub fn new(chroot: Option<PathBuf>, metrics: Arc<Metrics>) -> Result<Self, String> {
        let chroot = match chroot {
            None => None,
            Some(dir) => {
                use std::os::unix::ffi::OsStrExt;
                let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
                    .map_err(|_| format!("chrootDir {} contains a NUL byte", dir.display()))?;
                Some(Arc::new(c))
            }
        };
        Ok(Self {
            chroot,
            path_env: std::env::var("PATH")
                .ok()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| DEFAULT_PATH.to_owned()),
            metrics,
        })
    }

    fn command(
        &self,
        binary: &PathBuf,
        request: &ExecRequest,
        cni_path: &str,
    ) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(binary);
        command
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
            .kill_on_drop(true);
        if let Some(root) = self.chroot.clone() {
            // SAFETY: the closure runs in the child between fork and exec, where only
            // async-signal-safe calls are allowed. It calls chroot(2) and chdir(2) (raw
            // system calls) on a C string prepared before the fork, and reads errno via
            // `last_os_error`: no allocation, no lock, no other state of the parent.
            unsafe {
                command.pre_exec(move || {
                    if libc::chroot(root.as_ptr()) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if libc::chdir(c"/".as_ptr()) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        command
    }

    async fn run(&self, request: &ExecRequest) -> Result<Vec<u8>, ExecError> {
        let plugin = request.plugin_type.clone();
        // As upstream: the binary is looked up in the daemon's own file system (the
        // host's plugin directory is mounted at the same path), and run at that path
        // inside the chroot.
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
        let mut attempt = 0;
        let mut child = loop {
            attempt += 1;
            match self.command(&binary, request, &cni_path).spawn() {
                Ok(child) => break child,
                // The binary is being replaced (an installer copying it): a fresh
                // command a moment later (upstream retried the spent one, in vain).
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempt < SPAWN_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(spawn_error(e)),
            }
        };
        let stdin = child.stdin.take();
        let input = request.stdin.clone();
        let writer = tokio::spawn(async move {
            if let Some(mut stdin) = stdin {
                // A plugin may exit without reading its config; that is its answer.
                let _ = stdin.write_all(&input).await;
                let _ = stdin.shutdown().await;
            }
        });
        let stdout = Captured::start(child.stdout.take());
        let stderr = Captured::start(child.stderr.take());
        let status = match tokio::time::timeout(request.timeout, child.wait()).await {
            Ok(status) => status.map_err(spawn_error)?,
            Err(_) => {
                let _ = child.kill().await;
                writer.abort();
                return Err(ExecError::Timeout {
                    plugin,
                    seconds: request.timeout.as_secs(),
                });
            }
        };
        writer.abort();
        let stdout = stdout.finish().await;
        let stderr = stderr.finish().await;
        plugin_outcome(plugin, status, stdout, &stderr)
    }
}

/// A pipe read to its end on a task, into a buffer that stays readable if the pipe
/// never ends.
struct Captured {
    buffer: Arc<Mutex<Vec<u8>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Captured {
    fn start<R: AsyncRead + Unpin + Send + 'static>(pipe: Option<R>) -> Self {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let task = pipe.map(|mut pipe| {
            let buffer = buffer.clone();
            tokio::spawn(async move {
                let mut chunk = vec![0u8; 8192];
                loop {
                    match pipe.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if let Ok(mut buffer) = buffer.lock() {
                                buffer.extend_from_slice(&chunk[..n]);
                            }
                        }
                    }
                }
            })
        });
        Self { buffer, task }
    }

    async fn finish(mut self) -> Vec<u8> {
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(PIPE_GRACE, &mut task).await.is_err()
        {
            task.abort();
        }
        self.buffer
            .lock()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default()
    }
}

impl Drop for Captured {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[async_trait]
impl DelegateExec for TokioExec {
    async fn exec(&self, request: ExecRequest) -> Result<Vec<u8>, ExecError> {
        let started = Instant::now();
        let result = self.run(&request).await;
        let installed = !matches!(result, Err(ExecError::NotFound { .. }));
        self.metrics
            .delegate_exec(&request.plugin_type, installed, started.elapsed());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use multus_core::request::Command as CniCommand;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

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
            args: "K8S_POD_INFRA_CONTAINER_ID=c1;A=b=c".into(),
            search_path: vec![dir.join("missing"), dir.to_path_buf()],
            stdin: br#"{"cniVersion":"1.0.0"}"#.to_vec(),
            timeout: Duration::from_secs(5),
        }
    }

    fn exec() -> TokioExec {
        TokioExec::new(None, Metrics::new()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn env_stdin_and_stdout_and_the_metric() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "echoer",
            r#"printf '{"env":"%s|%s|%s|%s","in":%s}' "$CNI_COMMAND" "$CNI_ARGS" "$CNI_PATH" "$HOME" "$(cat)""#,
        );
        let runner = exec();
        let out = runner.exec(request(dir.path(), "echoer")).await.unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let expected_path = format!("{}/missing:{}", dir.path().display(), dir.path().display());
        assert_eq!(
            doc["env"],
            format!("ADD|K8S_POD_INFRA_CONTAINER_ID=c1;A=b=c|{expected_path}|")
        );
        assert_eq!(doc["in"]["cniVersion"], "1.0.0");
        assert!(
            runner
                .metrics
                .render()
                .contains(r#"multus_delegate_exec_duration_seconds_count{plugin="echoer"} 1"#)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failures_timeouts_and_stray_children() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "failer",
            r#"cat >/dev/null; echo '{"code":999,"msg":"operation not supported"}'; exit 1"#,
        );
        script(dir.path(), "crasher", "echo boom >&2; exit 3");
        script(dir.path(), "sleeper", "sleep 30");
        script(
            dir.path(),
            "forker",
            "cat >/dev/null; sleep 5 & echo '{\"ok\":1}'",
        );
        let runner = exec();
        match runner.exec(request(dir.path(), "failer")).await {
            Err(ExecError::Plugin { error, .. }) => assert_eq!(error.code, 999),
            other => panic!("unexpected {other:?}"),
        }
        match runner.exec(request(dir.path(), "crasher")).await {
            Err(ExecError::Crashed { stderr, .. }) => assert_eq!(stderr, "boom"),
            other => panic!("unexpected {other:?}"),
        }
        let mut slow = request(dir.path(), "sleeper");
        slow.timeout = Duration::from_millis(200);
        let started = Instant::now();
        assert!(matches!(
            runner.exec(slow).await,
            Err(ExecError::Timeout { .. })
        ));
        assert!(started.elapsed() < Duration::from_secs(5));
        let started = Instant::now();
        let out = runner.exec(request(dir.path(), "forker")).await.unwrap();
        assert_eq!(out, b"{\"ok\":1}\n");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(matches!(
            runner.exec(request(dir.path(), "nope")).await,
            Err(ExecError::NotFound { .. })
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chroot_happens_in_the_child_only() {
        // A root with a statically usable shell is not at hand; a chroot into an empty
        // directory must fail in the child (exec of the plugin path finds nothing),
        // while the daemon's own root is untouched.
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "plugin", "echo '{}'");
        let empty = tempfile::tempdir().unwrap();
        let runner = TokioExec::new(Some(empty.path().to_owned()), Metrics::new()).unwrap();
        let err = runner
            .exec(request(dir.path(), "plugin"))
            .await
            .unwrap_err();
        assert!(matches!(err, ExecError::Spawn { .. }), "{err:?}");
        assert!(
            Path::new("/proc/self").exists(),
            "the daemon's root is unchanged"
        );
        // chroot into "/" behaves as no chroot.
        let root = TokioExec::new(Some(PathBuf::from("/")), Metrics::new()).unwrap();
        assert_eq!(
            root.exec(request(dir.path(), "plugin")).await.unwrap(),
            b"{}\n"
        );
    }
}
