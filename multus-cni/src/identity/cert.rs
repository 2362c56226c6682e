//! The node's key, its certificate signing request, and a certificate + key pair read
//! back from PEM.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PublicKeyData as _};
use x509_parser::prelude::{FromDer as _, X509Certificate};

use super::{GROUP, user_name};

/// A fresh key (ECDSA P-256) and a PEM certificate signing request for `node`'s
/// identity: subject CN `system:multus:<node>`, O `system:multus`, nothing else.
pub fn key_and_request(node: &str) -> Result<(KeyPair, String), String> {
    let key = KeyPair::generate().map_err(|e| format!("cannot generate a key: {e}"))?;
    let mut params = CertificateParams::new(Vec::<String>::new())
        .map_err(|e| format!("cannot make the request: {e}"))?;
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, user_name(node));
    subject.push(DnType::OrganizationName, GROUP);
    params.distinguished_name = subject;
    let request = params
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .map_err(|e| format!("cannot sign the request: {e}"))?;
    Ok((key, request))
}

/// A client certificate and its private key, as stored in `certDir`.
#[derive(Clone, PartialEq, Eq)]
pub struct CertPair {
    /// The certificate (PEM), then the key (PEM): the file's content.
    pub pem: String,
    /// The certificate's subject common name (the user name).
    pub common_name: String,
    /// The certificate's subject organizations (the groups).
    pub organizations: Vec<String>,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
}

impl std::fmt::Debug for CertPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("CertPair")
            .field("common_name", &self.common_name)
            .field("organizations", &self.organizations)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

fn time(t: x509_parser::time::ASN1Time) -> SystemTime {
    let secs = t.timestamp();
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH
    }
}

/// What a certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject common name.
    pub common_name: String,
    /// Subject organizations.
    pub organizations: Vec<String>,
    /// Issuer, as text.
    pub issuer: String,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// The DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
}

/// Read the first certificate of a PEM document.
pub fn cert_info(pem: &str) -> Result<CertInfo, String> {
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|e| format!("invalid PEM: {e}"))?;
        if block.label != "CERTIFICATE" {
            continue;
        }
        let (_, cert) = X509Certificate::from_der(&block.contents)
            .map_err(|e| format!("invalid certificate: {e}"))?;
        let strings = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| {
            it.filter_map(|a| a.as_str().ok().map(str::to_owned))
                .collect::<Vec<_>>()
        };
        let subject = cert.subject();
        return Ok(CertInfo {
            common_name: strings(&mut subject.iter_common_name())
                .into_iter()
                .next()
                .unwrap_or_default(),
            organizations: strings(&mut subject.iter_organization()),
            issuer: cert.issuer().to_string(),
            not_before: time(cert.validity().not_before),
            not_after: time(cert.validity().not_after),
            public_key: cert.public_key().raw.to_vec(),
        });
    }
    Err("no certificate in the PEM document".to_owned())
}

/// The first private key block of a PEM document, as PEM.
fn key_pem(pem: &str) -> Option<String> {
    x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .filter_map(Result::ok)
        .find(|b| b.label.ends_with("PRIVATE KEY"))
        .map(|b| {
            let body = base64_lines(&b.contents);
            format!(
                "-----BEGIN {}-----\n{body}-----END {}-----\n",
                b.label, b.label
            )
        })
}

