//! NAD YAML within its budgets: the fuzzer's bytes choose a nesting shape that is
//! repeated up to far past `MAX_MANIFEST_DEPTH` and around a NAD, so deep, wide and
//! aliased manifests are tried at sizes the plain `nad_manifest` target rarely reaches.
//! Never panics; a manifest nested deeper than the limit is always refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use multus_core::nad::manifest::MAX_MANIFEST_DEPTH;
use multus_core::nad::parse_manifests;

const NAD: &str = "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata:\n  name: n\nspec:\n  config: '{\"type\":\"bridge\"}'\n";

fuzz_target!(|data: &[u8]| {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let Some((&count, rest)) = rest.split_first() else {
        return;
    };
    let depth = usize::from(count) * 4;
    let tail = String::from_utf8_lossy(rest);
    let (open, close) = match shape % 4 {
        0 => ("[", "]"),
        1 => ("{a: ", "}"),
        2 => ("- ", ""),
        _ => ("&a [*a, ", "]"),
    };
    let mut text = String::from(NAD);
    text.push_str("  extra: ");
    for _ in 0..depth {
        text.push_str(open);
    }
    text.push_str(&tail);
    for _ in 0..depth {
        text.push_str(close);
    }
    text.push('\n');
    let result = parse_manifests(&text);
    if shape % 4 < 2 && depth > MAX_MANIFEST_DEPTH + 2 {
        assert!(result.is_err(), "depth {depth} accepted");
    }
});
