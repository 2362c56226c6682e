//! The container image: `scripts/build-image.sh` builds it (static musl release binaries,
//! `podman build` of `deployments/Containerfile`, `podman save`), then this test reads
//! the saved tarball itself: the entrypoint, the user, the files, that every binary the
//! manifests run is there, executable and statically linked, and that the binaries run.
//!
//! It takes minutes (a release build for another target), so `cargo test` leaves it out
//! and `scripts/test.sh` runs it with `--ignored`. It never skips: without podman (or
//! root to install it) the build script fails and so does the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use multus_integration_tests::manifests::{IMAGE, IMAGE_BIN_DIR, Manifest, THICK, THIN, repo};
use serde_json::Value;

/// A file of the image: mode and content (directories have none).
#[derive(Debug)]
struct Entry {
    mode: u32,
    is_dir: bool,
    bytes: Vec<u8>,
}

/// The image's config and its files, from a docker-archive tarball.
fn read_image(tarball: &Path) -> (Value, Vec<String>, BTreeMap<String, Entry>) {
    let mut members: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut archive = tar::Archive::new(std::fs::File::open(tarball).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        members.insert(name, bytes);
    }
    let manifest: Value = serde_json::from_slice(&members["manifest.json"]).unwrap();
    let manifest = &manifest[0];
    let config: Value =
        serde_json::from_slice(&members[manifest["Config"].as_str().unwrap()]).unwrap();
    let tags = manifest["RepoTags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    let mut files = BTreeMap::new();
    for layer in manifest["Layers"].as_array().unwrap() {
        let bytes = &members[layer.as_str().unwrap()];
        let mut layer = tar::Archive::new(bytes.as_slice());
        for entry in layer.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = format!(
                "/{}",
                entry
                    .path()
                    .unwrap()
                    .display()
                    .to_string()
                    .trim_start_matches("./")
            );
            let name = name.trim_end_matches('/').to_owned();
            let is_dir = entry.header().entry_type().is_dir();
            let mode = entry.header().mode().unwrap() & 0o7777;
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            files.insert(
                name,
                Entry {
                    mode,
                    is_dir,
                    bytes,
                },
            );
        }
    }
    (config["config"].clone(), tags, files)
}

/// Whether an ELF file has a program interpreter (is dynamically linked).
fn has_interpreter(elf: &[u8]) -> bool {
    assert!(elf.len() > 64 && &elf[..4] == b"\x7fELF", "not an ELF file");
    assert_eq!(elf[4], 2, "64-bit ELF");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap());
    let phoff = usize::try_from(u64_at(0x20)).unwrap();
    let phentsize = usize::from(u16_at(0x36));
    let phnum = usize::from(u16_at(0x38));
    (0..phnum).any(|i| u32_at(phoff + i * phentsize) == 3) // PT_INTERP
}

/// Every program the manifests run (containers and probes).
fn programs_in_manifests() -> Vec<String> {
    let mut programs = Vec::new();
    for name in [THICK, THIN] {
        for (value, _) in Manifest::load(name).documents {
            collect_commands(&value, &mut programs);
        }
    }
    programs.sort();
    programs.dedup();
    programs
}

fn collect_commands(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key == "command"
                    && let Some(first) = v.as_array().and_then(|a| a.first())
                {
                    out.push(first.as_str().unwrap().to_owned());
                }
                collect_commands(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_commands(v, out)),
        _ => {}
    }
}

#[test]
#[ignore = "builds the container image (several minutes); scripts/test.sh runs it with --ignored"]
fn the_image_is_built_from_scratch_with_static_binaries_at_the_manifests_paths() {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("image");
    let status = Command::new(repo().join("scripts/build-image.sh"))
        .env("MULTUS_IMAGE_OUT", &out)
        .status()
        .expect("run scripts/build-image.sh");
    assert!(
        status.success(),
        "scripts/build-image.sh failed (see its output above)"
    );
    let tarball = out.join("multus-rs.tar");
    let (config, tags, files) = read_image(&tarball);

    assert!(
        tags.iter()
            .any(|t| t == IMAGE || t == &format!("localhost/{IMAGE}")),
        "{tags:?}"
    );
    let bin = |name: &str| format!("{IMAGE_BIN_DIR}/{name}");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!([bin("multus-daemon")])
    );
    assert_eq!(config["User"], "0:0");
    assert_eq!(
        config["Env"],
        serde_json::json!([format!("PATH={IMAGE_BIN_DIR}")])
    );

    // Only the binaries and their directories: no shell, no libc, nothing else.
    let regular: Vec<&String> = files
        .iter()
        .filter(|(_, e)| !e.is_dir)
        .map(|(n, _)| n)
        .collect();
    let expected: Vec<String> = [
        "multus",
        "multus-ctl",
        "multus-daemon",
        "multus-node",
        "multus-shim",
        "passthru",
    ]
    .iter()
    .map(|n| bin(n))
    .collect();
    assert_eq!(
        regular,
        expected.iter().collect::<Vec<_>>(),
        "the image's files"
    );
    for program in programs_in_manifests() {
        let entry = files
            .get(&program)
            .unwrap_or_else(|| panic!("the manifests run {program}, which the image lacks"));
        assert_eq!(entry.mode & 0o111, 0o111, "{program} is executable");
    }
    let extracted = tempfile::tempdir().unwrap();
    let mut total = 0;
    for name in &expected {
        let entry = &files[name];
        total += entry.bytes.len();
        assert!(
            !has_interpreter(&entry.bytes),
            "{name} is statically linked"
        );
        // It runs outside any container: nothing from the host's libraries is needed.
        let path = extracted.path().join(Path::new(name).file_name().unwrap());
        std::fs::write(&path, &entry.bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let version = Command::new(&path)
            .arg("--version")
            .env_clear()
            .output()
            .unwrap();
        assert!(version.status.success(), "{name} --version: {version:?}");
        println!(
            "{name}: {} bytes: {}",
            entry.bytes.len(),
            String::from_utf8_lossy(&version.stdout).trim()
        );
    }
    let tarball_size = std::fs::metadata(&tarball).unwrap().len();
    println!(
        "image {IMAGE}: {} files, {total} bytes of binaries ({:.1} MiB), tarball {tarball_size} bytes",
        files.len(),
        total as f64 / 1_048_576.0
    );
}
