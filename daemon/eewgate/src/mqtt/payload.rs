//! What is published: the alert state a building binds to (flat retained topics and the
//! same as one JSON document), the `event` messages, and the health document. Pure
//! functions of their inputs and `now`, so they are tested without a broker.

use std::collections::BTreeMap;

use chrono::SecondsFormat;
use eew_core::JstTime;
use eew_core::engine::{Action, ActionKind, AlertState, Decision, Label};
use serde_json::{Value, json};

use crate::status::Status;

/// A time as RFC 3339 JST with milliseconds (our own instants; the engine's keep theirs).
pub(crate) fn ms_time(t: JstTime) -> String {
    t.0.to_rfc3339_opts(SecondsFormat::Millis, false)
}

/// Whole seconds from `now` to `arrival`, never negative (floor: "12" means 12–13 s left).
pub(crate) fn seconds_to(arrival: JstTime, now: JstTime) -> i64 {
    arrival
        .0
        .signed_duration_since(now.0)
        .num_milliseconds()
        .max(0)
        / 1000
}

/// `started`, `updated`, … as in the JSON.
pub(crate) fn state_name(s: AlertState) -> &'static str {
    match s {
        AlertState::Started => "started",
        AlertState::Updated => "updated",
        AlertState::Cancelled => "cancelled",
        AlertState::Ended => "ended",
        AlertState::Reset => "reset",
    }
}

/// The alert state of a Publish action (`None` for any other kind).
pub(crate) fn publish_state(a: &Action) -> Option<(AlertState, bool)> {
    match a.kind {
        ActionKind::Publish { state, driving } => Some((state, driving)),
        _ => None,
    }
}

/// The flat state topics under `P/state/`, in publishing order for an alert that starts
/// or changes (details first, `alert_active` and `updated_at` last, so a BMS that sees
/// `alert_active = true` already has the details). A clear publishes `alert_active` first.
pub(crate) const STATE_FIELDS: [&str; 12] = [
    "alert_state",
    "intensity_class",
    "long_period_class",
    "warning",
    "seconds_to_arrival",
    "arrival_time",
    "training",
    "label",
    "event_id",
    "serial",
    "alert_active",
    "updated_at",
];

/// The state shown: the Publish action of the alert on display, or `None` (no alert).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Shown {
    /// The latest Started/Updated action of the alert on display.
    pub(crate) action: Option<Action>,
    /// When the shown state last changed.
    pub(crate) updated_at: Option<JstTime>,
}

impl Shown {
    /// The flat topics' payloads, by field name, computed at `now`: when no alert is
    /// shown `alert_active`, `warning` and `training` are `false` (a BMS binding a
    /// boolean must never be left holding `true`) and every other field but
    /// `updated_at` is the empty string.
    pub(crate) fn flat(&self, now: JstTime) -> Vec<(&'static str, String)> {
        let updated = self.updated_at.map(ms_time).unwrap_or_default();
        let a = self.action.as_ref();
        let text = |f: &dyn Fn(&Action) -> Option<String>| a.and_then(f).unwrap_or_default();
        STATE_FIELDS
            .iter()
            .map(|&field| {
                let v = match field {
                    "alert_active" => a.is_some().to_string(),
                    "alert_state" => {
                        text(&|a| publish_state(a).map(|(s, _)| state_name(s).to_owned()))
                    }
                    "intensity_class" => text(&|a| a.intensity_class.map(|c| c.as_str().into())),
                    "long_period_class" => text(&|a| a.long_period_class.map(|c| c.to_string())),
                    "warning" => a.is_some_and(|a| a.warning).to_string(),
                    "seconds_to_arrival" => {
                        text(&|a| a.arrival.map(|t| seconds_to(t, now).to_string()))
                    }
                    "arrival_time" => text(&|a| a.arrival.map(ms_time)),
                    "training" => a.is_some_and(|a| a.training).to_string(),
                    "label" => text(&|a| label_name(a).map(str::to_owned)),
                    "event_id" => text(&|a| a.event_id.clone()),
                    "serial" => text(&|a| a.serial.map(|s| s.to_string())),
                    _ => updated.clone(),
                };
                (field, v)
            })
            .collect()
    }

