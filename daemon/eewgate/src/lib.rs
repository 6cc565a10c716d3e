//! `eewgate`: the Earthquake Early Warning receiving appliance for buildings — the
//! imperative shell around the pure `eew-core`.
//!
//! Every socket, serial port, file, clock and pin is here, behind a seam; every decision
//! is in `eew-core`. The binary (`main.rs`) is a thin wrapper around [`cli::run`]; the
//! modules are a library so the system tests and benchmarks can reach them.
//!
//! - [`cli`] and the `*_cmd` modules — the command line (`whatif_cmd`: the settings'
//!   what-if preview over reference earthquakes).
//! - [`config`] — the settings file (engine settings from `eew-core`, plus the daemon's
//!   own sections), every problem at once.
//! - [`inputs`] — upstream links: framing, reconnecting, liveness.
//! - [`store`] — history in SQLite (sqlx).
//! - [`sim`] — protocol-faithful upstream simulators (`eewgate sim`).
//! - [`system`] — clock, systemd, watchdog, time sync.
//! - [`hw`] — pins (relays, LED): the sim and Raspberry Pi backends.
//! - [`settings_edit`] — editing the settings file from the web UI: by dotted path,
//!   validated, diffed, written atomically.
//! - [`webui`] — the `[webui]` section and the web UI's `Appliance` over the daemon.

pub mod app;
pub mod assurance;
pub mod audio;
pub mod cli;
pub mod config;
pub mod demo_cmd;
pub mod drills;
pub mod history_cmd;
pub mod hw;
pub mod inputs;
pub mod local_cmd;
pub mod mqtt;
pub mod outputs;
pub mod predict_cmd;
pub mod replay_cmd;
pub mod run_cmd;
pub mod settings_edit;
pub mod sim;
pub mod status;
pub mod store;
pub mod supervisor;
pub mod system;
pub mod webhook;
pub mod webui;
pub mod webui_tls;
pub mod whatif_cmd;
