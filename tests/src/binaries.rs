//! Where the programs the tests run are, checked once per test process.
//!
//! The tests never skip: a missing binary, plugin or tool, or a non-root user, is a
//! panic that says how to fix the machine.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use multus_host::is_executable;

/// What to do when the built binaries are missing.
const BUILD_HINT: &str = "run `cargo build --workspace --bins` first";
/// What to do when the machine lacks the plugins or tools.
const MACHINE_HINT: &str = "needs root / apt-get install containernetworking-plugins iputils-ping";
/// Where Debian installs the reference plugins.
const DEFAULT_PLUGIN_DIR: &str = "/usr/lib/cni";
/// Reference plugins the tests use as real delegates.
const REQUIRED_PLUGINS: &[&str] = &["bridge", "host-local", "macvlan", "ipvlan"];
/// `PATH` for every process the harness starts (`env_clear` + this).
pub use multus_host::DEFAULT_PATH as SYSTEM_PATH;

/// Absolute paths of everything the tests execute.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The thin plugin under test, `target/<profile>/multus`.
    pub multus: PathBuf,
    /// The recording test plugin, `target/<profile>/cni-recorder`.
    pub recorder: PathBuf,
    /// The auxiliary chain's first plugin, `target/<profile>/passthru`.
    pub passthru: PathBuf,
    /// The reference CNI plugins (`$CNI_PLUGIN_DIR`, else `/usr/lib/cni`).
    pub plugin_dir: PathBuf,
    /// `ip` from iproute2.
    pub ip: PathBuf,
    /// `ping` from iputils.
    pub ping: PathBuf,
}

impl Binaries {
    /// The checked locations; the first call checks the machine and panics with
    /// instructions when something is missing.
    pub fn get() -> &'static Binaries {
        static BINARIES: OnceLock<Binaries> = OnceLock::new();
        BINARIES.get_or_init(Self::locate)
    }

    fn locate() -> Binaries {
        let ip = ip().to_owned();
        let profile_dir = profile_dir();
        let built = |name: &str| {
            let path = profile_dir.join(name);
            if !is_executable(&path) {
                panic!("{} is missing: {BUILD_HINT}", path.display());
            }
            path
        };
        let multus = built("multus");
        let recorder = built("cni-recorder");
        let passthru = built("passthru");
        warn_if_stale(&multus);

        let plugin_dir = plugin_dir();
        require_plugins(REQUIRED_PLUGINS);
        Binaries {
            multus,
            recorder,
            passthru,
            plugin_dir,
            ip,
            ping: tool("ping"),
        }
    }
}

/// `ip` from iproute2, after checking that the tests run as root: what making network
/// namespaces needs, and all that tests needing no built plugin but `multus` check.
pub fn ip() -> &'static Path {
    static IP: OnceLock<PathBuf> = OnceLock::new();
    IP.get_or_init(|| {
        if !nix::unistd::geteuid().is_root() {
            panic!("the integration tests create network namespaces: {MACHINE_HINT}");
        }
        tool("ip")
    })
}

/// The reference CNI plugins' directory: `$CNI_PLUGIN_DIR`, else `/usr/lib/cni`.
pub fn plugin_dir() -> PathBuf {
    std::env::var_os("CNI_PLUGIN_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_PLUGIN_DIR), PathBuf::from)
}

/// `plugins` in [`plugin_dir`], or a panic saying how to install them.
pub fn require_plugins(plugins: &[&str]) -> PathBuf {
    let dir = plugin_dir();
    for plugin in plugins {
        let path = dir.join(plugin);
        if !is_executable(&path) {
            panic!(
                "reference CNI plugin {} is missing: {MACHINE_HINT}",
                path.display()
            );
        }
    }
    dir
}

/// `target/<profile>/<name>`: a binary of the workspace, which cargo builds for the
/// tests of its own package (the others need `cargo build --workspace --bins`).
pub fn built(name: &str) -> PathBuf {
    let path = profile_dir().join(name);
    assert!(path.exists(), "{} is missing: {BUILD_HINT}", path.display());
    path
}

fn tool(name: &str) -> PathBuf {
    find_in_path(name)
        .unwrap_or_else(|| panic!("`{name}` is not installed in {SYSTEM_PATH}: {MACHINE_HINT}"))
}

/// `target/<profile>`, found from the running test executable
/// (`target/<profile>/deps/<test>-<hash>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    let dir = exe.parent().expect("the test executable is in a directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent()
            .expect("deps/ is inside the profile directory")
            .to_owned()
    } else {
        dir.to_owned()
    }
}

/// A built `multus` older than the product sources runs old code: say so on stderr
/// (`cargo test` does not rebuild other packages' binaries).
fn warn_if_stale(multus: &Path) {
    let Some(built) = modified(multus) else {
        return;
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace");
    let newer = ["multus-core/src", "multus-cni/src"]
        .iter()
        .filter_map(|dir| newest_rs(&workspace.join(dir)))
        .any(|source| source > built);
    if newer {
        eprintln!(
            "warning: {} is older than the multus sources: {BUILD_HINT}",
            multus.display()
        );
    }
}

fn newest_rs(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.filter_map(Result::ok) {
        let path = entry.path();
        let time = if path.is_dir() {
            newest_rs(&path)
        } else if path.extension().is_some_and(|e| e == "rs") {
            modified(&path)
        } else {
            None
        };
        newest = newest.max(time);
    }
    newest
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    SYSTEM_PATH
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|path| is_executable(path))
}
