//! Per-node identities (`perNodeCertificate`): the names every node identity uses and
//! the daemon configuration's `perNodeCertificate` object. Pure: obtaining, storing and
//! rotating the certificate is `multus_cni::identity`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

/// The group every per-node identity belongs to (the certificate's organization).
pub const GROUP: &str = "system:multus";
/// The prefix of a per-node identity's user name (`system:multus:<node>`).
pub const USER_PREFIX: &str = "system:multus:";
/// The signer of client certificates for the API server.
pub const SIGNER: &str = "kubernetes.io/kube-apiserver-client";
/// The file in `certDir` holding the current certificate and its key (upstream's name).
pub const CURRENT_FILE: &str = "multus-client-current.pem";
/// Upstream's default `certDuration`.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(600);
/// Upstream's default `certDir` (of the daemon's container).
pub const DEFAULT_CERT_DIR: &str = "/etc/cni/multus/certs";
/// How long to wait for a CSR to be approved and signed (upstream: 2 minutes).
pub const DEFAULT_ISSUE_TIMEOUT: Duration = Duration::from_secs(120);

/// The user name of `node`'s identity.
pub fn user_name(node: &str) -> String {
    format!("{USER_PREFIX}{node}")
}

/// `perNodeCertificate`, as upstream's daemon configuration spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerNodeCertificate {
    /// `bootstrapKubeconfig`: the credentials that may create CSRs (and nothing else is
    /// done with them once a certificate is issued); `None`: the in-cluster service
    /// account (multus-rs; upstream requires the key).
    pub bootstrap_kubeconfig: Option<PathBuf>,
    /// `certDir`: where the key and the current certificate live (0700, files 0600).
    pub cert_dir: PathBuf,
    /// `certDuration`: the lifetime asked for (`expirationSeconds` of the CSR).
    pub cert_duration: Duration,
}

impl PerNodeCertificate {
    /// Parse the `perNodeCertificate` object; `Ok(None)` when absent or not enabled.
    /// The error names the sub-key that is wrong.
    pub fn from_json(value: &Value) -> Result<Option<Self>, String> {
        let Value::Object(object) = value else {
            return Err(format!("expected an object, found {value}"));
        };
        let string = |key: &str| -> Result<Option<String>, String> {
            match object.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(format!("`{key}`: expected a string, found {other}")),
            }
        };
        match object.get("enabled") {
            None | Some(Value::Null | Value::Bool(false)) => return Ok(None),
            Some(Value::Bool(true)) => {}
            Some(other) => return Err(format!("`enabled`: expected true or false, found {other}")),
        }
        let bootstrap_kubeconfig = string("bootstrapKubeconfig")?;
        let cert_dir = string("certDir")?.unwrap_or_else(|| DEFAULT_CERT_DIR.to_owned());
        let cert_duration = match string("certDuration")? {
            None => DEFAULT_DURATION,
            Some(text) => parse_duration(&text).map_err(|e| format!("`certDuration`: {e}"))?,
        };
        Ok(Some(Self {
            bootstrap_kubeconfig: bootstrap_kubeconfig.map(PathBuf::from),
            cert_dir: PathBuf::from(cert_dir),
            cert_duration,
        }))
    }

    /// The file holding the current certificate and key.
    pub fn current_file(&self) -> PathBuf {
        self.cert_dir.join(CURRENT_FILE)
    }
}

/// Parse a Go duration (`10m`, `1h30m`, `90s`, `1.5h`): at least 1 s, at most 1 year.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration such as 10m, 1h or 24h");
    let mut total = 0f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..number_end].parse().map_err(|_| bad())?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(bad()),
        };
        total += number * scale;
        rest = &rest[unit_end..];
    }
    if !(1.0..=365.0 * 86_400.0).contains(&total) {
        return Err(format!("{text:?} must be from 1s to 8760h"));
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_as_go_writes_them() {
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        for bad in ["", "10", "m", "10d", "-1h", "0s", "9000h", "1h x"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_object_as_upstream_spells_it() {
        assert_eq!(PerNodeCertificate::from_json(&json!({})).unwrap(), None);
        assert_eq!(
            PerNodeCertificate::from_json(&json!({"enabled": false, "certDir": 3})).unwrap(),
            None
        );
        let on = PerNodeCertificate::from_json(&json!({
            "enabled": true, "bootstrapKubeconfig": "/b", "certDir": "/c", "certDuration": "1h"
        }))
        .unwrap()
        .unwrap();
        assert_eq!(on.cert_duration, Duration::from_secs(3600));
        assert_eq!(
            on.current_file(),
            PathBuf::from("/c/multus-client-current.pem")
        );
        let defaults =
            PerNodeCertificate::from_json(&json!({"enabled": true, "bootstrapKubeconfig": "/b"}))
                .unwrap()
                .unwrap();
        assert_eq!(defaults.cert_duration, DEFAULT_DURATION);
        assert_eq!(defaults.bootstrap_kubeconfig, Some(PathBuf::from("/b")));
        let in_cluster = PerNodeCertificate::from_json(&json!({"enabled": true}))
            .unwrap()
            .unwrap();
        assert_eq!(in_cluster.bootstrap_kubeconfig, None);
        assert_eq!(defaults.cert_dir, PathBuf::from(DEFAULT_CERT_DIR));
        for bad in [
            json!(true),
            json!({"enabled": "yes"}),
            json!({"enabled": true, "bootstrapKubeconfig": "/b", "certDuration": "soon"}),
        ] {
            assert!(PerNodeCertificate::from_json(&bad).is_err(), "{bad}");
        }
    }
}
