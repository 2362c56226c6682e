//! The kubelet device manager's checkpoint
//! (`/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint`), read when the
//! pod-resources socket is absent: the file, bounded, parsed by
//! [`multus_core::devices::checkpoint`].

use std::io::Read as _;
use std::path::Path;

use multus_core::devices::ResourceMap;
use multus_core::devices::checkpoint::parse;
use multus_core::seams::DeviceError;

/// The most of the checkpoint read (the kubelet writes a few KiB per pod).
const MAX_CHECKPOINT: u64 = 16 << 20;

/// The devices the checkpoint lists for the pod with UID `pod_uid`, sorted per resource.
pub fn pod_devices(path: &Path, pod_uid: &str) -> Result<ResourceMap, DeviceError> {
    let failed = |reason: String| {
        DeviceError::Failed(format!(
            "device-manager checkpoint {}: {reason}",
            path.display()
        ))
    };
    let file = std::fs::File::open(path).map_err(|e| failed(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_CHECKPOINT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| failed(e.to_string()))?;
    if bytes.len() as u64 > MAX_CHECKPOINT {
        return Err(failed(format!("larger than {MAX_CHECKPOINT} bytes")));
    }
    parse(&bytes, pod_uid).map_err(|e| failed(format!("does not parse: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubelet_internal_checkpoint");
        std::fs::write(&path, b"\x00garbage").unwrap();
        let err = pod_devices(&path, "u1").unwrap_err().to_string();
        assert!(err.contains("kubelet_internal_checkpoint"), "{err}");
        assert!(err.contains("does not parse"), "{err}");
    }
}
