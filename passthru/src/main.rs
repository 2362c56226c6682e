//! `passthru`: the CNI plugin that opens Multus' auxiliary CNI chain.
//!
//! With `auxiliaryCNIChainName: X`, multus runs the list
//! `{"name":"X","plugins":[{"type":"passthru","name":"passthru-cni"}, <plugins of <dir>/X/>]}`
//! as one more attachment. The chained plugins (tuning, for instance) need a
//! `prevResult`; passthru gives them one and does nothing else. It is upstream's
//! `passthru-cni` (installed as `passthru`), with the protocol handling of libcni's
//! `skel`:
//!
//! - ADD prints an empty result of the configuration's `cniVersion`
//!   (`{"cniVersion":"<v>","dns":{}}`). When the configuration carries a `prevResult`
//!   (passthru placed after another plugin), that is printed unchanged instead, as the
//!   CNI specification asks of a chained plugin that changes nothing (upstream prints
//!   the empty result then too).
//! - DEL does nothing. CHECK (config 0.4.0 and later), GC and STATUS (1.1.0) succeed and
//!   print nothing: upstream registers no function for them, which skel answers so.
//! - VERSION: supports 0.3.0, 0.3.1, 0.4.0, 1.0.0 and 1.1.0; any other config version
//!   fails with code 1 `incompatible CNI versions`.
//! - Without `CNI_COMMAND` it prints what it is on stderr and exits 0; `--version`
//!   prints its version.
//!
//! Errors are CNI error documents on stdout with exit status 1.

use std::io::{Read, Write};
use std::process::ExitCode;

use serde_json::{Map, Value, json};

/// The CNI versions passthru answers to (upstream's list).
const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
/// The specification version of the VERSION reply.
const SPEC_VERSION: &str = "1.1.0";
/// Printed on stderr when run without `CNI_COMMAND`.
const ABOUT: &str = "Passthrough CNI Plugin v1.0 (multus-rs)";

/// CNI error codes (CNI specification, "Error").
mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const INVALID_ENVIRONMENT: u32 = 4;
    pub const IO_FAILURE: u32 = 5;
    pub const DECODING_FAILURE: u32 = 6;
    pub const INVALID_NETWORK_CONFIG: u32 = 7;
}

/// A CNI error, printed as the error document.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CniError {
    code: u32,
    msg: String,
    details: String,
}

impl CniError {
    fn new(code: u32, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    fn to_json(&self) -> String {
        let mut doc = json!({"code": self.code, "msg": self.msg});
        if !self.details.is_empty() {
            doc["details"] = Value::from(self.details.clone());
        }
        doc.to_string()
    }
}

/// What a successful call prints.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// A document on stdout.
    Print(String),
    /// Nothing.
    Nothing,
    /// No `CNI_COMMAND`: the description on stderr.
    About,
}

fn main() -> ExitCode {
    if std::env::args()
        .skip(1)
        .any(|a| a == "--version" || a == "-v" || a == "-version")
    {
        println!("multus-rs passthru: version:{}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    let outcome = run(&env, &mut std::io::stdin().lock());
    let mut stdout = std::io::stdout().lock();
    let (text, status) = match outcome {
        Ok(Outcome::Print(text)) => (text, ExitCode::SUCCESS),
        Ok(Outcome::Nothing) => return ExitCode::SUCCESS,
        Ok(Outcome::About) => {
            eprintln!("{ABOUT}");
            eprintln!(
                "CNI protocol versions supported: {}",
                SUPPORTED_VERSIONS.join(", ")
            );
            return ExitCode::SUCCESS;
        }
        Err(error) => (error.to_json(), ExitCode::from(1)),
    };
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Ok(()) => status,
        Err(_) => ExitCode::from(1),
    }
}

/// One call: `env` reads the `CNI_*` variables (`None` when unset or empty).
fn run(env: &dyn Fn(&str) -> Option<String>, stdin: &mut dyn Read) -> Result<Outcome, CniError> {
    let Some(command) = env("CNI_COMMAND") else {
        return Ok(Outcome::About);
    };
    check_environment(&command, env)?;
    if command == "VERSION" {
        let reply = json!({"cniVersion": SPEC_VERSION, "supportedVersions": SUPPORTED_VERSIONS});
        return Ok(Outcome::Print(reply.to_string()));
    }
    let mut bytes = Vec::new();
    stdin
        .read_to_end(&mut bytes)
        .map_err(|e| CniError::new(code::IO_FAILURE, format!("error reading from stdin: {e}")))?;
    let conf = parse_config(&bytes)?;
    let version = conf
        .get("cniVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .unwrap_or("0.1.0");
    match command.as_str() {
        "ADD" => {
            check_supported(version)?;
            let result = match conf.get("prevResult") {
                Some(prev @ Value::Object(_)) => prev.clone(),
                _ => json!({"cniVersion": version, "dns": {}}),
            };
            Ok(Outcome::Print(result.to_string()))
        }
        "DEL" => check_supported(version).map(|()| Outcome::Nothing),
        "CHECK" => gated(version, "0.4.0", "CHECK"),
        "GC" => gated(version, "1.1.0", "GC"),
        "STATUS" => gated(version, "1.1.0", "STATUS"),
        other => Err(CniError::new(
            code::INVALID_ENVIRONMENT,
            format!("unknown CNI_COMMAND: {other}"),
        )),
    }
}

/// The variables skel requires for each command.
fn check_environment(command: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<(), CniError> {
    let required: &[&str] = match command {
        "ADD" | "CHECK" => &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
        "DEL" => &["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"],
        "GC" | "STATUS" => &["CNI_PATH"],
        _ => &[],
    };
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|name| env(name).is_none())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CniError::new(
            code::INVALID_ENVIRONMENT,
            format!("required env variables [{}] missing", missing.join(",")),
        ))
    }
}

