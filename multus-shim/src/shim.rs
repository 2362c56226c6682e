//! What `multus-shim` does with one CNI call: read its own few keys from the config,
//! forward the environment and stdin to the daemon, and turn the answer into the CNI
//! result or error document the runtime expects.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use multus_core::cni::version::version_reply;
use multus_core::cni::{CniError, CniResult, CniVersion, ErrorCode};
use serde::Deserialize;

use crate::api::{self, CNI_PATH, DEFAULT_SOCKET_DIR, Request, Response};
use crate::client::{ClientError, HttpResponse, SocketClient};
use crate::log::{self, Level};
use crate::pending::{PendingDels, Verdict, verdict};

/// Default `daemonUnreachableDelGraceSeconds`.
pub const DEFAULT_DEL_GRACE_SECS: u64 = 600;
/// Default `daemonReadyTimeoutSeconds`: how long ADD, CHECK, GC and STATUS wait for a
/// daemon that is not listening yet, or that answers 503 (busy, shutting down).
pub const DEFAULT_READY_TIMEOUT_SECS: f64 = 45.0;
/// How often a socket nobody listens on is tried again (upstream polls `/readyz` at
/// this pace).
pub const READY_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long DEL keeps trying to reach the daemon (a restart) before it fails.
pub const DEL_RETRY: Duration = Duration::from_secs(5);
/// Default `cniDir` (where the pending-DEL markers live).
pub const DEFAULT_CNI_DIR: &str = "/var/lib/cni/multus";
/// The code of errors that are not CNI errors (libcni's "internal error").
pub const INTERNAL_ERROR_CODE: u32 = 999;

/// The keys of the CNI config the shim reads; everything else goes to the daemon
/// untouched.
#[derive(Clone, Debug, PartialEq)]
pub struct ShimConf {
    /// `cniVersion`: results are returned in it.
    pub cni_version: CniVersion,
    /// `daemonSocketDir` (default `/run/multus/`).
    pub socket_dir: PathBuf,
    /// `logFile`.
    pub log_file: Option<PathBuf>,
    /// `logLevel`.
    pub log_level: Option<String>,
    /// `logToStderr` (default false, as upstream's shim).
    pub log_to_stderr: bool,
    /// `cniDir`: where pending-DEL markers are kept.
    pub cni_dir: PathBuf,
    /// `daemonUnreachableDelGraceSeconds` (multus-rs).
    pub del_grace: Duration,
    /// `daemonReadyTimeoutSeconds` (multus-rs).
    pub ready_timeout: Duration,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawShimConf {
    #[serde(default)]
    cni_version: String,
    daemon_socket_dir: Option<PathBuf>,
    log_file: Option<PathBuf>,
    log_level: Option<String>,
    log_to_stderr: Option<bool>,
    cni_dir: Option<PathBuf>,
    daemon_unreachable_del_grace_seconds: Option<u64>,
    daemon_ready_timeout_seconds: Option<f64>,
}

impl ShimConf {
    /// Parse the shim's keys from the CNI config.
    pub fn parse(stdin: &[u8]) -> Result<Self, CniError> {
        let raw: RawShimConf = serde_json::from_slice(stdin).map_err(|e| {
            CniError::new(
                ErrorCode::DecodeFailure,
                format!("multus-shim: invalid network configuration: {e}"),
            )
        })?;
        let cni_version = if raw.cni_version.is_empty() {
            CniVersion::V0_3_1
        } else {
            raw.cni_version.parse().map_err(|e| {
                CniError::new(
                    ErrorCode::IncompatibleVersion,
                    format!("multus-shim: invalid network configuration: {e}"),
                )
            })?
        };
        let path = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
        let ready = raw
            .daemon_ready_timeout_seconds
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(DEFAULT_READY_TIMEOUT_SECS)
            .min(3600.0);
        Ok(Self {
            cni_version,
            socket_dir: path(raw.daemon_socket_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET_DIR)),
            log_file: path(raw.log_file),
            log_level: raw.log_level.filter(|l| !l.is_empty()),
            log_to_stderr: raw.log_to_stderr.unwrap_or(false),
            cni_dir: path(raw.cni_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_CNI_DIR)),
            del_grace: Duration::from_secs(
                raw.daemon_unreachable_del_grace_seconds
                    .unwrap_or(DEFAULT_DEL_GRACE_SECS),
            ),
            ready_timeout: Duration::from_secs_f64(ready),
        })
    }

    /// The daemon's socket.
    pub fn socket(&self) -> PathBuf {
        api::socket_path(&self.socket_dir)
    }
}

