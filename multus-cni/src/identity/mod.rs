//! Per-node client certificates (`perNodeCertificate`): each node authenticates to the
//! API server as `system:multus:<node>` (group `system:multus`) with a key generated on
//! the node, instead of sharing one service account across the cluster.
//!
//! - [`PerNodeCertificate`] (from `multus_core::identity`): the configuration
//!   (upstream's keys: `bootstrapKubeconfig`, `certDir`, `certDuration`);
//! - [`cert`]: the key, the certificate signing request, and reading a stored pair;
//! - [`store`]: the current pair in `certDir`, written atomically, owner-only;
//! - [`request`]: a `certificates.k8s.io/v1` CSR created and followed until it is
//!   issued, denied or failed;
//! - [`manager`]: obtain, reuse after a restart, rotate at 70-90% of the lifetime,
//!   keep the old certificate until the new one is issued;
//! - [`client`]: a kube-rs client that always presents the current certificate.

pub mod cert;
pub mod client;
pub mod manager;
pub mod request;
pub mod store;

pub use cert::CertPair;
pub use manager::{CertManager, IdentityError};
pub use multus_core::identity::{
    CURRENT_FILE, DEFAULT_CERT_DIR, DEFAULT_DURATION, DEFAULT_ISSUE_TIMEOUT, GROUP,
    PerNodeCertificate, SIGNER, USER_PREFIX, parse_duration, user_name,
};
