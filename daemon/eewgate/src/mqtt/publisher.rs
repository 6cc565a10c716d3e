//! The publisher task: turns actions, reports, decisions and the status model into MQTT
//! messages, with its own queue in front of rumqttc's so that it alone decides what is
//! sent and when.
//!
//! - Retained messages (status, state, health, discovery, CAP) are *current*: they are
//!   never queued while the broker is away, because the whole current set is published
//!   again after every CONNACK.
//! - `event` messages wait for a connection, but an alert event older than
//!   `stale_after` is dropped (counted, logged, recorded as a failed result), never
//!   delivered late; report and decision events live for `event_expiry_s`.
//! - At most [`WINDOW`] messages are handed to rumqttc at once; each is matched to its
//!   packet id when written and to its PUBACK, which completes the result of the Publish
//!   action it belongs to (latency: decision → last PUBACK).

mod probe;

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use eew_core::JstTime;
use eew_core::engine::{Action, AlertState};
use rumqttc::v5::AsyncClient;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::MqttInput;
use super::cap::{self, MsgType};
use super::config::MqttConfig;
use super::connection::Link;
use super::discovery;
use super::model::Model;
use super::payload::{self, ms_time, publish_state, seconds_to, state_name};
use crate::outputs::{Ctx, since_decision_us};
use crate::status::Status;
use crate::system::clock::now_jst;

/// The output's name in the status model and history.
pub(crate) const OUTPUT: &str = "mqtt";
/// Messages handed to rumqttc and not yet acknowledged, at most.
pub(crate) const WINDOW: usize = 32;
/// Messages waiting for a connection, at most (the oldest are dropped beyond).
const MAX_QUEUED: usize = 1000;
/// Health is republished at most this often on change…
const HEALTH_MIN_INTERVAL: Duration = Duration::from_millis(500);
/// …and at least this often.
const HEALTH_REFRESH: Duration = Duration::from_secs(60);
/// A lost connection not back within this is an output fault (a broker restart is not).
const FAULT_GRACE: Duration = Duration::from_secs(2);
/// How long a clean shutdown waits for `offline` and the DISCONNECT to go out.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);
/// How often stale queued alerts are looked for while the broker is away.
const PURGE_EVERY: Duration = Duration::from_millis(250);

/// How a message ages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Retained current state: resent after every connect, so never queued.
    Current,
    /// An alert event: dropped once older than `stale_after`.
    Alert,
    /// A report or decision event: dropped once older than `event_expiry_s`.
    Info,
}

/// One message.
#[derive(Clone, Debug)]
struct Msg {
    topic: String,
    payload: Vec<u8>,
    retain: bool,
    class: Class,
    /// When its content was decided (for alerts: the engine's decision).
    born: Instant,
    /// The Publish action it belongs to.
    tag: Option<u64>,
    /// Order of creation.
    seq: u64,
    /// Event id and serial, for logs.
    about: Option<(Option<String>, Option<u32>)>,
}

/// What became of one message of an action.
enum Outcome {
    Acked {
        topic: String,
        problem: Option<String>,
    },
    /// Replaced by the current state republished after a reconnect.
    Superseded,
    Dropped(String),
}

/// The result of one Publish action, complete when every message of it is resolved.
struct Track {
    action: Action,
    pending: usize,
    failure: Option<String>,
    last_topic: Option<String>,
}

/// Topics and identity, resolved at start.
#[derive(Clone, Debug)]
pub(crate) struct Names {
    pub(crate) device_id: String,
    pub(crate) prefix: String,
    pub(crate) broker: String,
}

impl Names {
    fn topic(&self, sub: &str) -> String {
        format!("{}/{sub}", self.prefix)
    }
}