pub use multus_core::cni::Outcome;

/// A failure: logged, then printed as the CNI error document.
fn failed(error: CniError) -> Outcome {
    log::log(Level::Error, &error.to_string());
    Outcome::error(error)
}

/// Handle one CNI call. `env` is the whole process environment (upstream forwards all
/// of it); `now` is the clock for the pending-DEL grace.
pub fn run(env: &BTreeMap<String, String>, stdin: Vec<u8>, now: SystemTime) -> Outcome {
    let command = env.get("CNI_COMMAND").map(String::as_str).unwrap_or("");
    if command == "VERSION" {
        return Outcome::success(version_reply(CniVersion::LATEST).to_string().into_bytes());
    }
    let conf = match ShimConf::parse(&stdin) {
        Ok(conf) => conf,
        Err(e) => return failed(e.with_version(&version_hint(&stdin))),
    };
    log::init(
        conf.log_level.as_deref(),
        conf.log_file.as_deref(),
        conf.log_to_stderr,
    );
    let version = conf.cni_version.as_str();
    let container_id = env.get("CNI_CONTAINERID").cloned().unwrap_or_default();
    let fail = |code: ErrorCode, msg: String| {
        failed(CniError::new(code, format!("{command} (shim): {msg}")).with_version(version))
    };
    if command.is_empty() {
        return fail(
            ErrorCode::InvalidEnvironment,
            "required environment variable CNI_COMMAND is missing".into(),
        );
    }
    let client = SocketClient::new(conf.socket());
    if let Err(reason) = verify_socket(&conf.socket()) {
        return fail(ErrorCode::IoFailure, reason);
    }
    let body = match serde_json::to_vec(&Request {
        env: env.clone(),
        config: stdin,
        interface_attributes: None,
    }) {
        Ok(body) => body,
        Err(e) => {
            return fail(
                ErrorCode::IoFailure,
                format!("cannot encode the request: {e}"),
            );
        }
    };
    log::log(
        Level::Verbose,
        &format!(
            "{command} forwarding CNI request for container {container_id:?} to {}",
            client.socket().display()
        ),
    );

    if command == "DEL" {
        return del(&conf, &client, &body, &container_id, now);
    }
    // One round trip: the daemon answers a request it cannot serve yet with 503 (code
    // 11), retried below like a busy daemon; a socket nobody listens on yet is retried
    // every READY_POLL_INTERVAL. Both for at most daemonReadyTimeoutSeconds.
    match post(&client, &body, conf.ready_timeout, conf.ready_timeout) {
        Ok(response) => answer(&conf, command, &response),
        Err(e) if e.is_permission_denied() => fail(ErrorCode::IoFailure, permission_message(&e)),
        Err(e) if e.is_unreachable() => fail(
            ErrorCode::TryAgainLater,
            format!(
                "multus-daemon is not ready after {:.1} s: {e}",
                conf.ready_timeout.as_secs_f64()
            ),
        ),
        Err(e) => fail(
            ErrorCode::TryAgainLater,
            format!("failed to send CNI request: {e}"),
        ),
    }
}

