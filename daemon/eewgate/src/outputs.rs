//! The physical outputs of `eewgate run`: one task per relay contact and one for the
//! status LED, each with its own bounded queue, so a relay never waits behind the LED,
//! audio, MQTT or SQLite. The core loop routes every action by its [`OutputId`] with
//! `try_send` ([`Router`]).
//!
//! Fail-safe: every relay pin is claimed at its released level before READY, and
//! [`Failsafe`] releases them all again on every exit path of `run` (it releases on drop).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eew_core::engine::{Action, ActionKind, LedPattern, OutputId};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::app::EventPrinter;
use crate::config::{HardwareConfig, LedPins, RelayPins};
use crate::hw::led::{LedState, Rgb, frames, lamp_test_length, state};
use crate::hw::sim::SimBoard;
use crate::hw::{Backend, InputPin, OutputPin, operated_level, released_level};
use crate::mqtt::MqttInput;
use crate::status::Status;
use crate::store::{EvidenceRecord, FaultRecord, HistoryWriter, OutputRecord, Record};
use crate::system::clock::{now_jst, now_utc};

/// Capacity of each relay's queue.
const RELAY_QUEUE: usize = 64;
/// Capacity of the LED's queue.
const LED_QUEUE: usize = 64;
/// How often a read-back input is polled while waiting for it to follow.
const READBACK_POLL: Duration = Duration::from_millis(2);

type SharedPin = Arc<Mutex<Box<dyn OutputPin>>>;

fn set_pin(pin: &SharedPin, level: bool) -> anyhow::Result<()> {
    pin.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .set(level)
}

/// One relay contact, claimed and released.
pub(crate) struct RelayDriver {
    pins: RelayPins,
    label: String,
    out: SharedPin,
    readback: Option<Box<dyn InputPin>>,
}

/// The LED's pins.
pub(crate) struct LedDriver {
    red: Box<dyn OutputPin>,
    green: Box<dyn OutputPin>,
    blue: Option<Box<dyn OutputPin>>,
}

impl LedDriver {
    fn show(&mut self, c: Rgb) -> anyhow::Result<()> {
        self.red.set(c.0)?;
        self.green.set(c.1)?;
        if let Some(b) = self.blue.as_mut() {
            b.set(c.2)?;
        }
        Ok(())
    }
}

/// Releases every relay contact; also on drop, so every exit path of `run` releases.
pub struct Failsafe {
    relays: Vec<(String, bool, SharedPin)>,
}

impl std::fmt::Debug for Failsafe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.relays.iter().map(|(l, _, _)| l.as_str()).collect();
        f.debug_struct("Failsafe").field("relays", &names).finish()
    }
}

impl Failsafe {
    /// Drives every relay pin to its released level.
    pub fn release_all(&self) {
        for (label, level, pin) in &self.relays {
            if let Err(err) = set_pin(pin, *level) {
                tracing::error!(output = %label, error = %err, "fail-safe: cannot release");
            }
        }
    }
}

impl Drop for Failsafe {
    fn drop(&mut self) {
        self.release_all();
        tracing::info!(
            relays = self.relays.len(),
            "fail-safe: every relay released"
        );
    }
}

/// The claimed hardware.
pub(crate) struct Hardware {
    pub(crate) failsafe: Failsafe,
    pub(crate) relays: Vec<RelayDriver>,
    pub(crate) led: Option<LedDriver>,
}

/// Opens the backend and claims every pin, relays at their released level.
pub(crate) fn claim(
    cfg: &HardwareConfig,
    backend: &dyn Backend,
    sim: &SimBoard,
) -> anyhow::Result<Hardware> {
    let mut relays = Vec::new();
    let mut failsafe = Failsafe { relays: Vec::new() };
    for r in &cfg.relays {
        let label = OutputId::Relay(r.id).to_string();
        let released = released_level(r.active_low);
        let out: SharedPin = Arc::new(Mutex::new(backend.output(r.pin, &label, released)?));
        failsafe.relays.push((label.clone(), released, out.clone()));
        let readback = match r.readback_pin {
            Some(p) => {
                // On the sim board the feedback contact is wired to its relay.
                sim.wire(p, r.pin, r.active_low);
                Some(backend.input(p, &format!("{label}:readback"))?)
            }
            None => None,
        };
        relays.push(RelayDriver {
            pins: r.clone(),
            label,
            out,
            readback,
        });
    }
    let led = match &cfg.led {
        Some(LedPins { red, green, blue }) => Some(LedDriver {
            red: backend.output(*red, "led:red", false)?,
            green: backend.output(*green, "led:green", false)?,
            blue: blue
                .map(|b| backend.output(b, "led:blue", false))
                .transpose()?,
        }),
        None => None,
    };
    Ok(Hardware {
        failsafe,
        relays,
        led,
    })
}

