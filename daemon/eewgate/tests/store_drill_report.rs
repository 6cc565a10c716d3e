//! The drill report from a real SQLite file: assembled from what history holds (actions,
//! output results, the alarm's evidence, the audit entry, the start decision), kept apart
//! from a real event and from another drill, the list of past drills paged, and every
//! statement an index search (EXPLAIN QUERY PLAN) over a history with many events.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use eew_core::engine::{
    Action, ActionKind, AlertFlags, AlertState, Cause, Decision, Label, LedPattern, OutputId,
};
use eew_core::{Intensity, JstTime};
use eewgate::store::{
    AuditRecord, ChannelResult, DrillChannel, DrillResult, EvidenceRecord, Exclusion, OutputRecord,
    Record, Store,
};

fn db_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("store_drill_report")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("history.db")
}

/// 2026-12-04T12:00:00+09:00 plus `ms`.
fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-04T03:00:00Z")
        .unwrap()
        .to_utc()
        + chrono::Duration::milliseconds(ms)
}

fn jst(ms: i64) -> JstTime {
    JstTime::from_datetime(utc(ms).fixed_offset())
}

fn action(
    ms: i64,
    output: OutputId,
    kind: ActionKind,
    cause: Cause,
    event: &str,
    label: Label,
) -> Record {
    Record::Action(Action {
        at: jst(ms),
        output,
        kind,
        cause,
        event_id: Some(event.to_owned()),
        serial: Some(1),
        label,
        training: label != Label::Real,
        intensity_class: Some(Intensity::FiveLower),
        long_period_class: None,
        warning: false,
        arrival: None,
        remaining_s: None,
        flags: AlertFlags::default(),
    })
}

fn result(ms: i64, output: &str, action: &str, event: &str, ok: bool, detail: &str) -> Record {
    Record::Output(OutputRecord {
        at: utc(ms),
        output: output.to_owned(),
        action: action.to_owned(),
        event_id: Some(event.to_owned()),
        serial: Some(1),
        ok,
        latency_us: Some(350),
        detail: Some(detail.to_owned()),
    })
}

fn evidence(ms: i64, channel: &str, source: &str, ok: bool, detail: &str) -> Record {
    Record::Evidence(EvidenceRecord {
        at: utc(ms),
        channel: channel.to_owned(),
        source: source.to_owned(),
        method: "readback".to_owned(),
        ok,
        measurement_ms: Some(2.5),
        detail: Some(detail.to_owned()),
    })
}

