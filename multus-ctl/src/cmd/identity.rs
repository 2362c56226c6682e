//! `multus-ctl identity`: which identity this node's multus uses with the API server
//! (its per-node certificate, `perNodeCertificate`) and when the certificate expires.

use std::path::Path;
use std::time::{Duration, SystemTime};

use multus_cni::identity::cert::{CertInfo, cert_info};
use multus_cni::identity::{CURRENT_FILE, GROUP, USER_PREFIX};
use serde::Serialize;

use crate::error::{CtlError, CtlResult, Outcome};
use crate::output::{Level, Printer};

/// The report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct IdentityReport {
    file: String,
    user: String,
    node: Option<String>,
    groups: Vec<String>,
    issuer: String,
    not_before: String,
    not_after: String,
    /// Seconds until expiry (negative once expired).
    expires_in_seconds: i64,
    /// The earliest and latest moment of the next rotation (70% and 90% of the lifetime).
    rotation_window: [String; 2],
    expired: bool,
    problems: Vec<String>,
}

fn signed_seconds(from: SystemTime, to: SystemTime) -> i64 {
    match to.duration_since(from) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn human(seconds: i64) -> String {
    let d = Duration::from_secs(seconds.unsigned_abs());
    let (h, m, s) = (d.as_secs() / 3600, d.as_secs() / 60 % 60, d.as_secs() % 60);
    let text = if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    };
    if seconds < 0 {
        format!("{text} ago")
    } else {
        format!("in {text}")
    }
}

/// `identity --cert-dir DIR`.
pub fn run(printer: &Printer, cert_dir: &Path) -> CtlResult {
    let file = cert_dir.join(CURRENT_FILE);
    let bytes = multus_host::open::read_nofollow(&file).map_err(|e| {
        CtlError::NotFound(format!(
            "no per-node certificate at {}: {e}; without perNodeCertificate multus uses its service account or kubeconfig (docs/how-to/per-node-identity.md)",
            file.display()
        ))
    })?;
    let info = cert_info(&String::from_utf8_lossy(&bytes))
        .map_err(|e| CtlError::Unreachable(format!("{}: {e}", file.display())))?;
    let now = SystemTime::now();
    let lifetime = info
        .not_after
        .duration_since(info.not_before)
        .unwrap_or_default();
    let at =
        |fraction: f64| multus_host::time::rfc3339(info.not_before + lifetime.mul_f64(fraction));
    let expires_in = signed_seconds(now, info.not_after);
    let node = info
        .common_name
        .strip_prefix(USER_PREFIX)
        .map(str::to_owned);
    let expired = expires_in <= 0;
    let problems = problems(&info, node.is_some(), expired);
    let report = IdentityReport {
        file: file.display().to_string(),
        user: info.common_name.clone(),
        node,
        groups: info.organizations.clone(),
        issuer: info.issuer.clone(),
        not_before: multus_host::time::rfc3339(info.not_before),
        not_after: multus_host::time::rfc3339(info.not_after),
        expires_in_seconds: expires_in,
        rotation_window: [at(0.7), at(0.9)],
        expired,
        problems,
    };
    printer.emit(&report, |p| render(p, &report))?;
    Ok(Outcome::from_problems(!report.problems.is_empty()))
}

/// What is wrong with the certificate: not a node's user, not in multus' group, expired.
fn problems(info: &CertInfo, is_node_user: bool, expired: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if !is_node_user {
        problems.push(format!(
            "the user {:?} is not {USER_PREFIX}<node>",
            info.common_name
        ));
    }
    if !info.organizations.iter().any(|o| o == GROUP) {
        problems.push(format!("the certificate is not in the group {GROUP}"));
    }
    if expired {
        problems.push("the certificate has expired: is rotation failing? see the multus logs and `kubectl get csr`".to_owned());
    }
    problems
}

fn render(p: &Printer, report: &IdentityReport) -> String {
    let mut table = p.table(&["FIELD", "VALUE"]);
    let rows = [
        ("user", report.user.clone()),
        ("groups", report.groups.join(", ")),
        ("issuer", report.issuer.clone()),
        ("valid from", report.not_before.clone()),
        (
            "expires",
            format!(
                "{} ({})",
                report.not_after,
                human(report.expires_in_seconds)
            ),
        ),
        (
            "next rotation",
            format!(
                "between {} and {}",
                report.rotation_window[0], report.rotation_window[1]
            ),
        ),
    ];
    for (field, value) in rows {
        table.add_row(vec![field.to_owned(), value]);
    }
    let mut text = format!(
        "{}\n{table}",
        p.heading(&format!("identity in {}", report.file))
    );
    for problem in &report.problems {
        text.push('\n');
        text.push_str(&p.level_text(problem, Level::Error));
    }
    text
}
