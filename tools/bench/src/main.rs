//! `multus-bench`: median wall time of an ADD+DEL of a pod with a cluster network and
//! 1, 4 and 16 additional networks, through the thin `multus` binary versus the same
//! delegate plugins executed directly as a runtime would, with a no-op delegate and with
//! bridge + host-local. It reports figures; it asserts nothing about time.
//!
//! Then, with bridge + host-local and 16 additional networks, it compares the ADD and the
//! DEL through `multus` attaching one network after the other with parallel attach
//! (`parallelAttach`, at the default limit of one per CPU and at 16), rounds
//! interleaved. `MULTUS_BENCH_ONLY=parallel` runs only that part, `=overhead` only the
//! first.
//!
//! It must run inside a private network and mount namespace (`scripts/bench.sh` sets
//! that up), because it creates bridges and a pod namespace.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NETWORK_COUNTS: [usize; 3] = [1, 4, 16];
const POD_NETNS: &str = "multus-bench-pod";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Delegate {
    Noop,
    Bridge,
}

impl Delegate {
    fn label(self) -> &'static str {
        match self {
            Self::Noop => "no-op",
            Self::Bridge => "bridge+host-local",
        }
    }

    fn iterations(self) -> usize {
        match self {
            Self::Noop => 60,
            Self::Bridge => 20,
        }
    }

    /// The config of network `index` (0 is the cluster network).
    fn config(self, index: usize, state: &Path) -> String {
        match self {
            Self::Noop => {
                format!(r#"{{"cniVersion":"1.0.0","name":"net-{index}","type":"cni-noop"}}"#)
            }
            Self::Bridge => format!(
                r#"{{"cniVersion":"1.0.0","name":"net-{index}","type":"bridge","bridge":"bbr{index}","ipam":{{"type":"host-local","subnet":"10.{}.0.0/24","dataDir":"{}"}}}}"#,
                100 + index,
                state.join("ipam").display()
            ),
        }
    }
}

struct Bench {
    state: PathBuf,
    multus: PathBuf,
    bin_dir: PathBuf,
    plugin_dir: PathBuf,
    counter: usize,
}

struct Row {
    delegate: Delegate,
    networks: usize,
    direct: Duration,
    multus: Duration,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("multus-bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    if std::env::var("MULTUS_BENCH_PRIVATE").as_deref() != Ok("1") {
        return Err("run me through scripts/bench.sh (I need a private node namespace)".into());
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let target = exe.parent().ok_or("no target dir")?.to_path_buf();
    let multus = target.join("multus");
    let noop = target.join("cni-noop");
    for binary in [&multus, &noop] {
        if !binary.exists() {
            return Err(format!(
                "{} is missing: build with cargo build --release",
                binary.display()
            ));
        }
    }
    let plugin_dir =
        PathBuf::from(std::env::var("CNI_PLUGIN_DIR").unwrap_or_else(|_| "/usr/lib/cni".into()));
    let state = std::env::temp_dir().join(format!("multus-bench-{}", std::process::id()));
    let bin_dir = state.join("bin");
    std::fs::create_dir_all(&bin_dir).map_err(|e| e.to_string())?;
    std::os::unix::fs::symlink(&noop, bin_dir.join("cni-noop")).map_err(|e| e.to_string())?;
    sh(&["ip", "link", "set", "lo", "up"])?;
    sh(&["ip", "netns", "add", POD_NETNS])?;

    let mut bench = Bench {
        state: state.clone(),
        multus,
        bin_dir,
        plugin_dir,
        counter: 0,
    };
    let only = std::env::var("MULTUS_BENCH_ONLY").unwrap_or_default();
    let mut rows = Vec::new();
    if only != "parallel" {
        for delegate in [Delegate::Noop, Delegate::Bridge] {
            for networks in NETWORK_COUNTS {
                eprintln!("measuring {} x{networks} ...", delegate.label());
                rows.push(bench.measure(delegate, networks)?);
            }
        }
    }
    let parallel = if only == "overhead" {
        None
    } else {
        eprintln!("measuring parallel attach, bridge+host-local x{PARALLEL_NETWORKS} ...");
        Some(bench.measure_parallel()?)
    };
    let _ = sh(&["ip", "netns", "del", POD_NETNS]);
    let _ = std::fs::remove_dir_all(&state);
    if !rows.is_empty() {
        print!("{}", report(&rows, &bench.multus));
    }
    if let Some(parallel) = parallel {
        print!("{}", parallel.report());
    }
    Ok(())
}

/// Additional networks of the parallel-attach comparison.
const PARALLEL_NETWORKS: usize = 16;
/// Rounds of the parallel-attach comparison.
const PARALLEL_ROUNDS: usize = 10;

/// Medians of ADD and DEL through multus, serial and parallel.
struct ParallelRow {
    cpus: usize,
    /// (label, ADD, DEL) for serial, parallel at the default limit, parallel at 16.
    modes: Vec<(String, Duration, Duration)>,
}

impl ParallelRow {
    fn report(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nParallel attach: cluster network + {PARALLEL_NETWORKS} bridge+host-local networks through multus ({} CPUs; medians of {PARALLEL_ROUNDS} interleaved rounds)\n",
            self.cpus
        );
        let _ = writeln!(
            out,
            "| mode | ADD (ms) | DEL (ms) | ADD speed-up | DEL speed-up |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|");
        let (_, serial_add, serial_del) = self.modes[0].clone();
        for (label, add, del) in &self.modes {
            let _ = writeln!(
                out,
                "| {label} | {:.1} | {:.1} | {:.2}x | {:.2}x |",
                ms(*add),
                ms(*del),
                ms(serial_add) / ms(*add),
                ms(serial_del) / ms(*del)
            );
        }
        out
    }
}

