//! The `k8s.v1.cni.cncf.io/networks` and `v1.multus-cni.io/default-network` pod
//! annotations: a list of "network selection elements" (NPWG specification).
//!
//! Two forms are accepted, detected by content as upstream Multus does: if the value
//! contains `[`, `{` or `"` it is the JSON form, otherwise the text form.
//!
//! * Text form: comma-separated items `[<namespace>/]<name>[@<ifname>]`, each trimmed.
//!   Example: `macvlan-conf-1, testns1/macvlan-conf-3@macvlan1`.
//! * JSON form: an array of objects, for example
//!   `[{"name":"macvlan-conf","namespace":"default","interface":"macvlan1"}]`.
//!
//! Compatibility notes (see the upstream behaviour reference, section 3.2):
//! * JSON keys are matched ASCII-case-insensitively, as Go's `encoding/json` does, and a
//!   JSON `null` counts as an absent key. Unknown keys are ignored (logged at debug).
//! * An empty `@ifname` (`net1@`) and an empty namespace (`/net1`) mean "not given", as
//!   upstream.
//! * Fixed upstream defects: the JSON `interface` is validated like the text form's
//!   `@ifname`; names and namespaces are length-checked (DNS-1123); `portMappings` and
//!   `bandwidth` are type- and range-checked; an empty network name is rejected up front.
//! * In the JSON form `name` may be any DNS-1123 subdomain (dots allowed), because that is
//!   what a NetworkAttachmentDefinition may be called and upstream does not restrict it
//!   there; the text form keeps upstream's stricter DNS-1123 label rule for the name.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest interface name the kernel accepts (`IFNAMSIZ - 1`).
const MAX_IFNAME_LEN: usize = 15;
/// Longest DNS-1123 label (namespaces).
const MAX_LABEL_LEN: usize = 63;
/// Longest DNS-1123 subdomain (object names).
const MAX_SUBDOMAIN_LEN: usize = 253;

/// JSON keys of a network selection element that this parser understands.
const KNOWN_KEYS: &[&str] = &[
    "name",
    "namespace",
    "interface",
    "interfaceRequest",
    "ips",
    "mac",
    "infiniband-guid",
    "deviceID",
    "portMappings",
    "bandwidth",
    "cni-args",
    "default-route",
];

/// Keys of `bandwidth` whose values must be non-negative integers.
const BANDWIDTH_KEYS: &[&str] = &["ingressRate", "ingressBurst", "egressRate", "egressBurst"];

/// One requested attachment (NPWG "network selection element").
///
/// Serialises to (and deserialises from) the JSON form of the annotation, so a
/// `Vec<NetworkSelectionElement>` serialised with `serde_json` is itself a valid
/// annotation value. Deserialising does not validate: use [`parse_networks_annotation`]
/// for untrusted input.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkSelectionElement {
    /// Name of the NetworkAttachmentDefinition.
    pub name: String,
    /// Namespace of the NetworkAttachmentDefinition; after parsing always filled (the
    /// default namespace is applied when none was given).
    pub namespace: String,
    /// Requested interface name in the pod: from `interface`, the legacy
    /// `interfaceRequest` when `interface` is empty, or the text form's `@ifname`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Requested IP addresses, each an IP address or a CIDR (`ips`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    /// Requested MAC address (`mac`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Requested InfiniBand GUID (`infiniband-guid`).
    #[serde(rename = "infiniband-guid", skip_serializing_if = "Option::is_none")]
    pub infiniband_guid: Option<String>,
    /// Requested device (`deviceID`), e.g. a PCI address.
    #[serde(rename = "deviceID", skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// Port mappings for this attachment (`portMappings`), an array kept as given.
    #[serde(rename = "portMappings", skip_serializing_if = "Option::is_none")]
    pub port_mappings: Option<Value>,
    /// Bandwidth limits for this attachment (`bandwidth`), an object kept as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Value>,
    /// Extra CNI arguments merged into the delegate's `args.cni` (`cni-args`).
    #[serde(rename = "cni-args", skip_serializing_if = "Option::is_none")]
    pub cni_args: Option<Map<String, Value>>,
    /// Gateways whose default routes this attachment should own (`default-route`).
    /// `Some(vec![])` is meaningful and differs from `None`.
    #[serde(rename = "default-route", skip_serializing_if = "Option::is_none")]
    pub default_route: Option<Vec<IpAddr>>,
}

/// Why a networks (or default-network) annotation was rejected.
///
/// `element` fields describe the offending element: the quoted text item for the text
/// form, `#<index>` (0-based) followed by the quoted name when known for the JSON form.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnnotationError {
    /// The text form has an empty item, e.g. a stray comma.
    #[error("networks annotation {value:?} has an empty item (check for a stray ',')")]
    EmptyItem {
        /// The whole annotation value.
        value: String,
    },
    /// A text item has more than one `/`.
    #[error(
        "invalid network object {item:?} (failed at '/'): more than one '/'; \
         expected [<namespace>/]<name>[@<interface>]"
    )]
    TooManySlashes {
        /// The offending text item.
        item: String,
    },
    /// A text item has more than one `@`.
    #[error(
        "invalid network object {item:?} (failed at '@'): more than one '@'; \
         expected [<namespace>/]<name>[@<interface>]"
    )]
    TooManyAts {
        /// The offending text item.
        item: String,
    },
    /// An element has no network name, or an empty one.
    #[error("network selection element {element}: the network name is missing or empty")]
    MissingName {
        /// The offending element.
        element: String,
    },
    /// A network name is not a valid Kubernetes object name.
    #[error("network selection element {element}: invalid network name {name:?}: {reason}")]
    InvalidName {
        /// The offending element.
        element: String,
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A namespace is not a valid Kubernetes namespace name.
    #[error("network selection element {element}: invalid namespace {namespace:?}: {reason}")]
    InvalidNamespace {
        /// The offending element.
        element: String,
        /// The rejected namespace.
        namespace: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An interface name the kernel would refuse.
    #[error("invalid interface name {ifname:?}: {reason}")]
    InvalidInterfaceName {
        /// The rejected interface name.
        ifname: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The JSON form is not valid JSON.
    #[error("networks annotation is not valid JSON: {message}")]
    InvalidJson {
        /// The JSON parser's message.
        message: String,
    },
    /// The JSON form is valid JSON but not an array.
    #[error(
        "networks annotation must be a JSON array of network selection objects, found {found} \
         (wrap a single object in [ ])"
    )]
    NotAnArray {
        /// The JSON type found instead.
        found: &'static str,
    },
    /// An element of the JSON array is not an object.
    #[error("network selection element #{index} must be a JSON object, found {found}")]
    ElementNotAnObject {
        /// 0-based index in the array.
        index: usize,
        /// The JSON type found instead.
        found: &'static str,
    },
    /// A JSON key has the wrong type.
    #[error("network selection element {element}: {key:?} must be {expected}, found {found}")]
    WrongType {
        /// The offending element.
        element: String,
        /// The key (or `key[index]`) whose value has the wrong type.
        key: String,
        /// What was expected.
        expected: &'static str,
        /// The JSON type found instead.
        found: &'static str,
    },
    /// An `ips` entry is neither an IP address nor a CIDR.
    #[error(
        "network selection element {element}: failed to parse IP address {ip:?} \
         (expected an IP address or a CIDR such as 10.1.1.21/24)"
    )]
    InvalidIp {
        /// The offending element.
        element: String,
        /// The rejected entry.
        ip: String,
    },
    /// `mac` is not a hardware address.
    #[error(
        "network selection element {element}: invalid MAC address {mac:?} \
         (expected e.g. c2:11:22:33:44:66)"
    )]
    InvalidMac {
        /// The offending element.
        element: String,
        /// The rejected value.
        mac: String,
    },
    /// `infiniband-guid` is not a hardware address.
    #[error("network selection element {element}: invalid InfiniBand GUID {guid:?}")]
    InvalidInfinibandGuid {
        /// The offending element.
        element: String,
        /// The rejected value.
        guid: String,
    },
    /// A `portMappings` entry is invalid.
    #[error("network selection element {element}: portMappings[{index}]: {reason}")]
    InvalidPortMapping {
        /// The offending element.
        element: String,
        /// 0-based index in `portMappings`.
        index: usize,
        /// What is wrong with the entry.
        reason: String,
    },
    /// A `bandwidth` value is invalid.
    #[error(
        "network selection element {element}: bandwidth {key:?} must be a non-negative integer, \
         found {found}"
    )]
    InvalidBandwidth {
        /// The offending element.
        element: String,
        /// The offending key.
        key: String,
        /// The value found, as JSON text.
        found: String,
    },
    /// A `default-route` entry is not an IP address.
    #[error("network selection element {element}: invalid default-route entry {entry:?}")]
    InvalidDefaultRoute {
        /// The offending element.
        element: String,
        /// The rejected entry.
        entry: String,
    },
    /// The default-network annotation names more than one network.
    #[error("more than one default network is specified: {value}")]
    MoreThanOneDefaultNetwork {
        /// The whole annotation value.
        value: String,
    },
    /// The default-network annotation is empty.
    #[error("the default network annotation is empty")]
    EmptyDefaultNetwork,
}

