//! `multus-node thin-entrypoint` as the thin DaemonSet runs it, against temporary
//! directories standing in for the host's `/etc/cni/net.d`, `/opt/cni/bin` and the
//! pod's projected service-account volume (laid out as the kubelet lays it out: `token`
//! and `ca.crt` are symlinks through `..data`, swapped atomically on rotation).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use k8s_standin::{Options, StandIn};
use serde_json::{Value, json};

const NODE: &str = env!("CARGO_BIN_EXE_multus-node");
const FLANNEL: &str = r#"{"name":"cbr0","cniVersion":"0.3.1","plugins":[
  {"type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}},
  {"type":"portmap","capabilities":{"portMappings":true}}]}"#;

/// A fake node: host directories under `<tmp>/host`, a service-account volume, an image
/// directory with a `multus` binary.
struct Host {
    tmp: tempfile::TempDir,
    generation: AtomicU32,
}

impl Host {
    fn new() -> Self {
        let host = Self {
            tmp: tempfile::tempdir().unwrap(),
            generation: AtomicU32::new(0),
        };
        std::fs::create_dir_all(host.conf_dir()).unwrap();
        std::fs::create_dir_all(host.bin_dir()).unwrap();
        std::fs::create_dir_all(host.tmp.path().join("image")).unwrap();
        std::fs::copy("/bin/true", host.image_multus()).unwrap();
        std::fs::create_dir_all(host.sa_dir()).unwrap();
        host.write_service_account("token-1", "-----BEGIN CERTIFICATE-----\nCA1\n");
        host
    }

    fn root(&self) -> PathBuf {
        self.tmp.path().join("host")
    }
    fn conf_dir(&self) -> PathBuf {
        self.root().join("etc/cni/net.d")
    }
    fn bin_dir(&self) -> PathBuf {
        self.root().join("opt/cni/bin")
    }
    fn multus_d(&self) -> PathBuf {
        self.conf_dir().join("multus.d")
    }
    fn sa_dir(&self) -> PathBuf {
        self.tmp.path().join("serviceaccount")
    }
    fn image_multus(&self) -> PathBuf {
        self.tmp.path().join("image/multus")
    }
    fn conf(&self) -> PathBuf {
        self.conf_dir().join("00-multus.conf")
    }
    fn conflist(&self) -> PathBuf {
        self.conf_dir().join("00-multus.conflist")
    }

    /// Write the service account as the kubelet's atomic writer does: a new timestamped
    /// directory, then the `..data` symlink swapped by rename.
    fn write_service_account(&self, token: &str, ca: &str) {
        let n = self.generation.fetch_add(1, Ordering::Relaxed);
        let sa = self.sa_dir();
        let data = format!("..2026_01_01_00_00_{n:02}.{}", std::process::id());
        std::fs::create_dir(sa.join(&data)).unwrap();
        std::fs::write(sa.join(&data).join("token"), token).unwrap();
        std::fs::write(sa.join(&data).join("ca.crt"), ca).unwrap();
        std::fs::write(sa.join(&data).join("namespace"), "kube-system").unwrap();
        let old = std::fs::read_link(sa.join("..data")).ok();
        let _ = std::fs::remove_file(sa.join("..data_tmp"));
        std::os::unix::fs::symlink(&data, sa.join("..data_tmp")).unwrap();
        std::fs::rename(sa.join("..data_tmp"), sa.join("..data")).unwrap();
        for name in ["token", "ca.crt", "namespace"] {
            if std::fs::symlink_metadata(sa.join(name)).is_err() {
                std::os::unix::fs::symlink(format!("..data/{name}"), sa.join(name)).unwrap();
            }
        }
        if let Some(old) = old {
            std::fs::remove_dir_all(sa.join(old)).unwrap();
        }
    }

    fn write_primary(&self, name: &str, text: &str) {
        let path = self.conf_dir().join(name);
        let tmp = self.conf_dir().join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(tmp, path).unwrap();
    }

