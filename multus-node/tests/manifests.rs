//! The manifests of `deployments/` checked against the code: every document parses
//! into its typed Kubernetes object (and back, so no field is misspelt), every path the
//! daemon configuration and the thin entrypoint use is mounted where the other side of
//! it (the runtime, the shim, the host) looks, every container runs a binary the image
//! has with flags its command line accepts, every container gets Guaranteed QoS, and
//! the Containerfile, the build script and the manifests name the same image and paths.
//! The RBAC rules are compared with the API calls the code makes in `rbac.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser as _;
use k8s_openapi::api::core::v1::Container;
use multus_core::config::MultusConf;
use multus_core::daemon_config::DaemonConfig;
use multus_integration_tests::manifests::{
    CRD, IMAGE, IMAGE_BIN_DIR, Manifest, Object, PER_NODE_IDENTITY, STATUS_POLICY, Source, THICK,
    THIN, deployment, repo,
};
use multus_integration_tests::thick::built;
use multus_node::cli::{Cli, Command as NodeCommand, ProbeTarget};
use serde_json::Value;

/// The binaries the image holds: the build script's list.
fn image_binaries() -> Vec<String> {
    let script = std::fs::read_to_string(repo().join("scripts/build-image.sh")).unwrap();
    let line = script
        .lines()
        .find(|l| l.contains("MULTUS_IMAGE_BINS:-"))
        .expect("the build script's list of binaries");
    let list = line
        .split("MULTUS_IMAGE_BINS:-")
        .nth(1)
        .unwrap()
        .split('}')
        .next()
        .unwrap();
    list.split_whitespace().map(str::to_owned).collect()
}

fn thick() -> Manifest {
    Manifest::load(THICK)
}

fn thin() -> Manifest {
    Manifest::load(THIN)
}

fn daemon_config(manifest: &Manifest) -> (Value, DaemonConfig) {
    let text = manifest.config_map().data.as_ref().unwrap()["daemon-config.json"].clone();
    let raw: Value = serde_json::from_str(&text).unwrap();
    let parsed = DaemonConfig::parse(
        Path::new("/etc/cni/net.d/multus.d/daemon-config.json"),
        text.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("the shipped daemon-config.json is refused: {e}"));
    (raw, parsed)
}

/// Every exec'd command line of a container: its command + args, and its probes'.
fn command_lines(container: &Container) -> Vec<Vec<String>> {
    let mut lines = Vec::new();
    let mut main = container.command.clone().unwrap_or_default();
    main.extend(container.args.clone().unwrap_or_default());
    lines.push(main);
    for probe in [
        &container.startup_probe,
        &container.liveness_probe,
        &container.readiness_probe,
    ]
    .into_iter()
    .flatten()
    {
        let exec = probe.exec.as_ref().expect("probes are exec probes");
        lines.push(exec.command.clone().unwrap_or_default());
    }
    lines
}

