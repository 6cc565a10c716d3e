//! The MQTT output against a real Mosquitto (tests/support/mosquitto.rs), in process: the
//! output's tasks under a [`Supervisor`], a [`Ctx`] with its own status channel (and
//! history, where results are checked), and rumqttc clients as the building's side.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

#[path = "../../tests/support/mosquitto.rs"]
mod mosquitto;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use eew_core::engine::{ActionKind, AlertState, Engine, Input, OutputId};
use eew_core::settings::Settings;
use eew_core::{Intensity, JstTime};
use mosquitto::{BrokerTls, Mosquitto, Options};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::payload::tests::publish;
use super::{MqttConfig, MqttInput, TlsConfig, spawn};
use crate::outputs::Ctx;
use crate::status::Status;
use crate::store::{HistoryWriter, Store, WriterOptions};
use crate::supervisor::{Outcome, Supervisor};
use crate::system::clock::now_jst;

const PREFIX: &str = "eewgate/tower-a";

/// A scratch directory, removed at the end of a test that passed (kept for a look
/// after a failure). Declared first in a test, it is dropped after the broker.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
            // The process's directory too, once the last test in it is done.
            if let Some(parent) = self.0.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}

fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir()
        .join(format!("eewgate-mqtt-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

fn config(port: u16) -> MqttConfig {
    MqttConfig {
        enabled: true,
        port,
        device_id: Some("tower-a".to_owned()),
        keep_alive: Duration::from_secs(5),
        ..MqttConfig::default()
    }
}

fn secret(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

// ---- the output under test ----------------------------------------------------------

struct Output {
    cancel: CancellationToken,
    status: watch::Sender<Status>,
    tx: mpsc::Sender<MqttInput>,
    done: tokio::task::JoinHandle<Outcome>,
    store: Option<Store>,
}

impl Output {
    async fn start(cfg: &MqttConfig, history: Option<&Path>) -> Self {
        let cancel = CancellationToken::new();
        let mut initial = Status::default();
        initial.storage.ok = true;
        let (status, _) = watch::channel(initial);
        let mut sup = Supervisor::new(cancel.clone());
        let (writer, store) = match history {
            Some(dir) => {
                let store = Store::open(&dir.join("history.db")).await.unwrap();
                let (writer, task) = HistoryWriter::new(store.clone(), WriterOptions::default());
                let c = cancel.clone();
                sup.spawn("history", async move {
                    task.run(c).await;
                    Ok(())
                });
                (Some(writer), Some(store))
            }
            None => (None, None),
        };
        let ctx = Ctx {
            events: None,
            status: status.clone(),
            history: writer,
            cancel: cancel.clone(),
        };
        let tx = spawn(&mut sup, cfg, &ctx).unwrap();
        let done = tokio::spawn(sup.run(Duration::from_secs(3)));
        Self {
            cancel,
            status,
            tx,
            done,
            store,
        }
    }

    fn send(&self, i: MqttInput) {
        self.tx.try_send(i).unwrap();
    }

    fn health(&self) -> Option<String> {
        self.status.borrow().outputs.get("mqtt").cloned()
    }

    /// Waits until the output's health satisfies `f`.
    async fn health_until(&self, timeout: Duration, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let h = self.health().unwrap_or_default();
            if f(&h) {
                return h;
            }
            assert!(Instant::now() < deadline, "mqtt health stayed {h:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) -> Outcome {
        self.cancel.cancel();
        self.done.await.unwrap()
    }
}

// ---- the building's side --------------------------------------------------------------

#[derive(Clone, Debug)]
struct Seen {
    topic: String,
    payload: String,
    retain: bool,
    expiry: Option<u32>,
}

struct Observer {
    rx: mpsc::UnboundedReceiver<Seen>,
    seen: Vec<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

static OBSERVERS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Observer {
    /// Subscribes to `filters`; a `persistent` client id keeps its session (and its
    /// subscription) across a broker restart when the broker persists.
    async fn connect(port: u16, filters: &[&str], persistent: Option<&str>) -> Self {
        let n = OBSERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = persistent.map_or_else(
            || format!("observer-{}-{n}", std::process::id()),
            str::to_owned,
        );
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(5));
        o.set_max_packet_size(Some(1024 * 1024));
        if persistent.is_some() {
            o.set_clean_start(false);
            o.set_session_expiry_interval(Some(600));
        }
        let (client, mut el) = AsyncClient::new(o, 64);
        client
            .subscribe_many(filters.iter().map(|f| Filter::new(*f, QoS::AtLeastOnce)))
            .await
            .unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let _client = client;
            let mut ready = Some(ready_tx);
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(Seen {
                            topic: String::from_utf8_lossy(&p.topic).into_owned(),
                            payload: String::from_utf8_lossy(&p.payload).into_owned(),
                            retain: p.retain,
                            expiry: p.properties.and_then(|pr| pr.message_expiry_interval),
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(5), ready_rx)
            .await
            .expect("observer subscribed")
            .unwrap();
        Self {
            rx,
            seen: Vec::new(),
            task,
        }
    }

    /// Collects messages until `done` holds (true) or `timeout` (false).
    async fn until(&mut self, timeout: Duration, done: impl Fn(&[Seen]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.seen) {
                return true;
            }
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(s)) => self.seen.push(s),
                Ok(None) | Err(_) => return done(&self.seen),
            }
        }
    }

    /// Collects until nothing arrived for `quiet`.
    async fn settle(&mut self, quiet: Duration) {
        while let Ok(Some(s)) = tokio::time::timeout(quiet, self.rx.recv()).await {
            self.seen.push(s);
        }
    }

    fn last(&self, topic: &str) -> Option<&Seen> {
        self.seen.iter().rev().find(|s| s.topic == topic)
    }

    fn value(&self, field: &str) -> Option<String> {
        self.last(&format!("{PREFIX}/state/{field}"))
            .map(|s| s.payload.clone())
    }

    fn events(&self) -> Vec<Value> {
        self.seen
            .iter()
            .filter(|s| s.topic == format!("{PREFIX}/event"))
            .map(|s| serde_json::from_str(&s.payload).unwrap())
            .collect()
    }
}

/// The retained messages under `filter`, as a fresh subscriber sees them.
async fn retained(port: u16, filter: &str) -> BTreeMap<String, String> {
    let mut o = Observer::connect(port, &[filter], None).await;
    o.settle(Duration::from_millis(300)).await;
    o.seen
        .iter()
        .filter(|s| s.retain)
        .map(|s| (s.topic.clone(), s.payload.clone()))
        .collect()
}

fn has(seen: &[Seen], topic: &str, payload: &str) -> bool {
    seen.iter()
        .any(|s| s.topic == format!("{PREFIX}/{topic}") && s.payload == payload)
}

fn alert_events(o: &Observer) -> Vec<Value> {
    o.events()
        .into_iter()
        .filter(|v| v["type"] == "alert")
        .collect()
}

// ---- tests ----------------------------------------------------------------------------

/// Every documented topic, with its payload; then a cancel clears the retained state and
/// the CAP document; every Publish's result is in history with its latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_topic_appears_with_its_payload_and_a_cancel_clears_the_state() {
    let dir = scratch("topics");
    let broker = Mosquitto::start(&dir);
    let mut obs = Observer::connect(
        broker.port(),
        &[&format!("{PREFIX}/#"), "homeassistant/#"],
        None,
    )
    .await;
    let mut cfg = config(broker.port());
    cfg.cap = true;
    cfg.home_assistant_discovery = true;
    let out = Output::start(&cfg, Some(&dir)).await;
    assert!(
        obs.until(Duration::from_secs(5), |s| has(s, "status", "online"))
            .await,
        "online: {:?}",
        obs.seen
    );
    out.health_until(Duration::from_secs(2), |h| h == "ok")
        .await;

    // A report, a decision and the alert that follows.
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(
            fixtures()
                .join("jmaxml_vxse43_20240417_bungo_37_01_02_serial2_warning.xml.expected.json"),
        )
        .unwrap(),
    )
    .unwrap();
    out.send(MqttInput::Report {
        link: "dmdata".to_owned(),
        report,
    });
    out.send(MqttInput::Decision {
        at: now_jst(),
        decision: eew_core::engine::Decision {
            event_id: Some("20240417231454".to_owned()),
            serial: Some(2),
            label: eew_core::engine::Label::Real,
            outcome: "started",
            detail: None,
        },
    });
    let a = publish(
        "20240417231454",
        2,
        AlertState::Started,
        true,
        Some(Intensity::FiveLower),
        20,
    );
    out.send(MqttInput::Action(a.clone()));
    assert!(
        obs.until(Duration::from_secs(5), |s| has(
            s,
            "state/alert_active",
            "true"
        ) && s.iter().any(|m| m.topic
            == format!("{PREFIX}/cap")
            && !m.payload.is_empty())
            && s.iter()
                .filter(|m| m.topic == format!("{PREFIX}/event"))
                .count()
                >= 3)
            .await,
        "{:#?}",
        obs.seen
    );
    obs.settle(Duration::from_millis(200)).await;

    // Flat state.
    let v = |f: &str| {
        obs.value(f)
            .unwrap_or_else(|| panic!("state/{f} published"))
    };
    assert_eq!(v("alert_active"), "true");
    assert_eq!(v("alert_state"), "started");
    assert_eq!(v("intensity_class"), "5-");
    assert_eq!(v("long_period_class"), "1");
    assert_eq!(v("warning"), "true");
    let secs: i64 = v("seconds_to_arrival").parse().unwrap();
    assert!((17..=20).contains(&secs), "{secs}");
    assert_eq!(
        v("arrival_time"),
        super::payload::ms_time(a.arrival.unwrap())
    );
    assert_eq!(v("training"), "false");
    assert_eq!(v("label"), "real");
    assert_eq!(v("event_id"), "20240417231454");
    assert_eq!(v("serial"), "2");
    assert!(v("updated_at").ends_with("+09:00"));
    let state: Value =
        serde_json::from_str(&obs.last(&format!("{PREFIX}/state")).unwrap().payload).unwrap();
    assert_eq!(state["alert_active"], true);
    assert_eq!(state["intensity_class"], "5-");
    assert_eq!(state["serial"], 2);
    assert_eq!(state["flags"]["plum"], false);

    // Events: non-retained, typed, with the message expiry.
    let events: Vec<&Seen> = obs
        .seen
        .iter()
        .filter(|s| s.topic == format!("{PREFIX}/event"))
        .collect();
    for e in &events {
        assert!(!e.retain, "events are never retained");
        let exp = e.expiry.expect("message expiry set");
        assert!((1..=60).contains(&exp), "{exp}");
    }
    let types: Vec<String> = obs
        .events()
        .iter()
        .map(|v| v["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["report", "decision", "alert"]);
    let ev = obs.events();
    assert_eq!(ev[0]["link"], "dmdata");
    assert_eq!(ev[0]["event_id"], "20240417231454");
    assert_eq!(ev[0]["report"]["magnitude"], 6.6);
    assert_eq!(ev[1]["outcome"], "started");
    assert_eq!(ev[2]["state"], "started");
    assert_eq!(ev[2]["driving"], true);
    assert_eq!(ev[2]["intensity_class"], "5-");

    // CAP, retained while active.
    let cap = obs.last(&format!("{PREFIX}/cap")).unwrap();
    assert!(cap.payload.contains("urn:oasis:names:tc:emergency:cap:1.2"));
    assert!(cap.payload.contains("<msgType>Alert</msgType>"));
    assert!(cap.payload.contains("<severity>Severe</severity>"));

    // What a newcomer sees: everything retained.
    let r = retained(broker.port(), "#").await;
    assert_eq!(r[&format!("{PREFIX}/status")], "online");
    assert_eq!(r[&format!("{PREFIX}/state/alert_active")], "true");
    assert_eq!(r[&format!("{PREFIX}/state/intensity_class")], "5-");
    assert!(r[&format!("{PREFIX}/cap")].contains("<msgType>Alert</msgType>"));
    assert!(
        !r.contains_key(&format!("{PREFIX}/event")),
        "events not retained"
    );
    let health: Value = serde_json::from_str(&r[&format!("{PREFIX}/health")]).unwrap();
    assert_eq!(health["outputs"]["mqtt"], "ok");
    assert_eq!(health["ok"], true);
    let ha: Value =
        serde_json::from_str(&r["homeassistant/binary_sensor/tower-a/alert_active/config"])
            .unwrap();
    assert_eq!(ha["state_topic"], format!("{PREFIX}/state/alert_active"));
    assert_eq!(ha["availability_topic"], format!("{PREFIX}/status"));
    assert!(r.contains_key("homeassistant/sensor/tower-a/seconds_to_arrival/config"));

    // The cancel: state cleared, a CAP Cancel, the retained CAP removed.
    let mut c = a.clone();
    c.kind = ActionKind::Publish {
        state: AlertState::Cancelled,
        driving: true,
    };
    c.at = now_jst();
    out.send(MqttInput::Action(c));
    assert!(
        obs.until(Duration::from_secs(5), |s| has(
            s,
            "state/alert_active",
            "false"
        ) && s
            .iter()
            .any(|m| m.payload.contains("<msgType>Cancel</msgType>")))
            .await,
        "{:#?}",
        obs.seen
    );
    obs.settle(Duration::from_millis(200)).await;
    assert_eq!(
        obs.last(&format!("{PREFIX}/cap")).unwrap().payload,
        "",
        "retained CAP cleared last"
    );
    assert!(
        obs.seen.iter().any(|s| s.topic == format!("{PREFIX}/cap")
            && s.payload.contains("<msgType>Cancel</msgType>")
            && s.payload.contains("<references>eewgate@tower-a,")),
        "{:#?}",
        obs.seen
            .iter()
            .filter(|s| s.topic.ends_with("/cap"))
            .collect::<Vec<_>>()
    );
    let r = retained(broker.port(), &format!("{PREFIX}/#")).await;
    assert_eq!(r[&format!("{PREFIX}/state/alert_active")], "false");
    assert_eq!(r[&format!("{PREFIX}/state/warning")], "false");
    // An empty retained payload deletes the retained message: cleared fields are
    // absent for a newcomer, and were delivered empty to those listening.
    for f in [
        "intensity_class",
        "seconds_to_arrival",
        "arrival_time",
        "event_id",
        "label",
        "serial",
        "alert_state",
    ] {
        assert!(
            !r.contains_key(&format!("{PREFIX}/state/{f}")),
            "{f} cleared: {r:?}"
        );
        assert_eq!(obs.value(f).as_deref(), Some(""), "{f} cleared live");
    }
    let state: Value = serde_json::from_str(&r[&format!("{PREFIX}/state")]).unwrap();
    assert_eq!(state["alert_active"], false);
    assert_eq!(state["event_id"], Value::Null);
    assert!(
        !r.contains_key(&format!("{PREFIX}/cap")),
        "CAP cleared: {r:?}"
    );

    // Results in history: both Publish actions acknowledged, decision → PUBACK latency.
    let store = out.store.clone().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let rows = loop {
        let rows: Vec<_> = store
            .recent_output_results(10)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.output == "mqtt")
            .collect();
        if rows.len() >= 2 || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert!(row.ok, "{row:?}");
        assert_eq!(row.action, "publish");
        assert_eq!(row.event_id.as_deref(), Some("20240417231454"));
        let l = row.latency_us.unwrap();
        assert!((0..5_000_000).contains(&l), "{l}");
        assert!(
            row.detail.as_deref().unwrap().starts_with(PREFIX),
            "{row:?}"
        );
    }

    // A clean stop says offline.
    assert!(matches!(out.stop().await, Outcome::Clean));
    let r = retained(broker.port(), &format!("{PREFIX}/status")).await;
    assert_eq!(r[&format!("{PREFIX}/status")], "offline");
}

/// Ended and reset alarms clear the state too; with two alarms, the other one is shown
/// until it is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_and_reset_clear_and_a_second_alarm_takes_over() {
    let dir = scratch("clear");
    let broker = Mosquitto::start(&dir);
    let mut obs = Observer::connect(broker.port(), &[&format!("{PREFIX}/state/#")], None).await;
    let out = Output::start(&config(broker.port()), None).await;
    out.health_until(Duration::from_secs(5), |h| h == "ok")
        .await;
    obs.until(Duration::from_secs(5), |s| {
        has(s, "state/alert_active", "false")
    })
    .await;

    let a = publish("A", 1, AlertState::Started, true, Some(Intensity::Four), 30);
    let b = publish(
        "B",
        1,
        AlertState::Started,
        false,
        Some(Intensity::Three),
        30,
    );
    out.send(MqttInput::Action(a.clone()));
    out.send(MqttInput::Action(b.clone()));
    assert!(
        obs.until(Duration::from_secs(5), |s| has(s, "state/event_id", "A"))
            .await
    );
    // A ends: B (still running) is shown.
    let mut ae = a.clone();
    ae.kind = ActionKind::Publish {
        state: AlertState::Ended,
        driving: false,
    };
    out.status
        .send_modify(|s| s.alert.running = vec!["B".to_owned()]);
    out.send(MqttInput::Action(ae));
    assert!(
        obs.until(Duration::from_secs(5), |s| has(s, "state/event_id", "B"))
            .await,
        "{:#?}",
        obs.seen
    );
    assert_eq!(obs.value("intensity_class").as_deref(), Some("3"));
    // B reset: nothing left.
    let mut br = b.clone();
    br.kind = ActionKind::Publish {
        state: AlertState::Reset,
        driving: false,
    };
    out.send(MqttInput::Action(br));
    assert!(
        obs.until(Duration::from_secs(5), |s| has(s, "state/event_id", ""))
            .await
    );
    obs.settle(Duration::from_millis(200)).await;
    assert_eq!(obs.value("alert_active").as_deref(), Some("false"));
    // Cleared in this order: alert_active first.
    let clear_start = obs
        .seen
        .iter()
        .rposition(|s| s.topic.ends_with("/state/alert_active") && s.payload == "false")
        .unwrap();
    let empty_id = obs
        .seen
        .iter()
        .rposition(|s| s.topic.ends_with("/state/event_id") && s.payload.is_empty())
        .unwrap();
    assert!(clear_start < empty_id);
    let r = retained(broker.port(), &format!("{PREFIX}/state/#")).await;
    assert_eq!(r[&format!("{PREFIX}/state/alert_active")], "false");
    assert!(
        !r.contains_key(&format!("{PREFIX}/state/event_id")),
        "{r:?}"
    );
    out.stop().await;
}