/// Where the core loop sends each action.
#[derive(Clone, Debug)]
pub(crate) struct Router {
    relays: BTreeMap<u8, mpsc::Sender<Action>>,
    /// Each contact's idle read-back check (delivery assurance's `idle` probe).
    idle_checks: BTreeMap<u8, mpsc::Sender<()>>,
    /// Contacts whose self-test under way was started by the schedule (its evidence
    /// says `probe`, not `self_test`).
    probing: Probing,
    led: Option<mpsc::Sender<Action>>,
    audio: Option<mpsc::Sender<Action>>,
    /// The audio output's probe tone (none on the null sink).
    audio_probe: Option<crate::audio::AudioProbe>,
    mqtt: Option<mpsc::Sender<MqttInput>>,
    /// Whether the MQTT output wants every report and decision (it is enabled).
    mqtt_feed: bool,
    rest: mpsc::Sender<Action>,
}

fn send_error<T>(output: &str, e: &mpsc::error::TrySendError<T>) -> String {
    match e {
        mpsc::error::TrySendError::Full(_) => format!("{output}: queue full"),
        mpsc::error::TrySendError::Closed(_) => format!("{output}: output stopped"),
    }
}

impl Router {
    /// Adds the audio output's queue.
    pub(crate) fn with_audio(
        mut self,
        tx: mpsc::Sender<Action>,
        probe: Option<crate::audio::AudioProbe>,
    ) -> Self {
        self.audio = Some(tx);
        self.audio_probe = probe;
        self
    }

    /// Asks the audio output for its probe tone; why not as a stable code.
    pub(crate) fn probe_audio(&self) -> Result<(), &'static str> {
        match &self.audio_probe {
            Some(p) => p.request(),
            None => Err("null_sink"),
        }
    }

    /// Adds the MQTT output's queue; `feed`: it also gets every report and decision.
    pub(crate) fn with_mqtt(mut self, tx: mpsc::Sender<MqttInput>, feed: bool) -> Self {
        self.mqtt = Some(tx);
        self.mqtt_feed = feed;
        self
    }

    /// Never waits: a full (or closed) queue is reported, the action dropped.
    pub(crate) fn try_send(&self, a: Action) -> Result<(), String> {
        let output = a.output;
        let tx = match a.output {
            OutputId::Relay(n) => self.relays.get(&n),
            OutputId::Led => self.led.as_ref(),
            OutputId::Audio => self.audio.as_ref(),
            OutputId::Mqtt => {
                if let Some(m) = &self.mqtt {
                    return m
                        .try_send(MqttInput::Action(a))
                        .map_err(|e| send_error("mqtt", &e));
                }
                None
            }
        };
        tx.unwrap_or(&self.rest)
            .try_send(a)
            .map_err(|e| send_error(&output.to_string(), &e))
    }

    /// Marks contact `id`'s next self-test as the schedule's probe (call just before
    /// sending the engine its `SelfTest`).
    pub(crate) fn mark_probe(&self, id: u8) {
        self.probing.mark(id);
    }

    /// Takes back [`Router::mark_probe`] (the engine refused the test).
    pub(crate) fn unmark_probe(&self, id: u8) {
        let _ = self.probing.take(id);
    }

    /// Asks contact `id` to read its read-back while released; why not as a stable code.
    pub(crate) fn check_idle(&self, id: u8) -> Result<(), &'static str> {
        match self.idle_checks.get(&id) {
            Some(tx) => tx.try_send(()).map_err(|_| "busy"),
            None => Err("unknown_output"),
        }
    }

    /// Asks the MQTT output for a probe (its self-test); why not as a stable code.
    pub(crate) fn probe_mqtt(&self, source: &'static str) -> Result<(), &'static str> {
        match &self.mqtt {
            Some(m) if self.mqtt_feed => {
                m.try_send(MqttInput::Probe { source }).map_err(|_| "busy")
            }
            _ => Err("output_disabled"),
        }
    }

    /// True when the MQTT output republishes every report and decision.
    pub(crate) fn mqtt_feed(&self) -> bool {
        self.mqtt_feed && self.mqtt.is_some()
    }

    /// Hands a report or decision to the MQTT output, never waiting.
    pub(crate) fn feed_mqtt(&self, input: MqttInput) -> Result<(), String> {
        match &self.mqtt {
            Some(m) if self.mqtt_feed => m.try_send(input).map_err(|e| send_error("mqtt", &e)),
            _ => Ok(()),
        }
    }
}