/// Parse the annotation value.
///
/// An empty or whitespace-only value yields `Ok(vec![])`. The value is the JSON form if
/// it contains `[`, `{` or `"` (it must then be a JSON array of objects), else the text
/// form. Elements without a namespace get `default_namespace`. Duplicates are kept:
/// attaching the same network twice is allowed.
pub fn parse_networks_annotation(
    value: &str,
    default_namespace: &str,
) -> Result<Vec<NetworkSelectionElement>, AnnotationError> {
    if value.trim().is_empty() {
        Ok(Vec::new())
    } else if value.contains(['[', '{', '"']) {
        parse_json_form(value, default_namespace)
    } else {
        parse_text_form(value, default_namespace)
    }
}

/// Parse the `v1.multus-cni.io/default-network` annotation: the same grammar as
/// [`parse_networks_annotation`] with `multus_namespace` as the default namespace, and
/// exactly one element.
pub fn parse_default_network_annotation(
    value: &str,
    multus_namespace: &str,
) -> Result<NetworkSelectionElement, AnnotationError> {
    let mut elements = parse_networks_annotation(value, multus_namespace)?;
    match elements.len() {
        0 => Err(AnnotationError::EmptyDefaultNetwork),
        1 => elements.pop().ok_or(AnnotationError::EmptyDefaultNetwork),
        _ => Err(AnnotationError::MoreThanOneDefaultNetwork {
            value: value.to_owned(),
        }),
    }
}

/// Validate an interface name as the kernel requires: 1 to 15 bytes, not `.` or `..`,
/// no `/`, `:`, whitespace or control characters.
pub fn validate_ifname(name: &str) -> Result<(), AnnotationError> {
    match ifname_problem(name) {
        None => Ok(()),
        Some(reason) => Err(AnnotationError::InvalidInterfaceName {
            ifname: name.to_owned(),
            reason,
        }),
    }
}

/// What is wrong with an interface name, if anything.
fn ifname_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > MAX_IFNAME_LEN {
        Some("must be at most 15 bytes long")
    } else if name == "." || name == ".." {
        Some("must not be \".\" or \"..\"")
    } else if name == "lo" {
        // Every pod has it: no plugin can create it, and DEL would try to remove it.
        Some("must not be \"lo\" (the pod's loopback interface)")
    } else if name.contains('/') {
        Some("must not contain '/'")
    } else if name.contains(':') {
        Some("must not contain ':'")
    } else if name.chars().any(char::is_whitespace) {
        Some("must not contain whitespace")
    } else if name.bytes().any(|b| b == 0xa0) {
        Some("must not contain the byte 0xa0 (the kernel treats it as whitespace)")
    } else if name.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    }
}

/// Why `s` is not a DNS-1123 label of at most `max_len` bytes, if it is not one.
pub(crate) fn dns1123_label_problem(s: &str, max_len: usize) -> Option<&'static str> {
    if s.is_empty() {
        Some("must not be empty")
    } else if s.len() > max_len {
        if max_len == MAX_LABEL_LEN {
            Some("must be at most 63 characters long")
        } else {
            Some("must be at most 253 characters long")
        }
    } else if !is_label_shape(s) {
        Some(
            "must consist of lower case alphanumeric characters or '-', \
             and must start and end with an alphanumeric character",
        )
    } else {
        None
    }
}

/// Why `s` is not a DNS-1123 subdomain (a Kubernetes object name), if it is not one.
pub(crate) fn dns1123_subdomain_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        Some("must not be empty")
    } else if s.len() > MAX_SUBDOMAIN_LEN {
        Some("must be at most 253 characters long")
    } else if !s.split('.').all(is_label_shape) {
        Some(
            "must consist of lower case alphanumeric characters, '-' or '.', \
             and each '.'-separated part must start and end with an alphanumeric character",
        )
    } else {
        None
    }
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, without a length limit.
fn is_label_shape(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            alnum(first) && alnum(last) && bytes.iter().all(|&b| alnum(b) || b == b'-')
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// Text form
// ---------------------------------------------------------------------------------------

/// Parse the comma-separated text form.
fn parse_text_form(
    value: &str,
    default_namespace: &str,
) -> Result<Vec<NetworkSelectionElement>, AnnotationError> {
    value
        .split(',')
        .map(|item| parse_text_item(value, item.trim(), default_namespace))
        .collect()
}

/// Parse one trimmed text item `[<namespace>/]<name>[@<ifname>]`.
fn parse_text_item(
    value: &str,
    item: &str,
    default_namespace: &str,
) -> Result<NetworkSelectionElement, AnnotationError> {
    if item.is_empty() {
        return Err(AnnotationError::EmptyItem {
            value: value.to_owned(),
        });
    }
    let (namespace, rest) = split_namespace(item)?;
    let (name, ifname) = split_ifname(item, rest)?;
    let element = format!("{item:?}");
    check_text_name(&element, name)?;
    let namespace = resolve_namespace(&element, namespace, default_namespace)?;
    let interface = match ifname {
        Some(ifname) if !ifname.is_empty() => {
            validate_ifname(ifname)?;
            Some(ifname.to_owned())
        }
        _ => None,
    };
    Ok(NetworkSelectionElement {
        name: name.to_owned(),
        namespace,
        interface,
        ..NetworkSelectionElement::default()
    })
}

/// Split `ns/rest` into the trimmed namespace (empty when absent) and the rest.
fn split_namespace(item: &str) -> Result<(&str, &str), AnnotationError> {
    match item.split_once('/') {
        None => Ok(("", item)),
        Some((_, rest)) if rest.contains('/') => Err(AnnotationError::TooManySlashes {
            item: item.to_owned(),
        }),
        Some((namespace, rest)) => Ok((namespace.trim(), rest)),
    }
}

/// Split `name@ifname` into the trimmed name and the trimmed ifname, if any.
fn split_ifname<'a>(
    item: &str,
    rest: &'a str,
) -> Result<(&'a str, Option<&'a str>), AnnotationError> {
    match rest.split_once('@') {
        None => Ok((rest.trim(), None)),
        Some((_, ifname)) if ifname.contains('@') => Err(AnnotationError::TooManyAts {
            item: item.to_owned(),
        }),
        Some((name, ifname)) => Ok((name.trim(), Some(ifname.trim()))),
    }
}

