//! `CniResult::parse` with every version as fallback; whatever parses renders at every
//! version into a document that parses again, and rendering is stable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use multus_core::cni::{CniResult, CniVersion};

fuzz_target!(|data: &[u8]| {
    let mut seen: Vec<CniResult> = Vec::new();
    for fallback in CniVersion::ALL {
        let Ok(result) = CniResult::parse(data, fallback) else {
            continue;
        };
        // A document that declares its version parses the same with every fallback.
        if seen.contains(&result) {
            continue;
        }
        for version in CniVersion::ALL {
            let rendered = result.to_json(version);
            let reparsed = match CniResult::parse(rendered.as_bytes(), version) {
                Ok(reparsed) => reparsed,
                Err(e) => panic!(
                    "result parsed with fallback {fallback} renders at {version} to a document \
                     that does not parse ({e}): {rendered}"
                ),
            };
            assert_eq!(reparsed.cni_version, version);
            assert_eq!(
                reparsed.to_json(version),
                rendered,
                "rendering at {version} is not stable"
            );
        }
        seen.push(result);
    }
});
