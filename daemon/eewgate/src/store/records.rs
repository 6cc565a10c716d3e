//! What goes into history ([`TelegramRecord`], [`LinkRecord`], [`FaultRecord`],
//! [`EvidenceRecord`], ..., and the engine's own `Action` and `Decision`) and what comes
//! out (the `*Row` types, whose serde form is the JSON printed by `eewgate history --json`).

use chrono::{DateTime, Utc};
use eew_core::engine::{Action, Decision};
use eew_core::{JstTime, Rejection, Report};
use serde::Serialize;

/// What became of a received telegram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A valid report, the first copy (from any link): handed to the engine.
    Accepted,
    /// A valid report already received (another link, or a repeat): kept for the
    /// per-link arrival times, not handed on.
    Duplicate,
    /// Not a valid telegram: rejected with a reason code.
    Rejected,
    /// Bytes between telegrams, an oversized or broken frame: set aside by the link.
    Garbage,
}

impl Verdict {
    /// The stored code.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::Duplicate => "duplicate",
            Verdict::Rejected => "rejected",
            Verdict::Garbage => "garbage",
        }
    }
}

impl std::str::FromStr for Verdict {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "accepted" => Ok(Verdict::Accepted),
            "duplicate" => Ok(Verdict::Duplicate),
            "rejected" => Ok(Verdict::Rejected),
            "garbage" => Ok(Verdict::Garbage),
            other => Err(format!("unknown verdict {other:?}")),
        }
    }
}

/// One received telegram, for [`super::Store::record_telegram`].
///
/// Times are stored to the millisecond.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelegramRecord {
    /// Wall-clock receive time.
    pub received_at: DateTime<Utc>,
    /// The link's configured name.
    pub link: String,
    /// What became of it.
    pub verdict: Verdict,
    /// Rejection reason code (`Reason::code`) or the link's garbage reason.
    pub reason: Option<String>,
    /// The rejection's sentence for people.
    pub message: Option<String>,
    /// Report: event id.
    pub event_id: Option<String>,
    /// Report: serial.
    pub serial: Option<u32>,
    /// Report: `normal`, `training` or `test`.
    pub status: Option<String>,
    /// Report: `forecast`, `warning`, `cancel` or `delivery_test`.
    pub kind: Option<String>,
    /// Report: wire format (`jma_code`, `jma_xml`, `dmdata_json`, `wolfx_json`).
    pub format: Option<String>,
    /// Report: JMA product (`code37`, `vxse45`, ...).
    pub product: Option<String>,
    /// Report: whether it can drive outputs.
    pub actionable: Option<bool>,
    /// Receive-to-report latency in microseconds.
    pub decode_us: Option<u64>,
    /// The bytes exactly as framed.
    pub raw: Vec<u8>,
}

/// The snake_case serde name of a unit enum value (`Status::Normal` → `normal`).
pub(crate) fn code_of<T: Serialize>(value: &T) -> Option<String> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => Some(s),
        _ => None,
    }
}

impl TelegramRecord {
    /// A valid report: `duplicate` when an earlier copy was already accepted.
    pub fn report(
        link: &str,
        received_at: DateTime<Utc>,
        raw: Vec<u8>,
        report: &Report,
        duplicate: bool,
        decode_us: Option<u64>,
    ) -> Self {
        TelegramRecord {
            received_at,
            link: link.to_owned(),
            verdict: if duplicate {
                Verdict::Duplicate
            } else {
                Verdict::Accepted
            },
            reason: None,
            message: None,
            event_id: Some(report.event_id.as_str().to_owned()),
            serial: Some(report.serial),
            status: code_of(&report.status),
            kind: code_of(&report.kind),
            format: code_of(&report.format),
            product: code_of(&report.product),
            actionable: Some(report.actionable),
            decode_us,
            raw,
        }
    }

    /// A telegram the parser rejected.
    pub fn rejected(
        link: &str,
        received_at: DateTime<Utc>,
        raw: Vec<u8>,
        rejection: &Rejection,
        decode_us: Option<u64>,
    ) -> Self {
        TelegramRecord {
            verdict: Verdict::Rejected,
            reason: Some(rejection.reason.code().to_owned()),
            message: Some(rejection.message.clone()),
            decode_us,
            ..Self::bare(link, received_at, raw)
        }
    }