/// What every output task needs besides its own queue.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) events: Option<EventPrinter>,
    pub(crate) status: watch::Sender<Status>,
    pub(crate) history: Option<HistoryWriter>,
    pub(crate) cancel: CancellationToken,
}

/// Spawns a task per relay and one for the LED; returns the router (audio and MQTT go to
/// `rest`).
pub(crate) fn spawn(
    sup: &mut crate::supervisor::Supervisor,
    relays_hw: Vec<RelayDriver>,
    led_hw: Option<LedDriver>,
    ctx: &Ctx,
    rest: mpsc::Sender<Action>,
) -> Router {
    let mut relays = BTreeMap::new();
    let mut idle_checks = BTreeMap::new();
    let probing = Probing::default();
    ctx.status.send_modify(|s| {
        for r in &relays_hw {
            s.outputs.insert(r.label.clone(), "ok".to_owned());
        }
    });
    for r in relays_hw {
        let (tx, rx) = mpsc::channel(RELAY_QUEUE);
        relays.insert(r.pins.id, tx);
        let (check_tx, check_rx) = mpsc::channel(1);
        idle_checks.insert(r.pins.id, check_tx);
        let name = r.label.clone();
        let inputs = RelayInputs {
            actions: rx,
            idle_checks: check_rx,
            probing: probing.clone(),
        };
        sup.spawn(name, relay_task(r, inputs, ctx.clone()));
    }
    let led = led_hw.map(|l| {
        let (tx, rx) = mpsc::channel(LED_QUEUE);
        let status_rx = ctx.status.subscribe();
        sup.spawn("led", led_task(l, rx, status_rx, ctx.clone()));
        tx
    });
    Router {
        relays,
        idle_checks,
        probing,
        led,
        audio: None,
        audio_probe: None,
        mqtt: None,
        mqtt_feed: false,
        rest,
    }
}

/// Microseconds from the engine's decision (`a.at`) to now.
pub(crate) fn since_decision_us(a: &Action) -> i64 {
    now_jst()
        .0
        .signed_duration_since(a.at.0)
        .num_microseconds()
        .unwrap_or(i64::MAX)
}

impl Ctx {
    /// Records what `output` did with `a` in history (`output_results`), never waiting.
    pub(crate) fn record_result(
        &self,
        output: &str,
        a: &Action,
        ok: bool,
        latency_us: Option<i64>,
        detail: Option<String>,
    ) {
        if let Some(h) = &self.history {
            let _ = h.try_send(Record::Output(OutputRecord {
                at: now_utc(),
                output: output.to_owned(),
                action: a.kind.name().to_owned(),
                event_id: a.event_id.clone(),
                serial: a.serial,
                ok,
                latency_us,
                detail,
            }));
        }
    }

    /// Sets `outputs[output]` on the status model, raising or clearing an output fault
    /// (history, events, log) when its health changes. `problem` is `None` when healthy.
    pub(crate) fn set_output_health(&self, output: &str, problem: Option<String>) {
        let text = problem.clone().unwrap_or_else(|| "ok".to_owned());
        let mut was_faulted = false;
        let changed = self.status.send_if_modified(|s| {
            let old = s.outputs.insert(output.to_owned(), text.clone());
            was_faulted = old.as_deref().is_some_and(|o| o != "ok");
            old.as_deref() != Some(text.as_str())
        });
        let now_faulted = problem.is_some();
        if !changed || was_faulted == now_faulted {
            return;
        }
        if now_faulted {
            tracing::error!(output = %output, detail = ?problem, "output fault");
        } else {
            tracing::info!(output = %output, "output healthy");
        }
        if let Some(h) = &self.history {
            let _ = h.try_send(Record::Fault(FaultRecord {
                at: now_utc(),
                kind: "output".to_owned(),
                active: now_faulted,
                detail: Some(format!("{output}: {}", problem.clone().unwrap_or_default())),
            }));
        }
        if let Some(p) = &self.events {
            p.send(
                json!({"type": "fault", "fault": output, "active": now_faulted, "detail": problem}),
            );
        }
    }
}