/// The broker goes away mid-event and comes back: the retained state afterwards is the
/// current one, a Publish queued while it was down and older than `stale_after_ms` is
/// never delivered, fresh report events are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_event_leaves_the_current_state_and_no_late_alert() {
    let dir = scratch("restart");
    let mut broker = Mosquitto::start_with(
        &dir,
        &Options {
            persistence: true,
            ..Options::default()
        },
    );
    // A persistent session: the broker keeps the subscription (and queues for it) across
    // the restart, so everything published after the reconnect is seen, whoever
    // reconnects first.
    let mut obs = Observer::connect(
        broker.port(),
        &[&format!("{PREFIX}/#")],
        Some("bms-restart"),
    )
    .await;
    let mut cfg = config(broker.port());
    cfg.stale_after = Duration::from_millis(500);
    let out = Output::start(&cfg, None).await;
    let a1 = publish(
        "E1",
        1,
        AlertState::Started,
        true,
        Some(Intensity::FiveLower),
        40,
    );
    out.health_until(Duration::from_secs(5), |h| h == "ok")
        .await;
    out.send(MqttInput::Action(a1.clone()));
    assert!(
        obs.until(Duration::from_secs(5), |s| has(s, "state/serial", "1"))
            .await
    );
    obs.settle(Duration::from_millis(200)).await;

    broker.stop();
    // Down: an update (the engine's decision) and a report arrive.
    let mut a2 = publish(
        "E1",
        2,
        AlertState::Updated,
        true,
        Some(Intensity::SixLower),
        35,
    );
    a2.cause = eew_core::engine::Cause::Update;
    out.send(MqttInput::Action(a2));
    out.send(MqttInput::Report {
        link: "l".to_owned(),
        report: serde_json::json!({"event_id": "E1", "serial": 2}),
    });
    // The output notices and, once down beyond its grace, faults.
    let h = out
        .health_until(Duration::from_secs(8), |h| h.starts_with("fault"))
        .await;
    assert!(h.contains("unreachable") || h.contains("lost"), "{h}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    broker.restart();
    out.health_until(Duration::from_secs(10), |h| h == "ok")
        .await;
    assert!(
        obs.until(Duration::from_secs(10), |s| has(s, "state/serial", "2")
            && has(s, "state/intensity_class", "6-")
            && s.iter().any(
                |m| m.topic.ends_with("/event") && m.payload.contains("\"report\"")
            ))
        .await,
        "{:#?}",
        obs.seen
    );
    obs.settle(Duration::from_millis(800)).await;
    let late: Vec<Value> = alert_events(&obs)
        .into_iter()
        .filter(|v| v["serial"] == 2)
        .collect();
    assert!(late.is_empty(), "stale alert delivered late: {late:?}");
    let r = retained(broker.port(), &format!("{PREFIX}/#")).await;
    assert_eq!(r[&format!("{PREFIX}/status")], "online");
    assert_eq!(r[&format!("{PREFIX}/state/alert_active")], "true");
    assert_eq!(r[&format!("{PREFIX}/state/serial")], "2");
    let state: Value = serde_json::from_str(&r[&format!("{PREFIX}/state")]).unwrap();
    assert_eq!(state["intensity_class"], "6-");
    out.stop().await;
}

