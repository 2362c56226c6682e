//! multus-ctl against the real thick mode: `multus-daemon` running in a node namespace
//! the test creates (file-based networks, no API server), `multus-shim` driven through
//! `multus-ctl exec`, and the reference plugins attaching a real pod. `daemon health`,
//! `metrics` and `config` talk to that daemon; `config generate` must print exactly the
//! file its config manager wrote, and, in thin mode, exactly the file `multus-node
//! thin-entrypoint` wrote. Needs root, `containernetworking-plugins` and the built
//! binaries (`cargo build --workspace --bins`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use multus_integration_tests::CLUSTER_NETWORK;
use multus_integration_tests::binaries::Binaries;
use multus_integration_tests::binaries::SYSTEM_PATH;
use multus_integration_tests::command::{Output, run_in};
use multus_integration_tests::ctl::{collapse, ctl_binary, fixtures};
use multus_integration_tests::fixtures::{Subnet, bridge_conf};
use multus_integration_tests::thick::{Process, Thick, built, write_atomically};
use serde_json::{Value, json};

/// multus-ctl in the machine's namespace (the socket is a path: reachable from any).
fn ctl(args: &[&str]) -> Output {
    run_in(&ctl_binary(), Path::new("/"), args, &[])
}

/// The same paths replaced in every output: the daemon's root and the harness'.
/// A check of a generated conf: it names the primary `primary`.
fn names(primary: &Path) -> impl Fn(&Value) -> bool {
    let wanted = primary.display().to_string();
    move |doc| doc.to_string().contains(&wanted)
}

fn stable(thick: &Thick, text: &str) -> String {
    text.replace(&thick.root.path().display().to_string(), "<root>")
        .replace(&thick.h.dirs.root().display().to_string(), "<dirs>")
}