    /// Bytes a link set aside (`reason` as the link gave it, e.g. `garbage`).
    pub fn garbage(link: &str, received_at: DateTime<Utc>, raw: Vec<u8>, reason: &str) -> Self {
        TelegramRecord {
            verdict: Verdict::Garbage,
            reason: Some(reason.to_owned()),
            ..Self::bare(link, received_at, raw)
        }
    }

    fn bare(link: &str, received_at: DateTime<Utc>, raw: Vec<u8>) -> Self {
        TelegramRecord {
            received_at,
            link: link.to_owned(),
            verdict: Verdict::Garbage,
            reason: None,
            message: None,
            event_id: None,
            serial: None,
            status: None,
            kind: None,
            format: None,
            product: None,
            actionable: None,
            decode_us: None,
            raw,
        }
    }
}

/// What happened to a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Connected and delivering.
    Up,
    /// Connection lost (the link keeps retrying).
    Down,
    /// Connected but silent beyond its liveness limit (a heartbeat fault).
    Silent,
    /// A liveness summary ("42 health checks in the last hour"): proof of life, written
    /// now and then rather than for every ping.
    Alive,
}

impl LinkState {
    /// The stored code.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Up => "up",
            LinkState::Down => "down",
            LinkState::Silent => "silent",
            LinkState::Alive => "alive",
        }
    }
}

/// A link event, for [`super::Store::record_link_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkRecord {
    /// When.
    pub at: DateTime<Utc>,
    /// The link's configured name.
    pub link: String,
    /// What happened.
    pub state: LinkState,
    /// Peer address, reason for the loss, or the summary.
    pub detail: Option<String>,
}

/// A fault raised or cleared, for [`super::Store::record_fault`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRecord {
    /// When.
    pub at: DateTime<Utc>,
    /// Stable code: `time_sync`, `link`, `all_links`, `storage`, ...
    pub kind: String,
    /// Raised (`true`) or cleared.
    pub active: bool,
    /// Why, for people.
    pub detail: Option<String>,
}

/// What an output did with one action, for the `output_results` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputRecord {
    /// When the output finished (or failed).
    pub at: DateTime<Utc>,
    /// `relay:N`, `audio`, `led` or `mqtt`.
    pub output: String,
    /// The action's code (`on`, `off`, `announce`, `countdown`, `stop`, `publish`, ...).
    pub action: String,
    /// The event, when the action had one.
    pub event_id: Option<String>,
    /// The report serial, when the action had one.
    pub serial: Option<u32>,
    /// Done as ordered.
    pub ok: bool,
    /// From the engine's decision to the effect, microseconds.
    pub latency_us: Option<i64>,
    /// The fault, or what was done.
    pub detail: Option<String>,
}

/// One line of the audit trail (web UI setup, logins, changes), for the `audit` table.
/// Never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// When.
    pub at: DateTime<Utc>,
    /// Who (`admin`, or `setup` before an administrator exists).
    pub who: String,
    /// A stable action code (`setup`, `login`, `login_failed`, `logout`, ...).
    pub action: String,
    /// For people: the client address, why it failed.
    pub detail: Option<String>,
}

/// One piece of evidence that a channel works (or a failed proof), for the `evidence` table.
#[derive(Clone, Debug, PartialEq)]
pub struct EvidenceRecord {
    /// When it was seen.
    pub at: DateTime<Utc>,
    /// What it proves: `relay:N`, `audio`, `led`, `mqtt`, `link:<name>`, `time`, ...
    pub channel: String,
    /// What produced it: `self_test`, `operator`, `alarm`, `probe` or `continuous`.
    pub source: String,
    /// How the result was observed: `readback`, `pin`, `playback`, `puback`,
    /// `roundtrip`, `operator`, ...
    pub method: String,
    /// The channel worked (`false`: the proof failed).
    pub ok: bool,
    /// What was measured (a read-back's delay, a round trip, seconds played), ms. A value
    /// that is not finite is stored as none.
    pub measurement_ms: Option<f64>,
    /// For people: what was done, or why it failed.
    pub detail: Option<String>,
}

