//! `CniArgs::parse` on arbitrary UTF-8: never panics, and what it accepts prints back to a
//! string that parses to the same pairs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use multus_core::cni::CniArgs;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(args) = CniArgs::parse(text) else {
        return;
    };
    let printed = args.to_string();
    assert_eq!(CniArgs::parse(&printed).as_ref(), Ok(&args), "{printed:?}");
    for (key, _) in args.pairs() {
        assert!(!key.is_empty() && !key.contains('=') && !key.contains(';'));
        assert!(args.get(key).is_some());
    }
});
