//! `multus-ctl daemon health|metrics|config`: the thick daemon, through its unix socket
//! (`<socketDir>/multus.sock`) with multus-shim's blocking client.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use multus_core::daemon_config::DaemonConfig;
use multus_shim::api::{self, CONFIG_PATH, HEALTHZ_PATH, METRICS_PATH, READYZ_PATH};
use multus_shim::client::{ClientError, HttpResponse, SocketClient};
use multus_shim::shim::ShimConf;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::cli::SocketArgs;
use crate::error::{CtlError, CtlResult, Outcome, one_line};
use crate::exposition::{self, Family};
use crate::output::{Level, Printer, or_dash, print_text, sections, value_text};
use crate::sources::read_plugin_stdin;

/// Where to look for the daemon when its pod is not running.
const CHECK_POD: &str = "check that the multus daemon pod is running and ready on this node \
(kubectl -n kube-system get pods -l app=multus -o wide) and its log";

/// The daemon's socket, and which option named it.
#[derive(Debug, Clone)]
pub struct Socket {
    /// `<dir>/multus.sock`.
    pub path: PathBuf,
    /// How it was found, for error messages.
    pub from: String,
}

/// The socket: `--socket-dir`, else `daemonSocketDir` of `--conf` (as the shim reads
/// it), else `socketDir` of `--daemon-config`, else `/run/multus/`.
pub fn socket(args: &SocketArgs) -> Result<Socket, CtlError> {
    if let Some(dir) = &args.socket_dir {
        return Ok(Socket {
            path: api::socket_path(dir),
            from: "--socket-dir".to_owned(),
        });
    }
    if let Some(conf) = &args.conf {
        let stdin = read_plugin_stdin(conf)?;
        let shim = ShimConf::parse(&stdin.bytes).map_err(|e| {
            CtlError::Unreachable(format!(
                "cannot read daemonSocketDir from {}: {}; fix the file or pass --socket-dir",
                conf.display(),
                one_line(&e.msg)
            ))
        })?;
        return Ok(Socket {
            path: shim.socket(),
            from: format!("daemonSocketDir of {}", conf.display()),
        });
    }
    if let Some(file) = &args.daemon_config {
        let config = load_daemon_config(file)?;
        return Ok(Socket {
            path: api::socket_path(&config.socket_dir),
            from: format!("socketDir of {}", file.display()),
        });
    }
    Ok(Socket {
        path: api::socket_path(Path::new(api::DEFAULT_SOCKET_DIR)),
        from: "the default".to_owned(),
    })
}

/// Read and check a daemon-config.json exactly as multus-daemon does at start-up.
pub fn load_daemon_config(path: &Path) -> Result<DaemonConfig, CtlError> {
    multus_cni::daemon_config::load(path).map_err(|e| match &e {
        multus_core::daemon_config::ConfigError::Read { source, .. }
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            CtlError::NotFound(format!(
                "the daemon configuration {} does not exist; check --daemon-config",
                path.display()
            ))
        }
        _ => CtlError::Unreachable(format!(
            "invalid daemon configuration: {}; multus-daemon would refuse it too",
            one_line(&e)
        )),
    })
}

/// One request; a failure is the one-line error of exit code 3.
fn get(client: &SocketClient, socket: &Socket, path: &str) -> Result<HttpResponse, CtlError> {
    client.get(path).map_err(|e| unreachable(socket, path, &e))
}

fn unreachable(socket: &Socket, path: &str, error: &ClientError) -> CtlError {
    let socket_text = socket.path.display();
    let cause = cause(error);
    CtlError::Unreachable(if error.is_permission_denied() {
        format!(
            "cannot connect to multus-daemon's socket {socket_text} ({}): {cause}; the socket is root's (mode 0600): run multus-ctl as root",
            socket.from
        )
    } else if error.is_unreachable() {
        format!(
            "cannot reach multus-daemon on its socket {socket_text} ({}) for GET {path}: {cause}; {CHECK_POD}, and --socket-dir/--conf/--daemon-config",
            socket.from
        )
    } else {
        format!(
            "GET {path} from multus-daemon on its socket {socket_text} failed: {cause}; {CHECK_POD}"
        )
    })
}

/// The cause of a client error, without the client's own wording around it.
fn cause(error: &ClientError) -> String {
    match error {
        ClientError::Unreachable { source, .. } | ClientError::Io { source, .. } => {
            one_line(source)
        }
        ClientError::BadResponse { reason, .. } => {
            format!("not an HTTP answer: {}", one_line(reason))
        }
    }
}

fn client(socket: &Socket, args: &SocketArgs) -> SocketClient {
    SocketClient::new(&socket.path).with_timeout(Duration::from_secs(args.timeout.max(1)))
}