#[test]
fn every_document_parses_into_its_kubernetes_type() {
    for name in [THICK, THIN, CRD] {
        let manifest = Manifest::load(name);
        assert!(!manifest.documents.is_empty(), "{name}");
        for (value, _) in &manifest.documents {
            let kind = value["kind"].as_str().unwrap();
            let namespaced = !matches!(
                kind,
                "CustomResourceDefinition" | "ClusterRole" | "ClusterRoleBinding"
            );
            assert_eq!(
                value["metadata"]["namespace"].as_str().is_some(),
                namespaced,
                "{name}: {kind} namespace"
            );
            if namespaced {
                assert_eq!(
                    value["metadata"]["namespace"], "kube-system",
                    "{name}: {kind}"
                );
            }
        }
    }
    let kinds = |m: &Manifest| -> Vec<String> {
        m.documents
            .iter()
            .map(|(v, _)| v["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    let expected = [
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "DaemonSet",
    ];
    assert_eq!(kinds(&thick()), expected);
    assert_eq!(kinds(&thin()), expected);
}

#[test]
fn the_status_policy_applies_to_the_daemonsets_service_account_and_network_status_only() {
    let manifest = Manifest::load(STATUS_POLICY);
    let policy = manifest.policy();
    let spec = policy.spec.as_ref().expect("policy spec");
    let binding = manifest.policy_binding();
    let binding_spec = &binding.spec;
    assert_eq!(
        Some(&binding_spec.policy_name),
        policy.metadata.name.as_ref()
    );
    assert_eq!(binding_spec.validation_actions, ["Deny".to_owned()]);
    // The service account the policy matches is the one both DaemonSets run as.
    for name in [THIN, THICK] {
        let daemon_manifest = Manifest::load(name);
        let account = daemon_manifest.service_account();
        let user = format!(
            "system:serviceaccount:{}:{}",
            account.metadata.namespace.as_deref().unwrap_or_default(),
            account.metadata.name.as_deref().unwrap_or_default()
        );
        let conditions = spec.match_conditions.as_deref().unwrap_or_default();
        assert!(
            conditions.iter().any(|c| c.expression.contains(&user)),
            "{name}: the policy does not match {user}"
        );
    }
    let rules = spec
        .match_constraints
        .as_ref()
        .and_then(|c| c.resource_rules.as_deref())
        .unwrap_or_default();
    assert!(
        rules
            .iter()
            .any(|r| r.resources.as_deref() == Some(&["pods/status".to_owned()][..])),
        "the policy does not cover pods/status"
    );
    let expressions: Vec<&str> = spec
        .validations
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|v| v.expression.as_str())
        .collect();
    let all = expressions.join("\n");
    assert!(
        all.contains(multus_core::nad::NETWORK_STATUS_ANNOTATION),
        "{all}"
    );
    assert!(
        all.contains("authentication.kubernetes.io/node-name") || {
            let variables = spec.variables.as_deref().unwrap_or_default();
            variables.iter().any(|v| {
                v.expression
                    .contains("authentication.kubernetes.io/node-name")
            })
        }
    );
    assert!(all.contains("object.spec.nodeName"), "{all}");
}

#[test]
fn the_crd_is_upstreams_and_the_same_in_every_manifest() {
    let standalone = Manifest::load(CRD);
    let crd = standalone.crd();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("network-attachment-definitions.k8s.cni.cncf.io")
    );
    assert_eq!(crd.spec.group, "k8s.cni.cncf.io");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.kind, "NetworkAttachmentDefinition");
    assert_eq!(crd.spec.names.plural, "network-attachment-definitions");
    assert_eq!(
        crd.spec.names.singular.as_deref(),
        Some("network-attachment-definition")
    );
    let short: BTreeSet<&str> = crd
        .spec
        .names
        .short_names
        .iter()
        .flatten()
        .map(String::as_str)
        .collect();
    assert_eq!(short, BTreeSet::from(["nad", "net-attach-def"]));
    assert_eq!(crd.spec.versions.len(), 1);
    let v1 = &crd.spec.versions[0];
    assert!(v1.name == "v1" && v1.served && v1.storage);
    let schema = v1
        .schema
        .as_ref()
        .unwrap()
        .open_api_v3_schema
        .as_ref()
        .unwrap();
    let spec = &schema.properties.as_ref().unwrap()["spec"];
    let config = &spec.properties.as_ref().unwrap()["config"];
    assert_eq!(config.type_.as_deref(), Some("string"));
    for manifest in [thick(), thin()] {
        assert_eq!(
            manifest.crd(),
            crd,
            "{}: the embedded CRD differs",
            manifest.name
        );
    }
}

#[test]
fn rbac_has_no_wildcard_and_binds_the_daemonsets_service_account() {
    for manifest in [thick(), thin()] {
        let role = manifest.cluster_role();
        for rule in role.rules.iter().flatten() {
            for list in [
                rule.api_groups.as_ref(),
                rule.resources.as_ref(),
                Some(&rule.verbs),
                rule.resource_names.as_ref(),
                rule.non_resource_urls.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                assert!(
                    !list.iter().any(|v| v.contains('*')),
                    "{}: wildcard in {rule:?}",
                    manifest.name
                );
            }
            assert!(rule.non_resource_urls.is_none());
        }
        let binding = manifest.binding();
        assert_eq!(binding.role_ref.kind, "ClusterRole");
        assert_eq!(Some(&binding.role_ref.name), role.metadata.name.as_ref());
        let subject = &binding.subjects.as_ref().unwrap()[0];
        let sa = manifest.service_account();
        assert_eq!(subject.kind, "ServiceAccount");
        assert_eq!(Some(&subject.name), sa.metadata.name.as_ref());
        assert_eq!(subject.namespace, sa.metadata.namespace);
        let pod = manifest.daemon_set().spec.template.spec.as_ref().unwrap();
        assert_eq!(pod.service_account_name, sa.metadata.name);
        assert_ne!(pod.automount_service_account_token, Some(false));
    }
}

