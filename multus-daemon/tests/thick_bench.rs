//! Thick-mode figures (never assertions on time): ADD+DEL through the shim and the
//! daemon versus the thin plugin versus the delegates run directly; the shim's size and
//! exec time; the daemon's memory idle with 1k pods and 1k NADs cached and at its peak
//! during a burst of 500 ADDs; Kubernetes API requests per ADD.
//!
//! ```sh
//! cargo build --release --workspace --bins
//! cargo test --release -p multus-daemon --test thick_bench -- --ignored --nocapture
//! ```
//! (root; reference plugins installed.) See docs/benchmarks.md, "Thick mode".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use multus_integration_tests::thick as support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_standin::PODS;
use multus_integration_tests::binaries::{Binaries, SYSTEM_PATH};
use multus_integration_tests::command::output_with_stdin;
use multus_integration_tests::fixtures::{self, Subnet};
use serde_json::{Value, json};
use support::{NODE_NAME, Thick, built, plugin_stdin};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Run `program` with the CNI environment and `stdin`; panics unless it succeeds.
fn exec(
    program: &Path,
    command: &str,
    container: &str,
    netns: &str,
    args: &str,
    path: &str,
    stdin: &[u8],
) {
    let out = output_with_stdin(
        Command::new(program)
            .env_clear()
            .env("PATH", SYSTEM_PATH)
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", container)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_ARGS", args)
            .env("CNI_PATH", path),
        stdin,
    );
    assert!(
        out.status.success(),
        "{} {command} failed: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run `work` on a thread inside the namespace at `netns` (children inherit it).
fn in_netns<T: Send + 'static>(netns: PathBuf, work: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        let file = std::fs::File::open(&netns).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        work()
    })
    .join()
    .unwrap()
}

struct Scenario {
    label: &'static str,
    /// The cluster network's config.
    cluster: Value,
    /// Where its plugin is.
    plugin_dir: PathBuf,
    rounds: usize,
}

/// Median ADD+DEL: (direct, thin, thick).
fn measure(
    thick: &Thick,
    scenario: &Scenario,
    primary: &Path,
    conf: &Value,
) -> (Duration, Duration, Duration) {
    let pod = thick.h.sandbox();
    let netns = pod.netns.path_string();
    let plugin = scenario
        .plugin_dir
        .join(scenario.cluster["type"].as_str().unwrap());
    let cluster = scenario.cluster.to_string().into_bytes();
    let thick_conf = conf.to_string().into_bytes();
    let mut thin_conf = conf.clone();
    thin_conf["type"] = json!("multus");
    thin_conf["clusterNetwork"] = json!(primary);
    let thin_conf = thin_conf.to_string().into_bytes();
    let multus = Binaries::get().multus.clone();
    let shim = built("multus-shim");
    let path = format!(
        "{}:{}",
        scenario.plugin_dir.display(),
        Binaries::get().plugin_dir.display()
    );
    let rounds = scenario.rounds;
    let args = pod.cni_args();
    in_netns(thick.h.node.netns().path(), move || {
        let mut samples = [Vec::new(), Vec::new(), Vec::new()];
        for round in 0..rounds + 2 {
            for (which, (program, stdin)) in [
                (&plugin, &cluster),
                (&multus, &thin_conf),
                (&shim, &thick_conf),
            ]
            .into_iter()
            .enumerate()
            {
                let container = format!("bench{which}x{round}");
                let started = Instant::now();
                exec(program, "ADD", &container, &netns, &args, &path, stdin);
                exec(program, "DEL", &container, &netns, &args, &path, stdin);
                if round >= 2 {
                    samples[which].push(started.elapsed());
                }
            }
        }
        let [direct, thin, thick] = samples;
        (median(direct), median(thin), median(thick))
    })
}

/// Sums of the daemon's request and delegate histograms (every label set). Each request
/// of the benchmark runs one delegate (the cluster network).
#[derive(Clone, Copy, Debug, Default)]
struct DaemonTimes {
    requests: f64,
    request_seconds: f64,
    delegate_seconds: f64,
}

