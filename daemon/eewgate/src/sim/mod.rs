//! Protocol-faithful upstream simulators (`eewgate sim`), for tests, demos and drills.
//!
//! - [`jma`]: a JMA code-telegram stream server over TCP (`sim jma-tcp`, plain or JMA
//!   socket framing with health checks) and over a pseudo-terminal standing in for a
//!   serial line (`sim jma-serial`).
//! - [`dmdata`]: a DM-D.S.S WebSocket API v2 server (`sim dmdata`): tickets, the
//!   `dmdata.v2` socket with ping/pong, gzip+base64 data messages.
//!
//! Every simulator prints one JSON object per line on standard output — first where it
//! can be reached (`{"listening":"127.0.0.1:PORT"}`, `{"pty":"/dev/pts/N"}`), then what it
//! does — so a test can start it, read the address and follow along. It runs until
//! interrupted (SIGINT/SIGTERM, exit 0) unless told to stop earlier.

use std::process::ExitCode;

use anyhow::Context;

pub mod dmdata;
pub mod jma;

/// `eewgate sim …`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    #[command(subcommand)]
    command: SimCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SimCommand {
    /// Serve JMA code telegrams over TCP to every client that connects.
    ///
    /// Replays telegram files (one telegram each, or whole recorded streams) in order,
    /// at a fixed interval or at their original spacing, with optional duplicates,
    /// reordering, garbage and link drops; `--framing jma-socket` speaks JMA's socket
    /// procedure and sends health checks that must be answered. Prints
    /// `{"listening":"ADDR"}` first, then one JSON line per event.
    JmaTcp(Box<jma::JmaTcpArgs>),
    /// Write JMA code telegrams to a pseudo-terminal standing in for a serial line.
    ///
    /// Prints `{"pty":"/dev/pts/N"}`: a serial link opens that path. The replay options
    /// are those of `jma-tcp`.
    JmaSerial(Box<jma::JmaSerialArgs>),
    /// Serve the DM-D.S.S WebSocket API v2 (Socket Start, WebSocket dmdata.v2).
    ///
    /// `POST /v2/socket` hands out tickets (the API key checked against --api-key); the
    /// WebSocket requires the dmdata.v2 subprotocol and a valid ticket, sends start,
    /// pings every --ping-interval-s and closes with 4891 when no pong comes back. JMA
    /// XML and DM-D.S.S JSON files are published gzip+base64 in the documented envelope
    /// to every open socket, with optional duplicates, broken bodies, garbage, drops and
    /// restarts. Prints `{"listening":"http://ADDR"}` first, then one JSON line per event.
    Dmdata(Box<dmdata::DmdataSimArgs>),
}

/// Runs `eewgate sim …` on a runtime of its own; exit status 0 when interrupted or done.
pub fn run(args: &SimArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the simulator's runtime")?;
    runtime.block_on(async {
        let work = async {
            match &args.command {
                SimCommand::JmaTcp(a) => jma::run_tcp(a).await,
                SimCommand::JmaSerial(a) => jma::run_serial(a).await,
                SimCommand::Dmdata(a) => dmdata::run(a).await,
            }
        };
        tokio::select! {
            result = work => result,
            () = shutdown_signal() => Ok(()),
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
