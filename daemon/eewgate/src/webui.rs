//! The daemon's side of the local web UI (crate `eewgate-webui`, docs/adr/0011-web-ui.md):
//! the `[webui]` settings section, [`DaemonAppliance`] (the `Appliance` seam over the
//! status watch channel, the history database and the administrator's password hash
//! file), and [`start`], which the composition root calls once history and status exist.
//!
//! The web UI is never allowed to endanger the alarms: it reads history through its own
//! read-only connection, writes audit entries with `try_send` (never waiting), and a port
//! it cannot bind or a credential file it cannot read is a `webui` fault on the status
//! model (`outputs["webui"] = "fault: …"`, so it shows in `STATUS=`, the dashboard and
//! MQTT), in history and in the log — the daemon keeps running.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{NaiveDate, TimeDelta};
use eew_core::Intensity;
use eew_core::engine::{Command, Decision, DrillSpec, Label, OutputId};
use eew_core::settings::Walker;
use eewgate_webui::{
    Appliance, ApplianceError, AuditEntry, ConfirmTestRequest, DrillReportsQuery, HistoryQuery,
    Operation, OperationError, Options, SelfTestRequest, SettingsCheck, SettingsDiff, SettingsEdit,
    SettingsProblem, SettingsSaved, SettingsWhatIf, WebUi,
};
use serde_json::{Value, json};
use tokio::sync::{OnceCell, watch};
use toml::Table;

use crate::app::EventPrinter;
use crate::settings_edit;
use crate::status::Status;
use crate::store::{
    AuditRecord, DrillChannel, Exclusion, FaultRecord, HistoryWriter, PageQuery, Record, Store,
};
use crate::supervisor::Supervisor;
use crate::system::clock::now_utc;

/// Default listening address.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// Default directory of the administrator's password hash.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/eewgate";
/// The administrator's password hash (a PHC string), in `state_dir`.
pub const HASH_FILE: &str = "webui-admin.hash";
/// Uploaded chimes, in `state_dir`.
pub const CHIME_DIR: &str = "chimes";

const KEYS: &[&str] = &[
    "enabled",
    "listen",
    "state_dir",
    "https",
    "cert_file",
    "key_file",
];

/// `[webui]`: the local web UI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebUiConfig {
    /// The UI is served (false when the section is absent; true by default when present).
    pub enabled: bool,
    /// Where it listens.
    pub listen: SocketAddr,
    /// Directory of [`HASH_FILE`] (and of the generated HTTPS certificate).
    pub state_dir: PathBuf,
    /// Served over HTTPS (the session cookie is then `Secure`).
    pub https: bool,
    /// The operator's certificate chain (PEM); without it, a self-signed certificate is
    /// generated on first boot (`crate::webui_tls`).
    pub cert_file: Option<PathBuf>,
    /// The operator's private key (PEM, mode 600).
    pub key_file: Option<PathBuf>,
}

impl Default for WebUiConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            https: false,
            cert_file: None,
            key_file: None,
        }
    }
}

impl WebUiConfig {
    /// The password hash file.
    pub fn hash_file(&self) -> PathBuf {
        self.state_dir.join(HASH_FILE)
    }
}

/// Checks `[webui]`; relative paths are taken from `base` (the settings file's directory).
pub fn section(w: &mut Walker, table: &Table, base: &Path) -> WebUiConfig {
    let mut out = WebUiConfig::default();
    let Some(t) = w.section(table, "", "webui") else {
        return out;
    };
    out.enabled = true;
    if let Some((p, v)) = w.get(t, "webui", "enabled")
        && let Some(b) = w.bool_at(&p, v)
    {
        out.enabled = b;
    }
    if let Some((p, v)) = w.get(t, "webui", "listen")
        && let Some(s) = w.str_at(&p, v)
    {
        match s.trim().parse::<SocketAddr>() {
            Ok(addr) => out.listen = addr,
            Err(_) => w.error(
                p,
                format!(
                    "{s:?} is not a socket address: an IP address and a port, e.g. \
                     \"{DEFAULT_LISTEN}\", \"127.0.0.1:8080\" or \"[::]:8080\""
                ),
            ),
        }
    }
    if let Some((p, v)) = w.get(t, "webui", "state_dir")
        && let Some(s) = w.str_at(&p, v)
    {
        if s.trim().is_empty() {
            w.error(
                p,
                format!("must name a directory, e.g. \"{DEFAULT_STATE_DIR}\""),
            );
        } else {
            out.state_dir = base.join(s);
        }
    }
    if let Some((p, v)) = w.get(t, "webui", "https")
        && let Some(b) = w.bool_at(&p, v)
    {
        out.https = b;
    }
    let file = |w: &mut Walker, key: &str, secret: bool| {
        crate::config::file_key(w, t, "webui", key, base, secret)
    };
    out.cert_file = file(w, "cert_file", false);
    out.key_file = file(w, "key_file", true);
    let given = |k: &str| t.get(k).is_some();
    if given("cert_file") != given("key_file") {
        w.error(
            "webui.cert_file",
            "give cert_file and key_file together (or neither: a self-signed certificate \
             is generated)",
        );
    }
    if (given("cert_file") || given("key_file")) && !out.https {
        w.error(
            "webui.https",
            "a certificate is given: set https = true to use it",
        );
    }
    w.unknown_keys(t, "webui", KEYS);
    out
}

/// The settings file as the web UI edits it: where it is, one save at a time, and how a
/// saved change reaches the daemon (a counter the composition root watches; it restarts
/// the daemon's tasks with the new file once no alert is in progress).
#[derive(Debug)]
pub struct SettingsFile {
    path: Option<PathBuf>,
    saving: tokio::sync::Mutex<()>,
    reload: watch::Sender<u64>,
}

impl SettingsFile {
    /// `path` is `None` when the daemon was not started from a file (nothing to edit).
    pub fn new(path: Option<PathBuf>) -> Self {
        Self {
            path,
            saving: tokio::sync::Mutex::new(()),
            reload: watch::channel(0).0,
        }
    }

    /// Saved changes, counted: the composition root restarts on every new value.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.reload.subscribe()
    }

    fn path(&self) -> Result<&Path, ApplianceError> {
        self.path.as_deref().ok_or_else(|| {
            ApplianceError(
                "this daemon was not started from a settings file; nothing to edit".into(),
            )
        })
    }
}

/// The [`Appliance`] over the running daemon.
#[derive(Debug)]
pub struct DaemonAppliance {
    status: watch::Receiver<Value>,
    db: PathBuf,
    store: OnceCell<Store>,
    hash_file: PathBuf,
    history: Arc<std::sync::Mutex<Option<HistoryWriter>>>,
    settings: Arc<SettingsFile>,
    commands: Commands,
}

/// The way to the core loop of the tasks running now (refilled by every restart).
#[derive(Clone, Debug, Default)]
pub struct Commands(
    Arc<std::sync::Mutex<Option<tokio::sync::mpsc::Sender<crate::app::CoreCommand>>>>,
);

impl Commands {
    fn set(&self, tx: tokio::sync::mpsc::Sender<crate::app::CoreCommand>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(tx);
    }

