//! The resources the stand-in serves, and the discovery documents kubectl reads.

use serde_json::{Value, json};

/// The group of NetworkAttachmentDefinitions.
pub const NAD_GROUP: &str = "k8s.cni.cncf.io";

/// One served resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// API group, `""` for core.
    pub group: &'static str,
    /// Plural resource name in URLs.
    pub resource: &'static str,
    /// Singular name.
    pub singular: &'static str,
    /// `kind` of an object.
    pub kind: &'static str,
    /// Short names for kubectl.
    pub short_names: &'static [&'static str],
    /// Whether it has a `status` subresource.
    pub has_status: bool,
    /// Whether its objects live in a namespace (else cluster-scoped, stored under `""`).
    pub namespaced: bool,
}

impl Kind {
    /// `apiVersion` of its objects.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            "v1".to_owned()
        } else {
            format!("{}/v1", self.group)
        }
    }

    /// `resource` or `resource.group`, as error messages name it.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_owned()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

/// Pods (core/v1).
pub const PODS: Kind = Kind {
    group: "",
    resource: "pods",
    singular: "pod",
    kind: "Pod",
    short_names: &["po"],
    has_status: true,
    namespaced: true,
};
/// Events (core/v1).
pub const EVENTS: Kind = Kind {
    group: "",
    resource: "events",
    singular: "event",
    kind: "Event",
    short_names: &["ev"],
    has_status: false,
    namespaced: true,
};
/// NetworkAttachmentDefinitions (k8s.cni.cncf.io/v1).
pub const NADS: Kind = Kind {
    group: NAD_GROUP,
    resource: "network-attachment-definitions",
    singular: "network-attachment-definition",
    kind: "NetworkAttachmentDefinition",
    short_names: &["net-attach-def", "nad"],
    has_status: false,
    namespaced: true,
};
/// The group of CertificateSigningRequests.
pub const CSR_GROUP: &str = "certificates.k8s.io";
/// CertificateSigningRequests (certificates.k8s.io/v1, cluster-scoped, with the
/// `status` and `approval` subresources).
pub const CSRS: Kind = Kind {
    group: CSR_GROUP,
    resource: "certificatesigningrequests",
    singular: "certificatesigningrequest",
    kind: "CertificateSigningRequest",
    short_names: &["csr"],
    has_status: true,
    namespaced: false,
};
/// Nodes (core/v1, cluster-scoped).
pub const NODES: Kind = Kind {
    group: "",
    resource: "nodes",
    singular: "node",
    kind: "Node",
    short_names: &["no"],
    has_status: true,
    namespaced: false,
};

/// The group of DRA objects.
pub const DRA_GROUP: &str = "resource.k8s.io";
/// ResourceClaims (resource.k8s.io/v1).
pub const RESOURCE_CLAIMS: Kind = Kind {
    group: DRA_GROUP,
    resource: "resourceclaims",
    singular: "resourceclaim",
    kind: "ResourceClaim",
    short_names: &[],
    has_status: true,
    namespaced: true,
};
/// ResourceSlices (resource.k8s.io/v1, cluster-scoped; listed with `spec.nodeName` /
/// `spec.driver` field selectors).
pub const RESOURCE_SLICES: Kind = Kind {
    group: DRA_GROUP,
    resource: "resourceslices",
    singular: "resourceslice",
    kind: "ResourceSlice",
    short_names: &[],
    has_status: false,
    namespaced: false,
};

/// Every served resource.
pub const ALL: [Kind; 7] = [
    PODS,
    EVENTS,
    NADS,
    RESOURCE_CLAIMS,
    RESOURCE_SLICES,
    CSRS,
    NODES,
];

/// The resource named `resource` in `group`.
pub fn find(group: &str, resource: &str) -> Option<Kind> {
    ALL.into_iter()
        .find(|k| k.group == group && k.resource == resource)
}

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "get",
    "list",
    "patch",
    "update",
    "watch",
    "deletecollection",
];

fn resource_list(group: &str) -> Value {
    let mut resources = Vec::new();
    for kind in ALL.iter().filter(|k| k.group == group) {
        resources.push(json!({
            "name": kind.resource, "singularName": kind.singular, "namespaced": kind.namespaced,
            "kind": kind.kind, "verbs": VERBS, "shortNames": kind.short_names,
            "storageVersionHash": ""
        }));
        if kind.has_status {
            resources.push(json!({
                "name": format!("{}/status", kind.resource), "singularName": "",
                "namespaced": kind.namespaced, "kind": kind.kind, "verbs": ["get", "patch", "update"]
            }));
        }
    }
    let group_version = if group.is_empty() {
        "v1".to_owned()
    } else {
        format!("{group}/v1")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

fn nad_group() -> Value {
    let version = json!({"groupVersion": format!("{NAD_GROUP}/v1"), "version": "v1"});
    json!({"name": NAD_GROUP, "versions": [version], "preferredVersion": version})
}

/// The discovery document at `path`, if it is one.
pub fn discovery(path: &str, server: &str) -> Option<Value> {
    Some(match path {
        "/version" => json!({
            "major": "1", "minor": "34", "gitVersion": "v1.34.0-standin", "gitCommit": "standin",
            "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24",
            "compiler": "gc", "platform": "linux/amd64"
        }),
        "/api" => json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}]
        }),
        "/apis" => json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [nad_group()]}),
        "/api/v1" => resource_list(""),
        "/apis/k8s.cni.cncf.io" => {
            let mut group = nad_group();
            if let Some(object) = group.as_object_mut() {
                object.insert("kind".into(), "APIGroup".into());
                object.insert("apiVersion".into(), "v1".into());
            }
            group
        }
        "/apis/k8s.cni.cncf.io/v1" => resource_list(NAD_GROUP),
        "/apis/certificates.k8s.io/v1" => resource_list(CSR_GROUP),
        _ => return None,
    })
}
