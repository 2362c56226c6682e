//! CNI specification versions and the `VERSION` command's reply document.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

/// A version of the CNI specification that multus-rs understands.
///
/// Versions are ordered, so `v >= CniVersion::V0_4_0` reads as "at least 0.4.0".
/// On the wire a version is its exact dotted string, e.g. `"0.3.1"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CniVersion {
    /// `0.1.0`: the first release; `ip4`/`ip6` result layout.
    V0_1_0,
    /// `0.2.0`: adds the `VERSION` command; `ip4`/`ip6` result layout.
    V0_2_0,
    /// `0.3.0`: the `interfaces`/`ips`/`routes` result layout.
    V0_3_0,
    /// `0.3.1`: plugin chaining (`prevResult`).
    V0_3_1,
    /// `0.4.0`: adds the `CHECK` command.
    V0_4_0,
    /// `1.0.0`: drops the `version` key of result IPs.
    V1_0_0,
    /// `1.1.0`: adds `GC` and `STATUS`, and new interface and route fields.
    V1_1_0,
}

impl CniVersion {
    /// Every supported version, oldest first.
    pub const ALL: [CniVersion; 7] = [
        CniVersion::V0_1_0,
        CniVersion::V0_2_0,
        CniVersion::V0_3_0,
        CniVersion::V0_3_1,
        CniVersion::V0_4_0,
        CniVersion::V1_0_0,
        CniVersion::V1_1_0,
    ];

    /// The newest supported version.
    pub const LATEST: CniVersion = CniVersion::V1_1_0;

    /// The version as its wire string, e.g. `"0.3.1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CniVersion::V0_1_0 => "0.1.0",
            CniVersion::V0_2_0 => "0.2.0",
            CniVersion::V0_3_0 => "0.3.0",
            CniVersion::V0_3_1 => "0.3.1",
            CniVersion::V0_4_0 => "0.4.0",
            CniVersion::V1_0_0 => "1.0.0",
            CniVersion::V1_1_0 => "1.1.0",
        }
    }

    /// Does this version define the `CHECK` command (0.4.0 and later)?
    pub fn supports_check(self) -> bool {
        self >= CniVersion::V0_4_0
    }

    /// Does this version define the `GC` and `STATUS` commands (1.1.0 and later)?
    pub fn supports_gc_and_status(self) -> bool {
        self >= CniVersion::V1_1_0
    }

    /// Does this version use the legacy `ip4`/`ip6` result layout (0.1.0 and 0.2.0)?
    pub fn has_legacy_result_layout(self) -> bool {
        self <= CniVersion::V0_2_0
    }
}

impl Default for CniVersion {
    /// The newest version, [`CniVersion::LATEST`].
    fn default() -> Self {
        CniVersion::LATEST
    }
}

