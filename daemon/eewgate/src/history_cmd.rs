//! `eewgate history`: recent rows of the history database as an aligned table or JSON
//! Lines, newest first. Opens the database read-only, so it is safe while the daemon
//! runs (WAL: readers and the writer never wait for each other).

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use eew_core::JstTime;
use serde::Serialize;
use serde_json::Value;

use crate::store::TelegramRow;

use crate::store::{self, Store};

/// Arguments of `eewgate history`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The history database.
    #[arg(long, value_name = "PATH", default_value = store::DEFAULT_PATH, conflicts_with = "config")]
    pub db: PathBuf,
    /// Take the database from this settings file's `[storage] path` instead.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to show (telegrams unless one is given).
    #[command(flatten)]
    pub what: What,
    /// How many rows, newest first.
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
    /// Print JSON Lines (one object per row) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// With --telegrams --json: include each telegram's bytes as `raw` (text; bytes that
    /// are not UTF-8 are replaced).
    #[arg(long, requires = "json")]
    pub raw: bool,
}

/// Which table `eewgate history` prints.
#[derive(Debug, Default, clap::Args)]
#[group(multiple = false)]
pub struct What {
    /// Received telegrams: accepted, duplicate (other links' copies), rejected, garbage.
    #[arg(long)]
    pub telegrams: bool,
    /// Alerts: events that drove outputs, with their highest class and how they ended.
    #[arg(long)]
    pub alerts: bool,
    /// Output actions (relays, audio, LED, MQTT).
    #[arg(long)]
    pub actions: bool,
    /// What each output did with each action: ok or the fault, and the latency from the
    /// engine's decision to the effect (pin edge, first sample, PUBACK).
    #[arg(long)]
    pub outputs: bool,
    /// Engine decisions: what was made of each report and command.
    #[arg(long)]
    pub decisions: bool,
    /// Link events: up, down, silent, liveness summaries.
    #[arg(long)]
    pub links: bool,
    /// Faults raised and cleared (time sync, links, storage).
    #[arg(long)]
    pub faults: bool,
    /// Configuration versions (the file as it was loaded).
    #[arg(long)]
    pub config_changes: bool,
    /// The audit trail: web UI setup, logins and logouts (who, what, from where).
    #[arg(long)]
    pub audit: bool,
}