/// One piece of evidence about a channel (what `Ctx::evidence` records).
#[derive(Clone, Debug, PartialEq)]
pub struct Proof {
    /// `relay:1`, `audio`, `led`, `mqtt`, …
    pub(crate) channel: String,
    /// `self_test`, `operator`, `alarm`, `probe`.
    pub(crate) source: &'static str,
    /// `readback`, `pin`, `playback`, `roundtrip`, `operator`, …
    pub(crate) method: &'static str,
    /// It worked.
    pub(crate) ok: bool,
    /// What was measured, ms.
    pub(crate) measurement_ms: Option<f64>,
    /// For people.
    pub(crate) detail: String,
}

impl Ctx {
    /// Records evidence that a channel works (or a failed proof): history (`evidence`),
    /// the status model's `verification`, an event line and the log. Never waits.
    pub(crate) fn evidence(&self, p: Proof) {
        let at = now_utc();
        if p.ok {
            tracing::info!(output = %p.channel, source = p.source, method = p.method,
                measurement_ms = ?p.measurement_ms, detail = %p.detail, "evidence: working");
        } else {
            tracing::error!(output = %p.channel, source = p.source, method = p.method,
                detail = %p.detail, "evidence: proof failed");
        }
        if let Some(ev) = &self.events {
            ev.send(json!({
                "type": "evidence", "output": p.channel, "source": p.source,
                "method": p.method, "ok": p.ok, "measurement_ms": p.measurement_ms,
                "detail": p.detail, "at": at.to_rfc3339(),
            }));
        }
        let shown = crate::status::Evidence {
            at,
            source: p.source.to_owned(),
            method: p.method.to_owned(),
            ok: p.ok,
            measurement_ms: p.measurement_ms,
            detail: Some(p.detail.clone()),
        };
        self.status.send_modify(|s| {
            s.verification
                .entry(p.channel.clone())
                .or_default()
                .record(shown);
        });
        if let Some(h) = &self.history {
            let _ = h.try_send(Record::Evidence(EvidenceRecord {
                at,
                channel: p.channel,
                source: p.source.to_owned(),
                method: p.method.to_owned(),
                ok: p.ok,
                measurement_ms: p.measurement_ms,
                detail: Some(p.detail),
            }));
        }
    }
}

/// A short delay for people: `850 µs`, `3.2 ms`.
pub(crate) fn short_duration(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else {
        format!("{:.1} ms", ms(d))
    }
}

/// Milliseconds of a duration, for evidence.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The action as a JSON line (`type = "action"`), with extra fields.
pub(crate) fn action_line(a: &Action, extra: serde_json::Value) -> Option<serde_json::Value> {
    let mut v = serde_json::to_value(a).ok()?;
    if let serde_json::Value::Object(map) = &mut v {
        map.insert("type".into(), json!("action"));
        if let serde_json::Value::Object(e) = extra {
            map.extend(e);
        }
    }
    Some(v)
}

/// Contacts whose self-test was started by the schedule, shared by the router (which
/// marks) and the relay tasks (which take the mark when the test's proof is complete).
#[derive(Clone, Debug, Default)]
struct Probing(Arc<Mutex<BTreeSet<u8>>>);

impl Probing {
    fn mark(&self, id: u8) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id);
    }

    /// The source of contact `id`'s self-test evidence; clears the mark.
    fn take(&self, id: u8) -> &'static str {
        let was = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id);
        if was { "probe" } else { "self_test" }
    }
}

/// A relay task's queues.
struct RelayInputs {
    actions: mpsc::Receiver<Action>,
    idle_checks: mpsc::Receiver<()>,
    probing: Probing,
}

/// A self-test pulse under way on one contact: how its closing went.
struct PulseTest {
    /// The read-back's delay closing (or the pin's result without one).
    closed: Result<Option<Duration>, String>,
    /// `self_test` or `probe`.
    source: &'static str,
}

