//! Device-info files (NPWG device-info spec): the device plugin leaves
//! `<dir>/dp/<resource>-<deviceID>-device.json`; multus copies it to
//! `<dir>/cni/<network>-<containerID>_<ifname>` for the delegate (runtimeConfig
//! `CNIDeviceInfoFile`), reads it back for network-status, and removes it on DEL.
//!
//! File names come from [`multus_core::devices`], which refuses unsafe ones; they are
//! checked again here to be plain names before they touch a path.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The most of a device-info file read (the spec's documents are a few hundred bytes).
const MAX_INFO: u64 = 1 << 20;

/// A device-info directory.
#[derive(Debug)]
pub struct DeviceInfoDir<'a> {
    root: &'a Path,
}

impl<'a> DeviceInfoDir<'a> {
    /// The directory holding `dp/` and `cni/`.
    pub fn new(root: &'a Path) -> Self {
        Self { root }
    }

    fn file(&self, sub: &str, name: &str) -> Option<PathBuf> {
        let plain = !name.is_empty()
            && name != "."
            && name != ".."
            && !name.contains('/')
            && !name.contains('\0');
        plain.then(|| self.root.join(sub).join(name))
    }

    /// Copy the device plugin's file (if any) for the CNI; the CNI file's path. Copy
    /// failures are logged: the path is passed on either way, as upstream does.
    pub fn prepare(&self, dp_file: &str, cni_file: &str) -> Option<String> {
        let source = self.file("dp", dp_file)?;
        let target = self.file("cni", cni_file)?;
        match read_bounded(&source) {
            Ok(Some(bytes)) => {
                let written = target
                    .parent()
                    .map_or(Ok(()), |dir| {
                        std::fs::create_dir_all(dir).map_err(|e| e.to_string())
                    })
                    .and_then(|()| {
                        multus_host::atomic::write_atomic(&target, &bytes, 0o644)
                            .map_err(|e| e.to_string())
                    });
                if let Err(error) = written {
                    tracing::warn!(target = %target.display(), %error, "cannot write the CNI device-info file");
                }
            }
            Ok(None) => {
                tracing::debug!(source = %source.display(), "no device-plugin device-info file");
            }
            Err(error) => {
                tracing::warn!(source = %source.display(), %error, "cannot read the device-plugin device-info file");
            }
        }
        Some(target.display().to_string())
    }

    /// The CNI file's JSON, when it exists and parses.
    pub fn load(&self, cni_file: &str) -> Option<Value> {
        let path = self.file("cni", cni_file)?;
        let bytes = read_bounded(&path)
            .map_err(|error| tracing::warn!(path = %path.display(), %error, "cannot read the device-info file"))
            .ok()??;
        serde_json::from_slice(&bytes)
            .map_err(|error| tracing::warn!(path = %path.display(), %error, "device-info file is not JSON"))
            .ok()
    }

    /// Remove the CNI file (absent is fine).
    pub fn remove(&self, cni_file: &str) {
        let Some(path) = self.file("cni", cni_file) else {
            return;
        };
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot remove the device-info file");
            }
        }
    }
}

/// The file's bytes (never following a symlink), `None` when it does not exist.
fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_nofollow()
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut bytes = Vec::new();
    file.take(MAX_INFO + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_INFO {
        return Err(format!("larger than {MAX_INFO} bytes"));
    }
    Ok(Some(bytes))
}

trait NoFollow {
    fn custom_flags_nofollow(&mut self) -> &mut Self;
}

impl NoFollow for std::fs::OpenOptions {
    fn custom_flags_nofollow(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt as _;
        self.custom_flags(nix::libc::O_NOFOLLOW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_loads_and_removes_the_cni_file() {
        let root = tempfile::tempdir().unwrap();
        let dir = DeviceInfoDir::new(root.path());
        std::fs::create_dir_all(root.path().join("dp")).unwrap();
        let info = br#"{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:03:02.0"}}"#;
        std::fs::write(
            root.path()
                .join("dp/intel.com-sriov-0000:03:02.0-device.json"),
            info,
        )
        .unwrap();
        let path = dir
            .prepare(
                "intel.com-sriov-0000:03:02.0-device.json",
                "default-n-c1_net1",
            )
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), info);
        assert_eq!(
            dir.load("default-n-c1_net1").unwrap()["pci"]["pci-address"],
            "0000:03:02.0"
        );
        dir.remove("default-n-c1_net1");
        assert!(!Path::new(&path).exists());
        dir.remove("default-n-c1_net1");
        // Without a device-plugin file the path is still given, and nothing is written.
        let path = dir.prepare("none-device.json", "x-c1_net2").unwrap();
        assert!(!Path::new(&path).exists());
        assert_eq!(dir.load("x-c1_net2"), None);
    }

    #[test]
    fn names_that_are_not_plain_never_reach_a_path() {
        let root = tempfile::tempdir().unwrap();
        let dir = DeviceInfoDir::new(root.path());
        for bad in ["", ".", "..", "../x", "a/b"] {
            assert_eq!(dir.prepare(bad, "ok"), None, "{bad:?}");
            assert_eq!(dir.prepare("ok", bad), None, "{bad:?}");
            assert_eq!(dir.load(bad), None);
        }
    }
}
