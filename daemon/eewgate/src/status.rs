//! The one status model: links, time, watchdog, storage, outputs' health and the current
//! alert, published on a `watch` channel for the web UI, MQTT and the LED.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Health of one upstream link.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LinkStatus {
    /// Connected (or, for a replay, running).
    pub up: bool,
    /// Where it is connected.
    pub peer: Option<String>,
    /// Why it is down, when it is.
    pub down_reason: Option<String>,
    /// Silent beyond its limit, or down: a fault.
    pub fault: bool,
    /// Last telegram received.
    pub last_telegram_at: Option<DateTime<Utc>>,
    /// Last sign of life of any kind (telegram, health check, ping).
    pub last_alive_at: Option<DateTime<Utc>>,
    /// Telegrams received.
    pub telegrams: u64,
    /// Telegrams this link delivered first (the copy that was used).
    pub first_copies: u64,
    /// Bytes set aside as garbage or invalid.
    pub rejected: u64,
    /// Receipt minus issue time of the latest live report on this link (ms): JMA's and
    /// the distributor's delay plus any clock offset.
    pub latency_ms: Option<i64>,
}

/// Clock quality (the guideline requires ±1 s).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TimeStatus {
    /// The kernel reports the clock synchronised (adjtimex), when known.
    pub synchronised: Option<bool>,
    /// The kernel's estimated error bound (µs), when known.
    pub est_error_us: Option<i64>,
    /// Seconds since systemd-timesyncd last synchronised, when it is the NTP client.
    pub since_last_sync_s: Option<u64>,
    /// Receive time minus issue time of the latest report (ms): delivery latency plus
    /// clock offset.
    pub upstream_offset_ms: Option<i64>,
    /// A fault: unsynchronised, or offset beyond the limit.
    pub fault: bool,
    /// Why.
    pub detail: Option<String>,
}

/// Storage health.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StorageStatus {
    /// History is being written.
    pub ok: bool,
    /// Why not.
    pub detail: Option<String>,
    /// Records dropped because the history queue was full.
    pub dropped: u64,
}

/// The watchdog.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WatchdogStatus {
    /// systemd's watchdog is enabled for this service.
    pub systemd: bool,
    /// A hardware watchdog device is held.
    pub hardware: bool,
    /// The engine loop and the link supervisor are making progress.
    pub progressing: bool,
}

/// The current alert, as the engine sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AlertStatus {
    /// Events with a running alarm, most dangerous first.
    pub running: Vec<String>,
    /// Relay contacts closed.
    pub closed_relays: Vec<u8>,
    /// The LED pattern.
    pub led: Option<eew_core::engine::LedPattern>,
    /// The alarm the voice and the LED follow: class, arrival, flags.
    pub current: Option<eew_core::engine::AlarmView>,
}

/// One piece of evidence about a channel, as the status model shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evidence {
    /// When it was seen.
    pub at: DateTime<Utc>,
    /// What produced it: `self_test`, `operator`, `alarm`, `probe`, `continuous`.
    pub source: String,
    /// How the result was observed: `readback`, `pin`, `playback`, `puback`,
    /// `roundtrip`, `operator`, …
    pub method: String,
    /// The channel worked.
    pub ok: bool,
    /// What was measured (a read-back's delay, a round trip, seconds played), ms.
    pub measurement_ms: Option<f64>,
    /// For people.
    pub detail: Option<String>,
}

/// What is known about one channel's proof of working (delivery assurance).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Verification {
    /// The latest evidence, whatever its result.
    pub last: Option<Evidence>,
    /// When the channel was last seen working.
    pub last_ok_at: Option<DateTime<Utc>>,
    /// How it was seen working then.
    pub last_ok_method: Option<String>,
    /// The newest success of each method: what delivery assurance ages (a method proves
    /// the channel for as long as the channel's policy says, or not at all).
    pub ok_by_method: BTreeMap<String, DateTime<Utc>>,
    /// When the channel stops being trusted without a new proof (delivery assurance's
    /// policy; `None` when the channel is not aged).
    pub due_at: Option<DateTime<Utc>>,
}

impl Verification {
    /// Takes in a new piece of evidence.
    pub fn record(&mut self, e: Evidence) {
        if e.ok {
            self.last_ok_at = Some(e.at);
            self.last_ok_method = Some(e.method.clone());
            self.ok_by_method.insert(e.method.clone(), e.at);
        }
        self.last = Some(e);
    }

