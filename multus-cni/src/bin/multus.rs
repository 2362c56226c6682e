//! `multus`: the thin Multus CNI plugin, exec'd by the container runtime.

use std::collections::BTreeMap;
use std::io::{Read, Write};

fn main() {
    let mut argv = std::env::args().skip(1);
    if let Some(flag) = argv.next()
        && (flag == "-v" || flag == "--version" || flag == "-version")
    {
        println!("multus-rs multus: version:{}", env!("CARGO_PKG_VERSION"));
        return;
    }
    let env: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with("CNI_"))
        .collect();
    let mut stdin = Vec::new();
    let outcome = match std::io::stdin().read_to_end(&mut stdin) {
        Ok(_) => multus_cni::edge::run(&env, stdin),
        Err(e) => multus_cni::edge::read_failure(&e.to_string()),
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&outcome.stdout);
    let _ = stdout.flush();
    std::process::exit(outcome.exit_code);
}
