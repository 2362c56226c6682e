//! multus's state files under hostile or failing conditions, replayed with the real
//! `multus` binary and the reference plugins: symlinks planted at its paths, a
//! world-writable state directory, container IDs too long for a file name, a state
//! directory that fills up in the middle of an ADD, a read-only one at DEL, and lock files
//! that must not outlive their request.

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use multus_integration_tests::binaries::Binaries;
use multus_integration_tests::fixtures::{bridge_conf, recorder_conf};
use multus_integration_tests::{BRIDGE_NAD, Harness};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use serde_json::json;

const VERSION: &str = "1.0.0";

/// Run `f` on a thread of its own inside a private mount namespace, as under
/// `unshare --mount --propagation private`: what it mounts, and the `multus` processes
/// it starts, see mounts the rest of the machine never does.
fn in_private_mount_namespace<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                unshare(CloneFlags::CLONE_NEWNS).expect("unshare(CLONE_NEWNS) (run as root)");
                mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    None::<&str>,
                )
                .expect("make / private in the new mount namespace");
                f()
            })
            .join()
            .expect("the test thread panicked")
    })
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_symlink_planted_at_the_lock_path_is_not_followed() {
    let (h, pod, conf) = Harness::with_pod(VERSION, BRIDGE_NAD);
    std::fs::create_dir(h.dirs.sandboxes_dir()).unwrap();
    std::fs::set_permissions(
        h.dirs.sandboxes_dir(),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    // A link to a file that does not exist yet: following it would create the file
    // (as root, anywhere on the node).
    let victim = h.dirs.root().join("created-through-the-link");
    std::os::unix::fs::symlink(&victim, h.dirs.lock_path(&pod.container_id)).unwrap();

    let result = h.runtime.add(&pod, &conf).success();
    assert!(
        !victim.exists(),
        "the lock was opened through the planted link"
    );
    assert!(h.dirs.state(&pod.container_id).is_some());
    // A link to an existing file, planted for the DEL: left untouched too.
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, h.dirs.lock_path(&pod.container_id)).unwrap();
    h.runtime.del(&pod, &conf, Some(&result)).empty_success();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    std::fs::remove_file(&victim).unwrap();
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn a_world_writable_state_directory_is_fixed_to_owner_only() {
    for loose in [0o777, 0o1777] {
        let (h, pod, conf) = Harness::with_pod(VERSION, "");
        std::fs::create_dir(h.dirs.sandboxes_dir()).unwrap();
        std::fs::set_permissions(
            h.dirs.sandboxes_dir(),
            std::fs::Permissions::from_mode(loose),
        )
        .unwrap();
        let result = h.runtime.add(&pod, &conf).success();
        assert_eq!(mode_of(&h.dirs.sandboxes_dir()), 0o700, "was {loose:o}");
        let record = h.dirs.record_path(&pod.container_id);
        assert_eq!(mode_of(&record), 0o600);
        h.runtime.del(&pod, &conf, Some(&result)).empty_success();
        h.assert_nothing_leaked(&[&pod]);
    }
}

#[test]
fn a_container_id_too_long_for_a_file_name_is_refused_at_add_and_deleted() {
    let (h, pod, conf) = Harness::with_pod(VERSION, BRIDGE_NAD);
    let long_id = format!("c{}", "0123456789".repeat(30));
    assert_eq!(long_id.len(), 301);
    let add = h
        .runtime
        .call("ADD", &pod, &conf)
        .set("CNI_CONTAINERID", &long_id);
    h.runtime
        .run(add)
        .error_with_code(104)
        .assert_msg_contains(&[&pod.pod_ref(), "301 bytes", "up to 250 bytes"]);
    h.assert_nothing_leaked(&[&pod]);
    let del = h
        .runtime
        .call("DEL", &pod, &conf)
        .set("CNI_CONTAINERID", &long_id);
    h.runtime.run(del).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}

/// A plugin that fills the file system holding `fill` on ADD, then runs the bridge
/// plugin: the state directory is full after the first record write, before the last.
fn install_filler(h: &Harness, fill: &Path) {
    let bridge = Binaries::get().plugin_dir.join("bridge");
    let script = format!(
        "#!/bin/sh\nif [ \"$CNI_COMMAND\" = ADD ]; then head -c 67108864 /dev/zero > '{}' 2>/dev/null; fi\nexec '{}'\n",
        fill.display(),
        bridge.display()
    );
    let path = h.dirs.bin_dir().join("filler");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_state_directory_that_fills_up_during_add_rolls_everything_back() {
    let h = Harness::new();
    let nets = h.standard_networks(VERSION);
    let fill = h.dirs.cni_dir().join("fill");
    install_filler(&h, &fill);
    let mut filler = bridge_conf(VERSION, "filler", "mrs-br1", nets.brnet, false, &h.dirs);
    filler["type"] = json!("filler");
    h.dirs.write_nad_json("filler", &filler);
    let conf = h
        .multus_config(VERSION, &nets)
        .set("binDir", json!(h.dirs.bin_dir()))
        .networks("filler")
        .build();
    let pod = h.sandbox();
    let cni_dir = h.dirs.cni_dir();

    in_private_mount_namespace(|| {
        mount(
            Some("tmpfs"),
            &cni_dir,
            Some("tmpfs"),
            MsFlags::empty(),
            Some("size=256k,mode=0700"),
        )
        .expect("mount a small tmpfs on cniDir");
        let error = h.runtime.add(&pod, &conf).error_with_code(104);
        assert!(fill.exists(), "the filler plugin ran");
        let text = format!("{} {}", error.msg, error.details);
        assert!(text.contains("state store"), "{text}");
        // Both networks were attached, then rolled back: nothing stays attached after
        // the failed ADD, and no record or lock file is left.
        h.assert_nothing_leaked(&[&pod]);
        std::fs::remove_file(&fill).unwrap();
        // The runtime's DEL after the failed ADD has nothing to do and succeeds.
        h.runtime.del(&pod, &conf, None).empty_success();
        h.assert_nothing_leaked(&[&pod]);
    });
}

#[test]
fn del_of_a_never_added_container_succeeds_on_a_read_only_state_directory() {
    for sandboxes_exist in [false, true] {
        let (h, pod, conf) = Harness::with_pod(VERSION, BRIDGE_NAD);
        let cni_dir = h.dirs.cni_dir();
        if sandboxes_exist {
            std::fs::create_dir(h.dirs.sandboxes_dir()).unwrap();
        }
        in_private_mount_namespace(|| {
            mount(
                Some(&cni_dir),
                &cni_dir,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .expect("bind-mount cniDir");
            mount(
                None::<&str>,
                &cni_dir,
                None::<&str>,
                MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .expect("make cniDir read-only");
            h.runtime.del(&pod, &conf, None).empty_success();
            h.assert_nothing_leaked(&[&pod]);
        });
    }
}

#[test]
fn no_lock_file_outlives_a_failed_del_or_a_failed_add() {
    let h = Harness::new();
    let nets = h.standard_networks(VERSION);
    h.dirs.install_recorder("recorder");
    let mut flaky = recorder_conf(VERSION, "flaky", "flaky", &h.dirs);
    flaky["failOn"] = json!("DEL-once");
    h.dirs.write_nad_json("flaky", &flaky);
    let conf = h
        .multus_config(VERSION, &nets)
        .set("binDir", json!(h.dirs.bin_dir()))
        .networks("flaky");
    let pod = h.sandbox();
    let lock = h.dirs.lock_path(&pod.container_id);

    let result = h.runtime.add(&pod, &conf.clone().build()).success();
    assert!(!lock.exists(), "lock file left after ADD");
    // The failed DEL keeps the record for the retry, and no lock file.
    h.runtime
        .del(&pod, &conf.clone().build(), Some(&result))
        .error();
    assert!(h.dirs.state(&pod.container_id).is_some());
    assert!(!lock.exists(), "lock file left after a failed DEL");
    h.runtime
        .del(&pod, &conf.clone().build(), Some(&result))
        .empty_success();
    h.assert_nothing_leaked(&[&pod]);

    // A failed ADD (unknown network) leaves neither.
    let other = h.sandbox();
    h.runtime
        .add(&other, &conf.networks("nosuchnet").build())
        .error();
    assert!(!h.dirs.lock_path(&other.container_id).exists());
    h.assert_nothing_leaked(&[&pod, &other]);
}
