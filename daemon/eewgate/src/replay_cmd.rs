//! `eewgate replay`: the alert engine over a telegram sequence, in simulated time.
//!
//! The same [`Timeline`] loop the tests use: each telegram is fed at its time (its own
//! issue time with `--at-original-times`, otherwise all at the start time, in order),
//! every deadline in between fires (pulse ends, pre-start waits, countdowns, expiry), and
//! after the last telegram the engine runs until nothing is scheduled.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::DateTime;
use clap::Args;
use eew_core::engine::{Engine, Input, Step, Timeline};
use eew_core::{JstTime, telegram};
use serde_json::{Value, json};

use crate::cli::read_input;
use crate::config;

/// How long after the last input the replay keeps firing deadlines (hours). Longer than
/// any expiry (≤ 1 h) plus hold time the settings allow.
const DRAIN_HOURS: i64 = 6;

/// Arguments of `eewgate replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Settings file (TOML; see config/eewgate.example.toml).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Feed each telegram at its own issue time (default: all at the start time, in
    /// order).
    #[arg(long)]
    at_original_times: bool,
    /// Simulated start time (RFC 3339); default: the first telegram's issue time.
    #[arg(long, value_name = "RFC3339")]
    start: Option<String>,
    /// Also print the engine's decision for every input (`{"decision": …}` lines).
    #[arg(long)]
    decisions: bool,
    /// Telegram files, fed in this order; `-` reads one from standard input.
    #[arg(required = true, value_name = "TELEGRAM")]
    telegrams: Vec<PathBuf>,
}

/// Runs the replay; exit 78 on invalid settings, 1 if any telegram was rejected.
pub fn run(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let settings = match config::load(&args.config) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let start = match args.start.as_deref().map(DateTime::parse_from_rfc3339) {
        None => None,
        Some(Ok(t)) => Some(JstTime::from_datetime(t)),
        Some(Err(err)) => {
            eprintln!("eewgate replay: --start is not an RFC 3339 time: {err}");
            return Ok(ExitCode::from(2));
        }
    };

    let mut reports = Vec::new();
    let mut all_ok = true;
    for path in &args.telegrams {
        let name = path.to_string_lossy().into_owned();
        match read_input(path).map(|bytes| telegram::parse(&bytes)) {
            Err(err) => {
                all_ok = false;
                eprintln!("eewgate replay: {name}: unreadable: {err:#}");
            }
            Ok(Err(rejection)) => {
                all_ok = false;
                eprintln!(
                    "eewgate replay: {name}: rejected ({}): {}",
                    rejection.reason.code(),
                    rejection.message
                );
            }
            Ok(Ok(report)) => reports.push((name, report)),
        }
    }

    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let first_time = start.or_else(|| {
        reports
            .iter()
            .find_map(|(_, r)| r.issued_at.or(r.origin_time))
    });
    let Some(first_time) = first_time else {
        if !reports.is_empty() {
            eprintln!("eewgate replay: no telegram carries a time; give --start");
        }
        return Ok(ExitCode::from(if all_ok && reports.is_empty() {
            0
        } else {
            1
        }));
    };

    let mut timeline = Timeline::new(Engine::new(settings));
    let mut now = first_time;
    for (name, report) in reports {
        if args.at_original_times {
            let own = report.issued_at.or(report.origin_time).unwrap_or(now);
            if own < now {
                tracing::warn!(input = %name, "issue time earlier than the previous input; fed at the previous time");
            }
            now = now.max(own);
        }
        tracing::debug!(event_id = %report.event_id, serial = report.serial, input = %name, at = %now, "feeding");
        let steps = timeline.feed(Input::Report(Box::new(report)), now);
        print_steps(&mut out, &steps, args.decisions, Some(&name))?;
    }
    let limit = JstTime(now.0 + chrono::TimeDelta::hours(DRAIN_HOURS));
    let steps = timeline.drain(limit);
    print_steps(&mut out, &steps, args.decisions, None)?;
    out.flush().context("writing to standard output")?;
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_steps(
    out: &mut impl Write,
    steps: &[Step],
    decisions: bool,
    input: Option<&str>,
) -> anyhow::Result<()> {
    let last = steps.len().saturating_sub(1);
    for (i, step) in steps.iter().enumerate() {
        // Ticks fired on the way to an input are not that input's decisions.
        let input = input.filter(|_| i == last);
        if decisions {
            for d in &step.decisions {
                let mut v = serde_json::to_value(d).context("serializing a decision")?;
                if let Value::Object(map) = &mut v {
                    map.insert("decision".into(), json!(d.outcome));
                    map.remove("outcome");
                    if let Some(input) = input {
                        map.insert("input".into(), json!(input));
                    }
                }
                writeln!(out, "{v}").context("writing to standard output")?;
            }
        }
        for a in &step.actions {
            let line = serde_json::to_string(a).context("serializing an action")?;
            writeln!(out, "{line}").context("writing to standard output")?;
        }
    }
    Ok(())
}
