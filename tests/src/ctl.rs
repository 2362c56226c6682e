//! What the multus-ctl tests share: the built `multus-ctl` run with a clean
//! environment, a work directory laid out from its fixtures (`multus-ctl/tests/fixtures`),
//! and tables made comparable in snapshots.

use std::path::{Path, PathBuf};

use crate::binaries::built;
use crate::command::{Output, run_in};
use crate::fixtures::{copy_tree, write_script};

/// The built `multus-ctl` (cargo builds it for multus-ctl's own tests).
pub fn ctl_binary() -> PathBuf {
    built("multus-ctl")
}

/// Run multus-ctl in `cwd`.
pub fn ctl(cwd: &Path, args: &[&str]) -> Output {
    run_in(&ctl_binary(), cwd, args, &[])
}

/// multus-ctl's fixtures directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .join("multus-ctl/tests/fixtures")
}

/// A fake CNI plugin that answers VERSION with the versions 0.3.0 to 1.0.0.
pub const VERSION_PLUGIN: &str = r#"if [ "$CNI_COMMAND" = VERSION ]; then
  echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}'
  exit 0
fi
echo '{"cniVersion":"1.0.0","code":4,"msg":"fake plugin: VERSION only"}'
exit 1"#;

/// A work directory laid out from the fixtures: `multus.conf`, `nads/`, `confdir/`,
/// `cni/sandboxes/` (the fixture records) and `bin/` (fake plugins: bridge, macvlan,
/// tuning, ptp, host-local that answer VERSION, and `mute`, which answers nonsense).
pub fn workdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("mctl-").tempdir().unwrap();
    let root = dir.path();
    let fixtures = fixtures();
    std::fs::copy(fixtures.join("multus.conf"), root.join("multus.conf")).unwrap();
    copy_tree(&fixtures.join("nads"), &root.join("nads"));
    copy_tree(&fixtures.join("confdir"), &root.join("confdir"));
    copy_tree(&fixtures.join("sandboxes"), &root.join("cni/sandboxes"));
    // A sandbox upstream Go Multus attached (its caches), and a DEL's note of unknown
    // attachments.
    copy_tree(&fixtures.join("upstream"), &root.join("cni"));
    copy_tree(&fixtures.join("unknown"), &root.join("cni/unknown"));
    std::fs::create_dir_all(root.join("bin")).unwrap();
    for plugin in ["bridge", "macvlan", "tuning", "ptp", "host-local"] {
        write_script(&root.join("bin").join(plugin), VERSION_PLUGIN);
    }
    write_script(&root.join("bin/mute"), "echo 'not json'");
    dir
}

/// A table with its padding and rules collapsed (runs of spaces and of `─`/`═` become
/// one), so that values of varying length (paths, ports, PIDs) do not move the columns of
/// a snapshot.
pub fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last: Option<char> = None;
    for c in text.chars() {
        if matches!(c, ' ' | '─' | '═') && last == Some(c) {
            continue;
        }
        out.push(c);
        last = Some(c);
    }
    out
}
