//! Property tests of the parse/serialise round trips and conversions of multus-core's
//! public API: the multus configuration, delegate configs and their per-plugin stdin
//! documents, CNI results across versions, and network-status entries.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use multus_core::cni::result::{Dns, Extra, Interface, IpConfig, Route};
use multus_core::cni::{CniResult, CniVersion};
use multus_core::config::{
    DEFAULT_API_RETRIES, DEFAULT_API_TIMEOUT_SECS, DEFAULT_BIN_DIR, DEFAULT_CNI_DIR,
    DEFAULT_CONF_DIR, DEFAULT_DELEGATE_TIMEOUT_SECS, DEFAULT_MULTUS_NAMESPACE,
    DEFAULT_READINESS_TIMEOUT_SECS, MultusConf, PodAnnotationsSource,
};
use multus_core::delegate::{DelegateConfig, DelegateKind, filter_by_capabilities};
use multus_core::nad::status::network_status_entries;

// ---------------------------------------------------------------------------------------
// Shared strategies
// ---------------------------------------------------------------------------------------

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1.0e12f64..1.0e12).prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
        "\\PC{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(("[a-zA-Z_.-]{1,8}", inner), 0..4)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn version() -> impl Strategy<Value = CniVersion> {
    proptest::sample::select(CniVersion::ALL.to_vec())
}

// ---------------------------------------------------------------------------------------
// (a) MultusConf::parse
// ---------------------------------------------------------------------------------------

/// A well-typed value for a key of the multus configuration.
fn valid_conf_value(key: &'static str) -> BoxedStrategy<Value> {
    let text = "[a-z0-9/._-]{0,16}".prop_map(Value::from);
    let path = "/[a-z0-9/._-]{1,16}".prop_map(Value::from);
    let names = proptest::collection::vec("[a-z0-9-]{1,8}", 0..3).prop_map(|v| json!(v));
    let flag = any::<bool>().prop_map(Value::from);
    match key {
        "cniVersion" => prop_oneof![
            version().prop_map(|v| Value::from(v.as_str())),
            Just(Value::from(""))
        ]
        .boxed(),
        "delegates" => proptest::collection::vec(
            prop_oneof![
                "[a-z]{1,8}".prop_map(|t| json!({"cniVersion": "1.0.0", "name": "d", "type": t})),
                "[a-z]{1,8}".prop_map(|t| json!({"name": "l", "plugins": [{"type": t}]})),
            ],
            0..3,
        )
        .prop_map(Value::Array)
        .boxed(),
        "clusterNetwork" => prop_oneof![
            "[a-z0-9-]{0,8}".prop_map(Value::from),
            path
        ]
        .boxed(),
        "defaultNetworks" | "systemNamespaces" => names.boxed(),
        "kubeconfig" | "confDir" | "cniDir" | "binDir" | "logFile" | "readinessindicatorfile"
        | "networkAttachmentDir" => prop_oneof![path, Just(Value::from(""))].boxed(),
        "name" | "type" | "multusNamespace" | "logLevel" | "auxiliaryCNIChainName" => text.boxed(),
        "logToStderr" | "namespaceIsolation" | "retryDeleteOnError" | "trustRuntimeAnnotations" => {
            flag.boxed()
        }
        "logOptions" => (any::<u32>(), any::<u32>(), any::<bool>())
            .prop_map(|(age, size, compress)| {
                json!({"maxAge": age, "maxSize": size, "compress": compress})
            })
            .boxed(),
        "globalNamespaces" => "[a-z, ]{0,16}".prop_map(Value::from).boxed(),
        "capabilities" => proptest::collection::btree_map("[a-zA-Z]{1,8}", any::<bool>(), 0..3)
            .prop_map(|m| json!(m))
            .boxed(),
        "runtimeConfig" => proptest::collection::vec(("[a-zA-Z.-]{1,10}", any_json()), 0..3)
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect()))
            .boxed(),
        "podAnnotationsFrom" => prop_oneof![Just(json!("runtimeConfig")), Just(json!("none"))].boxed(),
        "delegateTimeoutSeconds" => any::<u64>().prop_map(Value::from).boxed(),
        "apiRetries" => any::<u32>().prop_map(Value::from).boxed(),
        "apiTimeoutSeconds" | "readinessIndicatorTimeoutSeconds" => prop_oneof![
            (-10.0f64..1.0e6).prop_map(Value::from),
            any::<u32>().prop_map(Value::from),
        ]
        .boxed(),
        "cni.dev/valid-attachments" => {
            proptest::collection::vec(("[a-z0-9]{1,8}", "[a-z0-9]{1,8}"), 0..3)
                .prop_map(|pairs| {
                    pairs
                        .into_iter()
                        .map(|(id, ifname)| json!({"containerID": id, "ifname": ifname}))
                        .collect()
                })
                .boxed()
        }
        other => panic!("no strategy for {other}"),
    }
}

