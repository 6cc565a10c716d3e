//! The drill report (issue 7, "Drill report"): for one drill, every channel with what
//! the engine ordered it to do (*expected*), what the output did and what was seen
//! (*observed*: `output_results` and the alarm's `evidence`), the result and the
//! timings; and the list of past drills. The record the guideline's training support
//! asks for; the web UI shows and prints it (`GET /api/drills/reports/{event_id}`).
//!
//! A drill is one event labelled `drill`: a synthetic one is `drill-<JST second>`, a
//! recorded real event replayed gets its own id per run (`crate::drills::plan`), so the
//! event id is the drill's key everywhere. Every statement here is an index lookup by
//! that id, or a short range of an index by time (the evidence and the audit entry of
//! the drill, which carry no event id): see [`Store::drill_report_plans`]. The drill's
//! evidence is the `alarm` evidence from its first action to [`EVIDENCE_GRACE_MS`] after
//! its last result, cut where the next alert starts after that; a real alarm running
//! during the drill on the same channel would lend it its proofs (they carry no event).
//!
//! The store knows what history holds, not the settings: which channels exist and which
//! take part in drills comes from the caller ([`DrillChannel`], the daemon reads them
//! from the settings in force at the drill). Assembling is pure ([`assemble`]).
//!
//! The rules, each a promise of the report:
//!
//! - A channel the engine ordered to act but whose output recorded nothing for an action
//!   is `not_observed` — a failure, never `ok` (`pending` for [`RESULT_GRACE_MS`] after
//!   the action while results may still be on their way, and while the drill runs).
//! - A failed result or a failed piece of evidence (a read-back that did not follow, an
//!   announcement played to the null sink) makes the channel `failed`, with the reason.
//! - A channel the settings leave out of drills is `not_included`, one whose rule did not
//!   fire for this drill (its threshold above the drill's class) `not_triggered`.
//! - The drill is `failed` when any channel is; `ok` only when at least one channel was
//!   observed working and none failed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use eew_core::JstTime;
use serde::Serialize;
use serde_json::Value;
use sqlx::sqlite::{Sqlite, SqliteRow};
use sqlx::{QueryBuilder, Row};

use super::{AuditRow, EvidenceRow, Store, StoreError, evidence_row, jst, opt_u8, opt_u32};

/// After an action, how long its result may still be on its way (a read-back timing
/// out, a PUBACK, the history writer's batch) before a missing one is `not_observed`.
pub const RESULT_GRACE_MS: i64 = 30_000;

/// How long after a drill's last action its report is `pending` whatever it shows: the
/// history writer commits in batches, so the last orders of a drill (its ending) may land
/// a moment after the engine stopped running it.
pub const SETTLE_MS: i64 = 3_000;

/// How long after a drill's last action its evidence is still its own (an announcement
/// plays to its end after the last order).
pub const EVIDENCE_GRACE_MS: i64 = 120_000;

/// How far from the drill's start its audit entry (`drill_started`) is looked for.
pub const AUDIT_WINDOW_MS: i64 = 60_000;

/// The most drills in one page of [`Store::drills`].
pub const DRILL_PAGE_MAX: u32 = 100;

/// Why a channel does not take part in drills.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// Switched off in the settings (`enabled = false`).
    Disabled,
    /// Its rule leaves drills out (`include.drill = false`).
    NotInDrills,
    /// There is nothing to deliver to: no MQTT broker (`[mqtt]`), no LED pins.
    NotConfigured,
}

/// One channel as the settings in force at the drill describe it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DrillChannel {
    /// `relay:N`, `audio`, `led` or `mqtt`.
    pub channel: String,
    /// Its name in the settings (`elevators`), if any.
    pub name: Option<String>,
    /// Why it does not take part in drills; `None`: it does.
    pub excluded: Option<Exclusion>,
    /// Relays: whether the contact is read back.
    pub readback: Option<bool>,
}

/// What became of one channel in a drill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelResult {
    /// Every order was carried out and seen to be.
    Ok,
    /// An order failed, or what was seen says it did not work.
    Failed,
    /// An order has no result: nobody knows whether it was carried out.
    NotObserved,
    /// Results may still be on their way (the drill runs, or ended moments ago).
    Pending,
    /// It takes part in drills, but its rule did not fire for this one.
    NotTriggered,
    /// The settings leave it out of drills.
    NotIncluded,
}

impl ChannelResult {
    /// The code (as serialised).
    pub fn code(self) -> &'static str {
        match self {
            ChannelResult::Ok => "ok",
            ChannelResult::Failed => "failed",
            ChannelResult::NotObserved => "not_observed",
            ChannelResult::Pending => "pending",
            ChannelResult::NotTriggered => "not_triggered",
            ChannelResult::NotIncluded => "not_included",
        }
    }
}

/// What became of the drill as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DrillResult {
    /// Every channel that acted was seen working; none failed.
    Ok,
    /// A channel failed or was not observed.
    Failed,
    /// The drill is still running.
    InProgress,
    /// Ended moments ago; results may still be on their way.
    Pending,
    /// No channel acted (none takes part in drills, or no rule fired).
    NothingOperated,
}