    /// The sender, when the daemon's tasks run.
    pub fn get(&self) -> Option<tokio::sync::mpsc::Sender<crate::app::CoreCommand>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl DaemonAppliance {
    /// Operator commands go to the core loop through `commands`.
    #[must_use]
    pub fn with_commands(mut self, commands: Commands) -> Self {
        self.commands = commands;
        self
    }

    /// An appliance reading `db` (opened read-only on first use), keeping the password
    /// hash in `hash_file`, auditing into `history` (logged only while `None`; the slot is
    /// refilled by every restart of the daemon's tasks), editing `settings`, with status
    /// from `status`.
    pub fn new(
        status: watch::Receiver<Value>,
        db: PathBuf,
        hash_file: PathBuf,
        history: Arc<std::sync::Mutex<Option<HistoryWriter>>>,
        settings: Arc<SettingsFile>,
    ) -> Self {
        Self {
            status,
            db,
            store: OnceCell::new(),
            hash_file,
            history,
            settings,
            commands: Commands::default(),
        }
    }

    /// The engine settings of the file on disk (what the running tasks use, unless a
    /// saved change still waits): `None` when it cannot be read.
    async fn rules(&self) -> Option<eew_core::settings::Settings> {
        self.daemon_config().await.map(|c| c.settings)
    }

    /// The settings file, parsed as the daemon does (`None` when unreadable or invalid).
    async fn daemon_config(&self) -> Option<crate::config::DaemonConfig> {
        let (path, text) = self.read_settings().await.ok()?;
        let base = path.parent().unwrap_or(Path::new(".")).to_owned();
        tokio::task::spawn_blocking(move || crate::config::parse_daemon(&text, &base).ok())
            .await
            .ok()
            .flatten()
    }

    /// Hands a command to the core loop and waits for the engine's decisions.
    async fn command(&self, command: Command) -> Result<Vec<Decision>, OperationError> {
        let tx = self.commands.get().ok_or_else(not_running)?;
        let (reply_tx, reply) = tokio::sync::oneshot::channel();
        tx.try_send(crate::app::CoreCommand::Engine(command, reply_tx))
            .map_err(|_| not_running())?;
        tokio::time::timeout(std::time::Duration::from_secs(5), reply)
            .await
            .map_err(|_| {
                OperationError::Failed(ApplianceError("the core loop did not answer".into()))
            })?
            .map_err(|_| not_running())
    }

    /// The self-test entry of `output` (`self_tests()`), or why there is none.
    async fn offered(&self, output: &str) -> Result<Value, OperationError> {
        let offered = self.self_tests().await.map_err(OperationError::Failed)?;
        offered
            .get("outputs")
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .find(|o| o.get("output").and_then(Value::as_str) == Some(output))
            })
            .cloned()
            .ok_or_else(|| OperationError::Invalid(format!("there is no output {output:?} here")))
    }

    async fn self_test(&self, req: SelfTestRequest) -> Result<Value, OperationError> {
        let entry = self.offered(&req.output).await?;
        let output = match req.output.as_str() {
            "audio" => OutputId::Audio,
            "led" => OutputId::Led,
            "mqtt" => OutputId::Mqtt,
            relay => relay
                .strip_prefix("relay:")
                .and_then(|n| n.parse().ok())
                .map(OutputId::Relay)
                .ok_or_else(|| OperationError::Invalid(format!("no output {relay:?}")))?,
        };
        let started_at = crate::system::clock::now_utc();
        let decisions = self.command(Command::SelfTest { output }).await?;
        if let Some(d) = decisions.iter().find(|d| d.outcome == "self_test_refused") {
            let (code, message) = match d.detail.unwrap_or("") {
                "alert_in_progress" => (
                    "alert_in_progress",
                    "an alert is in progress: no self-test now".to_owned(),
                ),
                "output_disabled" => (
                    "output_disabled",
                    format!("{} is disabled in the settings", req.output),
                ),
                "busy" => (
                    "busy",
                    format!("{} is busy (a test or an alarm is using it)", req.output),
                ),
                other => (
                    "refused",
                    format!("{} cannot be tested: {other}", req.output),
                ),
            };
            return Err(OperationError::Refused { code, message });
        }
        Ok(json!({
            "ok": true, "output": req.output, "started_at": started_at.to_rfc3339(),
            "needs_confirmation": entry.get("needs_confirmation"),
        }))
    }

    async fn confirm_test(&self, req: ConfirmTestRequest) -> Result<Value, OperationError> {
        self.offered(&req.output).await?;
        let tx = self.commands.get().ok_or_else(not_running)?;
        let detail = match (&req.note, req.ok) {
            (Some(n), true) => format!("the operator confirmed that it worked: {n}"),
            (None, true) => "the operator confirmed that it worked".to_owned(),
            (Some(n), false) => format!("the operator reported that it did not work: {n}"),
            (None, false) => "the operator reported that it did not work".to_owned(),
        };
        tx.try_send(crate::app::CoreCommand::Evidence(crate::outputs::Proof {
            channel: req.output.clone(),
            source: "operator",
            method: "operator",
            ok: req.ok,
            measurement_ms: None,
            detail,
        }))
        .map_err(|_| not_running())?;
        Ok(json!({"ok": true, "output": req.output}))
    }

    /// A real (not exercise) alarm runs: the alarm the outputs follow is real (a real
    /// alarm always outranks an exercise).
    fn real_alert_in_progress(&self) -> bool {
        let s = self.status.borrow();
        s.get("alert")
            .and_then(|a| a.get("current"))
            .and_then(|c| c.get("label"))
            .and_then(Value::as_str)
            == Some("real")
    }

    fn alert_in_progress(&self) -> bool {
        let s = self.status.borrow();
        let non_empty = |key: &str| {
            s.get("alert")
                .and_then(|a| a.get(key))
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
        };
        non_empty("running") || non_empty("closed_relays")
    }

    async fn read_settings(&self) -> Result<(PathBuf, String), ApplianceError> {
        let path = self.settings.path()?.to_owned();
        let read = path.clone();
        let text = tokio::task::spawn_blocking(move || crate::config::read_bounded(&read))
            .await
            .map_err(|e| failed("reading the settings", e))?
            .map_err(|e| failed(&format!("reading {}", path.display()), e))?;
        Ok((path, text))
    }

    /// The candidate text of an edit and everything a check says about it.
    fn check_edit(path: &Path, current: &str, edit: &SettingsEdit) -> (String, SettingsCheck) {
        let revision = settings_edit::revision(current);
        let conflict = edit.revision.as_ref().is_some_and(|r| *r != revision);
        let candidate = match &edit.text {
            Some(text) => Ok(text.clone()),
            None => {
                let changes: Vec<settings_edit::Change> = edit
                    .changes
                    .iter()
                    .map(|c| settings_edit::Change {
                        path: c.path.clone(),
                        value: (!c.value.is_null()).then(|| c.value.clone()),
                    })
                    .collect();
                settings_edit::apply_changes(current, &changes)
            }
        };
        let (candidate, mut problems, notes) = match candidate {
            Err(problems) => (current.to_owned(), problems, Vec::new()),
            Ok(text) => {
                let base = path.parent().unwrap_or(Path::new("."));
                match crate::config::parse_daemon(&text, base) {
                    Ok(cfg) => (text, Vec::new(), cfg.notes),
                    Err(problems) => (text, problems, Vec::new()),
                }
            }
        };
        problems.extend(replay_link_changes(current, &candidate));
        let diff = settings_edit::diff(current, &candidate)
            .into_iter()
            .map(|d| SettingsDiff {
                path: d.path,
                old: d.old,
                new: d.new,
            })
            .collect();
        let check = SettingsCheck {
            valid: problems.is_empty() && !conflict,
            problems: problems
                .into_iter()
                .map(|e| SettingsProblem {
                    path: e.path,
                    message: e.message,
                })
                .collect(),
            notes,
            diff,
            revision,
            conflict,
        };
        (candidate, check)
    }

    /// The what-if preview of an edit, received at `now`: the reference earthquakes of
    /// `eew_core::whatif` for the edited site, run through the edited settings. No
    /// preview when the edit has a problem. The MQTT output says whether a broker is
    /// configured (`broker_configured`): the engine decides the alert either way, but
    /// without `[mqtt]` nothing leaves the appliance.
    fn whatif_edit(
        path: &Path,
        current: &str,
        edit: &SettingsEdit,
        now: eew_core::JstTime,
    ) -> Result<SettingsWhatIf, ApplianceError> {
        let (candidate, check) = Self::check_edit(path, current, edit);
        if !check.problems.is_empty() {
            return Ok(SettingsWhatIf {
                check,
                previews: Vec::new(),
            });
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let cfg = crate::config::parse_daemon(&candidate, base).map_err(|problems| {
            // The check just passed the same text: only a changed file between the two
            // readings could get here.
            failed(
                "previewing the settings",
                format!("{} problem(s) on a second reading", problems.len()),
            )
        })?;
        let scenarios = eew_core::whatif::scenarios(&cfg.settings, now)
            .map_err(|e| failed("making the reference earthquakes", e))?;
        let previews = eew_core::whatif::preview(&cfg.settings, &scenarios)
            .iter()
            .map(|p| {
                let mut v = serde_json::to_value(p).map_err(|e| failed("preview", e))?;
                if let Some(outputs) = v.get_mut("outputs").and_then(Value::as_array_mut) {
                    for o in outputs {
                        if o.get("output").and_then(Value::as_str) == Some("mqtt")
                            && let Value::Object(m) = o
                        {
                            m.insert("broker_configured".into(), json!(cfg.mqtt.enabled));
                        }
                    }
                }
                Ok(v)
            })
            .collect::<Result<Vec<Value>, ApplianceError>>()?;
        Ok(SettingsWhatIf { check, previews })
    }

    /// The history writer of the tasks running now, if any.
    fn history_writer(&self) -> Option<HistoryWriter> {
        self.history
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The report of one drill as the API gives it: the store's report over the channels
    /// of the settings in force at the drill, with the appliance, its site, the recorded
    /// event's title and which settings the channels come from.
    async fn drill_report_json(
        &self,
        store: &Store,
        event_id: &str,
        cache: &mut DrillSettingsCache,
    ) -> Result<Option<Value>, ApplianceError> {
        let running = self.drill_running(event_id);
        let now = now_utc();
        // What history holds, then the channels of the settings in force at its start.
        let Some(records) = store
            .drill_records(event_id, running, now)
            .await
            .map_err(|e| failed("reading the drill", e))?
        else {
            return Ok(None);
        };
        let started = records
            .decisions
            .first()
            .map_or(records.run.first_at, |d| d.0)
            .0
            .to_utc()
            .min(records.run.first_at.0.to_utc());
        let settings = self.drill_settings(store, started, cache).await?;
        let report =
            crate::store::assemble_drill_report(&records, &settings.channels, running, now);
        let mut v = serde_json::to_value(&report).map_err(|e| failed("drill report", e))?;
        let title = report.recorded.as_deref().and_then(|id| {
            crate::drills::RECORDED
                .iter()
                .find(|r| r.id == id)
                .map(|r| json!({"ja": r.title_ja, "en": r.title_en}))
        });
        if let Value::Object(m) = &mut v {
            m.insert("recorded_title".into(), title.unwrap_or(Value::Null));
            m.insert(
                "appliance".into(),
                json!({
                    "host": host_name(),
                    "version": env!("CARGO_PKG_VERSION"),
                    "site": settings.site,
                }),
            );
            m.insert("settings".into(), settings.source.clone());
        }
        Ok(Some(v))
    }

    /// Whether the engine still runs the drill `event_id` (the status model's running
    /// alarms).
    fn drill_running(&self, event_id: &str) -> bool {
        self.status
            .borrow()
            .get("alert")
            .and_then(|a| a.get("running"))
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|e| e.as_str() == Some(event_id)))
    }

    /// The channels (and site) of the settings in force at `at`: the stored version of
    /// that time when it still reads, else the file as it is now.
    async fn drill_settings(
        &self,
        store: &Store,
        at: chrono::DateTime<chrono::Utc>,
        cache: &mut DrillSettingsCache,
    ) -> Result<Arc<DrillSettings>, ApplianceError> {
        let stored = store
            .config_at(at)
            .await
            .map_err(|e| failed("reading the settings of the drill", e))?;
        let key = stored.as_ref().map_or(-1, |c| c.id);
        if let Some(s) = cache.0.get(&key) {
            return Ok(Arc::clone(s));
        }
        let base = self
            .settings
            .path
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."))
            .to_owned();
        let then = match &stored {
            Some(row) => {
                let (text, base) = (row.text.clone(), base.clone());
                tokio::task::spawn_blocking(move || crate::config::parse_daemon(&text, &base).ok())
                    .await
                    .ok()
                    .flatten()
                    .map(|cfg| {
                        (
                            cfg,
                            "at_drill",
                            row.sha256.get(..12).map(str::to_owned),
                            Some(row.at),
                        )
                    })
            }
            None => None,
        };
        let chosen = match then {
            Some(t) => Some(t),
            None => self.daemon_config().await.map(|cfg| {
                let revision = settings_edit::revision(&cfg.text);
                (cfg, "current", Some(revision), None)
            }),
        };
        let settings = Arc::new(match chosen {
            Some((cfg, source, revision, since)) => DrillSettings {
                channels: drill_channels(&cfg),
                site: json!({
                    "lat": cfg.settings.site.lat,
                    "lon": cfg.settings.site.lon,
                    "area_code": cfg.settings.site.area_code,
                    "area_name": eew_core::codes::FORECAST_AREA.name(&cfg.settings.site.area_code),
                }),
                source: json!({"source": source, "revision": revision, "at": since}),
            },
            None => DrillSettings {
                channels: Vec::new(),
                site: Value::Null,
                source: Value::Null,
            },
        });
        cache.0.insert(key, Arc::clone(&settings));
        Ok(settings)
    }

    async fn store(&self) -> Result<&Store, ApplianceError> {
        self.store
            .get_or_try_init(|| Store::open_read_only(&self.db))
            .await
            .map_err(|e| ApplianceError(format!("history unavailable: {e}")))
    }
}