/// The publisher's state.
pub(crate) struct Publisher {
    cfg: MqttConfig,
    names: Names,
    ctx: Ctx,
    client: AsyncClient,
    status_rx: watch::Receiver<Status>,
    connected: bool,
    down_since: Option<Instant>,
    problem: Option<String>,
    faulted: bool,
    queue: VecDeque<Msg>,
    handed: VecDeque<Msg>,
    inflight: HashMap<u16, Msg>,
    tracks: HashMap<u64, Track>,
    next_tag: u64,
    seq: u64,
    cap_seq: u64,
    model: Model,
    health_dirty: bool,
    health_sent: Option<(Instant, String)>,
    countdown_at: Option<Instant>,
    last_purge: Instant,
    dropped_stale: u64,
    dropped_other: u64,
    /// The MQTT self-test under way.
    probe: Option<probe::Probe>,
    /// A probe asked for while the first connection is still being made: (source, when).
    probe_waiting: Option<(&'static str, Instant)>,
    /// The first connection attempt has ended (connected or failed).
    attempted: bool,
}

enum Wake {
    Cancel,
    Link(Option<Link>),
    Input(Option<MqttInput>),
    Status(bool),
    Timer,
}

impl Publisher {
    pub(crate) fn new(cfg: MqttConfig, names: Names, ctx: Ctx, client: AsyncClient) -> Self {
        let status_rx = ctx.status.subscribe();
        Self {
            cfg,
            names,
            ctx,
            client,
            status_rx,
            connected: false,
            down_since: Some(Instant::now()),
            problem: Some("not connected yet".to_owned()),
            faulted: false,
            queue: VecDeque::new(),
            handed: VecDeque::new(),
            inflight: HashMap::new(),
            tracks: HashMap::new(),
            next_tag: 0,
            seq: 0,
            cap_seq: 0,
            model: Model::new(now_jst()),
            health_dirty: true,
            health_sent: None,
            countdown_at: None,
            last_purge: Instant::now(),
            dropped_stale: 0,
            dropped_other: 0,
            probe: None,
            probe_waiting: None,
            attempted: false,
        }
    }

    /// Runs until the daemon stops; then publishes `offline` and disconnects cleanly.
    /// `stop` ends the connection task when this returns, whatever the reason.
    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::Receiver<MqttInput>,
        mut link_rx: mpsc::Receiver<Link>,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        let _stop = stop.drop_guard();
        let cancel = self.ctx.cancel.clone();
        let mut inputs_open = true;
        let mut watching = true;
        loop {
            self.pump();
            let wake_at = self.next_wake();
            let wake = tokio::select! {
                biased;
                () = cancel.cancelled() => Wake::Cancel,
                l = link_rx.recv() => Wake::Link(l),
                i = rx.recv(), if inputs_open => Wake::Input(i),
                c = self.status_rx.changed(), if watching => Wake::Status(c.is_ok()),
                () = tokio::time::sleep_until(wake_at) => Wake::Timer,
            };
            match wake {
                Wake::Cancel => break,
                Wake::Link(Some(l)) => self.on_link(l),
                Wake::Link(None) => anyhow::bail!("the MQTT connection task stopped"),
                Wake::Input(Some(i)) => self.on_input(i),
                // The core loop is gone: the daemon is stopping; wait for the cancel.
                Wake::Input(None) => inputs_open = false,
                Wake::Status(true) => self.health_dirty = true,
                Wake::Status(false) => watching = false,
                Wake::Timer => {}
            }
            self.on_timers();
        }
        self.shutdown(&mut link_rx).await;
        Ok(())
    }

    // ---- inputs ---------------------------------------------------------------------

    fn on_input(&mut self, input: MqttInput) {
        let now = Instant::now();
        match input {
            MqttInput::Action(a) => self.on_publish(a),
            MqttInput::Probe { source } => self.start_probe(source),
            MqttInput::Report { link, report } => {
                let about = Some((
                    report
                        .get("event_id")
                        .and_then(|v| v.as_str())
                        .map(str::to_owned),
                    report
                        .get("serial")
                        .and_then(serde_json::Value::as_u64)
                        .and_then(|s| u32::try_from(s).ok()),
                ));
                let v = payload::report_event(&link, &report);
                self.push_event(v, Class::Info, now, None, about);
            }
            MqttInput::Decision { at, decision } => {
                let about = Some((decision.event_id.clone(), decision.serial));
                let v = payload::decision_event(at, &decision);
                self.push_event(v, Class::Info, now, None, about);
            }
        }
    }