async fn relay_task(mut r: RelayDriver, mut inputs: RelayInputs, ctx: Ctx) -> anyhow::Result<()> {
    let mut test: Option<PulseTest> = None;
    // Every contact is claimed released before READY.
    let mut is_closed = false;
    loop {
        let a = tokio::select! {
            () = ctx.cancel.cancelled() => return Ok(()),
            a = inputs.actions.recv() => match a { Some(a) => a, None => return Ok(()) },
            Some(()) = inputs.idle_checks.recv() => {
                idle_check(&mut r, is_closed, &ctx);
                continue;
            }
        };
        let closed = match a.kind {
            ActionKind::On { .. } => true,
            ActionKind::Off => false,
            _ => continue,
        };
        let level = if closed {
            operated_level(r.pins.active_low)
        } else {
            released_level(r.pins.active_low)
        };
        if let Some(p) = &ctx.events
            && let Some(v) = action_line(&a, json!({}))
        {
            p.send(v);
        }
        let result = set_pin(&r.out, level);
        if result.is_ok() {
            is_closed = closed;
        }
        let switched = now_jst();
        let latency_us = since_decision_us(&a);
        match &result {
            Ok(()) => tracing::info!(
                output = %r.label, action = a.kind.name(), event_id = ?a.event_id,
                serial = ?a.serial, pin = r.pins.pin, level, latency_us, "relay switched"
            ),
            Err(err) => tracing::error!(
                output = %r.label, action = a.kind.name(), event_id = ?a.event_id,
                error = %err, "relay pin could not be set"
            ),
        }
        if let Some(p) = &ctx.events {
            p.send(json!({
                "type": "switched", "output": &r.label, "closed": closed, "level": level,
                "event_id": a.event_id, "serial": a.serial,
                "switched_at": switched.0.to_rfc3339(), "latency_us": latency_us,
                "ok": result.is_ok(),
            }));
        }
        let followed = match result {
            Err(err) => Err(format!("fault: cannot set pin {}: {err}", r.pins.pin)),
            Ok(()) => match r.readback.as_mut() {
                Some(input) => readback(input.as_mut(), closed, r.pins.readback_timeout)
                    .await
                    .map(Some),
                None => Ok(None),
            },
        };
        test = relay_evidence(&r, &a, closed, &followed, test, &inputs.probing, &ctx);
        // What was seen, for history (and the drill report): the pin, and the read-back's
        // delay or that there is none to see.
        let detail = match &followed {
            Err(p) => p.clone(),
            Ok(Some(delay)) => format!(
                "pin {} level {}; read-back followed in {}",
                r.pins.pin,
                u8::from(level),
                short_duration(*delay)
            ),
            Ok(None) => format!("pin {} level {}; no read-back", r.pins.pin, u8::from(level)),
        };
        let problem = followed.err();
        ctx.record_result(
            &r.label,
            &a,
            problem.is_none(),
            Some(latency_us),
            Some(detail),
        );
        ctx.set_output_health(&r.label, problem);
    }
}

/// Evidence from one switching of a contact; returns the self-test still under way.
///
/// A self-test pulse is proved by its closing and its opening: with a read-back both
/// must follow (`readback`); without one the pin was set, which is all the appliance can
/// see (`pin`), so the operator's confirmation is what proves the contact. An alarm's
/// switching with a read-back that follows is evidence too (`alarm`).
fn relay_evidence(
    r: &RelayDriver,
    a: &Action,
    closed: bool,
    followed: &Result<Option<Duration>, String>,
    test: Option<PulseTest>,
    probing: &Probing,
    ctx: &Ctx,
) -> Option<PulseTest> {
    let method = if r.readback.is_some() {
        "readback"
    } else {
        "pin"
    };
    let proof = |source, ok, measurement_ms, detail| Proof {
        channel: r.label.clone(),
        source,
        method,
        ok,
        measurement_ms,
        detail,
    };
    if a.cause == eew_core::engine::Cause::SelfTest && closed {
        let source = probing.take(r.pins.id);
        if let Err(e) = followed {
            ctx.evidence(proof(source, false, None, format!("closing: {e}")));
            return None;
        }
        return Some(PulseTest {
            closed: followed.clone(),
            source,
        });
    }
    match (test, closed) {
        // The test pulse ended: the proof is complete.
        (Some(t), false) if a.event_id.is_none() => {
            let (ok, measurement_ms, detail) = match (&t.closed, followed) {
                (Ok(Some(c)), Ok(Some(o))) => (
                    true,
                    Some(ms(*c)),
                    format!(
                        "read-back followed: closed in {:.1} ms, opened in {:.1} ms",
                        ms(*c),
                        ms(*o)
                    ),
                ),
                (Ok(_), Ok(_)) => (
                    true,
                    None,
                    format!(
                        "pin {} closed and opened; no read-back: confirm that the equipment reacted",
                        r.pins.pin
                    ),
                ),
                (_, Err(e)) | (Err(e), _) => (false, None, format!("opening: {e}")),
            };
            ctx.evidence(proof(t.source, ok, measurement_ms, detail));
            None
        }
        (t, _) => {
            if t.is_some() {
                tracing::info!(output = %r.label, event_id = ?a.event_id, "self-test taken over by an alarm");
            }
            if a.event_id.is_some() && r.readback.is_some() {
                match followed {
                    Ok(delay) => ctx.evidence(proof(
                        "alarm",
                        true,
                        delay.map(ms),
                        format!(
                            "read-back followed the alarm's {}",
                            if closed { "closing" } else { "opening" }
                        ),
                    )),
                    Err(e) => ctx.evidence(proof("alarm", false, None, e.clone())),
                }
            }
            None
        }
    }
}

