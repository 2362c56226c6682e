//! `cni-recorder`: a real CNI plugin for tests that records every call and creates
//! nothing.
//!
//! Each call (except VERSION) appends one JSON line to the file named by the config key
//! `recordFile`: the `CNI_*` environment, stdin parsed and raw, the printed result, and
//! when the call started and finished (see `multus_integration_tests::recording::Record`).
//!
//! - ADD prints a result of the config's `cniVersion`: `prevResult` passed through when
//!   present, else one sandbox interface named `CNI_IFNAME` with the address of config
//!   key `address` when given (no IPs otherwise).
//!   Config key `fixedResult` (an object) replaces that result: it is printed as given,
//!   with `cniVersion` set. Config key `resultVersion` makes ADD answer in that
//!   version instead of the config's (a plugin that answers in another version).
//! - DEL and CHECK print nothing.
//! - STATUS and GC print nothing when the config's `cniVersion` is 1.1.0 (GC's record
//!   holds `cni.dev/valid-attachments` in its stdin); at older versions they fail with
//!   code 4 `unknown CNI_COMMAND`, as the reference plugins do.
//! - VERSION prints the supported versions.
//! - Config key `failOn` makes a command record the call, then fail with exit code 1:
//!   - `"ADD"`, `"DEL"`, `"CHECK"`, `"GC"`: `{"code":11,"msg":"recorder asked to fail"}`;
//!   - `"STATUS"`: `{"code":50,"msg":"not ready"}`;
//!   - `"DEL-once"`: the first DEL for a given `CNI_CONTAINERID` + `CNI_IFNAME` fails
//!     (code 11) and leaves a marker file (`del_once_marker`) next to `recordFile`;
//!     every later DEL for them succeeds.
//! - Config keys `sleepOnAdd` / `sleepOnDel` (milliseconds) make ADD / DEL slow. A slow
//!   call first writes its pid to `in_flight_marker` (see the recording module), so a
//!   test knows the call is in progress and which process runs it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use multus_integration_tests::recording::{Record, del_once_marker, in_flight_marker, now_ms};
use serde_json::{Value, json};

/// Versions the recorder answers to.
const SUPPORTED_VERSIONS: &[&str] = &[
    "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
];

fn main() {
    std::process::exit(run());
}

fn run() -> i32 {
    let started_at_ms = now_ms();
    let env = |key: &str| std::env::var(key).unwrap_or_default();
    let command = env("CNI_COMMAND");
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
        return fail(5, &format!("recorder: cannot read stdin: {e}"));
    }
    let raw = String::from_utf8_lossy(&bytes).into_owned();
    if command == "VERSION" {
        println!(
            "{}",
            json!({"cniVersion": "1.0.0", "supportedVersions": SUPPORTED_VERSIONS})
        );
        return 0;
    }
    let conf: Value = match serde_json::from_str(&raw) {
        Ok(conf @ Value::Object(_)) => conf,
        _ => return fail(6, "recorder: stdin is not a JSON object"),
    };
    let Some(record_file) = conf
        .get("recordFile")
        .and_then(Value::as_str)
        .map(PathBuf::from)
    else {
        return fail(7, "recorder: config key recordFile is missing");
    };
    let container_id = env("CNI_CONTAINERID");
    let ifname = env("CNI_IFNAME");
    let version = conf
        .get("cniVersion")
        .and_then(Value::as_str)
        .unwrap_or("1.0.0")
        .to_owned();

    let sleep_key = match command.as_str() {
        "ADD" => Some("sleepOnAdd"),
        "DEL" => Some("sleepOnDel"),
        _ => None,
    };
    if let Some(ms) = sleep_key
        .and_then(|key| conf.get(key))
        .and_then(Value::as_u64)
    {
        let marker = in_flight_marker(&record_file, &command, &container_id, &ifname);
        if let Err(e) = std::fs::write(&marker, std::process::id().to_string()) {
            return fail(
                5,
                &format!("recorder: cannot write {}: {e}", marker.display()),
            );
        }
        std::thread::sleep(Duration::from_millis(ms));
    }

    let failure = failure_for(
        &conf,
        &command,
        &version,
        &record_file,
        &container_id,
        &ifname,
    );
    let result_version = conf
        .get("resultVersion")
        .and_then(Value::as_str)
        .unwrap_or(&version)
        .to_owned();
    let result = (command == "ADD" && failure.is_none())
        .then(|| result_for(&conf, &result_version, &ifname, &env("CNI_NETNS")));
    let record = Record {
        command,
        container_id,
        netns: env("CNI_NETNS"),
        ifname,
        args: env("CNI_ARGS"),
        path: env("CNI_PATH"),
        stdin: conf,
        stdin_raw: raw,
        result: result.clone(),
        started_at_ms,
        finished_at_ms: now_ms(),
    };
    if let Err(e) = record.append(&record_file) {
        return fail(
            5,
            &format!("recorder: cannot append to {}: {e}", record_file.display()),
        );
    }
    if let Some((code, msg)) = failure {
        return fail(code, &msg);
    }
    if let Some(result) = result {
        println!("{result}");
    }
    0
}

/// The error this call must end with, if any: `(code, msg)`.
fn failure_for(
    conf: &Value,
    command: &str,
    version: &str,
    record_file: &Path,
    container_id: &str,
    ifname: &str,
) -> Option<(u32, String)> {
    if matches!(command, "STATUS" | "GC") && version != "1.1.0" {
        return Some((4, format!("unknown CNI_COMMAND: {command}")));
    }
    let fail_on = conf.get("failOn").and_then(Value::as_str)?;
    match (fail_on, command) {
        ("STATUS", "STATUS") => Some((50, "not ready".to_owned())),
        ("DEL-once", "DEL") => {
            let marker = del_once_marker(record_file, container_id, ifname);
            if marker.exists() {
                return None;
            }
            match std::fs::write(&marker, b"failed once\n") {
                Ok(()) => Some((11, "recorder asked to fail once".to_owned())),
                Err(e) => Some((
                    5,
                    format!("recorder: cannot write {}: {e}", marker.display()),
                )),
            }
        }
        (fail_on, command) if fail_on == command => Some((11, "recorder asked to fail".to_owned())),
        _ => None,
    }
}

/// The ADD result in `version`.
fn result_for(conf: &Value, version: &str, ifname: &str, netns: &str) -> Value {
    let given = conf.get("fixedResult").or_else(|| conf.get("prevResult"));
    if let Some(prev) = given.filter(|p| p.is_object()) {
        let mut result = prev.clone();
        result["cniVersion"] = Value::from(version);
        return result;
    }
    let address = conf.get("address").and_then(Value::as_str);
    if matches!(version, "0.1.0" | "0.2.0") {
        let mut result = json!({"cniVersion": version, "dns": {}});
        if let Some(address) = address {
            result["ip4"] = json!({"ip": address});
        }
        return result;
    }
    let legacy = version.starts_with("0.");
    let ips: Vec<Value> = address
        .map(|address| {
            let mut ip = json!({"interface": 0, "address": address});
            if legacy {
                ip["version"] = Value::from(if address.contains(':') { "6" } else { "4" });
            }
            ip
        })
        .into_iter()
        .collect();
    json!({
        "cniVersion": version,
        "interfaces": [{"name": ifname, "sandbox": netns}],
        "ips": ips,
        "dns": {},
    })
}

/// Print a CNI error document and return the exit code 1.
fn fail(code: u32, msg: &str) -> i32 {
    println!("{}", json!({"code": code, "msg": msg}));
    1
}
