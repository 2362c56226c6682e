//! Who is calling (bearer tokens and client certificates), and the signer of
//! CertificateSigningRequests: an approved CSR for `kubernetes.io/kube-apiserver-client`
//! is issued a certificate signed by the stand-in's CA, as the API server's signer
//! controller does.

use base64::Engine as _;
use rcgen::{
    CertificateSigningRequestParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::{Value, json};
use x509_parser::prelude::{FromDer as _, X509Certificate};

/// An authenticated user, as the API server puts it in a CSR's spec.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    /// `username`.
    pub username: String,
    /// `groups`.
    pub groups: Vec<String>,
    /// `extra` (e.g. `authentication.kubernetes.io/node-name`).
    pub extra: Vec<(String, Vec<String>)>,
}

impl UserInfo {
    /// A user with these groups and no extra.
    pub fn new(username: &str, groups: &[&str]) -> Self {
        Self {
            username: username.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            extra: Vec::new(),
        }
    }

    /// The service account token of `namespace/name` bound to a pod on `node` (the
    /// node claim the API server adds from Kubernetes 1.32).
    pub fn service_account_on_node(namespace: &str, name: &str, node: Option<&str>) -> Self {
        let mut user = Self::new(
            &format!("system:serviceaccount:{namespace}:{name}"),
            &[
                "system:serviceaccounts",
                &format!("system:serviceaccounts:{namespace}"),
                "system:authenticated",
            ],
        );
        if let Some(node) = node {
            user.extra = vec![(
                "authentication.kubernetes.io/node-name".to_owned(),
                vec![node.to_owned()],
            )];
        }
        user
    }
}

/// The client certificate of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCert {
    /// Subject common name.
    pub common_name: String,
    /// Subject organizations.
    pub organizations: Vec<String>,
    /// End of validity, seconds since the epoch.
    pub not_after: i64,
}

impl PeerCert {
    /// Read a DER certificate.
    pub fn parse(der: &[u8]) -> Option<Self> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let subject = cert.subject();
        let strings = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| {
            it.filter_map(|a| a.as_str().ok().map(str::to_owned))
                .collect::<Vec<_>>()
        };
        Some(Self {
            common_name: strings(&mut subject.iter_common_name())
                .into_iter()
                .next()
                .unwrap_or_default(),
            organizations: strings(&mut subject.iter_organization()),
            not_after: cert.validity().not_after.timestamp(),
        })
    }

    /// Valid now (the API server checks the validity on every request, not only when
    /// the connection is made).
    pub fn valid_now(&self) -> bool {
        time::OffsetDateTime::now_utc().unix_timestamp() < self.not_after
    }

    /// The user it authenticates.
    pub fn user(&self) -> UserInfo {
        let mut groups = self.organizations.clone();
        groups.push("system:authenticated".to_owned());
        UserInfo {
            username: self.common_name.clone(),
            groups,
            extra: Vec::new(),
        }
    }
}

/// Put the requester into a CSR being created, as the API server does.
pub fn stamp_requester(csr: &mut Value, user: &UserInfo) {
    if let Some(spec) = csr.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("username".into(), user.username.clone().into());
        spec.insert("groups".into(), json!(user.groups));
        if user.extra.is_empty() {
            spec.remove("extra");
        } else {
            let extra: serde_json::Map<String, Value> = user
                .extra
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            spec.insert("extra".into(), Value::Object(extra));
        }
    }
}

fn condition(csr: &Value, kind: &str) -> bool {
    csr.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|conditions| {
            conditions.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some(kind)
                    && c.get("status").and_then(Value::as_str) != Some("False")
            })
        })
}

/// Add a condition (`Approved`, `Denied`, `Failed`) to a CSR.
pub fn add_condition(csr: &mut Value, kind: &str, reason: &str, message: &str) {
    let now = multus_host::time::rfc3339_now();
    let entry = json!({"type": kind, "status": "True", "reason": reason, "message": message,
        "lastUpdateTime": now, "lastTransitionTime": now});
    if let Some(object) = csr.as_object_mut() {
        let status = object.entry("status").or_insert_with(|| json!({}));
        if let Some(status) = status.as_object_mut() {
            let conditions = status.entry("conditions").or_insert_with(|| json!([]));
            if let Some(list) = conditions.as_array_mut() {
                list.push(entry);
            }
        }
    }
}

/// The certificate for an approved, not yet issued CSR of the client signer (PEM), or
/// why it cannot be issued; `Ok(None)` when there is nothing to do.
pub fn issue(csr: &Value, ca: &Issuer<'static, KeyPair>) -> Result<Option<String>, String> {
    if !condition(csr, "Approved") || condition(csr, "Denied") || condition(csr, "Failed") {
        return Ok(None);
    }
    if csr
        .pointer("/status/certificate")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty())
    {
        return Ok(None);
    }
    if csr.pointer("/spec/signerName").and_then(Value::as_str)
        != Some("kubernetes.io/kube-apiserver-client")
    {
        return Err("the stand-in signs for kubernetes.io/kube-apiserver-client only".into());
    }
    let request = csr
        .pointer("/spec/request")
        .and_then(Value::as_str)
        .ok_or("spec.request is missing")?;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(request)
        .map_err(|e| format!("spec.request is not base64: {e}"))?;
    let pem = String::from_utf8(pem).map_err(|_| "spec.request is not PEM".to_owned())?;
    let mut params = CertificateSigningRequestParams::from_pem(&pem)
        .map_err(|e| format!("spec.request is not a certificate request: {e}"))?;
    let seconds = csr
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(365 * 86_400);
    let now = time::OffsetDateTime::now_utc();
    params.params.not_before = now;
    params.params.not_after = now + time::Duration::seconds(seconds);
    params.params.is_ca = IsCa::ExplicitNoCa;
    params.params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(ca).map_err(|e| e.to_string())?;
    Ok(Some(cert.pem()))
}
