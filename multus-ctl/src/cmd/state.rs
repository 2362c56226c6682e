//! `multus-ctl state list|show|prune`: the sandbox records under `<cniDir>/sandboxes`,
//! the sandboxes upstream Go Multus attached (its caches in `<cniDir>`), and the notes of
//! DELs that had to guess (`<cniDir>/unknown`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use multus_cni::unknown_notes::UnknownNotes;
use multus_cni::upstream_cache::UpstreamCacheDir;
use multus_core::cni::CniVersion;
use multus_core::nad::NetworkStatus;
use multus_core::state::SandboxState;
use multus_core::upstream::{UnknownAttachments, UpstreamDefaults};
use serde::Serialize;
use serde_json::Value;

use crate::cli::{PruneArgs, StateSource};
use crate::cmd::exec::cni_env;
use crate::cni_call::{self, Call, DecodedError};
use crate::error::{CtlError, CtlResult, Outcome};
use crate::output::{Level, Printer, or_dash, progress_bar, sections};
use crate::recorded::{
    PodIdentity, RecordedInterface, phase_text, plugin_type_names, recorded_interfaces,
};
use crate::sources::{Record, Records, cni_dir, load_conf, netns_exists};

/// A sandbox known from multus-rs' own record.
const FROM_RECORD: &str = "multus-rs record";
/// A sandbox upstream Go Multus attached, known from its caches.
const FROM_UPSTREAM: &str = "upstream cache";
/// A sandbox whose DEL had to guess what it had attached.
const UNKNOWN: &str = "unknown attachments";

/// The sandboxes upstream Go Multus attached that have no multus-rs record, as records
/// (the file is upstream's scratch cache).
fn upstream_records(dir: &Path, recorded: &[Record]) -> Result<Vec<Record>, CtlError> {
    let caches = UpstreamCacheDir::new(dir);
    let unreadable = |e: multus_core::seams::StateError| {
        CtlError::Unreachable(format!(
            "cannot read upstream Multus' caches in {}: {e}; check --cni-dir/--conf and that you are root",
            dir.display()
        ))
    };
    let defaults = UpstreamDefaults {
        cni_version: CniVersion::V1_0_0,
        ifname: "eth0".to_owned(),
        netns: String::new(),
        cni_args: String::new(),
        runtime_config: serde_json::Map::new(),
    };
    let mut found = Vec::new();
    for id in caches.list().map_err(unreadable)? {
        if recorded.iter().any(|r| r.container_id == id) {
            continue;
        }
        let Some(sandbox) = caches.read(&id).map_err(unreadable)? else {
            continue;
        };
        let path = caches.scratch_path(&id);
        found.push(Record {
            modified: std::fs::metadata(&path).and_then(|m| m.modified()).ok(),
            container_id: id,
            path,
            state: sandbox.to_state(&defaults).map_err(|e| e.to_string()),
        });
    }
    Ok(found)
}

/// The multus-rs record of a container, else the sandbox upstream Go Multus attached.
fn record_or_upstream(dir: &Path, container_id: &str) -> Result<Record, CtlError> {
    match Records::new(dir).get(container_id) {
        Err(CtlError::NotFound(e)) => upstream_records(dir, &[])?
            .into_iter()
            .find(|r| r.container_id == container_id)
            .ok_or(CtlError::NotFound(e)),
        found => found,
    }
}

/// One record in `state list`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SandboxSummary {
    container_id: String,
    /// Where the sandbox is known from: `multus-rs record`, `upstream cache` or
    /// `unknown attachments`.
    source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod: Option<PodIdentity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phase: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    netns: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    netns_exists: Option<bool>,
    /// The netns is gone but the record is still here: `state prune` tears it down.
    stale: bool,
    interfaces: Vec<String>,
    networks: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// For unknown attachments: what the DEL deleted and why the rest is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    unknown: Option<String>,
}

impl SandboxSummary {
    fn unknown(container_id: &str, note: &Result<UnknownAttachments, String>) -> Self {
        let (pod, netns, unknown) = match note {
            Ok(note) => (
                Some(PodIdentity {
                    namespace: note.pod_namespace.clone(),
                    name: note.pod_name.clone(),
                    uid: note.pod_uid.clone(),
                }),
                Some(note.netns.clone()),
                format!(
                    "deleted {}; other networks the pod had may be left attached: {}",
                    note.deleted.join(", "),
                    note.reason
                ),
            ),
            Err(e) => (None, None, format!("unreadable note: {e}")),
        };
        Self {
            container_id: container_id.to_owned(),
            source: UNKNOWN,
            pod,
            phase: None,
            netns_exists: netns.as_deref().map(netns_exists),
            netns,
            stale: false,
            interfaces: Vec::new(),
            networks: Vec::new(),
            error: None,
            unknown: Some(unknown),
        }
    }

