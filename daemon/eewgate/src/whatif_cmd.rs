//! `eewgate whatif`: what the settings would do with the reference earthquakes of
//! `eew_core::whatif` — the site's predicted class and exactly which outputs operate,
//! when — as a table or JSON Lines; optionally each reference report as a JMA XML
//! telegram that `eewgate replay` takes, so the two can be compared.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::DateTime;
use clap::Args;
use eew_core::JstTime;
use eew_core::engine::{ActionKind, Cause};
use eew_core::predict::Arrival;
use eew_core::settings::ContactMode;
use eew_core::whatif::{self, OutputPreview, Preview, Scenario};
use serde_json::{Value, json};

use crate::config;

/// Arguments of `eewgate whatif`.
#[derive(Debug, Args)]
pub struct WhatIfArgs {
    /// Settings file (TOML; see config/eewgate.example.toml).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// When the reference reports are received (RFC 3339; default: now). Quiet hours
    /// depend on it.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
    /// Print one JSON object per reference earthquake (JSON Lines) instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write each reference report into DIR as `<id>.xml` (JMA XML, which
    /// `eewgate replay` reads).
    #[arg(long, value_name = "DIR")]
    write_telegrams: Option<PathBuf>,
}

/// Runs the preview; exit 78 on invalid settings, 2 on a bad `--at`.
pub fn run(args: &WhatIfArgs) -> anyhow::Result<ExitCode> {
    let settings = match config::load(&args.config) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let now = match args.at.as_deref().map(DateTime::parse_from_rfc3339) {
        None => crate::system::clock::now_jst(),
        Some(Ok(t)) => JstTime::from_datetime(t),
        Some(Err(err)) => {
            eprintln!("eewgate whatif: --at is not an RFC 3339 time: {err}");
            return Ok(ExitCode::from(2));
        }
    };
    let scenarios =
        whatif::scenarios(&settings, now).context("making the reference earthquakes")?;
    let written = match &args.write_telegrams {
        Some(dir) => Some(write_telegrams(dir, &scenarios)?),
        None => None,
    };
    let previews = whatif::preview(&settings, &scenarios);

    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for (i, p) in previews.iter().enumerate() {
        let telegram = written.as_ref().and_then(|w| w.get(i));
        if args.json {
            let mut v = serde_json::to_value(p).context("serializing a preview")?;
            if let (Value::Object(map), Some(path)) = (&mut v, telegram) {
                map.insert("telegram".into(), json!(path.display().to_string()));
            }
            writeln!(out, "{v}").context("writing to standard output")?;
        } else {
            out.write_all(table(p, telegram).as_bytes())
                .context("writing to standard output")?;
        }
    }
    out.flush().context("writing to standard output")?;
    Ok(ExitCode::SUCCESS)
}

/// Writes `<dir>/<id>.xml` for every scenario; the paths, in order.
fn write_telegrams(dir: &Path, scenarios: &[Scenario]) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    scenarios
        .iter()
        .map(|s| {
            let path = dir.join(format!("{}.xml", s.id));
            std::fs::write(&path, &s.telegram)
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(path)
        })
        .collect()
}

fn seconds(ms: i64) -> String {
    // Offsets are within the 6 h drain: exact in f64.
    #[allow(clippy::cast_precision_loss, reason = "|ms| < 2^53")]
    let s = ms as f64 / 1000.0;
    format!("+{s:.1} s")
}

fn cause(c: Cause) -> &'static str {
    match c {
        Cause::Start => "start",
        Cause::Update => "update",
        Cause::Prestart => "after the PA pre-start",
        Cause::Countdown => "countdown",
        Cause::Cancel => "cancel",
        Cause::Expiry => "expiry",
        Cause::PulseEnd => "pulse end",
        Cause::HoldEnd => "hold time over",
        Cause::Reset => "reset",
        Cause::Silence => "silence",
        Cause::Fault => "fault",
        Cause::SelfTest => "self-test",
    }
}

