//! `multus-daemon approve-csrs`: the CSR approver for per-node identities, deployed
//! once per cluster.
//!
//! It considers only CertificateSigningRequests for the client signer whose subject
//! is a multus identity, and approves one only when every check passes: the requester
//! is a bootstrap identity bound to that node (or the node's own current identity, for
//! renewals), the subject is exactly `CN=system:multus:<node>, O=system:multus` for a
//! node that exists, the usages are exactly digital signature and client auth, the key
//! is ECDSA P-256/P-384 or RSA of 2048 bits or more, no subject alternative names are
//! asked for, and `expirationSeconds` is within bounds. Anything else is denied with
//! the reason, in the CSR's condition and in an event. Decided CSRs are never touched
//! again; decisions are spaced out (`--decisions-per-second`).

use std::collections::HashSet;
use std::time::Duration;

use futures_util::TryStreamExt as _;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestSpec,
};
use k8s_openapi::api::core::v1::{Event, Node, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Api;
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt as _, watcher};
use multus_cni::identity::{GROUP, SIGNER, USER_PREFIX};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer as _;
use x509_parser::public_key::PublicKey;

/// The node claim the API server puts into bound service-account tokens.
pub const NODE_CLAIM: &str = "authentication.kubernetes.io/node-name";
/// The default bootstrap identity: the service account of the DaemonSets.
pub const DEFAULT_BOOTSTRAP_USER: &str = "system:serviceaccount:kube-system:multus";

/// What the approver accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct ApproverConfig {
    /// Users whose CSRs are considered as bootstrap requests.
    pub bootstrap_users: Vec<String>,
    /// Accept a bootstrap request without the node claim (clusters before 1.32, or
    /// without the ServiceAccountTokenPodNodeInfo feature): then any holder of the
    /// bootstrap identity may obtain any node's identity.
    pub allow_missing_node_claim: bool,
    /// Shortest `expirationSeconds` accepted.
    pub min_duration: Duration,
    /// Longest `expirationSeconds` accepted.
    pub max_duration: Duration,
    /// Most approvals or denials per second.
    pub decisions_per_second: f64,
}

impl Default for ApproverConfig {
    fn default() -> Self {
        Self {
            bootstrap_users: vec![DEFAULT_BOOTSTRAP_USER.to_owned()],
            allow_missing_node_claim: false,
            min_duration: Duration::from_secs(600),
            max_duration: Duration::from_secs(365 * 86_400),
            decisions_per_second: 10.0,
        }
    }
}

/// What to do with a CSR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not a multus CSR, or already decided: leave it alone.
    Skip,
    /// Approve it for this node.
    Approve {
        /// The node.
        node: String,
    },
    /// Deny it, for this reason.
    Deny(String),
}

fn decided(csr: &CertificateSigningRequest) -> bool {
    let Some(status) = &csr.status else {
        return false;
    };
    status.certificate.as_ref().is_some_and(|c| !c.0.is_empty())
        || status.conditions.iter().flatten().any(|c| {
            matches!(c.type_.as_str(), "Approved" | "Denied" | "Failed") && c.status != "False"
        })
}

/// A DNS-1123 subdomain, as node names are.
pub fn is_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The subject and key of a PEM request, as far as the checks need them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Requested {
    common_names: Vec<String>,
    organizations: Vec<String>,
    other_attributes: usize,
    key: Result<(), String>,
    alt_names: bool,
}