/// DEL: never waits for readiness (a daemon shutting down still serves DELs); when the
/// daemon cannot be reached, fail with code 11 until the grace period of the first
/// failure has passed, then succeed with a warning.
fn del(
    conf: &ShimConf,
    client: &SocketClient,
    body: &[u8],
    container_id: &str,
    now: SystemTime,
) -> Outcome {
    let pending = PendingDels::new(&conf.cni_dir);
    let retry = DEL_RETRY.min(conf.ready_timeout.max(Duration::from_millis(200)));
    let reached = post(client, body, retry, conf.ready_timeout);
    match reached {
        Ok(response) => {
            pending.clear(container_id);
            answer(conf, "DEL", &response)
        }
        Err(e) if e.is_permission_denied() => failed(
            CniError::new(
                ErrorCode::IoFailure,
                format!("DEL (shim): {}", permission_message(&e)),
            )
            .with_version(conf.cni_version.as_str()),
        ),
        Err(e) => unreachable_del(conf, &pending, container_id, &e, now),
    }
}

fn unreachable_del(
    conf: &ShimConf,
    pending: &PendingDels,
    container_id: &str,
    error: &ClientError,
    now: SystemTime,
) -> Outcome {
    let version = conf.cni_version.as_str();
    let first = match pending.record(container_id, now) {
        Ok(first) => first,
        Err(e) => {
            log::log(
                Level::Error,
                &format!("cannot record the failed DEL of container {container_id:?}: {e}"),
            );
            now
        }
    };
    match verdict(first, now, conf.del_grace) {
        Verdict::GiveUp { unreachable_for } => {
            pending.clear(container_id);
            let warning = format!(
                "WARNING: DEL (shim): multus-daemon has been unreachable for {} s (longer than daemonUnreachableDelGraceSeconds = {} s); reporting DEL of container {container_id:?} as done without running it: its secondary networks may not have been released ({error})",
                unreachable_for.as_secs(),
                conf.del_grace.as_secs()
            );
            log::log(Level::Error, &warning);
            eprintln!("{warning}");
            Outcome::success(Vec::new())
        }
        Verdict::Fail { remaining } => failed(
            CniError::new(
                ErrorCode::TryAgainLater,
                format!("DEL (shim): {error}"),
            )
            .with_details(format!(
                "the DEL was not run; retry it once multus-daemon is back (DELs of this container succeed without the daemon in {} s, daemonUnreachableDelGraceSeconds)",
                remaining.as_secs()
            ))
            .with_version(version),
        ),
    }
}

/// POST the request (one round trip when the daemon is there and free). While nothing
/// listens on the socket (the daemon is starting), try again every
/// [`READY_POLL_INTERVAL`] for at most `unreachable_patience`: no request was sent. While
/// the daemon answers 503 (its queue is full, or it is shutting down and serves DELs
/// only), try again with a growing pause, for at most `busy_patience`: the runtime then
/// sees a slower call instead of a failure, and the waiting happens in this small
/// process, not in the daemon.
fn post(
    client: &SocketClient,
    body: &[u8],
    unreachable_patience: Duration,
    busy_patience: Duration,
) -> Result<HttpResponse, ClientError> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        let response = match client.post_json(CNI_PATH, body) {
            Ok(response) => response,
            // Waiting will not grant the permission.
            Err(e) if e.is_permission_denied() => return Err(e),
            Err(e) if e.is_unreachable() => {
                let waited = started.elapsed();
                if waited >= unreachable_patience {
                    return Err(e);
                }
                std::thread::sleep(READY_POLL_INTERVAL.min(unreachable_patience - waited));
                continue;
            }
            Err(e) => return Err(e),
        };
        let waited = started.elapsed();
        if response.status != 503 || waited >= busy_patience {
            return Ok(response);
        }
        log::log(
            Level::Verbose,
            &format!(
                "multus-daemon cannot take the request yet ({}); retrying",
                response.text().trim()
            ),
        );
        // Spread the retries of many shims (pid-based jitter, up to +50%).
        let jitter = pause.mul_f64(f64::from(std::process::id() % 50) / 100.0);
        std::thread::sleep((pause + jitter).min(busy_patience - waited));
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

fn permission_message(error: &ClientError) -> String {
    format!(
        "{error}: the daemon's socket is root's with mode 0600; multus-shim must run as root (as the container runtime runs it)"
    )
}

