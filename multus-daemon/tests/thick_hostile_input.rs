//! Attacks of NAD authors replayed through the daemon (docs/architecture.md, "Threat
//! model"): a NAD cannot make the daemon run multus, nor forge or multiply metric series;
//! `allowedPluginTypes` in daemon-config.json applies to every request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use multus_integration_tests::thick as support;

use serde_json::{Value, json};
use support::{Thick, cni_env, pairs, recorder_node, upstream_post};

fn error_code(body: &str) -> u64 {
    let doc: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    doc["code"]
        .as_u64()
        .unwrap_or_else(|| panic!("no code: {body}"))
}

/// ADD of a fresh pod asking for `networks`; the CNI error code and message.
fn add(thick: &Thick, conf: &Value, networks: &str) -> (u64, String) {
    let mut conf = conf.clone();
    conf["runtimeConfig"] =
        json!({"io.kubernetes.cri.pod-annotations": {"k8s.v1.cni.cncf.io/networks": networks}});
    let pod = thick.h.sandbox();
    let env = cni_env("ADD", &pod, "eth0");
    let (_, body) = upstream_post(
        &thick.socket(),
        "/cni",
        &pairs(&env),
        conf.to_string().as_bytes(),
        "",
    );
    (error_code(&body), body)
}

#[test]
fn nad_plugin_types_cannot_forge_or_multiply_metric_series() {
    let (thick, conf) = recorder_node(|_| {});
    let forged = "evil\"} 1\nmultus_requests_in_flight 99\n#";
    thick.h.dirs.write_nad_json(
        "forged",
        &json!({"cniVersion": "1.0.0", "name": "forged", "type": forged}),
    );
    for i in 0..5 {
        thick.h.dirs.write_nad_json(
            &format!("ghost{i}"),
            &json!({"cniVersion": "1.0.0", "name": format!("ghost{i}"), "type": format!("ghost-type-{i}")}),
        );
    }
    for networks in ["forged", "ghost0", "ghost1", "ghost2", "ghost3", "ghost4"] {
        let (code, body) = add(&thick, &conf, networks);
        assert_eq!(code, 7, "{body}");
    }
    let page = thick.metrics();
    assert!(
        !page.contains("evil") && !page.contains("multus_requests_in_flight 99"),
        "a NAD forged a series:\n{page}"
    );
    assert!(!page.contains("ghost-type"), "a NAD added series:\n{page}");
    let other = support::metric_value(
        &page,
        r#"multus_delegate_exec_duration_seconds_count{plugin="other"}"#,
    );
    assert!(other >= 6.0, "{page}");
    // The installed recorder keeps its own label.
    assert!(
        page.contains(r#"multus_delegate_exec_duration_seconds_count{plugin="recorder"}"#),
        "{page}"
    );
}

#[test]
fn the_daemon_refuses_multus_as_a_delegate_and_applies_allowed_plugin_types() {
    let (thick, conf) = recorder_node(|thick| {
        thick.set("allowedPluginTypes", json!(["recorder"]));
    });
    thick.h.dirs.write_nad_json(
        "nested",
        &json!({"cniVersion": "1.0.0", "name": "nested", "type": "multus-shim",
                "daemonSocketDir": "/tmp", "binDir": "/tmp"}),
    );
    let (code, body) = add(&thick, &conf, "nested");
    assert_eq!(code, 7, "{body}");
    assert!(body.contains("multus itself"), "{body}");
    thick.h.dirs.write_nad_json(
        "bridged",
        &json!({"cniVersion": "1.0.0", "name": "bridged", "type": "bridge"}),
    );
    let (code, body) = add(&thick, &conf, "bridged");
    assert_eq!(code, 7, "{body}");
    assert!(body.contains("not in allowedPluginTypes"), "{body}");
    let records = multus_integration_tests::recording::read_records(&thick.h.dirs.record_file());
    assert!(
        records.iter().all(|r| r.command != "ADD"),
        "a delegate ran: {records:?}"
    );
}
