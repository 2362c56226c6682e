//! A reader of the Prometheus/OpenMetrics text exposition, as multus-daemon serves it on
//! `/metrics` (prometheus-client's OpenMetrics text): `# HELP`, `# TYPE`, `# UNIT`
//! metadata, sample lines `name{label="value",...} value [timestamp] [# exemplar]`, and
//! `# EOF`.
//!
//! Lenient on purpose: a line that does not parse is skipped (and counted), so that one
//! odd sample never hides the others.

use serde::Serialize;
use serde_json::{Map, Value};

/// Suffixes a sample's name may add to its family's name.
const SUFFIXES: &[&str] = &[
    "_total", "_count", "_sum", "_bucket", "_created", "_info", "_gcount", "_gsum",
];

/// One metric family.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Family {
    /// The family's name (`multus_server_request` for the samples
    /// `multus_server_request_total`).
    pub name: String,
    /// `counter`, `gauge`, `histogram`, ... (`unknown` without a `# TYPE`).
    #[serde(rename = "type")]
    pub kind: String,
    /// `# HELP`.
    pub help: String,
    /// `# UNIT`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub unit: String,
    /// The samples, in the order served.
    pub samples: Vec<Sample>,
}

/// One sample.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// The sample's name (with its suffix: `_total`, `_count`, `_bucket`, ...).
    pub name: String,
    /// Its labels, in the order served.
    pub labels: Map<String, Value>,
    /// Its value (`null` in JSON for NaN and infinities).
    pub value: f64,
}

impl Sample {
    /// The labels as `key=value` pairs, for a table cell.
    pub fn labels_text(&self) -> String {
        self.labels
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A parsed page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition {
    /// The families, in the order served.
    pub families: Vec<Family>,
    /// Lines that could not be read.
    pub skipped: usize,
}

/// Parse a text exposition.
pub fn parse(text: &str) -> Exposition {
    let mut page = Exposition::default();
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        if let Some(meta) = line.strip_prefix('#') {
            let mut words = meta.trim_start().splitn(3, ' ');
            let (keyword, name, rest) = (
                words.next().unwrap_or_default(),
                words.next().unwrap_or_default(),
                words.next().unwrap_or_default(),
            );
            if name.is_empty() || !matches!(keyword, "HELP" | "TYPE" | "UNIT") {
                continue;
            }
            let family = family_mut(&mut page.families, name);
            match keyword {
                "HELP" => family.help = unescape(rest),
                "TYPE" => family.kind = rest.trim().to_owned(),
                _ => family.unit = rest.trim().to_owned(),
            }
            continue;
        }
        match parse_sample(line) {
            Some(sample) => {
                let family = owner(&page.families, &sample.name)
                    .map_or_else(|| sample.name.clone(), |f| f.name.clone());
                family_mut(&mut page.families, &family).samples.push(sample);
            }
            None => page.skipped += 1,
        }
    }
    page
}

/// The family a sample name belongs to: the newest family of that name, or whose name
/// plus a known suffix is it.
fn owner<'a>(families: &'a [Family], sample: &str) -> Option<&'a Family> {
    families.iter().rev().find(|f| {
        sample == f.name
            || sample
                .strip_prefix(f.name.as_str())
                .is_some_and(|suffix| SUFFIXES.contains(&suffix))
    })
}

fn family_mut<'a>(families: &'a mut Vec<Family>, name: &str) -> &'a mut Family {
    let index = match families.iter().position(|f| f.name == name) {
        Some(index) => index,
        None => {
            families.push(Family {
                name: name.to_owned(),
                kind: "unknown".to_owned(),
                help: String::new(),
                unit: String::new(),
                samples: Vec::new(),
            });
            families.len() - 1
        }
    };
    &mut families[index]
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Map::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, remaining) = parse_labels(after)?;
        labels = parsed;
        rest = remaining;
    }
    // The value; a timestamp and an exemplar (`# {...} v`) may follow.
    let value_text = rest.split_whitespace().next()?;
    let value = match value_text {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        other => other.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `key="value",...}` → the labels and what follows the `}`.
fn parse_labels(mut text: &str) -> Option<(Map<String, Value>, &str)> {
    let mut labels = Map::new();
    loop {
        text = text.trim_start_matches([' ', ',']);
        if let Some(rest) = text.strip_prefix('}') {
            return Some((labels, rest));
        }
        let eq = text.find('=')?;
        let key = text[..eq].trim().to_owned();
        text = text[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = text.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                other => value.push(other),
            }
        };
        labels.insert(key, Value::String(value));
        text = &text[end + 1..];
    }
}

/// `# HELP` text: `\\` and `\n` escapes.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A value as a table shows it: integers without a fraction.
pub fn number_text(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"# HELP multus_server_request Requests on the daemon's socket by handler, HTTP status and method.
# TYPE multus_server_request counter
multus_server_request_total{handler="/cni",code="200",method="POST"} 3
multus_server_request_total{handler="/readyz",code="200",method="GET"} 12
# HELP multus_cni_request_duration_seconds Time to serve a CNI request.
# TYPE multus_cni_request_duration_seconds histogram
# UNIT multus_cni_request_duration_seconds seconds
multus_cni_request_duration_seconds_sum{command="ADD"} 0.125
multus_cni_request_duration_seconds_count{command="ADD"} 1
multus_cni_request_duration_seconds_bucket{le="0.001",command="ADD"} 0
multus_cni_request_duration_seconds_bucket{le="+Inf",command="ADD"} 1
# HELP multus_requests_rejected CNI requests answered 503.
# TYPE multus_requests_rejected counter
# HELP multus_requests_in_flight CNI requests being served now.
# TYPE multus_requests_in_flight gauge
multus_requests_in_flight 0
odd line without value
strange{label="with \"quotes\", commas\\ and \n"} 1.5e3 1700000000 # {trace="x"} 1
# EOF
"#;

    #[test]
    fn families_samples_and_labels() {
        let page = parse(PAGE);
        let names: Vec<&str> = page.families.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "multus_server_request",
                "multus_cni_request_duration_seconds",
                "multus_requests_rejected",
                "multus_requests_in_flight",
                "strange",
            ]
        );
        let requests = &page.families[0];
        assert_eq!(requests.kind, "counter");
        assert_eq!(requests.samples.len(), 2);
        assert_eq!(requests.samples[0].name, "multus_server_request_total");
        assert_eq!(
            requests.samples[0].labels_text(),
            "handler=/cni code=200 method=POST"
        );
        assert_eq!(requests.samples[1].value, 12.0);
        let latency = &page.families[1];
        assert_eq!(
            (latency.kind.as_str(), latency.unit.as_str()),
            ("histogram", "seconds")
        );
        assert_eq!(latency.samples.len(), 4);
        assert_eq!(latency.samples[3].labels["le"], "+Inf");
        assert!(page.families[2].samples.is_empty());
        let strange = &page.families[4];
        assert_eq!(strange.kind, "unknown");
        assert_eq!(
            strange.samples[0].labels["label"],
            "with \"quotes\", commas\\ and \n"
        );
        assert_eq!(strange.samples[0].value, 1500.0);
        assert_eq!(page.skipped, 1);
    }

    #[test]
    fn values_are_shown_plainly() {
        assert_eq!(number_text(3.0), "3");
        assert_eq!(number_text(0.125), "0.125");
        assert_eq!(number_text(f64::INFINITY), "+Inf");
        assert_eq!(number_text(f64::NAN), "NaN");
        assert_eq!(number_text(123_456_789.0), "123456789");
    }
}