/// What an output recorded for one action (`output_results`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Observation {
    /// When the output finished (or failed).
    pub at: JstTime,
    /// The action's code it answers (`on`, `announce`, …).
    pub action: String,
    /// Done as ordered.
    pub ok: bool,
    /// From the engine's decision to the effect, µs.
    pub latency_us: Option<i64>,
    /// What was done or why not: `pin 5 level 1; read-back followed in 3.0 ms`, `2
    /// clip(s): …`, the MQTT topic, …
    pub detail: Option<String>,
}

/// One order of the engine to a channel, and what became of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExpectedAction {
    /// The action's row id.
    pub id: i64,
    /// When the engine decided it.
    pub at: JstTime,
    /// `on`, `off`, `announce`, `countdown`, `stop`, `led`, `publish`.
    pub action: String,
    /// Why: `start`, `update`, `countdown`, `pulse_end`, `reset`, `expiry`, …
    pub cause: String,
    /// The report serial behind it.
    pub serial: Option<u32>,
    /// What it says beyond its code, from the action's JSON: `pulse_ms`, `pattern`,
    /// `state`, `driving`, `seconds`, `text_ja`, `text_en`, `intensity_class`.
    pub what: serde_json::Map<String, Value>,
    /// The output's result; `None`: nothing was recorded.
    pub observed: Option<Observation>,
}

/// Evidence the drill produced for a channel (source `alarm`: a read-back that followed
/// the alarm's switching, an announcement played to its end).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvidenceNote {
    /// When it was seen.
    pub at: DateTime<Utc>,
    /// `readback`, `playback`, …
    pub method: String,
    /// It worked.
    pub ok: bool,
    /// The read-back's delay, the seconds played, ms.
    pub measurement_ms: Option<f64>,
    /// For people.
    pub detail: Option<String>,
}

/// A channel's timings in the drill.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ChannelTimings {
    /// The engine's first order to it.
    pub first_action_at: Option<JstTime>,
    /// Its last order.
    pub last_action_at: Option<JstTime>,
    /// The first result.
    pub first_effect_at: Option<JstTime>,
    /// The last result.
    pub last_effect_at: Option<JstTime>,
    /// Decision → effect of its first order, µs.
    pub first_latency_us: Option<i64>,
    /// The slowest decision → effect, µs.
    pub max_latency_us: Option<i64>,
    /// From the first order to the last result (or the last order), ms.
    pub span_ms: Option<i64>,
    /// Relays: how long the contact was closed (its first `on` result to the `off`
    /// result after it), ms.
    pub closed_ms: Option<i64>,
    /// Audio: what was played to its end (playback evidence), ms.
    pub played_ms: Option<f64>,
}

/// One channel of the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChannelReport {
    /// `relay:N`, `audio`, `led`, `mqtt`.
    pub channel: String,
    /// Its name in the settings.
    pub name: Option<String>,
    /// Relays: read back.
    pub readback: Option<bool>,
    /// Why it does not take part in drills.
    pub excluded: Option<Exclusion>,
    /// What became of it.
    pub result: ChannelResult,
    /// Why it failed or what was not observed (the first such), for people.
    pub problem: Option<String>,
    /// The engine's orders, oldest first, each with its result.
    pub expected: Vec<ExpectedAction>,
    /// Results no order accounts for.
    pub unmatched: Vec<Observation>,
    /// What the drill proved of it (`alarm` evidence within the drill).
    pub evidence: Vec<EvidenceNote>,
    /// Timings.
    pub timings: ChannelTimings,
}

/// One drill in history: its alert row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DrillRun {
    /// The alert row's id (`rowid`): the list's paging key.
    pub id: i64,
    /// The drill's event id.
    pub event_id: String,
    /// Its first action.
    pub first_at: JstTime,
    /// Its latest action.
    pub last_at: JstTime,
    /// How it ended (`cancel`, `expiry`, `reset`); `None` while running (or interrupted).
    pub ended: Option<String>,
    /// The highest class it stood at.
    pub max_class: Option<String>,
    /// The highest long-period class.
    pub max_long_period_class: Option<u8>,
    /// It included a warning.
    pub warning: bool,
    /// Actions ordered.
    pub actions: u64,
}