/// Refuse a socket another user could have put there or could talk to: it must be a
/// socket owned by root, with no permission for group or others, in a directory owned
/// by root that group and others cannot write. A missing socket is not refused here
/// (the daemon is not running: handled as unreachable).
pub fn verify_socket(path: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(_) => return Ok(()),
    };
    let refuse = |what: String| {
        Err(format!(
            "refusing to use {}: {what} (expected a socket owned by root, mode 0600, made by multus-daemon)",
            path.display()
        ))
    };
    if !meta.file_type().is_socket() {
        return refuse("it is not a socket".into());
    }
    if meta.uid() != 0 {
        return refuse(format!("it is owned by uid {}", meta.uid()));
    }
    if meta.mode() & 0o077 != 0 {
        return refuse(format!("its mode is {:o}", meta.mode() & 0o777));
    }
    if let Some(dir) = path.parent()
        && let Ok(dir_meta) = std::fs::metadata(dir)
    {
        if dir_meta.uid() != 0 {
            return refuse(format!("its directory is owned by uid {}", dir_meta.uid()));
        }
        if dir_meta.mode() & 0o022 != 0 {
            return refuse(format!(
                "its directory's mode is {:o} (writable by others)",
                dir_meta.mode() & 0o777
            ));
        }
    }
    Ok(())
}

/// Turn the daemon's answer into the runtime's.
fn answer(conf: &ShimConf, command: &str, response: &HttpResponse) -> Outcome {
    let version = conf.cni_version;
    if response.status == 200 {
        if command != "ADD" {
            return Outcome::success(Vec::new());
        }
        let result = serde_json::from_slice::<Response>(&response.body)
            .map_err(|e| e.to_string())
            .and_then(|r| r.result.ok_or_else(|| "no Result in the answer".to_owned()))
            .and_then(|value| {
                CniResult::from_value(&value, CniVersion::V1_0_0).map_err(|e| e.to_string())
            });
        return match result {
            Ok(result) => Outcome::success(result.to_json(version).into_bytes()),
            Err(e) => failed(CniError {
                cni_version: version.as_str().to_owned(),
                code: ErrorCode::DecodeFailure.code(),
                msg: format!("ADD (shim): cannot read the daemon's result: {e}"),
                details: response.text(),
            }),
        };
    }
    match CniError::from_plugin_output(&response.body).filter(|e| !e.msg.is_empty()) {
        Some(mut error) => {
            if error.cni_version.is_empty() {
                error.cni_version = version.as_str().to_owned();
            }
            failed(error)
        }
        None => failed(CniError {
            cni_version: version.as_str().to_owned(),
            code: INTERNAL_ERROR_CODE,
            msg: format!(
                "{command} (shim): CNI request failed with status {}: '{}'",
                response.status,
                response.text().trim()
            ),
            details: String::new(),
        }),
    }
}