/// The daemon's status as the UI sees it: the model plus its fault codes and summary.
pub fn status_json(s: &Status) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut v {
        map.insert("faults".to_owned(), json!(s.faults()));
        map.insert("summary".to_owned(), json!(s.summary()));
    }
    v
}

/// A UI query as a store page: days are JST days (the building's), `to` inclusive.
pub fn page_query(q: &HistoryQuery) -> PageQuery {
    const JST_OFFSET_MS: i64 = 9 * 3_600_000;
    let day_ms = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis() - JST_OFFSET_MS)
    };
    PageQuery {
        before_id: q.before_id,
        limit: q.limit.clamp(1, HistoryQuery::MAX_LIMIT),
        event_id: q.event_id.clone(),
        from_ms: q.from.and_then(day_ms),
        to_ms: q
            .to
            .and_then(|d| d.checked_add_signed(TimeDelta::days(1)))
            .and_then(day_ms),
        verdict: q.verdict.clone(),
        kind: q.kind.clone(),
        label: q.label.clone(),
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> ApplianceError {
    ApplianceError(format!("{what}: {e}"))
}

/// Reads the hash file: `None` when it does not exist (or is empty).
pub fn read_hash(path: &Path) -> Result<Option<String>, std::io::Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let hash = text.trim();
            Ok((!hash.is_empty()).then(|| hash.to_owned()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes the hash file atomically and privately (mode 600).
pub fn write_hash(path: &Path, hash: &str) -> Result<(), std::io::Error> {
    settings_edit::write_atomic(path, format!("{hash}\n").as_bytes(), 0o600)
}

impl Appliance for DaemonAppliance {
    fn status(&self) -> watch::Receiver<Value> {
        self.status.clone()
    }

    async fn telegrams(&self, query: HistoryQuery) -> Result<Vec<Value>, ApplianceError> {
        let rows = self
            .store()
            .await?
            .telegrams_page(&page_query(&query))
            .await
            .map_err(|e| failed("reading telegrams", e))?;
        rows.iter()
            .map(|r| serde_json::to_value(r).map_err(|e| failed("telegram", e)))
            .collect()
    }

    async fn alerts(&self, query: HistoryQuery) -> Result<Vec<Value>, ApplianceError> {
        let rows = self
            .store()
            .await?
            .alerts_page(&page_query(&query))
            .await
            .map_err(|e| failed("reading alerts", e))?;
        rows.iter()
            .map(|(id, r)| {
                let mut v = serde_json::to_value(r).map_err(|e| failed("alert", e))?;
                if let Value::Object(map) = &mut v {
                    map.insert("id".to_owned(), json!(id));
                }
                Ok(v)
            })
            .collect()
    }

    async fn telegram_raw(&self, id: i64) -> Result<Option<Vec<u8>>, ApplianceError> {
        self.store()
            .await?
            .telegram_raw(id)
            .await
            .map_err(|e| failed("reading the telegram", e))
    }

    async fn get_admin_hash(&self) -> Result<Option<String>, ApplianceError> {
        let path = self.hash_file.clone();
        tokio::task::spawn_blocking(move || read_hash(&path))
            .await
            .map_err(|e| failed("reading the credential", e))?
            .map_err(|e| failed(&format!("reading {}", self.hash_file.display()), e))
    }

    async fn set_admin_hash(&self, hash: String) -> Result<(), ApplianceError> {
        let path = self.hash_file.clone();
        tokio::task::spawn_blocking(move || write_hash(&path, &hash))
            .await
            .map_err(|e| failed("writing the credential", e))?
            .map_err(|e| failed(&format!("writing {}", self.hash_file.display()), e))
    }

    async fn settings(&self) -> Result<Value, ApplianceError> {
        let pending = self
            .status
            .borrow()
            .get("settings")
            .and_then(|s| s.get("pending"))
            .cloned()
            .unwrap_or(Value::Null);
        let Some(path) = &self.settings.path else {
            return Ok(json!({
                "editable": false, "path": null, "revision": "", "text": "",
                "document": {}, "apply_pending": pending,
            }));
        };
        let (_, text) = self.read_settings().await?;
        let document = text
            .parse::<Table>()
            .ok()
            .and_then(|t| serde_json::to_value(t).ok())
            .unwrap_or_else(|| json!({}));
        Ok(json!({
            "editable": true,
            "path": path.display().to_string(),
            "revision": settings_edit::revision(&text),
            "text": text,
            "document": document,
            "apply_pending": pending,
        }))
    }

    async fn check_settings(&self, edit: SettingsEdit) -> Result<SettingsCheck, ApplianceError> {
        let (path, current) = self.read_settings().await?;
        tokio::task::spawn_blocking(move || Self::check_edit(&path, &current, &edit).1)
            .await
            .map_err(|e| failed("checking the settings", e))
    }

    async fn whatif_settings(&self, edit: SettingsEdit) -> Result<SettingsWhatIf, ApplianceError> {
        let (path, current) = self.read_settings().await?;
        let now = crate::system::clock::now_jst();
        tokio::task::spawn_blocking(move || Self::whatif_edit(&path, &current, &edit, now))
            .await
            .map_err(|e| failed("previewing the settings", e))?
    }

    async fn save_settings(
        &self,
        edit: SettingsEdit,
    ) -> Result<Result<SettingsSaved, SettingsCheck>, ApplianceError> {
        let _one_at_a_time = self.settings.saving.lock().await;
        let (path, current) = self.read_settings().await?;
        let (candidate, check) = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || Self::check_edit(&path, &current, &edit))
                .await
                .map_err(|e| failed("checking the settings", e))?
        };
        if !check.valid {
            return Ok(Err(check));
        }
        let revision = settings_edit::revision(&candidate);
        // A save that changes nothing (not even a comment) writes nothing and restarts nothing.
        if revision != check.revision {
            let target = path.clone();
            tokio::task::spawn_blocking(move || {
                settings_edit::write_atomic(&target, candidate.as_bytes(), 0o640)
            })
            .await
            .map_err(|e| failed("writing the settings", e))?
            .map_err(|e| failed(&format!("writing {}", path.display()), e))?;
            self.settings.reload.send_modify(|n| *n = n.wrapping_add(1));
        }
        let apply = if self.alert_in_progress() {
            "after_alert"
        } else {
            "now"
        };
        tracing::info!(changes = check.diff.len(), revision = %revision, apply, "settings saved");
        Ok(Ok(SettingsSaved {
            revision,
            diff: check.diff,
            apply: apply.to_owned(),
            notes: check.notes,
        }))
    }

    async fn upload_chime(&self, name: String, bytes: Vec<u8>) -> Result<Value, OperationError> {
        // Uploads live beside the password hash, in the state directory (writable under
        // the unit's ProtectSystem=strict); the name was checked by the UI (no path).
        let dir = self
            .hash_file
            .parent()
            .unwrap_or(Path::new("."))
            .join(CHIME_DIR);
        let target = dir.join(&name);
        let written = tokio::task::spawn_blocking(move || {
            let pcm = crate::audio::settings::check_chime(&bytes)?;
            settings_edit::write_atomic(&target, &bytes, 0o644)
                .map_err(|e| format!("writing {}: {e}", target.display()))?;
            Ok::<_, String>((target, pcm.seconds()))
        })
        .await
        .map_err(|e| OperationError::Failed(failed("storing the chime", e)))?;
        let (path, seconds) = written.map_err(OperationError::Invalid)?;
        tracing::info!(file = %path.display(), seconds, "chime uploaded");
        Ok(json!({"path": path.display().to_string(), "seconds": seconds}))
    }

    async fn upload_certificate(
        &self,
        certificate_pem: String,
        key_pem: String,
    ) -> Result<Value, OperationError> {
        let dir = self.hash_file.parent().unwrap_or(Path::new(".")).to_owned();
        let stored = tokio::task::spawn_blocking(move || {
            crate::webui_tls::store_uploaded(&dir, &certificate_pem, &key_pem)
        })
        .await
        .map_err(|e| OperationError::Failed(failed("storing the certificate", e)))?;
        let (cert, key, fingerprint) =
            stored.map_err(|e| OperationError::Invalid(e.to_string()))?;
        tracing::info!(file = %cert.display(), fingerprint = %fingerprint, "HTTPS certificate uploaded");
        Ok(json!({
            "cert_file": cert.display().to_string(),
            "key_file": key.display().to_string(),
            "fingerprint": fingerprint,
        }))
    }

    async fn system(&self) -> Result<Value, ApplianceError> {
        let status = self.status.borrow().clone();
        let started_at = status.get("started_at").cloned().unwrap_or(Value::Null);
        let uptime_s = started_at
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| {
                (now_utc() - t.with_timezone(&chrono::Utc))
                    .num_seconds()
                    .max(0)
            });
        let mut time = status.get("time").cloned().unwrap_or_else(|| json!({}));
        // Which clock discipline the figures come from.
        let source = if time.get("since_last_sync_s").is_some_and(|v| !v.is_null()) {
            "systemd-timesyncd"
        } else {
            "kernel clock status (adjtimex)"
        };
        if let Value::Object(m) = &mut time {
            m.insert("source".into(), json!(source));
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        let mut features = Vec::new();
        if cfg!(feature = "alsa") {
            features.push("alsa");
        }
        if cfg!(feature = "rpi") {
            features.push("rpi");
        }
        Ok(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "started_at": started_at,
            "uptime_s": uptime_s,
            "host": host,
            "settings_path": self.settings.path.as_ref().map(|p| p.display().to_string()),
            "settings": status.get("settings").cloned().unwrap_or(Value::Null),
            "time": time,
            "features": features,
        }))
    }

    async fn logs(&self) -> Result<String, ApplianceError> {
        Ok(crate::system::logring::ring().text())
    }

    async fn drills(&self) -> Result<Value, ApplianceError> {
        let rules = self.rules().await;
        let recorded: Vec<Value> = crate::drills::RECORDED
            .iter()
            .map(|r| {
                json!({"id": r.id, "title_ja": r.title_ja, "title_en": r.title_en,
                       "reports": r.telegrams.len()})
            })
            .collect();
        let (allowed, outputs) = match &rules {
            Some(s) => {
                let o = &s.outputs;
                let mut outputs = serde_json::Map::new();
                for r in &o.relays {
                    outputs.insert(
                        format!("relay:{}", r.id),
                        json!(r.enabled && r.trigger.include.drill),
                    );
                }
                outputs.insert(
                    "audio".into(),
                    json!(o.audio.enabled && o.audio.trigger.include.drill),
                );
                outputs.insert(
                    "led".into(),
                    json!(o.led.enabled && o.led.trigger.include.drill),
                );
                outputs.insert(
                    "mqtt".into(),
                    json!(o.mqtt.enabled && o.mqtt.trigger.include.drill),
                );
                (s.alert.drill, Value::Object(outputs))
            }
            None => (false, json!({})),
        };
        Ok(json!({"allowed": allowed, "recorded": recorded, "outputs": outputs}))
    }

    async fn self_tests(&self) -> Result<Value, ApplianceError> {
        let Some(cfg) = self.daemon_config().await else {
            return Ok(json!({"allowed": false, "outputs": []}));
        };
        let o = &cfg.settings.outputs;
        let mut outputs: Vec<Value> = cfg
            .hardware
            .relays
            .iter()
            .map(|pins| {
                let rule = o.relays.iter().find(|r| r.id == pins.id);
                let readback = pins.readback_pin.is_some();
                json!({
                    "output": format!("relay:{}", pins.id),
                    "name": rule.map_or("", |r| r.name.as_str()),
                    "enabled": rule.is_some_and(|r| r.enabled),
                    "readback": readback,
                    "needs_confirmation": !readback,
                })
            })
            .collect();
        outputs.push(json!({"output": "led", "name": "status LED / 状態表示灯",
            "enabled": cfg.hardware.led.is_some(), "readback": false, "needs_confirmation": true}));
        outputs.push(json!({"output": "audio", "name": "PA / 放送",
            "enabled": o.audio.enabled, "readback": false, "needs_confirmation": true}));
        outputs.push(json!({"output": "mqtt", "name": "MQTT / BMS",
            "enabled": cfg.mqtt.enabled, "readback": false, "needs_confirmation": false}));
        Ok(json!({"allowed": !self.alert_in_progress(), "outputs": outputs}))
    }

    async fn operate(&self, op: Operation) -> Result<Value, OperationError> {
        let tx = self.commands.get().ok_or_else(not_running)?;
        let command = match op {
            Operation::SelfTest(req) => return self.self_test(req).await,
            Operation::ConfirmTest(req) => return self.confirm_test(req).await,
            Operation::Reset => Command::Reset,
            Operation::Silence => Command::Silence,
            Operation::Drill(req) => {
                if self.real_alert_in_progress() {
                    return Err(OperationError::Refused {
                        code: "alert_in_progress",
                        message: "a real alert is in progress: no drill now".into(),
                    });
                }
                if !self.rules().await.is_some_and(|s| s.alert.drill) {
                    return Err(OperationError::Refused {
                        code: "drill_disabled",
                        message: "drills are not allowed by the settings (alert.drill = false)"
                            .into(),
                    });
                }
                if let Some(id) = &req.recorded {
                    return start_recorded_drill(tx, id, self.history_writer());
                }
                let class = req
                    .class
                    .as_deref()
                    .and_then(|c| Intensity::ALL.into_iter().find(|i| i.as_str() == c))
                    .ok_or_else(|| {
                        OperationError::Invalid(
                            "class must be one of \"0\" … \"4\", \"5-\", \"5+\", \"6-\", \"6+\", \"7\"".into(),
                        )
                    })?;
                let seconds = req.seconds.unwrap_or(20);
                if !(1..=120).contains(&seconds) {
                    return Err(OperationError::Invalid(
                        "seconds must be from 1 to 120".into(),
                    ));
                }
                Command::Drill(DrillSpec {
                    class,
                    seconds,
                    long_period_class: None,
                    warning: req.warning,
                })
            }
        };
        let (reply_tx, reply) = tokio::sync::oneshot::channel();
        tx.try_send(crate::app::CoreCommand::Engine(command, reply_tx))
            .map_err(|_| not_running())?;
        let decisions = tokio::time::timeout(std::time::Duration::from_secs(5), reply)
            .await
            .map_err(|_| {
                OperationError::Failed(ApplianceError("the core loop did not answer".into()))
            })?
            .map_err(|_| not_running())?;
        if decisions.iter().any(|d| d.outcome == "drill_disabled") {
            return Err(OperationError::Refused {
                code: "drill_disabled",
                message: "drills are not allowed by the settings (alert.drill = false)".into(),
            });
        }
        // A drill names its event: the key of its report.
        let event_id = decisions
            .iter()
            .find(|d| d.outcome == "drill_started")
            .and_then(|d| d.event_id.clone());
        Ok(json!({"ok": true, "decisions": decisions, "event_id": event_id}))
    }

    async fn drill_reports(&self, query: DrillReportsQuery) -> Result<Vec<Value>, ApplianceError> {
        let store = self.store().await?;
        let runs = store
            .drills(query.before_id, query.limit)
            .await
            .map_err(|e| failed("reading the drills", e))?;
        let mut cache = DrillSettingsCache::default();
        let mut out = Vec::with_capacity(runs.len());
        for run in runs {
            if let Some(mut report) = self
                .drill_report_json(store, &run.event_id, &mut cache)
                .await?
            {
                if let Value::Object(m) = &mut report {
                    m.remove("channels");
                }
                out.push(report);
            }
        }
        Ok(out)
    }

    async fn drill_report(&self, event_id: String) -> Result<Option<Value>, ApplianceError> {
        let store = self.store().await?;
        self.drill_report_json(store, &event_id, &mut DrillSettingsCache::default())
            .await
    }

    async fn audit(&self, entry: AuditEntry) -> Result<(), ApplianceError> {
        tracing::info!(who = %entry.who, action = %entry.action, detail = %entry.detail, "audit");
        let Some(history) = self.history_writer() else {
            return Ok(());
        };
        history
            .try_send(Record::Audit(AuditRecord {
                at: entry.at,
                who: entry.who,
                action: entry.action,
                detail: (!entry.detail.is_empty()).then_some(entry.detail),
            }))
            .map_err(|e| failed("recording the audit entry", e))
    }
}

