//! `eewgate run`, `eewgate check-config` and `eewgate failsafe`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::app::{self, RunOptions};
use crate::config::{self, EX_CONFIG};

/// Arguments of `eewgate run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Settings file (TOML; see config/eewgate.example.toml).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Print every action, telegram verdict, link change and fault on standard output as
    /// JSON Lines (`type`: action, telegram, link, garbage, fault).
    #[arg(long)]
    events_stdout: bool,
    /// Keep `health.json` and the first-boot `setup-code` here for `eewgate health-gate`
    /// and `eewgate setup-code` (default: systemd's `$RUNTIME_DIRECTORY`, else nowhere).
    #[arg(long, value_name = "DIR")]
    runtime_dir: Option<PathBuf>,
}

/// Arguments of `eewgate check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// Settings file to check.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// Runs the daemon; exit 78 when the settings are invalid.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let cfg = match config::load_daemon(&args.config) {
        Ok(cfg) => cfg,
        Err(errors) => {
            print_errors(&args.config, &errors);
            return Ok(ExitCode::from(EX_CONFIG));
        }
    };
    let opts = RunOptions {
        events_stdout: args.events_stdout,
        config_path: Some(args.config.clone()),
        runtime_dir: crate::system::runtime_dir::resolve(args.runtime_dir.as_deref()),
        ..RunOptions::default()
    }
    .with_env_hooks();
    app::run(cfg, opts)
}

/// Checks a settings file: every problem at once, exit 78 when invalid.
pub fn check_config(args: &CheckConfigArgs) -> ExitCode {
    match config::load_daemon(&args.file) {
        Ok(cfg) => {
            for note in &cfg.notes {
                println!("note: {note}");
            }
            println!(
                "{}: valid — {} link(s), {} relay contact(s), prediction mode {:?}, history at {}",
                args.file.display(),
                cfg.links.len(),
                cfg.settings.outputs.relays.len(),
                cfg.settings.prediction.mode,
                cfg.storage.path.display()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            print_errors(&args.file, &errors);
            ExitCode::from(EX_CONFIG)
        }
    }
}

fn print_errors(file: &std::path::Path, errors: &[eew_core::settings::SettingsError]) {
    for e in errors {
        if e.path.is_empty() {
            eprintln!("{}: {}", file.display(), e.message);
        } else {
            eprintln!("{}: {}: {}", file.display(), e.path, e.message);
        }
    }
    eprintln!(
        "{}: {} problem(s); nothing was started",
        file.display(),
        errors.len()
    );
}

/// Arguments of `eewgate failsafe`.
#[derive(Debug, Args)]
pub struct FailsafeArgs {
    /// Settings file naming the relay pins.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Where the daemon remembered the pins it drove (default: systemd's
    /// `$STATE_DIRECTORY`): released too, so a settings file edited since (invalid, or
    /// naming other pins) cannot leave a contact closed.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

/// The state directory: the flag, else the first of systemd's `$STATE_DIRECTORY`.
pub(crate) fn state_dir(flag: Option<&std::path::Path>) -> Option<PathBuf> {
    crate::system::runtime_dir::systemd_dir(flag, "STATE_DIRECTORY")
}

/// Releases every relay contact the settings name and every one the daemon last drove:
/// exit 0; 78 when the settings are invalid and no remembered pins could stand in; 1
/// when a pin could not be set.
pub fn failsafe(args: &FailsafeArgs) -> ExitCode {
    let cfg = config::load_daemon(&args.config);
    let remembered = match state_dir(args.state_dir.as_deref()) {
        Some(dir) => match crate::outputs::recall_pins(&dir) {
            Ok(r) => r,
            Err(err) => {
                eprintln!("eewgate failsafe: {err:#}");
                None
            }
        },
        None => None,
    };
    let mut boards = Vec::new();
    // The remembered pins first: the settings' own levels are what stays.
    if let Some(r) = remembered {
        boards.push(("remembered", r));
    }
    let invalid = match cfg {
        Ok(cfg) => {
            boards.push(("settings", cfg.hardware));
            false
        }
        Err(errors) => {
            print_errors(&args.config, &errors);
            true
        }
    };
    if boards.is_empty() {
        return ExitCode::from(EX_CONFIG);
    }
    if invalid {
        eprintln!("eewgate failsafe: releasing the pins the daemon last drove instead");
    }
    let mut failed = false;
    for (source, hw) in &boards {
        match crate::outputs::failsafe(hw) {
            Ok(lines) => {
                for mut l in lines {
                    if let Some(m) = l.as_object_mut() {
                        m.insert("from".to_owned(), serde_json::json!(source));
                    }
                    println!("{l}");
                }
            }
            Err(err) => {
                eprintln!("eewgate failsafe ({source}): {err:#}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
