//! Rendering: human tables (comfy-table), JSON and YAML with stable field names, and
//! colour only on a terminal.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::error::CtlError;

/// `-o`: how results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human tables.
    Table,
    /// JSON (stable field names, camelCase).
    Json,
    /// YAML (same fields as JSON).
    Yaml,
}

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when stdout is a terminal and `NO_COLOR` is not set.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// Severity of a finding, check or action, shown coloured in tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Level {
    /// Fine.
    Ok,
    /// Informational.
    Info,
    /// Probably wrong; does not fail the command unless asked.
    Warning,
    /// Wrong.
    Error,
}

impl Level {
    /// The word shown in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }

    fn colour(self) -> Option<Color> {
        match self {
            Self::Ok => Some(Color::Green),
            Self::Info => None,
            Self::Warning => Some(Color::Yellow),
            Self::Error => Some(Color::Red),
        }
    }
}

/// Prints reports in the chosen format.
#[derive(Clone, Copy, Debug)]
pub struct Printer {
    /// The format.
    pub format: Format,
    /// Whether to colour tables and headings.
    pub colour: bool,
}

impl Printer {
    /// A printer for `format`, colouring according to `choice`.
    pub fn new(format: Format, choice: ColorChoice) -> Self {
        let colour = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::env::var("TERM").map_or(true, |t| t != "dumb")
            }
        };
        Self { format, colour }
    }

    /// A table with these column headers.
    pub fn table(&self, header: &[&str]) -> Table {
        let mut table = Table::new();
        table
            .load_style(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic);
        // A terminal that reports no usable width (a pty of size 0, say): do not wrap.
        if table.width().is_some_and(|w| w < 40) {
            table.set_content_arrangement(ContentArrangement::Disabled);
        }
        if self.colour {
            table.enforce_styling();
            table.set_header(
                header
                    .iter()
                    .map(|h| Cell::new(h).add_attribute(Attribute::Bold)),
            );
        } else {
            table.force_no_tty();
            table.set_header(header.iter().map(Cell::new));
        }
        table
    }

    /// A cell showing `level`, coloured.
    pub fn level_cell(&self, level: Level) -> Cell {
        self.coloured(level.as_str(), level)
    }

    /// A cell with `text`, coloured as `level`.
    pub fn coloured(&self, text: impl ToString, level: Level) -> Cell {
        let cell = Cell::new(text.to_string());
        match level.colour() {
            Some(colour) if self.colour => cell.fg(colour),
            _ => cell,
        }
    }

    /// A section heading.
    pub fn heading(&self, text: &str) -> String {
        self.styled(text, Style::new().bold())
    }

    /// `text` in the colour of `level`.
    pub fn level_text(&self, text: &str, level: Level) -> String {
        let colour = match level {
            Level::Ok => Some(AnsiColor::Green),
            Level::Info => None,
            Level::Warning => Some(AnsiColor::Yellow),
            Level::Error => Some(AnsiColor::Red),
        };
        match colour {
            Some(c) => self.styled(text, Style::new().fg_color(Some(c.into())).bold()),
            None => text.to_owned(),
        }
    }

    fn styled(&self, text: &str, style: Style) -> String {
        if self.colour {
            format!("{style}{text}{style:#}")
        } else {
            text.to_owned()
        }
    }

    /// Print `report` as JSON or YAML, or the table text `table` makes.
    pub fn emit<T: Serialize>(
        &self,
        report: &T,
        table: impl FnOnce(&Printer) -> String,
    ) -> Result<(), CtlError> {
        let text = match self.format {
            Format::Table => table(self),
            Format::Json => serde_json::to_string_pretty(report)
                .map_err(|e| CtlError::Unreachable(format!("cannot render JSON: {e}")))?,
            Format::Yaml => serde_saphyr::to_string(report)
                .map_err(|e| CtlError::Unreachable(format!("cannot render YAML: {e}")))?,
        };
        print_text(&text);
        Ok(())
    }
}

/// Write `text` (and a final newline when it lacks one) to stdout; a closed pipe
/// (`| head`) is not an error.
pub fn print_text(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

/// Join non-empty sections with a blank line.
pub fn sections(parts: Vec<String>) -> String {
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// `-` for an empty value.
pub fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

/// A configuration value as one table cell: strings bare, lists of strings joined with
/// `, `, `-` for null and empty lists/objects, anything else as JSON.
pub fn value_text(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => or_dash(s),
        Value::Array(a) if a.is_empty() => "-".to_owned(),
        Value::Object(o) if o.is_empty() => "-".to_owned(),
        Value::Array(a) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template(&format!("{what} {{bar:30}} {{pos}}/{{len}} {{wide_msg}}"))
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_values_render_as_one_cell() {
        assert_eq!(value_text(&json!(null)), "-");
        assert_eq!(value_text(&json!("")), "-");
        assert_eq!(value_text(&json!([])), "-");
        assert_eq!(value_text(&json!({})), "-");
        assert_eq!(value_text(&json!("/etc/cni")), "/etc/cni");
        assert_eq!(value_text(&json!(["a", "b"])), "a, b");
        assert_eq!(value_text(&json!([1, "b"])), r#"[1,"b"]"#);
        assert_eq!(value_text(&json!(3)), "3");
    }
}