/// What a drill report takes from the settings in force at the drill.
#[derive(Debug)]
struct DrillSettings {
    channels: Vec<DrillChannel>,
    site: Value,
    /// `{"source": "at_drill" | "current", "revision", "at"}`.
    source: Value,
}

/// The settings of drills already read in one request, by stored version id (`-1`: the
/// file as it is now).
#[derive(Debug, Default)]
struct DrillSettingsCache(std::collections::BTreeMap<i64, Arc<DrillSettings>>);

/// Every output channel of `cfg` and whether it takes part in drills, in the order the
/// report shows them: the contacts by id, then the PA, the LED and MQTT.
pub fn drill_channels(cfg: &crate::config::DaemonConfig) -> Vec<DrillChannel> {
    let exclusion = |enabled: bool, configured: bool, drill: bool| {
        if !enabled {
            Some(Exclusion::Disabled)
        } else if !configured {
            Some(Exclusion::NotConfigured)
        } else if !drill {
            Some(Exclusion::NotInDrills)
        } else {
            None
        }
    };
    let o = &cfg.settings.outputs;
    let mut out: Vec<DrillChannel> = o
        .relays
        .iter()
        .map(|r| {
            let pins = cfg.hardware.relays.iter().find(|p| p.id == r.id);
            DrillChannel {
                channel: format!("relay:{}", r.id),
                name: (!r.name.is_empty()).then(|| r.name.clone()),
                excluded: exclusion(r.enabled, pins.is_some(), r.trigger.include.drill),
                readback: Some(pins.is_some_and(|p| p.readback_pin.is_some())),
            }
        })
        .collect();
    out.push(DrillChannel {
        channel: "audio".into(),
        name: Some("PA / 放送".into()),
        excluded: exclusion(o.audio.enabled, true, o.audio.trigger.include.drill),
        readback: None,
    });
    out.push(DrillChannel {
        channel: "led".into(),
        name: Some("status LED / 状態表示灯".into()),
        excluded: exclusion(
            o.led.enabled,
            cfg.hardware.led.is_some(),
            o.led.trigger.include.drill,
        ),
        readback: None,
    });
    out.push(DrillChannel {
        channel: "mqtt".into(),
        name: Some("MQTT / BMS".into()),
        excluded: exclusion(
            o.mqtt.enabled,
            cfg.mqtt.enabled,
            o.mqtt.trigger.include.drill,
        ),
        readback: None,
    });
    out
}