    /// A Publish action: the `event` message, the state when the alert shown changed,
    /// and CAP.
    fn on_publish(&mut self, a: Action) {
        let Some((state, driving)) = publish_state(&a) else {
            tracing::debug!(
                output = OUTPUT,
                action = a.kind.name(),
                "not a publish: ignored"
            );
            return;
        };
        let now = now_jst();
        // The action's age, carried onto the monotonic clock: staleness counts from the
        // engine's decision, not from when this task got to it.
        let age = Duration::from_micros(u64::try_from(since_decision_us(&a)).unwrap_or(0));
        let born = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
        let tag = self.next_tag;
        self.next_tag += 1;
        // One hold until every message is pushed, so the result cannot complete early.
        self.tracks.insert(
            tag,
            Track {
                action: a.clone(),
                pending: 1,
                failure: None,
                last_topic: None,
            },
        );
        let event_id = a.event_id.clone().unwrap_or_default();
        tracing::info!(
            output = OUTPUT, event_id = %event_id, serial = ?a.serial, state = state_name(state),
            driving, label = ?a.label, "alert publish"
        );
        // CAP is built before the model forgets a cancelled event (its references).
        let cap_msg = if self.cfg.cap {
            MsgType::of(&a, !self.model.is_active(&event_id)).map(|t| {
                self.cap_seq += 1;
                let refs = self.model.cap_references(&event_id);
                cap::message(&a, t, &self.names.device_id, self.cap_seq, now, &refs)
            })
        } else {
            None
        };
        let running = self.status_rx.borrow().alert.running.clone();
        let retained_cap_before = self.model.shown_cap();
        let changed = self.model.apply(&a, &running, now);
        let ongoing = matches!(state, AlertState::Started | AlertState::Updated);
        if let Some(c) = &cap_msg
            && ongoing
        {
            self.model
                .add_cap(&event_id, c.reference.clone(), c.xml.clone());
        }
        if changed {
            self.push_state(now, Some(tag));
        }
        let about = Some((a.event_id.clone(), a.serial));
        self.push_event(
            payload::alert_event(&a, now),
            Class::Alert,
            born,
            Some(tag),
            about.clone(),
        );
        if let Some(c) = cap_msg {
            let shown_now = self.model.shown_event() == Some(event_id.as_str());
            if !(ongoing && shown_now) {
                // Not the alert on display (or a cancel): live subscribers hear it, the
                // retained document stays the displayed alert's.
                self.push(Msg {
                    topic: self.names.topic("cap"),
                    payload: c.xml.into_bytes(),
                    retain: false,
                    class: Class::Alert,
                    born,
                    tag: Some(tag),
                    seq: 0,
                    about: about.clone(),
                });
            }
        }
        let retained_cap = self.model.shown_cap();
        if self.cfg.cap && retained_cap != retained_cap_before {
            self.push(Msg {
                topic: self.names.topic("cap"),
                payload: retained_cap.into_bytes(),
                retain: true,
                class: Class::Current,
                born,
                tag: Some(tag),
                seq: 0,
                about,
            });
        }
        self.resolve(tag, Outcome::Superseded);
    }

    // ---- building messages ----------------------------------------------------------

    fn push_event(
        &mut self,
        v: serde_json::Value,
        class: Class,
        born: Instant,
        tag: Option<u64>,
        about: Option<(Option<String>, Option<u32>)>,
    ) {
        self.push(Msg {
            topic: self.names.topic("event"),
            payload: v.to_string().into_bytes(),
            retain: false,
            class,
            born,
            tag,
            seq: 0,
            about,
        });
    }

    fn current(&self, topic: String, payload: impl Into<Vec<u8>>, tag: Option<u64>) -> Msg {
        Msg {
            topic,
            payload: payload.into(),
            retain: true,
            class: Class::Current,
            born: Instant::now(),
            tag,
            seq: 0,
            about: None,
        }
    }

    /// The flat state topics and `P/state`, as they are now.
    fn push_state(&mut self, now: JstTime, tag: Option<u64>) {
        let shown = self.model.shown();
        let active = shown.action.is_some();
        let mut flat = shown.flat(now);
        if !active {
            // Clearing: alert_active goes first.
            flat.sort_by_key(|(f, _)| *f != "alert_active");
        }
        for (field, value) in flat {
            let m = self.current(self.names.topic(&format!("state/{field}")), value, tag);
            self.push(m);
        }
        let m = self.current(self.names.topic("state"), shown.json(now).to_string(), tag);
        self.push(m);
        self.schedule_countdown(now);
    }