#[test]
fn daemon_commands_config_generate_and_exec_through_the_shim() {
    let mut thick = Thick::new(false);
    thick.set("maxConcurrentRequests", json!(4));
    thick.set(
        "capabilities",
        json!({"io.kubernetes.cri.pod-annotations": true}),
    );
    let calico = std::fs::read(fixtures().join("generate/10-calico.conflist")).unwrap();
    let calico_path = thick.write_primary_bytes("10-calico.conflist", &calico);
    thick.start_daemon();
    let config_path = thick.config_path().display().to_string();
    let socket_dir = thick.socket_dir().display().to_string();

    // config generate prints exactly what the daemon's config manager wrote.
    let written = thick.wait_generated_bytes("00-multus.conf", names(&calico_path));
    let generate = [
        "config",
        "generate",
        "--primary",
        &calico_path.display().to_string(),
        "--daemon-config",
        &config_path,
    ]
    .map(str::to_owned);
    let args = |extra: &[&str]| -> Vec<String> {
        generate
            .iter()
            .cloned()
            .chain(extra.iter().map(|s| (*s).to_owned()))
            .collect()
    };
    let run = |args: Vec<String>| ctl(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let raw = run(args(&["--raw"]));
    assert_eq!(
        raw.expect(0).as_bytes(),
        written.as_slice(),
        "config generate differs from the daemon's file"
    );
    let table = run(args(&[]));
    insta::assert_snapshot!(
        "thick_config_generate_table",
        stable(&thick, table.expect(0))
    );
    let report = run(args(&["-o", "json"])).json();
    assert_eq!(
        report["path"],
        thick.net_d().join("00-multus.conf").display().to_string()
    );

    // daemon health: alive and ready.
    let health = ctl(&["daemon", "health", "--socket-dir", &socket_dir]);
    let table = collapse(&stable(&thick, health.expect(0)));
    insta::with_settings!({filters => vec![(r"\d+\.\d ms", "[latency]")]}, {
        insta::assert_snapshot!("thick_daemon_health_table", table);
    });
    let health = ctl(&[
        "daemon",
        "health",
        "--socket-dir",
        &socket_dir,
        "-o",
        "json",
    ])
    .json();
    assert_eq!(
        (&health["healthy"], &health["ready"]),
        (&json!(true), &json!(true))
    );

    // daemon config: every key of the daemon configuration, and the config manager's
    // file; the socket found from the daemon configuration itself.
    let config = ctl(&[
        "daemon",
        "config",
        "--daemon-config",
        &config_path,
        "-o",
        "json",
    ]);
    let config = config.json();
    for (key, value) in thick.config.as_object().unwrap() {
        assert_eq!(&config["file"][key], value, "{key}: {config:#}");
    }
    assert_eq!(config["effective"]["socketDir"], json!(socket_dir));
    assert_eq!(config["effective"]["maxConcurrentRequests"], 4);
    assert_eq!(
        config["configManager"]["primary"],
        calico_path.display().to_string()
    );
    let table = ctl(&["daemon", "config", "--daemon-config", &config_path]);
    let table = collapse(&stable(&thick, table.expect(0)));
    for key in thick.config.as_object().unwrap().keys() {
        assert!(table.contains(&format!("│ {key} ┆")), "{key}:\n{table}");
    }
    insta::assert_snapshot!("thick_daemon_config_table", table);

    // A working primary at CNI 1.0.0 that sorts first: the daemon switches to it and
    // writes 00-multus.conflist; config generate follows.
    let mut cluster = bridge_conf(
        "1.0.0",
        CLUSTER_NETWORK,
        "mctl-cbr0",
        Subnet::unique(),
        true,
        &thick.h.dirs,
    );
    let subnet = cluster["ipam"]["subnet"].as_str().unwrap().to_owned();
    let plugin = {
        let object = cluster.as_object_mut().unwrap();
        object.remove("cniVersion");
        object.remove("name");
        Value::Object(object.clone())
    };
    let primary = json!({"cniVersion": "1.0.0", "name": CLUSTER_NETWORK, "plugins": [plugin]});
    let primary_path = thick.write_primary_bytes(
        "05-cluster.conflist",
        &serde_json::to_vec_pretty(&primary).unwrap(),
    );
    let written = thick.wait_generated_bytes("00-multus.conflist", names(&primary_path));
    let raw = ctl(&[
        "config",
        "generate",
        "--primary",
        &primary_path.display().to_string(),
        "--daemon-config",
        &config_path,
        "--raw",
    ]);
    assert_eq!(raw.expect(0).as_bytes(), written.as_slice());
    // The calico file is no longer the daemon's primary: said so.
    let report = run(args(&["-o", "json"])).json();
    assert!(
        report["notes"][0]
            .as_str()
            .unwrap()
            .contains("05-cluster.conflist as the primary"),
        "{report:#}"
    );

    // ADD through the shim (the configuration's type says thick), run where a runtime
    // runs the plugin: inside the node.
    let conflist = thick
        .net_d()
        .join("00-multus.conflist")
        .display()
        .to_string();
    let pod = thick.h.sandbox();
    let netns = pod.netns.path_string();
    let cni_path = Binaries::get().plugin_dir.display().to_string();
    let exec = |command: &str, extra: &[&str]| {
        let mut args = vec![
            "exec",
            command,
            "--conf",
            &conflist,
            "--container-id",
            "mctlshim1",
            "--pod",
            "default/web",
            "--pod-uid",
            "uid-web",
            "--cni-path",
            &cni_path,
            "-o",
            "json",
        ];
        args.extend_from_slice(extra);
        let out = thick.h.node.netns().exec(&ctl_binary(), &args);
        let report: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}\n{}\n{}",
                out.stdout,
                out.stderr,
                thick.daemon_log()
            )
        });
        (out.code, report)
    };
    let (code, add) = exec("add", &["--netns", &netns]);
    assert_eq!(code, 0, "{add:#}\n{}", thick.daemon_log());
    assert_eq!(add["shim"], true);
    assert!(add["multus"].as_str().unwrap().ends_with("/multus-shim"));
    let eth0 = pod.netns.link("eth0").expect("eth0 in the pod");
    let prefix = subnet.trim_end_matches("0/24");
    assert!(
        eth0.ips().iter().any(|ip| ip.starts_with(prefix)),
        "{eth0:?} not in {subnet}"
    );

    // The daemon counted it.
    let metrics = ctl(&[
        "daemon",
        "metrics",
        "--socket-dir",
        &socket_dir,
        "-o",
        "json",
    ])
    .json();
    let requests = metrics["families"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "multus_server_request")
        .unwrap_or_else(|| panic!("no multus_server_request: {metrics:#}"));
    assert!(
        requests["samples"].as_array().unwrap().iter().any(|s| {
            s["name"] == "multus_server_request_total"
                && s["labels"] == json!({"handler": "/cni", "code": "200", "method": "POST"})
                && s["value"] == 1.0
        }),
        "{requests:#}"
    );
    let table = ctl(&["daemon", "metrics", "--socket-dir", &socket_dir]);
    let table = collapse(table.expect(0));
    assert!(
        table.contains("│ multus_server_request_total ┆ handler=/cni code=200 method=POST ┆ 1 │"),
        "{table}"
    );
    assert!(
        table.contains("│ multus_cni_request_duration_seconds_count ┆ command=ADD ┆ 1 │"),
        "{table}"
    );

    // DEL through the shim releases everything.
    let (code, del) = exec("del", &["--netns", &netns]);
    assert_eq!(code, 0, "{del:#}\n{}", thick.daemon_log());
    thick.h.assert_nothing_leaked(&[&pod]);

    // The daemon gone: exit 3, one line that names the socket and the daemon pod.
    assert_eq!(thick.stop_daemon(), 0);
    for command in ["health", "metrics", "config"] {
        let run = ctl(&["daemon", command, "--conf", &conflist]);
        assert_eq!(run.code, 3, "{command}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
        let socket = thick.socket_dir().join("multus.sock");
        assert!(
            run.stderr.contains(&format!(
                "socket {} (daemonSocketDir of {conflist})",
                socket.display()
            )),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("daemon pod"), "{}", run.stderr);
    }
}