#[test]
fn upstream_names_selector_and_config_keys_are_kept() {
    for (manifest, config_map, key) in [
        (thick(), "multus-daemon-config", "daemon-config.json"),
        (thin(), "multus-cni-config", "cni-conf.json"),
    ] {
        let ds = manifest.daemon_set();
        assert_eq!(ds.metadata.name.as_deref(), Some("kube-multus-ds"));
        let selector = ds.spec.selector.match_labels.clone().unwrap();
        // The selector is immutable: applying over upstream's DaemonSet needs the same.
        assert_eq!(
            selector.into_iter().collect::<Vec<_>>(),
            vec![("name".to_owned(), "multus".to_owned())]
        );
        assert_eq!(
            manifest.service_account().metadata.name.as_deref(),
            Some("multus")
        );
        assert_eq!(
            manifest.cluster_role().metadata.name.as_deref(),
            Some("multus")
        );
        let cm = manifest.config_map();
        assert_eq!(cm.metadata.name.as_deref(), Some(config_map));
        assert!(
            cm.data.as_ref().unwrap().contains_key(key),
            "{}",
            manifest.name
        );
    }
    // Both ConfigMaps hold configurations our code accepts.
    let (_, config) = daemon_config(&thick());
    assert_eq!(config.chroot_dir.as_deref(), Some(Path::new("/hostroot")));
    let thin_conf = thin().config_map().data.as_ref().unwrap()["cni-conf.json"].clone();
    let conf = MultusConf::parse(thin_conf.as_bytes()).unwrap();
    assert_eq!(conf.plugin_type, "multus");
    assert_eq!(
        conf.kubeconfig.as_deref(),
        Some(Path::new("/etc/cni/net.d/multus.d/multus.kubeconfig"))
    );
}

#[test]
fn every_container_runs_an_image_binary_with_flags_its_command_line_accepts() {
    let binaries = image_binaries();
    assert_eq!(
        binaries,
        [
            "multus",
            "multus-shim",
            "multus-daemon",
            "multus-node",
            "multus-ctl",
            "passthru"
        ]
    );
    for manifest in [thick(), thin()] {
        for container in manifest.containers() {
            assert_eq!(
                container.image.as_deref(),
                Some(IMAGE),
                "{}: {}",
                manifest.name,
                container.name
            );
            assert!(
                container.args.iter().flatten().all(|a| !a.contains(' ')),
                "one flag per item"
            );
            for line in command_lines(container) {
                let program = Path::new(&line[0]);
                assert_eq!(
                    program.parent(),
                    Some(Path::new(IMAGE_BIN_DIR)),
                    "{}: {line:?} is not a binary of the image",
                    manifest.name
                );
                let name = program.file_name().unwrap().to_str().unwrap();
                assert!(
                    binaries.iter().any(|b| b == name),
                    "{name} is not in the image"
                );
                match name {
                    "multus-node" => {
                        let cli = Cli::try_parse_from(&line).unwrap_or_else(|e| {
                            panic!("{}: {line:?} is refused by multus-node: {e}", manifest.name)
                        });
                        check_node_paths(&manifest, container, &cli);
                    }
                    "multus-daemon" => {
                        // The daemon stops at --help only after accepting what precedes it.
                        let out = Command::new(built("multus-daemon"))
                            .args(&line[1..])
                            .arg("--help")
                            .output()
                            .unwrap();
                        assert!(
                            out.status.success(),
                            "{}: {line:?} is refused by multus-daemon: {}",
                            manifest.name,
                            String::from_utf8_lossy(&out.stderr)
                        );
                    }
                    other => panic!("{}: unexpected program {other}", manifest.name),
                }
            }
        }
    }
}