/// Check a text-form network name: a DNS-1123 label of at most 253 characters.
fn check_text_name(element: &str, name: &str) -> Result<(), AnnotationError> {
    if name.is_empty() {
        return Err(AnnotationError::MissingName {
            element: element.to_owned(),
        });
    }
    match dns1123_label_problem(name, MAX_SUBDOMAIN_LEN) {
        None => Ok(()),
        Some(reason) => Err(AnnotationError::InvalidName {
            element: element.to_owned(),
            name: name.to_owned(),
            reason,
        }),
    }
}

/// Validate a given namespace, or return the default when none was given.
fn resolve_namespace(
    element: &str,
    namespace: &str,
    default_namespace: &str,
) -> Result<String, AnnotationError> {
    if namespace.is_empty() {
        return Ok(default_namespace.to_owned());
    }
    match dns1123_label_problem(namespace, MAX_LABEL_LEN) {
        None => Ok(namespace.to_owned()),
        Some(reason) => Err(AnnotationError::InvalidNamespace {
            element: element.to_owned(),
            namespace: namespace.to_owned(),
            reason,
        }),
    }
}

// ---------------------------------------------------------------------------------------
// JSON form
// ---------------------------------------------------------------------------------------

/// Parse the JSON form: an array of objects.
fn parse_json_form(
    value: &str,
    default_namespace: &str,
) -> Result<Vec<NetworkSelectionElement>, AnnotationError> {
    let parsed: Value = serde_json::from_str(value).map_err(|e| AnnotationError::InvalidJson {
        message: e.to_string(),
    })?;
    let Value::Array(items) = parsed else {
        return Err(AnnotationError::NotAnArray {
            found: json_type(&parsed),
        });
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| parse_json_element(index, item, default_namespace))
        .collect()
}

/// Parse and validate one JSON network selection element.
fn parse_json_element(
    index: usize,
    item: &Value,
    default_namespace: &str,
) -> Result<NetworkSelectionElement, AnnotationError> {
    let Value::Object(obj) = item else {
        return Err(AnnotationError::ElementNotAnObject {
            index,
            found: json_type(item),
        });
    };
    log_unknown_keys(index, obj);
    // Read the name first, so that every later error can name the element.
    let fields = Fields {
        obj,
        element: format!("#{index}"),
    };
    let name = fields.string("name")?.unwrap_or_default();
    let fields = Fields {
        obj,
        element: format!("#{index} ({name:?})"),
    };
    check_json_name(&fields.element, &name)?;
    let namespace = fields.string("namespace")?.unwrap_or_default();
    Ok(NetworkSelectionElement {
        namespace: resolve_namespace(&fields.element, &namespace, default_namespace)?,
        interface: fields.interface()?,
        ips: fields.ips()?,
        mac: fields.hardware_address("mac")?,
        infiniband_guid: fields.hardware_address("infiniband-guid")?,
        device_id: fields.string("deviceID")?,
        port_mappings: fields.port_mappings()?,
        bandwidth: fields.bandwidth()?,
        cni_args: fields.object("cni-args")?.cloned(),
        default_route: fields.default_route()?,
        name,
    })
}

/// Log, at debug level, the keys of an element that this parser ignores.
fn log_unknown_keys(index: usize, obj: &Map<String, Value>) {
    for key in obj.keys() {
        if !KNOWN_KEYS
            .iter()
            .any(|known| known.eq_ignore_ascii_case(key))
        {
            tracing::debug!(
                element = index,
                key = key.as_str(),
                "ignoring unknown key in network selection element"
            );
        }
    }
}

/// Check a JSON-form network name: required, a DNS-1123 subdomain.
fn check_json_name(element: &str, name: &str) -> Result<(), AnnotationError> {
    if name.is_empty() {
        return Err(AnnotationError::MissingName {
            element: element.to_owned(),
        });
    }
    match dns1123_subdomain_problem(name) {
        None => Ok(()),
        Some(reason) => Err(AnnotationError::InvalidName {
            element: element.to_owned(),
            name: name.to_owned(),
            reason,
        }),
    }
}

/// Typed, validated access to the keys of one JSON element.
struct Fields<'a> {
    /// The element's object.
    obj: &'a Map<String, Value>,
    /// Description of the element for error messages.
    element: String,
}