/// This machine's name (`/proc/sys/kernel/hostname`), empty when unreadable.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

fn not_running() -> OperationError {
    OperationError::Refused {
        code: "not_running",
        message: "the daemon's tasks are restarting; try again in a moment".into(),
    }
}

/// Replay links are set on the appliance only, never from the web UI: a replay reads any
/// file it is given and history shows what it read, so a replay of a secret file (an API
/// key, a private key) would put it on a page. Every such change is a problem at its path.
fn replay_link_changes(current: &str, candidate: &str) -> Vec<eew_core::settings::SettingsError> {
    settings_edit::diff(current, candidate)
        .into_iter()
        .filter(|d| d.path.starts_with("links.replay"))
        .map(|d| eew_core::settings::SettingsError {
            path: d.path,
            message: "replay links are set in the settings file on the appliance, not from \
                      the web UI: what a replay reads is shown in history (drills replay \
                      recorded events from the Tests page)"
                .to_owned(),
        })
        .collect()
}

/// Replays a recorded event as a drill: each report at its planned moment, until the
/// plan is done or the daemon's tasks stop (the core loop's queue closes). The start is
/// recorded in history as a `drill_started` decision naming the recorded event (its
/// report says which it was).
fn start_recorded_drill(
    tx: tokio::sync::mpsc::Sender<crate::app::CoreCommand>,
    id: &str,
    history: Option<HistoryWriter>,
) -> Result<Value, OperationError> {
    let recorded = crate::drills::RECORDED
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| OperationError::Invalid(format!("no recorded event {id:?}")))?;
    let plan = crate::drills::plan(recorded, crate::system::clock::now_jst())
        .map_err(|e| OperationError::Failed(ApplianceError(e)))?;
    let span = plan.last().map_or(0, |(at, _)| at.as_secs());
    let reports = plan.len();
    let event_id = plan
        .first()
        .map(|(_, r)| r.event_id.as_str().to_owned())
        .ok_or_else(|| {
            OperationError::Failed(ApplianceError(format!("{id}: no report to replay")))
        })?;
    if let Some(h) = history {
        let _ = h.try_send(Record::Decision {
            at: crate::system::clock::now_jst(),
            decision: Decision {
                event_id: Some(event_id.clone()),
                serial: None,
                label: Label::Drill,
                outcome: "drill_started",
                detail: Some(recorded.id),
            },
        });
    }
    tracing::info!(
        drill = id,
        reports,
        span_s = span,
        "drill of a recorded event started"
    );
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        for (at, report) in plan {
            tokio::time::sleep_until(start + at).await;
            if tx
                .send(crate::app::CoreCommand::DrillReport(Box::new(report)))
                .await
                .is_err()
            {
                tracing::info!("drill stopped: the daemon's tasks stopped");
                return;
            }
        }
    });
    Ok(
        json!({"ok": true, "recorded": id, "reports": reports, "span_s": span,
              "event_id": event_id}),
    )
}

