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
}

/// Releases every configured relay contact: exit 0, 78 on invalid settings, 1 when a pin
/// could not be set.
pub fn failsafe(args: &FailsafeArgs) -> ExitCode {
    let cfg = match config::load_daemon(&args.config) {
        Ok(cfg) => cfg,
        Err(errors) => {
            print_errors(&args.config, &errors);
            return ExitCode::from(EX_CONFIG);
        }
    };
    match crate::outputs::failsafe(&cfg.hardware) {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("eewgate failsafe: {err:#}");
            ExitCode::FAILURE
        }
    }
}