    /// The next time `seconds_to_arrival` changes, while an alert with a future arrival
    /// is shown.
    fn schedule_countdown(&mut self, now: JstTime) {
        self.countdown_at = self
            .model
            .shown()
            .action
            .and_then(|a| a.arrival)
            .and_then(|t| {
                let ms = t.0.signed_duration_since(now.0).num_milliseconds();
                (ms > 0).then(|| {
                    let to_next = u64::try_from(ms % 1000).unwrap_or(0) + 1;
                    Instant::now() + Duration::from_millis(to_next)
                })
            });
    }

    /// The health document, if it should be published now: forced, changed (at most
    /// every [`HEALTH_MIN_INTERVAL`]) or due for its refresh.
    fn health_msg(&mut self, force: bool) -> Option<Msg> {
        let now = Instant::now();
        let since = self
            .health_sent
            .as_ref()
            .map(|(at, _)| now.duration_since(*at));
        let refresh = since.is_none_or(|s| s >= HEALTH_REFRESH);
        let change = self.health_dirty && since.is_none_or(|s| s >= HEALTH_MIN_INTERVAL);
        if !(force || refresh || change) {
            return None;
        }
        self.health_dirty = false;
        let mut body = payload::health(&self.status_rx.borrow());
        let text = body.to_string();
        let same = self
            .health_sent
            .as_ref()
            .is_some_and(|(_, last)| *last == text);
        if same && !force && !refresh {
            return None;
        }
        self.health_sent = Some((now, text));
        if let serde_json::Value::Object(map) = &mut body {
            map.insert("updated_at".into(), json!(ms_time(now_jst())));
        }
        Some(self.current(self.names.topic("health"), body.to_string(), None))
    }

    fn push(&mut self, mut m: Msg) {
        if let Some(t) = m.tag.and_then(|tag| self.tracks.get_mut(&tag)) {
            t.pending += 1;
        }
        if !self.connected && m.class == Class::Current {
            // Republished in full after the next CONNACK.
            if let Some(tag) = m.tag {
                self.resolve(tag, Outcome::Superseded);
            }
            return;
        }
        self.seq += 1;
        m.seq = self.seq;
        if self.queue.len() >= MAX_QUEUED {
            // Events first; current state only when there is nothing else (a broker that
            // accepts the connection but stopped acknowledging), newer state follows it.
            let pos = self
                .queue
                .iter()
                .position(|q| q.class != Class::Current)
                .unwrap_or(0);
            if let Some(old) = self.queue.remove(pos) {
                self.drop_msg(old, "queue full".to_owned(), false);
            }
        }
        self.queue.push_back(m);
    }

    /// Why a queued message must not be sent any more, if so.
    fn expired(&self, m: &Msg, now: Instant) -> Option<(String, bool)> {
        let age = now.duration_since(m.born);
        match m.class {
            Class::Current => None,
            Class::Alert => (age > self.cfg.stale_after).then(|| {
                (
                    format!(
                        "stale: {} ms old, beyond stale_after_ms = {}",
                        age.as_millis(),
                        self.cfg.stale_after.as_millis()
                    ),
                    true,
                )
            }),
            Class::Info => (age.as_secs() >= u64::from(self.cfg.event_expiry_s))
                .then(|| ("expired before it could be sent".to_owned(), false)),
        }
    }

    fn drop_msg(&mut self, m: Msg, reason: String, stale: bool) {
        let (event_id, serial) = m.about.clone().unwrap_or((None, None));
        if stale {
            self.dropped_stale += 1;
            tracing::warn!(
                output = OUTPUT, topic = %m.topic, event_id = ?event_id, serial = ?serial,
                dropped = self.dropped_stale, "{reason}: alert publish dropped, never delivered late"
            );
            if let Some(p) = &self.ctx.events {
                p.send(json!({
                    "type": "mqtt", "event": "dropped", "reason": "stale", "topic": m.topic,
                    "event_id": event_id, "serial": serial, "detail": reason,
                }));
            }
        } else {
            self.dropped_other += 1;
            tracing::debug!(
                output = OUTPUT, topic = %m.topic, event_id = ?event_id, serial = ?serial,
                dropped = self.dropped_other, "{reason}: message dropped"
            );
        }
        if let Some(tag) = m.tag {
            self.resolve(tag, Outcome::Dropped(reason));
        }
    }

    // ---- sending --------------------------------------------------------------------