/// Everything [`attach`] needs from the composition root, per start of the daemon's tasks.
#[derive(Debug)]
pub(crate) struct Wiring<'a> {
    pub cfg: &'a WebUiConfig,
    pub db: &'a Path,
    pub status: watch::Receiver<Status>,
    pub status_tx: &'a watch::Sender<Status>,
    pub history: Option<HistoryWriter>,
    pub events: Option<&'a EventPrinter>,
    pub settings: &'a Arc<SettingsFile>,
    pub commands: tokio::sync::mpsc::Sender<crate::app::CoreCommand>,
    /// Where the first-boot setup code is left for the console (`eewgate setup-code`).
    pub runtime_dir: Option<&'a Path>,
}

/// The web UI server, which outlives the restarts that apply saved settings: sessions
/// survive a save, and the page that saved sees the result. It is rebuilt only when its
/// own section or the history path changes.
#[derive(Debug)]
pub(crate) struct Host {
    key: (WebUiConfig, PathBuf),
    json_tx: Arc<watch::Sender<Value>>,
    history: Arc<std::sync::Mutex<Option<HistoryWriter>>>,
    commands: Commands,
    fault: Option<String>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// Withdraws the setup code file once setup is done.
    setup_watch: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
        }
        if let Some(s) = self.setup_watch.take() {
            s.abort();
        }
    }
}

/// Marks the web UI faulty (status, history, events, log); the daemon keeps running.
fn fault(w: &Wiring<'_>, detail: &str, new: bool) {
    if new {
        tracing::error!(detail = %detail, "web UI unavailable: alarms still run");
    }
    w.status_tx.send_modify(|s| {
        s.outputs
            .insert("webui".to_owned(), format!("fault: {detail}"));
    });
    if let Some(h) = &w.history {
        let _ = h.try_send(Record::Fault(FaultRecord {
            at: now_utc(),
            kind: "webui".to_owned(),
            active: true,
            detail: Some(detail.to_owned()),
        }));
    }
    if let Some(p) = w.events {
        p.send(json!({"type": "fault", "fault": "webui", "active": true, "detail": detail}));
    }
}

