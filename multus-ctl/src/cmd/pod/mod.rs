//! `multus-ctl pod NS/NAME`: what the pod asked for, what each network resolved to,
//! what the node recorded, what is really in the pod's network namespace, and every
//! difference between them.
//!
//! `gather` finds the pod, its record, the current NADs and the live namespace;
//! `check` and `compare` decide the findings; `render` draws the report (`report`)
//! as tables.

mod check;
mod compare;
mod gather;
mod render;
mod report;

use crate::cli::{GlobalArgs, PodArgs};
use crate::cluster::Cluster;
use crate::error::{CtlError, CtlResult, Outcome};
use crate::output::{Level, Printer};
use crate::sources::{Records, cni_dir, load_conf};
use gather::{NadSource, Subject};
use report::{PodReport, PodView, Sources, live_view};

/// `pod NS/NAME`.
pub fn run(printer: &Printer, global: &GlobalArgs, args: &PodArgs) -> CtlResult {
    let conf = args.state.conf.as_deref().map(load_conf).transpose()?;
    let records = Records::new(&cni_dir(&args.state)?);
    let target = gather::target(&records, &args.pod, args.container_id.as_deref())?;
    let cluster = Cluster::connect(global)?;
    let subject = Subject::look_up(&records, cluster.as_ref(), target, args.netns.as_deref())?;
    let nad_source = gather::nad_source(args.nad_dir.as_deref(), conf.as_ref(), cluster.as_ref())?;
    let report = build_report(
        subject,
        cluster.as_ref(),
        &records,
        &nad_source,
        args.netns.as_deref(),
    )?;
    let problems = report.findings.iter().any(|f| f.level >= Level::Warning);
    printer.emit(&report, |p| render::render(p, &report))?;
    Ok(Outcome::from_problems(problems))
}

/// Every comparison, in the order the findings are listed.
fn build_report(
    subject: Subject,
    cluster: Option<&Cluster>,
    records: &Records,
    nad_source: &NadSource<'_>,
    netns: Option<&str>,
) -> Result<PodReport, CtlError> {
    let mut findings = Vec::new();
    let state = subject.state.as_ref();
    let (mut requested, selections) = check::requested(
        &subject.namespace,
        subject.api_pod.as_ref(),
        state,
        &mut findings,
    );
    check::record_findings(&subject, cluster, records, &mut findings);
    let plan = state.map(check::plan_view);
    if let Some(state) = state {
        check::plan_findings(state, &mut findings);
        check::match_requested(state, &mut requested, &selections, &mut findings);
    }
    let netns_path = gather::live_netns(netns, state);
    let snapshot = netns_path
        .as_deref()
        .and_then(|path| gather::snapshot(path, &mut findings));
    let attachments = match state {
        Some(state) => check::attachments(
            state,
            snapshot.as_ref(),
            &selections,
            nad_source,
            &mut findings,
        )?,
        None => Vec::new(),
    };
    if let Some(snapshot) = &snapshot {
        check::extra_interfaces(&attachments, snapshot, state.is_some(), &mut findings);
    }
    let network_status = check::network_status(subject.api_pod.as_ref(), state, &mut findings);
    let live = match (&netns_path, &snapshot) {
        (Some(path), Some(snapshot)) => Some(live_view(path, snapshot)),
        _ => None,
    };
    let Subject {
        namespace,
        name,
        record,
        api_pod,
        state,
    } = subject;
    Ok(PodReport {
        pod: PodView {
            namespace,
            name,
            uid: api_pod
                .as_ref()
                .map(|p| p.uid.clone())
                .or_else(|| state.as_ref().map(|s| s.pod_uid.clone()))
                .filter(|u| !u.is_empty()),
            node: api_pod.as_ref().and_then(|p| p.node.clone()),
        },
        sources: Sources {
            api: cluster.map(|c| c.describe.clone()),
            record: record.as_ref().map(|r| r.path.display().to_string()),
            nads: nad_source.describe(),
        },
        requested,
        attachments,
        network_status,
        plan,
        live,
        findings,
    })
}