    fn args(&self) -> Vec<String> {
        let path = |p: PathBuf| p.display().to_string();
        vec![
            "thin-entrypoint".into(),
            format!("--cni-bin-dir={}", path(self.bin_dir())),
            format!("--cni-conf-dir={}", path(self.conf_dir())),
            format!("--multus-autoconfig-dir={}", path(self.conf_dir())),
            format!(
                "--multus-cni-conf-dir={}",
                path(self.root().join("etc/cni/multus/net.d"))
            ),
            format!("--multus-bin-file={}", path(self.image_multus())),
            format!("--service-account-dir={}", path(self.sa_dir())),
            format!("--host-prefix={}", path(self.root())),
            "--multus-conf-file=auto".into(),
        ]
    }

    fn command(&self, extra: &[&str]) -> Command {
        let mut command = Command::new(NODE);
        command
            .args(self.args())
            .args(extra)
            .env("KUBERNETES_SERVICE_HOST", "10.96.0.1")
            .env("KUBERNETES_SERVICE_PORT", "443")
            .env_remove("KUBERNETES_SERVICE_PROTOCOL");
        command
    }

    fn spawn(&self, extra: &[&str]) -> Running {
        let log = self.tmp.path().join(format!(
            "entrypoint-{}.log",
            self.generation.fetch_add(1, Ordering::Relaxed)
        ));
        let child = self
            .command(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Running { child, log }
    }

    /// Run to completion (for start-up failures), with a time limit.
    fn run(&self, mut command: Command) -> Output {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                child.kill().unwrap();
                panic!("thin-entrypoint did not exit: it must fail at start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    }

    fn probe(&self) -> Output {
        Command::new(NODE)
            .args(["probe", "thin", "--cni-conf-dir"])
            .arg(self.conf_dir())
            .output()
            .unwrap()
    }

    fn read_json(&self, path: &Path) -> Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }
}

struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Wait until `ready` holds (10 s at most).
    fn wait_until(&mut self, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready() {
            assert!(
                self.alive(),
                "thin-entrypoint exited while waiting for {what}:\n{}",
                self.log()
            );
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn terminate(mut self) -> (i32, String) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap()),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code().unwrap_or(-1), self.log());
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn installs_writes_the_kubeconfig_and_conf_then_follows_token_and_primary_changes() {
    let host = Host::new();
    host.write_primary("10-flannel.conflist", FLANNEL);
    // Poll interval far beyond the test: every change below is seen through notify.
    let mut running = host.spawn(&["--poll-interval-seconds=3600", "--multus-log-level=verbose"]);
    running.wait_until("00-multus.conf", || host.conf().exists());

    // The binary, byte for byte, with the image's mode.
    assert_eq!(
        std::fs::read(host.bin_dir().join("multus")).unwrap(),
        std::fs::read(host.image_multus()).unwrap()
    );
    // The configuration: upstream's thin layout, confDir (not cniConf) as a host path.
    let conf = host.read_json(&host.conf());
    assert_eq!(conf["type"], "multus");
    assert_eq!(conf["name"], "multus-cni-network");
    assert_eq!(conf["cniVersion"], "0.3.1");
    assert_eq!(
        conf["kubeconfig"],
        "/etc/cni/net.d/multus.d/multus.kubeconfig"
    );
    assert_eq!(conf["confDir"], "/etc/cni/multus/net.d");
    assert!(conf.get("cniConf").is_none(), "upstream's key bug is fixed");
    assert_eq!(conf["logLevel"], "verbose");
    assert_eq!(conf["capabilities"], json!({"portMappings": true}));
    let primary: Value = serde_json::from_str(FLANNEL).unwrap();
    assert_eq!(conf["delegates"], json!([primary]));
    assert_eq!(mode(&host.conf()), 0o600);
    assert!(host.root().join("etc/cni/multus/net.d").is_dir());

    // The kubeconfig names the token file as the host sees it.
    let kubeconfig = host.multus_d().join("multus.kubeconfig");
    let token = host.multus_d().join("multus.token");
    let doc: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&kubeconfig).unwrap()).unwrap();
    assert_eq!(
        doc["clusters"][0]["cluster"]["server"],
        "https://10.96.0.1:443"
    );
    assert_eq!(
        doc["users"][0]["user"]["tokenFile"],
        "/etc/cni/net.d/multus.d/multus.token"
    );
    assert_eq!(std::fs::read_to_string(&token).unwrap(), "token-1");
    assert_eq!(mode(&kubeconfig), 0o600);
    assert_eq!(mode(&token), 0o600);
    assert_eq!(mode(&host.multus_d()), 0o700);
    let probe = host.probe();
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );

    // The kubelet rotates the projected token: the token file follows.
    host.write_service_account("token-2", "-----BEGIN CERTIFICATE-----\nCA1\n");
    running.wait_until("the rotated token", || {
        std::fs::read_to_string(&token).unwrap() == "token-2"
    });
    let kubeconfig_before = std::fs::read(&kubeconfig).unwrap();
    // A new CA rewrites the kubeconfig.
    host.write_service_account("token-2", "-----BEGIN CERTIFICATE-----\nCA2\n");
    running.wait_until("the new CA", || {
        std::fs::read(&kubeconfig).unwrap() != kubeconfig_before
    });

    // The primary gains a capability: the configuration follows.
    host.write_primary(
        "10-flannel.conflist",
        &FLANNEL.replace(
            r#""type":"flannel","#,
            r#""type":"flannel","capabilities":{"bandwidth":true},"#,
        ),
    );
    running.wait_until("the bandwidth capability", || {
        host.read_json(&host.conf())["capabilities"]["bandwidth"] == true
    });
    // A CNI 1.0 primary: a config list replaces the single config.
    host.write_primary("10-flannel.conflist", &FLANNEL.replace("0.3.1", "1.0.0"));
    running.wait_until("00-multus.conflist", || {
        host.conflist().exists() && !host.conf().exists()
    });
    let list = host.read_json(&host.conflist());
    assert_eq!(list["cniVersion"], "1.0.0");
    assert_eq!(list["plugins"][0]["type"], "multus");
    assert_eq!(list["plugins"][0]["delegates"][0]["cniVersion"], "1.0.0");

    // SIGTERM without --cleanup-config-on-exit: exit 0, the configuration stays (#1527).
    let (code, log) = running.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(host.conflist().exists());
}