/// How an idle check's fault begins.
const IDLE_FAULT: &str = "fault: released, but the read-back reads closed";

/// Delivery assurance's `idle` probe: a released contact's read-back must read open. It
/// proves the read-back wiring and a contact not welded shut, without operating anything.
fn idle_check(r: &mut RelayDriver, is_closed: bool, ctx: &Ctx) {
    if is_closed {
        // An alarm holds the contact: its own switching was the evidence.
        tracing::info!(output = %r.label, "idle check skipped: the contact is closed");
        return;
    }
    let Some(input) = r.readback.as_mut() else {
        return;
    };
    let (ok, detail) = match input.read() {
        Ok(false) => (true, "released, and the read-back reads open".to_owned()),
        Ok(true) => (
            false,
            format!("{IDLE_FAULT} (contact stuck closed, or the read-back miswired)"),
        ),
        Err(err) => (false, format!("fault: read-back unreadable: {err}")),
    };
    if !ok {
        ctx.set_output_health(&r.label, Some(detail.clone()));
    } else if ctx
        .status
        .borrow()
        .outputs
        .get(&r.label)
        .is_some_and(|h| h.starts_with(IDLE_FAULT))
    {
        // Only the idle check's own fault is cleared by it: it does not prove switching.
        ctx.set_output_health(&r.label, None);
    }
    ctx.evidence(Proof {
        channel: r.label.clone(),
        source: "probe",
        method: eew_core::assurance::method::READBACK_IDLE,
        ok,
        measurement_ms: None,
        detail,
    });
}

/// Waits until the feedback contact reads `closed` (high = closed), or fails after
/// `timeout`; answers how long it took.
async fn readback(
    input: &mut dyn InputPin,
    closed: bool,
    timeout: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        match input.read() {
            Ok(v) if v == closed => return Ok(start.elapsed()),
            Ok(_) => {}
            Err(err) => return Err(format!("fault: read-back unreadable: {err}")),
        }
        if start.elapsed() >= timeout {
            return Err(format!(
                "fault: read-back did not follow ({}) within {} ms",
                if closed { "closed" } else { "open" },
                timeout.as_millis()
            ));
        }
        tokio::time::sleep(READBACK_POLL).await;
    }
}

/// The engine's LED pattern by its code (as in the action's JSON).
fn led_pattern_name(p: LedPattern) -> &'static str {
    match p {
        LedPattern::LampTest => "lamp_test",
        LedPattern::Normal => "normal",
        LedPattern::Fault => "fault",
        LedPattern::Exercise => "exercise",
        LedPattern::Alert => "alert",
    }
}

fn led_name(s: LedState) -> &'static str {
    match s {
        LedState::Normal => "normal",
        LedState::VerificationOverdue => "verification_overdue",
        LedState::UpstreamFault => "upstream_fault",
        LedState::TimeFault => "time_fault",
        LedState::InternalFault => "internal_fault",
        LedState::Exercise => "exercise",
        LedState::Alert => "alert",
        LedState::LampTest => "lamp_test",
    }
}

