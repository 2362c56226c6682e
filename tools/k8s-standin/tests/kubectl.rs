//! kubectl against the stand-in: discovery, apply, get, patch, delete, and the
//! `Status` bodies it turns into its usual errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use k8s_standin::{NADS, PODS, StandIn};

fn kubectl(standin: &StandIn, args: &[&str]) -> (bool, String, String) {
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(standin.kubeconfig())
        .args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("kubectl is installed");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn ok(standin: &StandIn, args: &[&str]) -> String {
    let (success, stdout, stderr) = kubectl(standin, args);
    assert!(success, "kubectl {args:?} failed: {stderr}");
    stdout
}

const NAD_YAML: &str = r#"apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: blue
  namespace: team
spec:
  config: '{"cniVersion":"1.0.0","type":"bridge"}'
"#;

#[test]
fn kubectl_applies_lists_patches_and_deletes() {
    let standin = StandIn::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let nad = dir.path().join("nad.yaml");
    std::fs::write(&nad, NAD_YAML).unwrap();

    assert!(ok(&standin, &["version", "-o", "json"]).contains("v1.34.0-standin"));
    let created = ok(
        &standin,
        &["apply", "--validate=false", "-f", nad.to_str().unwrap()],
    );
    assert!(
        created.contains("network-attachment-definition")
            || created.contains("networkattachmentdefinition"),
        "{created}"
    );
    assert!(created.contains("created"), "{created}");
    // Applying again patches.
    std::fs::write(&nad, NAD_YAML.replace("bridge", "macvlan")).unwrap();
    let configured = ok(
        &standin,
        &["apply", "--validate=false", "-f", nad.to_str().unwrap()],
    );
    assert!(configured.contains("configured"), "{configured}");
    let stored = standin.get(&NADS, "team", "blue").unwrap();
    assert_eq!(
        stored["spec"]["config"],
        r#"{"cniVersion":"1.0.0","type":"macvlan"}"#
    );

    // Short names from discovery.
    let listed = ok(&standin, &["get", "net-attach-def", "-n", "team"]);
    assert!(listed.contains("blue"), "{listed}");
    let listed = ok(&standin, &["get", "nad", "-A", "-o", "name"]);
    assert!(listed.contains("blue"), "{listed}");

    standin.create_pod(
        "default",
        "web",
        &[("k8s.v1.cni.cncf.io/networks", "team/blue")],
    );
    let pods = ok(&standin, &["get", "pods", "-A"]);
    assert!(pods.contains("default") && pods.contains("web"), "{pods}");

    ok(
        &standin,
        &[
            "patch",
            "pod",
            "web",
            "--type",
            "merge",
            "-p",
            r#"{"metadata":{"labels":{"a":"b"}}}"#,
        ],
    );
    ok(
        &standin,
        &[
            "patch",
            "pod",
            "web",
            "--type",
            "json",
            "-p",
            r#"[{"op":"add","path":"/metadata/labels/c","value":"d"}]"#,
        ],
    );
    let pod = standin.get(&PODS, "default", "web").unwrap();
    assert_eq!(
        pod["metadata"]["labels"],
        serde_json::json!({"a": "b", "c": "d"})
    );
    let jsonpath = ok(
        &standin,
        &[
            "get",
            "pod",
            "web",
            "-o",
            "jsonpath={.metadata.annotations}",
        ],
    );
    assert!(jsonpath.contains("team/blue"), "{jsonpath}");

    ok(&standin, &["delete", "pod", "web", "--wait=false"]);
    let (success, _, stderr) = kubectl(&standin, &["get", "pod", "web"]);
    assert!(!success);
    assert!(
        stderr.contains(r#"Error from server (NotFound): pods "web" not found"#),
        "{stderr}"
    );

    // Every request was logged with its verb.
    let verbs: Vec<String> = standin.requests().iter().map(|r| r.verb.clone()).collect();
    for verb in ["discovery", "get", "list", "create", "patch", "delete"] {
        assert!(
            verbs.iter().any(|v| v == verb),
            "{verb} missing from {verbs:?}"
        );
    }
}

#[test]
fn kubectl_sees_refusals_as_the_api_server_words_them() {
    let standin = StandIn::start().unwrap();
    standin.refuse(Some(403));
    let (success, _, stderr) = kubectl(
        &standin,
        &["get", "--raw", "/api/v1/namespaces/default/pods/x"],
    );
    assert!(!success);
    assert!(stderr.contains("forbidden"), "{stderr}");
    standin.refuse(None);
    standin.require_token("other");
    let (success, _, stderr) = kubectl(
        &standin,
        &["get", "--raw", "/api/v1/namespaces/default/pods/x"],
    );
    assert!(!success);
    assert!(stderr.contains("Unauthorized"), "{stderr}");
}
