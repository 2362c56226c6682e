//! `multus-shim`: the thick-mode Multus CNI plugin, exec'd by the container runtime; it
//! forwards the call to `multus-daemon` (see the `multus_shim` library).

use std::collections::BTreeMap;
use std::io::{Read, Write};

fn main() {
    if let Some(flag) = std::env::args().nth(1)
        && (flag == "-v" || flag == "--version" || flag == "-version")
    {
        println!(
            "multus-rs multus-shim: version:{}",
            env!("CARGO_PKG_VERSION")
        );
        return;
    }
    // Upstream forwards the whole environment; the daemon reads the CNI_* keys.
    let env: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let mut stdin = Vec::new();
    let outcome = match std::io::stdin().read_to_end(&mut stdin) {
        Ok(_) => multus_shim::shim::run(&env, stdin, std::time::SystemTime::now()),
        Err(e) => {
            let error = multus_core::cni::CniError::new(
                multus_core::cni::ErrorCode::IoFailure,
                format!("multus-shim: cannot read stdin: {e}"),
            );
            multus_shim::shim::Outcome {
                stdout: error.to_json().into_bytes(),
                exit_code: 1,
            }
        }
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&outcome.stdout);
    let _ = stdout.flush();
    std::process::exit(outcome.exit_code);
}
