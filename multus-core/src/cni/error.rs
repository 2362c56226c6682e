//! The CNI error document and its error codes.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// CNI error codes: the well-known ones of the specification (1-7, 11, 50, 51) and the
/// multus-specific ones, from 100 up (the range the specification leaves to plugins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorCode {
    /// 1: incompatible CNI version.
    IncompatibleVersion = 1,
    /// 2: unsupported field in the network configuration.
    UnsupportedField = 2,
    /// 3: the container is unknown or does not exist.
    UnknownContainer = 3,
    /// 4: invalid necessary environment variables (`CNI_COMMAND`, `CNI_CONTAINERID`, ...).
    InvalidEnvironment = 4,
    /// 5: I/O failure, e.g. reading the configuration from stdin.
    IoFailure = 5,
    /// 6: failed to decode content, e.g. the configuration or a version reply.
    DecodeFailure = 6,
    /// 7: the network configuration did not validate.
    InvalidNetworkConfig = 7,
    /// 11: a transient condition; the runtime should retry later.
    TryAgainLater = 11,
    /// 50: the plugin is not available (cannot service `ADD` requests).
    PluginNotAvailable = 50,
    /// 51: the plugin is not available and existing containers may have limited connectivity.
    LimitedConnectivity = 51,
    /// 100 (multus): a delegate plugin failed; its own error is in the message.
    DelegateFailed = 100,
    /// 101 (multus): a requested network (NetworkAttachmentDefinition or delegate
    /// configuration) could not be found.
    NetworkNotFound = 101,
    /// 102 (multus): the pod's network selection annotation is malformed.
    InvalidAnnotation = 102,
    /// 103 (multus): an interface name is invalid or clashes with another one.
    InvalidInterface = 103,
    /// 104 (multus): multus' own state (delegate cache, checkpoint) could not be read or written.
    StateFailure = 104,
    /// 105 (multus): the Kubernetes API could not be reached or answered with an error.
    ApiFailure = 105,
    /// 106 (multus): a network backed by a device resource (`resourceName`) got no
    /// device: none left, or no kubelet, checkpoint or DRA source answered.
    DeviceUnavailable = 106,
}

impl ErrorCode {
    /// Every error code, in numeric order.
    pub const ALL: [ErrorCode; 17] = [
        ErrorCode::IncompatibleVersion,
        ErrorCode::UnsupportedField,
        ErrorCode::UnknownContainer,
        ErrorCode::InvalidEnvironment,
        ErrorCode::IoFailure,
        ErrorCode::DecodeFailure,
        ErrorCode::InvalidNetworkConfig,
        ErrorCode::TryAgainLater,
        ErrorCode::PluginNotAvailable,
        ErrorCode::LimitedConnectivity,
        ErrorCode::DelegateFailed,
        ErrorCode::NetworkNotFound,
        ErrorCode::InvalidAnnotation,
        ErrorCode::InvalidInterface,
        ErrorCode::StateFailure,
        ErrorCode::ApiFailure,
        ErrorCode::DeviceUnavailable,
    ];

    /// The numeric code of the error document.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The error code with this number, if it is one of ours.
    pub fn from_code(code: u32) -> Option<Self> {
        ErrorCode::ALL.into_iter().find(|c| c.code() == code)
    }

    /// A short human-readable description of the code.
    pub fn description(self) -> &'static str {
        match self {
            ErrorCode::IncompatibleVersion => "incompatible CNI version",
            ErrorCode::UnsupportedField => "unsupported field in network configuration",
            ErrorCode::UnknownContainer => "container unknown or does not exist",
            ErrorCode::InvalidEnvironment => "invalid necessary environment variables",
            ErrorCode::IoFailure => "I/O failure",
            ErrorCode::DecodeFailure => "failed to decode content",
            ErrorCode::InvalidNetworkConfig => "invalid network config",
            ErrorCode::TryAgainLater => "try again later",
            ErrorCode::PluginNotAvailable => "plugin not available",
            ErrorCode::LimitedConnectivity => {
                "plugin not available, existing containers may have limited connectivity"
            }
            ErrorCode::DelegateFailed => "delegate plugin failed",
            ErrorCode::NetworkNotFound => "network not found",
            ErrorCode::InvalidAnnotation => "invalid network selection annotation",
            ErrorCode::InvalidInterface => "invalid interface",
            ErrorCode::StateFailure => "multus state failure",
            ErrorCode::ApiFailure => "Kubernetes API failure",
            ErrorCode::DeviceUnavailable => "no device for a resource network",
        }
    }
}

