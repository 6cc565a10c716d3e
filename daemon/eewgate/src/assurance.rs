//! Delivery assurance in the daemon: the `[assurance]` settings, the probe schedule and
//! the ageing of every channel's evidence (issue 7; docs/adr/0013-delivery-assurance.md).
//!
//! One task, once a second: it asks the core loop for the probes that are due (the MQTT
//! round trip, each contact's read-back probe in its window), records the continuous
//! checks (time, watchdog, storage) as evidence hourly, and ages every channel with
//! `eew_core::assurance`: a channel past its limit is on the status model's
//! `verification_overdue` — the LED's verification pattern, the retained MQTT `health`,
//! the dashboard's banner — with a log line, an event line and a fault in history. The
//! decisions are the pure core's; this module only reads the clock and sends.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use eew_core::assurance::{
    Channel, ChannelPolicy, DrillTime, RelayProbe, Schedule, Window, method,
};
use eew_core::settings::Walker;
use serde_json::json;
use tokio::sync::mpsc;
use toml::Table;

use crate::app::CoreCommand;
use crate::config::{DaemonConfig, LinkKind};
use crate::outputs::{Ctx, Proof};
use crate::store::{FaultRecord, Record};
use crate::system::clock::{now_jst, now_utc};

/// How often the task looks.
const TICK: Duration = Duration::from_secs(1);
/// The first MQTT probe waits this long after start (the connection is being made).
const FIRST_PROBE_AFTER: TimeDelta = TimeDelta::seconds(10);
/// JMA's delivery test (VXSE42) comes hourly on DM-D.S.S.
const DMDATA_DELIVERY_TEST_EVERY: Duration = Duration::from_secs(3600);

/// `[assurance]`.
#[derive(Clone, Debug, PartialEq)]
pub struct AssuranceConfig {
    /// Probes and ageing run (off only for bench rigs: a building's appliance keeps it on).
    pub enabled: bool,
    /// How often MQTT is probed (a round trip, or the BMS's acknowledgement).
    pub mqtt_probe_every: Duration,
    /// How often each contact with a read-back is probed.
    pub relay_probe_every: Duration,
    /// How often the audio output plays its probe tone (in the same window); `None`: never.
    pub audio_probe_every: Option<Duration>,
    /// When contacts may be probed (JST); any time when `None`.
    pub relay_probe_window: Option<Window>,
    /// Contacts are not probed by the schedule this soon after a start: a restart (after a
    /// power cut, perhaps by an earthquake) operates nothing by itself, and the installer
    /// starting the appliance in the window is not surprised. A settings change's probes
    /// do not wait.
    pub start_delay: Duration,
    /// How long an operator's confirmation keeps a channel trusted.
    pub operator_max_age: Duration,
    /// How often JMA's delivery test is expected over the links; `None`: not aged.
    /// Unset: hourly when a DM-D.S.S link asks for VXSE42 with `test = "including"`, else
    /// not aged.
    pub delivery_test_every: Option<Duration>,
    /// A channel's limit set outright (`"relay:1" = 86400`), for every method.
    pub max_age: BTreeMap<String, Duration>,
    /// Where every change of the faults is POSTed (`[assurance.webhook]`).
    pub webhook: Option<crate::webhook::WebhookConfig>,
    /// Drills that run by themselves (`[[assurance.drill]]`).
    pub drills: Vec<ScheduledDrill>,
}

/// One `[[assurance.drill]]`: a synthetic drill at a time, through every output that
/// includes drills, recorded like a drill started on the Tests page (its report too).
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduledDrill {
    /// When.
    pub at: DrillTime,
    /// What it announces.
    pub spec: eew_core::engine::DrillSpec,
}

impl Default for AssuranceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            mqtt_probe_every: Duration::from_secs(300),
            relay_probe_every: Duration::from_secs(86_400),
            audio_probe_every: Some(Duration::from_secs(86_400)),
            relay_probe_window: Window::parse("03:00-04:00"),
            start_delay: Duration::from_secs(300),
            operator_max_age: Duration::from_secs(31 * 86_400),
            delivery_test_every: None,
            max_age: BTreeMap::new(),
            webhook: None,
            drills: Vec::new(),
        }
    }
}

const KEYS: &[&str] = &[
    "enabled",
    "mqtt_probe_every_s",
    "relay_probe_every_h",
    "audio_probe_every_h",
    "relay_probe_window",
    "start_delay_s",
    "operator_max_age_days",
    "delivery_test_every_s",
    "max_age_s",
    "webhook",
    "drill",
];