/// The paths a multus-node command line names are mounted (container paths) and
/// agree with where the host's side looks.
fn check_node_paths(manifest: &Manifest, container: &Container, cli: &Cli) {
    let host = |path: &Path| {
        manifest.host_path_of(container, path).unwrap_or_else(|| {
            panic!(
                "{}: {} of container {} is not on a hostPath mount",
                manifest.name,
                path.display(),
                container.name
            )
        })
    };
    match &cli.command {
        NodeCommand::Install(args) => {
            assert_eq!(host(&args.dest), PathBuf::from("/opt/cni/bin"));
            assert_eq!(args.source_dir, Path::new(IMAGE_BIN_DIR));
        }
        NodeCommand::ThinEntrypoint(args) => {
            assert_eq!(host(&args.cni_conf_dir), PathBuf::from("/etc/cni/net.d"));
            assert_eq!(
                host(&args.multus_autoconfig_dir),
                PathBuf::from("/etc/cni/net.d")
            );
            assert_eq!(host(&args.cni_bin_dir), PathBuf::from("/opt/cni/bin"));
            // What goes into 00-multus.conf is a host path: the one the mount gives.
            let conf_dir = host(&args.multus_cni_conf_dir);
            assert_eq!(
                multus_node::thin::host_path(&args.host_prefix, &args.multus_cni_conf_dir),
                conf_dir,
                "confDir written into the configuration"
            );
            assert_eq!(
                host(&args.cni_conf_dir.join("multus.d/multus.kubeconfig")),
                args.multus_kubeconfig_file_host,
                "the kubeconfig's host path"
            );
            // --per-node-certificate needs only the flag: its certificate directory is
            // a host directory, and the kubeconfig names the certificate as the host sees it.
            let cert_dir = host(&args.cert_dir);
            assert_eq!(cert_dir, PathBuf::from("/etc/cni/multus/certs"));
            assert_eq!(
                multus_node::thin::host_path(&args.host_prefix, &args.cert_dir),
                cert_dir,
                "the certificate's host path in the kubeconfig"
            );
            assert!(args.multus_bin_file.starts_with(IMAGE_BIN_DIR));
            assert_eq!(args.multus_bin_file.file_name().unwrap(), "multus");
            // The static configuration the ConfigMap offers is mounted too.
            let (mount, source) = manifest
                .mount_of(container, Path::new("/tmp/multus-conf/70-multus.conf"))
                .expect("the ConfigMap mount");
            assert_eq!(mount, Path::new("/tmp/multus-conf"));
            assert_eq!(source, Source::ConfigMap("multus-cni-config".to_owned()));
        }
        NodeCommand::Probe(probe) => match &probe.target {
            ProbeTarget::Daemon { socket, .. } => {
                let (_, config) = daemon_config(manifest);
                assert_eq!(
                    socket,
                    &config.socket_dir.join("multus.sock"),
                    "the probe asks the daemon's socket"
                );
                host(socket);
            }
            ProbeTarget::Thin {
                cni_conf_dir,
                multus_conf_file,
            } => {
                let main = manifest.container("kube-multus");
                let mut line = main.command.clone().unwrap();
                line.extend(main.args.clone().unwrap());
                let Ok(Cli {
                    command: NodeCommand::ThinEntrypoint(entry),
                }) = Cli::try_parse_from(&line)
                else {
                    panic!("the thin container runs thin-entrypoint");
                };
                assert_eq!(cni_conf_dir, &entry.cni_conf_dir);
                assert_eq!(multus_conf_file, &entry.multus_conf_file);
            }
        },
    }
}