/// Builds the server: the credential check (printing the first-boot setup code once),
/// the listener and the server task. A problem is a `webui` fault, never a stop.
async fn build(w: &Wiring<'_>) -> Host {
    let mut host = Host {
        key: (w.cfg.clone(), w.db.to_owned()),
        json_tx: Arc::new(watch::channel(status_json(&w.status.borrow())).0),
        history: Arc::new(std::sync::Mutex::new(None)),
        commands: Commands::default(),
        fault: None,
        server: None,
        setup_watch: None,
    };
    let appliance = Arc::new(
        DaemonAppliance::new(
            host.json_tx.subscribe(),
            w.db.to_owned(),
            w.cfg.hash_file(),
            Arc::clone(&host.history),
            Arc::clone(w.settings),
        )
        .with_commands(host.commands.clone()),
    );
    let tls = if w.cfg.https {
        match crate::webui_tls::load_or_generate(w.cfg) {
            Ok(t) => Some(t),
            Err(e) => {
                host.fault = Some(format!("HTTPS: {e}"));
                return host;
            }
        }
    } else {
        None
    };
    let options = Options {
        tls: tls.is_some(),
        ..Options::default()
    };
    let ui = match WebUi::new(appliance, options).await {
        Ok(ui) => ui,
        Err(e) => {
            host.fault = Some(format!("cannot start: {e}"));
            return host;
        }
    };
    let listen = w.cfg.listen;
    let scheme = if tls.is_some() { "https" } else { "http" };
    if let Some(t) = &tls {
        // Printed at every start: the installer compares it with what the browser shows.
        let line = format!(
            "eewgate web UI certificate{} {}: SHA-256 {}",
            if t.generated { " (generated)" } else { "" },
            t.cert_file.display(),
            t.fingerprint
        );
        eprintln!("{line}");
        tracing::warn!("{line}");
        if let Some(p) = w.events {
            p.send(
                json!({"type": "webui_certificate", "fingerprint": t.fingerprint,
                "file": t.cert_file.display().to_string(), "generated": t.generated}),
            );
        }
    }
    if let Some(code) = ui.setup_code() {
        let line =
            format!("eewgate web UI first-boot setup code: {code} — open {scheme}://{listen}/");
        eprintln!("{line}");
        tracing::warn!("{line}");
        if let Some(p) = w.events {
            p.send(json!({"type": "webui", "setup_code": code, "listen": listen.to_string()}));
        }
        if let Some(dir) = w.runtime_dir {
            host.setup_watch = Some(offer_setup_code(dir, &ui, &code, scheme, listen));
        }
    }
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            host.fault = Some(format!("cannot listen on {listen}: {e}"));
            return host;
        }
    };
    tracing::info!(listen = %listen, scheme, "web UI listening");
    // Aborted when the host is dropped (shutdown, or a change of its own section).
    // Live-status streams (SSE) never end by themselves, so there is no graceful drain.
    host.server = Some(tokio::spawn(async move {
        let served = match tls {
            Some(t) => ui.serve_tls(listener, t.config).await,
            None => ui.serve(listener).await,
        };
        if let Err(e) = served {
            tracing::error!(error = %e, "web UI server stopped");
        }
    }));
    host
}

/// Leaves the setup code in the runtime directory for the console, and removes it once
/// setup is done.
fn offer_setup_code(
    dir: &Path,
    ui: &WebUi<DaemonAppliance>,
    code: &str,
    scheme: &str,
    listen: std::net::SocketAddr,
) -> tokio::task::JoinHandle<()> {
    use crate::system::runtime_dir::{SETUP_CODE_FILE, remove, setup_code_json, write_atomic};
    if let Err(e) = write_atomic(dir, SETUP_CODE_FILE, &setup_code_json(code, scheme, listen)) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot leave the setup code for the console");
    }
    let dir = dir.to_owned();
    let ui = ui.clone();
    tokio::spawn(async move {
        ui.setup_finished().await;
        match remove(&dir, SETUP_CODE_FILE) {
            Ok(()) => tracing::info!("setup done: the setup code is withdrawn"),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the setup code")
            }
        }
    })
}