    /// Hands queued messages to rumqttc while connected and the window has room.
    fn pump(&mut self) {
        let now = Instant::now();
        while self.connected && self.handed.len() + self.inflight.len() < WINDOW {
            let Some(m) = self.queue.pop_front() else {
                break;
            };
            if let Some((reason, stale)) = self.expired(&m, now) {
                self.drop_msg(m, reason, stale);
                continue;
            }
            if m.topic.contains(['+', '#']) {
                self.drop_msg(m, "invalid topic".to_owned(), false);
                continue;
            }
            let sent = if m.retain {
                self.client
                    .try_publish(m.topic.clone(), QoS::AtLeastOnce, true, m.payload.clone())
            } else {
                // Events expire at the broker too: what is left of their lifetime.
                let left = u64::from(self.cfg.event_expiry_s)
                    .saturating_sub(now.duration_since(m.born).as_secs())
                    .max(1);
                let props = PublishProperties {
                    message_expiry_interval: Some(u32::try_from(left).unwrap_or(1)),
                    ..PublishProperties::default()
                };
                self.client.try_publish_with_properties(
                    m.topic.clone(),
                    QoS::AtLeastOnce,
                    false,
                    m.payload.clone(),
                    props,
                )
            };
            match sent {
                Ok(()) => self.handed.push_back(m),
                Err(err) => {
                    // rumqttc's channel is full (or its loop is gone): try again later.
                    tracing::debug!(output = OUTPUT, error = %err, "client busy");
                    self.queue.push_front(m);
                    break;
                }
            }
        }
    }

    fn subscribe(&self) {
        let mut filters = vec![self.names.topic("cmd/#"), self.probe_topic()];
        if self.cfg.bms_ack {
            filters.push(self.ack_topic());
        }
        if self.cfg.home_assistant_discovery {
            filters.push(format!("{}/status", self.cfg.discovery_prefix));
        }
        for f in filters {
            if let Err(err) = self.client.try_subscribe(f.clone(), QoS::AtLeastOnce) {
                tracing::warn!(output = OUTPUT, filter = %f, error = %err, "cannot subscribe");
            }
        }
    }

    /// Everything retained, as it is now: after every CONNACK, and when Home Assistant
    /// comes back.
    fn republish(&mut self, with_status: bool) {
        let now = now_jst();
        if with_status {
            let m = self.current(self.names.topic("status"), "online", None);
            self.push(m);
        }
        if self.cfg.home_assistant_discovery {
            for (topic, body) in discovery::configs(
                &self.cfg.discovery_prefix,
                &self.names.prefix,
                &self.names.device_id,
            ) {
                let m = self.current(topic, body, None);
                self.push(m);
            }
        }
        self.push_state(now, None);
        if self.cfg.cap {
            let m = self.current(self.names.topic("cap"), self.model.shown_cap(), None);
            self.push(m);
        }
        if let Some(m) = self.health_msg(true) {
            self.push(m);
        }
    }

    // ---- the connection -------------------------------------------------------------

    fn on_link(&mut self, link: Link) {
        match link {
            Link::Connected => {
                self.connected = true;
                self.down_since = None;
                self.problem = None;
                self.faulted = false;
                tracing::info!(output = OUTPUT, broker = %self.names.broker, prefix = %self.names.prefix, "MQTT connected");
                if let Some(p) = &self.ctx.events {
                    p.send(json!({
                        "type": "mqtt", "event": "connected", "broker": self.names.broker,
                        "prefix": self.names.prefix,
                    }));
                }
                self.ctx.set_output_health(OUTPUT, None);
                // The current set goes first; fresh events queued while away follow.
                let waiting: Vec<Msg> = self.queue.drain(..).collect();
                self.subscribe();
                self.republish(true);
                self.attempted = true;
                if let Some((source, _)) = self.probe_waiting.take() {
                    self.start_probe(source);
                }
                self.queue.extend(waiting);
            }
            Link::Written(pkid) => match self.handed.pop_front() {
                Some(m) => {
                    self.inflight.insert(pkid, m);
                }
                None => tracing::debug!(output = OUTPUT, pkid, "written publish not ours"),
            },
            Link::Acked { pkid, problem } => {
                if let Some(m) = self.inflight.remove(&pkid) {
                    if let Some(p) = &problem {
                        tracing::warn!(output = OUTPUT, topic = %m.topic, reason = %p, "broker refused a publish");
                    }
                    if let Some(tag) = m.tag {
                        self.resolve(
                            tag,
                            Outcome::Acked {
                                topic: m.topic,
                                problem,
                            },
                        );
                    }
                }
            }
            Link::Message { topic, payload } => {
                let ha_status = format!("{}/status", self.cfg.discovery_prefix);
                if self.cfg.home_assistant_discovery
                    && topic == ha_status
                    && payload.as_slice() == b"online"
                {
                    tracing::info!(
                        output = OUTPUT,
                        "Home Assistant is back: discovery republished"
                    );
                    self.republish(false);
                } else if self.probe_message(&topic, &payload) {
                } else {
                    // Commands are for a later version; nothing from the broker acts.
                    tracing::debug!(output = OUTPUT, topic = %topic, bytes = payload.len(), "message ignored");
                }
            }
            Link::Lost { problem, permanent } => self.on_lost(problem, permanent),
            Link::Closed => {}
        }
    }