/// The readable form of one preview.
fn table(p: &Preview, telegram: Option<&PathBuf>) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "{} — {} ({})", p.scenario, p.title_en, p.title_ja);
    let e = &p.epicentre;
    let mut place = e.name.clone().unwrap_or_else(|| "unnamed".to_owned());
    if e.assumed {
        place.push_str(" (assumed hypocentre at the site)");
    } else if let Some(km) = e.distance_km {
        let _ = write!(place, ", {km:.0} km {} of the site", e.direction_en);
    }
    if let Some(d) = e.depth_km {
        let _ = write!(place, ", depth {d} km");
    }
    if let Some(m) = e.magnitude {
        let _ = write!(place, ", M{m:.1}");
    }
    let _ = writeln!(t, "  epicentre   {place}");
    let _ = writeln!(t, "  received    {}", p.received_at);
    if let Some(path) = telegram {
        let _ = writeln!(t, "  telegram    {}", path.display());
    }
    let pr = &p.prediction;
    let class = pr.class.map_or("none", |c| c.as_str());
    let arrival = match (pr.arrival, pr.seconds_to_s) {
        (Arrival::At { .. }, Some(s)) if s >= 0.0 => format!("S wave in {s:.1} s"),
        (Arrival::At { .. }, Some(s)) => format!("S wave {:.1} s ago", -s),
        (Arrival::Arrived, _) => "S wave arrived".to_owned(),
        (Arrival::Imminent, _) => "imminent (PLUM, no countdown)".to_owned(),
        _ => "arrival unknown".to_owned(),
    };
    let basis = serde_json::to_value(pr.class_basis)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let _ = writeln!(
        t,
        "  site        class {class} ({basis}, {} mode), {arrival}{}",
        match pr.mode {
            eew_core::predict::PredictionMode::Area => "area",
            eew_core::predict::PredictionMode::Site => "site",
        },
        if pr.warning { ", warning" } else { "" }
    );
    match (p.acted, p.reason) {
        (true, _) => {
            let _ = writeln!(t, "  engine      acts");
        }
        (false, reason) => {
            let _ = writeln!(
                t,
                "  engine      does not act: {}",
                reason.unwrap_or("no decision")
            );
        }
    }
    for o in &p.outputs {
        let label = match &o.name {
            Some(n) => format!("{} {n}", o.output),
            None => o.output.to_string(),
        };
        let _ = writeln!(t, "    {label:<26} {}", output_line(o));
        for a in &o.actions {
            if let ActionKind::Announce {
                text_ja, text_en, ..
            } = &a.action.kind
            {
                let _ = writeln!(
                    t,
                    "    {:<26}   {} says 「{text_ja}」 / \"{text_en}\"",
                    "",
                    seconds(a.offset_ms)
                );
            }
        }
    }
    t.push('\n');
    t
}

fn output_line(o: &OutputPreview) -> String {
    if !o.enabled {
        return "disabled".to_owned();
    }
    if o.actions.is_empty() {
        return "does not fire".to_owned();
    }
    let mut parts: Vec<String> = Vec::new();
    let mut countdown: Vec<(i64, u8)> = Vec::new();
    for a in &o.actions {
        let at = seconds(a.offset_ms);
        let cause = cause(a.action.cause);
        match &a.action.kind {
            ActionKind::On { pulse_ms: Some(ms) } => parts.push(format!("on {at} (pulse {ms} ms)")),
            ActionKind::On { pulse_ms: None } => parts.push(format!("on {at}")),
            ActionKind::Off => parts.push(format!("off {at} ({cause})")),
            ActionKind::Announce { .. } => parts.push(format!("announce {at}")),
            ActionKind::Countdown { seconds, .. } => countdown.push((a.offset_ms, *seconds)),
            ActionKind::Stop => parts.push(format!("stop {at} ({cause})")),
            ActionKind::Led { pattern } => {
                let name = serde_json::to_value(pattern)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                parts.push(format!("{name} {at}"));
            }
            ActionKind::Publish { state, .. } => {
                let name = serde_json::to_value(state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                parts.push(format!("publish {name} {at}"));
            }
        }
    }
    match (countdown.first(), countdown.last()) {
        (Some(first), Some(last)) if first != last => parts.push(format!(
            "countdown {}…{} {}–{}",
            first.1,
            last.1,
            seconds(first.0),
            seconds(last.0)
        )),
        (Some(only), _) => parts.push(format!("countdown {} {}", only.1, seconds(only.0))),
        _ => {}
    }
    if let Some(r) = &o.relay {
        match r.mode {
            ContactMode::Latched if r.hold_s > 0 => {
                parts.push(format!("latched, hold {} s", r.hold_s))
            }
            ContactMode::Latched => parts.push("latched".to_owned()),
            ContactMode::Pulse { .. } => {}
        }
        if r.prestart_ms > 0 {
            parts.push(format!("PA pre-start {} ms", r.prestart_ms));
        }
        if o.held_at_end {
            parts.push("stays closed until the operator's reset".to_owned());
        }
    }
    parts.join(", ")
}
