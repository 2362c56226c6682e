//! The source used when neither an API server nor a NAD directory is configured.

use async_trait::async_trait;
use multus_core::nad::{NetworkAttachmentDefinition, NetworkStatus};
use multus_core::request::PodRef;
use multus_core::seams::{ApiError, ClusterApi, PodEvent, PodInfo};

/// Knows no pods and no NADs: only static `delegates` and config-file networks resolve.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoClusterApi;

#[async_trait]
impl ClusterApi for NoClusterApi {
    async fn pod(&self, _pod: &PodRef) -> Result<Option<PodInfo>, ApiError> {
        Ok(None)
    }

    async fn network_attachment(
        &self,
        _namespace: &str,
        _name: &str,
    ) -> Result<Option<NetworkAttachmentDefinition>, ApiError> {
        Ok(None)
    }

    async fn set_network_status(
        &self,
        _pod: &PodRef,
        _status: &[NetworkStatus],
    ) -> Result<(), ApiError> {
        Ok(())
    }

    async fn emit_event(&self, pod: &PodRef, event: &PodEvent) -> Result<(), ApiError> {
        tracing::info!(%pod, reason = %event.reason, "{}", event.message);
        Ok(())
    }
}