/// Every key of the multus configuration.
const CONF_KEYS: &[&str] = &[
    "name",
    "type",
    "cniVersion",
    "kubeconfig",
    "delegates",
    "clusterNetwork",
    "defaultNetworks",
    "systemNamespaces",
    "multusNamespace",
    "confDir",
    "cniDir",
    "binDir",
    "logFile",
    "logLevel",
    "logToStderr",
    "logOptions",
    "readinessindicatorfile",
    "namespaceIsolation",
    "globalNamespaces",
    "retryDeleteOnError",
    "auxiliaryCNIChainName",
    "capabilities",
    "runtimeConfig",
    "networkAttachmentDir",
    "podAnnotationsFrom",
    "delegateTimeoutSeconds",
    "apiTimeoutSeconds",
    "apiRetries",
    "readinessIndicatorTimeoutSeconds",
    "trustRuntimeAnnotations",
    "cni.dev/valid-attachments",
];

/// How one key appears in a generated configuration.
#[derive(Clone, Debug)]
enum Slot {
    Absent,
    Valid(Value),
    Random(Value),
}

fn slot(key: &'static str, random: u32) -> impl Strategy<Value = Slot> {
    prop_oneof![
        4 => Just(Slot::Absent),
        4 => valid_conf_value(key).prop_map(Slot::Valid),
        random => any_json().prop_map(Slot::Random),
    ]
}

/// Every key absent, well-typed or (with weight `random` against 8) of a random type,
/// in random order.
fn conf_slots(random: u32) -> impl Strategy<Value = Vec<(&'static str, Slot)>> {
    CONF_KEYS
        .iter()
        .map(|&key| slot(key, random).prop_map(move |s| (key, s)))
        .collect::<Vec<_>>()
        .prop_shuffle()
}

/// Well-typed slots except one key, which gets a value of a random type.
fn conf_slots_one_random() -> impl Strategy<Value = Vec<(&'static str, Slot)>> {
    (conf_slots(0), any::<proptest::sample::Index>(), any_json()).prop_map(
        |(mut slots, index, value)| {
            let i = index.index(slots.len());
            slots[i].1 = Slot::Random(value);
            slots
        },
    )
}

