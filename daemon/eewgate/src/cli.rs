//! Command-line interface.

use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand};
use eew_core::telegram::{self, MAX_INPUT_BYTES};
use serde_json::{Value, json};

/// Earthquake Early Warning (緊急地震速報) receiving appliance for buildings.
#[derive(Debug, Parser)]
#[command(name = "eewgate", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse and validate EEW telegrams; print one JSON object per input (JSON Lines).
    ///
    /// Accepts JMA code telegrams, JMA XML (VXSE42/43/44/45), DM-D.S.S eew-information
    /// JSON and Wolfx jma_eew JSON; the format is detected from the content. Exits 1 when
    /// any input was rejected or could not be read.
    Parse {
        /// Files to parse; `-` reads one telegram from standard input.
        #[arg(required = true, value_name = "FILE")]
        inputs: Vec<PathBuf>,
        /// Pretty-print each object over several lines (no longer JSON Lines).
        #[arg(long)]
        pretty: bool,
    },
    /// Predict what reports (or a bare hypocentre) mean for one site; print one JSON object
    /// per input (JSON Lines).
    ///
    /// Runs the appliance's own prediction: intensity class, instrumental intensity, PGV,
    /// distances, P/S travel times and the S arrival, with the reasons (`notes`). Either
    /// `--hypocenter LAT,LON,DEPTH_KM --magnitude MJ` or report files (any format `parse`
    /// accepts). Exits 1 when any input was rejected or could not be read, 2 on bad
    /// arguments.
    Predict(Box<crate::predict_cmd::PredictArgs>),
    /// Run the alert engine over a telegram sequence in simulated time; print every
    /// action (relay, audio, LED, MQTT) as JSON Lines.
    ///
    /// Exits 78 when the settings are invalid (every problem is listed), 1 when a
    /// telegram was rejected (the others are still replayed).
    Replay(Box<crate::replay_cmd::ReplayArgs>),
    /// What the settings would do with reference earthquakes (a nearby M7 inland, a
    /// distant M8 offshore, a deep M6, a PLUM-only report, a training report): the site's
    /// predicted class and exactly which outputs operate, when.
    ///
    /// A table, or JSON Lines with `--json`; `--write-telegrams DIR` also writes each
    /// reference report as a JMA XML telegram for `eewgate replay`. Exits 78 when the
    /// settings are invalid (every problem is listed).
    Whatif(Box<crate::whatif_cmd::WhatIfArgs>),
    /// Print recent history (telegrams unless told otherwise: alerts, actions, decisions,
    /// link events, faults, configuration changes), newest first, as a table or JSON Lines.
    ///
    /// Reads the database without disturbing a running daemon. Exits 1 when the database
    /// cannot be read.
    History(Box<crate::history_cmd::HistoryArgs>),
    /// Run the daemon: receive from every configured link, decide, act, record.
    ///
    /// Exits 78 when the settings are invalid; stops cleanly on SIGTERM/SIGINT.
    Run(Box<crate::run_cmd::RunArgs>),
    /// Release every configured relay contact (its safe state) and exit; for systemd's
    /// `ExecStopPost=`, so the contacts are released even after `kill -9`.
    ///
    /// Prints one JSON line per contact. Exits 78 when the settings are invalid, 1 when a
    /// pin could not be set.
    Failsafe(crate::run_cmd::FailsafeArgs),
    /// Check a settings file and report every problem at once (exit 78 when invalid).
    CheckConfig(crate::run_cmd::CheckConfigArgs),
    /// Is the running daemon ready and without faults? Exit 0 when it is, 1 (printing
    /// why) when not: for an update's mark-good and for scripts.
    ///
    /// Reads `health.json` from the daemon's runtime directory; needs no login or broker.
    HealthGate(crate::local_cmd::HealthGateArgs),
    /// Show the web UI's first-boot setup code with the addresses to open (nothing once
    /// the appliance is set up); for the console at first boot.
    SetupCode(crate::local_cmd::SetupCodeArgs),
    /// Run the whole daemon here with nothing to wire: sim relays and LED, audio to WAV
    /// files, SQLite history, MQTT to a local broker, fed a recorded earthquake sequence.
    ///
    /// Narrates every telegram, decision, contact, announcement and publish; stops by
    /// itself when the sequence is over (about 2½ minutes; `--fast` for 30 s).
    Demo(crate::demo_cmd::DemoArgs),
    /// Protocol-faithful upstream simulators for tests, demos and drills (JSON Lines on
    /// standard output; runs until interrupted).
    Sim(crate::sim::SimArgs),
}

