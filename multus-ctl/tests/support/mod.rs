//! The real thick daemon for multus-ctl's tests: `multus-daemon` running inside a node
//! namespace (the workspace harness) on a temporary socket, with file-based networks (no
//! API server), and the other built binaries (`multus-shim`, `multus-node`). A minimal
//! copy of `multus-daemon/tests/support`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use multus_integration_tests::Harness;
use multus_integration_tests::binaries::{Binaries, SYSTEM_PATH};
use multus_shim::SocketClient;
use serde_json::{Value, json};

/// `target/<profile>/<name>`, built by `cargo build --workspace --bins`.
pub fn built(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let mut dir = exe.parent().unwrap().to_owned();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().unwrap().to_owned();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A process that is sent SIGTERM (then SIGKILL) when dropped, its output in a log file.
#[derive(Debug)]
pub struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Start `command` with stdout and stderr going to `log`.
    pub fn spawn(mut command: Command, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Self { child, log }
    }

    /// Send SIGTERM.
    pub fn terminate(&self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    }

    /// Wait for the exit (at most `limit`); the exit code.
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        use wait_timeout::ChildExt;
        self.child
            .wait_timeout(limit)
            .unwrap()
            .map(|s| s.code().unwrap_or(-1))
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.terminate();
        if self.wait(Duration::from_secs(15)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One thick-mode node: a node namespace, and multus-daemon in it once started.
#[derive(Debug)]
pub struct Thick {
    /// Fields drop in order: the daemon first, then the namespaces, then the files.
    pub daemon: Option<Process>,
    /// The node, its directories and a runtime.
    pub h: Harness,
    /// Socket dir, CNI config dir, daemon config and log.
    pub root: tempfile::TempDir,
    /// The daemon configuration written at the next start.
    pub config: Value,
}

impl Thick {
    /// A node; NADs come from the harness' directory (no API server).
    pub fn new() -> Self {
        let h = Harness::new();
        let root = tempfile::Builder::new()
            .prefix("mctl-thick-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(root.path().join("net.d")).unwrap();
        let config = json!({
            "socketDir": root.path().join("run/multus"),
            "daemonSocketDir": root.path().join("run/multus"),
            "cniConfigDir": root.path().join("net.d"),
            "multusAutoconfigDir": root.path().join("net.d"),
            "cniDir": h.dirs.cni_dir(),
            "binDir": h.dirs.bin_dir(),
            "networkAttachmentDir": h.dirs.nad_dir(),
            "logToStderr": true,
            "logLevel": "verbose",
            "maxConcurrentRequests": 4,
            "delegateTimeoutSeconds": 60,
            "daemonReadyTimeoutSeconds": 20,
        });
        Self {
            daemon: None,
            h,
            root,
            config,
        }
    }

    /// The directory of CNI configs (`cniConfigDir` = `multusAutoconfigDir`).
    pub fn net_d(&self) -> PathBuf {
        self.root.path().join("net.d")
    }

    /// The socket directory.
    pub fn socket_dir(&self) -> PathBuf {
        self.root.path().join("run/multus")
    }

    /// The daemon configuration's path.
    pub fn config_path(&self) -> PathBuf {
        self.root.path().join("daemon-config.json")
    }

    /// Set a daemon configuration key (for the next start).
    pub fn set(&mut self, key: &str, value: Value) {
        self.config[key] = value;
    }

    /// Start the daemon inside the node and wait for `/readyz`.
    pub fn start_daemon(&mut self) {
        std::fs::write(self.config_path(), self.config.to_string()).unwrap();
        let mut command = Command::new(&Binaries::get().ip);
        command
            .args(["netns", "exec", self.h.node.name()])
            .arg(built("multus-daemon"))
            .arg("--config")
            .arg(self.config_path())
            .env_clear()
            .env("PATH", SYSTEM_PATH);
        self.daemon = Some(Process::spawn(command, self.root.path().join("daemon.log")));
        let client = SocketClient::new(self.socket_dir().join("multus.sock"))
            .with_timeout(Duration::from_secs(5));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if client.get("/readyz").is_ok_and(|r| r.status == 200) {
                return;
            }
            if let Some(code) = self.daemon.as_mut().and_then(|d| d.wait(Duration::ZERO)) {
                panic!("multus-daemon exited with {code}:\n{}", self.daemon_log());
            }
            assert!(
                Instant::now() < deadline,
                "multus-daemon did not become ready:\n{}",
                self.daemon_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop the daemon with SIGTERM; its exit code.
    pub fn stop_daemon(&mut self) -> i32 {
        let mut daemon = self.daemon.take().expect("no daemon running");
        daemon.terminate();
        daemon
            .wait(Duration::from_secs(60))
            .unwrap_or_else(|| panic!("daemon did not stop:\n{}", daemon.log()))
    }

    /// The daemon's log.
    pub fn daemon_log(&self) -> String {
        self.daemon.as_ref().map(Process::log).unwrap_or_default()
    }

    /// Write a primary CNI config into the CNI config directory (atomically).
    pub fn write_primary(&self, name: &str, bytes: &[u8]) -> PathBuf {
        write_atomically(&self.net_d().join(name), bytes)
    }

    /// Wait (10 s at most) until the config manager has written `name` from the
    /// primary `primary` (the file names it); the file's bytes.
    pub fn wait_generated(&self, name: &str, primary: &Path) -> Vec<u8> {
        let path = self.net_d().join(name);
        let deadline = Instant::now() + Duration::from_secs(10);
        let wanted = primary.display().to_string();
        loop {
            if let Ok(bytes) = std::fs::read(&path)
                && serde_json::from_slice::<Value>(&bytes)
                    .is_ok_and(|doc| doc.to_string().contains(&wanted))
            {
                return bytes;
            }
            assert!(
                Instant::now() < deadline,
                "{} never named {wanted}; now: {:?}\n{}",
                path.display(),
                std::fs::read_to_string(&path),
                self.daemon_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Write `bytes` to `path` atomically (as an admin's tool would replace a config);
/// `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> PathBuf {
    multus_host::atomic::write_atomic(path, bytes, 0o644).unwrap();
    path.to_owned()
}
