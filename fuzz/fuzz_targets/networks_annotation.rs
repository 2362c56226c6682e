//! The networks and default-network annotation parsers on arbitrary UTF-8: never panic;
//! accepted elements serialise to a JSON annotation that parses back to the same elements.
#![no_main]

use libfuzzer_sys::fuzz_target;
use multus_core::nad::annotation::{parse_default_network_annotation, validate_ifname};
use multus_core::nad::parse_networks_annotation;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_default_network_annotation(value, "kube-system");
    let Ok(elements) = parse_networks_annotation(value, "default") else {
        return;
    };
    for element in &elements {
        assert!(!element.name.is_empty());
        assert!(!element.namespace.is_empty());
        if let Some(ifname) = &element.interface {
            assert!(validate_ifname(ifname).is_ok(), "{ifname:?}");
        }
    }
    // A serialised element list is itself a valid annotation value.
    let json = serde_json::to_string(&elements).expect("serialise");
    match parse_networks_annotation(&json, "other") {
        Ok(again) => assert_eq!(again, elements, "{json}"),
        Err(e) => panic!("serialised elements do not parse ({e}): {json}"),
    }
});