fn conf_document(slots: &[(&'static str, Slot)]) -> Value {
    let mut doc = Map::new();
    for (key, slot) in slots {
        match slot {
            Slot::Absent => {}
            Slot::Valid(v) | Slot::Random(v) => {
                doc.insert((*key).to_owned(), v.clone());
            }
        }
    }
    Value::Object(doc)
}

/// Check that every key left out has upstream's (or multus-rs') default.
fn check_defaults(conf: &MultusConf, absent: &dyn Fn(&str) -> bool) -> Result<(), TestCaseError> {
    let none = |p: &Option<PathBuf>| p.is_none();
    if absent("name") {
        prop_assert_eq!(&conf.name, "");
    }
    if absent("type") {
        prop_assert_eq!(&conf.plugin_type, "");
    }
    if absent("cniVersion") {
        prop_assert_eq!(conf.cni_version, CniVersion::V0_3_1);
    }
    if absent("kubeconfig") {
        prop_assert!(none(&conf.kubeconfig));
    }
    if absent("clusterNetwork") {
        prop_assert!(conf.cluster_network.is_none());
    }
    if absent("delegates") {
        prop_assert!(conf.delegates.is_empty());
    }
    if absent("defaultNetworks") {
        prop_assert!(conf.default_networks.is_empty());
    }
    if absent("systemNamespaces") {
        prop_assert_eq!(&conf.system_namespaces, &["kube-system"]);
    }
    if absent("multusNamespace") {
        prop_assert_eq!(&conf.multus_namespace, DEFAULT_MULTUS_NAMESPACE);
    }
    if absent("confDir") {
        prop_assert_eq!(&conf.conf_dir, &PathBuf::from(DEFAULT_CONF_DIR));
    }
    if absent("cniDir") {
        prop_assert_eq!(&conf.cni_dir, &PathBuf::from(DEFAULT_CNI_DIR));
    }
    if absent("binDir") {
        prop_assert_eq!(&conf.bin_dir, &PathBuf::from(DEFAULT_BIN_DIR));
    }
    if absent("logFile") {
        prop_assert!(none(&conf.log_file));
    }
    if absent("logLevel") {
        prop_assert!(conf.log_level.is_none());
    }
    if absent("logToStderr") {
        prop_assert!(conf.log_to_stderr);
    }
    if absent("logOptions") {
        prop_assert!(conf.log_options.is_none());
    }
    if absent("readinessindicatorfile") {
        prop_assert!(none(&conf.readiness_indicator_file));
    }
    if absent("namespaceIsolation") {
        prop_assert!(!conf.namespace_isolation);
    }
    if absent("globalNamespaces") {
        prop_assert_eq!(&conf.global_namespaces, &["default"]);
    }
    if absent("retryDeleteOnError") {
        prop_assert!(!conf.retry_delete_on_error);
    }
    if absent("auxiliaryCNIChainName") {
        prop_assert!(conf.auxiliary_cni_chain_name.is_none());
    }
    if absent("capabilities") {
        prop_assert!(conf.capabilities.is_empty());
    }
    if absent("runtimeConfig") {
        prop_assert!(conf.runtime_config.is_empty());
        prop_assert!(conf.runtime_pod_annotations().is_none());
    }
    if absent("networkAttachmentDir") {
        prop_assert!(none(&conf.network_attachment_dir));
    }
    if absent("podAnnotationsFrom") {
        prop_assert_eq!(
            conf.pod_annotations_from,
            PodAnnotationsSource::RuntimeConfig
        );
    }
    if absent("delegateTimeoutSeconds") {
        prop_assert_eq!(conf.delegate_timeout_secs, DEFAULT_DELEGATE_TIMEOUT_SECS);
    }
    if absent("apiTimeoutSeconds") {
        prop_assert_eq!(
            conf.api_timeout,
            Duration::from_secs_f64(DEFAULT_API_TIMEOUT_SECS)
        );
    }
    if absent("apiRetries") {
        prop_assert_eq!(conf.api_retries, DEFAULT_API_RETRIES);
    }
    if absent("readinessIndicatorTimeoutSeconds") {
        prop_assert_eq!(
            conf.readiness_indicator_timeout,
            Duration::from_secs_f64(DEFAULT_READINESS_TIMEOUT_SECS)
        );
    }
    if absent("trustRuntimeAnnotations") {
        prop_assert!(!conf.trust_runtime_annotations);
    }
    if absent("cni.dev/valid-attachments") {
        prop_assert!(conf.valid_attachments.is_empty());
    }
    Ok(())
}

/// What holds for every accepted configuration `conf` parsed from `doc`.
fn check_parsed(conf: &MultusConf, doc: &Value) -> Result<(), TestCaseError> {
    let object = doc.as_object().unwrap();
    check_defaults(conf, &|key| !object.contains_key(key))?;
    prop_assert!(conf.cluster_network.is_some() || !conf.delegates.is_empty());
    if conf.cluster_network.is_some() {
        prop_assert!(
            conf.delegates.is_empty(),
            "clusterNetwork wins over delegates"
        );
    }
    for delegate in &conf.delegates {
        prop_assert!(DelegateConfig::from_value(delegate).is_ok());
    }
    prop_assert!(conf.delegate_timeout_secs > 0);
    prop_assert!(!conf.multus_namespace.is_empty());
    prop_assert!(
        conf.global_namespaces
            .iter()
            .all(|n| !n.is_empty() && n.trim() == n)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any object built from the known keys, with values of random types, is parsed or
    /// refused without panicking; what is accepted is usable.
    #[test]
    fn multus_conf_parse_never_panics(slots in conf_slots(8)) {
        let doc = conf_document(&slots);
        if let Ok(conf) = MultusConf::parse(doc.to_string().as_bytes()) {
            check_parsed(&conf, &doc)?;
        }
    }

    /// One key of a random type among well-typed ones: parsed or refused without
    /// panicking, and when parsed, every key left out has its default.
    #[test]
    fn multus_conf_with_one_odd_value_never_panics(slots in conf_slots_one_random()) {
        let doc = conf_document(&slots);
        if let Ok(conf) = MultusConf::parse(doc.to_string().as_bytes()) {
            check_parsed(&conf, &doc)?;
        }
    }

    /// Well-typed documents are refused only for want of a cluster network, and every
    /// key left out gets its default.
    #[test]
    fn multus_conf_defaults_hold_for_keys_left_out(slots in conf_slots(0)) {
        let doc = conf_document(&slots);
        let text = doc.to_string();
        let parsed = MultusConf::parse(text.as_bytes());
        let has_cluster_network = doc
            .get("clusterNetwork")
            .and_then(Value::as_str)
            .is_some_and(|c| !c.is_empty())
            || doc.get("delegates").and_then(Value::as_array).is_some_and(|d| !d.is_empty());
        prop_assert_eq!(parsed.is_ok(), has_cluster_network, "{} {:?}", text, parsed.as_ref().err());
        if let Ok(conf) = parsed {
            check_parsed(&conf, &doc)?;
            // Well-typed values given are taken as given.
            if let Some(Value::String(name)) = doc.get("name") {
                prop_assert_eq!(&conf.name, name);
            }
            if let Some(Value::String(version)) = doc.get("cniVersion").filter(|v| *v != "") {
                prop_assert_eq!(conf.cni_version.as_str(), version.as_str());
            }
            if let Some(Value::Bool(isolation)) = doc.get("namespaceIsolation") {
                prop_assert_eq!(conf.namespace_isolation, *isolation);
            }
            if let Some(Value::Array(networks)) = doc.get("defaultNetworks") {
                prop_assert_eq!(conf.default_networks.len(), networks.len());
            }
        }
    }

    /// The same with the keys themselves sometimes dropped into an unknown-key soup.
    #[test]
    fn multus_conf_parse_tolerates_unknown_keys(
        slots in conf_slots(0),
        unknown in proptest::collection::vec(("[a-zA-Z]{1,12}", any_json()), 0..4),
    ) {
        let mut doc = conf_document(&slots);
        for (key, value) in unknown {
            if !CONF_KEYS.contains(&key.as_str()) {
                doc.as_object_mut().unwrap().insert(key, value);
            }
        }
        let with_unknown = MultusConf::parse(doc.to_string().as_bytes());
        let without = MultusConf::parse(conf_document(&slots).to_string().as_bytes());
        // Unknown keys change nothing.
        prop_assert_eq!(with_unknown.ok(), without.ok());
    }
}

// ---------------------------------------------------------------------------------------
// (b) DelegateConfig: byte-faithful round trip and per-plugin stdin
// ---------------------------------------------------------------------------------------

/// Keys that have a meaning to multus or the runtime; extra keys avoid them.
const RESERVED: &[&str] = &[
    "type",
    "plugins",
    "name",
    "cniVersion",
    "capabilities",
    "runtimeConfig",
    "prevResult",
];

const CAPABILITIES: &[&str] = &[
    "portMappings",
    "bandwidth",
    "ips",
    "mac",
    "deviceID",
    "x-custom",
];

fn extra_keys() -> impl Strategy<Value = Vec<(String, Value)>> {
    proptest::collection::vec(("[a-zA-Z][a-zA-Z0-9_]{0,7}", any_json()), 0..4).prop_map(|pairs| {
        pairs
            .into_iter()
            .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
            .collect()
    })
}

fn capabilities() -> impl Strategy<Value = Option<Value>> {
    proptest::option::weighted(
        0.8,
        proptest::collection::vec(
            (
                proptest::sample::select(CAPABILITIES),
                prop_oneof![3 => Just(Value::Bool(true)), 1 => Just(Value::Bool(false)), 1 => any_json()],
            ),
            0..4,
        )
        .prop_map(|pairs| {
            Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        }),
    )
}

/// One plugin object, its keys in random order.
fn plugin() -> impl Strategy<Value = Map<String, Value>> {
    ("[a-z][a-z0-9-]{0,10}", capabilities(), extra_keys())
        .prop_flat_map(|(kind, caps, extra)| {
            let mut pairs: Vec<(String, Value)> = vec![("type".into(), Value::from(kind))];
            if let Some(caps) = caps {
                pairs.push(("capabilities".into(), caps));
            }
            pairs.extend(extra);
            Just(pairs).prop_shuffle()
        })
        .prop_map(|pairs| pairs.into_iter().collect())
}

fn cni_version_value() -> impl Strategy<Value = Option<Value>> {
    proptest::option::of(prop_oneof![
        4 => version().prop_map(|v| Value::from(v.as_str())),
        1 => "[0-9.]{0,6}".prop_map(Value::from),
    ])
}

/// A valid single conf or conflist, its kind, and the plugins as generated.
fn delegate_doc() -> impl Strategy<Value = (Map<String, Value>, DelegateKind)> {
    let single = (
        plugin(),
        proptest::option::of("[a-z0-9-]{1,10}"),
        cni_version_value(),
    )
        .prop_map(|(mut doc, name, version)| {
            if let Some(name) = name {
                doc.insert("name".into(), name.into());
            }
            if let Some(version) = version {
                doc.insert("cniVersion".into(), version);
            }
            (doc, DelegateKind::Single)
        });
    let list = (
        proptest::collection::vec(plugin(), 1..4),
        proptest::option::of("[a-z0-9-]{1,10}"),
        cni_version_value(),
        extra_keys(),
    )
        .prop_map(|(plugins, name, version, extra)| {
            let mut doc = Map::new();
            if let Some(version) = version {
                doc.insert("cniVersion".into(), version);
            }
            if let Some(name) = name {
                doc.insert("name".into(), name.into());
            }
            doc.insert(
                "plugins".into(),
                Value::Array(plugins.into_iter().map(Value::Object).collect()),
            );
            doc.extend(extra);
            (doc, DelegateKind::List)
        });
    prop_oneof![single, list]
}

/// The document as an administrator might have written it.
fn render(doc: &Map<String, Value>, style: u8) -> String {
    match style {
        0 => serde_json::to_string(doc).unwrap(),
        1 => serde_json::to_string_pretty(doc).unwrap(),
        _ => format!("\n  {}\n", serde_json::to_string_pretty(doc).unwrap()),
    }
}

fn runtime_config() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::vec((proptest::sample::select(CAPABILITIES), any_json()), 1..6)
        .prop_map(|pairs| pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn delegate_config_keeps_bytes_and_builds_faithful_stdin(
        (doc, kind) in delegate_doc(),
        style in 0u8..3,
        rc in runtime_config(),
        prev in proptest::option::of(any_json()),
    ) {
        let raw = render(&doc, style);
        let config = DelegateConfig::from_bytes(raw.as_bytes()).unwrap();
        prop_assert_eq!(config.raw(), raw.as_str());
        prop_assert_eq!(config.kind(), kind);

        // serde: the exact text, both ways.
        let text = serde_json::to_string(&config).unwrap();
        prop_assert_eq!(&text, &serde_json::to_string(&raw).unwrap());
        let back: DelegateConfig = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back.raw(), raw.as_str());
        prop_assert_eq!(&back, &config);

        let originals: Vec<Map<String, Value>> = match kind {
            DelegateKind::Single => vec![doc.clone()],
            DelegateKind::List => doc["plugins"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| object(p.clone()))
                .collect(),
        };
        prop_assert_eq!(config.plugins().len(), originals.len());

        for (index, original) in originals.iter().enumerate() {
            prop_assert_eq!(config.plugins()[index], original);
            let capability_args = filter_by_capabilities(original, &rc);
            let bytes = config.plugin_stdin(index, &rc, prev.as_ref());
            let stdin = object(serde_json::from_slice(&bytes).expect("stdin is JSON"));

            let mut injected: Vec<&str> = Vec::new();
            if kind == DelegateKind::List {
                injected.extend(["name", "cniVersion"]);
                prop_assert_eq!(&stdin["name"], &Value::from(config.name()));
                prop_assert_eq!(
                    &stdin["cniVersion"],
                    &Value::from(config.cni_version_text().unwrap_or_default())
                );
            }
            if !capability_args.is_empty() {
                injected.push("runtimeConfig");
                prop_assert_eq!(&stdin["runtimeConfig"], &Value::Object(capability_args.clone()));
                // Only declared (`true`) capabilities, with the runtime's values.
                for (key, value) in &capability_args {
                    prop_assert_eq!(original["capabilities"][key].as_bool(), Some(true));
                    prop_assert_eq!(Some(value), rc.get(key));
                }
            }
            if let Some(prev) = &prev {
                injected.push("prevResult");
                prop_assert_eq!(&stdin["prevResult"], prev);
            }
            // Every other key is the plugin's own, unchanged and in its order.
            for (key, value) in original {
                if !injected.contains(&key.as_str()) {
                    prop_assert_eq!(stdin.get(key), Some(value), "{}", key);
                }
            }
            let order: Vec<&String> = stdin.keys().filter(|k| original.contains_key(*k)).collect();
            prop_assert_eq!(order, original.keys().collect::<Vec<_>>());
            for key in stdin.keys() {
                prop_assert!(original.contains_key(key) || injected.contains(&key.as_str()), "{}", key);
            }
            // Nothing to inject into a single conf: the exact bytes.
            if kind == DelegateKind::Single && capability_args.is_empty() && prev.is_none() {
                prop_assert_eq!(&bytes, raw.as_bytes());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// (c) CniResult conversions
// ---------------------------------------------------------------------------------------

fn ipv4() -> impl Strategy<Value = String> {
    any::<[u8; 4]>().prop_map(|o| Ipv4Addr::from(o).to_string())
}

fn ipv6() -> impl Strategy<Value = String> {
    any::<u128>().prop_map(|b| Ipv6Addr::from(b).to_string())
}

fn cidr() -> impl Strategy<Value = String> {
    prop_oneof![
        (ipv4(), 0u8..=32).prop_map(|(ip, len)| format!("{ip}/{len}")),
        (ipv6(), 0u8..=128).prop_map(|(ip, len)| format!("{ip}/{len}")),
        Just("0.0.0.0/0".to_owned()),
        Just("::/0".to_owned()),
    ]
}

fn ip_address() -> impl Strategy<Value = String> {
    prop_oneof![ipv4(), ipv6()]
}

/// Unknown keys as plugins add them (vendor-prefixed), with nested values.
fn vendor_extra() -> impl Strategy<Value = Extra> {
    proptest::collection::vec(("x-[a-z]{1,6}", any_json()), 0..2)
        .prop_map(|pairs| pairs.into_iter().collect())
}

fn interface() -> impl Strategy<Value = Interface> {
    (
        "[a-z0-9]{1,8}",
        proptest::option::of("[0-9a-f]{2}(:[0-9a-f]{2}){5}"),
        prop_oneof![
            Just(None),
            Just(Some(String::new())),
            "/var/run/netns/[a-z0-9-]{1,8}".prop_map(Some),
        ],
        proptest::option::of(576u32..9001),
        vendor_extra(),
    )
        .prop_map(|(name, mac, sandbox, mtu, extra)| Interface {
            name,
            mac,
            mtu,
            sandbox,
            extra,
            ..Interface::default()
        })
}

fn route() -> impl Strategy<Value = Route> {
    (
        cidr(),
        proptest::option::of(ip_address()),
        proptest::option::of(any::<u32>()),
        vendor_extra(),
    )
        .prop_map(|(dst, gw, table, extra)| Route {
            dst,
            gw,
            table,
            extra,
            ..Route::default()
        })
}

fn dns() -> impl Strategy<Value = Dns> {
    (
        proptest::collection::vec(ip_address(), 0..3),
        proptest::option::of("[a-z.]{1,12}"),
        proptest::collection::vec("[a-z.]{1,12}", 0..3),
        proptest::collection::vec("[a-z:0-9]{1,8}", 0..2),
    )
        .prop_map(|(nameservers, domain, search, options)| Dns {
            nameservers,
            domain,
            search,
            options,
            ..Dns::default()
        })
}

/// A 1.x result whose address interface indexes are `None` or in range.
fn result_1x() -> impl Strategy<Value = CniResult> {
    proptest::collection::vec(interface(), 0..4)
        .prop_flat_map(|interfaces| {
            let count = interfaces.len();
            let index = if count == 0 {
                Just(None).boxed()
            } else {
                proptest::option::of(0..count).boxed()
            };
            let ip = (
                index,
                cidr(),
                proptest::option::of(ip_address()),
                vendor_extra(),
            )
                .prop_map(|(interface, address, gateway, extra)| IpConfig {
                    interface,
                    address,
                    gateway,
                    extra,
                });
            (
                Just(interfaces),
                proptest::collection::vec(ip, 0..4),
                proptest::collection::vec(route(), 0..4),
                dns(),
                prop_oneof![Just(CniVersion::V1_0_0), Just(CniVersion::V1_1_0)],
            )
        })
        .prop_map(|(interfaces, ips, routes, dns, cni_version)| CniResult {
            cni_version,
            interfaces,
            ips,
            routes,
            dns,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Rendering at any version, parsing that, and rendering again gives the same
    /// document: `to_value(v)` is a fixed point of `from_value` for every version.
    #[test]
    fn rendering_is_a_fixed_point_at_every_version(result in result_1x()) {
        for version in CniVersion::ALL {
            let rendered = result.to_value(version);
            let parsed = CniResult::from_value(&rendered, version).unwrap();
            prop_assert_eq!(parsed.cni_version, version);
            prop_assert_eq!(parsed.to_value(version), rendered.clone(), "at {}", version);
            // Also when the reader assumes another version: the document declares its own.
            let parsed = CniResult::from_value(&rendered, CniVersion::V0_1_0).unwrap();
            prop_assert_eq!(parsed.to_value(version), rendered, "at {}", version);
        }
    }

    /// 1.0.0 -> 0.4.0 -> 1.0.0 loses nothing (the 0.4.0 layout only adds `version`).
    #[test]
    fn one_zero_to_zero_four_and_back_is_lossless(result in result_1x()) {
        let v1 = result.to_value(CniVersion::V1_0_0);
        let from_v1 = CniResult::from_value(&v1, CniVersion::V1_0_0).unwrap();
        let v04 = from_v1.to_value(CniVersion::V0_4_0);
        // Every address says its family at 0.4.0.
        for ip in v04["ips"].as_array().into_iter().flatten() {
            let family = if ip["address"].as_str().unwrap().contains(':') { "6" } else { "4" };
            prop_assert_eq!(&ip["version"], &json!(family));
        }
        let back = CniResult::from_value(&v04, CniVersion::V0_4_0).unwrap();
        prop_assert_eq!(back.to_value(CniVersion::V1_0_0), v1);
        prop_assert_eq!(
            CniResult { cni_version: CniVersion::V1_0_0, ..back },
            from_v1
        );
    }
}

/// Regression (found by reviewing the conversion rules while fuzzing): an unknown
/// `interface` key of a 0.2.0 `ip4` object was written at 1.x next to the real keys and
/// read back as the interface index, so the rendered result did not parse.
#[test]
fn legacy_unknown_interface_key_does_not_break_1x_rendering() {
    let legacy = json!({
        "cniVersion": "0.2.0",
        "ip4": {"ip": "10.0.0.2/24", "interface": "eth0", "x-a": 1},
        "dns": {}
    });
    let result = CniResult::from_value(&legacy, CniVersion::V0_2_0).unwrap();
    for version in CniVersion::ALL {
        let rendered = result.to_value(version);
        let reparsed = CniResult::from_value(&rendered, version).unwrap();
        assert_eq!(reparsed.to_value(version), rendered, "{version}");
    }
    assert_eq!(
        result.to_value(CniVersion::V1_0_0)["ips"][0],
        json!({"address": "10.0.0.2/24", "x-a": 1})
    );
    // In its own layout the key is kept.
    assert_eq!(result.to_value(CniVersion::V0_2_0), legacy);
}

/// Regression: an unknown `routes` key of a 1.x address was written into the 0.2.0
/// `ip4` object and read back as that family's routes.
#[test]
fn unknown_routes_key_of_an_address_does_not_break_legacy_rendering() {
    let doc = json!({
        "cniVersion": "1.0.0",
        "ips": [{"address": "10.0.0.2/24", "routes": 5}],
        "dns": {}
    });
    let result = CniResult::from_value(&doc, CniVersion::V1_0_0).unwrap();
    for version in CniVersion::ALL {
        let rendered = result.to_value(version);
        let reparsed = CniResult::from_value(&rendered, version).unwrap();
        assert_eq!(reparsed.to_value(version), rendered, "{version}");
    }
    assert_eq!(
        result.to_value(CniVersion::V0_2_0)["ip4"],
        json!({"ip": "10.0.0.2/24"})
    );
    assert_eq!(result.to_value(CniVersion::V1_0_0), doc);
}

/// Regression (found by the `cni_result` fuzz target): numbers in unknown keys changed
/// in their last digit on every parse/render cycle (serde_json's default float parsing
/// is not exact), so a result did not survive being cached and re-read.
#[test]
fn numbers_in_unknown_keys_survive_round_trips() {
    let text = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","x-big":222222222222222222222222,"x-f":0.30000000000000004}],"dns":{}}"#;
    let result = CniResult::parse(text.as_bytes(), CniVersion::V1_0_0).unwrap();
    let once = result.to_json(CniVersion::V1_0_0);
    let twice = CniResult::parse(once.as_bytes(), CniVersion::V1_0_0)
        .unwrap()
        .to_json(CniVersion::V1_0_0);
    assert_eq!(once, twice);
    assert!(once.contains("0.30000000000000004"), "{once}");
}

// ---------------------------------------------------------------------------------------
// (d) network-status entries
// ---------------------------------------------------------------------------------------

/// Any result, with address indexes that may be out of range or name host interfaces.
fn any_result() -> impl Strategy<Value = CniResult> {
    (
        proptest::collection::vec(interface(), 0..5),
        proptest::collection::vec(
            (
                proptest::option::of(0usize..7),
                cidr(),
                proptest::option::of(ip_address()),
            ),
            0..6,
        ),
        proptest::collection::vec(route(), 0..4),
        dns(),
    )
        .prop_map(|(interfaces, ips, routes, dns)| CniResult {
            cni_version: CniVersion::V1_0_0,
            interfaces,
            ips: ips
                .into_iter()
                .map(|(interface, address, gateway)| IpConfig {
                    interface,
                    address,
                    gateway,
                    extra: Extra::new(),
                })
                .collect(),
            routes,
            dns,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// The invariant, precisely: the entries' addresses, concatenated, are a permutation
    /// of the result's addresses (without prefix length): every address of the result
    /// appears in exactly one entry, as many times as in the result. There is no
    /// exception in multus-rs. (Upstream has one: a result with no interface at all
    /// yields no entry, so its addresses appear nowhere; multus-rs gives it one entry
    /// named after the delegate's ifname.)
    ///
    /// Placement: with exactly one interface (in the sandbox or not) there is one entry
    /// holding every address whatever its index; with no sandbox interface, one entry
    /// named after ifname holding every address; otherwise one entry per sandbox
    /// interface in result order, an address going to the entry of the sandbox
    /// interface its index names, and to the last entry when it has no index or its
    /// index names a host interface or no interface. Exactly one entry is `default`
    /// for the cluster network, none otherwise.
    #[test]
    fn network_status_places_every_address_exactly_once(
        result in any_result(),
        is_default in any::<bool>(),
    ) {
        let entries = network_status_entries("ns/net", "net1", &result, is_default);

        let mut expected: Vec<String> = result.ips.iter().map(|ip| ip.ip().to_owned()).collect();
        let mut found: Vec<String> = entries.iter().flat_map(|e| e.ips.clone()).collect();
        expected.sort();
        found.sort();
        prop_assert_eq!(found, expected);

        let sandboxed: Vec<usize> = result.sandbox_interfaces().map(|(i, _)| i).collect();
        let expected_entries = if result.interfaces.len() == 1 { 1 } else { sandboxed.len().max(1) };
        prop_assert_eq!(entries.len(), expected_entries);
        prop_assert_eq!(entries.iter().filter(|e| e.default).count(), usize::from(is_default));

        let gateways: Vec<String> = result
            .routes
            .iter()
            .filter(|r| r.is_default())
            .filter_map(|r| r.gw.clone())
            .collect();
        for entry in &entries {
            prop_assert_eq!(&entry.name, "ns/net");
            prop_assert_eq!(&entry.dns, &result.dns);
            prop_assert_eq!(&entry.gateway, &gateways);
        }

        if result.interfaces.len() != 1 && !sandboxed.is_empty() {
            for (position, &index) in sandboxed.iter().enumerate() {
                let iface = &result.interfaces[index];
                prop_assert_eq!(&entries[position].interface, &iface.name);
                prop_assert_eq!(entries[position].mac.as_str(), iface.mac.as_deref().unwrap_or(""));
            }
            let mut model: Vec<Vec<String>> = vec![Vec::new(); sandboxed.len()];
            for ip in &result.ips {
                let position = ip
                    .interface
                    .and_then(|i| sandboxed.iter().position(|&s| s == i))
                    .unwrap_or(sandboxed.len() - 1);
                model[position].push(ip.ip().to_owned());
            }
            let actual: Vec<Vec<String>> = entries.iter().map(|e| e.ips.clone()).collect();
            prop_assert_eq!(actual, model);
        } else {
            let all: Vec<String> = result.ips.iter().map(|ip| ip.ip().to_owned()).collect();
            prop_assert_eq!(&entries[0].ips, &all);
            if sandboxed.is_empty() {
                prop_assert_eq!(&entries[0].interface, "net1");
            }
        }
    }
}
