//! The seam: what the web UI needs from the appliance, and nothing more.

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// A failure inside the appliance (history unreadable, credential store not writable…).
///
/// The message is logged and shown to the administrator; it must never carry a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ApplianceError(pub String);

/// One page of history: newest first, strictly older than `before_id` when given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryQuery {
    /// Only records whose id is below this (the `id` of the last record of the previous
    /// page): keyset paging that stays fast over a year of data.
    pub before_id: Option<i64>,
    /// At most this many records (1..=[`HistoryQuery::MAX_LIMIT`]).
    pub limit: u32,
    /// Only this event.
    pub event_id: Option<String>,
    /// Only records received on or after this day (JST, the building's day).
    pub from: Option<NaiveDate>,
    /// Only records received on or before this day (JST).
    pub to: Option<NaiveDate>,
    /// Telegrams only: only this verdict, one of [`HistoryQuery::VERDICTS`].
    pub verdict: Option<String>,
    /// Telegrams only: only this report kind, one of [`HistoryQuery::KINDS`].
    pub kind: Option<String>,
    /// Alerts only: only this label, one of [`HistoryQuery::LABELS`].
    pub label: Option<String>,
}

impl HistoryQuery {
    /// The page size when none is asked for.
    pub const DEFAULT_LIMIT: u32 = 50;
    /// The largest page.
    pub const MAX_LIMIT: u32 = 500;
    /// What became of a received telegram (the history's `verdict` codes).
    pub const VERDICTS: &[&str] = &["accepted", "duplicate", "rejected", "garbage"];
    /// What a report does (the report's `kind` codes).
    pub const KINDS: &[&str] = &["forecast", "warning", "cancel", "delivery_test"];
    /// What an alert was (the engine's `label` codes).
    pub const LABELS: &[&str] = &["real", "training", "test", "drill"];
}

impl Default for HistoryQuery {
    fn default() -> Self {
        Self {
            before_id: None,
            limit: Self::DEFAULT_LIMIT,
            event_id: None,
            from: None,
            to: None,
            verdict: None,
            kind: None,
            label: None,
        }
    }
}

/// One page of past drills: newest first, strictly older than `before_id` when given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DrillReportsQuery {
    /// Only drills whose `id` is below this (the last `id` of the previous page).
    pub before_id: Option<i64>,
    /// At most this many (1..=[`DrillReportsQuery::MAX_LIMIT`]).
    pub limit: u32,
}

impl DrillReportsQuery {
    /// The page size when none is asked for.
    pub const DEFAULT_LIMIT: u32 = 20;
    /// The largest page (each item is a whole report's summary).
    pub const MAX_LIMIT: u32 = 100;
}

impl Default for DrillReportsQuery {
    fn default() -> Self {
        Self {
            before_id: None,
            limit: Self::DEFAULT_LIMIT,
        }
    }
}

/// One line of the audit trail: who did what, when. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who (`admin`, or `setup` before an administrator exists).
    pub who: String,
    /// A stable action code (`setup`, `login`, `login_failed`, `logout`…).
    pub action: String,
    /// Free text for people (the client address, why it failed); no secrets.
    pub detail: String,
}

/// One key change of a [`SettingsEdit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingChange {
    /// Dotted path as the validators report it (`outputs.relay[0].min_class`).
    pub path: String,
    /// The new value; `null` removes the key so its default applies.
    pub value: serde_json::Value,
}

/// An edit of the settings, as the settings page sends it: key changes, or the whole
/// file's text (the advanced editor) — one of the two.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsEdit {
    /// The revision the edit was made against (from `GET /api/settings`). A save over a
    /// file that changed since is refused, so two editors cannot undo each other.
    #[serde(default)]
    pub revision: Option<String>,
    /// Key changes.
    #[serde(default)]
    pub changes: Vec<SettingChange>,
    /// The whole new text.
    #[serde(default)]
    pub text: Option<String>,
}

impl SettingsEdit {
    /// At most this many key changes in one edit.
    pub const MAX_CHANGES: usize = 500;
}

/// One problem with an edit, beside the field it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsProblem {
    /// Dotted path; empty for a problem of the whole file (TOML syntax).
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// One key whose value an edit changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsDiff {
    /// Dotted path.
    pub path: String,
    /// The value before in TOML notation (`None`: absent, the default applied).
    pub old: Option<String>,
    /// The value after (`None`: removed, the default applies).
    pub new: Option<String>,
}

