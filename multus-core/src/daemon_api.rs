//! The wire types of the daemon's socket API, exactly as upstream's shim and daemon
//! exchange them (upstream `pkg/server/api`).
//!
//! `POST /cni` and `POST /delegate` take a [`Request`]: the CNI environment as a string
//! map and the CNI config (the plugin's stdin) as base64 (Go encodes `[]byte` so), plus
//! [`InterfaceAttributes`] for `/delegate`. ADD answers 200 with a [`Response`] whose
//! `Result` is the CNI 1.0.0 result; the other commands answer 200 with an empty body.
//! Failures answer a non-200 status with a CNI error document as the body.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The socket's file name inside the socket directory.
pub const SOCKET_NAME: &str = "multus.sock";
/// The default socket directory of the daemon and the shim (`socketDir`,
/// `daemonSocketDir`).
pub const DEFAULT_SOCKET_DIR: &str = "/run/multus/";
/// The full CNI request.
pub const CNI_PATH: &str = "/cni";
/// Hot-plug of one delegate into a running pod.
pub const DELEGATE_PATH: &str = "/delegate";
/// Liveness: 200 while the daemon runs.
pub const HEALTHZ_PATH: &str = "/healthz";
/// Readiness: 200, or 500 once the daemon is shutting down.
pub const READYZ_PATH: &str = "/readyz";
/// Prometheus metrics, the same page as on `metricsPort` (multus-rs).
pub const METRICS_PATH: &str = "/metrics";
/// The daemon's effective configuration and the config manager's state (multus-rs).
pub const CONFIG_PATH: &str = "/config";
/// Largest request body the daemon accepts (bigger ones get 413).
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// `<dir>/multus.sock`.
pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join(SOCKET_NAME)
}

/// A request to `/cni` or `/delegate`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The plugin's environment (`CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`,
    /// `CNI_IFNAME`, `CNI_ARGS`, `CNI_PATH`, and whatever else the runtime set).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The plugin's stdin, base64 on the wire.
    #[serde(
        default,
        serialize_with = "serialize_base64",
        deserialize_with = "deserialize_base64"
    )]
    pub config: Vec<u8>,
    /// `/delegate` only: what to ask of the new interface.
    #[serde(
        rename = "interfaceAttributes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub interface_attributes: Option<InterfaceAttributes>,
}

/// `interfaceAttributes` of a `/delegate` request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InterfaceAttributes {
    /// Static IPs (`ips` runtimeConfig and legacy `IP=` CNI_ARGS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    /// MAC address (`mac` runtimeConfig and legacy `MAC=` CNI_ARGS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Merged into `args.cni` of the delegate config.
    #[serde(rename = "cni-args", default, skip_serializing_if = "Option::is_none")]
    pub cni_args: Option<Map<String, Value>>,
}

/// The body of a successful ADD.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The cluster network's result, as CNI 1.0.0. (Go decodes keys case-insensitively;
    /// `result` is accepted too.)
    #[serde(rename = "Result", alias = "result", default)]
    pub result: Option<Value>,
}

fn serialize_base64<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn deserialize_base64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text: Option<String> = Option::deserialize(deserializer)?;
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    decode_base64(&text).map_err(serde::de::Error::custom)
}

/// Decode standard base64, padded or not (Go writes it padded).
pub fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let trimmed = text.trim();
    base64::engine::general_purpose::STANDARD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
        .map_err(|e| format!("config is not base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_request_format_round_trips() {
        let wire = r#"{"env":{"CNI_COMMAND":"ADD","CNI_ARGS":"A=b=c"},
            "config":"eyJjbmlWZXJzaW9uIjoiMC4zLjEifQ==",
            "interfaceAttributes":{"ips":["10.1.1.5/24"],"mac":"02:00:00:00:00:01","cni-args":{"k":"v"}}}"#;
        let request: Request = serde_json::from_str(wire).unwrap();
        assert_eq!(request.env["CNI_ARGS"], "A=b=c");
        assert_eq!(request.config, br#"{"cniVersion":"0.3.1"}"#);
        let attributes = request.interface_attributes.clone().unwrap();
        assert_eq!(attributes.ips, vec!["10.1.1.5/24"]);
        assert_eq!(attributes.cni_args.unwrap()["k"], "v");
        let again: Request =
            serde_json::from_value(serde_json::to_value(&request).unwrap()).unwrap();
        assert_eq!(again, request);
        let encoded = serde_json::to_value(&request).unwrap();
        assert_eq!(encoded["config"], "eyJjbmlWZXJzaW9uIjoiMC4zLjEifQ==");
    }

    #[test]
    fn config_may_be_null_missing_or_unpadded() {
        let r: Request = serde_json::from_str(r#"{"env":{},"config":null}"#).unwrap();
        assert!(r.config.is_empty());
        let r: Request = serde_json::from_str(r#"{"env":{}}"#).unwrap();
        assert!(r.config.is_empty());
        let r: Request = serde_json::from_str(r#"{"config":"e30"}"#).unwrap();
        assert_eq!(r.config, b"{}");
        assert!(serde_json::from_str::<Request>(r#"{"config":"%%%"}"#).is_err());
        assert!(
            serde_json::to_value(Request::default())
                .unwrap()
                .get("interfaceAttributes")
                .is_none()
        );
    }

    #[test]
    fn response_key_is_capital_result() {
        let response = Response {
            result: Some(serde_json::json!({"cniVersion":"1.0.0"})),
        };
        assert_eq!(
            serde_json::to_string(&response).unwrap(),
            r#"{"Result":{"cniVersion":"1.0.0"}}"#
        );
        let lower: Response = serde_json::from_str(r#"{"result":{"a":1}}"#).unwrap();
        assert!(lower.result.is_some());
    }
}