/// The CNI error document `{"cniVersion","code","msg","details"}`, as a plugin prints it
/// on stdout when it fails. `cniVersion` and `details` are omitted when empty.
///
/// It displays as `msg`, or `msg: details` when there are details.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniError {
    /// The protocol version in use; empty until [`CniError::with_version`].
    #[serde(
        rename = "cniVersion",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub cni_version: String,
    /// The numeric error code, see [`ErrorCode`]; other plugins may use any number.
    pub code: u32,
    /// A short message characterizing the error.
    pub msg: String,
    /// A longer message describing the error.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    /// An error with this code and message, without version or details.
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> Self {
        CniError {
            cni_version: String::new(),
            code: code.code(),
            msg: msg.into(),
            details: String::new(),
        }
    }

    /// The same error with these details.
    pub fn with_details(self, details: impl Into<String>) -> Self {
        CniError {
            details: details.into(),
            ..self
        }
    }

    /// The same error with this `cniVersion`.
    pub fn with_version(self, v: &str) -> Self {
        CniError {
            cni_version: v.to_owned(),
            ..self
        }
    }

    /// The [`ErrorCode`] of this error, when its code is one of ours.
    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::from_code(self.code)
    }

    /// Parse a plugin's stdout as an error object; `None` when it is not one: not a JSON
    /// object, or without a numeric `code` or a string `msg`.
    pub fn from_plugin_output(bytes: &[u8]) -> Option<CniError> {
        let value: Value = serde_json::from_slice(bytes).ok()?;
        let object = value.as_object()?;
        let code = u32::try_from(object.get("code")?.as_u64()?).ok()?;
        let msg = object.get("msg")?.as_str()?.to_owned();
        let text = |key: &str| {
            object
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Some(CniError {
            cni_version: text("cniVersion"),
            code,
            msg,
            details: text("details"),
        })
    }

    /// The error document as JSON; the same as its `Serialize` form.
    pub fn to_value(&self) -> Value {
        let mut object = Map::new();
        if !self.cni_version.is_empty() {
            object.insert("cniVersion".into(), self.cni_version.clone().into());
        }
        object.insert("code".into(), self.code.into());
        object.insert("msg".into(), self.msg.clone().into());
        if !self.details.is_empty() {
            object.insert("details".into(), self.details.clone().into());
        }
        Value::Object(object)
    }

    /// The error document as compact JSON text.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }
}

impl fmt::Display for CniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.details.is_empty() {
            f.write_str(&self.msg)
        } else {
            write!(f, "{}: {}", self.msg, self.details)
        }
    }
}

impl std::error::Error for CniError {}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(code.code()), Some(code));
            assert!(!code.description().is_empty());
        }
        let numbers: Vec<u32> = ErrorCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(
            numbers,
            [
                1, 2, 3, 4, 5, 6, 7, 11, 50, 51, 100, 101, 102, 103, 104, 105, 106
            ]
        );
        for unknown in [0, 8, 12, 99, 107, 999] {
            assert_eq!(ErrorCode::from_code(unknown), None);
        }
    }

    #[test]
    fn builds_and_renders() {
        let e = CniError::new(ErrorCode::InvalidNetworkConfig, "Invalid Configuration");
        assert_eq!(e.to_json(), r#"{"code":7,"msg":"Invalid Configuration"}"#);
        assert_eq!(e.to_string(), "Invalid Configuration");
        assert_eq!(e.error_code(), Some(ErrorCode::InvalidNetworkConfig));

        let e = e
            .with_details("Network 192.168.0.0/31 too small to allocate from.")
            .with_version("1.1.0");
        assert_eq!(
            e.to_json(),
            r#"{"cniVersion":"1.1.0","code":7,"msg":"Invalid Configuration","details":"Network 192.168.0.0/31 too small to allocate from."}"#
        );
        assert_eq!(
            e.to_string(),
            "Invalid Configuration: Network 192.168.0.0/31 too small to allocate from."
        );
        assert_eq!(serde_json::to_value(&e).unwrap(), e.to_value());
        assert_eq!(serde_json::from_str::<CniError>(&e.to_json()).unwrap(), e);
        assert_eq!(
            CniError::from_plugin_output(e.to_json().as_bytes()),
            Some(e)
        );
    }

    #[test]
    fn parses_real_plugin_errors() {
        let e = CniError::from_plugin_output(
            b"{\n    \"code\": 999,\n    \"msg\": \"operation not supported\"\n}",
        )
        .unwrap();
        assert_eq!(
            e,
            CniError {
                cni_version: String::new(),
                code: 999,
                msg: "operation not supported".into(),
                details: String::new()
            }
        );
        assert_eq!(e.error_code(), None);

        let output = br#"{"cniVersion":"1.0.0","code":1,"msg":"incompatible CNI versions","details":"config is \"1.1.0\", plugin supports [\"0.1.0\" \"0.2.0\" \"0.3.0\" \"0.3.1\" \"0.4.0\" \"1.0.0\"]"}"#;
        let e = CniError::from_plugin_output(output).unwrap();
        assert_eq!(e.cni_version, "1.0.0");
        assert_eq!(e.error_code(), Some(ErrorCode::IncompatibleVersion));
        assert_eq!(e.msg, "incompatible CNI versions");
        assert_eq!(
            e.details,
            r#"config is "1.1.0", plugin supports ["0.1.0" "0.2.0" "0.3.0" "0.3.1" "0.4.0" "1.0.0"]"#
        );
        assert_eq!(e.to_json().as_bytes(), output);
    }

    #[test]
    fn other_output_is_not_an_error() {
        for output in [
            &br#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],"ips":[{"address":"10.1.0.5/16"}],"dns":{}}"#[..],
            br#"{"cniVersion":"1.0.0","supportedVersions":["1.0.0"]}"#,
            br#"{"code":"7","msg":"code is a string"}"#,
            br#"{"code":-1,"msg":"negative"}"#,
            br#"{"code":7}"#,
            br#"{"msg":"no code"}"#,
            br#"[{"code":7,"msg":"in an array"}]"#,
            b"",
            b"panic: runtime error: invalid memory address",
            b"\xff\xfe",
        ] {
            assert_eq!(CniError::from_plugin_output(output), None, "{}", String::from_utf8_lossy(output));
        }
    }
}