/// Parses `[[assurance.drill]]`.
fn drills_section(w: &mut Walker, t: &Table) -> Vec<ScheduledDrill> {
    let Some((path, v)) = w.get(t, "assurance", "drill") else {
        return Vec::new();
    };
    let Some(items) = v.as_array() else {
        w.error(
            path,
            "must be an array of tables: write each drill as [[assurance.drill]]",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("assurance.drill[{i}]");
        let Some(d) = w.table_at(&path, item) else {
            continue;
        };
        let at = w
            .require(d, &path, "at", "\"MM-DD HH:MM\" every year (JST), or an RFC 3339 time once")
            .and_then(|(p, v)| {
                let s = w.str_at(&p, v)?;
                let parsed = DrillTime::parse(s);
                if parsed.is_none() {
                    w.error(
                        p,
                        "\"MM-DD HH:MM\" every year (JST, e.g. \"11-05 10:00\"), or an RFC 3339 time once (e.g. \"2027-06-01T10:00:00+09:00\")",
                    );
                }
                parsed
            });
        let class = match w.get(d, &path, "class") {
            Some((p, v)) => w.str_at(&p, v).and_then(|s| {
                let c = eew_core::Intensity::from_xml(s);
                if c.is_none() {
                    w.error(
                        p,
                        "an intensity class: \"1\" … \"4\", \"5-\", \"5+\", \"6-\", \"6+\", \"7\"",
                    );
                }
                c
            }),
            None => Some(eew_core::Intensity::FiveLower),
        };
        let seconds = w
            .get(d, &path, "seconds")
            .and_then(|(p, v)| w.u32_in(&p, v, 5, 300))
            .unwrap_or(30);
        w.unknown_keys(d, &path, &["at", "class", "seconds"]);
        if let (Some(at), Some(class)) = (at, class) {
            out.push(ScheduledDrill {
                at,
                spec: eew_core::engine::DrillSpec {
                    class,
                    seconds,
                    long_period_class: None,
                    warning: false,
                },
            });
        }
    }
    out
}

/// Channel names a `max_age_s` key may give.
fn channel_name_ok(s: &str) -> bool {
    matches!(
        s,
        "led" | "audio" | "mqtt" | "upstream" | "time" | "watchdog" | "storage"
    ) || s
        .strip_prefix("relay:")
        .and_then(|n| n.parse::<u8>().ok())
        .is_some_and(|n| (1..=16).contains(&n))
}

/// Checks `[assurance]`; the defaults when it is absent.
pub(crate) fn section(w: &mut Walker, table: &Table, base: &std::path::Path) -> AssuranceConfig {
    let mut out = AssuranceConfig::default();
    let Some(t) = w.section(table, "", "assurance") else {
        return out;
    };
    let path = "assurance";
    if let Some((p, v)) = w.get(t, path, "enabled")
        && let Some(b) = w.bool_at(&p, v)
    {
        out.enabled = b;
    }
    if let Some((p, v)) = w.get(t, path, "mqtt_probe_every_s")
        && let Some(s) = w.u32_in(&p, v, 2, 86_400)
    {
        out.mqtt_probe_every = Duration::from_secs(u64::from(s));
    }
    if let Some((p, v)) = w.get(t, path, "relay_probe_every_h")
        && let Some(h) = w.u32_in(&p, v, 1, 24 * 31)
    {
        out.relay_probe_every = Duration::from_secs(u64::from(h) * 3600);
    }
    if let Some((p, v)) = w.get(t, path, "audio_probe_every_h")
        && let Some(h) = w.u32_in(&p, v, 0, 24 * 31)
    {
        out.audio_probe_every = (h > 0).then(|| Duration::from_secs(u64::from(h) * 3600));
    }
    if let Some((p, v)) = w.get(t, path, "relay_probe_window")
        && let Some(s) = w.str_at(&p, v)
    {
        if s.trim() == "any" {
            out.relay_probe_window = None;
        } else {
            match Window::parse(s) {
                Some(win) => out.relay_probe_window = Some(win),
                None => w.error(
                    p,
                    "a JST time window \"HH:MM-HH:MM\" (e.g. \"03:00-04:00\"; may pass midnight), or \"any\"",
                ),
            }
        }
    }
    if let Some((p, v)) = w.get(t, path, "start_delay_s")
        && let Some(s) = w.u32_in(&p, v, 0, 3600)
    {
        out.start_delay = Duration::from_secs(u64::from(s));
    }
    if let Some((p, v)) = w.get(t, path, "operator_max_age_days")
        && let Some(d) = w.u32_in(&p, v, 1, 400)
    {
        out.operator_max_age = Duration::from_secs(u64::from(d) * 86_400);
    }
    if let Some((p, v)) = w.get(t, path, "delivery_test_every_s")
        && let Some(s) = w.u32_in(&p, v, 0, 7 * 86_400)
    {
        out.delivery_test_every = (s > 0).then(|| Duration::from_secs(u64::from(s)));
    }
    if let Some(ages) = w.section(t, path, "max_age_s") {
        let ages_path = "assurance.max_age_s";
        for (key, v) in ages {
            let p = format!("{ages_path}.\"{key}\"");
            if !channel_name_ok(key) {
                w.error(
                    p,
                    "not a channel: relay:1 … relay:16, led, audio, mqtt, upstream, time, watchdog or storage",
                );
                continue;
            }
            if let Some(s) = w.u32_in(&p, v, 1, 400 * 86_400) {
                out.max_age
                    .insert(key.clone(), Duration::from_secs(u64::from(s)));
            }
        }
    }
    out.webhook = crate::webhook::section(w, t, base);
    out.drills = drills_section(w, t);
    w.unknown_keys(t, path, KEYS);
    out
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// The channels this configuration has, with what each can be proved by.
pub(crate) fn channels(cfg: &DaemonConfig) -> Vec<(Channel, Option<RelayProbe>)> {
    let a = &cfg.assurance;
    let mut out = Vec::new();
    for r in &cfg.settings.outputs.relays {
        if !r.enabled {
            continue;
        }
        let pins = cfg.hardware.relays.iter().find(|p| p.id == r.id);
        let readback = pins.is_some_and(|p| p.readback_pin.is_some());
        let probe = pins.map_or(RelayProbe::None, |p| p.probe);
        out.push((
            Channel::Relay {
                id: r.id,
                readback,
                probe,
            },
            Some(probe),
        ));
    }
    if cfg.hardware.led.is_some() && cfg.settings.outputs.led.enabled {
        out.push((Channel::Led, None));
    }
    if cfg.settings.outputs.audio.enabled {
        let capture = cfg.audio.capture_device.is_some();
        out.push((Channel::Audio { capture }, None));
    }
    if cfg.mqtt.enabled && cfg.settings.outputs.mqtt.enabled {
        out.push((
            Channel::Mqtt {
                bms_ack: cfg.mqtt.bms_ack,
                probe_every: delta(a.mqtt_probe_every),
            },
            None,
        ));
    }
    // Only a DM-D.S.S link that asks for VXSE42 and takes test telegrams receives JMA's
    // hourly delivery test; any other set-up names its interval or is not aged.
    let dmdata = cfg.links.iter().any(|l| {
        matches!(&l.kind, LinkKind::Dmdata { test, types, .. }
            if *test == crate::config::DmdataTest::Including
                && types.iter().any(|t| t == "VXSE42"))
    });
    let expected = a
        .delivery_test_every
        .or(dmdata.then_some(DMDATA_DELIVERY_TEST_EVERY));
    if let Some(every) = expected {
        out.push((
            Channel::Upstream {
                expected_every: delta(every),
            },
            None,
        ));
    }
    out.extend([
        (Channel::Time, None),
        (Channel::Watchdog, None),
        (Channel::Storage, None),
    ]);
    out
}

/// Each channel's policy: its defaults, the operator interval and any override.
pub(crate) fn policies(cfg: &DaemonConfig) -> Vec<ChannelPolicy> {
    channels(cfg)
        .iter()
        .map(|(c, _)| {
            let p = c
                .default_policy()
                .with_operator_max_age(delta(cfg.assurance.operator_max_age));
            match cfg.assurance.max_age.get(&c.name()) {
                Some(age) => p.with_max_age(delta(*age)),
                None => p,
            }
        })
        .collect()
}

/// The channels a settings change touched, by the keys that differ: each is probed as
/// soon as the change is in effect (a channel that cannot be probed waits for an
/// operator's test, which the settings page asks for).
pub(crate) fn touched_channels(old: &DaemonConfig, new: &DaemonConfig) -> Vec<String> {
    let relay_at = |cfg: &DaemonConfig, table: &str, i: usize| -> Option<u8> {
        match table {
            "outputs" => cfg.settings.outputs.relays.get(i).map(|r| r.id),
            _ => cfg.hardware.relays.get(i).map(|r| r.id),
        }
    };
    let all_relays = |out: &mut std::collections::BTreeSet<String>| {
        for r in old
            .settings
            .outputs
            .relays
            .iter()
            .chain(&new.settings.outputs.relays)
        {
            out.insert(format!("relay:{}", r.id));
        }
    };
    let mut out = std::collections::BTreeSet::new();
    for d in crate::settings_edit::diff(&old.text, &new.text) {
        let p = d.path.as_str();
        let indexed = |prefix: &str| -> Option<usize> {
            p.strip_prefix(prefix)?.split(']').next()?.parse().ok()
        };
        if p.starts_with("mqtt.") || p.starts_with("outputs.mqtt.") {
            out.insert("mqtt".to_owned());
        } else if p.starts_with("audio.") || p.starts_with("outputs.audio.") {
            out.insert("audio".to_owned());
        } else if p.starts_with("hardware.led.") || p.starts_with("outputs.led.") {
            out.insert("led".to_owned());
        } else if p.starts_with("links.") {
            out.insert("upstream".to_owned());
        } else if p == "hardware.backend" {
            all_relays(&mut out);
            out.insert("led".to_owned());
        } else if let Some(i) = indexed("outputs.relay[") {
            out.extend(relay_at(old, "outputs", i).map(|id| format!("relay:{id}")));
            out.extend(relay_at(new, "outputs", i).map(|id| format!("relay:{id}")));
        } else if let Some(i) = indexed("hardware.relay[") {
            out.extend(relay_at(old, "hardware", i).map(|id| format!("relay:{id}")));
            out.extend(relay_at(new, "hardware", i).map(|id| format!("relay:{id}")));
        }
    }
    // Only channels that exist now.
    let present: Vec<String> = channels(new).iter().map(|(c, _)| c.name()).collect();
    out.into_iter().filter(|c| present.contains(c)).collect()
}

/// A probe the schedule asks the core loop for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeRequest {
    /// The MQTT round trip (or BMS acknowledgement).
    Mqtt,
    /// A test pulse of a contact marked safe to pulse, read back.
    RelayPulse(u8),
    /// A read-back check of a released contact.
    RelayIdle(u8),
    /// The audio output's low-level probe tone.
    Audio,
}

impl ProbeRequest {
    /// The channel it proves.
    pub fn channel(&self) -> String {
        match self {
            ProbeRequest::Mqtt => "mqtt".into(),
            ProbeRequest::Audio => "audio".into(),
            ProbeRequest::RelayPulse(id) | ProbeRequest::RelayIdle(id) => format!("relay:{id}"),
        }
    }
}

/// What the task needs.
pub(crate) struct Wiring {
    pub(crate) ctx: Ctx,
    pub(crate) commands: mpsc::Sender<CoreCommand>,
    /// When the appliance first ran (its oldest stored configuration), else now.
    pub(crate) baseline: DateTime<Utc>,
}

struct Task {
    policies: Vec<ChannelPolicy>,
    /// Probes of the channels a settings change touched, run at the first chance.
    after_change: Vec<ProbeRequest>,
    /// When the task started.
    started: DateTime<Utc>,
    /// Where fault changes are notified, and the faults last notified.
    notify: Option<(crate::webhook::Notifier, Vec<String>)>,
    /// This appliance, in notifications.
    device_id: String,
    /// Scheduled drills and when each last ran.
    drills: Vec<(ScheduledDrill, Option<DateTime<Utc>>)>,
    /// (probe, its schedule, its last attempt).
    probes: Vec<(ProbeRequest, Schedule, Option<DateTime<Utc>>)>,
    /// Scheduled contact probes wait until then (`start_delay`).
    relays_from: DateTime<Utc>,
    /// Last time the continuous checks were recorded.
    monitored: Option<DateTime<Utc>>,
    w: Wiring,
}

/// Spawns the task (nothing when `[assurance] enabled = false`).
pub(crate) fn spawn(sup: &mut crate::supervisor::Supervisor, cfg: &DaemonConfig, w: Wiring) {
    if !cfg.assurance.enabled {
        tracing::warn!("delivery assurance is off: no output is probed or aged");
        return;
    }
    let started = now_utc();
    let status = w.ctx.status.borrow().clone();
    // A restart does not probe again what was proved a moment ago.
    let last_proof = |channel: &str, m: &str| {
        status
            .verification
            .get(channel)
            .and_then(|v| v.ok_by_method.get(m).copied())
    };
    let mut probes = Vec::new();
    if cfg.mqtt.enabled && cfg.settings.outputs.mqtt.enabled {
        let every = delta(cfg.assurance.mqtt_probe_every);
        probes.push((
            ProbeRequest::Mqtt,
            Schedule {
                every,
                window: None,
            },
            Some(started - every + FIRST_PROBE_AFTER.min(every)),
        ));
    }
    for (c, probe) in channels(cfg) {
        let Channel::Relay { id, .. } = c else {
            continue;
        };
        let (req, m) = match probe {
            Some(RelayProbe::Pulse) => (ProbeRequest::RelayPulse(id), method::READBACK),
            Some(RelayProbe::Idle) => (ProbeRequest::RelayIdle(id), method::READBACK_IDLE),
            _ => continue,
        };
        let schedule = Schedule {
            every: delta(cfg.assurance.relay_probe_every),
            window: cfg.assurance.relay_probe_window,
        };
        probes.push((req, schedule, last_proof(&c.name(), m)));
    }
    let changed = status.settings.changed_channels.clone();
    let after_change = probes
        .iter()
        .map(|(req, _, _)| *req)
        .filter(|req| changed.contains(&req.channel()))
        .collect();
    let notify = match &cfg.assurance.webhook {
        Some(hook) => match crate::webhook::spawn(sup, hook, w.ctx.events.clone()) {
            Ok(n) => Some((n, Vec::new())),
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "webhook not started: no notifications");
                None
            }
        },
        None => None,
    };
    if let Some(every) = cfg.assurance.audio_probe_every
        && cfg.settings.outputs.audio.enabled
        && cfg.audio.backend != crate::audio::AudioBackend::Null
    {
        let schedule = Schedule {
            every: delta(every),
            window: cfg.assurance.relay_probe_window,
        };
        probes.push((ProbeRequest::Audio, schedule, last_proof("audio", "device")));
    }
    let task = Task {
        drills: cfg
            .assurance
            .drills
            .iter()
            .map(|d| (d.clone(), None))
            .collect(),
        notify,
        device_id: cfg.mqtt.device_id_or_default(),
        policies: policies(cfg),
        after_change,
        started,
        relays_from: started + delta(cfg.assurance.start_delay),
        probes,
        monitored: None,
        w,
    };
    let cancel = sup.token();
    sup.spawn("assurance", async move {
        task.run(cancel).await;
        Ok(())
    });
}