/// Anything history keeps: what the [`super::HistoryWriter`] queues.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// A received telegram.
    Telegram(TelegramRecord),
    /// An engine decision, at the step's `now`.
    Decision {
        /// The step's `now`.
        at: JstTime,
        /// The decision.
        decision: Decision,
    },
    /// An output action (its `at` is the step's `now`).
    Action(Action),
    /// A link event.
    Link(LinkRecord),
    /// A fault raised or cleared.
    Fault(FaultRecord),
    /// What an output did with an action.
    Output(OutputRecord),
    /// An audit trail entry.
    Audit(AuditRecord),
    /// Evidence that a channel works, or a failed proof.
    Evidence(EvidenceRecord),
    /// The configuration file's text (stored only when it differs from the newest).
    Config {
        /// When it was loaded.
        at: DateTime<Utc>,
        /// The whole file.
        text: String,
    },
}

impl Record {
    /// The table it goes to (for logs).
    pub fn table(&self) -> &'static str {
        match self {
            Record::Telegram(_) => "telegrams",
            Record::Decision { .. } => "decisions",
            Record::Action(_) => "actions",
            Record::Link(_) => "link_events",
            Record::Fault(_) => "faults",
            Record::Output(_) => "output_results",
            Record::Audit(_) => "audit",
            Record::Evidence(_) => "evidence",
            Record::Config { .. } => "config_changes",
        }
    }
}

/// A stored telegram.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TelegramRow {
    /// Row id.
    pub id: i64,
    /// Receive time.
    pub received_at: JstTime,
    /// Link.
    pub link: String,
    /// `accepted`, `duplicate`, `rejected` or `garbage`.
    pub verdict: String,
    /// Reason code.
    pub reason: Option<String>,
    /// Rejection sentence.
    pub message: Option<String>,
    /// Event id.
    pub event_id: Option<String>,
    /// Serial.
    pub serial: Option<u32>,
    /// `normal`, `training`, `test`.
    pub status: Option<String>,
    /// `forecast`, `warning`, `cancel`, `delivery_test`.
    pub kind: Option<String>,
    /// Wire format.
    pub format: Option<String>,
    /// JMA product.
    pub product: Option<String>,
    /// Whether it can drive outputs.
    pub actionable: Option<bool>,
    /// Decode latency, µs.
    pub decode_us: Option<u64>,
    /// Length of `raw` in bytes.
    pub size: u64,
    /// The bytes as received.
    #[serde(skip)]
    pub raw: Vec<u8>,
}

/// A stored engine decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DecisionRow {
    /// Row id.
    pub id: i64,
    /// The step's `now`.
    pub at: JstTime,
    /// Event.
    pub event_id: Option<String>,
    /// Serial.
    pub serial: Option<u32>,
    /// `real`, `training`, `test`, `drill`.
    pub label: String,
    /// Outcome code.
    pub outcome: String,
    /// Detail code.
    pub detail: Option<String>,
}

/// A stored output action.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActionRow {
    /// Row id.
    pub id: i64,
    /// The step's `now`.
    pub at: JstTime,
    /// `relay:N`, `audio`, `led`, `mqtt`.
    pub output: String,
    /// `on`, `off`, `announce`, ...
    pub action: String,
    /// Cause code.
    pub cause: String,
    /// Event.
    pub event_id: Option<String>,
    /// Serial.
    pub serial: Option<u32>,
    /// `real`, `training`, `test`, `drill`.
    pub label: String,
    /// An exercise.
    pub training: bool,
    /// The class the alarm stands at.
    pub intensity_class: Option<String>,
    /// The long-period class.
    pub long_period_class: Option<u8>,
    /// A warning is part of the alarm.
    pub warning: bool,
    /// The action exactly as `eewgate replay` prints it.
    pub json: serde_json::Value,
}

/// One alert: an event that drove outputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AlertRow {
    /// Event.
    pub event_id: String,
    /// `real`, `training`, `test`, `drill` (of its first action).
    pub label: String,
    /// First action.
    pub first_at: JstTime,
    /// Latest action.
    pub last_at: JstTime,
    /// Serial of the first action.
    pub first_serial: Option<u32>,
    /// Serial of the latest action.
    pub last_serial: Option<u32>,
    /// Highest class the alarm stood at.
    pub max_class: Option<String>,
    /// Highest long-period class.
    pub max_long_period_class: Option<u8>,
    /// A warning was part of it.
    pub warning: bool,
    /// JMA cancelled the event.
    pub cancelled: bool,
    /// How it ended (`cancel`, `expiry`, `reset`); `None` while running.
    pub ended: Option<String>,
    /// Number of actions.
    pub actions: u64,
}