fn read_request(pem: &[u8]) -> Result<Requested, String> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem)
        .map_err(|e| format!("spec.request is not PEM: {e}"))?;
    if block.label != "CERTIFICATE REQUEST" {
        return Err(format!("spec.request holds a {:?} block", block.label));
    }
    let (_, request) = X509CertificationRequest::from_der(&block.contents)
        .map_err(|e| format!("spec.request is not a certificate request: {e}"))?;
    let info = &request.certification_request_info;
    let strings = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| {
        it.map(|a| a.as_str().map(str::to_owned).unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let common_names = strings(&mut info.subject.iter_common_name());
    let organizations = strings(&mut info.subject.iter_organization());
    let all = info.subject.iter_attributes().count();
    let key = match info.subject_pki.parsed() {
        Ok(PublicKey::EC(point)) if matches!(point.key_size(), 256 | 384) => Ok(()),
        Ok(PublicKey::RSA(rsa)) if rsa.key_size() >= 2048 => Ok(()),
        Ok(PublicKey::EC(point)) => Err(format!("an ECDSA key of {} bits", point.key_size())),
        Ok(PublicKey::RSA(rsa)) => Err(format!("an RSA key of {} bits", rsa.key_size())),
        Ok(_) | Err(_) => Err(format!(
            "a key of algorithm {}",
            info.subject_pki.algorithm.algorithm
        )),
    };
    let alt_names = request
        .requested_extensions()
        .is_some_and(|mut extensions| {
            extensions.any(|e| matches!(e, ParsedExtension::SubjectAlternativeName(_)))
        });
    Ok(Requested {
        other_attributes: all - common_names.len() - organizations.len(),
        common_names,
        organizations,
        key,
        alt_names,
    })
}

/// Decide on `csr`; `node_exists` answers whether a node of that name exists.
pub fn decide(
    csr: &CertificateSigningRequest,
    config: &ApproverConfig,
    node_exists: impl FnOnce(&str) -> bool,
) -> Decision {
    let spec = &csr.spec;
    if spec.signer_name != SIGNER || decided(csr) {
        return Decision::Skip;
    }
    let requested = match read_request(&spec.request.0) {
        Ok(requested) => requested,
        // Not readable: not ours to judge unless it claims a multus identity.
        Err(e) if String::from_utf8_lossy(&spec.request.0).contains(USER_PREFIX) => {
            return Decision::Deny(e);
        }
        Err(_) => return Decision::Skip,
    };
    if !claims_multus_identity(&requested, spec) {
        return Decision::Skip;
    }
    let node = match check_subject(&requested) {
        Ok(node) => node,
        Err(reason) => return Decision::Deny(reason),
    };
    if let Err(reason) = check_usages_and_expiration(spec, config) {
        return Decision::Deny(reason);
    }
    let requester = spec.username.clone().unwrap_or_default();
    if let Err(reason) = requester_may_ask(spec, &requester, node, config) {
        return Decision::Deny(reason);
    }
    if !node_exists(node) {
        return Decision::Deny(format!("node {node:?} does not exist"));
    }
    Decision::Approve {
        node: node.to_owned(),
    }
}

/// Whether the CSR asks for, or comes from, a multus identity.
fn claims_multus_identity(requested: &Requested, spec: &CertificateSigningRequestSpec) -> bool {
    requested
        .common_names
        .iter()
        .any(|cn| cn.starts_with(GROUP))
        || requested.organizations.iter().any(|o| o == GROUP)
        || spec
            .username
            .as_deref()
            .is_some_and(|u| u.starts_with(USER_PREFIX))
}

/// The subject must be exactly `CN=system:multus:<node>, O=system:multus`, without
/// alternative names, with an allowed key; the node's name.
fn check_subject(requested: &Requested) -> Result<&str, String> {
    let [common_name] = requested.common_names.as_slice() else {
        return Err(format!(
            "the subject must have exactly one common name, found {:?}",
            requested.common_names
        ));
    };
    let Some(node) = common_name.strip_prefix(USER_PREFIX) else {
        return Err(format!(
            "the common name {common_name:?} is not {USER_PREFIX}<node>"
        ));
    };
    if !is_node_name(node) {
        return Err(format!("{node:?} is not a valid node name"));
    }
    if requested.organizations != [GROUP] || requested.other_attributes != 0 {
        return Err(format!(
            "the subject must be exactly CN={common_name}, O={GROUP}; found organizations {:?} and {} other attributes",
            requested.organizations, requested.other_attributes
        ));
    }
    if requested.alt_names {
        return Err("subject alternative names are not allowed".to_owned());
    }
    if let Err(key) = &requested.key {
        return Err(format!(
            "{key} is not allowed (ECDSA P-256 or P-384, or RSA of 2048 bits or more)"
        ));
    }
    Ok(node)
}

/// The usages must be exactly client auth and digital signature, and the requested
/// lifetime within the configured bounds.
fn check_usages_and_expiration(
    spec: &CertificateSigningRequestSpec,
    config: &ApproverConfig,
) -> Result<(), String> {
    let mut usages: Vec<&str> = spec.usages.iter().flatten().map(String::as_str).collect();
    usages.sort_unstable();
    usages.dedup();
    if usages != ["client auth", "digital signature"] {
        return Err(format!(
            "usages must be exactly [digital signature, client auth], found {:?}",
            spec.usages.clone().unwrap_or_default()
        ));
    }
    match spec.expiration_seconds {
        None => Err("expirationSeconds must be set".to_owned()),
        Some(seconds)
            if i64::from(seconds) < config.min_duration.as_secs() as i64
                || i64::from(seconds) > config.max_duration.as_secs() as i64 =>
        {
            Err(format!(
                "expirationSeconds {seconds} is outside {}..={}",
                config.min_duration.as_secs(),
                config.max_duration.as_secs()
            ))
        }
        Some(_) => Ok(()),
    }
}

fn requester_may_ask(
    spec: &CertificateSigningRequestSpec,
    requester: &str,
    node: &str,
    config: &ApproverConfig,
) -> Result<(), String> {
    if requester == format!("{USER_PREFIX}{node}") || requester == format!("system:node:{node}") {
        return Ok(());
    }
    if !config.bootstrap_users.iter().any(|u| u == requester) {
        return Err(format!(
            "requester {requester:?} is neither a bootstrap identity nor {USER_PREFIX}{node}"
        ));
    }
    let claim = spec.extra.as_ref().and_then(|extra| extra.get(NODE_CLAIM));
    match claim.map(Vec::as_slice) {
        Some([claimed]) if claimed == node => Ok(()),
        Some(claimed) => Err(format!(
            "requester {requester:?} is bound to node {claimed:?}, not {node:?}"
        )),
        None if config.allow_missing_node_claim => Ok(()),
        None => Err(format!(
            "requester {requester:?} carries no node claim ({NODE_CLAIM}); run Kubernetes 1.32 or later, or start the approver with --allow-missing-node-claim"
        )),
    }
}

fn condition(kind: &str, reason: &str, message: &str) -> CertificateSigningRequestCondition {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    CertificateSigningRequestCondition {
        type_: kind.to_owned(),
        status: "True".to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

async fn record_event(
    client: &kube::Client,
    csr: &CertificateSigningRequest,
    reason: &str,
    message: &str,
    warning: bool,
) {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let name = csr.metadata.name.clone().unwrap_or_default();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let event = Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}.")),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("certificates.k8s.io/v1".to_owned()),
            kind: Some("CertificateSigningRequest".to_owned()),
            name: Some(name),
            uid: csr.metadata.uid.clone(),
            ..ObjectReference::default()
        },
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        type_: Some(if warning { "Warning" } else { "Normal" }.to_owned()),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        reporting_component: Some("multus-csr-approver".to_owned()),
        ..Event::default()
    };
    if let Err(e) = events.create(&PostParams::default(), &event).await {
        tracing::warn!(error = %e, "cannot record the event");
    }
}

