//! `MultusConf::parse` on arbitrary bytes: never panics; an accepted configuration has a
//! cluster network and usable static delegates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use multus_core::config::MultusConf;
use multus_core::delegate::DelegateConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(conf) = MultusConf::parse(data) else {
        return;
    };
    assert!(conf.cluster_network.is_some() || !conf.delegates.is_empty());
    for delegate in &conf.delegates {
        assert!(DelegateConfig::from_value(delegate).is_ok());
    }
    assert!(conf.delegate_timeout_secs > 0);
    let _ = conf.runtime_pod_annotations();
});