    /// The latest proof failed: the channel is not trusted until a new one succeeds.
    pub fn failed(&self) -> bool {
        self.last.as_ref().is_some_and(|e| !e.ok)
    }
}

/// The settings the daemon runs with, and a saved change that waits.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SettingsStatus {
    /// Revision of the settings text in effect (`settings_edit::revision`).
    pub revision: String,
    /// When it took effect.
    pub applied_at: Option<DateTime<Utc>>,
    /// A saved change that is not in effect yet, and why: `waiting_for_alert_end` (an
    /// alert is in progress or a contact is still closed).
    pub pending: Option<String>,
    /// The channels the change now in effect touched (`mqtt`, `relay:1`, …): delivery
    /// assurance probes them at once, and the settings page shows their results.
    pub changed_channels: Vec<String>,
}

/// Everything at once.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Status {
    /// When the daemon started.
    pub started_at: Option<DateTime<Utc>>,
    /// Every subsystem is up (READY=1 was sent).
    pub ready: bool,
    /// Links by name.
    pub links: BTreeMap<String, LinkStatus>,
    /// Every link is faulty: a major fault.
    pub all_links_down: bool,
    /// Clock quality.
    pub time: TimeStatus,
    /// History.
    pub storage: StorageStatus,
    /// Watchdog.
    pub watchdog: WatchdogStatus,
    /// Outputs' health by output name (`relay:1` → `ok` or `fault: …`; `led` → the
    /// pattern shown).
    pub outputs: BTreeMap<String, String>,
    /// The current alert.
    pub alert: AlertStatus,
    /// Outputs whose scheduled end-to-end proof is overdue (the delivery-assurance
    /// schedule sets them); shown on the LED and as a fault.
    pub verification_overdue: Vec<String>,
    /// The settings in effect.
    pub settings: SettingsStatus,
    /// What each output is connected to, for people (`relay:1` → `elevators`).
    pub output_names: BTreeMap<String, String>,
    /// Each channel's latest evidence of working (`relay:1`, `audio`, `led`, `mqtt`, …),
    /// restored from history at start so its age survives restarts.
    pub verification: BTreeMap<String, Verification>,
}

impl Status {
    /// A channel's latest proof failed, or one is overdue: the channel is not trusted.
    pub fn verification_fault(&self) -> bool {
        !self.verification_overdue.is_empty()
            || self.verification.values().any(Verification::failed)
    }

    /// An alert is in progress: an event's alarm runs or a contact is still closed. A
    /// saved settings change waits for this to end (ADR 0011).
    pub fn alert_in_progress(&self) -> bool {
        !self.alert.running.is_empty() || !self.alert.closed_relays.is_empty()
    }

    /// Stable codes of every fault now present (empty when all is well).
    pub fn faults(&self) -> Vec<String> {
        let mut faults = Vec::new();
        if self.all_links_down {
            faults.push("all_links_down".to_owned());
        }
        for (name, l) in &self.links {
            if l.fault {
                faults.push(format!("link:{name}"));
            }
        }
        if self.time.fault {
            faults.push("time".to_owned());
        }
        if !self.storage.ok {
            faults.push("storage".to_owned());
        }
        for (name, health) in &self.outputs {
            if health.starts_with("fault") {
                faults.push(name.clone());
            }
        }
        for name in &self.verification_overdue {
            faults.push(format!("verification_overdue:{name}"));
        }
        for (name, v) in &self.verification {
            if v.failed() {
                faults.push(format!("verification_failed:{name}"));
            }
        }
        faults
    }

    /// One line for systemd's `STATUS=` and the log.
    pub fn summary(&self) -> String {
        let up = self.links.values().filter(|l| l.up && !l.fault).count();
        let faults = self.faults();
        let alert = if self.alert.running.is_empty() {
            "no alert".to_owned()
        } else {
            format!("ALERT {}", self.alert.running.join(","))
        };
        if faults.is_empty() {
            format!("{up}/{} links up; {alert}", self.links.len())
        } else {
            format!(
                "{up}/{} links up; {alert}; FAULT {}",
                self.links.len(),
                faults.join(",")
            )
        }
    }
}