impl<'a> Fields<'a> {
    /// The value of `key`, matched ASCII-case-insensitively like Go's `encoding/json`;
    /// the last match wins and `null` counts as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        lookup(self.obj, key)
    }

    /// A wrong-type error for `key`.
    fn wrong_type(&self, key: &str, expected: &'static str, found: &Value) -> AnnotationError {
        AnnotationError::WrongType {
            element: self.element.clone(),
            key: key.to_owned(),
            expected,
            found: json_type(found),
        }
    }

    /// A string key; an empty string counts as absent.
    fn string(&self, key: &str) -> Result<Option<String>, AnnotationError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.wrong_type(key, "a string", other)),
        }
    }

    /// An array key.
    fn array(&self, key: &str) -> Result<Option<&'a Vec<Value>>, AnnotationError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(other) => Err(self.wrong_type(key, "an array", other)),
        }
    }

    /// An object key.
    fn object(&self, key: &str) -> Result<Option<&'a Map<String, Value>>, AnnotationError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(other) => Err(self.wrong_type(key, "an object", other)),
        }
    }

    /// An array of strings.
    fn strings(&self, key: &str) -> Result<Option<Vec<&'a str>>, AnnotationError> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str()
                    .ok_or_else(|| self.wrong_type(&format!("{key}[{i}]"), "a string", item))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// `interface`, or the legacy `interfaceRequest` when `interface` is empty; validated.
    fn interface(&self) -> Result<Option<String>, AnnotationError> {
        let interface = match self.string("interface")? {
            Some(interface) => Some(interface),
            None => self.string("interfaceRequest")?,
        };
        if let Some(ifname) = &interface {
            validate_ifname(ifname)?;
        }
        Ok(interface)
    }

    /// `ips`: each an IP address or a CIDR.
    fn ips(&self) -> Result<Vec<String>, AnnotationError> {
        let ips = self.strings("ips")?.unwrap_or_default();
        for ip in &ips {
            if !is_ip_or_cidr(ip) {
                return Err(AnnotationError::InvalidIp {
                    element: self.element.clone(),
                    ip: (*ip).to_owned(),
                });
            }
        }
        Ok(ips.into_iter().map(str::to_owned).collect())
    }

    /// `mac` or `infiniband-guid`: a hardware address in one of Go's `ParseMAC` forms.
    fn hardware_address(&self, key: &str) -> Result<Option<String>, AnnotationError> {
        let Some(address) = self.string(key)? else {
            return Ok(None);
        };
        if is_hardware_address(&address) {
            return Ok(Some(address));
        }
        let element = self.element.clone();
        Err(if key == "mac" {
            AnnotationError::InvalidMac {
                element,
                mac: address,
            }
        } else {
            AnnotationError::InvalidInfinibandGuid {
                element,
                guid: address,
            }
        })
    }

    /// `portMappings`: an array of valid port-mapping objects, kept as given.
    fn port_mappings(&self) -> Result<Option<Value>, AnnotationError> {
        let Some(items) = self.array("portMappings")? else {
            return Ok(None);
        };
        for (index, item) in items.iter().enumerate() {
            check_port_mapping(item).map_err(|reason| AnnotationError::InvalidPortMapping {
                element: self.element.clone(),
                index,
                reason,
            })?;
        }
        Ok(Some(Value::Array(items.clone())))
    }

    /// `bandwidth`: an object whose known keys are non-negative integers, kept as given.
    fn bandwidth(&self) -> Result<Option<Value>, AnnotationError> {
        let Some(map) = self.object("bandwidth")? else {
            return Ok(None);
        };
        for key in BANDWIDTH_KEYS {
            if let Some(value) = lookup(map, key)
                && !is_non_negative_i64(value)
            {
                return Err(AnnotationError::InvalidBandwidth {
                    element: self.element.clone(),
                    key: (*key).to_owned(),
                    found: value.to_string(),
                });
            }
        }
        Ok(Some(Value::Object(map.clone())))
    }

    /// `default-route`: an array of IP addresses (an empty array is kept).
    fn default_route(&self) -> Result<Option<Vec<IpAddr>>, AnnotationError> {
        let Some(entries) = self.strings("default-route")? else {
            return Ok(None);
        };
        entries
            .into_iter()
            .map(|entry| {
                entry
                    .parse::<IpAddr>()
                    .map_err(|_| AnnotationError::InvalidDefaultRoute {
                        element: self.element.clone(),
                        entry: entry.to_owned(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// The value of `key` in `obj`, matched ASCII-case-insensitively; the last non-null match.
fn lookup<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.iter()
        .rev()
        .find(|(k, v)| k.eq_ignore_ascii_case(key) && !v.is_null())
        .map(|(_, v)| v)
}

/// Check one `portMappings` entry; the error is a human-readable reason.
fn check_port_mapping(item: &Value) -> Result<(), String> {
    let Value::Object(map) = item else {
        return Err(format!("must be an object, found {}", json_type(item)));
    };
    for key in ["hostPort", "containerPort"] {
        match lookup(map, key) {
            None => return Err(format!("{key:?} is required")),
            Some(port) if !is_port(port) => {
                return Err(format!("{key:?} must be an integer 1-65535, found {port}"));
            }
            Some(_) => {}
        }
    }
    check_optional_str(map, "protocol", |p| {
        ["tcp", "udp", "sctp"]
            .iter()
            .any(|known| known.eq_ignore_ascii_case(p))
    })?;
    check_optional_str(map, "hostIP", |ip| ip.parse::<IpAddr>().is_ok())
}

/// Check an optional string key of a port mapping; the empty string counts as absent.
fn check_optional_str(
    map: &Map<String, Value>,
    key: &str,
    is_valid: impl Fn(&str) -> bool,
) -> Result<(), String> {
    match lookup(map, key) {
        None => Ok(()),
        Some(Value::String(s)) if s.is_empty() || is_valid(s) => Ok(()),
        Some(other) => Err(format!("invalid {key:?}: {other}")),
    }
}

/// A JSON integer in 1..=65535.
fn is_port(value: &Value) -> bool {
    value.as_u64().is_some_and(|p| (1..=65535).contains(&p))
}

/// A JSON integer in 0..=i64::MAX (Go's `int`).
fn is_non_negative_i64(value: &Value) -> bool {
    value.as_i64().is_some_and(|n| n >= 0)
}

/// An IP address, or a CIDR `addr/prefix` with prefix <= 32 (IPv4) or <= 128 (IPv6).
fn is_ip_or_cidr(s: &str) -> bool {
    match s.split_once('/') {
        None => s.parse::<IpAddr>().is_ok(),
        Some((addr, prefix)) => is_cidr(addr, prefix),
    }
}

/// The two halves of a CIDR are valid (Go `net.ParseCIDR` rules).
fn is_cidr(addr: &str, prefix: &str) -> bool {
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    !prefix.is_empty()
        && prefix.bytes().all(|b| b.is_ascii_digit())
        && prefix.parse::<u32>().is_ok_and(|p| p <= max)
}

/// A hardware address in one of the forms Go's `net.ParseMAC` accepts: 6, 8 or 20 bytes
/// as `xx:xx:..` or `xx-xx-..`, or as dotted groups of four hex digits `xxxx.xxxx.xxxx`.
fn is_hardware_address(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.len() < 14 {
        return false;
    }
    match (bytes.get(2), bytes.get(4)) {
        (Some(b':'), _) => hex_groups(s, ':', 2, &[6, 8, 20]),
        (Some(b'-'), _) => hex_groups(s, '-', 2, &[6, 8, 20]),
        (_, Some(b'.')) => hex_groups(s, '.', 4, &[3, 4, 10]),
        _ => false,
    }
}

/// `s` is `sep`-separated groups of exactly `width` hex digits, and the number of groups
/// is one of `counts`.
fn hex_groups(s: &str, sep: char, width: usize, counts: &[usize]) -> bool {
    let mut groups = 0;
    for group in s.split(sep) {
        if group.len() != width || !group.bytes().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
        groups += 1;
    }
    counts.contains(&groups)
}

/// The JSON type of `value`, with an article, for error messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    type AE = AnnotationError;

    fn el(ns: &str, name: &str, interface: Option<&str>) -> NetworkSelectionElement {
        NetworkSelectionElement {
            name: name.into(),
            namespace: ns.into(),
            interface: interface.map(Into::into),
            ..Default::default()
        }
    }

    fn parse(value: &str) -> Result<Vec<NetworkSelectionElement>, AnnotationError> {
        parse_networks_annotation(value, "podns")
    }

    fn err(value: &str) -> AnnotationError {
        parse(value).expect_err(value)
    }

    // ----- empty values ---------------------------------------------------------------

    #[test]
    fn empty_and_whitespace_values_yield_no_networks() {
        for value in ["", " ", "\t\n  "] {
            assert_eq!(parse(value).unwrap(), vec![], "{value:?}");
        }
    }

    // ----- text form ------------------------------------------------------------------

    #[test]
    fn text_form_table() {
        let cases: &[(&str, Vec<NetworkSelectionElement>)] = &[
            ("net1", vec![el("podns", "net1", None)]),
            (
                "macvlan-conf-1, testns1/macvlan-conf-3@macvlan1",
                vec![
                    el("podns", "macvlan-conf-1", None),
                    el("testns1", "macvlan-conf-3", Some("macvlan1")),
                ],
            ),
            (
                "net1@my_interface",
                vec![el("podns", "net1", Some("my_interface"))],
            ),
            (" ns / net1 @ eth1 ", vec![el("ns", "net1", Some("eth1"))]),
            // Empty namespace / ifname mean "not given", as upstream.
            ("/net1", vec![el("podns", "net1", None)]),
            ("net1@", vec![el("podns", "net1", None)]),
            // The same network twice is allowed.
            (
                "net1,net1",
                vec![el("podns", "net1", None), el("podns", "net1", None)],
            ),
            ("0", vec![el("podns", "0", None)]),
            ("a-b-c9", vec![el("podns", "a-b-c9", None)]),
            (
                "ns/net@123456789012345",
                vec![el("ns", "net", Some("123456789012345"))],
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(&parse(value).unwrap(), expected, "{value:?}");
        }
    }

    #[test]
    fn text_form_errors_table() {
        let long_name = "a".repeat(254);
        let long_ns = format!("{}/net", "n".repeat(64));
        let cases: Vec<(&str, AnnotationError)> = vec![
            (
                "a/b/c",
                AE::TooManySlashes {
                    item: "a/b/c".into(),
                },
            ),
            (
                "b@c@d",
                AE::TooManyAts {
                    item: "b@c@d".into(),
                },
            ),
            (
                "ok, x/y@z@w",
                AE::TooManyAts {
                    item: "x/y@z@w".into(),
                },
            ),
            (
                "net1,,net2",
                AE::EmptyItem {
                    value: "net1,,net2".into(),
                },
            ),
            (
                "net1,",
                AE::EmptyItem {
                    value: "net1,".into(),
                },
            ),
            (
                "ns/",
                AE::MissingName {
                    element: "\"ns/\"".into(),
                },
            ),
            (
                "@eth1",
                AE::MissingName {
                    element: "\"@eth1\"".into(),
                },
            ),
            (
                "Net1",
                AE::InvalidName {
                    element: "\"Net1\"".into(),
                    name: "Net1".into(),
                    reason: dns1123_label_problem("Net1", 253).unwrap(),
                },
            ),
            (
                "-net",
                AE::InvalidName {
                    element: "\"-net\"".into(),
                    name: "-net".into(),
                    reason: dns1123_label_problem("-net", 253).unwrap(),
                },
            ),
            (
                "net.v1",
                AE::InvalidName {
                    element: "\"net.v1\"".into(),
                    name: "net.v1".into(),
                    reason: dns1123_label_problem("net.v1", 253).unwrap(),
                },
            ),
            (
                &long_name,
                AE::InvalidName {
                    element: format!("{long_name:?}"),
                    name: long_name.clone(),
                    reason: "must be at most 253 characters long",
                },
            ),
            (
                "my_ns/net",
                AE::InvalidNamespace {
                    element: "\"my_ns/net\"".into(),
                    namespace: "my_ns".into(),
                    reason: dns1123_label_problem("my_ns", 63).unwrap(),
                },
            ),
            (
                &long_ns,
                AE::InvalidNamespace {
                    element: format!("{long_ns:?}"),
                    namespace: "n".repeat(64),
                    reason: "must be at most 63 characters long",
                },
            ),
            (
                "net@1234567890123456",
                AE::InvalidInterfaceName {
                    ifname: "1234567890123456".into(),
                    reason: "must be at most 15 bytes long",
                },
            ),
            (
                "net@my if",
                AE::InvalidInterfaceName {
                    ifname: "my if".into(),
                    reason: "must not contain whitespace",
                },
            ),
            (
                "net@eth:0",
                AE::InvalidInterfaceName {
                    ifname: "eth:0".into(),
                    reason: "must not contain ':'",
                },
            ),
            (
                "net@..",
                AE::InvalidInterfaceName {
                    ifname: "..".into(),
                    reason: "must not be \".\" or \"..\"",
                },
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(err(value), expected, "{value:?}");
        }
    }

    #[test]
    fn text_form_slash_in_ifname_fails_at_slash() {
        // Like upstream, '/' is split first: "net@eth/0" has one '/', so "net@eth" is the
        // namespace, which is invalid.
        assert!(matches!(err("net@eth/0"), AE::InvalidNamespace { .. }));
        assert!(matches!(err("ns/net@eth/0"), AE::TooManySlashes { .. }));
    }

    #[test]
    fn error_messages_quote_the_offending_item() {
        let cases = [
            ("a/b/c", "\"a/b/c\" (failed at '/')"),
            ("b@c@d", "(failed at '@')"),
            ("Net1", "invalid network name \"Net1\""),
            ("net@1234567890123456", "\"1234567890123456\""),
            ("[{\"name\":\"n\",\"ips\":[\"10.1.1\"]}]", "\"10.1.1\""),
            ("{\"name\":\"n\"}", "must be a JSON array"),
            ("[{\"name\":\"n\",\"default-route\":[\"x\"]}]", "\"x\""),
        ];
        for (value, needle) in cases {
            let message = err(value).to_string();
            assert!(message.contains(needle), "{value:?}: {message}");
        }
    }

    // ----- validate_ifname ------------------------------------------------------------

    #[test]
    fn validate_ifname_table() {
        let ok = [
            "e",
            "eth0",
            "my_interface",
            "net1.100",
            "123456789012345",
            "ä-1",
        ];
        for name in ok {
            assert_eq!(validate_ifname(name), Ok(()), "{name:?}");
        }
        let bad = [
            ("", "must not be empty"),
            ("1234567890123456", "must be at most 15 bytes long"),
            ("ääääääää", "must be at most 15 bytes long"),
            (".", "must not be \".\" or \"..\""),
            ("..", "must not be \".\" or \"..\""),
            ("lo", "must not be \"lo\" (the pod's loopback interface)"),
            ("eth/0", "must not contain '/'"),
            ("eth:0", "must not contain ':'"),
            ("eth 0", "must not contain whitespace"),
            ("eth\t0", "must not contain whitespace"),
            ("eth\u{b}0", "must not contain whitespace"),
            ("eth\u{a0}", "must not contain whitespace"),
            (
                "à",
                "must not contain the byte 0xa0 (the kernel treats it as whitespace)",
            ),
            ("eth\u{0}", "must not contain control characters"),
            ("eth\u{7f}", "must not contain control characters"),
        ];
        for (name, reason) in bad {
            assert_eq!(
                validate_ifname(name),
                Err(AE::InvalidInterfaceName {
                    ifname: name.into(),
                    reason
                }),
                "{name:?}"
            );
        }
    }

    // ----- JSON form ------------------------------------------------------------------

    const UPSTREAM_JSON: &str = r#"[{"name":"macvlan-conf","namespace":"default","interface":"macvlan1","ips":["10.1.1.21/24"],"mac":"c2:11:22:33:44:66","default-route":["10.1.1.254"],"cni-args":{"foo":"bar"}}]"#;

    #[test]
    fn json_upstream_example() {
        let parsed = parse(UPSTREAM_JSON).unwrap();
        let mut cni_args = Map::new();
        cni_args.insert("foo".into(), json!("bar"));
        assert_eq!(
            parsed,
            vec![NetworkSelectionElement {
                name: "macvlan-conf".into(),
                namespace: "default".into(),
                interface: Some("macvlan1".into()),
                ips: vec!["10.1.1.21/24".into()],
                mac: Some("c2:11:22:33:44:66".into()),
                default_route: Some(vec!["10.1.1.254".parse().unwrap()]),
                cni_args: Some(cni_args),
                ..Default::default()
            }]
        );
    }

    #[test]
    fn json_form_table() {
        let cases: Vec<(&str, NetworkSelectionElement)> = vec![
            (r#"[{"name":"n"}]"#, el("podns", "n", None)),
            (r#"[{"name":"n","namespace":""}]"#, el("podns", "n", None)),
            (r#"[{"name":"n","namespace":null}]"#, el("podns", "n", None)),
            (r#"[{"name":"a.b-c"}]"#, el("podns", "a.b-c", None)),
            // Legacy interfaceRequest, used only when interface is empty.
            (
                r#"[{"name":"n","interfaceRequest":"eth9"}]"#,
                el("podns", "n", Some("eth9")),
            ),
            (
                r#"[{"name":"n","interface":"","interfaceRequest":"eth9"}]"#,
                el("podns", "n", Some("eth9")),
            ),
            (
                r#"[{"name":"n","interface":"eth1","interfaceRequest":"eth9"}]"#,
                el("podns", "n", Some("eth1")),
            ),
            // Go's encoding/json matches keys case-insensitively.
            (
                r#"[{"Name":"n","NAMESPACE":"x","Interface":"e1"}]"#,
                el("x", "n", Some("e1")),
            ),
            // Unknown keys are ignored.
            (
                r#"[{"name":"n","ipam-claim-reference":"c","whatever":[1]}]"#,
                el("podns", "n", None),
            ),
            (
                r#"[{"name":"n","deviceID":"0000:00:1f.6"}]"#,
                NetworkSelectionElement {
                    device_id: Some("0000:00:1f.6".into()),
                    ..el("podns", "n", None)
                },
            ),
            (
                r#"[{"name":"n","default-route":[]}]"#,
                NetworkSelectionElement {
                    default_route: Some(vec![]),
                    ..el("podns", "n", None)
                },
            ),
            (
                r#"[{"name":"n","default-route":["10.0.0.1","fd00::1"]}]"#,
                NetworkSelectionElement {
                    default_route: Some(vec![
                        "10.0.0.1".parse().unwrap(),
                        "fd00::1".parse().unwrap(),
                    ]),
                    ..el("podns", "n", None)
                },
            ),
            (
                r#"[{"name":"n","ips":["10.0.0.1","fd00::1/64","::ffff:1.2.3.4/120","1.2.3.4/0"]}]"#,
                NetworkSelectionElement {
                    ips: vec![
                        "10.0.0.1".into(),
                        "fd00::1/64".into(),
                        "::ffff:1.2.3.4/120".into(),
                        "1.2.3.4/0".into(),
                    ],
                    ..el("podns", "n", None)
                },
            ),
            (
                r#"[{"name":"n","infiniband-guid":"00:11:22:33:44:55:66:77"}]"#,
                NetworkSelectionElement {
                    infiniband_guid: Some("00:11:22:33:44:55:66:77".into()),
                    ..el("podns", "n", None)
                },
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(parse(value).unwrap(), vec![expected], "{value}");
        }
    }

    #[test]
    fn json_port_mappings_and_bandwidth_kept_as_given() {
        let value = r#"[{"name":"n",
            "portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"TCP","hostIP":"0.0.0.0"},
                            {"containerPort":53,"hostPort":53,"protocol":"udp","extra":true}],
            "bandwidth":{"ingressRate":1000,"ingressBurst":0,"egressRate":2000,"egressBurst":10,"x":"y"}}]"#;
        let parsed = parse(value).unwrap();
        let element = &parsed[0];
        assert_eq!(
            element.port_mappings,
            Some(json!([
                {"hostPort":8080,"containerPort":80,"protocol":"TCP","hostIP":"0.0.0.0"},
                {"containerPort":53,"hostPort":53,"protocol":"udp","extra":true}
            ]))
        );
        assert_eq!(
            serde_json::to_string(element.bandwidth.as_ref().unwrap()).unwrap(),
            r#"{"ingressRate":1000,"ingressBurst":0,"egressRate":2000,"egressBurst":10,"x":"y"}"#
        );
    }

    #[test]
    fn json_errors_table() {
        let e0 = "#0 (\"n\")".to_string();
        let cases: Vec<(&str, AnnotationError)> = vec![
            (r#"{"name":"n"}"#, AE::NotAnArray { found: "an object" }),
            (r#""n""#, AE::NotAnArray { found: "a string" }),
            (
                r#"["n"]"#,
                AE::ElementNotAnObject {
                    index: 0,
                    found: "a string",
                },
            ),
            (
                r#"[{"name":"n"}, 3]"#,
                AE::ElementNotAnObject {
                    index: 1,
                    found: "a number",
                },
            ),
            (
                r#"[{}]"#,
                AE::MissingName {
                    element: "#0 (\"\")".into(),
                },
            ),
            (
                r#"[{"name":""}]"#,
                AE::MissingName {
                    element: "#0 (\"\")".into(),
                },
            ),
            (
                r#"[{"name":5}]"#,
                AE::WrongType {
                    element: "#0".into(),
                    key: "name".into(),
                    expected: "a string",
                    found: "a number",
                },
            ),
            (
                r#"[{"name":"N"}]"#,
                AE::InvalidName {
                    element: "#0 (\"N\")".into(),
                    name: "N".into(),
                    reason: dns1123_subdomain_problem("N").unwrap(),
                },
            ),
            (
                r#"[{"name":"n","namespace":"a.b"}]"#,
                AE::InvalidNamespace {
                    element: e0.clone(),
                    namespace: "a.b".into(),
                    reason: dns1123_label_problem("a.b", 63).unwrap(),
                },
            ),
            // Upstream does not validate the JSON interface [bug]; we do.
            (
                r#"[{"name":"n","interface":"0123456789abcdef"}]"#,
                AE::InvalidInterfaceName {
                    ifname: "0123456789abcdef".into(),
                    reason: "must be at most 15 bytes long",
                },
            ),
            (
                r#"[{"name":"n","interface":"a/b"}]"#,
                AE::InvalidInterfaceName {
                    ifname: "a/b".into(),
                    reason: "must not contain '/'",
                },
            ),
            (
                r#"[{"name":"n","interfaceRequest":"a b"}]"#,
                AE::InvalidInterfaceName {
                    ifname: "a b".into(),
                    reason: "must not contain whitespace",
                },
            ),
            (
                r#"[{"name":"n","interface":7}]"#,
                AE::WrongType {
                    element: e0.clone(),
                    key: "interface".into(),
                    expected: "a string",
                    found: "a number",
                },
            ),
            (
                r#"[{"name":"n","ips":"10.0.0.1"}]"#,
                AE::WrongType {
                    element: e0.clone(),
                    key: "ips".into(),
                    expected: "an array",
                    found: "a string",
                },
            ),
            (
                r#"[{"name":"n","ips":["10.0.0.1",1]}]"#,
                AE::WrongType {
                    element: e0.clone(),
                    key: "ips[1]".into(),
                    expected: "a string",
                    found: "a number",
                },
            ),
            (
                r#"[{"name":"n","mac":"c2:11:22:33:44"}]"#,
                AE::InvalidMac {
                    element: e0.clone(),
                    mac: "c2:11:22:33:44".into(),
                },
            ),
            (
                r#"[{"name":"n","infiniband-guid":"zz:11:22:33:44:55:66:77"}]"#,
                AE::InvalidInfinibandGuid {
                    element: e0.clone(),
                    guid: "zz:11:22:33:44:55:66:77".into(),
                },
            ),
            (
                r#"[{"name":"n","cni-args":["a"]}]"#,
                AE::WrongType {
                    element: e0.clone(),
                    key: "cni-args".into(),
                    expected: "an object",
                    found: "an array",
                },
            ),
            (
                r#"[{"name":"n","deviceID":{}}]"#,
                AE::WrongType {
                    element: e0.clone(),
                    key: "deviceID".into(),
                    expected: "a string",
                    found: "an object",
                },
            ),
            (
                r#"[{"name":"n","default-route":["10.1.1.254","gw"]}]"#,
                AE::InvalidDefaultRoute {
                    element: e0.clone(),
                    entry: "gw".into(),
                },
            ),
            (
                r#"[{"name":"n","default-route":"10.1.1.254"}]"#,
                AE::WrongType {
                    element: e0.clone(),
                    key: "default-route".into(),
                    expected: "an array",
                    found: "a string",
                },
            ),
            (
                r#"[{"name":"n","portMappings":{}}]"#,
                AE::WrongType {
                    element: e0.clone(),
                    key: "portMappings".into(),
                    expected: "an array",
                    found: "an object",
                },
            ),
            (
                r#"[{"name":"n","bandwidth":[]}]"#,
                AE::WrongType {
                    element: e0.clone(),
                    key: "bandwidth".into(),
                    expected: "an object",
                    found: "an array",
                },
            ),
            (
                r#"[{"name":"n","bandwidth":{"egressBurst":-1}}]"#,
                AE::InvalidBandwidth {
                    element: e0.clone(),
                    key: "egressBurst".into(),
                    found: "-1".into(),
                },
            ),
            (
                r#"[{"name":"n","bandwidth":{"ingressRate":"1M"}}]"#,
                AE::InvalidBandwidth {
                    element: e0.clone(),
                    key: "ingressRate".into(),
                    found: "\"1M\"".into(),
                },
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(err(value), expected, "{value}");
        }
    }

    #[test]
    fn json_invalid_ips_table() {
        for ip in [
            "10.1.1",
            "10.1.1.1/33",
            "fd00::/129",
            "10.0.0.1/",
            "10.0.0.1/+8",
            "01.2.3.4",
            "fe80::1%eth0",
            "10.0.0.1/8/8",
            "",
            "/24",
        ] {
            let value = json!([{"name": "n", "ips": [ip]}]).to_string();
            assert_eq!(
                err(&value),
                AE::InvalidIp {
                    element: "#0 (\"n\")".into(),
                    ip: ip.into()
                },
                "{ip:?}"
            );
        }
    }

    #[test]
    fn json_invalid_port_mappings_table() {
        let cases = [
            (json!(5), "must be an object, found a number"),
            (json!({"containerPort": 80}), "\"hostPort\" is required"),
            (json!({"hostPort": 80}), "\"containerPort\" is required"),
            (
                json!({"hostPort": 0, "containerPort": 80}),
                "\"hostPort\" must be an integer 1-65535, found 0",
            ),
            (
                json!({"hostPort": 80, "containerPort": 65536}),
                "\"containerPort\" must be an integer 1-65535, found 65536",
            ),
            (
                json!({"hostPort": "80", "containerPort": 80}),
                "\"hostPort\" must be an integer 1-65535, found \"80\"",
            ),
            (
                json!({"hostPort": 80.0, "containerPort": 80}),
                "\"hostPort\" must be an integer 1-65535, found 80.0",
            ),
            (
                json!({"hostPort": 80, "containerPort": 80, "protocol": "icmp"}),
                "invalid \"protocol\": \"icmp\"",
            ),
            (
                json!({"hostPort": 80, "containerPort": 80, "protocol": 6}),
                "invalid \"protocol\": 6",
            ),
            (
                json!({"hostPort": 80, "containerPort": 80, "hostIP": "localhost"}),
                "invalid \"hostIP\": \"localhost\"",
            ),
        ];
        for (mapping, reason) in cases {
            let value = json!([{"name": "n", "portMappings": [{"hostPort": 1, "containerPort": 1}, mapping]}])
                .to_string();
            assert_eq!(
                err(&value),
                AE::InvalidPortMapping {
                    element: "#0 (\"n\")".into(),
                    index: 1,
                    reason: reason.into()
                },
                "{value}"
            );
        }
    }

    #[test]
    fn valid_port_mapping_variants() {
        for mapping in [
            json!({"hostPort": 1, "containerPort": 65535}),
            json!({"hostPort": 80, "containerPort": 80, "protocol": "SCTP", "hostIP": "::1"}),
            json!({"hostPort": 80, "containerPort": 80, "protocol": "", "hostIP": ""}),
            json!({"HostPort": 80, "containerport": 80, "protocol": null}),
        ] {
            let value = json!([{"name": "n", "portMappings": [mapping]}]).to_string();
            assert!(parse(&value).is_ok(), "{value}");
        }
    }

    #[test]
    fn hardware_address_forms() {
        let ok = [
            "c2:11:22:33:44:66",
            "C2-11-22-33-44-66",
            "c211.2233.4466",
            "00:11:22:33:44:55:66:77",
            "0011.2233.4455.6677",
            "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01",
            "0000.0000.fe80.0000.0000.0000.0200.5e10.0000.0001",
        ];
        for mac in ok {
            assert!(is_hardware_address(mac), "{mac}");
        }
        let bad = [
            "",
            "c2:11:22:33:44",
            "c2:11:22:33:44:66:77",
            "c2:11-22:33:44:66",
            "c2:11:22:33:44:6g",
            "c2:11:22:33:44:666",
            "c211.2233.446",
            "c211.2233.4466.7788.99aa",
            "c2 11 22 33 44 66",
            "ç2:11:22:33:44:66",
        ];
        for mac in bad {
            assert!(!is_hardware_address(mac), "{mac}");
        }
    }

    #[test]
    fn dns1123_subdomain_rules() {
        for ok in ["a", "a.b", "a-1.b-2.c", &"a".repeat(253)] {
            assert_eq!(dns1123_subdomain_problem(ok), None, "{ok}");
        }
        for bad in ["", ".a", "a.", "a..b", "a.-b", "A", "a_b", &"a".repeat(254)] {
            assert!(dns1123_subdomain_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn invalid_json_is_reported() {
        assert!(matches!(err("[{\"name\":"), AE::InvalidJson { .. }));
        assert!(matches!(err("net1@\"x\""), AE::InvalidJson { .. }));
    }

    #[test]
    fn empty_json_array_is_no_networks() {
        assert_eq!(parse("[]").unwrap(), vec![]);
    }

    // ----- default network ------------------------------------------------------------

    #[test]
    fn default_network_annotation() {
        assert_eq!(
            parse_default_network_annotation("calico", "kube-system").unwrap(),
            el("kube-system", "calico", None)
        );
        assert_eq!(
            parse_default_network_annotation("ns/calico@eth7", "kube-system").unwrap(),
            el("ns", "calico", Some("eth7"))
        );
        assert_eq!(
            parse_default_network_annotation(r#"[{"name":"calico"}]"#, "kube-system").unwrap(),
            el("kube-system", "calico", None)
        );
        assert_eq!(
            parse_default_network_annotation("a,b", "kube-system"),
            Err(AE::MoreThanOneDefaultNetwork {
                value: "a,b".into()
            })
        );
        let message = parse_default_network_annotation("a,b", "x")
            .unwrap_err()
            .to_string();
        assert!(message.contains("more than one default network is specified"));
        assert_eq!(
            parse_default_network_annotation("  ", "kube-system"),
            Err(AE::EmptyDefaultNetwork)
        );
        assert_eq!(
            parse_default_network_annotation("[]", "kube-system"),
            Err(AE::EmptyDefaultNetwork)
        );
        assert!(parse_default_network_annotation("a/b/c", "x").is_err());
    }

    // ----- serialisation --------------------------------------------------------------

    #[test]
    fn complex_annotation_snapshot() {
        let value = r#"[
          {"name":"macvlan-conf","namespace":"default","interface":"macvlan1",
           "ips":["10.1.1.21/24","fd00::21/64"],"mac":"c2:11:22:33:44:66",
           "default-route":["10.1.1.254"],"cni-args":{"foo":"bar","n":1},
           "portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}],
           "bandwidth":{"ingressRate":1000,"egressRate":2000},
           "deviceID":"0000:03:00.1","unknown":"ignored"},
          {"name":"ib-net","interfaceRequest":"ib1","infiniband-guid":"00:11:22:33:44:55:66:77",
           "default-route":[]}
        ]"#;
        let parsed = parse(value).unwrap();
        insta::assert_json_snapshot!("complex_annotation", parsed);
    }

    #[test]
    fn serialized_elements_parse_back() {
        let parsed = parse(UPSTREAM_JSON).unwrap();
        let text = serde_json::to_string(&parsed).unwrap();
        assert_eq!(parse(&text).unwrap(), parsed);
        let back: Vec<NetworkSelectionElement> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, parsed);
    }

    // ----- properties -----------------------------------------------------------------

    fn label(max: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("[a-z0-9]([-a-z0-9]{{0,{}}}[a-z0-9])?", max - 2))
            .unwrap()
    }

    fn ifname() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9_.-]{1,15}".prop_filter("not . or ..", |s| s != "." && s != "..")
    }

    fn text_item() -> impl Strategy<Value = (Option<String>, String, Option<String>)> {
        (
            proptest::option::of(label(63)),
            label(100),
            proptest::option::of(ifname()),
        )
    }

    fn hardware_address() -> impl Strategy<Value = String> {
        proptest::collection::vec(any::<u8>(), 6).prop_map(|bytes| {
            bytes
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        })
    }

    fn json_element() -> impl Strategy<Value = NetworkSelectionElement> {
        (
            text_item(),
            proptest::collection::vec(any::<std::net::Ipv4Addr>(), 0..3),
            proptest::option::of(hardware_address()),
            proptest::option::of(proptest::collection::vec(any::<IpAddr>(), 0..3)),
            proptest::option::of("[a-z0-9:.]{1,12}"),
        )
            .prop_map(
                |((ns, name, interface), ips, mac, default_route, device_id)| {
                    NetworkSelectionElement {
                        namespace: ns.unwrap_or_else(|| "podns".into()),
                        name,
                        interface,
                        ips: ips.iter().map(|ip| format!("{ip}/24")).collect(),
                        mac,
                        default_route,
                        device_id,
                        ..Default::default()
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn text_form_round_trip(items in proptest::collection::vec(text_item(), 1..5)) {
            let text = items
                .iter()
                .map(|(ns, name, ifname)| {
                    let ns = ns.as_ref().map(|ns| format!("{ns}/")).unwrap_or_default();
                    let ifname = ifname.as_ref().map(|i| format!("@{i}")).unwrap_or_default();
                    format!("{ns}{name}{ifname}")
                })
                .collect::<Vec<_>>()
                .join(", ");
            let expected: Vec<_> = items
                .iter()
                .map(|(ns, name, ifname)| NetworkSelectionElement {
                    name: name.clone(),
                    namespace: ns.clone().unwrap_or_else(|| "podns".into()),
                    interface: ifname.clone(),
                    ..Default::default()
                })
                .collect();
            prop_assert_eq!(parse(&text).unwrap(), expected);
        }

        #[test]
        fn json_form_round_trip(elements in proptest::collection::vec(json_element(), 0..4)) {
            let text = serde_json::to_string(&elements).unwrap();
            prop_assert_eq!(parse(&text).unwrap(), elements);
        }

        #[test]
        fn networks_parser_never_panics(value in "\\PC*") {
            let _ = parse(&value);
            let _ = parse_default_network_annotation(&value, "ns");
        }

        #[test]
        fn networks_parser_never_panics_on_jsonish(
            value in r#"[\[\]{}",:/@a-zA-Z0-9 .\-_]{0,64}"#
        ) {
            let _ = parse(&value);
            let _ = parse_default_network_annotation(&value, "ns");
        }

        #[test]
        fn networks_parser_never_panics_on_json_elements(
            keys in proptest::collection::vec(
                (proptest::sample::select(KNOWN_KEYS), any::<i8>(), "\\PC{0,20}"), 0..6)
        ) {
            let mut obj = Map::new();
            for (key, n, s) in keys {
                let value = match n.rem_euclid(5) {
                    0 => json!(s),
                    1 => json!(n),
                    2 => json!([s]),
                    3 => json!({ "hostPort": n, "ingressRate": n, "x": s }),
                    _ => json!([{ "hostPort": n, "containerPort": s }]),
                };
                obj.insert(key.to_string(), value);
            }
            let _ = parse(&Value::Array(vec![Value::Object(obj)]).to_string());
        }
    }
}
