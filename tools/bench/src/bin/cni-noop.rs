//! `cni-noop`: the cheapest possible CNI plugin, to measure multus' own overhead.
//! ADD prints an empty result of the config's version; every other command prints
//! nothing (VERSION prints the supported versions).

use std::io::{Read, Write};

fn main() {
    let mut stdin = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut stdin);
    let version = serde_json::from_slice::<serde_json::Value>(&stdin)
        .ok()
        .and_then(|v| v.get("cniVersion")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "1.0.0".to_owned());
    let out = match std::env::var("CNI_COMMAND").as_deref() {
        Ok("ADD") => format!(r#"{{"cniVersion":"{version}","dns":{{}}}}"#),
        Ok("VERSION") => {
            r#"{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}"#
                .to_owned()
        }
        _ => String::new(),
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
}