impl DaemonTimes {
    fn read(thick: &Thick) -> Self {
        let page = thick.metrics();
        let total = |name: &str| -> f64 {
            page.lines()
                .filter(|line| {
                    line.strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
                })
                .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        Self {
            requests: total("multus_cni_request_duration_seconds_count"),
            request_seconds: total("multus_cni_request_duration_seconds_sum"),
            delegate_seconds: total("multus_delegate_exec_duration_seconds_sum"),
        }
    }

    fn since(&self, before: &Self) -> Self {
        Self {
            requests: self.requests - before.requests,
            request_seconds: self.request_seconds - before.request_seconds,
            delegate_seconds: self.delegate_seconds - before.delegate_seconds,
        }
    }

    /// One row: the thick call (half the ADD+DEL median) split into the daemon's
    /// request time, its delegate's share, and what is left for the shim and socket.
    fn row(&self, label: &str, thick_add_del: Duration) -> String {
        let call = thick_add_del.as_secs_f64() / 2.0;
        let request = self.request_seconds / self.requests.max(1.0);
        let delegate = self.delegate_seconds / self.requests.max(1.0);
        let ms = |s: f64| format!("{:.2} ms", s * 1000.0);
        format!(
            "| {label} | {} | {} | {} | {} | {} |\n",
            ms(call),
            ms(request),
            ms(delegate),
            ms(request - delegate),
            ms(call - request)
        )
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn thick_mode_figures() {
    let mut report = String::new();
    let bench_dir = built("cni-noop").parent().unwrap().to_owned();

    // 1. ADD+DEL: direct vs thin vs thick.
    // No API here: thin and thick both run the cluster network only.
    let mut thick = Thick::new(false);
    thick.set("logToStderr", json!(false));
    thick.set("logLevel", json!("error"));
    let version = "1.0.0";
    let scenarios = [
        Scenario {
            label: "no-op",
            cluster: json!({"cniVersion": version, "name": "noop", "type": "cni-noop"}),
            plugin_dir: bench_dir.clone(),
            rounds: 60,
        },
        Scenario {
            label: "bridge+host-local",
            cluster: fixtures::bridge_conf(
                version,
                "cluster",
                "mrs-cbr0",
                Subnet::unique(),
                true,
                &thick.h.dirs,
            ),
            plugin_dir: Binaries::get().plugin_dir.clone(),
            rounds: 20,
        },
    ];
    thick.start_daemon();
    let mut breakdown = String::new();
    report.push_str("| cluster network | direct | thin `multus` | thick `multus-shim` + daemon | thin / direct | thick / direct | thick / thin |\n|---|---|---|---|---|---|---|\n");
    for (index, scenario) in scenarios.iter().enumerate() {
        let primary = thick.write_primary(&format!("1{index}-cluster.conf"), &scenario.cluster);
        // The lexically first primary is the one in use: remove the earlier ones.
        for earlier in 0..index {
            let _ = std::fs::remove_file(thick.net_d().join(format!("1{earlier}-cluster.conf")));
        }
        let generated = thick.wait_generated("00-multus.conflist", |d| {
            d["plugins"][0]["clusterNetwork"] == primary.display().to_string()
        });
        let conf = plugin_stdin(&generated);
        let before = DaemonTimes::read(&thick);
        let (direct, thin, thick_time) = measure(&thick, scenario, &primary, &conf);
        breakdown.push_str(
            &DaemonTimes::read(&thick)
                .since(&before)
                .row(scenario.label, thick_time),
        );
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        report.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} |\n",
            scenario.label,
            ms(direct),
            ms(thin),
            ms(thick_time),
            ratio(thin, direct),
            ratio(thick_time, direct),
            ratio(thick_time, thin)
        ));
    }
    drop(thick);
    report.push_str(&format!(
        "\nWhere a thick call's time goes (means from the daemon's own histograms over the same rounds; the call is half the ADD+DEL median):\n\n| cluster network | thick call | daemon, per request | of which the delegate | daemon's own work | shim exec and socket |\n|---|---|---|---|---|---|\n{breakdown}"
    ));

    // 2. The shim: size and exec time (VERSION is answered without the daemon).
    let shim = built("multus-shim");
    let size = std::fs::metadata(&shim).unwrap().len();
    let time_of = |program: &Path, args: &[&str]| {
        let samples: Vec<Duration> = (0..200)
            .map(|_| {
                let started = Instant::now();
                let status = Command::new(program)
                    .args(args)
                    .env_clear()
                    .env("CNI_COMMAND", "VERSION")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .status()
                    .unwrap();
                assert!(status.success());
                started.elapsed()
            })
            .collect();
        median(samples)
    };
    let shim_time = time_of(&shim, &[]);
    let true_time = time_of(Path::new("/bin/true"), &[]);
    report.push_str(&format!(
        "\nmultus-shim binary: {:.0} KiB (release, stripped); exec of `VERSION`: median {} (`/bin/true`: {})\n",
        size as f64 / 1024.0,
        ms(shim_time),
        ms(true_time)
    ));