    fn of(record: &Record, source: &'static str) -> Self {
        match &record.state {
            Ok(state) => {
                let exists = netns_exists(&state.netns);
                Self {
                    container_id: record.container_id.clone(),
                    source,
                    pod: Some(PodIdentity::of(state)),
                    phase: Some(phase_text(state.phase)),
                    netns: Some(state.netns.clone()),
                    netns_exists: Some(exists),
                    stale: !exists,
                    interfaces: state
                        .attachments
                        .iter()
                        .map(|a| a.delegate.ifname.clone())
                        .collect(),
                    networks: state
                        .attachments
                        .iter()
                        .map(|a| a.delegate.network.clone())
                        .collect(),
                    error: None,
                    unknown: None,
                }
            }
            Err(e) => Self {
                container_id: record.container_id.clone(),
                source,
                pod: None,
                phase: None,
                netns: None,
                netns_exists: None,
                stale: false,
                interfaces: Vec::new(),
                networks: Vec::new(),
                error: Some(e.clone()),
                unknown: None,
            },
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StateListReport {
    cni_dir: String,
    sandboxes: Vec<SandboxSummary>,
}

/// `state list`.
pub fn list(printer: &Printer, source: &StateSource) -> CtlResult {
    let dir = cni_dir(source)?;
    let records = Records::new(&dir).list()?;
    let upstream = upstream_records(&dir, &records)?;
    let notes = UnknownNotes::new(&dir).list().map_err(|e| {
        CtlError::Unreachable(format!(
            "cannot read the notes of unknown attachments: {e}; check --cni-dir/--conf and that you are root"
        ))
    })?;
    let report = StateListReport {
        cni_dir: dir.display().to_string(),
        sandboxes: records
            .iter()
            .map(|r| SandboxSummary::of(r, FROM_RECORD))
            .chain(
                upstream
                    .iter()
                    .map(|r| SandboxSummary::of(r, FROM_UPSTREAM)),
            )
            .chain(
                notes
                    .iter()
                    .map(|(id, note)| SandboxSummary::unknown(id, note)),
            )
            .collect(),
    };
    let problems = report
        .sandboxes
        .iter()
        .any(|s| s.stale || s.error.is_some() || s.unknown.is_some());
    printer.emit(&report, |p| render_list(p, &report))?;
    Ok(Outcome::from_problems(problems))
}

fn render_list(printer: &Printer, report: &StateListReport) -> String {
    if report.sandboxes.is_empty() {
        return format!(
            "no sandbox records in {}/sandboxes, no upstream Multus caches and no unknown attachments",
            report.cni_dir
        );
    }
    let mut table = printer.table(&["CONTAINER", "POD", "SOURCE", "PHASE", "NETNS", "INTERFACES"]);
    for s in &report.sandboxes {
        let netns = match (&s.netns, s.netns_exists) {
            (Some(path), Some(true)) => printer.coloured(path, Level::Ok),
            (Some(path), _) => printer.coloured(format!("{path} (gone)"), Level::Error),
            (None, _) => printer.coloured("-", Level::Info),
        };
        let phase = match (&s.error, s.phase) {
            _ if s.unknown.is_some() => printer.coloured("unknown", Level::Warning),
            (Some(_), _) => printer.coloured("unreadable", Level::Error),
            (None, Some("adding")) => printer.coloured("adding", Level::Warning),
            (None, phase) => printer.coloured(phase.unwrap_or("-"), Level::Info),
        };
        let interfaces = s
            .interfaces
            .iter()
            .zip(&s.networks)
            .map(|(i, n)| format!("{i} ({n})"))
            .collect::<Vec<_>>()
            .join("\n");
        let detail = s.error.clone().or_else(|| s.unknown.clone());
        table.add_row(vec![
            comfy_table::Cell::new(&s.container_id),
            comfy_table::Cell::new(s.pod.as_ref().map_or("-".to_owned(), PodIdentity::short)),
            comfy_table::Cell::new(s.source),
            phase,
            netns,
            comfy_table::Cell::new(or_dash(&detail.unwrap_or(interfaces))),
        ]);
    }
    let stale = report.sandboxes.iter().filter(|s| s.stale).count();
    let unknown = report
        .sandboxes
        .iter()
        .filter(|s| s.unknown.is_some())
        .count();
    let mut out = format!(
        "{}\n{table}",
        printer.heading(&format!("Sandboxes in {}", report.cni_dir))
    );
    if unknown > 0 {
        out.push_str(&format!(
            "\n{unknown} sandbox(es) with unknown attachments: their DEL had no record of what was attached; check their pods' other networks (interfaces, IPAM leases) and remove {}/unknown/<container>.json once done",
            report.cni_dir
        ));
    }
    if stale > 0 {
        out.push_str(&format!(
            "\n{stale} record(s) whose network namespace is gone: `multus-ctl state prune --all --dry-run` shows what prune would tear down"
        ));
    }
    out
}

/// One attachment in `state show`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AttachmentDetail {
    network: String,
    ifname: String,
    cluster_network: bool,
    plugin_types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cni_version: Option<String>,
    interfaces: Vec<RecordedInterface>,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_route: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_name: Option<String>,
    cni_args: String,
    /// The exact config the delegate received, parsed.
    config: Value,
    /// The result the delegate returned.
    result: Option<Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StateShowReport {
    container_id: String,
    file: String,
    pod: PodIdentity,
    phase: &'static str,
    cni_version: String,
    netns: String,
    netns_exists: bool,
    ifname: String,
    attachments: Vec<AttachmentDetail>,
    network_status: Vec<NetworkStatus>,
}

/// `state show ID`.
pub fn show(printer: &Printer, container_id: &str, source: &StateSource) -> CtlResult {
    let dir = cni_dir(source)?;
    let record = record_or_upstream(&dir, container_id)?;
    let state = record.state.map_err(|e| {
        CtlError::Unreachable(format!(
            "{e}; multus moves a corrupt record aside on its next DEL of this container"
        ))
    })?;
    let attachments = state
        .attachments
        .iter()
        .map(|a| AttachmentDetail {
            network: a.delegate.network.clone(),
            ifname: a.delegate.ifname.clone(),
            cluster_network: a.delegate.cluster_network,
            plugin_types: plugin_type_names(a),
            cni_version: a.delegate.config.cni_version_text().map(str::to_owned),
            interfaces: recorded_interfaces(a, state.cni_version),
            default_route: a
                .delegate
                .default_route
                .as_ref()
                .map(|gws| gws.iter().map(ToString::to_string).collect()),
            resource_name: a.delegate.resource_name.clone(),
            cni_args: a.delegate.cni_args.clone(),
            config: serde_json::from_str(a.delegate.config.raw()).unwrap_or(Value::Null),
            result: a.result.clone(),
        })
        .collect();
    let exists = netns_exists(&state.netns);
    let report = StateShowReport {
        container_id: state.container_id.clone(),
        file: record.path.display().to_string(),
        pod: PodIdentity::of(&state),
        phase: phase_text(state.phase),
        cni_version: state.cni_version.as_str().to_owned(),
        netns: state.netns.clone(),
        netns_exists: exists,
        ifname: state.ifname.clone(),
        attachments,
        network_status: state.network_status.clone(),
    };
    printer.emit(&report, |p| render_show(p, &report))?;
    Ok(Outcome::from_problems(!exists))
}

fn render_show(printer: &Printer, report: &StateShowReport) -> String {
    let mut summary = printer.table(&["FIELD", "VALUE"]);
    let netns = if report.netns_exists {
        printer.coloured(&report.netns, Level::Ok)
    } else {
        printer.coloured(
            format!(
                "{} (gone: stale record, `multus-ctl state prune {}` tears it down)",
                report.netns, report.container_id
            ),
            Level::Error,
        )
    };
    summary.add_row(vec!["container".to_owned(), report.container_id.clone()]);
    summary.add_row(vec!["pod".to_owned(), report.pod.short()]);
    summary.add_row(vec!["pod uid".to_owned(), or_dash(&report.pod.uid)]);
    summary.add_row(vec![
        comfy_table::Cell::new("phase"),
        printer.coloured(
            report.phase,
            if report.phase == "added" {
                Level::Ok
            } else {
                Level::Warning
            },
        ),
    ]);
    summary.add_row(vec![comfy_table::Cell::new("netns"), netns]);
    summary.add_row(vec!["ifname".to_owned(), report.ifname.clone()]);
    summary.add_row(vec!["cniVersion".to_owned(), report.cni_version.clone()]);
    summary.add_row(vec!["record".to_owned(), report.file.clone()]);

    let mut attachments = printer.table(&["#", "NETWORK", "IFNAME", "TYPES", "ADDRESSES", "MAC"]);
    for (index, a) in report.attachments.iter().enumerate() {
        let network = if a.cluster_network {
            format!("{} (cluster network)", a.network)
        } else {
            a.network.clone()
        };
        attachments.add_row(vec![
            index.to_string(),
            network,
            a.ifname.clone(),
            a.plugin_types.join(", "),
            or_dash(
                &a.interfaces
                    .iter()
                    .flat_map(|i| i.addresses.iter().map(move |ad| format!("{} {ad}", i.name)))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            or_dash(
                &a.interfaces
                    .iter()
                    .filter_map(|i| i.mac.clone())
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        ]);
    }
    let status = network_status_table(printer, &report.network_status);
    sections(vec![
        format!("{}\n{summary}", printer.heading("Sandbox")),
        format!(
            "{}\n{attachments}",
            printer.heading("Attachments (ADD order)")
        ),
        status,
    ])
}

/// The network-status entries as a table, under a heading.
pub fn network_status_table(printer: &Printer, entries: &[NetworkStatus]) -> String {
    network_status_table_titled(printer, "Network status", entries)
}

/// [`network_status_table`] with another heading.
pub fn network_status_table_titled(
    printer: &Printer,
    title: &str,
    entries: &[NetworkStatus],
) -> String {
    if entries.is_empty() {
        return format!("{}\nnone", printer.heading(title));
    }
    let mut table = printer.table(&["NAME", "INTERFACE", "IPS", "MAC", "DEFAULT", "GATEWAY"]);
    for e in entries {
        table.add_row(vec![
            e.name.clone(),
            or_dash(&e.interface),
            or_dash(&e.ips.join("\n")),
            or_dash(&e.mac),
            if e.default { "yes" } else { "-" }.to_owned(),
            or_dash(&e.gateway.join("\n")),
        ]);
    }
    format!("{}\n{table}", printer.heading(title))
}

/// One prune decision.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PruneAction {
    container_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod: Option<PodIdentity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    netns: Option<String>,
    /// `delete` (netns gone), `keep` (netns exists) or `skip` (unreadable record).
    action: &'static str,
    /// `deleted`, `failed`, `dry-run` or `-`.
    result: &'static str,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<DecodedError>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PruneReport {
    cni_dir: String,
    conf: String,
    multus: String,
    dry_run: bool,
    actions: Vec<PruneAction>,
}

/// `state prune`.
pub fn prune(printer: &Printer, args: &PruneArgs) -> CtlResult {
    let loaded = load_conf(&args.runtime.conf)?;
    let dir = loaded.conf.cni_dir.clone();
    let records = Records::new(&dir);
    // multus-rs' records and the sandboxes upstream Go Multus attached: multus' DEL
    // releases both.
    let candidates: Vec<Record> = if args.all {
        let mut all = records.list()?;
        all.extend(upstream_records(&dir, &all)?);
        all
    } else {
        let mut named = Vec::new();
        for id in &args.container_ids {
            named.push(record_or_upstream(&dir, id)?);
        }
        named
    };
    // Needed only when something is torn down. Thick mode: DEL through multus-shim,
    // so that the daemon runs it.
    let shim = crate::cmd::exec::uses_shim(&args.runtime, &loaded);
    let binary = cni_call::plugin_binary(args.runtime.multus.as_deref(), shim);
    let multus = if args.dry_run {
        binary
            .map(|p| p.display().to_string())
            .unwrap_or_else(|e| format!("({e})"))
    } else {
        binary?.display().to_string()
    };
    let progress = progress_bar(candidates.len() as u64, "pruning");
    let mut actions = Vec::new();
    for record in &candidates {
        progress.set_message(record.container_id.clone());
        actions.push(prune_one(record, args, &loaded.bytes, &multus));
        progress.inc(1);
    }
    progress.finish_and_clear();
    let failed = actions.iter().any(|a| a.result == "failed");
    let report = PruneReport {
        cni_dir: dir.display().to_string(),
        conf: loaded.path.display().to_string(),
        multus,
        dry_run: args.dry_run,
        actions,
    };
    printer.emit(&report, |p| render_prune(p, &report))?;
    Ok(Outcome::from_problems(failed))
}

fn prune_one(record: &Record, args: &PruneArgs, conf: &[u8], multus: &str) -> PruneAction {
    let state = match &record.state {
        Ok(state) => state,
        Err(e) => {
            return PruneAction {
                container_id: record.container_id.clone(),
                pod: None,
                netns: None,
                action: "skip",
                result: "-",
                detail: format!(
                    "{e}; multus' own DEL of this container moves it aside and rebuilds the plan"
                ),
                error: None,
            };
        }
    };
    let mut action = PruneAction {
        container_id: record.container_id.clone(),
        pod: Some(PodIdentity::of(state)),
        netns: Some(state.netns.clone()),
        action: "keep",
        result: "-",
        detail: "the network namespace exists: the sandbox is alive".to_owned(),
        error: None,
    };
    if netns_exists(&state.netns) {
        return action;
    }
    action.action = "delete";
    let interfaces: Vec<&str> = state
        .attachments
        .iter()
        .map(|a| a.delegate.ifname.as_str())
        .collect();
    if args.dry_run {
        action.result = "dry-run";
        action.detail = format!(
            "would run DEL for {} ({})",
            PodIdentity::of(state).short(),
            interfaces.join(", ")
        );
        return action;
    }
    run_del(&mut action, record, state, args, conf, multus, &interfaces);
    action
}

/// Run multus' DEL for a gone sandbox, as the runtime would have, and note the outcome.
fn run_del(
    action: &mut PruneAction,
    record: &Record,
    state: &SandboxState,
    args: &PruneArgs,
    conf: &[u8],
    multus: &str,
    interfaces: &[&str],
) {
    let cni_args = format!(
        "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
        state.pod_namespace, state.pod_name, state.container_id, state.pod_uid
    );
    let call = Call {
        binary: multus.into(),
        env: cni_env(
            "DEL",
            &state.container_id,
            "",
            &state.ifname,
            &cni_args,
            &args.runtime.cni_path,
        ),
        stdin: conf.to_vec(),
        timeout: Duration::from_secs(args.runtime.timeout),
    };
    match cni_call::run(&call) {
        Ok(finished) if finished.success() => {
            action.result = "deleted";
            action.detail = if record.path.exists() {
                "DEL succeeded but the record is still there: check the multus log".to_owned()
            } else {
                format!("DEL succeeded: {} released", interfaces.join(", "))
            };
        }
        Ok(finished) => {
            let error = DecodedError::from_finished(&finished);
            action.result = "failed";
            action.detail = format!("DEL failed: {}", error.msg);
            action.error = Some(error);
        }
        Err(e) => {
            action.result = "failed";
            action.detail = e.to_string();
        }
    }
}

fn render_prune(printer: &Printer, report: &PruneReport) -> String {
    if report.actions.is_empty() {
        return format!("no sandbox records in {}/sandboxes", report.cni_dir);
    }
    let mut table = printer.table(&["CONTAINER", "POD", "NETNS", "ACTION", "RESULT", "DETAIL"]);
    for a in &report.actions {
        let level = match a.result {
            "deleted" => Level::Ok,
            "failed" => Level::Error,
            "dry-run" => Level::Warning,
            _ => Level::Info,
        };
        table.add_row(vec![
            comfy_table::Cell::new(&a.container_id),
            comfy_table::Cell::new(a.pod.as_ref().map_or("-".to_owned(), PodIdentity::short)),
            comfy_table::Cell::new(a.netns.clone().unwrap_or_else(|| "-".to_owned())),
            comfy_table::Cell::new(a.action),
            printer.coloured(a.result, level),
            comfy_table::Cell::new(&a.detail),
        ]);
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &report.actions {
        *counts.entry(a.action).or_default() += 1;
    }
    let title = if report.dry_run {
        "Prune (dry run: nothing changed)"
    } else {
        "Prune"
    };
    format!(
        "{}\n{table}\n{}",
        printer.heading(title),
        counts
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}
