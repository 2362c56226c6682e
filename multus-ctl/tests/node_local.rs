//! multus-ctl against fixtures, no cluster and no namespaces: every node-local command's
//! table and JSON output (insta snapshots), exit codes, bad input, `--help` at every
//! level, shell completions and the kubectl plugin.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use clap::CommandFactory;
use common::{ctl, ctl_binary, run_in, workdir, write_script};

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
    let path = format!("{}:{}", bin_dir.display(), common::SYSTEM_PATH);
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

#[test]
fn exec_drives_the_plugin_as_a_runtime_does() {
    let work = workdir();
    let dir = work.path();
    write_script(&dir.join("fake-multus"), FAKE_MULTUS);
    let common = [
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