    /// The retained `P/state` document: the same fields, typed (`null` where the flat
    /// topic is empty), plus the flags.
    pub(crate) fn json(&self, now: JstTime) -> Value {
        let a = self.action.as_ref();
        json!({
            "alert_active": a.is_some(),
            "alert_state": a.and_then(publish_state).map(|(s, _)| state_name(s)),
            "intensity_class": a.and_then(|a| a.intensity_class).map(|c| c.as_str()),
            "long_period_class": a.and_then(|a| a.long_period_class),
            "warning": a.is_some_and(|a| a.warning),
            "seconds_to_arrival": a.and_then(|a| a.arrival).map(|t| seconds_to(t, now)),
            "arrival_time": a.and_then(|a| a.arrival).map(ms_time),
            "training": a.is_some_and(|a| a.training),
            "label": a.and_then(label_name),
            "event_id": a.and_then(|a| a.event_id.clone()),
            "serial": a.and_then(|a| a.serial),
            "flags": a.map(|a| a.flags),
            "updated_at": self.updated_at.map(ms_time),
        })
    }
}

fn label_name(a: &Action) -> Option<&'static str> {
    Some(match a.label {
        Label::Real => "real",
        Label::Training => "training",
        Label::Test => "test",
        Label::Drill => "drill",
    })
}

/// `P/event` for a Publish action (`type = "alert"`).
pub(crate) fn alert_event(a: &Action, now: JstTime) -> Value {
    let (state, driving) = publish_state(a).map_or((None, false), |(s, d)| (Some(s), d));
    json!({
        "type": "alert",
        "state": state.map(state_name),
        "driving": driving,
        "event_id": a.event_id,
        "serial": a.serial,
        "label": label_name(a),
        "training": a.training,
        "cause": a.cause,
        "intensity_class": a.intensity_class.map(|c| c.as_str()),
        "long_period_class": a.long_period_class,
        "warning": a.warning,
        "arrival_time": a.arrival.map(ms_time),
        "seconds_to_arrival": a.arrival.map(|t| seconds_to(t, now)),
        "flags": a.flags,
        "decided_at": ms_time(a.at),
        "published_at": ms_time(now),
    })
}

/// `P/event` for an accepted report (`type = "report"`): the report's public JSON under
/// `report`, its identity repeated at the top for filtering.
pub(crate) fn report_event(link: &str, report: &Value) -> Value {
    json!({
        "type": "report",
        "link": link,
        "event_id": report.get("event_id"),
        "serial": report.get("serial"),
        "status": report.get("status"),
        "kind": report.get("kind"),
        "report": report,
    })
}

/// `P/event` for an engine decision (`type = "decision"`).
pub(crate) fn decision_event(at: JstTime, d: &Decision) -> Value {
    let mut v = serde_json::to_value(d).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut v {
        map.insert("type".into(), json!("decision"));
        map.insert("at".into(), json!(ms_time(at)));
    }
    v
}

