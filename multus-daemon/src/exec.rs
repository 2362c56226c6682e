//! Delegate plugins run as child processes of the daemon through multus-cni's one
//! runner ([`PooledExec`]: on tokio's blocking pool, a time limit that kills the
//! plugin's whole process group, bounded output, the plugin dying with the daemon, and
//! optionally `chroot(chrootDir)` in the child before exec, upstream's "exec
//! under chroot", for plugins that need host files). The daemon's own threads never
//! change root. This module adds the per-plugin duration metric.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use multus_cni::exec::{PooledExec, ProcessExec};
use multus_core::seams::{DelegateExec, ExecError, ExecRequest};

use crate::metrics::Metrics;

/// Runs delegate plugins for the daemon.
#[derive(Clone, Debug)]
pub struct TokioExec {
    runner: PooledExec,
    metrics: Arc<Metrics>,
}

impl TokioExec {
    /// A runner; `chroot` is `chrootDir`.
    pub fn new(chroot: Option<PathBuf>, metrics: Arc<Metrics>) -> Result<Self, String> {
        let mut runner = ProcessExec::default();
        if let Some(dir) = chroot {
            runner = runner.with_chroot(&dir).map_err(|e| e.to_string())?;
        }
        Ok(Self {
            runner: PooledExec::new(runner),
            metrics,
        })
    }
}

#[async_trait]
impl DelegateExec for TokioExec {
    async fn exec(&self, request: ExecRequest) -> Result<Vec<u8>, ExecError> {
        let started = Instant::now();
        let plugin = request.plugin_type.clone();
        let result = self.runner.exec(request).await;
        // A type that is not installed is user input, not a plugin: it is counted under
        // one bounded label (see `Metrics::delegate_exec`).
        let installed = !matches!(result, Err(ExecError::NotFound { .. }));
        self.metrics
            .delegate_exec(&plugin, installed, started.elapsed());
        result
    }
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
