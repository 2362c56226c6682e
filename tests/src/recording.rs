//! The record the `cni-recorder` test plugin appends for every call: one JSON object per
//! line in the file named by its config key `recordFile`.
//!
//! The plugin writes it with [`Record::append`]; the tests read the file back with
//! [`read_records`].

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One plugin call as the plugin saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// `CNI_COMMAND`.
    pub command: String,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS`.
    pub netns: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// `CNI_ARGS`.
    pub args: String,
    /// `CNI_PATH`.
    pub path: String,
    /// stdin, parsed.
    pub stdin: Value,
    /// stdin exactly as received.
    pub stdin_raw: String,
    /// What the plugin printed on success (ADD only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// When the plugin started ([`now_ms`]).
    #[serde(default)]
    pub started_at_ms: u64,
    /// When it finished its work, just before appending the record ([`now_ms`]).
    #[serde(default)]
    pub finished_at_ms: u64,
}

impl Record {
    /// The config key `tag` tests put in each recorder config to tell calls apart.
    pub fn tag(&self) -> &str {
        self.stdin
            .get("tag")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The `cni.dev/valid-attachments` of a GC call, as `(containerID, ifname)`.
    pub fn valid_attachments(&self) -> Vec<(String, String)> {
        let text = |v: &Value, key: &str| {
            v.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        self.stdin
            .get("cni.dev/valid-attachments")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|a| (text(a, "containerID"), text(a, "ifname")))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether this call's run overlapped `other`'s in time.
    pub fn overlaps(&self, other: &Record) -> bool {
        self.started_at_ms < other.finished_at_ms && other.started_at_ms < self.finished_at_ms
    }

    /// `"<command> <tag>"`, for order assertions.
    pub fn summary(&self) -> String {
        format!("{} {}", self.command, self.tag())
    }

    /// Append this record as one line (a single `write` on an `O_APPEND` file, so
    /// concurrent writers do not interleave).
    pub fn append(&self, file: &Path) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        line.push(b'\n');
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)?
            .write_all(&line)
    }
}

/// Milliseconds since the Unix epoch, the clock of [`Record::started_at_ms`].
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// The marker a `failOn: "DEL-once"` recorder leaves next to `record_file` after failing
/// the first DEL of `container_id` + `ifname`.
pub fn del_once_marker(record_file: &Path, container_id: &str, ifname: &str) -> PathBuf {
    sibling(record_file, &format!("del-once.{container_id}.{ifname}"))
}

/// The file a recorder with `sleepOnAdd` / `sleepOnDel` writes its pid to before
/// sleeping: its `command` (`ADD`, `DEL`) of `container_id` + `ifname` is in progress.
pub fn in_flight_marker(
    record_file: &Path,
    command: &str,
    container_id: &str,
    ifname: &str,
) -> PathBuf {
    sibling(
        record_file,
        &format!("in-flight-{command}.{container_id}.{ifname}"),
    )
}

fn sibling(record_file: &Path, suffix: &str) -> PathBuf {
    let mut name = record_file
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".");
    name.push(suffix);
    record_file.with_file_name(name)
}

/// Every record in `file`, in call order; no file means no calls.
pub fn read_records(file: &Path) -> Vec<Record> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("cannot read {}: {e}", file.display()),
    };
    text.lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("bad record line in {} ({e}): {line}", file.display()))
        })
        .collect()
}

/// The first call of `command` by the recorder tagged `tag`; panics listing every call
/// when there is none.
pub fn find_call<'a>(records: &'a [Record], command: &str, tag: &str) -> &'a Record {
    records
        .iter()
        .find(|r| r.command == command && r.tag() == tag)
        .unwrap_or_else(|| panic!("no {command} {tag} in {:?}", summaries(records)))
}

/// [`Record::summary`] of every record, in call order.
pub fn summaries(records: &[Record]) -> Vec<String> {
    records.iter().map(Record::summary).collect()
}