/// Nothing listens on the port: the output faults within a few seconds, visibly in the
/// status model, and recovers when a broker appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_port_is_an_output_fault_until_a_broker_answers() {
    let dir = scratch("port");
    let port = mosquitto::free_port();
    let out = Output::start(&config(port), None).await;
    let started = Instant::now();
    let h = out
        .health_until(Duration::from_secs(5), |h| h.starts_with("fault"))
        .await;
    assert!(h.contains("unreachable"), "{h}");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(out.status.borrow().faults().contains(&"mqtt".to_owned()));
    let _broker = Mosquitto::start_on(&dir, port, &Options::default());
    out.health_until(Duration::from_secs(10), |h| h == "ok")
        .await;
    assert!(matches!(out.stop().await, Outcome::Clean));
}

/// Bad credentials: the broker refuses the CONNACK and the output says so at once; the
/// right password connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_an_output_fault() {
    let dir = scratch("password");
    let broker = Mosquitto::start_with(
        &dir,
        &Options {
            user: Some(("bms".to_owned(), "right-horse".to_owned())),
            ..Options::default()
        },
    );
    let mut cfg = config(broker.port());
    cfg.username = Some("bms".to_owned());
    cfg.password_file = Some(secret(&dir, "wrong.pw", "battery-staple\n"));
    let out = Output::start(&cfg, None).await;
    let h = out
        .health_until(Duration::from_secs(3), |h| h.starts_with("fault"))
        .await;
    assert!(
        h.contains("refused") && (h.contains("BadUserNamePassword") || h.contains("NotAuthorized")),
        "{h}"
    );
    out.stop().await;

    cfg.password_file = Some(secret(&dir, "right.pw", "right-horse\n"));
    let out = Output::start(&cfg, None).await;
    out.health_until(Duration::from_secs(5), |h| h == "ok")
        .await;
    out.stop().await;
}

