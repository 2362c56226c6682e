//! multus-ctl against fixtures, no cluster and no namespaces: every node-local command's
//! table and JSON output (insta snapshots), exit codes, bad input, `--help` at every
//! level, shell completions and the kubectl plugin.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use clap::CommandFactory;
use multus_integration_tests::binaries::SYSTEM_PATH;
use multus_integration_tests::command::run_in;
use multus_integration_tests::ctl::{collapse, ctl, ctl_binary, fixtures, workdir};
use multus_integration_tests::fake_daemon::FakeDaemon;
use multus_integration_tests::fixtures::{copy_tree, write_script};

/// Run in the work directory and snapshot stdout under `name`.
#[track_caller]
fn snapshot(dir: &Path, name: &str, args: &[&str], code: i32) -> String {
    let run = ctl(dir, args);
    let stdout = run.expect(code).to_owned();
    insta::assert_snapshot!(name, stdout, &args.join(" "));
    stdout
}

#[test]
fn help_works_at_every_level() {
    fn paths(command: &clap::Command, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(prefix.clone());
        for sub in command.get_subcommands() {
            let mut path = prefix.clone();
            path.push(sub.get_name().to_owned());
            paths(sub, path, out);
        }
    }
    let mut all = Vec::new();
    paths(&multus_ctl::cli::Cli::command(), Vec::new(), &mut all);
    assert!(all.len() > 15, "{all:?}");
    let dir = tempfile::tempdir().unwrap();
    for path in all {
        if path.last().is_some_and(|p| p == "help") {
            continue;
        }
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let run = ctl(dir.path(), &args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        assert!(
            run.stdout.contains("Usage: multus-ctl"),
            "{args:?}: {}",
            run.stdout
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec![],
        vec!["state"],
        vec!["state", "prune"],
        vec!["nad", "validate"],
        vec!["exec", "add"],
        vec!["pod", "a/b", "--cni-dir", "x", "--conf", "y"],
        vec!["config", "show", "-o", "xml"],
        vec!["--no-api", "--kubeconfig", "k", "pod", "a/b"],
    ] {
        let run = ctl(dir.path(), &args);
        assert_eq!(run.code, 2, "{args:?}: {}{}", run.stdout, run.stderr);
    }
    let run = ctl(dir.path(), &["pod", "Not/Valid"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("NAMESPACE/NAME"), "{}", run.stderr);
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F _multus__ctl"),
        ("zsh", "#compdef multus-ctl"),
        ("fish", "complete -c multus-ctl"),
    ] {
        let run = ctl(dir.path(), &["completions", shell]);
        let out = run.expect(0);
        assert!(out.contains(marker), "{shell}: {out}");
        assert!(out.contains("prune"), "{shell} completes subcommands");
    }
}

#[test]
fn kubectl_runs_it_as_a_plugin() {
    let kubectl = ["/usr/bin/kubectl", "/usr/local/bin/kubectl"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .expect(
            "kubectl is not installed (the machine image has it; elsewhere install it from the Kubernetes apt repository)",
        );
    let work = workdir();
    let bin_dir = ctl_binary().parent().unwrap().to_owned();
    assert!(
        bin_dir.join("kubectl-multus").exists(),
        "kubectl-multus is not built: cargo build -p multus-ctl"
    );
    let path = format!("{}:{}", bin_dir.display(), SYSTEM_PATH);
    let home = work.path().display().to_string();
    let env = [("PATH", path.as_str()), ("HOME", home.as_str())];
    let run = run_in(kubectl, work.path(), &["plugin", "list"], &env);
    assert!(
        run.stdout.contains("kubectl-multus"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    let run = run_in(kubectl, work.path(), &["multus", "--help"], &env);
    assert!(
        run.expect(0).contains("Usage: kubectl multus"),
        "{}",
        run.stdout
    );
    let run = run_in(
        kubectl,
        work.path(),
        &[
            "multus",
            "config",
            "show",
            "--conf",
            "multus.conf",
            "-o",
            "json",
        ],
        &env,
    );
    assert_eq!(run.json()["effective"]["cniDir"], "cni");
    // Exit codes come through kubectl unchanged.
    let run = run_in(
        kubectl,
        work.path(),
        &["multus", "state", "show", "nosuch", "--cni-dir", "cni"],
        &env,
    );
    assert_eq!(run.code, 4, "{}", run.stderr);
}

#[test]
fn config_show_table_and_json() {
    let work = workdir();
    let dir = work.path();
    let table = snapshot(
        dir,
        "config_show_table",
        &["config", "show", "--conf", "multus.conf"],
        0,
    );
    assert!(
        table.contains("logLevle"),
        "the typo is called out: {table}"
    );
    let json = snapshot(
        dir,
        "config_show_json",
        &["config", "show", "--conf", "multus.conf", "-o", "json"],
        0,
    );
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    // Every key of the configuration reference, defaults applied.
    for key in [
        "cniVersion",
        "confDir",
        "cniDir",
        "binDir",
        "multusNamespace",
        "systemNamespaces",
        "globalNamespaces",
        "logLevel",
        "delegateTimeoutSeconds",
        "podAnnotationsFrom",
        "readinessindicatorfile",
    ] {
        assert!(
            value["effective"].get(key).is_some(),
            "{key} missing: {json}"
        );
    }
    assert_eq!(value["effective"]["multusNamespace"], "kube-system");
    let yaml = ctl(
        dir,
        &["config", "show", "--conf", "multus.conf", "-o", "yaml"],
    );
    assert!(yaml.expect(0).contains("multusNamespace: kube-system"));
}

#[test]
fn config_show_bad_input() {
    let work = workdir();
    let dir = work.path();
    let run = ctl(dir, &["config", "show", "--conf", "nosuch.conf"]);
    assert_eq!(run.code, 4);
    assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    assert!(run.stderr.contains("nosuch.conf"), "{}", run.stderr);
    std::fs::write(dir.join("bad.conf"), r#"{"cniVersion":"1.0.0"}"#).unwrap();
    let run = ctl(dir, &["config", "show", "--conf", "bad.conf"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("delegate/clusterNetwork"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

#[test]
fn nad_validate_explains_every_problem() {
    let work = workdir();
    let dir = work.path();
    let args = [
        "nad",
        "validate",
        "--all",
        "--conf",
        "multus.conf",
        "--bin-dir",
        "bin",
    ];
    snapshot(dir, "nad_validate_all_table", &args, 1);
    let mut json_args = args.to_vec();
    json_args.extend(["-o", "json"]);
    let json = snapshot(dir, "nad_validate_all_json", &json_args, 1);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["summary"]["nads"], 13);
    // The good file alone passes.
    let run = ctl(
        dir,
        &["nad", "validate", "nads/good.yaml", "--bin-dir", "bin"],
    );
    assert!(run.expect(0).contains("passed"), "{}", run.stdout);
    // One NAD by name, from the configuration's networkAttachmentDir.
    let run = ctl(
        dir,
        &[
            "nad",
            "validate",
            "team-a/no-ipam",
            "--conf",
            "multus.conf",
            "--bin-dir",
            "bin",
            "-o",
            "json",
        ],
    );
    let value = run.json();
    assert_eq!(run.code, 0, "warnings only: {}", run.stdout);
    assert_eq!(value["summary"]["warnings"], 2, "{value:#}");
    // --strict fails on warnings.
    let run = ctl(
        dir,
        &[
            "nad",
            "validate",
            "team-a/no-ipam",
            "--nad-dir",
            "nads",
            "--bin-dir",
            "bin",
            "--strict",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
}

#[test]
fn nad_validate_warns_when_a_resource_network_ignores_device_ids() {
    let work = workdir();
    let dir = work.path();
    let nad = |name: &str, config: &str| {
        format!(
            "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata:\n  name: {name}\n  namespace: default\n  annotations:\n    k8s.v1.cni.cncf.io/resourceName: intel.com/sriov\nspec:\n  config: '{config}'\n"
        )
    };
    std::fs::write(
        dir.join("resource-bridge.yaml"),
        nad(
            "resource-bridge",
            r#"{"cniVersion":"1.0.0","name":"resource-bridge","type":"bridge","ipam":{"type":"host-local","subnet":"10.1.0.0/24"}}"#,
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("resource-sriov.yaml"),
        nad(
            "resource-sriov",
            r#"{"cniVersion":"1.0.0","name":"resource-sriov","type":"sriov","ipam":{"type":"host-local","subnet":"10.1.0.0/24"}}"#,
        ),
    )
    .unwrap();
    let run = ctl(
        dir,
        &[
            "nad",
            "validate",
            "resource-bridge.yaml",
            "--bin-dir",
            "bin",
            "-o",
            "json",
        ],
    );
    let text = run.stdout.clone();
    assert!(text.contains("bridge ignores deviceID"), "{text}");
    let run = ctl(
        dir,
        &[
            "nad",
            "validate",
            "resource-sriov.yaml",
            "--bin-dir",
            "bin",
            "-o",
            "json",
        ],
    );
    assert!(
        run.stdout.contains("passed as deviceID and pciBusID"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("ignores deviceID"), "{}", run.stdout);
}

#[test]
fn nad_validate_bad_input() {
    let work = workdir();
    let dir = work.path();
    let run = ctl(
        dir,
        &["nad", "validate", "team-a/nosuch", "--nad-dir", "nads"],
    );
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("team-a/nosuch"), "{}", run.stderr);
    let run = ctl(dir, &["nad", "validate", "missing.yaml"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let run = ctl(dir, &["--no-api", "nad", "validate", "default/blue"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--nad-dir"), "{}", run.stderr);
    let run = ctl(dir, &["nad", "validate", "--all", "--nad-dir", "nosuchdir"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    for run in [
        ctl(
            dir,
            &["nad", "validate", "team-a/nosuch", "--nad-dir", "nads"],
        ),
        ctl(dir, &["nad", "validate", "missing.yaml"]),
    ] {
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    }
}

#[test]
fn state_list_show_and_dry_run_prune() {
    let work = workdir();
    let dir = work.path();
    snapshot(
        dir,
        "state_list_table",
        &["state", "list", "--cni-dir", "cni"],
        1,
    );
    snapshot(
        dir,
        "state_list_json",
        &["state", "list", "--conf", "multus.conf", "-o", "json"],
        1,
    );
    snapshot(
        dir,
        "state_show_table",
        &["state", "show", "alive-1", "--cni-dir", "cni"],
        0,
    );
    snapshot(
        dir,
        "state_show_json",
        &["state", "show", "alive-1", "--cni-dir", "cni", "-o", "json"],
        0,
    );
    // A sandbox upstream Go Multus attached: shown from its caches.
    let upstream = ctl(
        dir,
        &[
            "state",
            "show",
            "upstream-4",
            "--cni-dir",
            "cni",
            "-o",
            "json",
        ],
    );
    let value = upstream.json();
    assert_eq!(value["attachments"][1]["ifname"], "data0", "{value:#}");
    assert_eq!(value["attachments"][2]["network"], "kube-system/br-list");
    assert!(value["file"].as_str().unwrap().ends_with("cni/upstream-4"));
    let yaml = ctl(
        dir,
        &["state", "show", "gone-2", "--cni-dir", "cni", "-o", "yaml"],
    );
    assert!(
        yaml.expect(1).contains("netnsExists: false"),
        "{}",
        yaml.stdout
    );
    write_script(&dir.join("fake-multus"), "exit 0");
    snapshot(
        dir,
        "state_prune_dry_run_table",
        &[
            "state",
            "prune",
            "--all",
            "--dry-run",
            "--conf",
            "multus.conf",
            "--multus",
            "fake-multus",
        ],
        0,
    );
    snapshot(
        dir,
        "state_prune_dry_run_json",
        &[
            "state",
            "prune",
            "--all",
            "--dry-run",
            "--conf",
            "multus.conf",
            "--multus",
            "fake-multus",
            "-o",
            "json",
        ],
        0,
    );
    // Nothing was touched.
    assert!(dir.join("cni/sandboxes/gone-2.json").exists());
}

/// A fake multus plugin that records its environment and stdin, and answers per command:
/// ADD a result, CHECK an error, DEL success (removing the record as multus does).
const FAKE_MULTUS: &str = r#"env | grep '^CNI_' | sort > last-env.txt
cat > last-stdin.json
case "$CNI_COMMAND" in
ADD)
  echo '{"cniVersion":"1.0.0","interfaces":[{"name":"cni0","mac":"02:00:00:00:00:01"},{"name":"eth0","mac":"02:00:00:00:00:03","sandbox":"/proc/self/ns/net"}],"ips":[{"address":"10.10.0.2/24","gateway":"10.10.0.1","interface":1}],"routes":[{"dst":"0.0.0.0/0","gw":"10.10.0.1"}],"dns":{"nameservers":["10.96.0.10"],"search":["svc.cluster.local"]}}'
  ;;
CHECK)
  echo '{"cniVersion":"1.0.0","code":999,"msg":"Multus: [default/web/uid-web:default/blue]: CHECK failed for interface net1: interface net1 is not in the pod","details":"checked: eth0, net1"}'
  exit 1
  ;;
DEL)
  rm -f "cni/sandboxes/$CNI_CONTAINERID.json"
  ;;
STATUS)
  echo 'panic: something broke' >&2
  exit 2
  ;;
esac
exit 0"#;

/// `exec add|del|check` arguments for container `alive-1` of `default/web`.
const EXEC_ARGS: [&str; 14] = [
    "--conf",
    "multus.conf",
    "--multus",
    "fake-multus",
    "--netns",
    "/proc/self/ns/net",
    "--container-id",
    "alive-1",
    "--pod",
    "default/web",
    "--pod-uid",
    "uid-web",
    "--cni-path",
    "/opt/cni/bin",
];

#[test]
fn exec_drives_the_plugin_as_a_runtime_does() {
    let work = workdir();
    let dir = work.path();
    write_script(&dir.join("fake-multus"), FAKE_MULTUS);
    let common = EXEC_ARGS;
    let add: Vec<&str> = ["exec", "add"]
        .into_iter()
        .chain(common)
        .chain([
            "--annotation",
            "k8s.v1.cni.cncf.io/networks=blue, green@data0",
        ])
        .collect();
    snapshot(dir, "exec_add_table", &add, 0);
    let env = std::fs::read_to_string(dir.join("last-env.txt")).unwrap();
    insta::assert_snapshot!("exec_add_env", env);
    let stdin: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("last-stdin.json")).unwrap())
            .unwrap();
    assert_eq!(
        stdin["runtimeConfig"]["io.kubernetes.cri.pod-annotations"]["k8s.v1.cni.cncf.io/networks"],
        "blue, green@data0"
    );
    assert_eq!(
        stdin["cniDir"], "cni",
        "the rest of the configuration is passed as is"
    );

    let mut add_json = add.clone();
    add_json.extend(["-o", "json"]);
    snapshot(dir, "exec_add_json", &add_json, 0);

    let check: Vec<&str> = ["exec", "check"].into_iter().chain(common).collect();
    snapshot(dir, "exec_check_failure_table", &check, 1);
    let mut check_json = check.clone();
    check_json.extend(["-o", "json"]);
    snapshot(dir, "exec_check_failure_json", &check_json, 1);

    let run = ctl(
        dir,
        &[
            "exec",
            "status",
            "--conf",
            "multus.conf",
            "--multus",
            "fake-multus",
        ],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stdout
            .contains("exited with code 2 without a CNI error"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("panic: something broke"),
        "{}",
        run.stdout
    );

    let run = ctl(
        dir,
        &[
            "exec",
            "gc",
            "--conf",
            "multus.conf",
            "--multus",
            "fake-multus",
            "--valid-attachment",
            "alive-1",
            "--valid-attachment",
            "gone-2/net1",
        ],
    );
    run.expect(0);
    let stdin: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("last-stdin.json")).unwrap())
            .unwrap();
    assert_eq!(
        stdin["cni.dev/valid-attachments"],
        serde_json::json!([{"containerID":"alive-1","ifname":"eth0"},{"containerID":"gone-2","ifname":"net1"}])
    );

    // DEL may have an empty netns; the record goes away.
    let run = ctl(
        dir,
        &[
            "exec",
            "del",
            "--conf",
            "multus.conf",
            "--multus",
            "fake-multus",
            "--container-id",
            "alive-1",
        ],
    );
    assert!(run.expect(0).contains("DEL succeeded"), "{}", run.stdout);
    assert!(!dir.join("cni/sandboxes/alive-1.json").exists());
}

#[test]
fn exec_bad_input() {
    let work = workdir();
    let dir = work.path();
    write_script(&dir.join("fake-multus"), FAKE_MULTUS);
    let base = [
        "--conf",
        "multus.conf",
        "--multus",
        "fake-multus",
        "--container-id",
    ];
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            [
                &["exec", "add"][..],
                &base,
                &["c1", "--netns", "/run/netns/mctl-nosuch"],
            ]
            .concat(),
            4,
            "does not exist",
        ),
        (
            [&["exec", "add"][..], &base, &["c1"]].concat(),
            2,
            "needs --netns",
        ),
        (
            [&["exec", "del"][..], &base, &["../etc"]].concat(),
            2,
            "not a valid container ID",
        ),
        (
            vec![
                "exec",
                "del",
                "--conf",
                "nosuch.conf",
                "--container-id",
                "c1",
            ],
            4,
            "nosuch.conf",
        ),
        (
            vec![
                "exec",
                "del",
                "--conf",
                "multus.conf",
                "--multus",
                "nosuch",
                "--container-id",
                "c1",
            ],
            4,
            "--multus",
        ),
        (
            [
                &["exec", "del"][..],
                &base,
                &["c1", "--annotation", "novalue"],
            ]
            .concat(),
            2,
            "KEY=VALUE",
        ),
    ];
    for (args, code, text) in cases {
        let run = ctl(dir, &args);
        assert_eq!(run.code, code, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(text), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    }
}

#[test]
fn prune_tears_down_stale_records_through_multus() {
    let work = workdir();
    let dir = work.path();
    write_script(&dir.join("fake-multus"), FAKE_MULTUS);
    let run = ctl(
        dir,
        &[
            "state",
            "prune",
            "gone-2",
            "--conf",
            "multus.conf",
            "--multus",
            "fake-multus",
            "--cni-path",
            "/opt/cni/bin",
            "-o",
            "json",
        ],
    );
    let value = run.json();
    run.expect(0);
    assert_eq!(value["actions"][0]["result"], "deleted", "{value:#}");
    assert!(!dir.join("cni/sandboxes/gone-2.json").exists());
    let env = std::fs::read_to_string(dir.join("last-env.txt")).unwrap();
    insta::assert_snapshot!("prune_del_env", env);
    // A live sandbox is kept; an unknown one is an error.
    let run = ctl(
        dir,
        &[
            "state",
            "prune",
            "alive-1",
            "--conf",
            "multus.conf",
            "--multus",
            "fake-multus",
        ],
    );
    assert!(run.expect(0).contains("keep"), "{}", run.stdout);
    assert!(dir.join("cni/sandboxes/alive-1.json").exists());
    // A sandbox upstream Go Multus attached (only its caches) is pruned by name: DEL of
    // that container through multus, which reads upstream's caches.
    let run = ctl(
        dir,
        &[
            "state",
            "prune",
            "upstream-4",
            "--conf",
            "multus.conf",
            "--multus",
            "fake-multus",
            "-o",
            "json",
        ],
    );
    let value = run.json();
    assert_eq!(value["actions"][0]["action"], "delete", "{value:#}");
    assert_eq!(value["actions"][0]["pod"]["name"], "web-0", "{value:#}");
    let env = std::fs::read_to_string(dir.join("last-env.txt")).unwrap();
    assert!(
        env.contains("CNI_COMMAND=DEL") && env.contains("CNI_CONTAINERID=upstream-4"),
        "{env}"
    );
    let run = ctl(
        dir,
        &[
            "state",
            "prune",
            "nosuch",
            "--conf",
            "multus.conf",
            "--multus",
            "fake-multus",
        ],
    );
    assert_eq!(run.code, 4, "{}", run.stderr);
}

#[test]
fn state_bad_input() {
    let work = workdir();
    let dir = work.path();
    let run = ctl(dir, &["state", "show", "nosuch", "--cni-dir", "cni"]);
    assert_eq!(run.code, 4);
    assert!(run.stderr.contains("state list"), "{}", run.stderr);
    let run = ctl(dir, &["state", "show", "corrupt-3", "--cni-dir", "cni"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("corrupt record"), "{}", run.stderr);
    // Unreadable state: the state directory is a file.
    std::fs::write(dir.join("notadir"), "").unwrap();
    let run = ctl(dir, &["state", "list", "--cni-dir", "notadir"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("cannot read the state directory"),
        "{}",
        run.stderr
    );
    for run in [
        ctl(dir, &["state", "show", "nosuch", "--cni-dir", "cni"]),
        ctl(dir, &["state", "list", "--cni-dir", "notadir"]),
    ] {
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    }
    // An empty node.
    let run = ctl(dir, &["state", "list", "--cni-dir", "empty"]);
    assert!(
        run.expect(0).contains("no sandbox records"),
        "{}",
        run.stdout
    );
}

#[test]
fn pod_from_a_stale_record_without_api() {
    let work = workdir();
    let dir = work.path();
    // No live inspection (the netns is gone): stale state, incomplete ADD and the NAD
    // changed after attach (the record's blue has 10.21.0.0/24, the directory's 10.20).
    snapshot(
        dir,
        "pod_stale_table",
        &["--no-api", "pod", "team-a/db", "--conf", "multus.conf"],
        1,
    );
    let json = snapshot(
        dir,
        "pod_stale_json",
        &[
            "--no-api",
            "pod",
            "team-a/db",
            "--conf",
            "multus.conf",
            "-o",
            "json",
        ],
        1,
    );
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let kinds: Vec<&str> = value["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["incomplete-add", "stale-state", "nad-changed"]);
}

/// podman passes no Kubernetes namespace (only `K8S_POD_NAME=<container name>`): its
/// containers are addressed by name, `/NAME` or container ID.
#[test]
fn pod_addresses_a_container_without_namespace() {
    let work = workdir();
    let dir = work.path();
    let sandboxes = dir.join("cni/sandboxes");
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sandboxes.join("gone-2.json")).unwrap()).unwrap();
    record["containerId"] = "podman-4".into();
    record["podNamespace"] = "".into();
    record["podName"] = "web_C1".into();
    record["podUid"] = "".into();
    std::fs::write(
        sandboxes.join("podman-4.json"),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();
    let base = ["--no-api", "pod", "--cni-dir", "cni", "-o", "json"];
    for args in [
        vec!["web_C1"],
        vec!["/web_C1"],
        vec!["podman-4"],
        vec!["web_C1", "--container-id", "podman-4"],
    ] {
        let mut full: Vec<&str> = base.to_vec();
        full.extend(args.iter().copied());
        let run = ctl(dir, &full);
        // 1: findings (the fixture's netns is gone), not a usage error or "not found".
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        let value: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(
            value["plan"]["containerId"], "podman-4",
            "{args:?}: {value:#}"
        );
    }
    let run = ctl(
        dir,
        &[
            "--no-api",
            "pod",
            "other",
            "--cni-dir",
            "cni",
            "--container-id",
            "podman-4",
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("belongs to pod /web_C1"),
        "{}",
        run.stderr
    );
}

#[test]
fn pod_shows_each_network_s_resource_device_and_its_source() {
    let work = workdir();
    let dir = work.path();
    let sandboxes = dir.join("cni/sandboxes");
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sandboxes.join("gone-2.json")).unwrap()).unwrap();
    record["containerId"] = "sriov-5".into();
    record["podName"] = "vf".into();
    record["attachments"][1]["resourceName"] = "intel.com/sriov".into();
    record["attachments"][1]["device"] =
        serde_json::json!({"deviceID": "0000:03:02.1", "source": "dra"});
    std::fs::write(
        sandboxes.join("sriov-5.json"),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();
    let base = ["--no-api", "pod", "team-a/vf", "--cni-dir", "cni"];
    let table = ctl(dir, &base);
    assert!(
        table
            .stdout
            .contains("intel.com/sriov: device 0000:03:02.1 from dra"),
        "{}",
        table.stdout
    );
    let mut json = base.to_vec();
    json.extend(["-o", "json"]);
    let value = ctl(dir, &json).json();
    let attachment = &value["attachments"][1];
    assert_eq!(attachment["resourceName"], "intel.com/sriov", "{value:#}");
    assert_eq!(attachment["device"]["deviceID"], "0000:03:02.1");
    assert_eq!(attachment["device"]["source"], "dra");
    assert!(value["attachments"][0].get("device").is_none());
}

#[test]
fn pod_bad_input() {
    let work = workdir();
    let dir = work.path();
    let run = ctl(
        dir,
        &["--no-api", "pod", "default/nosuch", "--cni-dir", "cni"],
    );
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("no Kubernetes API configured"),
        "{}",
        run.stderr
    );
    let run = ctl(
        dir,
        &[
            "--no-api",
            "pod",
            "default/web",
            "--cni-dir",
            "cni",
            "--netns",
            "/run/netns/mctl-nosuch",
        ],
    );
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("/run/netns/mctl-nosuch"),
        "{}",
        run.stderr
    );
    let run = ctl(
        dir,
        &[
            "--no-api",
            "pod",
            "default/web",
            "--cni-dir",
            "cni",
            "--container-id",
            "gone-2",
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    // Unreachable API: nothing listens on port 1.
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\nusers:\n- name: u\n  user:\n    token: t\n",
    )
    .unwrap();
    let run = ctl(
        dir,
        &[
            "--kubeconfig",
            "kubeconfig",
            "pod",
            "default/web",
            "--cni-dir",
            "cni",
        ],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("GET pod default/web"), "{}", run.stderr);
    assert!(
        run.stderr.contains("check that the API server is up"),
        "{}",
        run.stderr
    );
    let run = ctl(
        dir,
        &[
            "--kubeconfig",
            "kubeconfig",
            "--context",
            "nosuch",
            "pod",
            "default/web",
        ],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    for run in [
        ctl(
            dir,
            &["--no-api", "pod", "default/nosuch", "--cni-dir", "cni"],
        ),
        ctl(
            dir,
            &[
                "--kubeconfig",
                "kubeconfig",
                "pod",
                "default/web",
                "--cni-dir",
                "cni",
            ],
        ),
    ] {
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    }
}

/// A work directory with the `config generate` fixtures under `generate/`.
fn generate_workdir() -> tempfile::TempDir {
    let work = workdir();
    copy_tree(&fixtures().join("generate"), &work.path().join("generate"));
    work
}

/// `--conflist`: the list form below CNI 1.0 too (podman reads only `.conflist`).
#[test]
fn config_generate_conflist_form_for_podman() {
    let work = generate_workdir();
    let dir = work.path();
    for mode in ["thin", "thick"] {
        let run = ctl(
            dir,
            &[
                "config",
                "generate",
                "--mode",
                mode,
                "--primary",
                "generate/10-calico.conflist",
                "--conflist",
                "-o",
                "json",
            ],
        );
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(
            report["fileName"], "00-multus.conflist",
            "{mode}: {report:#}"
        );
        let document = &report["document"];
        assert_eq!(document["cniVersion"], "0.3.1", "{mode}");
        assert!(document.get("type").is_none(), "{mode}: {document:#}");
        assert!(
            document["plugins"][0]["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("multus")),
            "{mode}: {document:#}"
        );
    }
}

#[test]
fn config_generate_thick_and_thin() {
    let work = generate_workdir();
    let dir = work.path();
    let primary = "generate/10-calico.conflist";
    // Thick from flags: the daemon-config keys of the same names.
    let thick = [
        "config",
        "generate",
        "--primary",
        primary,
        "--cluster-network",
        "/etc/cni/net.d/10-calico.conflist",
        "--log-level",
        "verbose",
        "--log-to-stderr",
        "--daemon-socket-dir",
        "/run/multus/",
    ];
    let table = snapshot(dir, "config_generate_thick_table", &thick, 0);
    assert!(table.starts_with("00-multus.conf (as multus-daemon writes it)\n"));
    let json_args: Vec<&str> = thick.iter().copied().chain(["-o", "json"]).collect();
    let json = snapshot(dir, "config_generate_thick_json", &json_args, 0);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["document"]["type"], "multus-shim");
    assert_eq!(
        report["document"]["capabilities"],
        serde_json::json!({"bandwidth": true, "portMappings": true,
            "io.kubernetes.cri.pod-annotations": true}),
        "the union of the primary's plugins' capabilities, and the pod annotations: \
         without an API server they can only come from the runtime"
    );
    // --raw: the bytes as written, and the same document.
    let raw_args: Vec<&str> = thick.iter().copied().chain(["--raw"]).collect();
    let raw = ctl(dir, &raw_args);
    let raw = raw.expect(0);
    assert!(raw.ends_with("}\n") && !raw.ends_with("}\n\n"), "{raw:?}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(raw).unwrap(),
        report["document"]
    );

    // Thick from a daemon-config.json: the daemon's own parser and options; the primary
    // is named as the daemon sees it, in multusAutoconfigDir.
    let from_config = [
        "config",
        "generate",
        "--primary",
        primary,
        "--daemon-config",
        "generate/daemon-config.json",
    ];
    let table = snapshot(dir, "config_generate_daemon_config_table", &from_config, 0);
    assert!(
        table.contains("multus-daemon writes it as /host/etc/cni/net.d/00-multus.conf"),
        "{table}"
    );
    let json_args: Vec<&str> = from_config.iter().copied().chain(["-o", "json"]).collect();
    let report = ctl(dir, &json_args).json();
    assert_eq!(
        report["clusterNetwork"],
        "/host/etc/cni/net.d/10-calico.conflist"
    );
    assert_eq!(report["document"]["daemonSocketDir"], "/run/multus/");
    assert_eq!(
        report["document"]["capabilities"]["io.kubernetes.cri.pod-annotations"],
        true
    );

    // Thin: what the thin entrypoint writes with its defaults.
    let thin = ["config", "generate", "--mode", "thin", "--primary", primary];
    snapshot(dir, "config_generate_thin_table", &thin, 0);
    let json_args: Vec<&str> = thin.iter().copied().chain(["-o", "json"]).collect();
    let json = snapshot(dir, "config_generate_thin_json", &json_args, 0);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["document"]["type"], "multus");
    assert_eq!(
        report["document"]["delegates"][0]["plugins"][0]["type"],
        "calico"
    );
    let yaml = ctl(
        dir,
        &thin
            .iter()
            .copied()
            .chain(["-o", "yaml"])
            .collect::<Vec<_>>(),
    );
    assert!(yaml.expect(0).contains("fileName: 00-multus.conf"));

    // clusterNetwork defaults to the primary's absolute path; a CNI 1.0 primary makes a
    // config list.
    let report = ctl(
        dir,
        &[
            "config",
            "generate",
            "--primary",
            "generate/20-bridge-1.0.conf",
            "-o",
            "json",
        ],
    )
    .json();
    assert_eq!(report["fileName"], "00-multus.conflist");
    assert_eq!(
        report["clusterNetwork"],
        dir.join("generate/20-bridge-1.0.conf")
            .display()
            .to_string()
    );
    assert_eq!(report["document"]["plugins"][0]["type"], "multus-shim");
}

#[test]
fn config_generate_follows_the_daemons_choices() {
    let work = generate_workdir();
    let dir = work.path();
    let net_d = dir.join("net.d");
    std::fs::create_dir_all(&net_d).unwrap();
    std::fs::copy(
        dir.join("generate/10-calico.conflist"),
        net_d.join("10-calico.conflist"),
    )
    .unwrap();
    std::fs::copy(
        dir.join("generate/20-bridge-1.0.conf"),
        net_d.join("05-bridge.conf"),
    )
    .unwrap();
    let config = serde_json::json!({
        "cniConfigDir": net_d, "multusAutoconfigDir": net_d, "logLevel": "debug",
    });
    std::fs::write(dir.join("daemon-config.json"), config.to_string()).unwrap();
    // The daemon takes the lexically first primary: said in a note.
    let report = ctl(
        dir,
        &[
            "config",
            "generate",
            "--primary",
            "net.d/10-calico.conflist",
            "--daemon-config",
            "daemon-config.json",
            "-o",
            "json",
        ],
    )
    .json();
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("05-bridge.conf as the primary"),
        "{report:#}"
    );
    assert_eq!(report["document"]["logLevel"], "debug");

    // multusConfigFile given: the daemon copies that file as it is.
    std::fs::write(
        dir.join("70-mine.conf"),
        "{\"cniVersion\":\"0.4.0\",\"type\":\"multus-shim\"}",
    )
    .unwrap();
    let config = serde_json::json!({
        "cniConfigDir": net_d, "multusConfigFile": dir.join("70-mine.conf"),
    });
    std::fs::write(dir.join("daemon-config.json"), config.to_string()).unwrap();
    let args = [
        "config",
        "generate",
        "--primary",
        "net.d/10-calico.conflist",
        "--daemon-config",
        "daemon-config.json",
    ];
    let raw = ctl(dir, &[&args[..], &["--raw"]].concat());
    assert_eq!(
        raw.expect(0),
        "{\"cniVersion\":\"0.4.0\",\"type\":\"multus-shim\"}",
        "byte for byte"
    );
    let table = ctl(dir, &args);
    let table = table.expect(0);
    assert!(
        table.starts_with("70-mine.conf (multus-daemon writes it as "),
        "{table}"
    );
    assert!(table.contains("copied as it is"), "{table}");
}

#[test]
fn config_generate_bad_input() {
    let work = generate_workdir();
    let dir = work.path();
    std::fs::write(dir.join("broken.conf"), "{\"cniVersion\":").unwrap();
    std::fs::write(dir.join("bad-daemon.json"), r#"{"metricsPort":"9091"}"#).unwrap();
    let primary = [
        "config",
        "generate",
        "--primary",
        "generate/10-calico.conflist",
    ];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        primary
            .iter()
            .copied()
            .chain(extra.iter().copied())
            .collect()
    };
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            with(&["--mode", "thin", "--cni-dir", "x"]),
            2,
            "--cni-dir: only with --mode thick",
        ),
        (
            with(&["--readiness-indicator-file", "/r"]),
            2,
            "--readiness-indicator-file: only with --mode thin",
        ),
        (
            with(&[
                "--mode",
                "thin",
                "--daemon-config",
                "generate/daemon-config.json",
            ]),
            2,
            "--daemon-config",
        ),
        (
            with(&[
                "--daemon-config",
                "generate/daemon-config.json",
                "--log-level",
                "debug",
            ]),
            2,
            "cannot be used with",
        ),
        (with(&["--log-level", "info"]), 2, "--log-level"),
        (
            with(&["--mode", "thin", "--log-level", "info"]),
            2,
            "--log-level",
        ),
        (
            with(&["--ready-timeout-seconds", "100000"]),
            2,
            "--ready-timeout-seconds",
        ),
        (with(&["--log-options", "nope"]), 2, "--log-options"),
        (with(&["--daemon-config", "nosuch.json"]), 4, "nosuch.json"),
        (
            with(&["--daemon-config", "bad-daemon.json"]),
            3,
            "key `metricsPort`",
        ),
        (
            with(&["--cni-version", "1.0.0"]),
            3,
            "delegate cni version is 0.3.1",
        ),
        (
            vec!["config", "generate", "--primary", "nosuch.conflist"],
            4,
            "nosuch.conflist",
        ),
        (
            vec!["config", "generate", "--primary", "broken.conf"],
            3,
            "broken.conf is invalid",
        ),
    ];
    for (args, code, text) in cases {
        let run = ctl(dir, &args);
        assert_eq!(run.code, code, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(text), "{args:?}: {}", run.stderr);
        if code != 2 || !text.contains("cannot be used") {
            assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
        }
    }
}

/// Latencies vary from run to run.
const LATENCY_FILTERS: &[(&str, &str)] = &[
    (r"\d+\.\d ms", "[latency]"),
    (r#""latencyMs": [0-9.e-]+"#, r#""latencyMs": "[latency]""#),
];

#[test]
fn daemon_commands_table_and_json() {
    let daemon = FakeDaemon::start(true);
    let work = workdir();
    let dir = work.path();
    let socket_dir = daemon.socket_dir().display().to_string();
    // Tables with their padding collapsed (the socket's path varies); JSON as printed.
    let run_ok = |args: &[&str]| {
        let mut full: Vec<&str> = args.to_vec();
        full.extend(["--socket-dir", &socket_dir]);
        let text = ctl(dir, &full)
            .expect(0)
            .replace(&socket_dir, "<socket-dir>");
        if args.contains(&"json") {
            text
        } else {
            collapse(&text)
        }
    };
    insta::with_settings!({filters => LATENCY_FILTERS.to_vec()}, {
        insta::assert_snapshot!("daemon_health_table", run_ok(&["daemon", "health"]));
        insta::assert_snapshot!(
            "daemon_health_json",
            run_ok(&["daemon", "health", "-o", "json"])
        );
    });
    let metrics = run_ok(&["daemon", "metrics"]);
    assert!(!metrics.contains("_bucket"), "{metrics}");
    assert!(!metrics.contains("process_resident"), "{metrics}");
    insta::assert_snapshot!("daemon_metrics_table", metrics);
    let json = run_ok(&["daemon", "metrics", "-o", "json"]);
    insta::assert_snapshot!("daemon_metrics_json", json);
    let all = run_ok(&["daemon", "metrics", "--all"]);
    assert!(all.contains("process_resident_memory_bytes"), "{all}");
    let raw = ctl(
        dir,
        &["daemon", "metrics", "--raw", "--socket-dir", &socket_dir],
    );
    assert_eq!(
        raw.expect(0),
        std::fs::read_to_string(fixtures().join("daemon/metrics.txt")).unwrap()
    );
    insta::assert_snapshot!("daemon_config_table", run_ok(&["daemon", "config"]));
    let json = run_ok(&["daemon", "config", "-o", "json"]);
    insta::assert_snapshot!("daemon_config_json", json);

    // The socket from a shim configuration (daemonSocketDir, also in a config list) or a
    // daemon configuration (socketDir).
    let shim_conf = serde_json::json!({"cniVersion": "1.0.0", "name": "multus-cni-network",
        "plugins": [{"type": "multus-shim", "daemonSocketDir": socket_dir,
                     "clusterNetwork": "/etc/cni/net.d/10-calico.conflist"}]});
    std::fs::write(dir.join("00-multus.conflist"), shim_conf.to_string()).unwrap();
    let run = ctl(
        dir,
        &[
            "daemon",
            "health",
            "--conf",
            "00-multus.conflist",
            "-o",
            "json",
        ],
    );
    assert_eq!(run.expect(0).matches("\"ok\": true").count(), 2);
    std::fs::write(
        dir.join("daemon-config.json"),
        serde_json::json!({"socketDir": socket_dir}).to_string(),
    )
    .unwrap();
    let run = ctl(
        dir,
        &[
            "daemon",
            "config",
            "--daemon-config",
            "daemon-config.json",
            "-o",
            "yaml",
        ],
    );
    assert!(run.expect(0).contains("lastError: null"), "{}", run.stdout);
}

#[test]
fn daemon_bad_input() {
    let work = workdir();
    let dir = work.path();
    // Shutting down: alive but not ready, exit 1.
    let stopping = FakeDaemon::start(false);
    let run = ctl(
        dir,
        &[
            "daemon",
            "health",
            "--socket-dir",
            &stopping.socket_dir().display().to_string(),
        ],
    );
    assert!(
        run.expect(1).contains("not ready: shutting down"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("NOT healthy and ready"),
        "{}",
        run.stdout
    );

    // Nothing listening: exit 3, one line naming the socket and the daemon pod.
    let empty = tempfile::tempdir().unwrap();
    let socket = empty.path().join("multus.sock");
    for command in ["health", "metrics", "config"] {
        let run = ctl(
            dir,
            &[
                "daemon",
                command,
                "--socket-dir",
                &empty.path().display().to_string(),
            ],
        );
        assert_eq!(run.code, 3, "{command}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("socket {} (--socket-dir)", socket.display())),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("daemon pod"), "{}", run.stderr);
        assert!(run.stdout.is_empty());
    }
    // A file that is not a socket, a daemon config that does not parse, a conf without
    // a multus plugin, and conflicting sources.
    std::fs::write(empty.path().join("multus.sock"), "").unwrap();
    std::fs::write(
        dir.join("bad-daemon.json"),
        r#"{"socketDir":"relative/dir"}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("plain.conflist"),
        r#"{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"bridge"}]}"#,
    )
    .unwrap();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec![
                "daemon".into(),
                "health".into(),
                "--socket-dir".into(),
                empty.path().display().to_string(),
            ],
            3,
            "Connection refused",
        ),
        (
            vec![
                "daemon".into(),
                "config".into(),
                "--daemon-config".into(),
                "bad-daemon.json".into(),
            ],
            3,
            "key `socketDir`",
        ),
        (
            vec![
                "daemon".into(),
                "config".into(),
                "--daemon-config".into(),
                "nosuch.json".into(),
            ],
            4,
            "nosuch.json",
        ),
        (
            vec![
                "daemon".into(),
                "health".into(),
                "--conf".into(),
                "plain.conflist".into(),
            ],
            3,
            "without a multus or multus-shim plugin",
        ),
        (
            vec![
                "daemon".into(),
                "health".into(),
                "--conf".into(),
                "x".into(),
                "--socket-dir".into(),
                "y".into(),
            ],
            2,
            "cannot be used with",
        ),
    ];
    for (args, code, text) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = ctl(dir, &args);
        assert_eq!(run.code, code, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(text), "{args:?}: {}", run.stderr);
        if code != 2 {
            assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
        }
    }
}

/// A thick-mode configuration (type multus-shim) as a 1.0.0 config list, the way
/// multus-daemon writes 00-multus.conflist.
const SHIM_CONFLIST: &str = r#"{"cniVersion":"1.0.0","name":"multus-cni-network","plugins":[
  {"type":"multus-shim","capabilities":{"portMappings":true},"cniDir":"cni",
   "daemonSocketDir":"/run/multus-test/","clusterNetwork":"/etc/cni/net.d/10-calico.conflist"}]}"#;

#[test]
fn exec_through_the_shim() {
    let work = workdir();
    let dir = work.path();
    write_script(&dir.join("fake-shim"), FAKE_MULTUS);
    std::fs::write(dir.join("00-multus.conflist"), SHIM_CONFLIST).unwrap();
    // The configuration's type says thick: multus-shim runs, with the list's entry (name
    // and cniVersion injected) on stdin, as a runtime passes it.
    let add = [
        "exec",
        "add",
        "--conf",
        "00-multus.conflist",
        "--plugin",
        "fake-shim",
        "--netns",
        "/proc/self/ns/net",
        "--container-id",
        "shim-1",
        "--pod",
        "default/web",
        "-o",
        "json",
    ];
    let report = ctl(dir, &add).json();
    assert_eq!(report["shim"], true, "{report:#}");
    assert_eq!(report["success"], true, "{report:#}");
    assert!(
        report["notes"][0]
            .as_str()
            .unwrap()
            .contains("forwards the call to multus-daemon at /run/multus-test/multus.sock"),
        "{report:#}"
    );
    let stdin: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("last-stdin.json")).unwrap())
            .unwrap();
    assert_eq!(
        stdin,
        serde_json::json!({"type":"multus-shim","capabilities":{"portMappings":true},"cniDir":"cni",
            "daemonSocketDir":"/run/multus-test/","clusterNetwork":"/etc/cni/net.d/10-calico.conflist",
            "name":"multus-cni-network","cniVersion":"1.0.0"})
    );
    // A thin configuration with --shim: thick by request, with a remark.
    let run = ctl(
        dir,
        &[
            "exec",
            "del",
            "--conf",
            "multus.conf",
            "--shim",
            "--multus",
            "fake-shim",
            "--container-id",
            "alive-1",
        ],
    );
    assert!(run.expect(0).contains("DEL succeeded"), "{}", run.stdout);
    assert!(
        run.stdout.contains("a runtime would run multus instead"),
        "{}",
        run.stdout
    );
    // Without --shim and a thin configuration: thin, no shim remark.
    let report = ctl(
        dir,
        &[
            "exec",
            "del",
            "--conf",
            "multus.conf",
            "--multus",
            "fake-shim",
            "--container-id",
            "alive-1",
            "-o",
            "json",
        ],
    )
    .json();
    assert_eq!(report["shim"], false);
    assert_eq!(report["notes"], serde_json::json!([]));
}

/// A plugin that leaves a background process holding its stdout open: `exec` returns
/// when the plugin exits, not when the background process does.
#[test]
fn exec_does_not_wait_for_a_background_process_holding_stdout() {
    let work = workdir();
    let dir = work.path();
    write_script(
        &dir.join("fake-multus"),
        r#"cat >/dev/null
sleep 30 &
echo '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/proc/self/ns/net"}],"ips":[]}'"#,
    );
    let started = std::time::Instant::now();
    let args: Vec<&str> = ["exec", "add"]
        .into_iter()
        .chain(EXEC_ARGS)
        .chain(["-o", "json"])
        .collect();
    let run = ctl(dir, &args);
    let elapsed = started.elapsed();
    assert_eq!(run.json()["success"], true, "{}", run.stderr);
    assert!(
        elapsed < std::time::Duration::from_secs(10),
        "exec waited {elapsed:?} for the plugin's background process"
    );
}