/// A fake node for `multus-node thin-entrypoint`: host directories under `host/`, a
/// service-account volume.
fn thin_node(dir: &Path) {
    std::fs::create_dir_all(dir.join("host/etc/cni/net.d")).unwrap();
    std::fs::create_dir_all(dir.join("serviceaccount")).unwrap();
    std::fs::write(dir.join("serviceaccount/token"), "token-1").unwrap();
    std::fs::write(
        dir.join("serviceaccount/ca.crt"),
        "-----BEGIN CERTIFICATE-----\nCA1\n",
    )
    .unwrap();
}

/// Run the thin entrypoint with `flags` until it has written its configuration; the
/// file's bytes.
fn thin_entrypoint_writes(dir: &Path, flags: &[&str]) -> Vec<u8> {
    let net_d = dir.join("host/etc/cni/net.d");
    let path = |p: &Path| p.display().to_string();
    let mut command = Command::new(built("multus-node"));
    command
        .arg("thin-entrypoint")
        .arg(format!("--cni-conf-dir={}", path(&net_d)))
        .arg(format!("--multus-autoconfig-dir={}", path(&net_d)))
        .arg(format!(
            "--multus-cni-conf-dir={}",
            path(&dir.join("host/etc/cni/multus/net.d"))
        ))
        .arg(format!(
            "--service-account-dir={}",
            path(&dir.join("serviceaccount"))
        ))
        .arg(format!("--host-prefix={}", path(&dir.join("host"))))
        .arg("--skip-multus-binary-copy=true")
        .args(flags)
        .env_clear()
        .env("PATH", SYSTEM_PATH)
        .env("KUBERNETES_SERVICE_HOST", "10.96.0.1")
        .env("KUBERNETES_SERVICE_PORT", "443");
    let conf = net_d.join("00-multus.conf");
    let _ = std::fs::remove_file(&conf);
    let mut entrypoint = Process::spawn(command, dir.join("entrypoint.log"));
    let deadline = Instant::now() + Duration::from_secs(20);
    let bytes = loop {
        if let Ok(bytes) = std::fs::read(&conf) {
            break bytes;
        }
        if let Some(code) = entrypoint.wait(Duration::ZERO) {
            panic!("thin-entrypoint exited with {code}:\n{}", entrypoint.log());
        }
        assert!(
            Instant::now() < deadline,
            "thin-entrypoint wrote nothing:\n{}",
            entrypoint.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    entrypoint.terminate();
    assert_eq!(entrypoint.wait(Duration::from_secs(10)), Some(0));
    bytes
}

#[test]
fn thin_generate_equals_the_thin_entrypoints_file() {
    let work = tempfile::Builder::new()
        .prefix("mctl-thin-")
        .tempdir()
        .unwrap();
    let dir = work.path();
    thin_node(dir);
    let calico = std::fs::read(fixtures().join("generate/10-calico.conflist")).unwrap();
    let primary = write_atomically(&dir.join("host/etc/cni/net.d/10-calico.conflist"), &calico);
    let primary = primary.display().to_string();
    // Defaults, then every generator flag the entrypoint has, under multus-ctl's names.
    let cases: [(&[&str], &[&str]); 2] = [
        (&[], &[]),
        (
            &[
                "--multus-log-level=verbose",
                "--multus-log-file=/var/log/multus.log",
                "--multus-log-to-stderr=false",
                "--namespace-isolation=true",
                "--global-namespaces=default,shared",
                "--additional-bin-dir=/opt/cni/extra",
                "--readiness-indicator-file=/run/flannel/subnet.env",
                "--override-network-name=true",
                "--multus-kubeconfig-file-host=/etc/kubernetes/multus.kubeconfig",
            ],
            &[
                "--log-level",
                "verbose",
                "--log-file",
                "/var/log/multus.log",
                "--log-to-stderr=false",
                "--namespace-isolation",
                "--global-namespaces",
                "default,shared",
                "--bin-dir",
                "/opt/cni/extra",
                "--readiness-indicator-file",
                "/run/flannel/subnet.env",
                "--override-network-name",
                "--multus-kubeconfig",
                "/etc/kubernetes/multus.kubeconfig",
            ],
        ),
    ];
    for (entrypoint_flags, ctl_flags) in cases {
        let written = thin_entrypoint_writes(dir, entrypoint_flags);
        let mut args = vec![
            "config",
            "generate",
            "--mode",
            "thin",
            "--primary",
            &primary,
        ];
        args.extend_from_slice(ctl_flags);
        args.push("--raw");
        let run = ctl(&args);
        assert_eq!(
            run.expect(0),
            String::from_utf8(written).unwrap(),
            "{entrypoint_flags:?} / {ctl_flags:?}"
        );
    }
}