/// What checking an edit found.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SettingsCheck {
    /// The edit gives a valid settings file and was made against the current revision.
    pub valid: bool,
    /// Every problem at once.
    pub problems: Vec<SettingsProblem>,
    /// Suggestions that do not block a save.
    pub notes: Vec<String>,
    /// What would change.
    pub diff: Vec<SettingsDiff>,
    /// The revision of the file now on disk.
    pub revision: String,
    /// The edit was made against another revision (someone else saved meanwhile).
    pub conflict: bool,
}

/// What the settings of an edit would do with the reference earthquakes (the settings
/// page's "what would happen" card).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SettingsWhatIf {
    /// The edit's check. With any problem there is no preview (the conflict of an edit
    /// made against an older revision does not stop one: the edit is previewed on the
    /// file as it is now).
    pub check: SettingsCheck,
    /// One preview per reference earthquake, in order: the daemon's
    /// `eew_core::whatif::Preview` as JSON — `scenario`, `title_ja`, `title_en`,
    /// `received_at`, `epicentre`, `label`, `prediction` (`class`, `seconds_to_s`,
    /// `arrival`, `warning`, …), `acted`, `reason`, `decisions`, and `outputs`: every
    /// output with `output`, `name`, `enabled`, `fires`, `relay`, `held_at_end` and its
    /// `actions` (each with `offset_ms` after the receipt). Empty when there are problems.
    pub previews: Vec<serde_json::Value>,
}

/// A save the appliance accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsSaved {
    /// The new file's revision.
    pub revision: String,
    /// What changed.
    pub diff: Vec<SettingsDiff>,
    /// When it takes effect: `now` (the affected tasks restart at once) or `after_alert`
    /// (an alert is in progress; the restart waits until it has ended and every contact
    /// is released, so no alert is ever cut short).
    pub apply: String,
    /// Suggestions that did not block the save.
    pub notes: Vec<String>,
}

/// An operator's request from the dashboard or the Tests page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    /// End every running alarm: contacts whose rule allows a reset open, the voice stops.
    Reset,
    /// Stop the voice now; contacts stay.
    Silence,
    /// Start a drill (labelled `drill` on every output).
    Drill(DrillRequest),
    /// Exercise one output on its own and verify it (read-back, pin level, playback,
    /// broker acknowledgement…); the result appears on the status model's
    /// `verification[output]`.
    SelfTest(SelfTestRequest),
    /// The operator's own observation after a self-test ("I heard it", "the contact
    /// operated", or not): evidence for an output that cannot observe itself.
    ConfirmTest(ConfirmTestRequest),
}

/// Which drill: a recorded event replayed (`recorded`, an id from `drills()`), or a
/// synthetic alert of `class` with the S wave `seconds` away.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillRequest {
    /// The operator confirmed that contacts may operate real equipment. Required.
    #[serde(default)]
    pub confirm: bool,
    /// A recorded event's id.
    #[serde(default)]
    pub recorded: Option<String>,
    /// A synthetic drill's class (`"5-"`, …).
    #[serde(default)]
    pub class: Option<String>,
    /// A synthetic drill's seconds to the S wave (1–120).
    #[serde(default)]
    pub seconds: Option<u32>,
    /// A synthetic drill pretends a warning covers the site.
    #[serde(default)]
    pub warning: bool,
}

/// Which output to self-test.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfTestRequest {
    /// The operator confirmed that the contact may operate real equipment. Required for
    /// `relay:N` (the router refuses a relay's self-test without it).
    #[serde(default)]
    pub confirm: bool,
    /// `relay:N` (N 1..=255), `led`, `audio` or `mqtt` (checked by the router, see
    /// [`SelfTestRequest::valid_output`]).
    pub output: String,
}

impl SelfTestRequest {
    /// Whether `output` names an output in its one accepted form: `led`, `audio`,
    /// `mqtt`, or `relay:N` with N from 1 to 255 written without sign or leading zero
    /// (the status model's keys).
    pub fn valid_output(output: &str) -> bool {
        match output {
            "led" | "audio" | "mqtt" => true,
            _ => output.strip_prefix("relay:").is_some_and(|n| {
                n.parse::<u8>()
                    .is_ok_and(|id| id != 0 && id.to_string() == n)
            }),
        }
    }

    /// Whether `output` is a relay contact (its self-test needs the confirmation).
    pub fn is_relay(output: &str) -> bool {
        output.starts_with("relay:")
    }
}