/// TLS with a CA made by the test: the broker's TLS listener is trusted through
/// `ca_file`, refused without it (Mozilla's roots do not know it), and mutual TLS works
/// with a client certificate from the same CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca_and_mutual_tls() {
    let dir = scratch("tls");
    let pki = Pki::new(&dir);
    let broker = Mosquitto::start_with(
        &dir.join("server"),
        &Options {
            tls: Some(BrokerTls {
                ca: pki.ca.clone(),
                cert: pki.server_cert.clone(),
                key: pki.server_key.clone(),
                require_client_cert: false,
            }),
            ..Options::default()
        },
    );
    let mut obs = Observer::connect(broker.plain_port(), &[&format!("{PREFIX}/#")], None).await;
    let mut cfg = config(broker.port());
    cfg.tls = Some(TlsConfig {
        ca_file: Some(pki.ca.clone()),
        ..TlsConfig::default()
    });
    let out = Output::start(&cfg, None).await;
    out.health_until(Duration::from_secs(5), |h| h == "ok")
        .await;
    let a = publish(
        "T1",
        1,
        AlertState::Started,
        true,
        Some(Intensity::Four),
        30,
    );
    out.send(MqttInput::Action(a));
    assert!(
        obs.until(Duration::from_secs(5), |s| has(s, "state/event_id", "T1"))
            .await
    );
    out.stop().await;

    // Without the CA: the certificate is not trusted.
    cfg.tls = Some(TlsConfig::default());
    let out = Output::start(&cfg, None).await;
    let h = out
        .health_until(Duration::from_secs(4), |h| h.starts_with("fault"))
        .await;
    assert!(h.contains("TLS"), "{h}");
    out.stop().await;

    // Mutual TLS.
    let mutual = Mosquitto::start_with(
        &dir.join("mutual"),
        &Options {
            tls: Some(BrokerTls {
                ca: pki.ca.clone(),
                cert: pki.server_cert.clone(),
                key: pki.server_key.clone(),
                require_client_cert: true,
            }),
            ..Options::default()
        },
    );
    let mut cfg = config(mutual.port());
    cfg.tls = Some(TlsConfig {
        ca_file: Some(pki.ca.clone()),
        client_cert_file: Some(pki.client_cert.clone()),
        client_key_file: Some(pki.client_key.clone()),
    });
    let out = Output::start(&cfg, None).await;
    out.health_until(Duration::from_secs(5), |h| h == "ok")
        .await;
    out.stop().await;
    // Without a client certificate the broker hangs up.
    cfg.tls = Some(TlsConfig {
        ca_file: Some(pki.ca.clone()),
        ..TlsConfig::default()
    });
    let out = Output::start(&cfg, None).await;
    out.health_until(Duration::from_secs(5), |h| h.starts_with("fault"))
        .await;
    out.stop().await;
}

