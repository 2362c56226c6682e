//! The workspace's `rust-version` is true: no older than the newest `rust-version` any
//! dependency declares, and no older than the language features the code uses
//! (let-chains: 1.88). Older toolchains cannot be installed to try, so this reads the
//! resolved dependency graph (`cargo metadata`) instead; clippy's
//! `incompatible_msrv` lint covers the standard library APIs we call.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::process::Command;

use serde_json::Value;

/// The oldest toolchain the code itself needs, whatever the dependencies say.
const LANGUAGE_FLOOR: (u64, u64) = (1, 88);

fn version(text: &str) -> Option<(u64, u64)> {
    let mut parts = text.split('.').map(str::parse::<u64>);
    Some((parts.next()?.ok()?, parts.next()?.ok()?))
}

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .args(["--manifest-path", manifest])
        .output()
        .expect("cannot run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

#[test]
fn rust_version_covers_every_dependency_and_the_language_features_used() {
    let metadata = metadata();
    let packages = metadata["packages"].as_array().expect("packages");
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let declared = |p: &Value| p["rust_version"].as_str().and_then(version);

    let mut needed = (LANGUAGE_FLOOR, "let-chains".to_owned());
    for package in packages {
        let id = package["id"].as_str().unwrap_or_default();
        if members.contains(&id) {
            continue;
        }
        if let Some(v) = declared(package)
            && v > needed.0
        {
            needed = (v, format!("{} {}", package["name"], package["version"]));
        }
    }
    for package in packages
        .iter()
        .filter(|p| members.contains(&p["id"].as_str().unwrap_or_default()))
    {
        let own = declared(package)
            .unwrap_or_else(|| panic!("{} declares no rust-version", package["name"]));
        assert!(
            own >= needed.0,
            "{} declares rust-version {}.{}, but {} needs {}.{}",
            package["name"],
            own.0,
            own.1,
            needed.1,
            needed.0.0,
            needed.0.1
        );
    }
}