fn base64_lines(der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(text.len() + text.len() / 64 + 1);
    for chunk in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

impl CertPair {
    /// Join an issued certificate (PEM, as the CSR's `status.certificate`) with its key;
    /// refuses a certificate that is not for this key.
    pub fn new(cert_pem: &str, key: &KeyPair) -> Result<Self, String> {
        let info = cert_info(cert_pem)?;
        if info.public_key != key.subject_public_key_info() {
            return Err("the issued certificate is not for this node's key".to_owned());
        }
        let mut pem = cert_pem.trim_end().to_owned();
        pem.push('\n');
        pem.push_str(&key.serialize_pem());
        Ok(Self::from_info(pem, info))
    }

    fn from_info(pem: String, info: CertInfo) -> Self {
        Self {
            pem,
            common_name: info.common_name,
            organizations: info.organizations,
            not_before: info.not_before,
            not_after: info.not_after,
        }
    }

    /// Read a stored pair (certificate and key in one PEM document); the key must be
    /// the certificate's.
    pub fn parse(pem: &str) -> Result<Self, String> {
        let info = cert_info(pem)?;
        let key_pem = key_pem(pem).ok_or("no private key in the file")?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| format!("invalid private key: {e}"))?;
        if info.public_key != key.subject_public_key_info() {
            return Err("the private key does not belong to the certificate".to_owned());
        }
        Ok(Self::from_info(pem.to_owned(), info))
    }

    /// Whether it is valid at `now`.
    pub fn valid_at(&self, now: SystemTime) -> bool {
        self.not_before <= now && now < self.not_after
    }

    /// Its lifetime.
    pub fn lifetime(&self) -> Duration {
        self.not_after
            .duration_since(self.not_before)
            .unwrap_or_default()
    }

    /// When to ask for the next certificate: after `fraction` (0.7 to 0.9, chosen by
    /// the caller with jitter) of the lifetime.
    pub fn rotation_due(&self, fraction: f64) -> SystemTime {
        self.not_before + self.lifetime().mul_f64(fraction.clamp(0.0, 1.0))
    }
}

/// A fraction from 0.7 to 0.9, different on each call and on each node, so that nodes
/// that started together do not renew together.
pub fn jitter_fraction() -> f64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let unit = (hasher.finish() % 10_000) as f64 / 10_000.0;
    0.7 + 0.2 * unit
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, IsCa, Issuer};

    fn issue(request_pem: &str, seconds: i64) -> String {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let mut csr = rcgen::CertificateSigningRequestParams::from_pem(request_pem).unwrap();
        let now = time::OffsetDateTime::now_utc();
        csr.params.not_before = now - time::Duration::seconds(1);
        csr.params.not_after = now + time::Duration::seconds(seconds);
        csr.signed_by(&issuer).unwrap().pem()
    }

    #[test]
    fn a_request_names_the_node_and_the_group() {
        let (key, request) = key_and_request("node-1").unwrap();
        let cert = issue(&request, 600);
        let pair = CertPair::new(&cert, &key).unwrap();
        assert_eq!(pair.common_name, "system:multus:node-1");
        assert_eq!(pair.organizations, vec!["system:multus".to_owned()]);
        assert!(pair.valid_at(SystemTime::now()));
        assert!((600..=602).contains(&pair.lifetime().as_secs()));
        let again = CertPair::parse(&pair.pem).unwrap();
        assert_eq!(again, pair);
        assert!(!format!("{pair:?}").contains("PRIVATE"));
    }

    #[test]
    fn a_certificate_for_another_key_is_refused() {
        let (_, request) = key_and_request("node-1").unwrap();
        let cert = issue(&request, 600);
        let other = KeyPair::generate().unwrap();
        assert!(CertPair::new(&cert, &other).is_err());
        let mixed = format!("{cert}{}", other.serialize_pem());
        assert!(CertPair::parse(&mixed).is_err());
        assert!(CertPair::parse("garbage").is_err());
        assert!(CertPair::parse(&cert).is_err());
    }

    #[test]
    fn rotation_falls_between_70_and_90_percent() {
        let (key, request) = key_and_request("n").unwrap();
        let pair = CertPair::new(&issue(&request, 1000), &key).unwrap();
        for _ in 0..100 {
            let f = jitter_fraction();
            assert!((0.7..=0.9).contains(&f));
            let due = pair.rotation_due(f);
            assert!(due > pair.not_before && due < pair.not_after);
        }
    }
}