/// Act on one CSR; `Ok(true)` when a decision was written.
async fn handle(
    client: &kube::Client,
    config: &ApproverConfig,
    csr: CertificateSigningRequest,
) -> Result<bool, kube::Error> {
    let name = csr.metadata.name.clone().unwrap_or_default();
    let nodes: Api<Node> = Api::all(client.clone());
    // Whether the node exists is asked only when every other check passed.
    let mut wanted_node = None;
    let decision = decide(&csr, config, |node| {
        wanted_node = Some(node.to_owned());
        true
    });
    let decision = match (decision, wanted_node) {
        (Decision::Approve { .. }, Some(node)) => match nodes.get_opt(&node).await? {
            Some(_) => Decision::Approve { node },
            None => Decision::Deny(format!("node {node:?} does not exist")),
        },
        (decision, _) => decision,
    };
    let (kind, reason, message, warning) = match &decision {
        Decision::Skip => return Ok(false),
        Decision::Approve { node } => (
            "Approved",
            "AutoApproved",
            format!("approved by the multus CSR approver for node {node}"),
            false,
        ),
        Decision::Deny(why) => ("Denied", "MultusCSRDenied", why.clone(), true),
    };
    let mut updated = csr.clone();
    updated
        .status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new)
        .push(condition(kind, reason, &message));
    let csrs: Api<CertificateSigningRequest> = Api::all(client.clone());
    csrs.replace_subresource("approval", &name, &PostParams::default(), &updated)
        .await?;
    let event_reason = if warning { "CSRDenied" } else { "CSRApproved" };
    if warning {
        tracing::warn!(csr = %name, reason = %message, "certificate signing request denied");
    } else {
        tracing::info!(csr = %name, "certificate signing request approved");
    }
    record_event(client, &csr, event_reason, &message, warning).await;
    Ok(true)
}

