//! `multus-node install`: the mode's binary and `passthru`, atomic replacement while the
//! old binary runs, and clear failures when the host directory or a source is missing or
//! not writable.
//!
//! Everything happens in temporary directories standing in for the host's
//! `/opt/cni/bin`; the read-only case runs in a private mount namespace.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const NODE: &str = env!("CARGO_BIN_EXE_multus-node");

fn install(mode: &str, source_dir: &Path, dest: &Path) -> Output {
    Command::new(NODE)
        .args(["install", "--type", mode, "--dest"])
        .arg(dest)
        .arg("--source-dir")
        .arg(source_dir)
        .output()
        .expect("run multus-node")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A source directory holding `name` as a copy of `program` (a real executable).
fn source_with(dir: &Path, name: &str, program: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::copy(program, &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir.to_owned()
}

fn which(program: &str) -> String {
    for dir in ["/usr/bin", "/bin"] {
        let path = Path::new(dir).join(program);
        if path.exists() {
            return path.display().to_string();
        }
    }
    panic!("{program} not found in /usr/bin or /bin (coreutils)");
}

/// The file names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn installs_the_mode_binary_and_passthru_with_the_source_mode_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    source_with(&src, "multus", &which("true"));
    source_with(&src, "multus-shim", &which("false"));
    source_with(&src, "passthru", &which("echo"));
    source_with(&src, "multus-daemon", &which("true"));
    std::fs::set_permissions(src.join("multus"), std::fs::Permissions::from_mode(0o750)).unwrap();
    let dest = tmp.path().join("bin");
    std::fs::create_dir(&dest).unwrap();

    let out = install("thin", &src, &dest);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        names_in(&dest),
        vec!["multus", "passthru"],
        "thin installs multus and passthru only"
    );
    assert_eq!(
        std::fs::read(dest.join("passthru")).unwrap(),
        std::fs::read(src.join("passthru")).unwrap()
    );
    let mode = std::fs::metadata(dest.join("multus"))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o750, "the source's mode");
    assert_eq!(
        std::fs::read(dest.join("multus")).unwrap(),
        std::fs::read(src.join("multus")).unwrap()
    );

    let thick_dest = tmp.path().join("thick-bin");
    std::fs::create_dir(&thick_dest).unwrap();
    let out = install("thick", &src, &thick_dest);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(names_in(&thick_dest), vec!["multus-shim", "passthru"]);
    let out = install("thick", &src, &dest);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dest.join("multus-shim").exists());
    // A second run finds them current and says so.
    let out = install("thick", &src, &dest);
    assert!(out.status.success());
    assert_eq!(
        stderr(&out).matches("already up to date").count(),
        2,
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_missing_passthru_is_a_clear_failure_after_the_mode_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let src = source_with(&tmp.path().join("src"), "multus", &which("true"));
    let dest = tmp.path().join("bin");
    std::fs::create_dir(&dest).unwrap();
    let out = install("thin", &src, &dest);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(
        message.contains("passthru") && message.contains("does not exist"),
        "{message}"
    );
    // As upstream's install_multus: the mode's binary is installed first.
    assert_eq!(names_in(&dest), vec!["multus"]);
}

/// Control: what a plain copy does over a running binary. This is upstream #1221.
#[test]
fn a_plain_copy_over_a_running_binary_fails_with_text_file_busy_and_install_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("bin");
    std::fs::create_dir(&dest).unwrap();
    let old = source_with(&tmp.path().join("old"), "multus-shim", &which("sleep"));
    let new = source_with(&tmp.path().join("new"), "multus-shim", &which("true"));
    for dir in [&old, &new] {
        source_with(dir, "passthru", &which("true"));
    }
    let out = install("thick", &old, &dest);
    assert!(out.status.success(), "{}", stderr(&out));

    let target = dest.join("multus-shim");
    let mut running = Command::new(&target).arg("30").spawn().unwrap();
    std::thread::sleep(Duration::from_millis(100));

    let busy = std::fs::OpenOptions::new().write(true).open(&target);
    let error = busy.expect_err("opening a running binary for writing must fail");
    assert_eq!(
        error.raw_os_error(),
        Some(nix::libc::ETXTBSY),
        "the control: a plain cp hits ETXTBSY"
    );

    let out = install("thick", &new, &dest);
    assert!(
        out.status.success(),
        "install over a running binary: {}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(&target).unwrap(),
        std::fs::read(new.join("multus-shim")).unwrap()
    );
    assert!(
        Command::new(&target).status().unwrap().success(),
        "the new binary runs"
    );
    assert!(
        running.try_wait().unwrap().is_none(),
        "the old process still runs"
    );
    running.kill().unwrap();
    let _ = running.wait();
}