#[test]
fn the_kubeconfig_authenticates_before_and_after_a_token_rotation() {
    let api = StandIn::start_with(Options {
        token: "sa-token-1".into(),
        ..Options::default()
    })
    .unwrap();
    api.create_pod("default", "web", &[]);
    let host = Host::new();
    host.write_service_account("sa-token-1", api.ca_pem());
    host.write_primary("10-flannel.conflist", FLANNEL);
    // The host path of the kubeconfig is where the test can read it.
    let kubeconfig = host.multus_d().join("multus.kubeconfig");
    let mut command = host.command(&[
        &format!("--multus-kubeconfig-file-host={}", kubeconfig.display()),
        "--poll-interval-seconds=1",
    ]);
    command
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", api.port().to_string())
        .stderr(Stdio::null());
    let mut running = Running {
        child: command.spawn().unwrap(),
        log: host.tmp.path().join("none"),
    };
    running.wait_until("the configuration", || host.conf().exists());

    let get_pod = || -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let config = kube::Config::from_custom_kubeconfig(
                kube::config::Kubeconfig::read_from(&kubeconfig).map_err(|e| e.to_string())?,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .map_err(|e| e.to_string())?;
            let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;
            let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
                kube::Api::namespaced(client, "default");
            pods.get("web").await.map(|_| ()).map_err(|e| e.to_string())
        })
    };
    get_pod().expect("the generated kubeconfig reaches the API");

    // The API server now accepts only the new token; the kubelet rotates it.
    api.require_token("sa-token-2");
    let refused = get_pod().expect_err("the old token is refused");
    assert!(
        refused.contains("401") || refused.contains("Unauthorized"),
        "{refused}"
    );
    host.write_service_account("sa-token-2", api.ca_pem());
    running.wait_until("a kubeconfig that authenticates again", || {
        get_pod().is_ok()
    });
    let (code, _) = running.terminate();
    assert_eq!(code, 0);
}