impl Task {
    async fn run(mut self, cancel: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.step(now_utc());
        }
    }

    fn step(&mut self, now: DateTime<Utc>) {
        let (ready, busy, mqtt_up) = {
            let s = self.w.ctx.status.borrow();
            let up = s.outputs.get("mqtt").is_some_and(|h| h == "ok");
            (s.ready, s.alert_in_progress(), up)
        };
        if !ready {
            return;
        }
        self.monitor(now);
        // No probe while an alert is in progress: the outputs are the alarm's.
        if !busy {
            // What a settings change touched is probed first, whatever the schedule (MQTT
            // once the new connection is up, or after the first probe's grace).
            let mqtt_now = mqtt_up || now - self.started >= FIRST_PROBE_AFTER;
            let (now_due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.after_change)
                .into_iter()
                .partition(|r| *r != ProbeRequest::Mqtt || mqtt_now);
            self.after_change = later;
            for req in now_due {
                tracing::info!(output = %req.channel(), "probe after a settings change");
                if let Some(p) = self.probes.iter_mut().find(|(r, _, _)| *r == req) {
                    p.2 = Some(now);
                }
                if self.w.commands.try_send(CoreCommand::Probe(req)).is_err() {
                    tracing::warn!(output = %req.channel(), "probe not sent: the core loop's queue is full");
                }
            }
            let jst = now_jst();
            for (req, schedule, last) in &mut self.probes {
                let held = *req != ProbeRequest::Mqtt && now < self.relays_from;
                if !held && schedule.due(*last, jst) {
                    *last = Some(now);
                    tracing::info!(output = %req.channel(), "scheduled probe");
                    if self.w.commands.try_send(CoreCommand::Probe(*req)).is_err() {
                        tracing::warn!(output = %req.channel(), "scheduled probe not sent: the core loop's queue is full");
                    }
                }
            }
        }
        self.age(now);
        self.notify(now);
        self.scheduled_drills(now);
    }

    /// A scheduled drill whose time has come: started like one from the Tests page (the
    /// engine refuses it during a real alert or with drills disallowed; that is logged
    /// and audited), its start in the audit trail so its report names the schedule.
    fn scheduled_drills(&mut self, now: DateTime<Utc>) {
        let jst = eew_core::JstTime::from_datetime(now.fixed_offset());
        for (drill, last) in &mut self.drills {
            let Some(at) = drill.at.due(self.started, *last, jst) else {
                continue;
            };
            *last = Some(at);
            let (reply, answer) = tokio::sync::oneshot::channel();
            let command = eew_core::engine::Command::Drill(drill.spec);
            if self
                .w
                .commands
                .try_send(CoreCommand::Engine(command, reply))
                .is_err()
            {
                tracing::error!("scheduled drill not started: the core loop's queue is full");
                continue;
            }
            let history = self.w.ctx.history.clone();
            let class = drill.spec.class;
            tokio::spawn(async move {
                let decisions = answer.await.unwrap_or_default();
                let started = decisions.iter().find(|d| d.outcome == "drill_started");
                let (action, detail) = match started.and_then(|d| d.event_id.clone()) {
                    Some(id) => {
                        tracing::info!(event_id = %id, "scheduled drill started");
                        (
                            "drill_started",
                            format!("scheduled drill, class {} (event {id})", class.as_str()),
                        )
                    }
                    None => {
                        let why: Vec<String> = decisions
                            .iter()
                            .map(|d| d.detail.unwrap_or(d.outcome).to_owned())
                            .collect();
                        tracing::warn!(why = %why.join(","), "scheduled drill refused");
                        (
                            "drill_refused",
                            format!("scheduled drill: {}", why.join(", ")),
                        )
                    }
                };
                if let Some(h) = history {
                    let _ = h.try_send(Record::Audit(crate::store::AuditRecord {
                        at: now_utc(),
                        who: "schedule".to_owned(),
                        action: action.to_owned(),
                        detail: Some(detail),
                    }));
                }
            });
        }
    }

    /// Every change of the fault set, POSTed (after the start-up grace: links connect).
    fn notify(&mut self, now: DateTime<Utc>) {
        if now - self.started < FIRST_PROBE_AFTER {
            return;
        }
        let Some((notifier, last)) = self.notify.as_mut() else {
            return;
        };
        let status = self.w.ctx.status.borrow().clone();
        let faults = status.faults();
        if &faults == last {
            return;
        }
        let raised: Vec<&String> = faults.iter().filter(|f| !last.contains(f)).collect();
        let cleared: Vec<&String> = last.iter().filter(|f| !faults.contains(f)).collect();
        notifier.send(json!({
            "device_id": self.device_id,
            "at": now.to_rfc3339(),
            "ok": faults.is_empty(),
            "raised": raised,
            "cleared": cleared,
            "faults": faults,
            "summary": status.summary(),
            "verification_overdue": status.verification_overdue,
        }));
        *last = faults;
    }

    /// The continuous checks (time, watchdog, storage) recorded as evidence hourly.
    fn monitor(&mut self, now: DateTime<Utc>) {
        if self
            .monitored
            .is_some_and(|t| now >= t && now - t < eew_core::assurance::MONITOR_EVERY)
        {
            return;
        }
        self.monitored = Some(now);
        let s = self.w.ctx.status.borrow().clone();
        let checks = [
            (
                "time",
                !s.time.fault,
                if s.time.fault {
                    format!("time fault: {}", s.time.detail.clone().unwrap_or_default())
                } else {
                    "the clock is synchronised within its limit".to_owned()
                },
            ),
            (
                "watchdog",
                s.watchdog.progressing,
                if s.watchdog.progressing {
                    format!(
                        "the core loop is making progress (systemd watchdog {}, hardware watchdog {})",
                        on_off(s.watchdog.systemd),
                        on_off(s.watchdog.hardware)
                    )
                } else {
                    "the core loop is not making progress".to_owned()
                },
            ),
            (
                "storage",
                s.storage.ok,
                if s.storage.ok {
                    format!(
                        "history is being written ({} records dropped)",
                        s.storage.dropped
                    )
                } else {
                    format!("history: {}", s.storage.detail.clone().unwrap_or_default())
                },
            ),
        ];
        // Only health is recorded: ill health is already its own fault (time, storage,
        // the watchdog), and a missing proof ages the channel like any other.
        for (channel, ok, detail) in checks.into_iter().filter(|(_, ok, _)| *ok) {
            self.w.ctx.evidence(Proof {
                channel: channel.to_owned(),
                source: "continuous",
                method: method::MONITOR,
                ok,
                measurement_ms: None,
                detail,
            });
        }
    }

    /// Every channel aged against its policy; changes go to the status model, the log,
    /// the event lines and history.
    fn age(&mut self, now: DateTime<Utc>) {
        let status = self.w.ctx.status.borrow().clone();
        let proofs: BTreeMap<String, BTreeMap<String, DateTime<Utc>>> = status
            .verification
            .iter()
            .map(|(k, v)| (k.clone(), v.ok_by_method.clone()))
            .collect();
        let (overdue, _) =
            eew_core::assurance::overdue(&self.policies, &proofs, self.w.baseline, now);
        let standings: Vec<_> = self
            .policies
            .iter()
            .map(|p| {
                let empty = BTreeMap::new();
                eew_core::assurance::assess(
                    p,
                    proofs.get(&p.channel).unwrap_or(&empty),
                    self.w.baseline,
                    now,
                )
            })
            .collect();
        let before = status.verification_overdue.clone();
        self.w.ctx.status.send_if_modified(|s| {
            let mut changed = false;
            for st in &standings {
                let v = s.verification.entry(st.channel.clone()).or_default();
                if v.due_at != Some(st.due_at) {
                    v.due_at = Some(st.due_at);
                    changed = true;
                }
            }
            if s.verification_overdue != overdue {
                s.verification_overdue.clone_from(&overdue);
                changed = true;
            }
            changed
        });
        for ch in overdue.iter().filter(|c| !before.contains(c)) {
            let st = standings.iter().find(|s| &s.channel == ch);
            let detail = match st.and_then(|s| s.proved.as_ref()) {
                Some((at, m)) => format!(
                    "{ch}: last seen working {} ({m}); trusted until {}",
                    at.to_rfc3339(),
                    st.map(|s| s.due_at.to_rfc3339()).unwrap_or_default()
                ),
                None => format!(
                    "{ch}: never seen working since {}",
                    self.w.baseline.to_rfc3339()
                ),
            };
            tracing::error!(output = %ch, detail = %detail, "verification overdue: the output is not trusted until it is proved again");
            self.fault(ch, true, detail);
        }
        for ch in before.iter().filter(|c| !overdue.contains(c)) {
            tracing::info!(output = %ch, "verification no longer overdue");
            self.fault(ch, false, format!("{ch}: proved again"));
        }
    }

    fn fault(&self, channel: &str, active: bool, detail: String) {
        let fault = format!("verification_overdue:{channel}");
        if let Some(p) = &self.w.ctx.events {
            p.send(json!({
                "type": "fault", "fault": fault, "active": active, "detail": detail,
                "at": now_utc().to_rfc3339(),
            }));
        }
        if let Some(h) = &self.w.ctx.history {
            let _ = h.try_send(Record::Fault(FaultRecord {
                at: now_utc(),
                kind: "verification_overdue".to_owned(),
                active,
                detail: Some(detail),
            }));
        }
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;

    const BASE: &str = "[site]\nlat = 35.68\nlon = 139.76\narv400 = 1.0\narea_code = \"350\"\n\
        [[outputs.relay]]\nid = 1\nname = \"elevators\"\nmin_class = \"4\"\n\
        [[outputs.relay]]\nid = 2\nname = \"doors\"\nmin_class = \"4\"\n\
        [[links.jma_tcp]]\nname = \"primary\"\nhost = \"127.0.0.1\"\nport = 9\n";

    fn parse(extra: &str) -> Result<DaemonConfig, Vec<eew_core::settings::SettingsError>> {
        crate::config::parse_daemon(&format!("{BASE}{extra}"), Path::new("."))
    }

    use std::path::Path;

    fn errors(extra: &str) -> Vec<(String, String)> {
        parse(extra)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.path, e.message))
            .collect()
    }

    #[test]
    fn defaults_probe_mqtt_every_five_minutes_and_contacts_daily_at_three() {
        let cfg = parse("").unwrap();
        let a = &cfg.assurance;
        assert!(a.enabled);
        assert_eq!(a.mqtt_probe_every, Duration::from_secs(300));
        assert_eq!(a.relay_probe_every, Duration::from_secs(86_400));
        assert_eq!(a.relay_probe_window, Window::parse("03:00-04:00"));
        assert_eq!(a.operator_max_age, Duration::from_secs(31 * 86_400));
        assert_eq!(
            a.start_delay,
            Duration::from_secs(300),
            "a restart operates nothing at once"
        );
    }

    #[test]
    fn every_bad_value_is_reported_at_its_path() {
        let e = errors(
            "[assurance]\nmqtt_probe_every_s = 1\nrelay_probe_window = \"3am\"\n\
             operator_max_age_days = 0\nspeed = 1\n[assurance.max_age_s]\n\"relay:x\" = 5\nled = 0\n",
        );
        let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        for p in [
            "assurance.mqtt_probe_every_s",
            "assurance.relay_probe_window",
            "assurance.operator_max_age_days",
            "assurance.speed",
            "assurance.max_age_s.\"relay:x\"",
            "assurance.max_age_s.\"led\"",
        ] {
            assert!(paths.contains(&p), "{p} in {e:#?}");
        }
    }

    #[test]
    fn scheduled_drills_are_checked_at_their_paths() {
        let cfg = parse(
            "[assurance]\n[[assurance.drill]]\nat = \"11-05 10:00\"\n\
             [[assurance.drill]]\nat = \"2027-06-01T10:00:00+09:00\"\nclass = \"6-\"\nseconds = 60\n",
        )
        .unwrap();
        let d = &cfg.assurance.drills;
        assert_eq!(d.len(), 2);
        assert_eq!(
            d[0].spec.class,
            eew_core::Intensity::FiveLower,
            "5- by default"
        );
        assert_eq!(d[0].spec.seconds, 30);
        assert!(matches!(
            d[0].at,
            DrillTime::Yearly {
                month: 11,
                day: 5,
                hour: 10,
                minute: 0
            }
        ));
        assert_eq!(d[1].spec.class, eew_core::Intensity::SixLower);
        let e = errors(
            "[assurance]\n[[assurance.drill]]\nat = \"11-31 10:00\"\nclass = \"5\"\nseconds = 2\nloud = true\n\
             [[assurance.drill]]\nclass = \"4\"\n",
        );
        let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        for p in [
            "assurance.drill[0].at",
            "assurance.drill[0].class",
            "assurance.drill[0].seconds",
            "assurance.drill[0].loud",
            "assurance.drill[1].at",
        ] {
            assert!(paths.contains(&p), "{p} in {e:#?}");
        }
    }

    #[test]
    fn a_probe_that_reads_back_needs_a_read_back() {
        let e = errors(
            "[hardware]\n[[hardware.relay]]\nid = 1\npin = 5\nprobe = \"pulse\"\n\
             [[hardware.relay]]\nid = 2\npin = 6\n",
        );
        assert!(
            e.iter()
                .any(|(p, m)| p == "hardware.relay[0].probe" && m.contains("readback_pin")),
            "{e:#?}"
        );
    }

    #[test]
    fn a_change_touches_the_channels_whose_keys_differ() {
        let hw = "[hardware]\n[[hardware.relay]]\nid = 1\npin = 5\nreadback_pin = 24\n\
                  [[hardware.relay]]\nid = 2\npin = 6\n[mqtt]\nport = 1883\n";
        let old = parse(hw).unwrap();
        let same = parse(hw).unwrap();
        assert!(touched_channels(&old, &same).is_empty());
        // relay 2's threshold (outputs.relay[1]) and relay 1's read-back timeout
        // (hardware.relay[0]) and the broker's port.
        let changed = format!("{BASE}{hw}")
            .replacen(
                "min_class = \"4\"\n[[links",
                "min_class = \"5-\"\n[[links",
                1,
            )
            .replace(
                "readback_pin = 24\n",
                "readback_pin = 24\nreadback_timeout_ms = 300\n",
            )
            .replace("port = 1883", "port = 1884");
        let new = crate::config::parse_daemon(&changed, Path::new(".")).unwrap();
        assert_eq!(
            touched_channels(&old, &new),
            ["mqtt", "relay:1", "relay:2"],
            "{:?}",
            crate::settings_edit::diff(&old.text, &new.text)
        );
    }

    #[test]
    fn delivery_tests_are_expected_only_from_a_link_that_receives_them() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("eewgate-assurance-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("dmdata.key");
        std::fs::write(&key, "AKe.example-key\n").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = |extra: &str| {
            format!("[[links.dmdata]]\nname = \"dmdata\"\napi_key_file = {key:?}\n{extra}")
        };
        let upstream = |extra: &str| {
            let cfg = parse(&link(extra)).unwrap();
            policies(&cfg).into_iter().find(|p| p.channel == "upstream")
        };
        assert_eq!(
            upstream(""),
            None,
            "the default types do not include VXSE42"
        );
        assert_eq!(
            upstream("types = [\"VXSE42\", \"VXSE45\"]\n"),
            None,
            "test telegrams are not asked for"
        );
        let p = upstream("types = [\"VXSE42\", \"VXSE45\"]\ntest = \"including\"\n")
            .expect("hourly delivery tests are expected");
        assert_eq!(
            p.accepts,
            vec![("delivery_test".to_owned(), TimeDelta::hours(3))]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn policies_follow_what_each_contact_can_be_proved_by() {
        let cfg = parse(
            "[hardware]\n[[hardware.relay]]\nid = 1\npin = 5\nreadback_pin = 24\n\
             [[hardware.relay]]\nid = 2\npin = 6\n\
             [mqtt]\nbms_ack = true\n\
             [assurance]\noperator_max_age_days = 7\nmqtt_probe_every_s = 60\n\
             [assurance.max_age_s]\nstorage = 600\n",
        )
        .unwrap();
        let p = policies(&cfg);
        let get = |c: &str| p.iter().find(|x| x.channel == c).unwrap().clone();
        let r1 = get("relay:1");
        let methods: Vec<&str> = r1.accepts.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(
            methods,
            ["operator", "readback", "readback_idle"],
            "idle is the default probe with a read-back"
        );
        assert_eq!(r1.accepts[0].1, TimeDelta::days(7));
        let r2 = get("relay:2");
        assert_eq!(
            r2.accepts,
            vec![("operator".to_owned(), TimeDelta::days(7))]
        );
        assert_eq!(
            get("mqtt").accepts,
            vec![("bms_ack".to_owned(), TimeDelta::minutes(3))]
        );
        assert_eq!(
            get("storage").accepts,
            vec![("monitor".to_owned(), TimeDelta::minutes(10))]
        );
        assert!(
            p.iter().all(|x| x.channel != "upstream"),
            "no DM-D.S.S link, no delivery-test age"
        );
        // The engine speaks by default: an audio output left on the null sink ages like
        // any other and becomes overdue unless someone confirms it is heard.
        assert_eq!(
            get("audio").accepts,
            vec![("operator".to_owned(), TimeDelta::days(7))]
        );
    }
}
