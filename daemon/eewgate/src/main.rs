//! `eewgate`: the Earthquake Early Warning receiving appliance for buildings.
//!
//! This binary is the imperative shell around the pure `eew-core`: it reads files,
//! sockets, pins and the clock, and hands values to the core. For now it offers the
//! `parse`, `predict` and `replay` commands; the daemon (`run`, `demo`) follows.

use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EEWGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match eewgate::cli::run() {
        Ok(code) => code,
        // A reader that stopped reading (`eewgate replay … | head`) is not an error.
        Err(err)
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("eewgate: {err:#}");
            ExitCode::FAILURE
        }
    }
}