/// An answer other than 200 to a request that should always succeed.
fn bad_status(socket: &Socket, path: &str, response: &HttpResponse) -> CtlError {
    CtlError::Unreachable(format!(
        "GET {path} from multus-daemon on its socket {} answered {}: {}; is this a multus-rs daemon? ({CHECK_POD})",
        socket.path.display(),
        response.status,
        or_dash(&one_line(response.text()))
    ))
}

/// `daemon health`'s document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthReport {
    socket: String,
    /// `/healthz` answered 200.
    healthy: bool,
    /// `/readyz` answered 200.
    ready: bool,
    endpoints: Vec<EndpointReport>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EndpointReport {
    endpoint: &'static str,
    status: u16,
    ok: bool,
    latency_ms: f64,
    meaning: String,
}

/// `daemon health`.
pub fn health(printer: &Printer, args: &SocketArgs) -> CtlResult {
    let socket = socket(args)?;
    let client = client(&socket, args);
    let mut endpoints = Vec::new();
    for path in [HEALTHZ_PATH, READYZ_PATH] {
        let started = Instant::now();
        let response = get(&client, &socket, path)?;
        let latency = started.elapsed();
        let ok = response.status == 200;
        let meaning = if ok && path == HEALTHZ_PATH {
            "alive".to_owned()
        } else if ok {
            "ready: CNI requests are served".to_owned()
        } else if path == READYZ_PATH && response.status == 500 {
            "not ready: shutting down, new CNI requests are refused (try again later)".to_owned()
        } else {
            format!("unexpected answer: {}", or_dash(&one_line(response.text())))
        };
        endpoints.push(EndpointReport {
            endpoint: path,
            status: response.status,
            ok,
            latency_ms: (latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            meaning,
        });
    }
    let report = HealthReport {
        socket: socket.path.display().to_string(),
        healthy: endpoints[0].ok,
        ready: endpoints.get(1).is_some_and(|e| e.ok),
        endpoints,
    };
    printer.emit(&report, |p| {
        let mut table = p.table(&["ENDPOINT", "STATUS", "LATENCY", "MEANING"]);
        for e in &report.endpoints {
            let level = if e.ok { Level::Ok } else { Level::Error };
            table.add_row(vec![
                comfy_table::Cell::new(e.endpoint),
                p.coloured(e.status, level),
                comfy_table::Cell::new(format!("{:.1} ms", e.latency_ms)),
                comfy_table::Cell::new(&e.meaning),
            ]);
        }
        let verdict = if report.healthy && report.ready {
            p.level_text("healthy and ready", Level::Ok)
        } else {
            p.level_text("NOT healthy and ready", Level::Error)
        };
        format!(
            "{}\n{table}\n{verdict}",
            p.heading(&format!("multus-daemon at {}", report.socket))
        )
    })?;
    Ok(Outcome::from_problems(!(report.healthy && report.ready)))
}

/// `daemon metrics`'s document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MetricsReport {
    socket: String,
    families: Vec<Family>,
}

/// `daemon metrics`.
pub fn metrics(printer: &Printer, args: &SocketArgs, raw: bool, all: bool) -> CtlResult {
    let socket = socket(args)?;
    let response = get(&client(&socket, args), &socket, METRICS_PATH)?;
    if response.status != 200 {
        return Err(bad_status(&socket, METRICS_PATH, &response));
    }
    let text = response.text();
    if raw {
        print_text(&text);
        return Ok(Outcome::Clean);
    }
    let page = exposition::parse(&text);
    let report = MetricsReport {
        socket: socket.path.display().to_string(),
        families: page
            .families
            .into_iter()
            .filter(|f| all || f.name.starts_with("multus_"))
            .collect(),
    };
    printer.emit(&report, |p| render_metrics(p, &report))?;
    Ok(Outcome::Clean)
}

fn render_metrics(printer: &Printer, report: &MetricsReport) -> String {
    let mut table = printer.table(&["NAME", "LABELS", "VALUE"]);
    for family in &report.families {
        // Histogram buckets are many; their count and sum say enough here (--raw and
        // JSON have them).
        let shown: Vec<_> = family
            .samples
            .iter()
            .filter(|s| !s.name.ends_with("_bucket") && !s.name.ends_with("_created"))
            .collect();
        if shown.is_empty() {
            table.add_row(vec![
                family.name.clone(),
                "-".to_owned(),
                "- (no samples yet)".to_owned(),
            ]);
        }
        for sample in shown {
            table.add_row(vec![
                sample.name.clone(),
                or_dash(&sample.labels_text()),
                exposition::number_text(sample.value),
            ]);
        }
    }
    format!(
        "{}\n{table}",
        printer.heading(&format!("multus-daemon metrics from {}", report.socket))
    )
}