impl fmt::Display for CniVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A version string that is not exactly one of [`CniVersion::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported CNI version {0:?}")]
pub struct UnsupportedVersion(pub String);

impl FromStr for CniVersion {
    type Err = UnsupportedVersion;

    /// Accepts exactly the wire strings (`"1.0.0"`); anything else, including `""`, `"1.0"`
    /// and `" 1.0.0"`, is an error.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CniVersion::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnsupportedVersion(s.to_owned()))
    }
}

impl Serialize for CniVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CniVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The `VERSION` reply document: `{"cniVersion": <v>, "supportedVersions": [all]}`.
pub fn version_reply(cni_version: CniVersion) -> Value {
    let all: Vec<&str> = CniVersion::ALL.iter().map(|v| v.as_str()).collect();
    json!({ "cniVersion": cni_version.as_str(), "supportedVersions": all })
}

/// Parse a plugin's `VERSION` reply and return the versions it supports, oldest first
/// as listed; version strings multus-rs does not know are ignored.
///
/// As libcni does, a reply must have a `cniVersion`; a reply without `supportedVersions`
/// is only accepted from a 0.2.0 plugin, which supports 0.1.0 and 0.2.0.
pub fn parse_version_reply(bytes: &[u8]) -> Result<Vec<CniVersion>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Reply {
        #[serde(rename = "cniVersion", default)]
        cni_version: Option<String>,
        #[serde(rename = "supportedVersions", default)]
        supported_versions: Option<Vec<String>>,
    }
    let reply: Reply = serde_json::from_slice(bytes)?;
    let cni_version = reply.cni_version.unwrap_or_default();
    if cni_version.is_empty() {
        return Err(serde::de::Error::missing_field("cniVersion"));
    }
    match reply.supported_versions {
        Some(list) if !list.is_empty() => Ok(list.iter().filter_map(|s| s.parse().ok()).collect()),
        _ if cni_version == "0.2.0" => Ok(vec![CniVersion::V0_1_0, CniVersion::V0_2_0]),
        _ => Err(serde::de::Error::missing_field("supportedVersions")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip() {
        for v in CniVersion::ALL {
            assert_eq!(v.as_str().parse::<CniVersion>(), Ok(v));
            assert_eq!(v.to_string(), v.as_str());
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{v}\""));
            assert_eq!(serde_json::from_str::<CniVersion>(&json).unwrap(), v);
        }
    }

    #[test]
    fn only_exact_strings_parse() {
        for bad in [
            "", "1.0", "1", "v1.0.0", " 1.0.0", "1.0.0 ", "0.5.0", "2.0.0", "1.0.0.0",
        ] {
            assert_eq!(
                bad.parse::<CniVersion>(),
                Err(UnsupportedVersion(bad.to_owned())),
                "{bad:?}"
            );
        }
        assert!(serde_json::from_str::<CniVersion>("\"9.9.9\"").is_err());
        assert!(serde_json::from_str::<CniVersion>("100").is_err());
        assert_eq!(
            UnsupportedVersion("9.9".into()).to_string(),
            "unsupported CNI version \"9.9\""
        );
    }

    #[test]
    fn ordering_and_capabilities() {
        assert!(CniVersion::ALL.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(CniVersion::LATEST, CniVersion::V1_1_0);
        assert_eq!(CniVersion::default(), CniVersion::LATEST);
        let check: Vec<_> = CniVersion::ALL
            .into_iter()
            .filter(|v| v.supports_check())
            .collect();
        assert_eq!(
            check,
            [CniVersion::V0_4_0, CniVersion::V1_0_0, CniVersion::V1_1_0]
        );
        let gc: Vec<_> = CniVersion::ALL
            .into_iter()
            .filter(|v| v.supports_gc_and_status())
            .collect();
        assert_eq!(gc, [CniVersion::V1_1_0]);
        let legacy: Vec<_> = CniVersion::ALL
            .into_iter()
            .filter(|v| v.has_legacy_result_layout())
            .collect();
        assert_eq!(legacy, [CniVersion::V0_1_0, CniVersion::V0_2_0]);
    }

    #[test]
    fn version_reply_lists_everything() {
        let reply = version_reply(CniVersion::V1_0_0);
        assert_eq!(
            reply.to_string(),
            r#"{"cniVersion":"1.0.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}"#
        );
        let parsed = parse_version_reply(reply.to_string().as_bytes()).unwrap();
        assert_eq!(parsed, CniVersion::ALL);
    }

    #[test]
    fn parses_plugin_version_replies() {
        // What the reference plugins 1.1.1 print for VERSION.
        let reference = br#"{"cniVersion":"1.0.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0"]}
"#;
        assert_eq!(
            parse_version_reply(reference).unwrap(),
            &CniVersion::ALL[..6]
        );
        // Unknown versions are ignored.
        let future = br#"{"cniVersion":"2.0.0","supportedVersions":["1.1.0","2.0.0"]}"#;
        assert_eq!(parse_version_reply(future).unwrap(), [CniVersion::V1_1_0]);
        // A 0.2.0 plugin may omit the list.
        let legacy = br#"{"cniVersion":"0.2.0"}"#;
        assert_eq!(
            parse_version_reply(legacy).unwrap(),
            [CniVersion::V0_1_0, CniVersion::V0_2_0]
        );
    }

    #[test]
    fn rejects_bad_version_replies() {
        for bad in [
            &b""[..],
            b"not json",
            b"[]",
            br#"{"supportedVersions":["1.0.0"]}"#,
            br#"{"cniVersion":"","supportedVersions":["1.0.0"]}"#,
            br#"{"cniVersion":"1.0.0"}"#,
            br#"{"cniVersion":"1.0.0","supportedVersions":[]}"#,
            br#"{"cniVersion":"1.0.0","supportedVersions":[1]}"#,
        ] {
            assert!(
                parse_version_reply(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