#[test]
fn waits_for_the_primary_and_never_writes_an_invalid_configuration() {
    let host = Host::new();
    let mut running = host.spawn(&["--poll-interval-seconds=3600"]);
    running.wait_until("the kubeconfig", || {
        host.multus_d().join("multus.kubeconfig").exists()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(running.alive(), "no primary yet is a wait, not a failure");
    assert!(!host.conf().exists());
    let probe = host.probe();
    assert_eq!(
        probe.status.code(),
        Some(1),
        "not ready without a configuration"
    );
    assert!(String::from_utf8_lossy(&probe.stderr).contains("no multus configuration yet"));

    // A primary being written (invalid for now): nothing is written.
    host.write_primary("10-flannel.conflist", "{\"cniVersion\":");
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        !host.conf().exists(),
        "no configuration from an invalid primary"
    );
    assert!(
        running.log().contains("was not updated"),
        "{}",
        running.log()
    );

    host.write_primary("10-flannel.conflist", FLANNEL);
    running.wait_until("00-multus.conf", || host.conf().exists());
    let good = std::fs::read(host.conf()).unwrap();

    // The primary breaks again: the last good configuration stays.
    host.write_primary("10-flannel.conflist", "");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(std::fs::read(host.conf()).unwrap(), good);
    assert!(running.alive());
    // Someone deletes the configuration: it comes back.
    host.write_primary("10-flannel.conflist", FLANNEL);
    std::fs::remove_file(host.conf()).unwrap();
    running.wait_until("00-multus.conf again", || host.conf().exists());
    let (code, log) = running.terminate();
    assert_eq!(code, 0, "{log}");
}

#[test]
fn cleanup_on_exit_only_when_asked_and_a_renamed_primary_is_restored() {
    let host = Host::new();
    host.write_primary("10-flannel.conflist", FLANNEL);
    let primary = host.conf_dir().join("10-flannel.conflist");
    let renamed = host.conf_dir().join("10-flannel.conflist.old");
    let mut running = host.spawn(&[
        "--cleanup-config-on-exit=true",
        "--rename-conf-file",
        "--poll-interval-seconds=1",
    ]);
    running.wait_until("the renamed primary", || {
        host.conf().exists() && renamed.exists() && !primary.exists()
    });
    // The primary CNI rewrites its file (its DaemonSet restarted): inlined again.
    host.write_primary(
        "10-flannel.conflist",
        &FLANNEL.replace("hairpinMode\":true", "hairpinMode\":false"),
    );
    running.wait_until("the new primary inlined and renamed", || {
        !primary.exists()
            && host.read_json(&host.conf())["delegates"][0]["plugins"][0]["delegate"]["hairpinMode"]
                == false
    });
    let (code, log) = running.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(!host.conf().exists(), "removed on exit when asked");
    assert!(primary.exists() && !renamed.exists(), "the primary is back");
}

#[test]
fn a_given_configuration_file_is_copied_and_checked() {
    let host = Host::new();
    let given = host.tmp.path().join("multus-conf/70-multus.conf");
    std::fs::create_dir_all(given.parent().unwrap()).unwrap();
    let conf = json!({"cniVersion": "0.3.1", "name": "multus-cni-network", "type": "multus",
        "kubeconfig": "/etc/cni/net.d/multus.d/multus.kubeconfig",
        "delegates": [serde_json::from_str::<Value>(FLANNEL).unwrap()]});
    std::fs::write(&given, conf.to_string()).unwrap();
    let flag = format!("--multus-conf-file={}", given.display());
    let mut running = host.spawn(&[&flag, "--poll-interval-seconds=3600"]);
    let target = host.conf_dir().join("70-multus.conf");
    running.wait_until("the copied configuration", || target.exists());
    assert_eq!(host.read_json(&target), conf);
    let probe = Command::new(NODE)
        .args(["probe", "thin", "--cni-conf-dir"])
        .arg(host.conf_dir())
        .arg(&flag)
        .output()
        .unwrap();
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    drop(running);

    // A file that is no multus configuration is refused at start.
    std::fs::write(
        &given,
        r#"{"type":"multus","name":"m","cniVersion":"0.3.1"}"#,
    )
    .unwrap();
    std::fs::remove_file(&target).unwrap();
    let out = host.run(host.command(&[&flag]));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not a usable multus configuration"),
        "{stderr}"
    );
    assert!(!target.exists());
}