/// A runtime execs the plugin in a loop while the installer replaces it again and
/// again: every exec runs a complete binary (one of the two versions), never fails with
/// ETXTBSY, ENOEXEC or ENOENT, never crashes.
#[test]
fn execs_during_repeated_replacement_always_run_a_whole_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("bin");
    std::fs::create_dir(&dest).unwrap();
    // Exit 0 and exit 1: which version ran is visible; anything else is a failure.
    let v0 = source_with(&tmp.path().join("v0"), "multus", &which("true"));
    let v1 = source_with(&tmp.path().join("v1"), "multus", &which("false"));
    for dir in [&v0, &v1] {
        source_with(dir, "passthru", &which("true"));
    }
    assert!(install("thin", &v0, &dest).status.success());
    let target = dest.join("multus");

    let stop = Arc::new(AtomicBool::new(false));
    let runner = {
        let stop = stop.clone();
        let target = target.clone();
        std::thread::spawn(move || {
            let mut seen = [0u32; 2];
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match Command::new(&target).status() {
                    Ok(status) => match status.code() {
                        Some(0) => seen[0] += 1,
                        Some(1) => seen[1] += 1,
                        _ => failures.push(format!("{status:?}")),
                    },
                    Err(e) => failures.push(e.to_string()),
                }
            }
            (seen, failures)
        })
    };
    let started = Instant::now();
    let mut rounds = 0;
    while rounds < 60 || started.elapsed() < Duration::from_secs(2) {
        let source = if rounds % 2 == 0 { &v1 } else { &v0 };
        let out = install("thin", source, &dest);
        assert!(out.status.success(), "round {rounds}: {}", stderr(&out));
        rounds += 1;
        if started.elapsed() > Duration::from_secs(30) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (seen, failures) = runner.join().unwrap();
    assert!(
        failures.is_empty(),
        "execs that did not run a whole binary: {failures:?}"
    );
    assert!(
        seen[0] > 0 && seen[1] > 0,
        "both versions ran while they were being replaced: {seen:?} over {rounds} installs"
    );
    assert_eq!(
        names_in(&dest),
        vec!["multus", "passthru"],
        "no temporary file left"
    );
}

#[test]
fn a_missing_destination_or_source_is_a_clear_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let src = source_with(&tmp.path().join("src"), "multus", &which("true"));

    let missing = tmp.path().join("no-such-dir");
    let out = install("thin", &src, &missing);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(
        message.contains(&missing.display().to_string()) && message.contains("does not exist"),
        "{message}"
    );
    assert!(
        message.contains("hostPath"),
        "says what to check: {message}"
    );

    let dest = tmp.path().join("bin");
    std::fs::create_dir(&dest).unwrap();
    let out = install("thick", &src, &dest);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(
        message.contains("multus-shim") && message.contains("does not exist"),
        "{message}"
    );

    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = install("thin", &src, &file);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not a directory"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unwritable_destination_is_a_clear_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let src = source_with(&tmp.path().join("src"), "multus", &which("true"));
    let dest = tmp.path().join("bin");
    std::fs::create_dir(&dest).unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    if nix::unistd::geteuid().is_root() {
        // Root writes anywhere; a read-only mount is what stops it (an immutable node
        // OS). The mount lives in a private mount namespace of the child only.
        let script = format!(
            "mount --bind {d} {d} && mount -o remount,ro,bind {d} && exec {node} install --type thin --dest {d} --source-dir {s}",
            d = dest.display(),
            node = NODE,
            s = src.display()
        );
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .output()
            .expect("unshare (util-linux)");
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));

        // And a non-root user cannot write a root-owned 0755 directory.
        let out = Command::new(NODE)
            .args(["install", "--type", "thin", "--dest"])
            .arg(&dest)
            .arg("--source-dir")
            .arg(&src)
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("is not writable"), "{}", stderr(&out));
    } else {
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o555)).unwrap();
        let out = install("thin", &src, &dest);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("is not writable"), "{}", stderr(&out));
    }
    assert!(!dest.join("multus").exists());
}