/// `daemon config`'s document: the daemon's answer with the socket it came from.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ConfigReport {
    socket: String,
    #[serde(flatten)]
    daemon: Map<String, Value>,
}

/// `daemon config`.
pub fn config(printer: &Printer, args: &SocketArgs) -> CtlResult {
    let socket = socket(args)?;
    let response = get(&client(&socket, args), &socket, CONFIG_PATH)?;
    if response.status != 200 {
        return Err(bad_status(&socket, CONFIG_PATH, &response));
    }
    let daemon: Map<String, Value> = serde_json::from_slice(&response.body).map_err(|e| {
        CtlError::Unreachable(format!(
            "GET {CONFIG_PATH} from multus-daemon on its socket {} is not a JSON object: {e}; {CHECK_POD}",
            socket.path.display()
        ))
    })?;
    let report = ConfigReport {
        socket: socket.path.display().to_string(),
        daemon,
    };
    let manager_error = report
        .daemon
        .get("configManager")
        .and_then(|m| m.get("lastError"))
        .and_then(Value::as_str)
        .is_some_and(|e| !e.is_empty());
    printer.emit(&report, |p| render_config(p, &report))?;
    Ok(Outcome::from_problems(manager_error))
}

fn render_config(printer: &Printer, report: &ConfigReport) -> String {
    sections(vec![
        keys_table(printer, report),
        manager_table(printer, section(&report.daemon, "configManager")),
        caches_line(printer, &report.daemon),
    ])
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

/// An object of the daemon's `/config` document (empty when absent).
fn section<'a>(daemon: &'a Map<String, Value>, key: &str) -> &'a Map<String, Value> {
    daemon.get(key).and_then(Value::as_object).unwrap_or(&EMPTY)
}

/// Every key the daemon runs with, and where its value comes from.
fn keys_table(printer: &Printer, report: &ConfigReport) -> String {
    let effective = section(&report.daemon, "effective");
    let file = section(&report.daemon, "file");
    let mut table = printer.table(&["KEY", "VALUE", "SOURCE"]);
    for (key, value) in effective {
        if key == "configPath" {
            continue;
        }
        let source = if file.contains_key(key) {
            "file"
        } else {
            "default"
        };
        table.add_row(vec![key.clone(), value_text(value), source.to_owned()]);
    }
    // Keys the daemon does not read itself: multus configuration keys, passed to every
    // request (the overlay), or unknown.
    for (key, value) in file {
        if !effective.contains_key(key) {
            table.add_row(vec![
                key.clone(),
                value_text(value),
                "file (overlaid on requests)".to_owned(),
            ]);
        }
    }
    let config_path = effective
        .get("configPath")
        .and_then(Value::as_str)
        .unwrap_or("-");
    format!(
        "{}\n{table}",
        printer.heading(&format!(
            "multus-daemon configuration {config_path} (from {})",
            report.socket
        ))
    )
}

/// The config manager's primary network and last error.
fn manager_table(printer: &Printer, manager: &Map<String, Value>) -> String {
    let mut manager_table = printer.table(&["PRIMARY", "FILE", "LAST ERROR"]);
    let text = |key: &str| value_text(manager.get(key).unwrap_or(&Value::Null));
    let last_error = text("lastError");
    manager_table.add_row(vec![
        comfy_table::Cell::new(text("primary")),
        comfy_table::Cell::new(text("file")),
        if last_error == "-" {
            printer.coloured("-", Level::Ok)
        } else {
            printer.coloured(&last_error, Level::Error)
        },
    ]);
    format!(
        "{}\n{manager_table}",
        printer.heading("Config manager (multus' CNI configuration)")
    )
}

/// What the caches hold, and whether the daemon is ready.
fn caches_line(printer: &Printer, daemon: &Map<String, Value>) -> String {
    let caches = section(daemon, "caches");
    let kubernetes = caches
        .get("kubernetes")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let count = |key: &str| value_text(caches.get(key).unwrap_or(&Value::Null));
    let ready = daemon
        .get("ready")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    format!(
        "caches: {}\nready: {}",
        if kubernetes {
            format!(
                "{} pods, {} NetworkAttachmentDefinitions",
                count("pods"),
                count("networkAttachmentDefinitions")
            )
        } else {
            "none (no Kubernetes API: file-based or no networks)".to_owned()
        },
        if ready {
            printer.level_text("yes", Level::Ok)
        } else {
            printer.level_text("no (shutting down)", Level::Error)
        }
    )
}