#[test]
fn daemon_config_paths_are_mounted_where_the_other_side_looks() {
    let manifest = thick();
    let daemon = manifest.container("kube-multus");
    let (raw, config) = daemon_config(&manifest);
    // The multus keys of the overlay, with the plugin's defaults (cniDir, confDir).
    let mut overlay = raw.as_object().unwrap().clone();
    overlay.insert("delegates".into(), serde_json::json!([{"type": "x"}]));
    let multus = MultusConf::parse(&serde_json::to_vec(&overlay).unwrap()).unwrap();
    let host = |path: &Path| {
        manifest.host_path_of(daemon, path).unwrap_or_else(|| {
            panic!(
                "{} is not on a hostPath mount of the daemon",
                path.display()
            )
        })
    };
    // The socket is where the shim looks (its default daemonSocketDir, a host path).
    assert_eq!(
        host(&config.socket_dir),
        PathBuf::from(multus_shim::api::DEFAULT_SOCKET_DIR.trim_end_matches('/'))
    );
    // 00-multus.conf goes where the runtime reads, the primary is read from there.
    assert_eq!(
        host(&config.cni_config_dir),
        PathBuf::from("/etc/cni/net.d")
    );
    assert_eq!(
        host(&config.autoconfig_dir),
        PathBuf::from("/etc/cni/net.d")
    );
    // Delegates run chroot'ed in the host's root.
    assert_eq!(
        host(config.chroot_dir.as_deref().unwrap()),
        PathBuf::from("/")
    );
    // Paths the daemon itself opens: same path inside and on the host.
    for (what, path) in [
        ("binDir", config.bin_dir.clone()),
        ("cniDir", multus.cni_dir.clone()),
        ("confDir", multus.conf_dir.clone()),
        ("podResourcesSocket", multus.pod_resources_socket.clone()),
        ("deviceCheckpointFile", multus.device_checkpoint.clone()),
        ("deviceInfoDir", multus.device_info_dir.clone()),
    ] {
        assert_eq!(host(&path), path, "{what}");
    }
    for (what, path) in [
        ("logFile", config.log_file.clone()),
        (
            "readinessindicatorfile",
            config.readiness_indicator_file.clone(),
        ),
        ("kubeconfig", config.kubeconfig.clone()),
        (
            "networkAttachmentDir",
            config.network_attachment_dir.clone(),
        ),
    ] {
        if let Some(path) = path {
            assert!(
                manifest.mount_of(daemon, &path).is_some(),
                "{what} {path:?} not mounted"
            );
        }
    }
    // Network namespaces by either path runtimes pass, visible as they come and go.
    for netns in ["/run/netns/cni-1", "/var/run/netns/cni-1"] {
        assert_eq!(host(Path::new(netns)), PathBuf::from("/run/netns/cni-1"));
        let mount = daemon
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| Path::new(netns).starts_with(&m.mount_path))
            .unwrap();
        assert_eq!(mount.mount_propagation.as_deref(), Some("HostToContainer"));
    }
    // The configuration itself, at the path the daemon is started with.
    let config_path = Path::new("/etc/cni/net.d/multus.d/daemon-config.json");
    let args = daemon.args.clone().unwrap_or_default();
    assert!(
        args.iter()
            .any(|a| a == "--config=/etc/cni/net.d/multus.d/daemon-config.json")
    );
    assert_eq!(
        manifest.mount_of(daemon, config_path).map(|(_, s)| s),
        Some(Source::ConfigMap("multus-daemon-config".to_owned()))
    );
    // The init container installs the shim where the runtime finds plugins.
    let init = manifest.container("install-multus-shim");
    let line = command_lines(init).remove(0);
    assert!(line.iter().any(|a| a == "--type=thick"), "{line:?}");
}

#[test]
fn every_container_has_guaranteed_qos_and_the_node_name() {
    for manifest in [thick(), thin()] {
        for container in manifest.containers() {
            let resources = container.resources.as_ref().unwrap_or_else(|| {
                panic!("{}: {} has no resources", manifest.name, container.name)
            });
            let requests = resources.requests.clone().unwrap();
            let limits = resources.limits.clone().unwrap();
            assert_eq!(requests, limits, "{}: {}", manifest.name, container.name);
            assert!(
                limits.contains_key("cpu") && limits.contains_key("memory"),
                "{}: {}",
                manifest.name,
                container.name
            );
        }
        let main = manifest.container("kube-multus");
        let node = main
            .env
            .iter()
            .flatten()
            .find(|e| e.name == "MULTUS_NODE_NAME")
            .expect("MULTUS_NODE_NAME");
        let field = node
            .value_from
            .as_ref()
            .unwrap()
            .field_ref
            .as_ref()
            .unwrap();
        assert_eq!(field.field_path, "spec.nodeName");
        assert!(main.readiness_probe.is_some(), "{}", manifest.name);

        let spec = manifest.daemon_set().spec.clone();
        assert_eq!(
            spec.update_strategy.unwrap().type_.as_deref(),
            Some("RollingUpdate")
        );
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.host_network, Some(true));
        let tolerations = pod.tolerations.unwrap();
        for effect in ["NoSchedule", "NoExecute"] {
            assert!(
                tolerations
                    .iter()
                    .any(|t| t.operator.as_deref() == Some("Exists")
                        && t.effect.as_deref() == Some(effect)),
                "{}: tolerates {effect}",
                manifest.name
            );
        }
    }
    let thick = thick();
    let daemon = thick.container("kube-multus");
    assert!(daemon.liveness_probe.is_some() && daemon.startup_probe.is_some());
    let probe_path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref()
            .unwrap()
            .exec
            .as_ref()
            .unwrap()
            .command
            .clone()
            .unwrap()
            .join(" ")
    };
    assert!(probe_path(&daemon.liveness_probe).contains("--path=/healthz"));
    assert!(probe_path(&daemon.readiness_probe).contains("--path=/readyz"));
}