/// Runs `eewgate history`.
pub fn run(args: &HistoryArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let table = runtime.block_on(read(args))?;
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if args.json {
        for line in &table.json {
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")?;
        }
    } else {
        write_table(&mut out, &table.header, &table.cells)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// What is printed: cells for the table, JSON lines for `--json`.
struct Printed {
    header: Vec<&'static str>,
    cells: Vec<Vec<String>>,
    json: Vec<String>,
}

impl Printed {
    fn new(header: &[&'static str]) -> Self {
        Printed {
            header: header.to_vec(),
            cells: Vec::new(),
            json: Vec::new(),
        }
    }

    fn push<T: Serialize>(&mut self, row: &T, cells: Vec<String>) -> anyhow::Result<()> {
        self.json.push(serde_json::to_string(row)?);
        self.cells.push(cells);
        Ok(())
    }
}

async fn read(args: &HistoryArgs) -> anyhow::Result<Printed> {
    let db = match &args.config {
        None => args.db.clone(),
        Some(file) => match crate::config::load_daemon(file) {
            Ok(cfg) => cfg.storage.path,
            Err(errors) => {
                let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
                anyhow::bail!("{}: invalid settings: {}", file.display(), all.join("; "));
            }
        },
    };
    let store = Store::open_read_only(&db)
        .await
        .with_context(|| format!("opening the history database {}", db.display()))?;
    let printed = select(&store, args).await;
    store.close().await;
    printed.with_context(|| format!("reading the history database {}", db.display()))
}

async fn select(store: &Store, args: &HistoryArgs) -> anyhow::Result<Printed> {
    let limit = args.limit;
    let w = &args.what;
    if w.alerts {
        let mut p = Printed::new(&[
            "EVENT", "LABEL", "FIRST", "LAST", "SERIALS", "CLASS", "LP_CLASS", "WARNING", "ENDED",
            "ACTIONS",
        ]);
        for r in store.recent_alerts(limit).await? {
            let serials = match (r.first_serial, r.last_serial) {
                (Some(a), Some(b)) if a != b => format!("{a}-{b}"),
                (Some(a), _) => a.to_string(),
                _ => dash(),
            };
            let ended = match (&r.ended, r.cancelled) {
                (Some(e), _) => e.clone(),
                (None, true) => "cancel".to_owned(),
                (None, false) => "running".to_owned(),
            };
            let cells = vec![
                r.event_id.clone(),
                r.label.clone(),
                time(&r.first_at),
                time(&r.last_at),
                serials,
                opt(&r.max_class),
                opt(&r.max_long_period_class),
                yes_no(r.warning),
                ended,
                r.actions.to_string(),
            ];
            p.push(&r, cells)?;
        }
        Ok(p)
    } else if w.actions {
        let mut p = Printed::new(&[
            "ID", "AT", "OUTPUT", "ACTION", "CAUSE", "EVENT", "SERIAL", "LABEL", "CLASS", "DETAIL",
        ]);
        for r in store.recent_actions(limit).await? {
            let cells = vec![
                r.id.to_string(),
                time(&r.at),
                r.output.clone(),
                r.action.clone(),
                r.cause.clone(),
                opt(&r.event_id),
                opt(&r.serial),
                r.label.clone(),
                opt(&r.intensity_class),
                action_detail(&r.json),
            ];
            p.push(&r, cells)?;
        }
        Ok(p)
    } else if w.outputs {
        let mut p = Printed::new(&[
            "ID",
            "AT",
            "OUTPUT",
            "ACTION",
            "EVENT",
            "SERIAL",
            "OK",
            "LATENCY_US",
            "DETAIL",
        ]);
        for r in store.recent_output_results(limit).await? {
            let cells = vec![
                r.id.to_string(),
                time(&r.at),
                r.output.clone(),
                r.action.clone(),
                opt(&r.event_id),
                opt(&r.serial),
                yes_no(r.ok),
                opt(&r.latency_us),
                opt(&r.detail),
            ];
            p.push(&r, cells)?;
        }
        Ok(p)
    } else if w.audit {
        let mut p = Printed::new(&["ID", "AT", "WHO", "ACTION", "DETAIL"]);
        for r in store.recent_audit(limit).await? {
            let cells = vec![
                r.id.to_string(),
                time(&r.at),
                r.who.clone(),
                r.action.clone(),
                opt(&r.detail),
            ];
            p.push(&r, cells)?;
        }
        Ok(p)
    } else if w.decisions {
        let mut p = Printed::new(&["ID", "AT", "EVENT", "SERIAL", "LABEL", "OUTCOME", "DETAIL"]);
        for r in store.recent_decisions(limit).await? {
            let cells = vec![
                r.id.to_string(),
                time(&r.at),
                opt(&r.event_id),
                opt(&r.serial),
                r.label.clone(),
                r.outcome.clone(),
                opt(&r.detail),
            ];
            p.push(&r, cells)?;
        }
        Ok(p)
    } else if w.links {
        let mut p = Printed::new(&["ID", "AT", "LINK", "STATE", "DETAIL"]);
        for r in store.recent_link_events(limit).await? {
            let cells = vec![
                r.id.to_string(),
                time(&r.at),
                r.link.clone(),
                r.state.clone(),
                opt(&r.detail),
            ];
            p.push(&r, cells)?;
        }
        Ok(p)
    } else if w.faults {
        let mut p = Printed::new(&["ID", "AT", "FAULT", "STATE", "DETAIL"]);
        for r in store.recent_faults(limit).await? {
            let cells = vec![
                r.id.to_string(),
                time(&r.at),
                r.kind.clone(),
                if r.active { "raised" } else { "cleared" }.to_owned(),
                opt(&r.detail),
            ];
            p.push(&r, cells)?;
        }
        Ok(p)
    } else if w.config_changes {
        let mut p = Printed::new(&["ID", "AT", "SHA256", "LINES"]);
        for r in store.recent_configs(limit).await? {
            let cells = vec![
                r.id.to_string(),
                time(&r.at),
                r.sha256.chars().take(16).collect(),
                r.text.lines().count().to_string(),
            ];
            p.push(&r, cells)?;
        }
        Ok(p)
    } else {
        let mut p = Printed::new(&[
            "ID",
            "RECEIVED",
            "LINK",
            "VERDICT",
            "EVENT",
            "SERIAL",
            "STATUS",
            "KIND",
            "PRODUCT",
            "DECODE_US",
            "BYTES",
            "REASON",
        ]);
        for r in store.recent_telegrams(limit).await? {
            let cells = vec![
                r.id.to_string(),
                time(&r.received_at),
                r.link.clone(),
                r.verdict.clone(),
                opt(&r.event_id),
                opt(&r.serial),
                opt(&r.status),
                opt(&r.kind),
                opt(&r.product),
                opt(&r.decode_us),
                r.size.to_string(),
                opt(&r.reason),
            ];
            if args.raw {
                let with_raw = WithRaw {
                    row: &r,
                    raw: String::from_utf8_lossy(&r.raw),
                };
                p.push(&with_raw, cells)?;
            } else {
                p.push(&r, cells)?;
            }
        }
        Ok(p)
    }
}

/// A telegram row with its bytes as text (`--raw`).
#[derive(Serialize)]
struct WithRaw<'a> {
    #[serde(flatten)]
    row: &'a TelegramRow,
    raw: std::borrow::Cow<'a, str>,
}

/// The interesting part of an action's JSON, in a few words.
fn action_detail(json: &Value) -> String {
    let get = |k: &str| json.get(k).filter(|v| !v.is_null());
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut parts = Vec::new();
    for key in ["pulse_ms", "pattern", "state", "seconds", "remaining_s"] {
        if let Some(v) = get(key) {
            parts.push(format!("{key}={}", text(v)));
        }
    }
    if let Some(v) = get("text_en") {
        let s = text(v);
        let short: String = s.chars().take(48).collect();
        parts.push(if short.len() < s.len() {
            format!("\"{short}…\"")
        } else {
            format!("\"{short}\"")
        });
    }
    if parts.is_empty() {
        dash()
    } else {
        parts.join(" ")
    }
}

fn time(t: &JstTime) -> String {
    t.0.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

fn dash() -> String {
    "-".to_owned()
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(dash, ToString::to_string)
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// Columns as wide as a terminal shows them: East Asian wide characters take two cells.
fn display_width(s: &str) -> usize {
    s.chars()
        .map(|c| {
            let c = u32::from(c);
            let wide = matches!(c,
                0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF
                | 0x4E00..=0x9FFF | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
                | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD);
            if wide { 2 } else { 1 }
        })
        .sum()
}

/// Aligned columns separated by two spaces; times in JST; the last column unpadded.
fn write_table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    // Tabs and newlines in a cell would break the alignment.
    let clean = |s: &str| s.replace(['\n', '\r', '\t'], " ");
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| clean(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| display_width(h)).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(display_width(cell));
        }
    }
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        let last = row.len().saturating_sub(1);
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            line.push_str(cell);
            if i < last {
                line.extend(std::iter::repeat_n(
                    ' ',
                    w.saturating_sub(display_width(cell)) + 2,
                ));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn table_columns_align_with_wide_characters() {
        let mut out = Vec::new();
        write_table(
            &mut out,
            &["A", "B", "C"],
            &[
                vec!["地震".into(), "x".into(), "end".into()],
                vec!["ab".into(), "long\tcell".into(), "-".into()],
            ],
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "A     B          C\n地震  x          end\nab    long cell  -\n"
        );
    }

    #[test]
    fn action_detail_is_short() {
        let json = serde_json::json!({"action": "on", "pulse_ms": 3000, "pattern": null});
        assert_eq!(action_detail(&json), "pulse_ms=3000");
        assert_eq!(action_detail(&serde_json::json!({})), "-");
    }
}