/// The configuration: a JSON object with a valid network `name`.
fn parse_config(bytes: &[u8]) -> Result<Map<String, Value>, CniError> {
    let conf: Map<String, Value> = serde_json::from_slice(bytes).map_err(|e| {
        CniError::new(
            code::DECODING_FAILURE,
            format!("error unmarshall network config: {e}"),
        )
    })?;
    let name = conf.get("name").and_then(Value::as_str).unwrap_or_default();
    if name.is_empty() {
        return Err(CniError::new(
            code::INVALID_NETWORK_CONFIG,
            "missing network name",
        ));
    }
    if !is_valid_network_name(name) {
        return Err(CniError::new(
            code::INVALID_NETWORK_CONFIG,
            "invalid characters found in network name",
        )
        .with_details(name));
    }
    Ok(conf)
}

/// `^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`.
fn is_valid_network_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn check_supported(version: &str) -> Result<(), CniError> {
    if SUPPORTED_VERSIONS.contains(&version) {
        return Ok(());
    }
    let supported: Vec<String> = SUPPORTED_VERSIONS
        .iter()
        .map(|v| format!("{v:?}"))
        .collect();
    Err(
        CniError::new(code::INCOMPATIBLE_VERSION, "incompatible CNI versions").with_details(
            format!(
                "config is {version:?}, plugin supports [{}]",
                supported.join(" ")
            ),
        ),
    )
}

/// A command the configuration's version must allow (`minimum` and later); it then does
/// nothing.
fn gated(version: &str, minimum: &str, command: &str) -> Result<Outcome, CniError> {
    let parsed = parse_version(version).ok_or_else(|| {
        CniError::new(
            code::DECODING_FAILURE,
            format!("invalid version {version:?}"),
        )
    })?;
    if Some(parsed) < parse_version(minimum) {
        return Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            format!("config version does not allow {command}"),
        ));
    }
    check_supported(version).map(|()| Outcome::Nothing)
}