async fn led_task(
    mut led: LedDriver,
    mut rx: mpsc::Receiver<Action>,
    mut status_rx: watch::Receiver<Status>,
    ctx: Ctx,
) -> anyhow::Result<()> {
    let has_blue = led.blue.is_some();
    let mut engine = LedPattern::Normal;
    let mut current: Option<LedState> = None;
    let mut cycle = Vec::new();
    let mut idx = 0usize;
    let mut next = tokio::time::Instant::now();
    let mut watching = true;
    // A lamp test under way: when it ends, and whether every colour could be set.
    let mut lamp: Option<(tokio::time::Instant, bool)> = None;
    // Whether the last frame's pins could all be set, and the actions taken since the
    // last pass (their results are recorded once the frame they lead to is shown).
    let mut shown_ok = true;
    let mut taken: Vec<Action> = Vec::new();
    loop {
        let now = tokio::time::Instant::now();
        if let Some((end, pins_ok)) = lamp
            && end <= now
        {
            lamp = None;
            ctx.evidence(Proof {
                channel: "led".to_owned(),
                source: "self_test",
                method: "pin",
                ok: pins_ok,
                measurement_ms: None,
                detail: if pins_ok {
                    "lamp test shown (red, green, blue, amber): confirm that every colour lit"
                        .to_owned()
                } else {
                    "fault: a pin of the LED could not be set during the lamp test".to_owned()
                },
            });
        }
        let shown = if lamp.is_some() {
            LedPattern::LampTest
        } else {
            engine
        };
        let st = state(shown, &status_rx.borrow_and_update());
        if current != Some(st) {
            current = Some(st);
            cycle = frames(st, has_blue);
            idx = 0;
            next = now;
            tracing::info!(pattern = led_name(st), "led");
            if let Some(p) = &ctx.events {
                p.send(json!({"type": "led", "pattern": led_name(st)}));
            }
            ctx.status.send_if_modified(|s| {
                let name = led_name(st).to_owned();
                if s.outputs.get("led") == Some(&name) {
                    false
                } else {
                    s.outputs.insert("led".to_owned(), name);
                    true
                }
            });
        }
        if next <= now
            && let Some((c, d)) = cycle.get(idx).copied()
        {
            let set = led.show(c);
            shown_ok = set.is_ok();
            if let Err(err) = set {
                tracing::warn!(error = %err, "led pin could not be set");
                if let Some((_, ok)) = lamp.as_mut() {
                    *ok = false;
                }
            }
            next = if cycle.len() > 1 {
                now + d
            } else {
                now + Duration::from_secs(86_400)
            };
            idx = (idx + 1) % cycle.len();
        }
        // What the LED did with each action (history, the drill report): the pattern it
        // now shows — a fault or a real alert outranks the engine's pattern — and whether
        // its pins could be set. Nothing reads the LED back.
        for a in taken.drain(..) {
            let ordered = match a.kind {
                ActionKind::Led { pattern } => led_pattern_name(pattern),
                _ => "none",
            };
            let detail = if shown_ok {
                format!(
                    "pattern {ordered}; the LED shows {} (no read-back: seen by a person only)",
                    led_name(st)
                )
            } else {
                format!("fault: a pin of the LED could not be set (pattern {ordered})")
            };
            ctx.record_result(
                "led",
                &a,
                shown_ok,
                Some(since_decision_us(&a)),
                Some(detail),
            );
        }
        tokio::select! {
            () = ctx.cancel.cancelled() => {
                let _ = led.show(Rgb(false, false, false));
                return Ok(());
            }
            () = sleep_until_some(lamp.map(|(end, _)| end)) => {}
            a = rx.recv() => match a {
                Some(a) => {
                    match a.kind {
                        ActionKind::Led { pattern: LedPattern::LampTest } => {
                            lamp = Some((tokio::time::Instant::now() + lamp_test_length(has_blue), true));
                        }
                        ActionKind::Led { pattern } => {
                            // The engine's pattern wins at once (an alarm ends a lamp test).
                            if lamp.take().is_some() {
                                tracing::info!(output = "led", "lamp test ended by the engine's pattern");
                            }
                            engine = pattern;
                        }
                        _ => {}
                    }
                    if let Some(p) = &ctx.events
                        && let Some(v) = action_line(&a, json!({}))
                    {
                        p.send(v);
                    }
                    taken.push(a);
                }
                None => return Ok(()),
            },
            changed = status_rx.changed(), if watching => {
                if changed.is_err() {
                    watching = false;
                }
            }
            () = tokio::time::sleep_until(next) => {}
        }
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// The file in the state directory that remembers the pins a daemon drives, for a
/// failsafe whose settings file has since become invalid or names other pins.
pub const FAILSAFE_FILE: &str = "failsafe-pins.json";

/// Remembers `cfg`'s relay pins in `dir` (at every start, before a contact can close).
pub fn remember_pins(cfg: &HardwareConfig, dir: &std::path::Path) -> std::io::Result<()> {
    let relays: Vec<serde_json::Value> = cfg
        .relays
        .iter()
        .map(|r| json!({"id": r.id, "pin": r.pin, "active_low": r.active_low}))
        .collect();
    let backend = match cfg.backend {
        crate::config::HardwareBackend::Sim => "sim",
        crate::config::HardwareBackend::Rpi => "rpi",
    };
    let doc = json!({
        "backend": backend,
        "sim_state_file": cfg.sim_state_file.as_ref().map(|p| p.display().to_string()),
        "relays": relays,
    });
    crate::system::runtime_dir::write_atomic(dir, FAILSAFE_FILE, &doc.to_string())
}

/// The pins remembered in `dir`, if any (relays only: the LED has no unsafe state).
pub fn recall_pins(dir: &std::path::Path) -> anyhow::Result<Option<HardwareConfig>> {
    let path = dir.join(FAILSAFE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => anyhow::bail!("{}: {e}", path.display()),
    };
    let bad = || anyhow::anyhow!("{}: not a failsafe pin file", path.display());
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|_| bad())?;
    let backend = match doc.get("backend").and_then(serde_json::Value::as_str) {
        Some("sim") => crate::config::HardwareBackend::Sim,
        Some("rpi") => crate::config::HardwareBackend::Rpi,
        _ => return Err(bad()),
    };
    let mut relays = Vec::new();
    for r in doc
        .get("relays")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(bad)?
    {
        let num = |k: &str| {
            r.get(k)
                .and_then(serde_json::Value::as_u64)
                .and_then(|n| u8::try_from(n).ok())
        };
        let (Some(id), Some(pin), Some(active_low)) = (
            num("id"),
            num("pin"),
            r.get("active_low").and_then(serde_json::Value::as_bool),
        ) else {
            return Err(bad());
        };
        relays.push(RelayPins {
            id,
            pin,
            active_low,
            readback_pin: None,
            readback_timeout: Duration::ZERO,
            probe: eew_core::assurance::RelayProbe::None,
        });
    }
    Ok(Some(HardwareConfig {
        backend,
        relays,
        led: None,
        sim_state_file: doc
            .get("sim_state_file")
            .and_then(serde_json::Value::as_str)
            .map(std::path::PathBuf::from),
    }))
}

/// `eewgate failsafe`: every configured relay pin to its released level, then exit.
pub fn failsafe(cfg: &HardwareConfig) -> anyhow::Result<Vec<serde_json::Value>> {
    let sim = SimBoard::new();
    // What a killed daemon left on the (simulated) board, when it keeps a state file.
    let before = match (&cfg.backend, &cfg.sim_state_file) {
        (crate::config::HardwareBackend::Sim, Some(f)) => Some(sim.persist_to(f)?),
        _ => None,
    };
    let backend = crate::hw::open(cfg.backend, &sim)?;
    let mut done = Vec::new();
    for r in &cfg.relays {
        let label = OutputId::Relay(r.id).to_string();
        let level = released_level(r.active_low);
        let mut pin = backend.output(r.pin, &label, level)?;
        pin.set(level)?;
        let was = before.as_ref().and_then(|b| b.get(&r.pin)).copied();
        let mut line = json!({"type": "released", "output": label, "pin": r.pin, "level": level});
        if let (Some(was), Some(map)) = (was, line.as_object_mut()) {
            map.insert("was".to_owned(), json!(was));
        }
        done.push(line);
    }
    Ok(done)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;

    #[test]
    fn remembered_pins_come_back_and_a_damaged_file_is_an_error() {
        let dir =
            std::env::temp_dir().join(format!("eewgate-failsafe-pins-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(
            recall_pins(&dir).unwrap().is_none(),
            "nothing remembered yet"
        );
        let hw = HardwareConfig {
            backend: crate::config::HardwareBackend::Rpi,
            relays: vec![RelayPins {
                id: 2,
                pin: 6,
                active_low: true,
                readback_pin: Some(24),
                readback_timeout: Duration::from_millis(100),
                probe: eew_core::assurance::RelayProbe::Idle,
            }],
            led: None,
            sim_state_file: None,
        };
        remember_pins(&hw, &dir).unwrap();
        let back = recall_pins(&dir).unwrap().unwrap();
        assert_eq!(back.backend, hw.backend);
        assert_eq!(
            back.relays
                .iter()
                .map(|r| (r.id, r.pin, r.active_low))
                .collect::<Vec<_>>(),
            vec![(2, 6, true)]
        );
        std::fs::write(
            dir.join(FAILSAFE_FILE),
            "{\"backend\": \"sim\", \"relays\": [{\"id\": 1}]}",
        )
        .unwrap();
        let err = recall_pins(&dir).unwrap_err().to_string();
        assert!(err.contains("not a failsafe pin file"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