#[test]
fn missing_host_paths_and_service_account_fail_at_start_with_a_clear_message() {
    let expect_failure = |host: &Host, command: Command, parts: &[&str]| {
        let out = host.run(command);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        for part in parts {
            assert!(stderr.contains(part), "{part:?} not in: {stderr}");
        }
    };

    let host = Host::new();
    std::fs::remove_dir_all(host.conf_dir()).unwrap();
    let dir = host.conf_dir().display().to_string();
    expect_failure(
        &host,
        host.command(&[]),
        &["CNI conf dir", &dir, "does not exist"],
    );

    let host = Host::new();
    std::fs::remove_dir_all(host.bin_dir()).unwrap();
    let dir = host.bin_dir().display().to_string();
    expect_failure(
        &host,
        host.command(&[]),
        &["CNI bin dir", &dir, "does not exist"],
    );
    // Not needed when the init container installed the binary.
    let mut running = host.spawn(&["--skip-multus-binary-copy"]);
    running.wait_until("the kubeconfig", || {
        host.multus_d().join("multus.kubeconfig").exists()
    });
    drop(running);

    let host = Host::new();
    std::fs::remove_file(host.image_multus()).unwrap();
    let file = host.image_multus().display().to_string();
    expect_failure(&host, host.command(&[]), &[&file, "does not exist"]);

    let host = Host::new();
    std::fs::remove_file(host.sa_dir().join("token")).unwrap();
    expect_failure(&host, host.command(&[]), &["service account", "token"]);

    let host = Host::new();
    let mut command = host.command(&[]);
    command.env_remove("KUBERNETES_SERVICE_HOST");
    expect_failure(&host, command, &["KUBERNETES_SERVICE_HOST"]);

    let host = Host::new();
    expect_failure(
        &host,
        host.command(&["--multus-autoconfig-dir=/nonexistent/multus-node-test"]),
        &["--multus-autoconfig-dir", "does not exist"],
    );

    let host = Host::new();
    expect_failure(
        &host,
        host.command(&["--multus-log-level=loud"]),
        &["--multus-log-level", "debug, verbose, error or panic"],
    );
}

/// `--conflist`: the list form below CNI 1.0 too (podman reads only `.conflist`).
#[test]
fn conflist_flag_writes_the_list_form_for_any_version() {
    let host = Host::new();
    host.write_primary("10-flannel.conflist", FLANNEL);
    let mut running = host.spawn(&["--poll-interval-seconds=3600", "--conflist"]);
    running.wait_until("00-multus.conflist", || host.conflist().exists());
    let doc = host.read_json(&host.conflist());
    assert_ne!(
        doc["cniVersion"], "1.0.0",
        "the point is a pre-1.0 list: {doc:#}"
    );
    assert_eq!(doc["plugins"][0]["type"], "multus", "{doc:#}");
    assert!(doc.get("type").is_none(), "{doc:#}");
    assert!(!host.conf().exists(), "no 00-multus.conf beside it");
    let (code, log) = running.terminate();
    assert_eq!(code, 0, "{log}");
}