/// Runs the command line; the exit code reflects the inputs, errors are I/O on stdout.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Parse { inputs, pretty } => parse_command(&inputs, pretty),
        Command::Replay(args) => crate::replay_cmd::run(&args),
        Command::Whatif(args) => crate::whatif_cmd::run(&args),
        Command::History(args) => crate::history_cmd::run(&args),
        Command::Run(args) => crate::run_cmd::run(&args),
        Command::CheckConfig(args) => Ok(crate::run_cmd::check_config(&args)),
        Command::HealthGate(args) => Ok(crate::local_cmd::health_gate(&args)),
        Command::SetupCode(args) => Ok(crate::local_cmd::setup_code(&args)),
        Command::Failsafe(args) => Ok(crate::run_cmd::failsafe(&args)),
        Command::Sim(args) => crate::sim::run(&args),
        Command::Demo(args) => crate::demo_cmd::run(&args),
        Command::Predict(args) => match crate::predict_cmd::run(&args) {
            Ok(result) => result,
            // Checks clap cannot make alone (a site outside Japan, an unknown area):
            // reported like clap's own errors, exit status 2.
            Err(usage) => {
                let mut cmd = Cli::command();
                cmd.build();
                let err = match cmd.find_subcommand_mut("predict") {
                    Some(predict) => predict.error(ErrorKind::ValueValidation, usage.0),
                    None => cmd.error(ErrorKind::ValueValidation, usage.0),
                };
                err.exit()
            }
        },
    }
}

fn parse_command(inputs: &[PathBuf], pretty: bool) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut all_ok = true;
    for input in inputs {
        let name = input.to_string_lossy().into_owned();
        let line = match read_input(input) {
            Err(err) => {
                all_ok = false;
                tracing::warn!(input = %name, error = %err, "input unreadable");
                json!({
                    "error": "unreadable",
                    "reason": "io",
                    "message": format!("{err:#}"),
                    "input": name,
                })
            }
            Ok(bytes) => match telegram::parse(&bytes) {
                Ok(report) => {
                    tracing::debug!(event_id = %report.event_id, serial = report.serial, input = %name, "parsed");
                    let mut value =
                        serde_json::to_value(&report).context("serializing a report")?;
                    if let Value::Object(map) = &mut value {
                        map.insert("input".into(), Value::String(name));
                    }
                    value
                }
                Err(rejection) => {
                    all_ok = false;
                    tracing::info!(input = %name, reason = %rejection.reason, "rejected: {}", rejection.message);
                    json!({
                        "error": "rejected",
                        "reason": rejection.reason.code(),
                        "message": rejection.message,
                        "input": name,
                    })
                }
            },
        };
        if pretty {
            serde_json::to_writer_pretty(&mut out, &line)?;
        } else {
            serde_json::to_writer(&mut out, &line)?;
        }
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Reads at most one byte more than the parser accepts, so an endless or huge input
/// is refused by the parser's size check instead of exhausting memory.
pub(crate) fn read_input(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let limit = u64::try_from(MAX_INPUT_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        io::stdin()
            .lock()
            .take(limit)
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
    } else {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        file.take(limit)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", path.display()))?;
    }
    Ok(bytes)
}
