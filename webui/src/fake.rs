//! An in-memory [`Appliance`] for tests and for UI work without the daemon.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::appliance::{
    Appliance, ApplianceError, AuditEntry, HistoryQuery, SettingsCheck, SettingsDiff, SettingsEdit,
    SettingsProblem, SettingsSaved, SettingsWhatIf,
};

/// Everything the fake holds; tests read and change it through [`FakeAppliance`].
#[derive(Debug, Default)]
pub struct FakeState {
    /// The stored administrator hash.
    pub admin_hash: Option<String>,
    /// The audit trail, oldest first.
    pub audit: Vec<AuditEntry>,
    /// Telegrams, any order; each needs an integer `id` and may have `event_id`, `day`
    /// (`YYYY-MM-DD`), `verdict` and `kind` for filtering.
    pub telegrams: Vec<serde_json::Value>,
    /// The raw bytes of telegrams, by id.
    pub telegram_raw: std::collections::BTreeMap<i64, Vec<u8>>,
    /// Alerts, same shape rules as telegrams (`label` instead of `verdict` and `kind`).
    pub alerts: Vec<serde_json::Value>,
    /// How many history pages were asked for (an export walks them).
    pub pages_read: usize,
    /// The last query seen, for tests of parameter mapping.
    pub last_query: Option<HistoryQuery>,
    /// The settings, flat: dotted path → value. The fake's only rules: a value equal to
    /// the string `"invalid"` or a path starting with `unknown` is a problem, and so is an
    /// empty `text`; a `text` edit replaces everything with `{"text": …}`.
    pub settings: std::collections::BTreeMap<String, serde_json::Value>,
    /// Bumped on every save.
    pub settings_revision: u64,
    /// A save answers `after_alert` instead of `now`; a drill is refused.
    pub alert_in_progress: bool,
    /// Chimes uploaded: name and size.
    pub uploads: Vec<(String, usize)>,
    /// What `logs()` returns.
    pub logs: String,
    /// Every operation carried out, oldest first.
    pub operations: Vec<crate::appliance::Operation>,
    /// Outputs switched off in the (fake) settings: listed by `self_tests()` with
    /// `enabled: false`, and a self-test of one is refused (`output_disabled`).
    pub disabled_outputs: std::collections::BTreeSet<String>,
    /// Outputs whose self-test fails (`ok: false` on the status model).
    pub failing_outputs: std::collections::BTreeSet<String>,
    /// How long a self-test takes. `None`: its result is on the status model when the
    /// answer is; `Some`: it follows that long after the answer (a task; a runtime with
    /// timers is needed), and another self-test of the output meanwhile is `busy`.
    pub self_test_delay: Option<std::time::Duration>,
    /// Outputs being self-tested now (only with a delay).
    pub self_tests_running: std::collections::BTreeSet<String>,
    /// Drill reports, oldest first (full reports, as `drill_report` answers them). A drill
    /// started through the fake adds one ([`FakeAppliance::sample_drill_report`]).
    pub drill_reports: Vec<serde_json::Value>,
    /// The verification record by output, as the status model carries it; merged into
    /// every published status that has no `verification` of its own (a new record
    /// replaces whatever `verification` the current status has).
    pub verification: serde_json::Map<String, serde_json::Value>,
}

/// The fake's outputs: `(output, name, read-back)`.
const FAKE_OUTPUTS: &[(&str, &str, bool)] = &[
    ("relay:1", "elevators", true),
    ("relay:2", "gas shut-off", false),
    ("led", "status LED", false),
    ("audio", "audio jack", false),
    ("mqtt", "BMS broker", false),
];

/// How the fake verifies `output`: `(method, needs the operator's confirmation,
/// measurement_ms, detail when it works)`.
fn fake_check(output: &str, readback: bool) -> (&'static str, bool, Option<u64>, &'static str) {
    match output {
        "led" => ("pin", true, None, "LED pin driven through its test pattern"),
        "audio" => (
            "playback",
            true,
            Some(1800),
            "test chime played to the end on the sound card",
        ),
        "mqtt" => (
            "roundtrip",
            false,
            Some(38),
            "probe received back through the broker",
        ),
        _ if readback => (
            "readback",
            false,
            Some(12),
            "contact closed for 500 ms; read-back followed",
        ),
        _ => (
            "pin",
            true,
            None,
            "contact pin driven for 500 ms; no read-back",
        ),
    }
}