    fn on_lost(&mut self, problem: String, permanent: bool) {
        let was_connected = self.connected;
        self.connected = false;
        let now = Instant::now();
        self.down_since.get_or_insert(now);
        let new_problem = self.problem.as_deref() != Some(problem.as_str());
        if was_connected || new_problem {
            tracing::warn!(output = OUTPUT, broker = %self.names.broker, detail = %problem, "MQTT disconnected");
            if let Some(p) = &self.ctx.events {
                p.send(json!({
                    "type": "mqtt", "event": "disconnected", "broker": self.names.broker,
                    "detail": problem,
                }));
            }
        } else {
            tracing::debug!(output = OUTPUT, detail = %problem, "MQTT still disconnected");
        }
        self.problem = Some(problem);
        self.attempted = true;
        if let Some((source, _)) = self.probe_waiting.take() {
            // The connection a waiting probe waited for failed: so does the probe.
            self.start_probe(source);
        }
        if permanent || self.faulted {
            self.raise_fault();
        }
        // What was on its way: current state is resent after the reconnect; events go
        // back in the queue (in their order) and age there like the rest.
        let mut back: Vec<Msg> = self.handed.drain(..).collect();
        back.extend(self.inflight.drain().map(|(_, m)| m));
        back.extend(self.queue.drain(..));
        back.sort_by_key(|m| m.seq);
        for m in back {
            if m.class == Class::Current {
                if let Some(tag) = m.tag {
                    self.resolve(tag, Outcome::Superseded);
                }
            } else {
                self.queue.push_back(m);
            }
        }
    }

    fn raise_fault(&mut self) {
        let problem = self
            .problem
            .clone()
            .unwrap_or_else(|| "not connected".to_owned());
        self.faulted = true;
        self.ctx
            .set_output_health(OUTPUT, Some(format!("fault: {problem}")));
    }

    // ---- results --------------------------------------------------------------------

    fn resolve(&mut self, tag: u64, outcome: Outcome) {
        if self.probe_outcome(tag, &outcome) {
            return;
        }
        let Some(t) = self.tracks.get_mut(&tag) else {
            return;
        };
        t.pending = t.pending.saturating_sub(1);
        match outcome {
            Outcome::Acked {
                topic,
                problem: None,
            } => t.last_topic = Some(topic),
            Outcome::Acked {
                topic,
                problem: Some(p),
            } => {
                t.failure
                    .get_or_insert_with(|| format!("{topic}: broker refused: {p}"));
            }
            Outcome::Superseded => {}
            Outcome::Dropped(reason) => {
                t.failure.get_or_insert(reason);
            }
        }
        if t.pending > 0 {
            return;
        }
        let Some(t) = self.tracks.remove(&tag) else {
            return;
        };
        let a = &t.action;
        let ok = t.failure.is_none() && t.last_topic.is_some();
        let latency_us = ok.then(|| since_decision_us(a));
        let detail = t
            .failure
            .clone()
            // The topic first (what a reader greps for), then how it is known.
            .or_else(|| {
                t.last_topic
                    .as_ref()
                    .map(|topic| format!("{topic}: published, PUBACK received"))
            })
            .unwrap_or_else(|| "superseded by the current state".to_owned());
        let state = publish_state(a).map(|(s, _)| state_name(s));
        let driving = publish_state(a).is_some_and(|(_, d)| d);
        if ok {
            tracing::info!(
                output = OUTPUT, event_id = ?a.event_id, serial = ?a.serial, state = ?state,
                latency_us = ?latency_us, topic = ?t.last_topic, "alert published"
            );
        } else {
            tracing::warn!(
                output = OUTPUT, event_id = ?a.event_id, serial = ?a.serial, state = ?state,
                detail = %detail, "alert publish failed"
            );
        }
        if let Some(p) = &self.ctx.events {
            p.send(json!({
                "type": "mqtt", "event": "published", "ok": ok, "state": state,
                "driving": driving, "event_id": a.event_id, "serial": a.serial,
                "latency_us": latency_us, "detail": detail,
            }));
        }
        self.ctx
            .record_result(OUTPUT, a, ok, latency_us, Some(detail));
    }