/// The drill report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DrillReport {
    /// The alert row's id.
    pub id: i64,
    /// The drill's event id.
    pub event_id: String,
    /// `synthetic` (a class and seconds) or `recorded` (a real past event replayed).
    pub kind: &'static str,
    /// The recorded event replayed (`bungo-2024`), when known.
    pub recorded: Option<String>,
    /// When it started (its first decision or action).
    pub started_at: JstTime,
    /// When it ended (its last action), once it has.
    pub ended_at: Option<JstTime>,
    /// How: `cancel`, `expiry`, `reset`, or `interrupted` (no ending recorded and no
    /// longer running: the daemon's tasks restarted during it).
    pub end: Option<String>,
    /// Start to end, ms.
    pub duration_ms: Option<i64>,
    /// Still running.
    pub running: bool,
    /// The highest class it stood at.
    pub max_class: Option<String>,
    /// The highest long-period class.
    pub max_long_period_class: Option<u8>,
    /// It included a warning.
    pub warning: bool,
    /// Reports the engine accepted (a recorded drill's telegrams; 0 for a synthetic one).
    pub reports: u32,
    /// Actions ordered (all channels).
    pub actions: u64,
    /// Who started it, from the audit trail (`drill_started` naming this event).
    pub operator: Option<AuditRow>,
    /// The result.
    pub result: DrillResult,
    /// Channels per result code.
    pub counts: BTreeMap<&'static str, u32>,
    /// Every channel: the configured ones in the caller's order, then any other that
    /// acted.
    pub channels: Vec<ChannelReport>,
}

/// What history holds of one drill, as [`assemble`] takes it.
#[derive(Clone, Debug, PartialEq)]
pub struct DrillRecords {
    /// The alert row.
    pub run: DrillRun,
    /// The engine's orders: `(row id, action JSON row)`, oldest first.
    pub actions: Vec<ActionRecord>,
    /// The outputs' results, oldest first.
    pub results: Vec<ResultRecord>,
    /// The engine's decisions for the event: `(at, outcome, detail)`, oldest first.
    pub decisions: Vec<(JstTime, String, Option<String>)>,
    /// `alarm` evidence within the drill, oldest first.
    pub evidence: Vec<EvidenceRow>,
    /// The audit entry that started it.
    pub operator: Option<AuditRow>,
}

/// One stored action of a drill.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionRecord {
    /// Row id.
    pub id: i64,
    /// When the engine decided it.
    pub at: JstTime,
    /// The output.
    pub output: String,
    /// The action's code.
    pub action: String,
    /// The cause's code.
    pub cause: String,
    /// The serial.
    pub serial: Option<u32>,
    /// The action's JSON (as `eewgate replay` prints it).
    pub json: Value,
}

/// One stored output result of a drill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultRecord {
    /// The output.
    pub output: String,
    /// The serial of the action it answers.
    pub serial: Option<u32>,
    /// What it says.
    pub observation: Observation,
}

/// The keys of an action's JSON the report keeps in [`ExpectedAction::what`].
const WHAT_KEYS: &[&str] = &[
    "pulse_ms",
    "pattern",
    "state",
    "driving",
    "seconds",
    "text_ja",
    "text_en",
    "intensity_class",
];

/// The alert row of a drill.
const RUN_SQL: &str = "SELECT rowid AS id, event_id, first_ms, last_ms, ended, max_class, \
     max_long_period, warning, actions FROM alerts WHERE event_id = ?1 AND label = 'drill'";
/// Its actions (`actions_event`).
const ACTIONS_SQL: &str = "SELECT id, at_ms, output, action, cause, serial, json FROM actions \
     WHERE event_id = ?1 AND label = 'drill' ORDER BY id";
/// What the outputs did (`output_results_event`).
const RESULTS_SQL: &str = "SELECT id, at_ms, output, action, serial, ok, latency_us, detail \
     FROM output_results WHERE event_id = ?1 ORDER BY id";
/// The engine's decisions (`decisions_event`).
const DECISIONS_SQL: &str = "SELECT id, at_ms, outcome, detail FROM decisions \
     WHERE event_id = ?1 AND label = 'drill' ORDER BY id";
/// The first alert to start after the drill's last action: its evidence ends there
/// (`alerts_first`).
const NEXT_ALERT_SQL: &str = "SELECT min(first_ms) FROM alerts WHERE first_ms > ?1";
/// The alarm's evidence within the drill (`evidence_at`).
const EVIDENCE_SQL: &str = "SELECT id, at_ms, channel, source, method, ok, measurement_ms, \
     detail FROM evidence WHERE at_ms >= ?1 AND at_ms <= ?2 AND source = 'alarm' \
     ORDER BY at_ms, id";
/// The audit entries that started a drill around its start (`audit_at`).
const AUDIT_SQL: &str = "SELECT id, at_ms, who, action, detail FROM audit \
     WHERE at_ms >= ?1 AND at_ms <= ?2 AND action = 'drill_started' ORDER BY at_ms, id";

/// The SQL of a page of drills (or of its plan): newest first by the alert row's id
/// (`alerts_label`, which ends with the rowid: one walk down the drill rows).
fn drills_sql(before_id: Option<i64>, limit: u32, explain: bool) -> QueryBuilder<Sqlite> {
    let mut q = QueryBuilder::<Sqlite>::new(if explain { "EXPLAIN QUERY PLAN " } else { "" });
    q.push(
        "SELECT rowid AS id, event_id, first_ms, last_ms, ended, max_class, max_long_period, \
         warning, actions FROM alerts WHERE label = 'drill'",
    );
    if let Some(before) = before_id {
        q.push(" AND rowid < ").push_bind(before);
    }
    q.push(" ORDER BY rowid DESC LIMIT ")
        .push_bind(i64::from(limit.clamp(1, DRILL_PAGE_MAX)));
    q
}