    // 3. Idle memory with 1k pods on this node and 1k NADs; API requests per ADD.
    let mut thick = Thick::new(true);
    thick.set("logToStderr", json!(false));
    thick.set("logLevel", json!("error"));
    thick.h.dirs.install_recorder("recorder");
    std::fs::copy(
        bench_dir.join("cni-noop"),
        thick.h.dirs.bin_dir().join("cni-noop"),
    )
    .unwrap();
    thick.write_primary(
        "10-noop.conf",
        &json!({"cniVersion": version, "name": "noop", "type": "cni-noop"}),
    );
    let nad = json!({"cniVersion": version, "name": "n", "type": "cni-noop"}).to_string();
    for i in 0..1000 {
        thick
            .api()
            .create_nad("default", &format!("nad-{i}"), &nad)
            .unwrap();
        let pod = json!({"apiVersion":"v1","kind":"Pod",
            "metadata":{"name": format!("idle-{i}"), "annotations": {"k8s.v1.cni.cncf.io/networks": format!("nad-{i}")}},
            "spec":{"nodeName": NODE_NAME, "containers":[{"name":"app","image":"pause",
                "env":[{"name":"X","value":"y".repeat(200)}]}]}});
        thick.api().create(&PODS, "default", pod).unwrap();
    }
    thick.start_daemon();
    thick.wait_cached_pods(1000);
    let generated = thick.wait_generated("00-multus.conflist", |_| true);
    let conf = plugin_stdin(&generated);
    std::thread::sleep(Duration::from_secs(2));
    let pid = thick.daemon.as_ref().unwrap().pid();
    let idle = rss_kib(pid);
    // API requests of ADDs of cached pods, each with one NAD.
    thick.api().clear_requests();
    let rounds = 20;
    let netns = thick.h.sandbox().netns.path_string();
    for i in 0..rounds {
        let env = vec![
            ("CNI_COMMAND".to_owned(), "ADD".to_owned()),
            ("CNI_CONTAINERID".to_owned(), format!("api{i}")),
            ("CNI_NETNS".to_owned(), netns.clone()),
            ("CNI_IFNAME".to_owned(), "eth0".to_owned()),
            (
                "CNI_ARGS".to_owned(),
                format!("K8S_POD_NAMESPACE=default;K8S_POD_NAME=idle-{i}"),
            ),
            (
                "CNI_PATH".to_owned(),
                thick.h.dirs.bin_dir().display().to_string(),
            ),
        ];
        let (code, out, _) = support::run_shim(&env, conf.to_string().as_bytes());
        assert_eq!(code, 0, "{out}");
    }
    let records = thick.api().requests();
    let per_add = |f: &dyn Fn(&k8s_standin::RequestRecord) -> bool| {
        records.iter().filter(|r| f(r)).count() as f64 / f64::from(rounds)
    };
    let reads = per_add(&|r| r.verb == "get");
    let status = per_add(&|r| r.verb == "patch");
    let events = per_add(&|r| r.verb == "create" && r.resource.as_deref() == Some("events"));
    report.push_str(&format!(
        "\ndaemon RSS idle with 1000 pods of this node and 1000 NADs cached: {:.1} MiB\nAPI requests per ADD (cluster network + 1 NAD, pod and NAD cached): {reads} reads, {status} status write, {events} events\n",
        idle as f64 / 1024.0
    ));

    // 4. Peak memory during a burst of 500 ADDs (no-op delegate), then their DELs.
    let peak = Arc::new(AtomicU64::new(idle));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut conf_patient = conf.clone();
    conf_patient["daemonReadyTimeoutSeconds"] = json!(300);
    let started = Instant::now();
    let burst = |command: &str| {
        let children: Vec<_> = (0..500)
            .map(|i| {
                let mut child = Command::new(built("multus-shim"))
                    .env_clear()
                    .env("CNI_COMMAND", command)
                    .env("CNI_CONTAINERID", format!("burst{i}"))
                    .env("CNI_NETNS", &netns)
                    .env("CNI_IFNAME", "eth0")
                    .env(
                        "CNI_ARGS",
                        format!("K8S_POD_NAMESPACE=default;K8S_POD_NAME=idle-{i}"),
                    )
                    .env("CNI_PATH", thick.h.dirs.bin_dir())
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(conf_patient.to_string().as_bytes())
                    .unwrap();
                child
            })
            .collect();
        children
            .into_iter()
            .map(|mut c| c.wait().unwrap().success())
            .filter(|ok| *ok)
            .count()
    };
    let added = burst("ADD");
    let add_time = started.elapsed();
    let deleted = burst("DEL");
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let metrics = thick.metrics();
    report.push_str(&format!(
        "burst of 500 concurrent ADDs (cached pods, cluster network + 1 NAD, no-op delegates): {added} succeeded in {:.1} s, then {deleted} DELs; daemon RSS peak {:.1} MiB (idle {:.1} MiB); rejected with 503 and retried by the shims: {}\n",
        add_time.as_secs_f64(),
        peak.load(Ordering::Relaxed) as f64 / 1024.0,
        idle as f64 / 1024.0,
        support::metric_value(&metrics, r#"multus_requests_rejected_total{reason="queue_full"}"#)
    ));
    println!("\n{report}");
}
