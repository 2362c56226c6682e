//! One `certificates.k8s.io/v1` CertificateSigningRequest: created with the node's
//! request, then read until it is issued, denied or failed, or the time is up.

use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use rcgen::KeyPair;

use super::cert::{CertPair, key_and_request};
use super::{SIGNER, user_name};

/// Why no certificate was issued.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestError {
    /// The API refused or failed a request.
    #[error("certificate signing request for {user}: {reason}")]
    Api {
        /// The identity asked for.
        user: String,
        /// The API's answer.
        reason: String,
    },
    /// An approver denied it.
    #[error("certificate signing request {name} for {user} was denied: {reason}")]
    Denied {
        /// The CSR.
        name: String,
        /// The identity asked for.
        user: String,
        /// The approver's reason and message.
        reason: String,
    },
    /// The signer failed it.
    #[error("certificate signing request {name} for {user} failed: {reason}")]
    Failed {
        /// The CSR.
        name: String,
        /// The identity asked for.
        user: String,
        /// The signer's reason and message.
        reason: String,
    },
    /// Not issued in time.
    #[error(
        "certificate signing request {name} for {user} was not approved and issued within {} s: is the CSR approver running (multus-daemon approve-csrs)?",
        waited.as_secs()
    )]
    Timeout {
        /// The CSR.
        name: String,
        /// The identity asked for.
        user: String,
        /// How long it waited.
        waited: Duration,
    },
    /// The key, the request or the issued certificate is unusable.
    #[error("certificate for {user}: {reason}")]
    Local {
        /// The identity asked for.
        user: String,
        /// What is wrong.
        reason: String,
    },
}

/// Ask the API for a certificate for `node` lasting `duration`, with a new key, and
/// wait up to `timeout` for it. The key never leaves this process but in the result.
pub async fn obtain(
    client: kube::Client,
    node: &str,
    duration: Duration,
    timeout: Duration,
) -> Result<CertPair, RequestError> {
    let user = user_name(node);
    let local = |reason: String| RequestError::Local {
        user: user.clone(),
        reason,
    };
    let (key, request) = key_and_request(node).map_err(local)?;
    let csrs: Api<CertificateSigningRequest> = Api::all(client);
    let object = CertificateSigningRequest {
        metadata: ObjectMeta {
            generate_name: Some(format!("multus-{}-", short(node))),
            ..ObjectMeta::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(request.into_bytes()),
            signer_name: SIGNER.to_owned(),
            usages: Some(vec![
                "digital signature".to_owned(),
                "client auth".to_owned(),
            ]),
            expiration_seconds: Some(i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX)),
            ..CertificateSigningRequestSpec::default()
        },
        status: None,
    };
    let created = csrs
        .create(&PostParams::default(), &object)
        .await
        .map_err(|e| RequestError::Api {
            user: user.clone(),
            reason: e.to_string(),
        })?;
    let name = created.metadata.name.clone().unwrap_or_default();
    tracing::info!(csr = %name, %user, "certificate signing request created; waiting for approval");
    wait_issued(&csrs, &name, &user, &key, timeout).await
}

/// A node name cut to fit a CSR name with its random suffix.
fn short(node: &str) -> &str {
    let end = node.char_indices().nth(200).map_or(node.len(), |(i, _)| i);
    &node[..end]
}

async fn wait_issued(
    csrs: &Api<CertificateSigningRequest>,
    name: &str,
    user: &str,
    key: &KeyPair,
    timeout: Duration,
) -> Result<CertPair, RequestError> {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        match csrs.get(name).await {
            Ok(csr) => {
                if let Some(pair) = decided(&csr, name, user, key)? {
                    return Ok(pair);
                }
            }
            Err(e) => {
                tracing::warn!(csr = %name, error = %e, "cannot read the certificate signing request")
            }
        }
        if started.elapsed() >= timeout {
            return Err(RequestError::Timeout {
                name: name.to_owned(),
                user: user.to_owned(),
                waited: timeout,
            });
        }
        tokio::time::sleep(pause.min(timeout.saturating_sub(started.elapsed()))).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// The certificate when issued, an error when denied or failed, `None` while pending.
fn decided(
    csr: &CertificateSigningRequest,
    name: &str,
    user: &str,
    key: &KeyPair,
) -> Result<Option<CertPair>, RequestError> {
    let Some(status) = &csr.status else {
        return Ok(None);
    };
    for condition in status.conditions.iter().flatten() {
        if condition.status != "True" {
            continue;
        }
        let reason = format!(
            "{}: {}",
            condition.reason.as_deref().unwrap_or("no reason"),
            condition.message.as_deref().unwrap_or("no message")
        );
        match condition.type_.as_str() {
            "Denied" => {
                return Err(RequestError::Denied {
                    name: name.to_owned(),
                    user: user.to_owned(),
                    reason,
                });
            }
            "Failed" => {
                return Err(RequestError::Failed {
                    name: name.to_owned(),
                    user: user.to_owned(),
                    reason,
                });
            }
            _ => {}
        }
    }
    match &status.certificate {
        Some(cert) if !cert.0.is_empty() => {
            let pem = String::from_utf8_lossy(&cert.0);
            CertPair::new(&pem, key)
                .map(Some)
                .map_err(|reason| RequestError::Local {
                    user: user.to_owned(),
                    reason,
                })
        }
        _ => Ok(None),
    }
}