#[test]
fn the_containerfile_and_the_build_script_agree_with_the_manifests() {
    let containerfile = std::fs::read_to_string(deployment("Containerfile")).unwrap();
    let instructions: Vec<&str> = containerfile
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .filter(|l| !l.starts_with(' '))
        .collect();
    assert_eq!(instructions.first(), Some(&"FROM scratch"), "no base image");
    assert!(
        instructions.contains(&format!("COPY bin/ {IMAGE_BIN_DIR}/").as_str()),
        "{instructions:?}"
    );
    assert!(instructions.contains(&"USER 0:0"));
    assert!(instructions.contains(&format!("ENV PATH={IMAGE_BIN_DIR}").as_str()));
    let entrypoint = format!("ENTRYPOINT [\"{IMAGE_BIN_DIR}/multus-daemon\"]");
    assert!(
        instructions.contains(&entrypoint.as_str()),
        "{instructions:?}"
    );
    assert!(
        !containerfile.contains("RUN "),
        "nothing runs at build time: there is no shell"
    );
    // Every binary is documented in the Containerfile.
    for binary in image_binaries() {
        assert!(
            containerfile.contains(&format!("#   {binary} ")),
            "{binary} undocumented"
        );
    }
    let script = std::fs::read_to_string(repo().join("scripts/build-image.sh")).unwrap();
    assert!(script.contains(&format!("image=${{MULTUS_IMAGE:-{IMAGE}}}")));
    assert_eq!(multus_node::install::IMAGE_BIN_DIR, IMAGE_BIN_DIR);
    let defaults = Cli::try_parse_from(["multus-node", "thin-entrypoint"]).unwrap();
    let NodeCommand::ThinEntrypoint(args) = defaults.command else {
        panic!()
    };
    assert_eq!(
        args.multus_bin_file,
        Path::new(IMAGE_BIN_DIR).join("multus")
    );
    // The docs name the same image.
    for doc in ["README.md", "docs/how-to/install.md"] {
        let text = std::fs::read_to_string(repo().join(doc)).unwrap();
        assert!(text.contains(IMAGE), "{doc} names the image");
        assert!(
            text.contains("deployments/multus-daemonset-thick.yml"),
            "{doc}"
        );
    }
}

/// Mebibytes of a memory quantity (`256Mi`, `1Gi`).
fn mebibytes(quantity: &str) -> u64 {
    let (number, unit) = quantity.split_at(quantity.find(|c: char| !c.is_ascii_digit()).unwrap());
    let number: u64 = number.parse().unwrap();
    match unit {
        "Mi" => number,
        "Gi" => number * 1024,
        other => panic!("unexpected memory unit {other:?} in {quantity}"),
    }
}

/// The sizing arithmetic of docs/benchmarks.md ("DaemonSet sizing") holds for the
/// shipped values: the thick daemon's memory limit covers its own footprint plus the
/// delegates of `maxConcurrentRequests` requests at once.
#[test]
fn memory_limits_cover_the_measured_footprint() {
    const DAEMON_BASELINE_MIB: u64 = 64;
    const PER_REQUEST_MIB: u64 = 16;
    const THIN_FOOTPRINT_MIB: u64 = 16;
    let limit = |manifest: &Manifest| {
        let resources = manifest.container("kube-multus").resources.clone().unwrap();
        mebibytes(&resources.limits.unwrap()["memory"].0)
    };
    let thick = thick();
    let (_, config) = daemon_config(&thick);
    let needed = DAEMON_BASELINE_MIB + config.max_concurrent as u64 * PER_REQUEST_MIB;
    assert!(
        limit(&thick) >= needed,
        "maxConcurrentRequests {} needs at least {needed} MiB",
        config.max_concurrent
    );
    assert_eq!(
        config.max_concurrent, 8,
        "the figure docs/benchmarks.md uses"
    );
    assert!(limit(&thin()) >= THIN_FOOTPRINT_MIB);
    let sizing = std::fs::read_to_string(repo().join("docs/benchmarks.md")).unwrap();
    assert!(sizing.contains("## DaemonSet sizing"));
    assert!(sizing.contains(&format!("**Thick: 200m CPU, {}Mi.**", limit(&thick))));
    assert!(sizing.contains(&format!("**Thin: 25m CPU, {}Mi.**", limit(&thin()))));
}

