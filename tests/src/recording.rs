//! The record the `cni-recorder` test plugin appends for every call: one JSON object per
//! line in the file named by its config key `recordFile`.
//!
//! The plugin writes it with [`Record::append`]; the tests read the file back with
//! [`read_records`].

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

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
}

impl Record {
    /// The config key `tag` tests put in each recorder config to tell calls apart.
    pub fn tag(&self) -> &str {
        self.stdin
            .get("tag")
            .and_then(Value::as_str)
            .unwrap_or_default()
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

/// [`Record::summary`] of every record, in call order.
pub fn summaries(records: &[Record]) -> Vec<String> {
    records.iter().map(Record::summary).collect()
}
