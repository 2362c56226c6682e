//! `cni-recorder`: a real CNI plugin for tests that records every call and creates
//! nothing.
//!
//! Each call (except VERSION) appends one JSON line to the file named by the config key
//! `recordFile`: the `CNI_*` environment, stdin parsed and raw, and the printed result
//! (see `multus_integration_tests::recording::Record`).
//!
//! - ADD prints a result of the config's `cniVersion`: `prevResult` passed through when
//!   present, else one sandbox interface named `CNI_IFNAME` with the address of config
//!   key `address` when given (no IPs otherwise).
//! - DEL, CHECK (and GC, STATUS) print nothing.
//! - VERSION prints the supported versions.
//! - Config key `failOn: "ADD"|"DEL"|"CHECK"` makes that command record the call, then
//!   fail with `{"code":11,"msg":"recorder asked to fail"}` and exit code 1.

use std::io::Read;

use multus_integration_tests::recording::Record;
use serde_json::{Value, json};

/// Versions the recorder answers to.
const SUPPORTED_VERSIONS: &[&str] = &[
    "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
];

fn main() {
    std::process::exit(run());
}

fn run() -> i32 {
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
        .map(std::path::PathBuf::from)
    else {
        return fail(7, "recorder: config key recordFile is missing");
    };
    let failing = conf.get("failOn").and_then(Value::as_str) == Some(command.as_str());
    let result = (command == "ADD" && !failing)
        .then(|| result_for(&conf, &env("CNI_IFNAME"), &env("CNI_NETNS")));
    let record = Record {
        command,
        container_id: env("CNI_CONTAINERID"),
        netns: env("CNI_NETNS"),
        ifname: env("CNI_IFNAME"),
        args: env("CNI_ARGS"),
        path: env("CNI_PATH"),
        stdin: conf,
        stdin_raw: raw,
        result: result.clone(),
    };
    if let Err(e) = record.append(&record_file) {
        return fail(
            5,
            &format!("recorder: cannot append to {}: {e}", record_file.display()),
        );
    }
    if failing {
        return fail(11, "recorder asked to fail");
    }
    if let Some(result) = result {
        println!("{result}");
    }
    0
}

/// The ADD result in the config's version.
fn result_for(conf: &Value, ifname: &str, netns: &str) -> Value {
    let version = conf
        .get("cniVersion")
        .and_then(Value::as_str)
        .unwrap_or("1.0.0")
        .to_owned();
    if let Some(prev) = conf.get("prevResult").filter(|p| p.is_object()) {
        let mut result = prev.clone();
        result["cniVersion"] = Value::from(version);
        return result;
    }
    let address = conf.get("address").and_then(Value::as_str);
    if matches!(version.as_str(), "0.1.0" | "0.2.0") {
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