/// The operator's observation after a self-test of `output`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmTestRequest {
    /// The output tested, in the same form as [`SelfTestRequest::output`].
    pub output: String,
    /// It worked (the contact operated, the LED lit, the sound was heard…).
    pub ok: bool,
    /// What the operator saw or heard, at most [`ConfirmTestRequest::MAX_NOTE_CHARS`]
    /// characters; the router passes `None` for an empty or blank note.
    #[serde(default)]
    pub note: Option<String>,
}

impl ConfirmTestRequest {
    /// The longest note, in characters.
    pub const MAX_NOTE_CHARS: usize = 200;
}

/// Why an operation was not done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperationError {
    /// Not now, or not allowed by the settings (409): `code` is stable
    /// (`alert_in_progress`, `drill_disabled`, `not_running`; for self-tests also
    /// `output_disabled`: the output is switched off in the settings, and `busy`: the
    /// output is being tested or used already), `message` for people.
    #[error("{message}")]
    Refused {
        /// Stable code.
        code: &'static str,
        /// For people.
        message: String,
    },
    /// The request itself is wrong (400).
    #[error("{0}")]
    Invalid(String),
    /// The appliance failed (500).
    #[error(transparent)]
    Failed(#[from] ApplianceError),
}

/// What the daemon offers the web UI. The daemon implements it; the UI never sees the
/// daemon's own types, only JSON values, so the two can evolve separately.
///
/// Every method must be cheap or truly asynchronous: the UI calls them from request
/// handlers on the daemon's runtime.
pub trait Appliance: Send + Sync + 'static {
    /// The live status model, serialised (the daemon's `Status`). Every change is pushed
    /// to dashboards over server-sent events.
    fn status(&self) -> watch::Receiver<serde_json::Value>;

    /// Received telegrams, newest first, each an object with at least a numeric `id`
    /// (the history page shows `received_at`, `link`, `verdict`, `reason`, `message`,
    /// `event_id`, `serial`, `status`, `kind`, `format`, `product`, `actionable`,
    /// `decode_us` and `size` when present).
    fn telegrams(
        &self,
        query: HistoryQuery,
    ) -> impl Future<Output = Result<Vec<serde_json::Value>, ApplianceError>> + Send;

    /// Alerts (decisions and what the outputs did), newest first, each an object with at
    /// least a numeric `id` (the history page shows `event_id`, `label`, `first_at`,
    /// `last_at`, `first_serial`, `last_serial`, `max_class`, `max_long_period_class`,
    /// `warning`, `cancelled`, `ended` and `actions` when present).
    fn alerts(
        &self,
        query: HistoryQuery,
    ) -> impl Future<Output = Result<Vec<serde_json::Value>, ApplianceError>> + Send;

    /// The bytes of one telegram exactly as received (the `raw` of its history row), or
    /// `None` when there is no telegram with this id (never was, or purged by retention).
    fn telegram_raw(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, ApplianceError>> + Send;

    /// The administrator's password hash (a PHC string), or `None` before first-boot setup.
    fn get_admin_hash(&self)
    -> impl Future<Output = Result<Option<String>, ApplianceError>> + Send;

    /// Store the administrator's password hash durably (written atomically).
    fn set_admin_hash(
        &self,
        hash: String,
    ) -> impl Future<Output = Result<(), ApplianceError>> + Send;

    /// The settings: `{"editable", "path", "revision", "text", "document"}` — the file's
    /// text, its revision and the parsed document as JSON, plus `apply_pending` while a
    /// saved change waits for an alert to end. Never holds a secret (secrets live in
    /// their own files, named by path).
    fn settings(&self) -> impl Future<Output = Result<serde_json::Value, ApplianceError>> + Send;

    /// Checks an edit without saving anything.
    fn check_settings(
        &self,
        edit: SettingsEdit,
    ) -> impl Future<Output = Result<SettingsCheck, ApplianceError>> + Send;

    /// Checks an edit (an empty one: the settings as they are) and, when it has no
    /// problem, previews what its settings would do with the reference earthquakes —
    /// saving nothing, operating nothing.
    fn whatif_settings(
        &self,
        edit: SettingsEdit,
    ) -> impl Future<Output = Result<SettingsWhatIf, ApplianceError>> + Send;

    /// Checks an edit and, when it is valid and made against the current revision, writes
    /// it atomically and applies it. `Ok(Err(check))` when refused (invalid or conflict).
    fn save_settings(
        &self,
        edit: SettingsEdit,
    ) -> impl Future<Output = Result<Result<SettingsSaved, SettingsCheck>, ApplianceError>> + Send;

    /// The drills on offer: `{"recorded": [{"id", "title_ja", "title_en", "reports"}],
    /// "outputs": {"relay:1": bool, "audio": bool, "led": bool, "mqtt": bool},
    /// "allowed": bool}` — which outputs include drills under the settings in effect, and
    /// whether drills are allowed at all (`alert.drill`).
    fn drills(&self) -> impl Future<Output = Result<serde_json::Value, ApplianceError>> + Send;

    /// Past drills, newest first: each item is a drill report ([`Appliance::drill_report`])
    /// without its `channels`, with at least a numeric `id` (the paging key), `event_id`,
    /// `kind`, `started_at` and `result`.
    fn drill_reports(
        &self,
        query: DrillReportsQuery,
    ) -> impl Future<Output = Result<Vec<serde_json::Value>, ApplianceError>> + Send;

    /// The report of one drill (`event_id` as `POST /api/drill` answered it), or `None`
    /// when history has no such drill: `{"id", "event_id", "kind": "synthetic" |
    /// "recorded", "recorded", "recorded_title", "started_at", "ended_at", "end",
    /// "duration_ms", "running", "max_class", "warning", "reports", "actions",
    /// "operator", "result", "counts", "appliance", "settings", "channels": [{"channel",
    /// "name", "readback", "excluded", "result", "problem", "expected": [{"at", "action",
    /// "cause", "serial", "what", "observed"}], "unmatched", "evidence", "timings"}]}` —
    /// the fields in `webui/README.md` ("Drill report").
    fn drill_report(
        &self,
        event_id: String,
    ) -> impl Future<Output = Result<Option<serde_json::Value>, ApplianceError>> + Send;

    /// The self-tests on offer: `{"allowed": bool, "outputs": [{"output": "relay:1",
    /// "name": "elevators", "enabled": bool, "readback": bool, "needs_confirmation":
    /// bool}, …]}`. `allowed` is false while an alert is in progress; `name` is the
    /// output's name from the settings (or `null`); `readback` says a relay's contact is
    /// read back; `needs_confirmation` says the appliance cannot observe the result
    /// itself (no read-back), so the operator's confirmation
    /// ([`Operation::ConfirmTest`]) is the evidence.
    fn self_tests(&self) -> impl Future<Output = Result<serde_json::Value, ApplianceError>> + Send;

    /// Carries out an operator's request; the answer describes what happened. For
    /// [`Operation::SelfTest`]: `{"ok": true, "output", "started_at": RFC 3339,
    /// "needs_confirmation": bool}`, the result following on the status model as
    /// `verification[output]` (`{"last": {"at", "source", "method", "ok",
    /// "measurement_ms", "detail"}, "last_ok_at", "last_ok_method"}`, `last.at` at or
    /// after `started_at`). For [`Operation::ConfirmTest`]: `{"ok": true, "output"}`, the
    /// observation following on the status model with `source` and `method` `operator`.
    fn operate(
        &self,
        op: Operation,
    ) -> impl Future<Output = Result<serde_json::Value, OperationError>> + Send;

    /// The System page: `{"version", "started_at", "uptime_s", "host", "settings_path",
    /// "time": {…, "source"}, "features"}`.
    fn system(&self) -> impl Future<Output = Result<serde_json::Value, ApplianceError>> + Send;

    /// The daemon's recent log lines (bounded), oldest first, as text.
    fn logs(&self) -> impl Future<Output = Result<String, ApplianceError>> + Send;

    /// Stores an operator's chime (WAV bytes) under `name` (already checked: a plain file
    /// name ending in `.wav`) and answers `{"path", "seconds"}` — the value to give
    /// `audio.chime`. Bytes that are not a usable chime are `OperationError::Invalid`.
    fn upload_chime(
        &self,
        name: String,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<serde_json::Value, OperationError>> + Send;

    /// Stores an HTTPS certificate chain and its private key (PEM) after checking they
    /// work together, and answers `{"cert_file", "key_file", "fingerprint"}` — the values
    /// to give `[webui]` (with `https = true`) in a settings save. Refusals are
    /// `OperationError::Invalid`.
    fn upload_certificate(
        &self,
        certificate_pem: String,
        key_pem: String,
    ) -> impl Future<Output = Result<serde_json::Value, OperationError>> + Send;

    /// Append to the audit trail.
    fn audit(&self, entry: AuditEntry) -> impl Future<Output = Result<(), ApplianceError>> + Send;
}
