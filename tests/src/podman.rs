//! A real podman (Debian's 4.3, CNI backend) run by the test with its own storage, run
//! and CNI config directories under a temp dir, inside the node namespace
//! (`nsenter --net`), so that `multus` is run by podman itself.
//!
//! podman reads only `.conflist` files from its CNI config dir, needs
//! `network_backend = "cni"` and multus' directory in `cni_plugin_dirs`
//! (`containers.conf`, given through `CONTAINERS_CONF`), and passes no Kubernetes
//! namespace and no annotations. Containers run from a local rootfs holding the static
//! busybox (there is no registry). Dropping a [`Podman`] removes every container it
//! made (`podman rm -f`), kills what is left of its processes by PID, and unmounts what
//! it left under its temp dir.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

use crate::binaries::{Binaries, SYSTEM_PATH};
use crate::cri::{processes_naming, tool, unmount_under};
use crate::netns::{Node, Output};

/// The CNI network name the tests give multus' conflist.
pub const NETWORK: &str = "multus-net";

/// A podman of the test's own, in the node namespace.
#[derive(Debug)]
pub struct Podman {
    root: TempDir,
    node: String,
}

impl Podman {
    /// podman with `conf` (a config list named [`NETWORK`]) as its only network and the
    /// built `multus` in its plugin dirs, before the reference plugins.
    pub fn new(node: &Node, conf: &Value) -> Self {
        tool("podman");
        let root = tempfile::Builder::new()
            .prefix("mrs-podman-")
            .tempdir()
            .expect("cannot create podman's temp dir");
        let dir = root.path();
        for sub in [
            "bin",
            "net.d",
            "tmp",
            "rootfs/bin",
            "rootfs/proc",
            "rootfs/sys",
        ] {
            std::fs::create_dir_all(dir.join(sub)).expect("cannot create a podman dir");
        }
        for sub in ["dev", "etc", "tmp"] {
            std::fs::create_dir_all(dir.join("rootfs").join(sub)).expect("cannot create rootfs");
        }
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.exists(),
            "/bin/busybox is missing: run scripts/install-runtimes.sh"
        );
        std::fs::copy(busybox, dir.join("rootfs/bin/busybox")).expect("cannot copy busybox");
        std::os::unix::fs::symlink(&Binaries::get().multus, dir.join("bin/multus"))
            .expect("cannot link multus");
        let d = dir.display();
        let plugins = Binaries::get().plugin_dir.display();
        std::fs::write(
            dir.join("containers.conf"),
            format!(
                "[containers]\ndefault_ulimits = []\n\
                 [network]\nnetwork_backend = \"cni\"\n\
                 cni_plugin_dirs = [\"{d}/bin\", \"{plugins}\"]\n\
                 network_config_dir = \"{d}/net.d\"\n\
                 [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
                 tmp_dir = \"{d}/tmp\"\n"
            ),
        )
        .expect("cannot write containers.conf");
        let this = Self {
            root,
            node: node.netns().path_string(),
        };
        this.write_conf(conf);
        this
    }

    /// Replace multus' config list (`<dir>/multus-net.conflist`).
    pub fn write_conf(&self, conf: &Value) {
        std::fs::write(
            self.root
                .path()
                .join("net.d")
                .join(format!("{NETWORK}.conflist")),
            serde_json::to_vec_pretty(conf).expect("JSON"),
        )
        .expect("cannot write the CNI config");
    }

    /// `podman <args>` in the node namespace with this podman's directories.
    pub fn run(&self, args: &[&str]) -> Output {
        let dir = self.root.path();
        let out = Command::new(tool("nsenter"))
            .arg(format!("--net={}", self.node))
            .arg(tool("podman"))
            .arg("--root")
            .arg(dir.join("root"))
            .arg("--runroot")
            .arg(dir.join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env_clear()
            .env("PATH", SYSTEM_PATH)
            .env("CONTAINERS_CONF", dir.join("containers.conf"))
            .output()
            .expect("cannot run podman");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `podman run -d --name NAME --network multus-net --rootfs ROOTFS busybox sleep`.
    pub fn run_container(&self, name: &str) -> Output {
        let rootfs = self.rootfs();
        self.run(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            NETWORK,
            "--rootfs",
            rootfs.to_str().expect("UTF-8 path"),
            "/bin/busybox",
            "sleep",
            "100000",
        ])
    }

    /// `podman exec NAME busybox <args>`.
    pub fn exec(&self, name: &str, args: &[&str]) -> Output {
        let mut full = vec!["exec", name, "/bin/busybox"];
        full.extend_from_slice(args);
        self.run(&full)
    }

    /// The container's full ID.
    pub fn container_id(&self, name: &str) -> String {
        self.run(&["inspect", "--format", "{{.Id}}", name])
            .expect_success("podman inspect")
            .trim()
            .to_owned()
    }

    /// The container's local rootfs (static busybox).
    pub fn rootfs(&self) -> PathBuf {
        self.root.path().join("rootfs")
    }

    /// PIDs of the running processes that belong to this podman (conmon and the
    /// containers it started name its directories on their command line).
    pub fn processes(&self) -> Vec<u32> {
        processes_naming(&self.root.path().display().to_string())
    }

    /// Assert that no container and no process of this podman is left.
    pub fn assert_nothing_left(&self) {
        let list = self.run(&["ps", "-a", "-q"]).expect_success("podman ps -a");
        assert!(list.trim().is_empty(), "containers left: {list}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.processes().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "podman processes left: {:?}",
                self.processes()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-f", "-a", "-t", "0"]);
        for pid in self.processes() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        unmount_under(self.root.path());
    }
}