    // ---- timers ---------------------------------------------------------------------

    fn next_wake(&self) -> Instant {
        let now = Instant::now();
        let mut at = now + HEALTH_REFRESH;
        let mut consider = |t: Instant| at = at.min(t);
        if !self.connected
            && !self.faulted
            && let Some(d) = self.down_since
        {
            consider(d + FAULT_GRACE);
        }
        if self.connected {
            match &self.health_sent {
                Some((sent, _)) => {
                    consider(*sent + HEALTH_REFRESH);
                    if self.health_dirty {
                        consider(*sent + HEALTH_MIN_INTERVAL);
                    }
                }
                None => consider(now),
            }
            if let Some(c) = self.countdown_at {
                consider(c);
            }
            if !self.queue.is_empty() && self.handed.len() + self.inflight.len() < WINDOW {
                // rumqttc's channel was full: try again shortly.
                consider(now + Duration::from_millis(20));
            }
        } else if !self.queue.is_empty() {
            consider(self.last_purge + PURGE_EVERY);
        }
        if let Some(d) = self.probe_deadline() {
            consider(d);
        }
        at
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        self.probe_timers(now);
        if !self.connected
            && !self.faulted
            && self
                .down_since
                .is_some_and(|d| now.duration_since(d) >= FAULT_GRACE)
        {
            self.raise_fault();
        }
        if !self.connected && now.duration_since(self.last_purge) >= PURGE_EVERY {
            // Stale alerts go now (logged and recorded when they go stale), not at the
            // next CONNACK.
            self.last_purge = now;
            let queued: Vec<Msg> = self.queue.drain(..).collect();
            for m in queued {
                match self.expired(&m, now) {
                    Some((reason, stale)) => self.drop_msg(m, reason, stale),
                    None => self.queue.push_back(m),
                }
            }
        }
        if !self.connected {
            return;
        }
        if let Some(m) = self.health_msg(false) {
            self.push(m);
        }
        if self.countdown_at.is_some_and(|c| c <= now) {
            let jst = now_jst();
            let secs = self
                .model
                .shown()
                .action
                .and_then(|a| a.arrival)
                .map(|t| seconds_to(t, jst));
            if let Some(s) = secs {
                let m = self.current(
                    self.names.topic("state/seconds_to_arrival"),
                    s.to_string(),
                    None,
                );
                self.push(m);
            }
            self.schedule_countdown(jst);
        }
    }

    // ---- shutdown -------------------------------------------------------------------

    async fn shutdown(&mut self, link_rx: &mut mpsc::Receiver<Link>) {
        if !self.connected {
            return;
        }
        // `offline` by hand: a clean DISCONNECT does not fire the Will.
        let topic = self.names.topic("status");
        if let Err(err) = self
            .client
            .try_publish(topic, QoS::AtLeastOnce, true, "offline")
        {
            tracing::warn!(output = OUTPUT, error = %err, "cannot publish offline");
        }
        if let Err(err) = self.client.try_disconnect() {
            tracing::warn!(output = OUTPUT, error = %err, "cannot disconnect");
        }
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        loop {
            match tokio::time::timeout_at(deadline, link_rx.recv()).await {
                Ok(Some(Link::Closed) | None) | Err(_) => break,
                Ok(Some(_)) => {}
            }
        }
        tracing::info!(output = OUTPUT, "MQTT offline");
    }
}
