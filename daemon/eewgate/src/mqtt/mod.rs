//! The MQTT output: everything the appliance knows, republished to the building
//! management system over MQTT 5 (rumqttc), QoS 1. Topics and payloads are documented in
//! `docs/mqtt.md`; the choices in `docs/adr/0010-mqtt-output.md`.
//!
//! With `P` the topic prefix (`eewgate/<device-id>` by default):
//!
//! - `P/status` — retained `online` / `offline` (the Last Will, and on clean shutdown);
//! - `P/state/<field>` and `P/state` — retained alert state of the alert on display, one
//!   value per topic for BMS gateways and the same as JSON; cleared when it is over;
//! - `P/event` — every Publish action, accepted report and engine decision (JSON,
//!   non-retained, MQTT 5 message expiry);
//! - `P/health` — retained health from the status model;
//! - `P/cap` — optional CAP 1.2; Home Assistant discovery configs, optional.
//!
//! Two tasks: the connection ([`connection::drive`], rumqttc's event loop, reconnecting
//! with backoff forever) and the publisher ([`publisher::Publisher`]), which owns the
//! queue, drops stale alerts, republishes the current retained set after every CONNACK
//! and records every Publish action's result with its decision → PUBACK latency.

mod cap;
mod config;
mod connection;
mod discovery;
mod model;
mod payload;
// The health document is also written to the runtime directory (`system::runtime_dir`).
pub(crate) use payload::health as health_document;
mod publisher;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use eew_core::JstTime;
use eew_core::engine::{Action, Decision};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use config::{MqttConfig, TlsConfig, device_id_from_hostname};

use crate::outputs::Ctx;
use crate::supervisor::Supervisor;

/// Capacity of the output's input queue (the core loop `try_send`s into it).
pub const INPUT_QUEUE: usize = 512;
/// Capacity of the connection → publisher channel.
const LINK_QUEUE: usize = 256;

/// What the core loop hands the MQTT output.
#[derive(Clone, Debug)]
pub(crate) enum MqttInput {
    /// An engine action for the `mqtt` output (`Publish`; anything else is ignored).
    Action(Action),
    /// An accepted report: the link it came in on and its public JSON.
    Report {
        /// The link's name.
        link: String,
        /// `serde_json::to_value(&report)`.
        report: serde_json::Value,
    },
    /// A self-test of the MQTT path: a probe received back through the broker
    /// (`publisher::probe`). `source`: `self_test` (an operator) or `probe` (scheduled).
    Probe {
        /// What asked for it.
        source: &'static str,
    },
    /// An engine decision.
    Decision {
        /// When the engine decided.
        at: JstTime,
        /// The decision.
        decision: Decision,
    },
}

/// Why the MQTT output cannot start.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// The password file could not be read.
    #[error("mqtt.password_file: {0}")]
    Password(String),
    /// A PEM file (CA, client certificate or key) is unreadable or holds nothing usable.
    #[error("{}: {detail}", file.display())]
    Pem {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// rustls refused the configuration.
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

/// Checks the daemon section `[mqtt]` (the output is off when it is absent); relative
/// paths are taken from `base`, the settings file's directory. See [`MqttConfig`] for the
/// keys and their defaults.
pub(crate) fn section(
    w: &mut eew_core::settings::Walker,
    table: &toml::Table,
    base: &std::path::Path,
) -> MqttConfig {
    config::section(w, table, base)
}

/// Spawns the MQTT output (its connection and publisher tasks) and returns its bounded
/// queue. When `cfg.enabled` is false it spawns only a task that discards what it is
/// sent, so the caller's `try_send`s succeed either way.
pub(crate) fn spawn(
    sup: &mut Supervisor,
    cfg: &MqttConfig,
    ctx: &Ctx,
) -> anyhow::Result<mpsc::Sender<MqttInput>> {
    let (tx, mut rx) = mpsc::channel::<MqttInput>(INPUT_QUEUE);
    if !cfg.enabled {
        let cancel = ctx.cancel.clone();
        sup.spawn("mqtt", async move {
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    i = rx.recv() => if i.is_none() { cancel.cancelled().await; return Ok(()) },
                }
            }
        });
        return Ok(tx);
    }
    let device_id = cfg.device_id_or_default();
    let client_id = cfg.client_id.clone().unwrap_or_else(|| device_id.clone());
    let prefix = cfg
        .topic_prefix
        .clone()
        .unwrap_or_else(|| format!("eewgate/{device_id}"));
    let password = match &cfg.password_file {
        Some(f) => {
            Some(crate::config::read_secret(f).map_err(|e| MqttError::Password(format!("{e:#}")))?)
        }
        None => None,
    };
    let options = connection::options(cfg, &client_id, &format!("{prefix}/status"), password)?;
    let (client, eventloop) = connection::client(options, publisher::WINDOW + 16);
    let names = publisher::Names {
        device_id,
        prefix,
        broker: format!("{}:{}", cfg.host, cfg.port),
    };
    tracing::info!(
        output = publisher::OUTPUT, broker = %names.broker, prefix = %names.prefix,
        client_id = %client_id, tls = cfg.tls.is_some(), "MQTT output starting"
    );
    ctx.set_output_health(publisher::OUTPUT, None);
    let (link_tx, link_rx) = mpsc::channel(LINK_QUEUE);
    // Not a child of the daemon's token: at shutdown the connection must live on until
    // `offline` and the DISCONNECT are written; the publisher stops it when it ends.
    let stop = CancellationToken::new();
    sup.spawn(
        "mqtt-connection",
        connection::drive(
            eventloop,
            link_tx,
            names.broker.clone(),
            stop.clone(),
            ctx.cancel.clone(),
        ),
    );
    let publisher = publisher::Publisher::new(cfg.clone(), names, ctx.clone(), client);
    sup.spawn("mqtt", publisher.run(rx, link_rx, stop));
    Ok(tx)
}