/// The retained `P/health` document without its `updated_at` (so a change is what makes
/// it differ): links, time, watchdog, storage and every output's health, plus the
/// overall `ok` and the stable fault codes. Volatile numbers (counters, offsets, the
/// kernel's error estimate) are left out: they would republish it all the time.
pub(crate) fn health(s: &Status) -> Value {
    let faults = s.faults();
    let links: BTreeMap<&str, Value> = s
        .links
        .iter()
        .map(|(name, l)| {
            (
                name.as_str(),
                json!({
                    "up": l.up, "fault": l.fault, "peer": l.peer, "down_reason": l.down_reason,
                }),
            )
        })
        .collect();
    json!({
        "ok": faults.is_empty(),
        "faults": faults,
        "ready": s.ready,
        "started_at": s.started_at.map(|t| ms_time(JstTime::from_datetime(t.fixed_offset()))),
        "links": links,
        "all_links_down": s.all_links_down,
        "time": {
            "synchronised": s.time.synchronised,
            "fault": s.time.fault,
            "detail": s.time.detail,
        },
        "watchdog": {
            "systemd": s.watchdog.systemd,
            "hardware": s.watchdog.hardware,
            "progressing": s.watchdog.progressing,
        },
        "storage": { "ok": s.storage.ok, "detail": s.storage.detail },
        "outputs": s.outputs,
        "verification_overdue": s.verification_overdue,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
pub(crate) mod tests {
    use super::*;
    use eew_core::Intensity;
    use eew_core::engine::{AlertFlags, Cause, OutputId};

    /// A Publish action decided `now`, S arrival in `in_s` seconds.
    pub(crate) fn publish(
        event: &str,
        serial: u32,
        state: AlertState,
        driving: bool,
        class: Option<Intensity>,
        in_s: i64,
    ) -> Action {
        let now = crate::system::clock::now_jst();
        Action {
            at: now,
            output: OutputId::Mqtt,
            kind: ActionKind::Publish { state, driving },
            cause: Cause::Start,
            event_id: Some(event.to_owned()),
            serial: Some(serial),
            label: Label::Real,
            training: false,
            intensity_class: class,
            long_period_class: Some(1),
            warning: true,
            arrival: Some(JstTime(now.0 + chrono::TimeDelta::seconds(in_s))),
            remaining_s: Some(in_s as f64),
            flags: AlertFlags::default(),
        }
    }

    #[test]
    fn flat_state_of_an_alert_and_of_none() {
        let a = publish(
            "20240417231454",
            3,
            AlertState::Started,
            true,
            Some(Intensity::FiveLower),
            12,
        );
        let now = a.at;
        let shown = Shown {
            action: Some(a.clone()),
            updated_at: Some(now),
        };
        let flat: BTreeMap<&str, String> = shown.flat(now).into_iter().collect();
        assert_eq!(flat["alert_active"], "true");
        assert_eq!(flat["alert_state"], "started");
        assert_eq!(flat["intensity_class"], "5-");
        assert_eq!(flat["long_period_class"], "1");
        assert_eq!(flat["warning"], "true");
        assert_eq!(flat["seconds_to_arrival"], "12");
        assert_eq!(flat["training"], "false");
        assert_eq!(flat["label"], "real");
        assert_eq!(flat["event_id"], "20240417231454");
        assert_eq!(flat["serial"], "3");
        assert!(flat["arrival_time"].ends_with("+09:00"));
        let j = shown.json(now);
        assert_eq!(j["intensity_class"], "5-");
        assert_eq!(j["seconds_to_arrival"], 12);

        let none = Shown {
            action: None,
            updated_at: Some(now),
        };
        let flat: BTreeMap<&str, String> = none.flat(now).into_iter().collect();
        assert_eq!(flat["alert_active"], "false");
        assert_eq!(flat["warning"], "false");
        assert_eq!(flat["training"], "false");
        for f in ["intensity_class", "seconds_to_arrival", "event_id", "label"] {
            assert_eq!(flat[f], "", "{f}");
        }
        assert!(!flat["updated_at"].is_empty());
        assert_eq!(none.json(now)["event_id"], Value::Null);
    }

    #[test]
    fn health_is_ok_only_without_faults() {
        let mut s = Status::default();
        s.storage.ok = true;
        s.outputs.insert("mqtt".into(), "ok".into());
        assert_eq!(health(&s)["ok"], true);
        s.outputs
            .insert("relay:1".into(), "fault: read-back did not follow".into());
        let h = health(&s);
        assert_eq!(h["ok"], false);
        assert_eq!(h["faults"][0], "relay:1");
    }
}