/// An in-memory appliance.
#[derive(Debug, Clone)]
pub struct FakeAppliance {
    state: Arc<Mutex<FakeState>>,
    status_tx: Arc<watch::Sender<serde_json::Value>>,
}

impl Default for FakeAppliance {
    fn default() -> Self {
        Self::new(serde_json::json!({}))
    }
}

impl FakeAppliance {
    /// A fresh appliance (no administrator yet) publishing `status`.
    pub fn new(status: serde_json::Value) -> Self {
        let (tx, _rx) = watch::channel(status);
        Self {
            state: Arc::new(Mutex::new(FakeState::default())),
            status_tx: Arc::new(tx),
        }
    }

    /// The shared state (poisoning is ignored: a test that panicked is already failing).
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publish a new status snapshot (with the fake's `verification` record when the
    /// snapshot has none, as the daemon's status model always has it).
    pub fn set_status(&self, status: serde_json::Value) {
        let verification = self.state().verification.clone();
        self.publish(status, verification);
    }

    fn publish(
        &self,
        mut status: serde_json::Value,
        verification: serde_json::Map<String, serde_json::Value>,
    ) {
        if let Some(o) = status.as_object_mut()
            && !verification.is_empty()
        {
            o.entry("verification")
                .or_insert(serde_json::Value::Object(verification));
        }
        self.status_tx.send_replace(status);
    }

    /// Record one verification of `output` and publish it on the status model.
    fn record_verification(&self, output: &str, last: serde_json::Value) {
        let verification = {
            let mut s = self.state();
            let ok = last.get("ok").and_then(serde_json::Value::as_bool) == Some(true);
            let previous = s.verification.get(output).cloned().unwrap_or_default();
            let (last_ok_at, last_ok_method) = if ok {
                (
                    last.get("at").cloned().unwrap_or_default(),
                    last.get("method").cloned().unwrap_or_default(),
                )
            } else {
                (
                    previous.get("last_ok_at").cloned().unwrap_or_default(),
                    previous.get("last_ok_method").cloned().unwrap_or_default(),
                )
            };
            s.verification.insert(
                output.to_owned(),
                serde_json::json!({ "last": last, "last_ok_at": last_ok_at, "last_ok_method": last_ok_method }),
            );
            s.self_tests_running.remove(output);
            s.verification.clone()
        };
        let mut status = self.status_tx.borrow().clone();
        if let Some(o) = status.as_object_mut() {
            o.remove("verification");
        }
        self.publish(status, verification);
    }

    /// Whether `output` has read-back, or why a self-test (or a confirmation) of it is
    /// refused: no such output (`Invalid`), switched off (`output_disabled`).
    fn self_test_refusal(
        s: &FakeState,
        output: &str,
    ) -> Result<bool, crate::appliance::OperationError> {
        use crate::appliance::OperationError;
        let Some((_, _, readback)) = FAKE_OUTPUTS.iter().find(|(o, _, _)| *o == output) else {
            return Err(OperationError::Invalid(format!(
                "this appliance has no output {output}"
            )));
        };
        if s.disabled_outputs.contains(output) {
            return Err(OperationError::Refused {
                code: "output_disabled",
                message: format!("{output} is switched off in the settings"),
            });
        }
        Ok(*readback)
    }

    fn page(records: &[serde_json::Value], q: &HistoryQuery) -> Vec<serde_json::Value> {
        let text = |r: &serde_json::Value, key: &str| {
            r.get(key)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        let matches = |r: &serde_json::Value, key: &str, want: &Option<String>| {
            want.as_deref()
                .is_none_or(|w| r.get(key).and_then(serde_json::Value::as_str) == Some(w))
        };
        let mut out: Vec<(i64, &serde_json::Value)> = records
            .iter()
            .filter_map(|r| {
                let id = r.get("id").and_then(serde_json::Value::as_i64).unwrap_or(0);
                if q.before_id.is_some_and(|b| id >= b) {
                    return None;
                }
                let day = text(r, "day").and_then(|d| d.parse::<chrono::NaiveDate>().ok());
                let keep = matches(r, "event_id", &q.event_id)
                    && matches(r, "verdict", &q.verdict)
                    && matches(r, "kind", &q.kind)
                    && matches(r, "label", &q.label)
                    && q.from.is_none_or(|f| day.is_some_and(|d| d >= f))
                    && q.to.is_none_or(|t| day.is_some_and(|d| d <= t));
                keep.then_some((id, r))
            })
            .collect();
        // Only the page is sorted: exports walk a hundred thousand fake records.
        let limit = usize::try_from(q.limit).unwrap_or(usize::MAX);
        if out.len() > limit {
            out.select_nth_unstable_by_key(limit, |(id, _)| std::cmp::Reverse(*id));
            out.truncate(limit);
        }
        out.sort_unstable_by_key(|(id, _)| std::cmp::Reverse(*id));
        out.into_iter().map(|(_, r)| r.clone()).collect()
    }
}

impl FakeAppliance {
    fn check(s: &FakeState, edit: &SettingsEdit) -> SettingsCheck {
        let revision = s.settings_revision.to_string();
        let mut problems = Vec::new();
        let mut diff = Vec::new();
        if let Some(text) = &edit.text {
            if text.trim().is_empty() {
                problems.push(SettingsProblem {
                    path: String::new(),
                    message: "the file is empty".into(),
                });
            }
            diff.push(SettingsDiff {
                path: "text".into(),
                old: None,
                new: Some(text.clone()),
            });
        }
        for c in &edit.changes {
            if c.value.as_str() == Some("invalid") || c.path.starts_with("unknown") {
                problems.push(SettingsProblem {
                    path: c.path.clone(),
                    message: format!("{} is not allowed here", c.value),
                });
            }
            let old = s.settings.get(&c.path).map(ToString::to_string);
            let new = (!c.value.is_null()).then(|| c.value.to_string());
            if old != new {
                diff.push(SettingsDiff {
                    path: c.path.clone(),
                    old,
                    new,
                });
            }
        }
        let conflict = edit.revision.as_ref().is_some_and(|r| *r != revision);
        SettingsCheck {
            valid: problems.is_empty() && !conflict,
            problems,
            notes: Vec::new(),
            diff,
            revision,
            conflict,
        }
    }
}

/// The fake's reference earthquakes: `(scenario, class at the site)`.
pub const FAKE_SCENARIOS: &[(&str, &str)] =
    &[("nearby_m7_inland", "6-"), ("distant_m8_offshore", "4")];

/// JMA classes, weakest first (the fake compares thresholds by position).
const CLASSES: &[&str] = &["0", "1", "2", "3", "4", "5-", "5+", "6-", "6+", "7"];

impl FakeAppliance {
    /// The fake's preview: [`FAKE_SCENARIOS`], and the fake's one contact `relay:1`
    /// operating when its `outputs.relay[0].min_class` — the edit's, else the stored
    /// one, else `"4"` — is at most the scenario's class.
    fn whatif(s: &FakeState, edit: &SettingsEdit) -> Vec<serde_json::Value> {
        let threshold = edit
            .changes
            .iter()
            .rev()
            .find(|c| c.path == "outputs.relay[0].min_class")
            .map(|c| c.value.clone())
            .or_else(|| s.settings.get("outputs.relay[0].min_class").cloned());
        let threshold = threshold
            .as_ref()
            .and_then(serde_json::Value::as_str)
            .unwrap_or("4");
        let rank = |c: &str| CLASSES.iter().position(|x| *x == c);
        FAKE_SCENARIOS
            .iter()
            .map(|(id, class)| {
                let fires = rank(class) >= rank(threshold);
                let actions = if fires {
                    serde_json::json!([{ "offset_ms": 0, "output": "relay:1", "action": "on", "cause": "start" }])
                } else {
                    serde_json::json!([])
                };
                serde_json::json!({
                    "scenario": id, "title_ja": id, "title_en": id,
                    "prediction": { "class": class, "seconds_to_s": 10.0, "warning": false },
                    "acted": true, "reason": null, "label": "real",
                    "outputs": [{ "output": "relay:1", "name": "elevators", "enabled": true,
                                  "fires": fires, "actions": actions }],
                })
            })
            .collect()
    }
}

impl FakeAppliance {
    /// A drill report as the daemon makes one, for the fake's outputs: `relay:1` (read
    /// back) closed and opened, `relay:2` not included in drills, the LED, the PA (played
    /// to its end) and MQTT; an output in `failing` failed (its read-back did not follow,
    /// or nothing was played). `id` is the paging key.
    pub fn sample_drill_report(
        id: i64,
        event_id: &str,
        recorded: Option<&str>,
        failing: &std::collections::BTreeSet<String>,
    ) -> serde_json::Value {
        use serde_json::json;
        let at = |s: u32| format!("2026-12-04T12:00:{s:02}.000+09:00");
        let observed = |s: u32, action: &str, ok: bool, latency_us: i64, detail: &str| json!({ "at": at(s), "action": action, "ok": ok, "latency_us": latency_us, "detail": detail });
        let order = |s: u32,
                     action: &str,
                     cause: &str,
                     what: serde_json::Value,
                     obs: serde_json::Value| {
            json!({ "id": i64::from(s) + 1, "at": at(s), "action": action, "cause": cause, "serial": 1,
                    "what": what, "observed": obs })
        };
        let timings = |first: u32,
                       last: u32,
                       latency: i64,
                       closed: Option<i64>,
                       played: Option<f64>| {
            json!({ "first_action_at": at(first), "last_action_at": at(last), "first_effect_at": at(first),
                    "last_effect_at": at(last), "first_latency_us": latency, "max_latency_us": latency,
                    "span_ms": i64::from(last - first) * 1000, "closed_ms": closed, "played_ms": played })
        };
        let fails = |o: &str| failing.contains(o);
        let relay_detail = if fails("relay:1") {
            "fault: read-back did not follow (closed) within 200 ms"
        } else {
            "pin 5 level 1; read-back followed in 3.1 ms"
        };
        let channel = |name: &str,
                       label: &str,
                       readback: Option<bool>,
                       result: &str,
                       problem: Option<&str>,
                       expected: Vec<serde_json::Value>,
                       evidence: Vec<serde_json::Value>,
                       timings: serde_json::Value| {
            json!({ "channel": name, "name": label, "readback": readback, "excluded": null, "result": result,
                    "problem": problem, "expected": expected, "unmatched": [], "evidence": evidence, "timings": timings })
        };
        let relay_ok = !fails("relay:1");
        let audio_ok = !fails("audio");
        let channels = vec![
            channel("relay:1", "elevators", Some(true), if relay_ok { "ok" } else { "failed" },
                (!relay_ok).then_some(relay_detail),
                vec![
                    order(0, "on", "start", json!({ "intensity_class": "5-" }), observed(0, "on", relay_ok, 420, relay_detail)),
                    order(20, "off", "reset", json!({ "intensity_class": "5-" }), observed(20, "off", true, 180, "pin 5 level 0; read-back followed in 2.9 ms")),
                ],
                vec![json!({ "at": at(0), "method": "readback", "ok": relay_ok, "measurement_ms": 3.1, "detail": "read-back followed the alarm's closing" })],
                timings(0, 20, 420, relay_ok.then_some(20_000), None)),
            json!({ "channel": "relay:2", "name": "gas shut-off", "readback": false, "excluded": "not_in_drills",
                    "result": "not_included", "problem": null, "expected": [], "unmatched": [], "evidence": [],
                    "timings": { "first_action_at": null, "last_action_at": null, "first_effect_at": null, "last_effect_at": null,
                                 "first_latency_us": null, "max_latency_us": null, "span_ms": null, "closed_ms": null, "played_ms": null } }),
            channel("led", "status LED", None, "ok", None,
                vec![
                    order(0, "led", "start", json!({ "pattern": "exercise" }), observed(0, "led", true, 300, "pattern exercise; the LED shows exercise (no read-back: seen by a person only)")),
                    order(20, "led", "reset", json!({ "pattern": "normal" }), observed(20, "led", true, 250, "pattern normal; the LED shows normal (no read-back: seen by a person only)")),
                ], vec![], timings(0, 20, 300, None, None)),
            channel("audio", "audio jack", None, if audio_ok { "ok" } else { "failed" },
                (!audio_ok).then_some("playback: played to the null sink: no sound device is configured ([audio] backend)"),
                vec![
                    order(0, "announce", "start", json!({ "text_ja": "これは訓練です。強い揺れに警戒してください。", "text_en": "This is a drill. Strong shaking is expected." }),
                          observed(0, "announce", true, 5200, "4 clip(s): drill chime ...")),
                    order(20, "stop", "reset", json!({}), observed(20, "stop", true, 900, "silence")),
                ],
                vec![json!({ "at": at(12), "method": "playback", "ok": audio_ok, "measurement_ms": 12_300.0,
                             "detail": if audio_ok { "played 12.3 s to the WAV file sink; confirm that it was heard" } else { "played to the null sink: no sound device is configured ([audio] backend)" } })],
                timings(0, 20, 5200, None, audio_ok.then_some(12_300.0))),
            {
                // Failing: nothing recorded, so not observed (never ok).
                let mqtt_ok = !fails("mqtt");
                let published = |s: u32, latency: i64| {
                    if mqtt_ok {
                        observed(s, "publish", true, latency, "eewgate/fake/event: published, PUBACK received")
                    } else {
                        serde_json::Value::Null
                    }
                };
                channel(
                    "mqtt",
                    "BMS broker",
                    None,
                    if mqtt_ok { "ok" } else { "not_observed" },
                    (!mqtt_ok).then_some("no result recorded for publish (start)"),
                    vec![
                        order(0, "publish", "start", json!({ "state": "started", "driving": true }), published(0, 2100)),
                        order(20, "publish", "reset", json!({ "state": "reset", "driving": true }), published(20, 1900)),
                    ],
                    vec![],
                    timings(0, 20, 2100, None, None),
                )
            },
        ];
        let mut counts = serde_json::Map::new();
        for c in &channels {
            let r = c["result"].as_str().unwrap_or("ok").to_owned();
            let n = counts
                .get(&r)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            counts.insert(r, json!(n + 1));
        }
        let failed = channels
            .iter()
            .any(|c| c["result"] == "failed" || c["result"] == "not_observed");
        json!({
            "id": id, "event_id": event_id,
            "kind": if recorded.is_some() { "recorded" } else { "synthetic" },
            "recorded": recorded,
            "recorded_title": recorded.map(|_| json!({ "ja": "豊後水道", "en": "Bungo Channel" })),
            "started_at": at(0), "ended_at": at(20), "end": "reset", "duration_ms": 20_000, "running": false,
            "max_class": "5-", "max_long_period_class": null, "warning": false,
            "reports": if recorded.is_some() { 33 } else { 0 }, "actions": 10,
            "operator": { "id": 1, "at": at(0), "who": "admin", "action": "drill_started",
                          "detail": format!("synthetic drill, class 5-, S wave in 20 s (event {event_id}) from 192.0.2.10") },
            "result": if failed { "failed" } else { "ok" },
            "counts": counts,
            "appliance": { "host": "fake", "version": "0.0.0-fake",
                           "site": { "lat": 33.24, "lon": 131.61, "area_code": "751", "area_name": "大分県南部" } },
            "settings": { "source": "at_drill", "revision": "fake", "at": "2026-12-04T11:00:00.000+09:00" },
            "channels": channels,
        })
    }
}

impl Appliance for FakeAppliance {
    fn status(&self) -> watch::Receiver<serde_json::Value> {
        self.status_tx.subscribe()
    }

    async fn telegrams(
        &self,
        query: HistoryQuery,
    ) -> Result<Vec<serde_json::Value>, ApplianceError> {
        let mut s = self.state();
        let page = Self::page(&s.telegrams, &query);
        s.last_query = Some(query);
        s.pages_read += 1;
        Ok(page)
    }

    async fn telegram_raw(&self, id: i64) -> Result<Option<Vec<u8>>, ApplianceError> {
        Ok(self.state().telegram_raw.get(&id).cloned())
    }

    async fn alerts(&self, query: HistoryQuery) -> Result<Vec<serde_json::Value>, ApplianceError> {
        let mut s = self.state();
        let page = Self::page(&s.alerts, &query);
        s.last_query = Some(query);
        s.pages_read += 1;
        Ok(page)
    }

    async fn get_admin_hash(&self) -> Result<Option<String>, ApplianceError> {
        Ok(self.state().admin_hash.clone())
    }

    async fn set_admin_hash(&self, hash: String) -> Result<(), ApplianceError> {
        self.state().admin_hash = Some(hash);
        Ok(())
    }

    async fn settings(&self) -> Result<serde_json::Value, ApplianceError> {
        let s = self.state();
        Ok(serde_json::json!({
            "editable": true,
            "path": "/etc/eewgate/eewgate.toml",
            "revision": s.settings_revision.to_string(),
            "text": "",
            "document": s.settings,
            "apply_pending": null,
        }))
    }

    async fn check_settings(&self, edit: SettingsEdit) -> Result<SettingsCheck, ApplianceError> {
        Ok(Self::check(&self.state(), &edit))
    }

    async fn whatif_settings(&self, edit: SettingsEdit) -> Result<SettingsWhatIf, ApplianceError> {
        let s = self.state();
        let check = Self::check(&s, &edit);
        let previews = if check.problems.is_empty() {
            Self::whatif(&s, &edit)
        } else {
            Vec::new()
        };
        Ok(SettingsWhatIf { check, previews })
    }

    async fn save_settings(
        &self,
        edit: SettingsEdit,
    ) -> Result<Result<SettingsSaved, SettingsCheck>, ApplianceError> {
        let mut s = self.state();
        let check = Self::check(&s, &edit);
        if !check.valid {
            return Ok(Err(check));
        }
        if let Some(text) = edit.text {
            s.settings.clear();
            s.settings.insert("text".into(), text.into());
        }
        for c in edit.changes {
            if c.value.is_null() {
                s.settings.remove(&c.path);
            } else {
                s.settings.insert(c.path, c.value);
            }
        }
        s.settings_revision += 1;
        Ok(Ok(SettingsSaved {
            revision: s.settings_revision.to_string(),
            diff: check.diff,
            apply: if s.alert_in_progress {
                "after_alert"
            } else {
                "now"
            }
            .into(),
            notes: Vec::new(),
        }))
    }

    async fn upload_chime(
        &self,
        name: String,
        bytes: Vec<u8>,
    ) -> Result<serde_json::Value, crate::appliance::OperationError> {
        if !bytes.starts_with(b"RIFF") {
            return Err(crate::appliance::OperationError::Invalid(
                "not a WAV file".into(),
            ));
        }
        let path = format!("/var/lib/eewgate/chimes/{name}");
        self.state().uploads.push((name, bytes.len()));
        Ok(serde_json::json!({ "path": path, "seconds": 1.0 }))
    }

    async fn upload_certificate(
        &self,
        certificate_pem: String,
        key_pem: String,
    ) -> Result<serde_json::Value, crate::appliance::OperationError> {
        if !certificate_pem.contains("BEGIN CERTIFICATE") || !key_pem.contains("PRIVATE KEY") {
            return Err(crate::appliance::OperationError::Invalid(
                "not a PEM certificate and key".into(),
            ));
        }
        self.state()
            .uploads
            .push(("certificate".into(), certificate_pem.len()));
        Ok(serde_json::json!({
            "cert_file": "/var/lib/eewgate/webui-uploaded-cert.pem",
            "key_file": "/var/lib/eewgate/webui-uploaded-key.pem",
            "fingerprint": "AB:CD",
        }))
    }

    async fn system(&self) -> Result<serde_json::Value, ApplianceError> {
        Ok(serde_json::json!({
            "version": "0.0.0-fake", "started_at": "2026-01-01T00:00:00Z", "uptime_s": 60,
            "host": "fake", "settings_path": "/etc/eewgate/eewgate.toml",
            "time": { "synchronised": true, "source": "fake" }, "features": [],
        }))
    }

    async fn logs(&self) -> Result<String, ApplianceError> {
        Ok(self.state().logs.clone())
    }

    async fn drills(&self) -> Result<serde_json::Value, ApplianceError> {
        Ok(serde_json::json!({
            "allowed": true,
            "recorded": [{ "id": "bungo-2024", "title_ja": "豊後水道", "title_en": "Bungo Channel", "reports": 33 }],
            "outputs": { "relay:1": false, "led": true, "audio": false, "mqtt": true },
        }))
    }

    async fn drill_reports(
        &self,
        query: crate::appliance::DrillReportsQuery,
    ) -> Result<Vec<serde_json::Value>, ApplianceError> {
        let s = self.state();
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        Ok(s.drill_reports
            .iter()
            .rev()
            .filter(|r| {
                query.before_id.is_none_or(|b| {
                    r.get("id")
                        .and_then(serde_json::Value::as_i64)
                        .is_some_and(|id| id < b)
                })
            })
            .take(limit)
            .map(|r| {
                let mut r = r.clone();
                if let Some(o) = r.as_object_mut() {
                    o.remove("channels");
                }
                r
            })
            .collect())
    }

    async fn drill_report(
        &self,
        event_id: String,
    ) -> Result<Option<serde_json::Value>, ApplianceError> {
        Ok(self
            .state()
            .drill_reports
            .iter()
            .find(|r| r.get("event_id").and_then(serde_json::Value::as_str) == Some(&event_id))
            .cloned())
    }

    async fn self_tests(&self) -> Result<serde_json::Value, ApplianceError> {
        let s = self.state();
        let outputs: Vec<serde_json::Value> = FAKE_OUTPUTS
            .iter()
            .map(|(output, name, readback)| {
                let (_, needs_confirmation, _, _) = fake_check(output, *readback);
                serde_json::json!({
                    "output": output, "name": name, "enabled": !s.disabled_outputs.contains(*output),
                    "readback": readback, "needs_confirmation": needs_confirmation,
                })
            })
            .collect();
        Ok(serde_json::json!({ "allowed": !s.alert_in_progress, "outputs": outputs }))
    }

    async fn operate(
        &self,
        op: crate::appliance::Operation,
    ) -> Result<serde_json::Value, crate::appliance::OperationError> {
        use crate::appliance::{Operation, OperationError};
        let now = || chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
        let mut s = self.state();
        match &op {
            Operation::Drill(d) => {
                if s.alert_in_progress {
                    return Err(OperationError::Refused {
                        code: "alert_in_progress",
                        message: "an alert is in progress".into(),
                    });
                }
                if d.recorded.as_deref().is_some_and(|r| r != "bungo-2024") {
                    return Err(OperationError::Invalid("no such recorded event".into()));
                }
                let id = i64::try_from(s.drill_reports.len()).unwrap_or(0) + 1;
                let event_id = format!("drill-2026120412{id:04}");
                let report = Self::sample_drill_report(
                    id,
                    &event_id,
                    d.recorded.as_deref(),
                    &s.failing_outputs,
                );
                s.drill_reports.push(report);
                s.operations.push(op);
                return Ok(serde_json::json!({ "ok": true, "event_id": event_id }));
            }
            Operation::SelfTest(t) => {
                let readback = Self::self_test_refusal(&s, &t.output)?;
                if s.alert_in_progress {
                    return Err(OperationError::Refused {
                        code: "alert_in_progress",
                        message: "an alert is in progress: no self-test now".into(),
                    });
                }
                if s.self_tests_running.contains(&t.output) {
                    return Err(OperationError::Refused {
                        code: "busy",
                        message: format!("{} is being tested already", t.output),
                    });
                }
                let output = t.output.clone();
                let (method, needs_confirmation, measurement_ms, detail) =
                    fake_check(&output, readback);
                let ok = !s.failing_outputs.contains(&output);
                let delay = s.self_test_delay;
                if delay.is_some() {
                    s.self_tests_running.insert(output.clone());
                }
                s.operations.push(op);
                let started_at = now();
                let answer = serde_json::json!({
                    "ok": true, "output": output, "started_at": started_at.to_rfc3339(),
                    "needs_confirmation": needs_confirmation,
                });
                let finish = move |fake: &Self| {
                    let at = now().max(started_at);
                    fake.record_verification(
                        &output,
                        serde_json::json!({
                            "at": at.to_rfc3339(), "source": "self_test", "method": method, "ok": ok,
                            "measurement_ms": if ok { measurement_ms } else { None },
                            "detail": if ok { detail } else { "no response from the output" },
                        }),
                    );
                };
                match delay {
                    None => {
                        drop(s);
                        finish(self);
                    }
                    Some(d) => {
                        drop(s);
                        let fake = self.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(d).await;
                            finish(&fake);
                        });
                    }
                }
                return Ok(answer);
            }
            Operation::ConfirmTest(c) => {
                Self::self_test_refusal(&s, &c.output)?;
                let (output, ok, note) = (c.output.clone(), c.ok, c.note.clone());
                s.operations.push(op);
                drop(s);
                let at = now().to_rfc3339();
                self.record_verification(
                    &output,
                    serde_json::json!({
                        "at": at, "source": "operator", "method": "operator", "ok": ok,
                        "measurement_ms": null, "detail": note,
                    }),
                );
                return Ok(
                    serde_json::json!({ "ok": true, "output": output, "at": at, "worked": ok }),
                );
            }
            Operation::Reset | Operation::Silence => {}
        }
        s.operations.push(op);
        Ok(serde_json::json!({ "ok": true }))
    }

    async fn audit(&self, entry: AuditEntry) -> Result<(), ApplianceError> {
        self.state().audit.push(entry);
        Ok(())
    }
}