fn version_hint(stdin: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(stdin)
        .ok()
        .and_then(|v| v.get("cniVersion")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| CniVersion::LATEST.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_keys_and_defaults() {
        let conf = ShimConf::parse(br#"{"cniVersion":"0.3.1","type":"multus-shim"}"#).unwrap();
        assert_eq!(conf.socket(), PathBuf::from("/run/multus/multus.sock"));
        assert_eq!(conf.cni_dir, PathBuf::from("/var/lib/cni/multus"));
        assert_eq!(conf.del_grace, Duration::from_secs(600));
        assert_eq!(conf.ready_timeout, Duration::from_secs(45));
        assert!(!conf.log_to_stderr);
        let conf = ShimConf::parse(
            br#"{"cniVersion":"1.0.0","daemonSocketDir":"/tmp/s","cniDir":"/tmp/c",
                "daemonUnreachableDelGraceSeconds":0,"daemonReadyTimeoutSeconds":0.5,
                "logToStderr":true,"unknown":[1]}"#,
        )
        .unwrap();
        assert_eq!(conf.socket(), PathBuf::from("/tmp/s/multus.sock"));
        assert_eq!(conf.del_grace, Duration::ZERO);
        assert_eq!(conf.ready_timeout, Duration::from_millis(500));
        assert!(ShimConf::parse(b"{").is_err());
        assert_eq!(
            ShimConf::parse(br#"{"cniVersion":"7"}"#).unwrap_err().code,
            1
        );
    }

    fn env(command: &str) -> BTreeMap<String, String> {
        [
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_NETNS", "/var/run/netns/x"),
            ("CNI_IFNAME", "eth0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn version_is_answered_locally() {
        let out = run(&env("VERSION"), Vec::new(), SystemTime::now());
        assert_eq!(out.exit_code, 0);
        let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(reply["supportedVersions"].as_array().unwrap().len(), 7);
    }

    #[test]
    fn add_without_a_daemon_is_try_again_later() {
        let dir = tempfile::tempdir().unwrap();
        let conf = format!(
            r#"{{"cniVersion":"0.4.0","daemonSocketDir":"{}","daemonReadyTimeoutSeconds":0.2}}"#,
            dir.path().display()
        );
        let out = run(&env("ADD"), conf.into_bytes(), SystemTime::now());
        assert_eq!(out.exit_code, 1);
        let error = CniError::from_plugin_output(&out.stdout).unwrap();
        assert_eq!(error.code, 11);
        assert_eq!(error.cni_version, "0.4.0");
        assert!(error.msg.contains("not ready"), "{}", error.msg);
    }

    #[test]
    fn del_without_a_daemon_fails_until_the_grace_passes() {
        let dir = tempfile::tempdir().unwrap();
        let conf = format!(
            r#"{{"cniVersion":"1.0.0","daemonSocketDir":"{0}","cniDir":"{0}",
                "daemonReadyTimeoutSeconds":0.1,"daemonUnreachableDelGraceSeconds":60}}"#,
            dir.path().display()
        );
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        let out = run(&env("DEL"), conf.clone().into_bytes(), t0);
        let error = CniError::from_plugin_output(&out.stdout).unwrap();
        assert_eq!((out.exit_code, error.code), (1, 11));
        assert!(error.details.contains("in 60 s"), "{}", error.details);
        let marker = dir.path().join("shim-pending-del/c1");
        assert!(marker.exists());
        let out = run(
            &env("DEL"),
            conf.clone().into_bytes(),
            t0 + Duration::from_secs(30),
        );
        assert_eq!(out.exit_code, 1);
        assert!(
            CniError::from_plugin_output(&out.stdout)
                .unwrap()
                .details
                .contains("in 30 s")
        );
        let out = run(&env("DEL"), conf.into_bytes(), t0 + Duration::from_secs(61));
        assert_eq!(out, Outcome::success(Vec::new()));
        assert!(!marker.exists());
    }

    #[test]
    fn daemon_errors_pass_through_with_their_code() {
        let conf = ShimConf::parse(br#"{"cniVersion":"0.3.1"}"#).unwrap();
        let response = HttpResponse {
            status: 400,
            headers: vec![],
            body: br#"{"code":101,"msg":"network not found","details":"d"}"#.to_vec(),
        };
        let out = answer(&conf, "ADD", &response);
        let error = CniError::from_plugin_output(&out.stdout).unwrap();
        assert_eq!((error.code, error.cni_version.as_str()), (101, "0.3.1"));
        let plain = HttpResponse {
            status: 404,
            headers: vec![],
            body: b"404 page not found".to_vec(),
        };
        let error = CniError::from_plugin_output(&answer(&conf, "CHECK", &plain).stdout).unwrap();
        assert_eq!(error.code, 999);
        assert!(error.msg.contains("status 404"), "{}", error.msg);
    }

    #[test]
    fn add_result_is_converted_to_the_shim_conf_version() {
        let conf = ShimConf::parse(br#"{"cniVersion":"0.3.1"}"#).unwrap();
        let response = HttpResponse {
            status: 200,
            headers: vec![],
            body:
                br#"{"Result":{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/n"}],
                "ips":[{"address":"10.0.0.2/24","interface":0}],"dns":{}}}"#
                    .to_vec(),
        };
        let out = answer(&conf, "ADD", &response);
        assert_eq!(out.exit_code, 0);
        let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(result["cniVersion"], "0.3.1");
        assert_eq!(result["ips"][0]["version"], "4");
    }
}