/// The Last Will: a crash (the runtime gone, no DISCONNECT) leaves `offline` retained.
#[test]
fn a_crash_leaves_offline_through_the_last_will() {
    let dir = scratch("will");
    let broker = Mosquitto::start(&dir);
    let port = broker.port();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let out = rt.block_on(async {
        let out = Output::start(&config(port), None).await;
        out.health_until(Duration::from_secs(5), |h| h == "ok")
            .await;
        let r = retained(port, &format!("{PREFIX}/status")).await;
        assert_eq!(r[&format!("{PREFIX}/status")], "online");
        out
    });
    // Every task dropped mid-flight: the socket closes without a DISCONNECT.
    rt.shutdown_background();
    drop(out);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = retained(port, &format!("{PREFIX}/status")).await;
            if r.get(&format!("{PREFIX}/status")).map(String::as_str) == Some("offline") {
                break;
            }
            assert!(Instant::now() < deadline, "no will: {r:?}");
        }
    });
}

/// Health follows the status model: a link fault is republished (debounced) as
/// `ok = false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_republished_when_the_status_changes() {
    let dir = scratch("health");
    let broker = Mosquitto::start(&dir);
    let mut obs = Observer::connect(broker.port(), &[&format!("{PREFIX}/health")], None).await;
    let out = Output::start(&config(broker.port()), None).await;
    assert!(obs.until(Duration::from_secs(5), |s| !s.is_empty()).await);
    out.status.send_modify(|s| {
        s.links.insert(
            "dmdata".to_owned(),
            crate::status::LinkStatus {
                up: false,
                fault: true,
                down_reason: Some("closed".to_owned()),
                ..Default::default()
            },
        );
    });
    let changed = Instant::now();
    assert!(
        obs.until(Duration::from_secs(3), |s| s.iter().any(|m| {
            let v: Value = serde_json::from_str(&m.payload).unwrap();
            v["ok"] == false && v["links"]["dmdata"]["fault"] == true
        }))
        .await,
        "{:#?}",
        obs.seen
    );
    assert!(changed.elapsed() < Duration::from_secs(2));
    let last: Value = serde_json::from_str(&obs.seen.last().unwrap().payload).unwrap();
    assert_eq!(last["faults"][0], "link:dmdata");
    out.stop().await;
}