#[test]
fn per_node_identities_get_multus_rules_the_bootstrap_only_csrs_and_the_approver_runs() {
    let manifest = Manifest::load(PER_NODE_IDENTITY);
    let roles: Vec<&k8s_openapi::api::rbac::v1::ClusterRole> = manifest
        .documents
        .iter()
        .filter_map(|(_, o)| match o {
            Object::ClusterRole(r) => Some(r.as_ref()),
            _ => None,
        })
        .collect();
    let bindings: Vec<&k8s_openapi::api::rbac::v1::ClusterRoleBinding> = manifest
        .documents
        .iter()
        .filter_map(|(_, o)| match o {
            Object::ClusterRoleBinding(b) => Some(b.as_ref()),
            _ => None,
        })
        .collect();
    let role = |name: &str| {
        *roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no ClusterRole {name}"))
    };
    let rules = |name: &str| -> BTreeSet<String> {
        role(name)
            .rules
            .iter()
            .flatten()
            .map(|r| {
                assert!(
                    ![r.api_groups.as_ref(), r.resources.as_ref(), Some(&r.verbs)]
                        .into_iter()
                        .flatten()
                        .flatten()
                        .any(|v| v.contains('*')),
                    "wildcard in {name}: {r:?}"
                );
                format!(
                    "{:?} {:?} {:?} {:?}",
                    r.api_groups, r.resources, r.resource_names, r.verbs
                )
            })
            .collect()
    };
    let subject_of = |name: &str| {
        let binding = bindings
            .iter()
            .find(|b| b.metadata.name.as_deref() == Some(name))
            .unwrap();
        assert_eq!(binding.role_ref.name, name);
        binding.subjects.as_ref().unwrap()[0].clone()
    };
    // The node identities (group system:multus) may do what the DaemonSets' account does.
    let daemon_rules: BTreeSet<String> = thick()
        .cluster_role()
        .rules
        .iter()
        .flatten()
        .map(|r| {
            format!(
                "{:?} {:?} {:?} {:?}",
                r.api_groups, r.resources, r.resource_names, r.verbs
            )
        })
        .collect();
    let node_rules = rules("multus-node");
    assert!(node_rules.is_superset(&daemon_rules), "{node_rules:#?}");
    let group = subject_of("multus-node");
    assert_eq!(
        (group.kind.as_str(), group.name.as_str()),
        ("Group", "system:multus")
    );
    // The bootstrap account gets CSRs only.
    assert_eq!(rules("multus-bootstrap").len(), 1);
    let bootstrap = subject_of("multus-bootstrap");
    let account = thick().service_account().clone();
    assert_eq!(Some(&bootstrap.name), account.metadata.name.as_ref());
    assert_eq!(bootstrap.namespace, account.metadata.namespace);
    // The approver: approve for the client signer, update approvals, read nodes.
    let approver_rules = rules("multus-csr-approver")
        .into_iter()
        .collect::<Vec<_>>()
        .join("\n");
    for needed in [
        "signers",
        "kubernetes.io/kube-apiserver-client",
        "approve",
        "certificatesigningrequests/approval",
        "nodes",
    ] {
        assert!(
            approver_rules.contains(needed),
            "{needed}: {approver_rules}"
        );
    }
    let deployment = manifest
        .documents
        .iter()
        .find_map(|(_, o)| match o {
            Object::Deployment(d) => Some(d.as_ref()),
            _ => None,
        })
        .unwrap();
    let pod = deployment.spec.template.spec.as_ref().unwrap();
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some("multus-csr-approver")
    );
    let container = &pod.containers[0];
    assert_eq!(container.image.as_deref(), Some(IMAGE));
    let command = container.command.as_ref().unwrap();
    assert_eq!(command, &[format!("{IMAGE_BIN_DIR}/multus-daemon")]);
    assert!(image_binaries().contains(&"multus-daemon".to_owned()));
    // Its flags are the ones `multus-daemon approve-csrs` accepts.
    let args = container.args.as_ref().unwrap();
    assert_eq!(args[0], "approve-csrs");
    let output = Command::new(built("multus-daemon"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let requests = container.resources.as_ref().unwrap();
    assert_eq!(requests.requests, requests.limits, "Guaranteed QoS");
}
