//! `parse_manifests` on arbitrary UTF-8: never panics; every NAD it returns resolves (or
//! fails cleanly) to delegate config bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use multus_core::delegate::DelegateConfig;
use multus_core::nad::parse_manifests;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(nads) = parse_manifests(text) else {
        return;
    };
    for nad in &nads {
        assert!(!nad.name.is_empty());
        assert!(!nad.namespace.is_empty());
        let _ = nad.qualified_name();
        if let Ok(Some(bytes)) = nad.delegate_config() {
            assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_ok());
            let _ = DelegateConfig::from_bytes(&bytes);
        }
    }
});
