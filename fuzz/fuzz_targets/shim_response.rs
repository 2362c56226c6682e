//! The shim's HTTP response reader on arbitrary bytes from the daemon's socket: never
//! panics, never returns a body larger than its limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use multus_shim::client::{MAX_RESPONSE_BYTES, read_response};

fuzz_target!(|data: &[u8]| {
    let mut reader = data;
    if let Ok(response) = read_response(std::path::Path::new("/fuzz.sock"), &mut reader) {
        assert!(response.body.len() <= MAX_RESPONSE_BYTES);
        let _ = response.text();
        let _ = response.header("content-type");
    }
});