impl Bench {
    /// ADD and DEL through multus of [`PARALLEL_NETWORKS`] bridge networks: serial,
    /// parallel at the default limit (the CPU count), parallel at 16.
    fn measure_parallel(&mut self) -> Result<ParallelRow, String> {
        let (_, conf) = self.setup(Delegate::Bridge, PARALLEL_NETWORKS)?;
        let mut parallel = conf.clone();
        parallel["parallelAttach"] = serde_json::json!(true);
        let mut wide = parallel.clone();
        wide["parallelAttachLimit"] = serde_json::json!(PARALLEL_NETWORKS);
        let modes = [
            ("serial".to_owned(), conf.to_string()),
            ("parallel, limit = CPUs".to_owned(), parallel.to_string()),
            (
                format!("parallel, limit = {PARALLEL_NETWORKS}"),
                wide.to_string(),
            ),
        ];
        let mut samples = vec![(Vec::new(), Vec::new()); modes.len()];
        for round in 0..PARALLEL_ROUNDS + 1 {
            for (index, (_, conf)) in modes.iter().enumerate() {
                let id = self.next_id();
                let started = Instant::now();
                self.cni(&self.multus, "ADD", &id, "eth0", conf)?;
                let add = started.elapsed();
                let started = Instant::now();
                self.cni(&self.multus, "DEL", &id, "eth0", conf)?;
                let del = started.elapsed();
                if round > 0 {
                    samples[index].0.push(add);
                    samples[index].1.push(del);
                }
            }
        }
        Ok(ParallelRow {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            modes: modes
                .into_iter()
                .zip(samples)
                .map(|((label, _), (add, del))| (label, median(add), median(del)))
                .collect(),
        })
    }