fn run_row(r: &SqliteRow) -> Result<DrillRun, StoreError> {
    Ok(DrillRun {
        id: r.try_get("id")?,
        event_id: r.try_get("event_id")?,
        first_at: jst(r.try_get("first_ms")?),
        last_at: jst(r.try_get("last_ms")?),
        ended: r.try_get("ended")?,
        max_class: r.try_get("max_class")?,
        max_long_period_class: opt_u8(r.try_get("max_long_period")?),
        warning: r.try_get("warning")?,
        actions: u64::try_from(r.try_get::<i64, _>("actions")?).unwrap_or(0),
    })
}

fn ms_of(t: JstTime) -> i64 {
    t.0.timestamp_millis()
}

impl Store {
    /// One page of past drills, newest first: rows strictly below `before_id`, at most
    /// `limit` (clamped to 1..=[`DRILL_PAGE_MAX`]).
    pub async fn drills(
        &self,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DrillRun>, StoreError> {
        let rows = drills_sql(before_id, limit, false)
            .build()
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run_row).collect()
    }

    /// Everything history holds of the drill `event_id`; `None` when it has no drill of
    /// that id (never was, or purged by retention). `now` bounds the evidence of a drill
    /// still running.
    pub async fn drill_records(
        &self,
        event_id: &str,
        running: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<DrillRecords>, StoreError> {
        let Some(run) = sqlx::query(RUN_SQL)
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(run_row)
            .transpose()?
        else {
            return Ok(None);
        };
        let actions = sqlx::query(ACTIONS_SQL)
            .bind(event_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                let json: String = r.try_get("json")?;
                Ok(ActionRecord {
                    id: r.try_get("id")?,
                    at: jst(r.try_get("at_ms")?),
                    output: r.try_get("output")?,
                    action: r.try_get("action")?,
                    cause: r.try_get("cause")?,
                    serial: opt_u32(r.try_get("serial")?),
                    json: serde_json::from_str(&json).unwrap_or(Value::Null),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let results = sqlx::query(RESULTS_SQL)
            .bind(event_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(ResultRecord {
                    output: r.try_get("output")?,
                    serial: opt_u32(r.try_get("serial")?),
                    observation: Observation {
                        at: jst(r.try_get("at_ms")?),
                        action: r.try_get("action")?,
                        ok: r.try_get("ok")?,
                        latency_us: r.try_get("latency_us")?,
                        detail: r.try_get("detail")?,
                    },
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let decisions = sqlx::query(DECISIONS_SQL)
            .bind(event_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    jst(r.try_get("at_ms")?),
                    r.try_get::<String, _>("outcome")?,
                    r.try_get::<Option<String>, _>("detail")?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;

        let start_ms = decisions
            .first()
            .map(|(at, _, _)| ms_of(*at))
            .map_or(ms_of(run.first_at), |d| d.min(ms_of(run.first_at)));
        let last_ms = results
            .iter()
            .map(|r| ms_of(r.observation.at))
            .chain([ms_of(run.last_at)])
            .max()
            .unwrap_or(ms_of(run.last_at));
        let next_alert: Option<i64> = sqlx::query_scalar(NEXT_ALERT_SQL)
            .bind(last_ms)
            .fetch_one(&self.pool)
            .await?;
        let horizon = if running {
            now.timestamp_millis()
        } else {
            last_ms.saturating_add(EVIDENCE_GRACE_MS)
        };
        let until = next_alert.map_or(horizon, |n| horizon.min(n.saturating_sub(1)));
        let evidence = sqlx::query(EVIDENCE_SQL)
            .bind(ms_of(run.first_at))
            .bind(until)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(evidence_row)
            .collect::<Result<Vec<_>, StoreError>>()?;
        let marker = format!("(event {event_id})");
        let operator = sqlx::query(AUDIT_SQL)
            .bind(start_ms.saturating_sub(AUDIT_WINDOW_MS))
            .bind(start_ms.saturating_add(AUDIT_WINDOW_MS))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(AuditRow {
                    id: r.try_get("id")?,
                    at: jst(r.try_get("at_ms")?),
                    who: r.try_get("who")?,
                    action: r.try_get("action")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?
            .into_iter()
            .find(|a| a.detail.as_deref().is_some_and(|d| d.contains(&marker)));
        Ok(Some(DrillRecords {
            run,
            actions,
            results,
            decisions,
            evidence,
            operator,
        }))
    }

    /// The report of the drill `event_id` over `channels` (the settings' channels, in
    /// the order to show them); `running`: the engine still runs it. `None` when history
    /// has no drill of that id.
    pub async fn drill_report(
        &self,
        event_id: &str,
        channels: &[DrillChannel],
        running: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<DrillReport>, StoreError> {
        Ok(self
            .drill_records(event_id, running, now)
            .await?
            .map(|records| assemble(&records, channels, running, now)))
    }

    /// The settings file in force at `at`: the newest stored version loaded at or before
    /// it (`config_changes_at`).
    pub async fn config_at(
        &self,
        at: DateTime<Utc>,
    ) -> Result<Option<super::ConfigRow>, StoreError> {
        let row = sqlx::query(CONFIG_AT_SQL)
            .bind(at.timestamp_millis())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(super::ConfigRow {
                id: r.try_get("id")?,
                at: jst(r.try_get("at_ms")?),
                sha256: r.try_get("sha256")?,
                text: r.try_get("text")?,
            })
        })
        .transpose()
    }

    /// SQLite's plan of every statement of [`Store::drill_records`], [`Store::drills`]
    /// (with and without `before_id`) and [`Store::config_at`], by name: for tests that
    /// they are index lookups, and for diagnostics.
    pub async fn drill_report_plans(&self) -> Result<Vec<(&'static str, Vec<String>)>, StoreError> {
        let mut out = Vec::new();
        for (name, sql, binds) in [
            ("run", RUN_SQL, 1),
            ("actions", ACTIONS_SQL, 1),
            ("results", RESULTS_SQL, 1),
            ("decisions", DECISIONS_SQL, 1),
            ("next_alert", NEXT_ALERT_SQL, 1),
            ("evidence", EVIDENCE_SQL, 2),
            ("audit", AUDIT_SQL, 2),
            ("config_at", CONFIG_AT_SQL, 1),
        ] {
            // A constant of this file behind a constant prefix: nothing from outside.
            let explain = sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}"));
            let mut q = sqlx::query(explain);
            // Text for the event id, numbers for the times: the types the real calls bind.
            for i in 0..binds {
                q = if sql.contains("event_id = ?1") {
                    q.bind("drill-20260101000000")
                } else {
                    q.bind(1_700_000_000_000_i64 + i)
                };
            }
            let rows = q.fetch_all(&self.pool).await?;
            out.push((name, super::plan_details(&rows)?));
        }
        for (name, before) in [("drills", None), ("drills_before", Some(1000))] {
            let rows = drills_sql(before, DRILL_PAGE_MAX, true)
                .build()
                .fetch_all(&self.pool)
                .await?;
            out.push((name, super::plan_details(&rows)?));
        }
        Ok(out)
    }
}

/// The settings in force at a time (`config_changes_at`, walked down from the time).
const CONFIG_AT_SQL: &str = "SELECT id, at_ms, sha256, text FROM config_changes \
     WHERE at_ms <= ?1 ORDER BY at_ms DESC, id DESC LIMIT 1";

/// The report from what history holds of a drill (see the module's rules).
pub fn assemble(
    records: &DrillRecords,
    channels: &[DrillChannel],
    running: bool,
    now: DateTime<Utc>,
) -> DrillReport {
    let run = &records.run;
    // The configured channels first, then any other that acted or answered.
    let mut order: Vec<DrillChannel> = channels.to_vec();
    let others = records
        .actions
        .iter()
        .map(|a| a.output.clone())
        .chain(records.results.iter().map(|r| r.output.clone()));
    for output in others {
        if !order.iter().any(|c| c.channel == output) {
            order.push(DrillChannel {
                channel: output,
                name: None,
                excluded: None,
                readback: None,
            });
        }
    }
    let channels: Vec<ChannelReport> = order
        .iter()
        .map(|c| channel_report(records, c, running, now))
        .collect();

    let mut counts: BTreeMap<&'static str, u32> = BTreeMap::new();
    for c in &channels {
        *counts.entry(c.result.code()).or_default() += 1;
    }
    let has = |r: ChannelResult| channels.iter().any(|c| c.result == r);
    let since_last = now.timestamp_millis() - ms_of(run.last_at);
    // Not running and no ending recorded: the ending may still be on its way to history,
    // else the daemon's tasks restarted during the drill.
    let end = match (&run.ended, running) {
        (Some(e), _) => Some(e.clone()),
        (None, false) if since_last >= RESULT_GRACE_MS => Some("interrupted".to_owned()),
        (None, _) => None,
    };
    let settling = !running && (end.is_none() || since_last < SETTLE_MS);
    let result = if has(ChannelResult::Failed) || has(ChannelResult::NotObserved) {
        DrillResult::Failed
    } else if running {
        DrillResult::InProgress
    } else if settling || has(ChannelResult::Pending) {
        DrillResult::Pending
    } else if has(ChannelResult::Ok) {
        DrillResult::Ok
    } else {
        DrillResult::NothingOperated
    };

    let started_at = records
        .decisions
        .first()
        .map(|(at, _, _)| *at)
        .filter(|at| at.0 < run.first_at.0)
        .unwrap_or(run.first_at);
    let ended_at = end.is_some().then_some(run.last_at);
    let recorded = records
        .decisions
        .iter()
        .find(|(_, outcome, _)| outcome == "drill_started")
        .and_then(|(_, _, detail)| detail.clone());
    let kind = if recorded.is_some() || !run.event_id.starts_with("drill-") {
        "recorded"
    } else {
        "synthetic"
    };
    let reports = records
        .decisions
        .iter()
        .filter(|(_, outcome, _)| outcome == "accepted")
        .count();
    DrillReport {
        id: run.id,
        event_id: run.event_id.clone(),
        kind,
        recorded,
        started_at,
        ended_at,
        end,
        duration_ms: ended_at.map(|e| ms_of(e) - ms_of(started_at)),
        running,
        max_class: run.max_class.clone(),
        max_long_period_class: run.max_long_period_class,
        warning: run.warning,
        reports: u32::try_from(reports).unwrap_or(u32::MAX),
        actions: run.actions,
        operator: records.operator.clone(),
        result,
        counts,
        channels,
    }
}

fn channel_report(
    records: &DrillRecords,
    channel: &DrillChannel,
    running: bool,
    now: DateTime<Utc>,
) -> ChannelReport {
    let name = channel.channel.as_str();
    // Each result answers the oldest order of its output, code and serial not yet
    // answered (an output carries out its orders in turn).
    let mut answers: Vec<(&ResultRecord, bool)> = records
        .results
        .iter()
        .filter(|r| r.output == name)
        .map(|r| (r, false))
        .collect();
    let mut expected = Vec::new();
    for a in records.actions.iter().filter(|a| a.output == name) {
        let observed = answers
            .iter_mut()
            .find(|(r, used)| !*used && r.observation.action == a.action && r.serial == a.serial)
            .map(|(r, used)| {
                *used = true;
                r.observation.clone()
            });
        let what = WHAT_KEYS
            .iter()
            .filter_map(|k| {
                a.json
                    .get(*k)
                    .filter(|v| !v.is_null())
                    .map(|v| ((*k).to_owned(), v.clone()))
            })
            .collect();
        expected.push(ExpectedAction {
            id: a.id,
            at: a.at,
            action: a.action.clone(),
            cause: a.cause.clone(),
            serial: a.serial,
            what,
            observed,
        });
    }
    let unmatched: Vec<Observation> = answers
        .iter()
        .filter(|(_, used)| !*used)
        .map(|(r, _)| r.observation.clone())
        .collect();
    let evidence: Vec<EvidenceNote> = records
        .evidence
        .iter()
        .filter(|e| e.channel == name)
        .map(|e| EvidenceNote {
            at: e.at,
            method: e.method.clone(),
            ok: e.ok,
            measurement_ms: e.measurement_ms,
            detail: e.detail.clone(),
        })
        .collect();

    let observations = || {
        expected
            .iter()
            .filter_map(|e| e.observed.as_ref())
            .chain(unmatched.iter())
    };
    let failure = observations()
        .find(|o| !o.ok)
        .map(|o| format!("{}: {}", o.action, o.detail.as_deref().unwrap_or("failed")))
        .or_else(|| {
            evidence.iter().find(|e| !e.ok).map(|e| {
                format!(
                    "{}: {}",
                    e.method,
                    e.detail.as_deref().unwrap_or("proof failed")
                )
            })
        });
    let missing = expected.iter().find(|e| e.observed.is_none());
    let nothing_to_deliver_to =
        channel.excluded == Some(Exclusion::NotConfigured) && observations().next().is_none();
    let (result, problem) = if expected.is_empty() && unmatched.is_empty() {
        match channel.excluded {
            Some(_) => (ChannelResult::NotIncluded, None),
            None => (ChannelResult::NotTriggered, None),
        }
    } else if nothing_to_deliver_to {
        (ChannelResult::NotIncluded, None)
    } else if let Some(why) = failure {
        (ChannelResult::Failed, Some(why))
    } else if let Some(m) = missing {
        let fresh = now.timestamp_millis() - ms_of(m.at) < RESULT_GRACE_MS;
        let why = format!(
            "no result recorded for {} ({}) decided at {}",
            m.action,
            m.cause,
            m.at.to_rfc3339()
        );
        if running || fresh {
            (ChannelResult::Pending, Some(why))
        } else {
            (ChannelResult::NotObserved, Some(why))
        }
    } else {
        (ChannelResult::Ok, None)
    };

    let timings = timings(&expected, &evidence);
    ChannelReport {
        channel: channel.channel.clone(),
        name: channel.name.clone(),
        readback: channel.readback,
        excluded: channel.excluded,
        result,
        problem,
        expected,
        unmatched,
        evidence,
        timings,
    }
}

fn timings(expected: &[ExpectedAction], evidence: &[EvidenceNote]) -> ChannelTimings {
    let observed: Vec<&Observation> = expected
        .iter()
        .filter_map(|e| e.observed.as_ref())
        .collect();
    let first_action_at = expected.first().map(|e| e.at);
    let last_action_at = expected.last().map(|e| e.at);
    let first_effect_at = observed.iter().map(|o| o.at).min_by_key(|t| ms_of(*t));
    let last_effect_at = observed.iter().map(|o| o.at).max_by_key(|t| ms_of(*t));
    let first_latency_us = expected
        .first()
        .and_then(|e| e.observed.as_ref())
        .and_then(|o| o.latency_us);
    let max_latency_us = observed.iter().filter_map(|o| o.latency_us).max();
    let span_ms = first_action_at.map(|first| {
        let last = last_effect_at
            .into_iter()
            .chain(last_action_at)
            .map(ms_of)
            .max()
            .unwrap_or(ms_of(first));
        last - ms_of(first)
    });
    // Relays: the first closing seen to the opening seen after it.
    let on = expected
        .iter()
        .find(|e| e.action == "on")
        .and_then(|e| e.observed.as_ref().filter(|o| o.ok));
    let closed_ms = on.and_then(|on| {
        expected
            .iter()
            .filter(|e| e.action == "off")
            .filter_map(|e| e.observed.as_ref().filter(|o| o.ok))
            .find(|off| off.at.0 >= on.at.0)
            .map(|off| ms_of(off.at) - ms_of(on.at))
    });
    let played: Vec<f64> = evidence
        .iter()
        .filter(|e| e.ok && e.method == "playback")
        .filter_map(|e| e.measurement_ms)
        .collect();
    ChannelTimings {
        first_action_at,
        last_action_at,
        first_effect_at,
        last_effect_at,
        first_latency_us,
        max_latency_us,
        span_ms,
        closed_ms,
        played_ms: (!played.is_empty()).then(|| played.iter().sum()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(ms: i64) -> JstTime {
        jst(1_796_000_000_000 + ms)
    }

    fn action(id: i64, ms: i64, output: &str, action: &str, cause: &str) -> ActionRecord {
        ActionRecord {
            id,
            at: t(ms),
            output: output.to_owned(),
            action: action.to_owned(),
            cause: cause.to_owned(),
            serial: Some(1),
            json: json!({"action": action, "pulse_ms": null, "pattern": "exercise"}),
        }
    }

    fn result(ms: i64, output: &str, action: &str, ok: bool, detail: &str) -> ResultRecord {
        ResultRecord {
            output: output.to_owned(),
            serial: Some(1),
            observation: Observation {
                at: t(ms),
                action: action.to_owned(),
                ok,
                latency_us: Some(400),
                detail: Some(detail.to_owned()),
            },
        }
    }

    fn channel(name: &str, excluded: Option<Exclusion>) -> DrillChannel {
        DrillChannel {
            channel: name.to_owned(),
            name: None,
            excluded,
            readback: None,
        }
    }

    fn records(ended: Option<&str>) -> DrillRecords {
        DrillRecords {
            run: DrillRun {
                id: 7,
                event_id: "drill-20261204120000".to_owned(),
                first_at: t(0),
                last_at: t(5000),
                ended: ended.map(str::to_owned),
                max_class: Some("5-".to_owned()),
                max_long_period_class: None,
                warning: false,
                actions: 5,
            },
            actions: vec![
                action(1, 0, "relay:1", "on", "start"),
                action(2, 0, "led", "led", "start"),
                action(3, 0, "mqtt", "publish", "start"),
                action(4, 5000, "relay:1", "off", "reset"),
                action(5, 5000, "led", "led", "reset"),
            ],
            results: vec![
                result(
                    1,
                    "relay:1",
                    "on",
                    true,
                    "pin 5 level 1; read-back followed in 3.0 ms",
                ),
                result(1, "led", "led", true, "pattern exercise"),
                result(
                    5001,
                    "relay:1",
                    "off",
                    true,
                    "pin 5 level 0; read-back followed in 2.0 ms",
                ),
            ],
            decisions: vec![(t(0), "drill_started".to_owned(), None)],
            evidence: vec![],
            operator: None,
        }
    }

    fn now(ms: i64) -> DateTime<Utc> {
        t(ms).0.to_utc()
    }

    #[test]
    fn a_channel_without_a_result_is_pending_then_not_observed_never_ok() {
        let channels = [
            channel("relay:1", None),
            channel("led", None),
            channel("audio", Some(Exclusion::NotInDrills)),
            channel("relay:2", None),
        ];
        let recs = records(Some("reset"));
        // Right after the end, the LED's last result may still be on its way.
        let r = assemble(&recs, &channels, false, now(6000));
        let led = r.channels.iter().find(|c| c.channel == "led").unwrap();
        assert_eq!(led.result, ChannelResult::Pending);
        assert_eq!(r.result, DrillResult::Pending);
        // Long after: not observed, and the drill failed.
        let r = assemble(&recs, &channels, false, now(5000 + RESULT_GRACE_MS + 1));
        let by = |n: &str| r.channels.iter().find(|c| c.channel == n).unwrap();
        assert_eq!(by("led").result, ChannelResult::NotObserved);
        assert!(
            by("led")
                .problem
                .as_deref()
                .unwrap()
                .contains("led (reset)")
        );
        assert_eq!(by("relay:1").result, ChannelResult::Ok);
        assert_eq!(by("relay:1").timings.closed_ms, Some(5000));
        assert_eq!(by("relay:1").timings.first_latency_us, Some(400));
        assert_eq!(by("audio").result, ChannelResult::NotIncluded);
        assert_eq!(by("relay:2").result, ChannelResult::NotTriggered);
        // mqtt acted but is not among the configured channels: listed, and unobserved.
        assert_eq!(by("mqtt").result, ChannelResult::NotObserved);
        assert_eq!(r.result, DrillResult::Failed);
        assert_eq!(r.kind, "synthetic");
        assert_eq!(r.end.as_deref(), Some("reset"));
        assert_eq!(r.duration_ms, Some(5000));
        assert_eq!(r.counts["not_observed"], 2);
        // The order: configured channels first.
        let names: Vec<&str> = r.channels.iter().map(|c| c.channel.as_str()).collect();
        assert_eq!(names, ["relay:1", "led", "audio", "relay:2", "mqtt"]);
    }

    #[test]
    fn a_failed_result_or_failed_evidence_fails_the_channel() {
        let mut recs = records(Some("reset"));
        recs.results
            .push(result(2, "led", "led", true, "pattern normal"));
        recs.results[0].observation.ok = false;
        recs.results[0].observation.detail = Some("fault: read-back did not follow".to_owned());
        let channels = [
            channel("relay:1", None),
            channel("led", None),
            channel("mqtt", Some(Exclusion::NotConfigured)),
        ];
        let r = assemble(&recs, &channels, false, now(100_000));
        let by = |n: &str| r.channels.iter().find(|c| c.channel == n).unwrap();
        assert_eq!(by("relay:1").result, ChannelResult::Failed);
        assert!(
            by("relay:1")
                .problem
                .as_deref()
                .unwrap()
                .contains("did not follow")
        );
        assert_eq!(by("led").result, ChannelResult::Ok);
        // Nothing to deliver to: not included, although the engine ordered it.
        assert_eq!(by("mqtt").result, ChannelResult::NotIncluded);
        assert_eq!(by("mqtt").expected.len(), 1);
        assert_eq!(r.result, DrillResult::Failed);

        // Evidence that failed (the null sink) fails a channel whose results were ok.
        let mut recs = records(Some("reset"));
        recs.actions
            .push(action(6, 0, "audio", "announce", "start"));
        recs.results
            .push(result(2, "led", "led", true, "pattern normal"));
        recs.results
            .push(result(3, "audio", "announce", true, "2 clip(s)"));
        recs.evidence.push(EvidenceRow {
            id: 1,
            at: now(4000),
            channel: "audio".to_owned(),
            source: "alarm".to_owned(),
            method: "playback".to_owned(),
            ok: false,
            measurement_ms: Some(3000.0),
            detail: Some("played to the null sink".to_owned()),
        });
        let r = assemble(&recs, &[channel("audio", None)], false, now(100_000));
        let audio = r.channels.iter().find(|c| c.channel == "audio").unwrap();
        assert_eq!(audio.result, ChannelResult::Failed);
        assert!(audio.problem.as_deref().unwrap().starts_with("playback: "));
        assert_eq!(audio.timings.played_ms, None, "only what played ok counts");
    }

    #[test]
    fn a_running_drill_is_in_progress_and_a_vanished_one_interrupted() {
        let mut recs = records(None);
        recs.results
            .push(result(2, "led", "led", true, "pattern normal"));
        recs.results
            .push(result(3, "mqtt", "publish", true, "eewgate/alert"));
        let channels = [channel("relay:1", None), channel("led", None)];
        let r = assemble(&recs, &channels, true, now(1_000_000));
        assert_eq!(r.result, DrillResult::InProgress);
        assert_eq!(r.end, None);
        assert_eq!(r.ended_at, None);
        // Just stopped, no ending in history yet: it may be on its way.
        let r = assemble(&recs, &channels, false, now(5000 + SETTLE_MS));
        assert_eq!((r.end.as_deref(), r.result), (None, DrillResult::Pending));
        let r = assemble(&recs, &channels, false, now(1_000_000));
        assert_eq!(r.end.as_deref(), Some("interrupted"));
        assert_eq!(r.result, DrillResult::Ok);
        // Ended moments ago: pending until history has settled, then ok.
        let mut ended = recs.clone();
        ended.run.ended = Some("reset".to_owned());
        let r = assemble(&ended, &channels, false, now(5000 + SETTLE_MS - 1));
        assert_eq!(r.result, DrillResult::Pending);
        let r = assemble(&ended, &channels, false, now(5000 + SETTLE_MS));
        assert_eq!(r.result, DrillResult::Ok);
        // A recorded event names itself in its start decision.
        recs.decisions[0].2 = Some("bungo-2024".to_owned());
        let r = assemble(&recs, &channels, false, now(1_000_000));
        assert_eq!(
            (r.kind, r.recorded.as_deref()),
            ("recorded", Some("bungo-2024"))
        );
        // Nothing acted at all.
        let mut quiet = records(Some("reset"));
        quiet.actions.clear();
        quiet.results.clear();
        let r = assemble(&quiet, &channels, false, now(1_000_000));
        assert_eq!(r.result, DrillResult::NothingOperated);
    }
}