/// Connects the web UI to one start of the daemon's tasks: builds the server the first
/// time (or when its section changed), feeds it this start's status and history, and
/// shows its health on the status model. Never fails the daemon.
pub(crate) async fn attach(host: &mut Option<Host>, sup: &mut Supervisor, w: Wiring<'_>) {
    if !w.cfg.enabled {
        *host = None;
        return;
    }
    let key = (w.cfg.clone(), w.db.to_owned());
    let fresh = host.as_ref().is_none_or(|h| h.key != key);
    if fresh {
        // The old server must have let go of the port before it is bound again.
        if let Some(mut old) = host.take()
            && let Some(server) = old.server.take()
        {
            server.abort();
            let _ = server.await;
        }
        *host = Some(build(&w).await);
    }
    let Some(h) = host.as_ref() else { return };
    *h.history
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = w.history.clone();
    h.commands.set(w.commands.clone());
    match &h.fault {
        Some(detail) => fault(&w, detail, fresh),
        None => w.status_tx.send_modify(|s| {
            s.outputs.insert("webui".to_owned(), "ok".to_owned());
        }),
    }
    // This start's status model as JSON, re-serialised on every change.
    let mut status_rx = w.status.clone();
    let json_tx = Arc::clone(&h.json_tx);
    json_tx.send_replace(status_json(&status_rx.borrow_and_update()));
    let cancel = sup.token();
    sup.spawn("webui-status", async move {
        loop {
            tokio::select! {
                changed = status_rx.changed() => {
                    if changed.is_err() {
                        cancel.cancelled().await;
                        break;
                    }
                    let v = status_json(&status_rx.borrow_and_update());
                    json_tx.send_replace(v);
                }
                () = cancel.cancelled() => break,
            }
        }
        Ok(())
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;

    fn parse(text: &str, base: &Path) -> (WebUiConfig, Vec<String>) {
        let table: Table = text.parse().unwrap();
        let mut w = Walker::new();
        let cfg = section(&mut w, &table, base);
        let errors = w
            .into_errors()
            .into_iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect();
        (cfg, errors)
    }

    #[test]
    fn absent_is_off_present_is_on_with_defaults() {
        let (cfg, e) = parse("", Path::new("/etc/eewgate"));
        assert!(e.is_empty());
        assert_eq!(cfg, WebUiConfig::default());
        assert!(!cfg.enabled);
        let (cfg, e) = parse("[webui]\n", Path::new("/etc/eewgate"));
        assert!(e.is_empty(), "{e:?}");
        assert!(cfg.enabled);
        assert_eq!(cfg.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(cfg.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(
            cfg.hash_file(),
            PathBuf::from("/var/lib/eewgate/webui-admin.hash")
        );
    }

    #[test]
    fn keys_are_read_and_relative_dirs_follow_the_file() {
        let (cfg, e) = parse(
            "[webui]\nenabled = false\nlisten = \"[::1]:8443\"\nstate_dir = \"state\"\n",
            Path::new("/etc/eewgate"),
        );
        assert!(e.is_empty(), "{e:?}");
        assert!(!cfg.enabled);
        assert_eq!(cfg.listen, "[::1]:8443".parse().unwrap());
        assert_eq!(cfg.state_dir, PathBuf::from("/etc/eewgate/state"));
    }

    #[test]
    fn bad_values_and_unknown_keys_are_errors_with_their_path() {
        let (_, e) = parse(
            "[webui]\nlisten = \"localhost\"\nstate_dir = \" \"\nport = 80\nenabled = 1\n",
            Path::new("."),
        );
        assert!(
            e.iter()
                .any(|l| l.starts_with("webui.listen:") && l.contains("socket address")),
            "{e:?}"
        );
        assert!(e.iter().any(|l| l.starts_with("webui.state_dir:")), "{e:?}");
        assert!(e.iter().any(|l| l.starts_with("webui.port")), "{e:?}");
        assert!(e.iter().any(|l| l.starts_with("webui.enabled:")), "{e:?}");
        let (_, e) = parse("[webui]\nlisten = \"1.2.3.4:99999\"\n", Path::new("."));
        assert_eq!(e.len(), 1, "{e:?}");
    }

    #[test]
    fn replay_links_cannot_be_changed_from_the_ui() {
        let current = "[[links.replay]]\nname = \"drill\"\nfiles = [\"a.xml\"]\n";
        let swapped = "[[links.replay]]\nname = \"drill\"\nfiles = [\"/etc/eewgate/dmdata.key\"]\n";
        let problems = replay_link_changes(current, swapped);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "links.replay[0].files");
        let added = format!("{current}[[links.replay]]\nname = \"x\"\nfiles = [\"k\"]\n");
        assert_eq!(replay_link_changes(current, &added).len(), 2);
        // Other links, and the replay left as it is, are fine.
        let other = format!("{current}[[links.jma_tcp]]\nname = \"p\"\nhost = \"h\"\nport = 1\n");
        assert!(replay_link_changes(current, &other).is_empty());
        assert!(replay_link_changes(current, current).is_empty());
    }

    #[test]
    fn https_keys_are_checked_together() {
        let dir = std::env::temp_dir().join(format!("eewgate-webui-https-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("c.pem"), "x").unwrap();
        let (cfg, e) = parse("[webui]\nhttps = true\n", &dir);
        assert!(e.is_empty(), "{e:?}");
        assert!(cfg.https && cfg.cert_file.is_none());
        let (_, e) = parse("[webui]\nhttps = true\ncert_file = \"c.pem\"\n", &dir);
        assert!(
            e.iter()
                .any(|l| l.starts_with("webui.cert_file:") && l.contains("together")),
            "{e:?}"
        );
        let (_, e) = parse(
            "[webui]\ncert_file = \"c.pem\"\nkey_file = \"missing.pem\"\nhttps = \"yes\"\n",
            &dir,
        );
        assert!(e.iter().any(|l| l.starts_with("webui.key_file:")), "{e:?}");
        assert!(e.iter().any(|l| l.starts_with("webui.https:")), "{e:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn whatif_previews_the_edited_settings_and_nothing_when_they_have_problems() {
        let current = "[site]\nlat = 33.24\nlon = 131.61\narv400 = 1.2\narea_code = \"751\"\n\
            [[outputs.relay]]\nid = 1\nname = \"elevators\"\nmin_class = \"4\"\n\
            [[links.jma_tcp]]\nname = \"p\"\nhost = \"127.0.0.1\"\nport = 9\n";
        let path = std::env::temp_dir()
            .join("eewgate-whatif-edit")
            .join("eewgate.toml");
        let now = eew_core::JstTime::from_parts(2026, 5, 1, 12, 0, 0).unwrap();
        let ranks = ["0", "1", "2", "3", "4", "5-", "5+", "6-", "6+", "7"];
        let rank = |c: &str| ranks.iter().position(|r| *r == c);
        // relay:1 operates exactly where the engine acts and the class reaches `min`.
        let agrees = |w: &SettingsWhatIf, min: &str| -> Vec<bool> {
            assert_eq!(w.previews.len(), 5);
            w.previews
                .iter()
                .map(|p| {
                    let class = p["prediction"]["class"].as_str();
                    let reaches = p["acted"] == true && class.and_then(rank) >= rank(min);
                    let relay1 = p["outputs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|o| o["output"] == "relay:1")
                        .unwrap();
                    assert_eq!(
                        relay1["fires"] == true,
                        reaches,
                        "{} with {min}",
                        p["scenario"]
                    );
                    let mqtt = p["outputs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|o| o["output"] == "mqtt");
                    assert_eq!(mqtt.unwrap()["broker_configured"], false);
                    reaches
                })
                .collect()
        };
        let in_force =
            DaemonAppliance::whatif_edit(&path, current, &SettingsEdit::default(), now).unwrap();
        assert!(
            in_force.check.problems.is_empty(),
            "{:?}",
            in_force.check.problems
        );
        let before = agrees(&in_force, "4");

        let raise = SettingsEdit {
            changes: vec![eewgate_webui::SettingChange {
                path: "outputs.relay[0].min_class".into(),
                value: json!("5-"),
            }],
            ..SettingsEdit::default()
        };
        let draft = DaemonAppliance::whatif_edit(&path, current, &raise, now).unwrap();
        assert_eq!(draft.check.diff.len(), 1);
        let after = agrees(&draft, "5-");
        assert_ne!(before, after, "the raised threshold changes the preview");

        let broken = SettingsEdit {
            changes: vec![eewgate_webui::SettingChange {
                path: "site.lat".into(),
                value: json!(99),
            }],
            ..SettingsEdit::default()
        };
        let refused = DaemonAppliance::whatif_edit(&path, current, &broken, now).unwrap();
        assert!(refused.previews.is_empty());
        assert!(refused.check.problems.iter().any(|p| p.path == "site.lat"));
    }

    #[test]
    fn drill_channels_say_which_outputs_take_part_and_why_not() {
        let text = "[site]\nlat = 33.24\nlon = 131.61\narv400 = 1.2\narea_code = \"751\"\n\
            [[outputs.relay]]\nid = 1\nname = \"elevators\"\nmin_class = \"4\"\ninclude = { drill = true }\n\
            [[outputs.relay]]\nid = 2\nname = \"gas\"\nmin_class = \"4\"\n\
            [[outputs.relay]]\nid = 3\nmin_class = \"4\"\nenabled = false\ninclude = { drill = true }\n\
            [hardware]\nbackend = \"sim\"\n\
            [[hardware.relay]]\nid = 1\npin = 5\nreadback_pin = 24\nprobe = \"none\"\n\
            [[links.jma_tcp]]\nname = \"p\"\nhost = \"127.0.0.1\"\nport = 9\n";
        let cfg = crate::config::parse_daemon(text, Path::new(".")).unwrap();
        let channels = drill_channels(&cfg);
        let got: Vec<(&str, Option<Exclusion>, Option<bool>)> = channels
            .iter()
            .map(|c| (c.channel.as_str(), c.excluded, c.readback))
            .collect();
        assert_eq!(
            got,
            [
                ("relay:1", None, Some(true)),
                ("relay:2", Some(Exclusion::NotInDrills), Some(false)),
                ("relay:3", Some(Exclusion::Disabled), Some(false)),
                // The PA leaves drills out by default, the LED takes part (sim pins).
                ("audio", Some(Exclusion::NotInDrills), None),
                ("led", None, None),
                // No [mqtt]: nothing to deliver to.
                ("mqtt", Some(Exclusion::NotConfigured), None),
            ]
        );
        assert_eq!(channels[0].name.as_deref(), Some("elevators"));
        // A contact without a name gets the default one.
        assert_eq!(channels[2].name.as_deref(), Some("relay 3"));
    }

    #[test]
    fn the_hash_file_is_written_atomically_and_privately() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("eewgate-webui-hash-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub").join(HASH_FILE);
        assert_eq!(read_hash(&path).unwrap(), None);
        write_hash(&path, "$argon2id$v=19$first").unwrap();
        write_hash(&path, "$argon2id$v=19$second").unwrap();
        assert_eq!(
            read_hash(&path).unwrap().as_deref(),
            Some("$argon2id$v=19$second")
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn queries_become_store_pages_with_an_inclusive_last_day() {
        let q = HistoryQuery {
            before_id: Some(42),
            limit: 10_000,
            event_id: Some("20240417231417".to_owned()),
            from: NaiveDate::from_ymd_opt(2024, 4, 17),
            to: NaiveDate::from_ymd_opt(2024, 4, 17),
            ..HistoryQuery::default()
        };
        let p = page_query(&q);
        assert_eq!(p.before_id, Some(42));
        assert_eq!(p.limit, HistoryQuery::MAX_LIMIT);
        // 2024-04-17 00:00 JST is 2024-04-16 15:00 UTC.
        assert_eq!(p.from_ms, Some(1_713_279_600_000));
        assert_eq!(p.to_ms, Some(1_713_279_600_000 + 86_400_000));
        assert_eq!(page_query(&HistoryQuery::default()).to_ms, None);
    }
}
