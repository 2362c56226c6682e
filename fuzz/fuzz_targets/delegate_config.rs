//! `DelegateConfig::from_bytes` on arbitrary bytes; when accepted, every plugin's stdin
//! document (with and without injected runtimeConfig and prevResult) is valid JSON, the
//! raw bytes are kept, and the derived configs stay valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use multus_core::cni::CniVersion;
use multus_core::delegate::DelegateConfig;
use serde_json::{Map, Value, json};

fn runtime_config() -> Map<String, Value> {
    let value = json!({
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
        "bandwidth": {"ingressRate": 1000, "ingressBurst": 100},
        "ips": ["10.1.1.21/24"],
        "mac": "c2:11:22:33:44:66",
        "io.kubernetes.cri.pod-annotations": {"k8s.v1.cni.cncf.io/networks": "a"}
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn assert_json(bytes: &[u8]) {
    if let Err(e) = serde_json::from_slice::<Value>(bytes) {
        panic!(
            "plugin stdin is not JSON ({e}): {}",
            String::from_utf8_lossy(bytes)
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(config) = DelegateConfig::from_bytes(data) else {
        return;
    };
    assert_eq!(config.raw().as_bytes(), data);
    let rc = runtime_config();
    let prev = json!({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0"}], "dns": {}});
    let plugins = config.plugins().len();
    assert!(plugins >= 1);
    assert_eq!(config.plugin_types().len(), plugins);
    for index in 0..plugins {
        assert_json(&config.plugin_stdin(index, &Map::new(), None));
        assert_json(&config.plugin_stdin(index, &rc, None));
        assert_json(&config.plugin_stdin(index, &rc, Some(&prev)));
    }
    // Out-of-range index: the raw config.
    assert_eq!(config.plugin_stdin(plugins, &rc, None), data);

    // Serde keeps the exact text.
    let text = serde_json::to_string(&config).expect("serialise");
    let back: DelegateConfig = serde_json::from_str(&text).expect("deserialise");
    assert_eq!(back.raw(), config.raw());

    // Derived configs stay valid delegate configs.
    let cni_args = json!({"foo": "bar", "n": 1});
    if let Value::Object(cni_args) = cni_args {
        let with_args = config.with_cni_args(&cni_args);
        let reparsed = DelegateConfig::from_bytes(with_args.raw().as_bytes());
        assert!(reparsed.is_ok(), "with_cni_args: {}", with_args.raw());
    }
    let versioned = config.with_default_version(CniVersion::V1_0_0);
    assert!(DelegateConfig::from_bytes(versioned.raw().as_bytes()).is_ok());
});
