//! The tables of `multus-ctl pod`, one function per section of the report.

use crate::cmd::state::network_status_table_titled;
use crate::output::{Level, Printer, or_dash, sections};

use super::report::{AttachmentView, LiveView, PodReport};

/// The report as text: one section per part, the findings last.
pub(super) fn render(printer: &Printer, report: &PodReport) -> String {
    let mut parts = vec![summary(printer, report), requested(printer, report)];
    if !report.attachments.is_empty() {
        parts.push(attachments(printer, &report.attachments));
    }
    parts.push(network_status(printer, report));
    if let Some(live) = &report.live {
        parts.extend(live_tables(printer, live));
    }
    parts.push(findings(printer, report));
    sections(parts)
}

/// The pod, where its facts come from, and the record's plan.
fn summary(printer: &Printer, report: &PodReport) -> String {
    let mut summary = printer.table(&["FIELD", "VALUE"]);
    summary.add_row(vec![
        "pod".to_owned(),
        format!("{}/{}", report.pod.namespace, report.pod.name),
    ]);
    summary.add_row(vec![
        "uid".to_owned(),
        or_dash(report.pod.uid.as_deref().unwrap_or_default()),
    ]);
    if let Some(node) = &report.pod.node {
        summary.add_row(vec!["node".to_owned(), node.clone()]);
    }
    summary.add_row(vec![
        "api".to_owned(),
        or_dash(
            report
                .sources
                .api
                .as_deref()
                .unwrap_or("none (node-local only)"),
        ),
    ]);
    summary.add_row(vec![
        "record".to_owned(),
        or_dash(report.sources.record.as_deref().unwrap_or("none")),
    ]);
    summary.add_row(vec![
        "nads".to_owned(),
        report
            .sources
            .nads
            .clone()
            .unwrap_or_else(|| "none (NAD changes not checked)".to_owned()),
    ]);
    if let Some(plan) = &report.plan {
        summary.add_row(vec!["container".to_owned(), plan.container_id.clone()]);
        summary.add_row(vec!["phase".to_owned(), plan.phase.to_owned()]);
        summary.add_row(vec![
            comfy_table::Cell::new("netns"),
            if plan.netns_exists {
                printer.coloured(&plan.netns, Level::Ok)
            } else {
                printer.coloured(format!("{} (gone)", plan.netns), Level::Error)
            },
        ]);
    } else if let Some(live) = &report.live {
        summary.add_row(vec!["netns".to_owned(), live.netns.clone()]);
    }
    format!("{}\n{summary}", printer.heading("Pod"))
}

/// The networks the pod asked for and what each became.
fn requested(printer: &Printer, report: &PodReport) -> String {
    let title = match report.requested.source {
        "api" => "Requested networks (annotation, from the API)",
        "record" => "Requested networks (annotation the runtime passed at ADD)",
        _ => "Requested networks",
    };
    if report.requested.networks.is_empty() && report.requested.default_network.is_none() {
        let why = match report.requested.source {
            "none" => "unknown: no API and no annotation in the record",
            _ => "none beyond the cluster network",
        };
        return format!("{}\n{why}", printer.heading(title));
    }
    let mut table = printer.table(&["NETWORK", "INTERFACE", "ATTACHED AS"]);
    if let Some(default) = &report.requested.default_network {
        table.add_row(vec![
            format!("{default} (default-network)"),
            "-".to_owned(),
            "cluster network".to_owned(),
        ]);
    }
    for n in &report.requested.networks {
        table.add_row(vec![
            comfy_table::Cell::new(&n.network),
            comfy_table::Cell::new(or_dash(n.interface.as_deref().unwrap_or_default())),
            match &n.attached_as {
                Some(i) => printer.coloured(i, Level::Ok),
                None => printer.coloured("-", Level::Error),
            },
        ]);
    }
    format!("{}\n{table}", printer.heading(title))
}