/// `major.minor.patch` as numbers.
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.split('.').map(|p| p.parse::<u32>().ok());
    let version = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(version)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::BTreeMap;

    use super::*;

    fn call(command: &str, stdin: &str) -> Result<Outcome, CniError> {
        call_with(command, stdin, &[])
    }

    fn call_with(command: &str, stdin: &str, unset: &[&str]) -> Result<Outcome, CniError> {
        let env: BTreeMap<&str, String> = [
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_NETNS", "/run/netns/p"),
            ("CNI_IFNAME", "net3"),
            ("CNI_PATH", "/opt/cni/bin"),
        ]
        .into_iter()
        .filter(|(k, v)| !v.is_empty() && !unset.contains(k))
        .map(|(k, v)| (k, v.to_owned()))
        .collect();
        let lookup = |key: &str| env.get(key).cloned();
        run(&lookup, &mut stdin.as_bytes())
    }

    fn printed(outcome: Result<Outcome, CniError>) -> Value {
        match outcome {
            Ok(Outcome::Print(text)) => serde_json::from_str(&text).unwrap(),
            other => panic!("expected a document, got {other:?}"),
        }
    }

    #[test]
    fn add_prints_an_empty_result_of_the_config_version() {
        for version in SUPPORTED_VERSIONS {
            let conf = json!({"cniVersion": version, "name": "vendor-chain", "type": "passthru"});
            let result = printed(call("ADD", &conf.to_string()));
            assert_eq!(result, json!({"cniVersion": version, "dns": {}}));
        }
    }

    #[test]
    fn add_passes_a_prev_result_on_unchanged() {
        let prev = json!({"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],"ips":[{"address":"10.0.0.2/24","interface":0}],"dns":{}});
        let conf = json!({"cniVersion":"1.0.0","name":"x","type":"passthru","prevResult":prev});
        assert_eq!(printed(call("ADD", &conf.to_string())), prev);
    }

    #[test]
    fn del_does_nothing_and_check_gc_status_are_gated_by_version() {
        let conf = |v: &str| json!({"cniVersion": v, "name": "x", "type": "passthru"}).to_string();
        assert_eq!(call("DEL", &conf("0.3.1")), Ok(Outcome::Nothing));
        assert_eq!(call("CHECK", &conf("0.4.0")), Ok(Outcome::Nothing));
        assert_eq!(call("GC", &conf("1.1.0")), Ok(Outcome::Nothing));
        assert_eq!(call("STATUS", &conf("1.1.0")), Ok(Outcome::Nothing));
        let err = call("CHECK", &conf("0.3.1")).unwrap_err();
        assert_eq!(
            (err.code, err.msg.as_str()),
            (1, "config version does not allow CHECK")
        );
        let err = call("STATUS", &conf("1.0.0")).unwrap_err();
        assert_eq!(
            (err.code, err.msg.as_str()),
            (1, "config version does not allow STATUS")
        );
        let err = call("GC", &conf("1.0.0")).unwrap_err();
        assert_eq!(err.msg, "config version does not allow GC");
    }

    #[test]
    fn unsupported_versions_are_refused_as_skel_does() {
        let conf = json!({"cniVersion":"0.2.0","name":"x","type":"passthru"}).to_string();
        let err = call("ADD", &conf).unwrap_err();
        assert_eq!(err.code, 1);
        assert_eq!(err.msg, "incompatible CNI versions");
        assert_eq!(
            err.details,
            r#"config is "0.2.0", plugin supports ["0.3.0" "0.3.1" "0.4.0" "1.0.0" "1.1.0"]"#
        );
        // No cniVersion is 0.1.0.
        let err = call("ADD", r#"{"name":"x","type":"passthru"}"#).unwrap_err();
        assert!(err.details.contains(r#"config is "0.1.0""#), "{err:?}");
    }

    #[test]
    fn version_reply_lists_the_supported_versions() {
        let reply = printed(call("VERSION", ""));
        assert_eq!(
            reply,
            json!({"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]})
        );
    }

    #[test]
    fn bad_environment_and_config_are_cni_errors() {
        let conf = json!({"cniVersion":"1.0.0","name":"x","type":"passthru"}).to_string();
        let err = call_with("ADD", &conf, &["CNI_NETNS", "CNI_PATH"]).unwrap_err();
        assert_eq!(err.code, 4);
        assert_eq!(
            err.msg,
            "required env variables [CNI_NETNS,CNI_PATH] missing"
        );
        // DEL needs no netns.
        assert_eq!(
            call_with("DEL", &conf, &["CNI_NETNS"]),
            Ok(Outcome::Nothing)
        );
        assert_eq!(call("ADD", "{").unwrap_err().code, 6);
        assert_eq!(call("ADD", r#"{"type":"passthru"}"#).unwrap_err().code, 7);
        let err = call("ADD", r#"{"name":"../x","type":"passthru"}"#).unwrap_err();
        assert_eq!((err.code, err.details.as_str()), (7, "../x"));
        let err = call("FOO", &conf).unwrap_err();
        assert_eq!(
            (err.code, err.msg.as_str()),
            (4, "unknown CNI_COMMAND: FOO")
        );
        assert_eq!(call_with("", "", &[]), Ok(Outcome::About));
    }

    #[test]
    fn error_documents_carry_code_msg_and_details() {
        let err = CniError::new(1, "incompatible CNI versions").with_details("d");
        assert_eq!(
            err.to_json(),
            r#"{"code":1,"msg":"incompatible CNI versions","details":"d"}"#
        );
        assert_eq!(CniError::new(4, "m").to_json(), r#"{"code":4,"msg":"m"}"#);
    }
}