/// Watch CSRs and decide on each new one until the stream ends (never, normally).
pub async fn run(client: kube::Client, config: ApproverConfig) -> Result<(), String> {
    let csrs: Api<CertificateSigningRequest> = Api::all(client.clone());
    let spacing = Duration::from_secs_f64(1.0 / config.decisions_per_second.max(0.01));
    let mut handled: HashSet<String> = HashSet::new();
    let stream = watcher(csrs, watcher::Config::default())
        .default_backoff()
        .applied_objects();
    futures_util::pin_mut!(stream);
    tracing::info!(bootstrap_users = ?config.bootstrap_users, "approving multus certificate signing requests");
    loop {
        let csr = match stream.try_next().await {
            Ok(Some(csr)) => csr,
            Ok(None) => return Err("the watch of certificate signing requests ended".to_owned()),
            Err(e) => {
                tracing::warn!(error = %e, "watching certificate signing requests");
                continue;
            }
        };
        let uid = csr.metadata.uid.clone().unwrap_or_default();
        if handled.len() > 100_000 {
            // Decided CSRs are skipped by their conditions anyway; this only saves reads.
            handled.clear();
        }
        if handled.contains(&uid) {
            continue;
        }
        match handle(&client, &config, csr).await {
            Ok(true) => {
                handled.insert(uid);
                tokio::time::sleep(spacing).await;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot decide on a certificate signing request; it is retried when it changes or on the next resync");
                tokio::time::sleep(spacing).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::certificates::v1::CertificateSigningRequestSpec;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
    use std::collections::BTreeMap;

    /// A request with this subject, with a P-256 key unless `key` is given.
    fn request(cn: &str, orgs: &[&str], sans: &[&str], key: Option<KeyPair>) -> Vec<u8> {
        let key = key.unwrap_or_else(|| KeyPair::generate().unwrap());
        let mut params =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, cn);
        for org in orgs {
            subject.push(DnType::OrganizationName, *org);
        }
        params.distinguished_name = subject;
        params
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap()
            .into_bytes()
    }

    fn csr(request: Vec<u8>, requester: &str, claim: Option<&str>) -> CertificateSigningRequest {
        CertificateSigningRequest {
            metadata: ObjectMeta {
                name: Some("csr-1".into()),
                ..ObjectMeta::default()
            },
            spec: CertificateSigningRequestSpec {
                request: ByteString(request),
                signer_name: SIGNER.into(),
                usages: Some(vec!["digital signature".into(), "client auth".into()]),
                expiration_seconds: Some(3600),
                username: Some(requester.into()),
                extra: claim.map(|n| BTreeMap::from([(NODE_CLAIM.to_owned(), vec![n.to_owned()])])),
                ..CertificateSigningRequestSpec::default()
            },
            status: None,
        }
    }

    fn good(node: &str) -> CertificateSigningRequest {
        csr(
            request(&format!("system:multus:{node}"), &[GROUP], &[], None),
            DEFAULT_BOOTSTRAP_USER,
            Some(node),
        )
    }

    fn decide_default(csr: &CertificateSigningRequest) -> Decision {
        decide(csr, &ApproverConfig::default(), |n| {
            n == "node-a" || n == "node-b"
        })
    }

    fn denied(csr: &CertificateSigningRequest, reason_part: &str) {
        match decide_default(csr) {
            Decision::Deny(reason) => assert!(reason.contains(reason_part), "{reason}"),
            other => panic!("expected a denial with {reason_part:?}, got {other:?}"),
        }
    }

    #[test]
    fn a_bootstrap_request_for_its_own_node_is_approved() {
        assert_eq!(
            decide_default(&good("node-a")),
            Decision::Approve {
                node: "node-a".into()
            }
        );
        // Renewal with the node's own identity, and kubelet credentials.
        for requester in ["system:multus:node-a", "system:node:node-a"] {
            let mut renewal = good("node-a");
            renewal.spec.username = Some(requester.into());
            renewal.spec.extra = None;
            assert_eq!(
                decide_default(&renewal),
                Decision::Approve {
                    node: "node-a".into()
                },
                "{requester}"
            );
        }
    }

    #[test]
    fn another_nodes_name_is_denied() {
        // Bound to node-a, asking for node-b.
        let mut theft = good("node-b");
        theft.spec.extra = Some(BTreeMap::from([(
            NODE_CLAIM.to_owned(),
            vec!["node-a".to_owned()],
        )]));
        denied(&theft, "is bound to node");
        // node-a's identity renewing for node-b.
        let mut renewal = good("node-b");
        renewal.spec.username = Some("system:multus:node-a".into());
        renewal.spec.extra = None;
        denied(&renewal, "neither a bootstrap identity");
    }

    #[test]
    fn a_server_auth_usage_is_denied() {
        let mut server = good("node-a");
        server.spec.usages = Some(vec!["digital signature".into(), "server auth".into()]);
        denied(&server, "usages must be exactly");
        let mut extra = good("node-a");
        extra.spec.usages = Some(vec![
            "digital signature".into(),
            "client auth".into(),
            "server auth".into(),
        ]);
        denied(&extra, "usages must be exactly");
    }

    #[test]
    fn a_non_bootstrap_requester_is_denied() {
        let mut stranger = good("node-a");
        stranger.spec.username = Some("system:serviceaccount:default:intruder".into());
        denied(&stranger, "neither a bootstrap identity");
        let mut no_claim = good("node-a");
        no_claim.spec.extra = None;
        denied(&no_claim, "carries no node claim");
        let lenient = ApproverConfig {
            allow_missing_node_claim: true,
            ..ApproverConfig::default()
        };
        assert_eq!(
            decide(&no_claim, &lenient, |_| true),
            Decision::Approve {
                node: "node-a".into()
            }
        );
    }

    #[test]
    fn subject_key_expiry_and_node_are_checked() {
        let requester = DEFAULT_BOOTSTRAP_USER;
        let extra_org = csr(
            request(
                "system:multus:node-a",
                &[GROUP, "system:masters"],
                &[],
                None,
            ),
            requester,
            Some("node-a"),
        );
        denied(&extra_org, "the subject must be exactly");
        let no_org = csr(
            request("system:multus:node-a", &[], &[], None),
            requester,
            Some("node-a"),
        );
        denied(&no_org, "the subject must be exactly");
        let sans = csr(
            request("system:multus:node-a", &[GROUP], &["node-a.example"], None),
            requester,
            Some("node-a"),
        );
        denied(&sans, "alternative names");
        let bad_name = csr(
            request("system:multus:Node_A", &[GROUP], &[], None),
            requester,
            Some("Node_A"),
        );
        denied(&bad_name, "not a valid node name");
        let p384_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let p384 = csr(
            request("system:multus:node-a", &[GROUP], &[], Some(p384_key)),
            requester,
            Some("node-a"),
        );
        assert_eq!(
            decide_default(&p384),
            Decision::Approve {
                node: "node-a".into()
            }
        );
        let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let ed = csr(
            request("system:multus:node-a", &[GROUP], &[], Some(ed)),
            requester,
            Some("node-a"),
        );
        denied(&ed, "is not allowed");
        let mut long = good("node-a");
        long.spec.expiration_seconds = Some(400 * 86_400);
        denied(&long, "expirationSeconds");
        let mut short = good("node-a");
        short.spec.expiration_seconds = Some(60);
        denied(&short, "expirationSeconds");
        let mut unset = good("node-a");
        unset.spec.expiration_seconds = None;
        denied(&unset, "must be set");
        denied(&good("node-z"), "does not exist");
    }

    #[test]
    fn other_signers_other_subjects_and_decided_requests_are_left_alone() {
        let mut kubelet = good("node-a");
        kubelet.spec.signer_name = "kubernetes.io/kube-apiserver-client-kubelet".into();
        assert_eq!(decide_default(&kubelet), Decision::Skip);
        let foreign = csr(request("jane", &["developers"], &[], None), "jane", None);
        assert_eq!(decide_default(&foreign), Decision::Skip);
        let mut approved = good("node-a");
        approved.status = Some(
            k8s_openapi::api::certificates::v1::CertificateSigningRequestStatus {
                conditions: Some(vec![condition("Approved", "AutoApproved", "x")]),
                certificate: None,
            },
        );
        assert_eq!(decide_default(&approved), Decision::Skip);
        let mut denied_before = good("node-b");
        denied_before.status = Some(
            k8s_openapi::api::certificates::v1::CertificateSigningRequestStatus {
                conditions: Some(vec![condition("Denied", "MultusCSRDenied", "x")]),
                certificate: None,
            },
        );
        assert_eq!(decide_default(&denied_before), Decision::Skip);
    }

    #[test]
    fn node_names_are_dns_subdomains() {
        for ok in ["node-a", "n1.example.com", "a"] {
            assert!(is_node_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a..b", &"x".repeat(254)] {
            assert!(!is_node_name(bad), "{bad}");
        }
    }
}
