//! The physical outputs of `eewgate run`: one task per relay contact and one for the
//! status LED, each with its own bounded queue, so a relay never waits behind the LED,
//! audio, MQTT or SQLite. The core loop routes every action by its [`OutputId`] with
//! `try_send` ([`Router`]).
//!
//! Fail-safe: every relay pin is claimed at its released level before READY, and
//! [`Failsafe`] releases them all again on every exit path of `run` (it releases on drop).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eew_core::engine::{Action, ActionKind, LedPattern, OutputId};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::app::EventPrinter;
use crate::config::{HardwareConfig, LedPins, RelayPins};
use crate::hw::led::{LedState, Rgb, frames, state};
use crate::hw::sim::SimBoard;
use crate::hw::{Backend, InputPin, OutputPin, operated_level, released_level};
use crate::mqtt::MqttInput;
use crate::status::Status;
use crate::store::{FaultRecord, HistoryWriter, OutputRecord, Record};
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
    led: Option<mpsc::Sender<Action>>,
    audio: Option<mpsc::Sender<Action>>,
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
    pub(crate) fn with_audio(mut self, tx: mpsc::Sender<Action>) -> Self {
        self.audio = Some(tx);
        self
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
    ctx.status.send_modify(|s| {
        for r in &relays_hw {
            s.outputs.insert(r.label.clone(), "ok".to_owned());
        }
    });
    for r in relays_hw {
        let (tx, rx) = mpsc::channel(RELAY_QUEUE);
        relays.insert(r.pins.id, tx);
        let name = r.label.clone();
        sup.spawn(name, relay_task(r, rx, ctx.clone()));
    }
    let led = led_hw.map(|l| {
        let (tx, rx) = mpsc::channel(LED_QUEUE);
        let status_rx = ctx.status.subscribe();
        sup.spawn("led", led_task(l, rx, status_rx, ctx.clone()));
        tx
    });
    Router {
        relays,
        led,
        audio: None,
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

async fn relay_task(
    mut r: RelayDriver,
    mut rx: mpsc::Receiver<Action>,
    ctx: Ctx,
) -> anyhow::Result<()> {
    loop {
        let a = tokio::select! {
            () = ctx.cancel.cancelled() => return Ok(()),
            a = rx.recv() => match a { Some(a) => a, None => return Ok(()) },
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
        let problem = match result {
            Err(err) => Some(format!("fault: cannot set pin {}: {err}", r.pins.pin)),
            Ok(()) => match r.readback.as_mut() {
                Some(input) => readback(input.as_mut(), closed, r.pins.readback_timeout)
                    .await
                    .err(),
                None => None,
            },
        };
        let detail = match &problem {
            Some(p) => p.clone(),
            None => format!("pin {} level {}", r.pins.pin, u8::from(level)),
        };
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

/// Waits until the feedback contact reads `closed` (high = closed), or fails after
/// `timeout`.
async fn readback(input: &mut dyn InputPin, closed: bool, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        match input.read() {
            Ok(v) if v == closed => return Ok(()),
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

fn led_name(s: LedState) -> &'static str {
    match s {
        LedState::Normal => "normal",
        LedState::VerificationOverdue => "verification_overdue",
        LedState::UpstreamFault => "upstream_fault",
        LedState::TimeFault => "time_fault",
        LedState::InternalFault => "internal_fault",
        LedState::Exercise => "exercise",
        LedState::Alert => "alert",
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
    loop {
        let st = state(engine, &status_rx.borrow_and_update());
        let now = tokio::time::Instant::now();
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
            if let Err(err) = led.show(c) {
                tracing::warn!(error = %err, "led pin could not be set");
            }
            next = if cycle.len() > 1 {
                now + d
            } else {
                now + Duration::from_secs(86_400)
            };
            idx = (idx + 1) % cycle.len();
        }
        tokio::select! {
            () = ctx.cancel.cancelled() => {
                let _ = led.show(Rgb(false, false, false));
                return Ok(());
            }
            a = rx.recv() => match a {
                Some(a) => {
                    if let ActionKind::Led { pattern } = a.kind {
                        engine = pattern;
                    }
                    if let Some(p) = &ctx.events
                        && let Some(v) = action_line(&a, json!({}))
                    {
                        p.send(v);
                    }
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