/// Each attachment of the record: its plugins, device, recorded and live addresses.
fn attachments(printer: &Printer, attachments: &[AttachmentView]) -> String {
    let mut table = printer.table(&["NETWORK", "IFNAME", "TYPES", "RECORDED", "LIVE", "STATUS"]);
    for a in attachments {
        let level = if a.status == "ok" {
            Level::Ok
        } else {
            Level::Error
        };
        table.add_row(vec![
            comfy_table::Cell::new(attachment_network(a)),
            comfy_table::Cell::new(&a.ifname),
            comfy_table::Cell::new(a.plugin_types.join(", ")),
            comfy_table::Cell::new(or_dash(&recorded_addresses(a))),
            comfy_table::Cell::new(or_dash(&a.live.join("\n"))),
            printer.coloured(&a.status, level),
        ]);
    }
    format!(
        "{}\n{table}",
        printer.heading("Attachments (the plan persisted on this node)")
    )
}

/// The network, marked when it is the cluster network, with its device if it has a
/// resource.
fn attachment_network(a: &AttachmentView) -> String {
    let mut network = if a.cluster_network {
        format!("{} (cluster network)", a.network)
    } else {
        a.network.clone()
    };
    if let Some(resource) = &a.resource_name {
        let device = a.device.as_ref().map_or_else(
            || "no device".to_owned(),
            |d| format!("device {} from {}", d.device_id, d.source),
        );
        network.push_str(&format!("\n{resource}: {device}"));
    }
    network
}

/// The recorded addresses, one a line, prefixed by the interface when it is not the
/// attachment's own.
fn recorded_addresses(a: &AttachmentView) -> String {
    a.recorded
        .iter()
        .flat_map(|r| {
            r.addresses.iter().map(move |ad| {
                if r.name == a.ifname {
                    ad.clone()
                } else {
                    format!("{} {ad}", r.name)
                }
            })
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The network-status shown, titled by where it came from.
fn network_status(printer: &Printer, report: &PodReport) -> String {
    let status_title = match report.network_status.source {
        "api" => "Network status (annotation, from the API)",
        "record" => "Network status (recorded on this node)",
        _ => "Network status",
    };
    network_status_table_titled(printer, status_title, &report.network_status.entries)
}

/// The interfaces and the main-table routes in the pod's namespace.
fn live_tables(printer: &Printer, live: &LiveView) -> [String; 2] {
    let mut table = printer.table(&["INTERFACE", "STATE", "KIND", "MAC", "MTU", "ADDRESSES"]);
    for i in &live.interfaces {
        table.add_row(vec![
            i.name.clone(),
            if i.up { "up" } else { "down" }.to_owned(),
            or_dash(i.kind.as_deref().unwrap_or_default()),
            or_dash(i.mac.as_deref().unwrap_or_default()),
            i.mtu.map_or("-".to_owned(), |m| m.to_string()),
            or_dash(&i.addresses.join("\n")),
        ]);
    }
    let mut routes = printer.table(&["DESTINATION", "GATEWAY", "DEV"]);
    for r in &live.routes {
        routes.add_row(vec![
            r.destination.clone(),
            or_dash(r.gateway.as_deref().unwrap_or_default()),
            or_dash(r.dev.as_deref().unwrap_or_default()),
        ]);
    }
    [
        format!(
            "{}\n{table}",
            printer.heading(&format!("Live interfaces in {}", live.netns))
        ),
        format!("{}\n{routes}", printer.heading("Live routes (main table)")),
    ]
}

/// The findings, or the line saying there are none.
fn findings(printer: &Printer, report: &PodReport) -> String {
    if report.findings.is_empty() {
        return format!(
            "{} {}",
            printer.heading("Findings:"),
            printer.level_text(
                "none: what was asked, recorded and is live agree",
                Level::Ok
            )
        );
    }
    let mut table = printer.table(&["FINDING", "LEVEL", "SUBJECT", "DETAIL"]);
    for f in &report.findings {
        table.add_row(vec![
            printer.coloured(f.kind, f.level),
            printer.level_cell(f.level),
            comfy_table::Cell::new(&f.subject),
            comfy_table::Cell::new(format!("{}\nfix: {}", f.detail, f.fix)),
        ]);
    }
    format!(
        "{}\n{table}",
        printer.heading(&format!("Findings ({})", report.findings.len()))
    )
}