    /// The NAD files and the multus configuration of a pod with `networks` additional
    /// networks; the delegate configs, the cluster network's first.
    fn setup(
        &self,
        delegate: Delegate,
        networks: usize,
    ) -> Result<(Vec<String>, serde_json::Value), String> {
        let nads = self
            .state
            .join(format!("nads-{}-{networks}", delegate.label()));
        std::fs::create_dir_all(&nads).map_err(|e| e.to_string())?;
        let configs: Vec<String> = (0..=networks)
            .map(|i| delegate.config(i, &self.state))
            .collect();
        let mut manifest = String::new();
        for (index, config) in configs.iter().enumerate().skip(1) {
            let _ = write!(
                manifest,
                "---\napiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata:\n  name: net-{index}\nspec:\n  config: '{config}'\n"
            );
        }
        std::fs::write(nads.join("nets.yaml"), manifest).map_err(|e| e.to_string())?;
        let names: Vec<String> = (1..=networks).map(|i| format!("net-{i}")).collect();
        let conf = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "multus-bench",
            "type": "multus",
            "cniDir": self.state.join("multus"),
            "binDir": self.bin_dir,
            "networkAttachmentDir": nads,
            "delegates": [serde_json::from_str::<serde_json::Value>(&configs[0]).map_err(|e| e.to_string())?],
            "runtimeConfig": {"io.kubernetes.cri.pod-annotations": {"k8s.v1.cni.cncf.io/networks": names.join(",")}},
        });
        Ok((configs, conf))
    }

    fn measure(&mut self, delegate: Delegate, networks: usize) -> Result<Row, String> {
        let (configs, conf) = self.setup(delegate, networks)?;
        let conf = conf.to_string();

        let mut direct = Vec::new();
        let mut through_multus = Vec::new();
        for round in 0..delegate.iterations() + 2 {
            let d = self.direct_add_del(&configs)?;
            let m = self.multus_add_del(&conf)?;
            if round >= 2 {
                direct.push(d);
                through_multus.push(m);
            }
        }
        Ok(Row {
            delegate,
            networks,
            direct: median(direct),
            multus: median(through_multus),
        })
    }

    fn next_id(&mut self) -> String {
        self.counter += 1;
        format!("bench{}", self.counter)
    }

    fn direct_add_del(&mut self, configs: &[String]) -> Result<Duration, String> {
        let id = self.next_id();
        let started = Instant::now();
        for (index, config) in configs.iter().enumerate() {
            self.exec_plugin(config, "ADD", &id, &ifname(index))?;
        }
        for (index, config) in configs.iter().enumerate().rev() {
            self.exec_plugin(config, "DEL", &id, &ifname(index))?;
        }
        Ok(started.elapsed())
    }

    fn multus_add_del(&mut self, conf: &str) -> Result<Duration, String> {
        let id = self.next_id();
        let started = Instant::now();
        for command in ["ADD", "DEL"] {
            self.cni(&self.multus, command, &id, "eth0", conf)?;
        }
        Ok(started.elapsed())
    }

    fn exec_plugin(
        &self,
        config: &str,
        command: &str,
        id: &str,
        ifname: &str,
    ) -> Result<(), String> {
        let doc: serde_json::Value = serde_json::from_str(config).map_err(|e| e.to_string())?;
        let plugin_type = doc["type"].as_str().unwrap_or_default();
        let binary = [&self.bin_dir, &self.plugin_dir]
            .iter()
            .map(|dir| dir.join(plugin_type))
            .find(|p| p.exists())
            .ok_or_else(|| format!("plugin {plugin_type} not found"))?;
        self.cni(&binary, command, id, ifname, config)
    }

    fn cni(
        &self,
        binary: &Path,
        command: &str,
        id: &str,
        ifname: &str,
        stdin: &str,
    ) -> Result<(), String> {
        let path = format!("{}:{}", self.bin_dir.display(), self.plugin_dir.display());
        let mut child = Command::new(binary)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", format!("/run/netns/{POD_NETNS}"))
            .env("CNI_IFNAME", ifname)
            .env("CNI_PATH", path)
            .env(
                "CNI_ARGS",
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=bench",
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        if let Some(mut input) = child.stdin.take() {
            input
                .write_all(stdin.as_bytes())
                .map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} {command} failed: {}{}",
                binary.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

fn ifname(index: usize) -> String {
    if index == 0 {
        "eth0".into()
    } else {
        format!("net{index}")
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(rows: &[Row], multus: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ADD+DEL of one pod: cluster network + N additional networks (medians)\n"
    );
    let _ = writeln!(
        out,
        "| delegates | N | direct (ms) | through multus (ms) | multus overhead per ADD+DEL (ms) | per CNI call (ms) | per call per network (ms) | ratio |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let overhead = ms(row.multus) - ms(row.direct);
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.3} | {:.3} |",
            row.delegate.label(),
            row.networks,
            ms(row.direct),
            ms(row.multus),
            overhead,
            overhead / 2.0,
            overhead / 2.0 / (row.networks + 1) as f64,
            ms(row.multus) / ms(row.direct)
        );
    }
    let size = std::fs::metadata(multus)
        .map(|m| m.len())
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "\nmultus binary (stripped): {}, {} bytes ({:.2} MiB)",
        multus.display(),
        size,
        size as f64 / 1048576.0
    );
    out
}

fn sh(args: &[&str]) -> Result<(), String> {
    let status = Command::new(args[0])
        .args(&args[1..])
        .status()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed: {status}", args.join(" ")))
    }
}
