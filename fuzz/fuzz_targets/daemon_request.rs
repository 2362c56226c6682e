//! The daemon's `/cni` request parsing on arbitrary bytes: the JSON body with its base64
//! stdin, the CNI request built from its environment, and the multus configuration of
//! its stdin. Never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use multus_core::config::MultusConf;
use multus_core::request::CniRequest;
use multus_shim::api::Request;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<Request>(data) else {
        return;
    };
    let Ok(cni) = CniRequest::from_env(&request.env, request.config) else {
        return;
    };
    if let Ok(conf) = MultusConf::parse(&cni.stdin) {
        let _ = conf.runtime_pod_annotations();
    }
});