/// A stored link event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkRow {
    /// Row id.
    pub id: i64,
    /// When.
    pub at: JstTime,
    /// Link.
    pub link: String,
    /// `up`, `down`, `silent`, `alive`.
    pub state: String,
    /// Detail.
    pub detail: Option<String>,
}

/// A stored fault change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultRow {
    /// Row id.
    pub id: i64,
    /// When.
    pub at: JstTime,
    /// Fault code.
    pub kind: String,
    /// Raised or cleared.
    pub active: bool,
    /// Detail.
    pub detail: Option<String>,
}

/// A stored output result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OutputRow {
    /// Row id.
    pub id: i64,
    /// When the output finished (or failed).
    pub at: JstTime,
    /// `relay:N`, `audio`, `led`, `mqtt`.
    pub output: String,
    /// The action's code.
    pub action: String,
    /// The event.
    pub event_id: Option<String>,
    /// The report serial.
    pub serial: Option<i64>,
    /// Done as ordered.
    pub ok: bool,
    /// Decision to effect, microseconds.
    pub latency_us: Option<i64>,
    /// The fault, or what was done.
    pub detail: Option<String>,
}

/// A stored audit trail entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditRow {
    /// Row id.
    pub id: i64,
    /// When.
    pub at: JstTime,
    /// Who.
    pub who: String,
    /// Action code.
    pub action: String,
    /// Detail.
    pub detail: Option<String>,
}

/// A stored piece of evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvidenceRow {
    /// Row id.
    pub id: i64,
    /// When it was seen (to the millisecond).
    pub at: DateTime<Utc>,
    /// `relay:N`, `audio`, `led`, `mqtt`, `link:<name>`, `time`, ...
    pub channel: String,
    /// `self_test`, `operator`, `alarm`, `probe`, `continuous`.
    pub source: String,
    /// `readback`, `pin`, `playback`, `puback`, `roundtrip`, `operator`, ...
    pub method: String,
    /// The channel worked.
    pub ok: bool,
    /// What was measured, ms.
    pub measurement_ms: Option<f64>,
    /// For people.
    pub detail: Option<String>,
}

/// What history knows of one channel's proof of working.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvidenceSummary {
    /// The newest evidence (the last recorded), whatever its result.
    pub last: EvidenceRow,
    /// The newest evidence that it worked; `None` when every proof still kept (see
    /// retention) failed. The same row as `last` when that one is ok.
    pub last_ok: Option<EvidenceRow>,
}

/// A stored configuration version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigRow {
    /// Row id.
    pub id: i64,
    /// When it was first seen.
    pub at: JstTime,
    /// SHA-256 of the text, lowercase hex.
    pub sha256: String,
    /// The file.
    pub text: String,
}

/// Rows deleted by one retention run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PurgeCounts {
    /// Telegrams.
    pub telegrams: u64,
    /// Decisions.
    pub decisions: u64,
    /// Actions.
    pub actions: u64,
    /// Alert summaries (by their latest action).
    pub alerts: u64,
    /// Link events.
    pub link_events: u64,
    /// Faults.
    pub faults: u64,
    /// Output results.
    pub output_results: u64,
    /// Audit trail entries.
    pub audit: u64,
    /// Evidence.
    pub evidence: u64,
    /// Configuration versions (never the newest).
    pub config_changes: u64,
}

impl PurgeCounts {
    /// All rows deleted.
    pub fn total(&self) -> u64 {
        self.telegrams
            + self.decisions
            + self.actions
            + self.alerts
            + self.link_events
            + self.faults
            + self.output_results
            + self.audit
            + self.evidence
            + self.config_changes
    }
}

/// Rows per table and the file's size, for the status model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StoreCounts {
    /// Telegrams.
    pub telegrams: u64,
    /// Decisions.
    pub decisions: u64,
    /// Actions.
    pub actions: u64,
    /// Alerts.
    pub alerts: u64,
    /// Link events.
    pub link_events: u64,
    /// Faults.
    pub faults: u64,
    /// Configuration versions.
    pub config_changes: u64,
    /// Database size (pages in use and free), bytes; the WAL file is not included.
    pub size_bytes: u64,
    /// Of which free (reusable) pages, bytes.
    pub free_bytes: u64,
}
