//! Which cluster source the configuration asks for, and the kube-rs client for it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use multus_core::config::MultusConf;

/// Where pods and NADs come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiSource {
    /// The API server named by this kubeconfig (`kubeconfig` key).
    Kubeconfig(PathBuf),
    /// NAD manifests in this directory, no API server (`networkAttachmentDir`).
    Files(PathBuf),
    /// The API server of the cluster this process runs in (`KUBERNETES_SERVICE_HOST`
    /// and `KUBERNETES_SERVICE_PORT` set, service-account token and CA mounted).
    InCluster,
    /// None: static delegates and config-file networks only.
    None,
}

impl ApiSource {
    /// The source for `conf`, in this order: `kubeconfig`, `networkAttachmentDir`, the
    /// in-cluster environment (`env` is the process environment), none.
    pub fn for_conf(conf: &MultusConf, env: impl Fn(&str) -> Option<String>) -> Self {
        Self::select(
            conf.kubeconfig.as_deref(),
            conf.network_attachment_dir.as_deref(),
            env,
        )
    }

    /// The one selection rule shared by the thin plugin and the daemon: a `kubeconfig`
    /// wins, then a `networkAttachmentDir`, then the in-cluster environment (`env` reads
    /// the process environment), else none.
    pub fn select(
        kubeconfig: Option<&Path>,
        network_attachment_dir: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Self {
        if let Some(path) = kubeconfig {
            return Self::Kubeconfig(path.to_owned());
        }
        if let Some(dir) = network_attachment_dir {
            return Self::Files(dir.to_owned());
        }
        let set = |key: &str| env(key).is_some_and(|v| !v.is_empty());
        if set("KUBERNETES_SERVICE_HOST") && set("KUBERNETES_SERVICE_PORT") {
            return Self::InCluster;
        }
        Self::None
    }

    /// Whether the source is a Kubernetes API server.
    pub fn is_kubernetes(&self) -> bool {
        matches!(self, Self::Kubeconfig(_) | Self::InCluster)
    }
}

/// The kube-rs configuration of a Kubernetes source.
///
/// Bearer tokens given as files (`tokenFile` in a kubeconfig, the in-cluster
/// service-account token) are read by kube-rs when the client is made and re-read
/// every minute after that; the thin plugin makes a client per call, so a rotated
/// bound token is always picked up (upstream #852).
pub async fn kube_config(source: &ApiSource, timeout: Duration) -> Result<kube::Config, String> {
    let mut config = match source {
        ApiSource::Kubeconfig(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| format!("cannot read kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| format!("invalid kubeconfig {}: {e}", path.display()))?
        }
        ApiSource::InCluster => kube::Config::incluster()
            .map_err(|e| format!("cannot use the in-cluster configuration: {e}"))?,
        ApiSource::Files(_) | ApiSource::None => {
            return Err("no Kubernetes API is configured".to_owned());
        }
    };
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    // Our own retry policy (`apiRetries`, Retry-After, NotFound vs transient) decides;
    // kube's built-in retry of 429/503/504 would multiply the attempts and the time.
    config.default_retry = false;
    Ok(config)
}

/// A client for a Kubernetes source (needs a tokio runtime).
pub async fn connect(source: &ApiSource, timeout: Duration) -> Result<kube::Client, String> {
    let config = kube_config(source, timeout).await?;
    kube::Client::try_from(config).map_err(|e| format!("cannot make a Kubernetes client: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(extra: &str) -> MultusConf {
        MultusConf::parse(format!(r#"{{"delegates":[{{"type":"a"}}]{extra}}}"#).as_bytes()).unwrap()
    }

    #[test]
    fn kubeconfig_wins_then_files_then_in_cluster() {
        let in_cluster = |k: &str| match k {
            "KUBERNETES_SERVICE_HOST" => Some("10.0.0.1".to_owned()),
            "KUBERNETES_SERVICE_PORT" => Some("443".to_owned()),
            _ => None,
        };
        let both = conf(r#","kubeconfig":"/k","networkAttachmentDir":"/n""#);
        assert_eq!(
            ApiSource::for_conf(&both, in_cluster),
            ApiSource::Kubeconfig("/k".into())
        );
        let files = conf(r#","networkAttachmentDir":"/n""#);
        assert_eq!(
            ApiSource::for_conf(&files, in_cluster),
            ApiSource::Files("/n".into())
        );
        assert_eq!(
            ApiSource::for_conf(&conf(""), in_cluster),
            ApiSource::InCluster
        );
        assert_eq!(ApiSource::for_conf(&conf(""), |_| None), ApiSource::None);
        let half = |k: &str| (k == "KUBERNETES_SERVICE_HOST").then(|| "10.0.0.1".to_owned());
        assert_eq!(ApiSource::for_conf(&conf(""), half), ApiSource::None);
    }
}