/// Real engine actions: the Bungo series (area 751) replayed as if now through
/// `Engine::step`, every action for `mqtt`, report and decision fed in; the cancel at the
/// end leaves the state cleared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engines_actions_for_a_real_sequence() {
    let dir = scratch("engine");
    let broker = Mosquitto::start(&dir);
    let mut obs = Observer::connect(broker.port(), &[&format!("{PREFIX}/#")], None).await;
    let out = Output::start(&config(broker.port()), Some(&dir)).await;
    out.health_until(Duration::from_secs(5), |h| h == "ok")
        .await;
    let settings = Settings::from_toml_str(
        "[site]\nlat = 33.24\nlon = 131.61\narv400 = 1.2\narea_code = \"751\"\n",
    )
    .unwrap();
    let mut engine = Engine::new(settings);
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("jmaxml_vxse44_20240417_bungo_") && n.ends_with(".xml")
        })
        .collect();
    files.sort();
    let mut shift = None;
    let mut publishes = 0;
    for f in &files {
        let mut report = eew_core::parse(&std::fs::read(f).unwrap()).unwrap();
        let now = now_jst();
        let d = *shift.get_or_insert_with(|| {
            report
                .issued_at
                .map(|t: JstTime| now.0.signed_duration_since(t.0))
                .unwrap_or_default()
        });
        report.shift_times(d);
        out.send(MqttInput::Report {
            link: "replay".to_owned(),
            report: serde_json::to_value(&report).unwrap(),
        });
        let step = engine.step(Input::Report(Box::new(report)), now);
        for decision in step.decisions {
            out.send(MqttInput::Decision { at: now, decision });
        }
        for a in step.actions {
            if a.output == OutputId::Mqtt {
                publishes += 1;
                out.send(MqttInput::Action(a));
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(publishes >= 2, "the engine published {publishes} alerts");
    assert!(
        obs.until(Duration::from_secs(10), |s| alert_events_in(s)
            .iter()
            .any(|v| v["state"] == "cancelled"))
            .await,
        "{:#?}",
        obs.events()
    );
    obs.settle(Duration::from_millis(300)).await;
    let alerts = alert_events(&obs);
    assert_eq!(alerts.len(), publishes);
    assert_eq!(alerts[0]["state"], "started");
    assert_eq!(alerts[0]["event_id"], "20240417231454");
    assert_eq!(obs.value("alert_active").as_deref(), Some("false"));
    let reports = obs
        .events()
        .iter()
        .filter(|v| v["type"] == "report")
        .count();
    assert_eq!(reports, files.len());
    out.stop().await;
}

fn alert_events_in(seen: &[Seen]) -> Vec<Value> {
    seen.iter()
        .filter(|s| s.topic == format!("{PREFIX}/event"))
        .filter_map(|s| serde_json::from_str::<Value>(&s.payload).ok())
        .filter(|v| v["type"] == "alert")
        .collect()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/fixtures/telegrams")
}

/// A throwaway CA with a broker certificate (127.0.0.1, localhost) and a client
/// certificate, as PEM files (rcgen, ring).
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "eewgate test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |names: Vec<String>, cn: &str| {
            let mut p = CertificateParams::new(names).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            let key = KeyPair::generate().unwrap();
            let cert = p.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) =
            leaf(vec!["127.0.0.1".into(), "localhost".into()], "broker");
        let (client_cert, client_key) = leaf(vec!["tower-a".into()], "tower-a");
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, ca_cert.pem()).unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        Self {
            ca,
            server_cert: write("server.pem", &server_cert),
            server_key: secret(dir, "server.key", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: secret(dir, "client.key", &client_key),
        }
    }
}