fn started(ms: i64, event: &str, recorded: Option<&'static str>) -> Record {
    Record::Decision {
        at: jst(ms),
        decision: Decision {
            event_id: Some(event.to_owned()),
            serial: None,
            label: Label::Drill,
            outcome: "drill_started",
            detail: recorded,
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

const DRILL: &str = "drill-20261204120000";
const OTHER_DRILL: &str = "drill-20261204121000";
const REAL: &str = "20261204120003";

/// A drill through relay 1 (read back), the LED and MQTT, reset after 20 s; a real event
/// starting 3 s into it on the same contact; another drill 10 minutes later with one
/// LED result missing.
fn history() -> Vec<Record> {
    let on = || ActionKind::On { pulse_ms: None };
    let led = |pattern| ActionKind::Led { pattern };
    let publish = |state| ActionKind::Publish {
        state,
        driving: true,
    };
    let d = Label::Drill;
    vec![
        Record::Config {
            at: utc(-60_000),
            text: "[site]\nlat = 33.24\n".to_owned(),
        },
        started(0, DRILL, None),
        action(0, OutputId::Relay(1), on(), Cause::Start, DRILL, d),
        action(
            0,
            OutputId::Led,
            led(LedPattern::Exercise),
            Cause::Start,
            DRILL,
            d,
        ),
        action(
            0,
            OutputId::Mqtt,
            publish(AlertState::Started),
            Cause::Start,
            DRILL,
            d,
        ),
        Record::Audit(AuditRecord {
            at: utc(2),
            who: "admin".to_owned(),
            action: "drill_started".to_owned(),
            detail: Some(format!(
                "synthetic drill, class 5-, S wave in 20 s (event {DRILL}) from 192.0.2.10"
            )),
        }),
        result(
            1,
            "relay:1",
            "on",
            DRILL,
            true,
            "pin 5 level 1; read-back followed in 2.5 ms",
        ),
        evidence(
            1,
            "relay:1",
            "alarm",
            true,
            "read-back followed the alarm's closing",
        ),
        result(2, "led", "led", DRILL, true, "pattern exercise"),
        result(
            40,
            "mqtt",
            "publish",
            DRILL,
            true,
            "eewgate/t/event: published, PUBACK received",
        ),
        // The real event: its own actions and results, never the drill's.
        action(
            3000,
            OutputId::Relay(1),
            on(),
            Cause::Start,
            REAL,
            Label::Real,
        ),
        result(
            3001,
            "relay:1",
            "on",
            REAL,
            false,
            "fault: pin 5 could not be set",
        ),
        evidence(
            3001,
            "audio",
            "self_test",
            false,
            "a self-test is not the drill's",
        ),
        action(
            20_000,
            OutputId::Relay(1),
            ActionKind::Off,
            Cause::Reset,
            DRILL,
            d,
        ),
        action(
            20_000,
            OutputId::Led,
            led(LedPattern::Normal),
            Cause::Reset,
            DRILL,
            d,
        ),
        action(
            20_000,
            OutputId::Mqtt,
            publish(AlertState::Reset),
            Cause::Reset,
            DRILL,
            d,
        ),
        result(
            20_001,
            "relay:1",
            "off",
            DRILL,
            true,
            "pin 5 level 0; read-back followed in 2.4 ms",
        ),
        evidence(
            20_001,
            "relay:1",
            "alarm",
            true,
            "read-back followed the alarm's opening",
        ),
        result(20_002, "led", "led", DRILL, true, "pattern normal"),
        result(
            20_030,
            "mqtt",
            "publish",
            DRILL,
            true,
            "eewgate/t/event: published, PUBACK received",
        ),
        // The other drill: a recorded event, the LED's result never came.
        started(600_000, OTHER_DRILL, Some("osaka-2018")),
        action(
            600_100,
            OutputId::Led,
            led(LedPattern::Exercise),
            Cause::Start,
            OTHER_DRILL,
            d,
        ),
        action(
            601_000,
            OutputId::Led,
            led(LedPattern::Normal),
            Cause::Reset,
            OTHER_DRILL,
            d,
        ),
        result(601_001, "led", "led", OTHER_DRILL, true, "pattern normal"),
        evidence(600_200, "relay:1", "alarm", false, "the other drill's"),
    ]
}

#[tokio::test]
async fn a_drill_report_from_history_lists_every_channel_with_what_was_observed() {
    let store = Store::open(&db_path("report")).await.unwrap();
    store.record_batch(&history()).await.unwrap();
    let channels = [
        channel("relay:1", None),
        channel("relay:2", Some(Exclusion::NotInDrills)),
        channel("audio", None),
        channel("led", None),
        channel("mqtt", None),
    ];
    let now = utc(3_600_000);
    let r = store
        .drill_report(DRILL, &channels, false, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.result, DrillResult::Ok, "{r:#?}");
    assert_eq!((r.kind, r.end.as_deref()), ("synthetic", Some("reset")));
    assert_eq!(r.started_at, jst(0));
    assert_eq!(r.duration_ms, Some(20_000));
    let operator = r.operator.as_ref().unwrap();
    assert!(operator.detail.as_deref().unwrap().contains("192.0.2.10"));
    let by = |n: &str| r.channels.iter().find(|c| c.channel == n).unwrap();
    let relay = by("relay:1");
    assert_eq!(relay.result, ChannelResult::Ok, "{relay:#?}");
    // Its two orders, each with its own result — not the real event's failed one.
    assert_eq!(relay.expected.len(), 2);
    assert!(
        relay
            .expected
            .iter()
            .all(|e| e.observed.as_ref().unwrap().ok)
    );
    assert!(relay.unmatched.is_empty());
    assert_eq!(
        relay.evidence.len(),
        2,
        "the drill's proofs only: {relay:#?}"
    );
    assert_eq!(relay.timings.closed_ms, Some(20_000));
    assert_eq!(by("relay:2").result, ChannelResult::NotIncluded);
    assert_eq!(by("audio").result, ChannelResult::NotTriggered);
    assert!(
        by("audio").evidence.is_empty(),
        "a self-test is not evidence of the drill"
    );
    assert_eq!(by("led").result, ChannelResult::Ok);
    assert_eq!(
        by("led").expected[0].what["pattern"],
        serde_json::json!("exercise")
    );
    assert_eq!(by("mqtt").result, ChannelResult::Ok);
    assert_eq!(
        by("mqtt").expected[1].what["state"],
        serde_json::json!("reset")
    );

    // The other drill: recorded, one of its LED orders never answered — not observed.
    let other = store
        .drill_report(OTHER_DRILL, &channels, false, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other.result, DrillResult::Failed, "{other:#?}");
    assert_eq!(
        (other.kind, other.recorded.as_deref()),
        ("recorded", Some("osaka-2018"))
    );
    let led = other.channels.iter().find(|c| c.channel == "led").unwrap();
    assert_eq!(led.result, ChannelResult::NotObserved);
    // Two orders, one result: one order is not observed (results answer in turn).
    assert_eq!(
        led.expected.iter().filter(|e| e.observed.is_none()).count(),
        1,
        "{led:#?}"
    );
    assert!(other.operator.is_none(), "no audit entry names it");
    // Its window does not reach back to the first drill's proofs; it has its own.
    let relay = other
        .channels
        .iter()
        .find(|c| c.channel == "relay:1")
        .unwrap();
    assert_eq!(relay.result, ChannelResult::NotTriggered);

    // The real event is no drill.
    assert!(
        store
            .drill_report(REAL, &channels, false, now)
            .await
            .unwrap()
            .is_none()
    );

    // The list, newest first, paged by id.
    let all = store.drills(None, 10).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|d| d.event_id.as_str()).collect();
    assert_eq!(ids, [OTHER_DRILL, DRILL]);
    let page = store.drills(None, 1).await.unwrap();
    assert_eq!(page.len(), 1);
    let rest = store.drills(Some(page[0].id), 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].event_id, DRILL);

    // The settings in force at the drill.
    let cfg = store.config_at(utc(0)).await.unwrap().unwrap();
    assert!(cfg.text.contains("[site]"));
    assert!(store.config_at(utc(-120_000)).await.unwrap().is_none());
}

#[tokio::test]
async fn every_drill_report_statement_searches_an_index() {
    let store = Store::open(&db_path("plans")).await.unwrap();
    // A year's worth of shape: many events with actions and results, evidence every
    // minute, audit entries, some drills among them.
    let mut records = Vec::new();
    for i in 0..3000i64 {
        let event = if i % 10 == 0 {
            format!("drill-2026{i:010}")
        } else {
            format!("2026{i:010}")
        };
        let label = if i % 10 == 0 {
            Label::Drill
        } else {
            Label::Real
        };
        records.push(action(
            i * 60_000,
            OutputId::Relay(1),
            ActionKind::On { pulse_ms: None },
            Cause::Start,
            &event,
            label,
        ));
        records.push(result(
            i * 60_000 + 1,
            "relay:1",
            "on",
            &event,
            true,
            "pin 5 level 1",
        ));
        records.push(evidence(
            i * 60_000 + 2,
            "mqtt",
            "probe",
            true,
            "round trip",
        ));
        records.push(Record::Audit(AuditRecord {
            at: utc(i * 60_000 + 3),
            who: "admin".to_owned(),
            action: "login".to_owned(),
            detail: None,
        }));
    }
    for chunk in records.chunks(4000) {
        store.record_batch(chunk).await.unwrap();
    }
    let plans = store.drill_report_plans().await.unwrap();
    let names: Vec<&str> = plans.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "run",
            "actions",
            "results",
            "decisions",
            "next_alert",
            "evidence",
            "audit",
            "config_at",
            "drills",
            "drills_before"
        ]
    );
    let expect = |name: &str| -> &str {
        match name {
            "run" => "SEARCH alerts USING INDEX sqlite_autoindex_alerts_1 (event_id=? AND label=?)",
            "actions" => "SEARCH actions USING INDEX actions_event (event_id=?)",
            "results" => "SEARCH output_results USING INDEX output_results_event (event_id=?)",
            "decisions" => "SEARCH decisions USING INDEX decisions_event (event_id=?)",
            "next_alert" => "SEARCH alerts USING COVERING INDEX alerts_first (first_ms>?)",
            "evidence" => "SEARCH evidence USING INDEX evidence_at (at_ms>? AND at_ms<?)",
            "audit" => "SEARCH audit USING INDEX audit_at (at_ms>? AND at_ms<?)",
            "config_at" => "SEARCH config_changes USING INDEX config_changes_at (at_ms<?)",
            "drills" => "SEARCH alerts USING INDEX alerts_label (label=?)",
            "drills_before" => "SEARCH alerts USING INDEX alerts_label (label=? AND rowid<?)",
            other => panic!("no expectation for {other}"),
        }
    };
    for (name, plan) in &plans {
        // One search of the named index; never a scan, never a sort.
        assert_eq!(plan, &[expect(name)], "{name}: {plan:#?}");
    }
}
