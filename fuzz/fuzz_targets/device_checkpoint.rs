//! The kubelet device manager's checkpoint, as multus reads it when the pod-resources
//! socket is absent: never panics; every device found belongs to the pod asked about
//! and appears once per resource.
#![no_main]

use libfuzzer_sys::fuzz_target;
use multus_core::devices::checkpoint::parse;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the pod UID asked about, so both matches and misses are
    // explored.
    let (uid, doc) = match data.split_first() {
        Some((0, rest)) => ("", rest),
        Some((_, rest)) => ("u1", rest),
        None => return,
    };
    if let Ok(map) = parse(doc, uid) {
        if uid.is_empty() {
            assert!(map.is_empty());
        }
        for resource in map.resource_names() {
            let ids: Vec<_> = map.devices(resource).iter().map(|e| &e.device_id).collect();
            let mut unique = ids.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), ids.len());
        }
    }
});