/// A pod GET with a fresh client from `kubeconfig`, as each thin plugin call makes one.
fn get_pod_with(kubeconfig: &Path) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let source = multus_cni_source(kubeconfig);
        let client = multus_cni::cluster::kube::connect(&source, Duration::from_secs(5)).await?;
        let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
            kube::Api::namespaced(client, "default");
        pods.get("web").await.map(|_| ()).map_err(|e| e.to_string())
    })
}

fn multus_cni_source(kubeconfig: &Path) -> multus_cni::cluster::kube::ApiSource {
    multus_cni::cluster::kube::ApiSource::Kubeconfig(kubeconfig.to_owned())
}

#[test]
fn per_node_certificate_gives_the_plugin_its_own_rotating_identity_and_no_token() {
    let api = StandIn::start().unwrap();
    api.auto_approve_csrs(true);
    api.create_pod("default", "web", &[]);
    let host = Host::new();
    host.write_service_account("standin-token", api.ca_pem());
    // A token left on the host by the token mode is removed.
    std::fs::create_dir_all(host.multus_d()).unwrap();
    std::fs::write(host.multus_d().join("multus.token"), "old").unwrap();
    host.write_primary("10-flannel.conflist", FLANNEL);
    // Outside --host-prefix, so the kubeconfig's path is this machine's path.
    let cert_dir = host.tmp.path().join("certs");
    let mut command = host.command(&[
        "--per-node-certificate",
        &format!("--certdir={}", cert_dir.display()),
        "--cert-duration=3s",
        "--multus-log-level=verbose",
    ]);
    command
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", api.port().to_string())
        .env("MULTUS_NODE_NAME", "node-a");
    let log = host.tmp.path().join("identity.log");
    let child = command
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut running = Running { child, log };
    let kubeconfig = host.multus_d().join("multus.kubeconfig");
    running.wait_until("the identity's kubeconfig", || {
        std::fs::read_to_string(&kubeconfig).is_ok_and(|t| t.contains("client-certificate"))
    });
    assert!(
        !host.multus_d().join("multus.token").exists(),
        "the token stays off the host"
    );
    let doc: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&kubeconfig).unwrap()).unwrap();
    let cert_file = cert_dir.join("multus-client-current.pem");
    assert_eq!(
        doc["users"][0]["user"]["client-certificate"],
        cert_file.display().to_string()
    );
    assert_eq!(
        doc["users"][0]["user"]["client-key"],
        cert_file.display().to_string()
    );
    assert!(doc["users"][0]["user"].get("tokenFile").is_none());
    assert_eq!(mode(&kubeconfig), 0o600);
    assert_eq!(mode(&cert_file), 0o600);
    assert_eq!(mode(&cert_dir), 0o700);
    assert_eq!(mode(&cert_dir.join("bootstrap.kubeconfig")), 0o600);
    assert!(host.probe().status.success());

    // Every call (a fresh client each time) succeeds across two rotations.
    api.clear_requests();
    let started = Instant::now();
    let mut calls = 0;
    while started.elapsed() < Duration::from_secs(7) {
        get_pod_with(&kubeconfig)
            .unwrap_or_else(|e| panic!("call {calls} failed: {e}\n{}", running.log()));
        calls += 1;
        std::thread::sleep(Duration::from_millis(150));
    }
    assert!(running.alive(), "{}", running.log());
    let users: std::collections::BTreeSet<Option<String>> =
        api.requests().into_iter().map(|r| r.user).collect();
    assert_eq!(
        users.into_iter().collect::<Vec<_>>(),
        [Some("system:multus:node-a".to_owned())]
    );
    let csrs = api.csrs();
    assert!(csrs.len() >= 3, "{} CSRs:\n{}", csrs.len(), running.log());
    // The first with the bootstrap token, the renewals as the node itself.
    assert_eq!(
        csrs[0]["spec"]["username"],
        "system:serviceaccount:kube-system:multus"
    );
    assert!(
        csrs[1..]
            .iter()
            .all(|c| c["spec"]["username"] == "system:multus:node-a")
    );
    assert!(calls > 20);
    let (code, _) = running.terminate();
    assert_eq!(code, 0);
}
