//! The composition root: `eewgate run` builds every subsystem here, names and supervises
//! every task, tells systemd when it is ready and whether it is alive, and shuts down
//! within a bound.
//!
//! ```text
//! links ──LinkEvent──▶ core loop: parse → merge (first copy wins) → engine.step ──Action──▶ outputs
//!                          │  silence per link, time quality, deadlines          (own task, bounded queue)
//!                          ├──▶ history (own task, bounded queue, never awaited)
//!                          └──▶ status (watch) ──▶ sd_notify STATUS=, web UI, MQTT, LED
//! ```
//!
//! The core loop never awaits an output or the store: both are fed with `try_send`, and a
//! full queue is counted and raised, never waited on.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eew_core::engine::{Action, Command, Decision, Engine, Input, OutputId};
use eew_core::{InfoType, JstTime, Report, Status as ReportStatus};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{DaemonConfig, LinkConfig, LinkKind};
use crate::inputs::{LinkEvent, Received};
use crate::status::{LinkStatus, Status};
use crate::store::{
    FaultRecord, HistoryWriter, LinkRecord, LinkState, Record, Store, StoreHealth, StoreOptions,
    TelegramRecord, WriterOptions,
};
use crate::supervisor::{Outcome, Supervisor};
use crate::system::clock::{now_jst, now_utc};
use crate::system::notify::Notifier;
use crate::system::{timesync, watchdog};

/// Capacity of the queue from all links to the core loop.
const LINK_QUEUE: usize = 1024;
/// Capacity of the queue from the core loop to the outputs.
const OUTPUT_QUEUE: usize = 1024;
/// The core loop wakes at least this often (silence checks, watchdog progress).
const CORE_PERIOD: Duration = Duration::from_millis(250);
/// How long the merger remembers which link delivered a report first.
const MERGE_MEMORY: Duration = Duration::from_secs(600);
/// At most this many reports are remembered by the merger.
const MERGE_MAX: usize = 4096;

/// Capacity of the queue of operator commands to the core loop.
const COMMAND_QUEUE: usize = 64;

/// An operator's request to the core loop (the web UI's buttons and drills).
#[derive(Debug)]
pub enum CoreCommand {
    /// Silence, reset or a synthetic drill; the engine's decisions are sent back.
    Engine(Command, tokio::sync::oneshot::Sender<Vec<Decision>>),
    /// One report of a recorded event replayed as a drill, its times already shifted to
    /// "as if now" (`crate::drills::plan`).
    DrillReport(Box<Report>),
    /// Evidence from outside the outputs (an operator's confirmation of a self-test),
    /// recorded like the outputs' own.
    Evidence(crate::outputs::Proof),
    /// A probe delivery assurance's schedule asks for (`crate::assurance`).
    Probe(crate::assurance::ProbeRequest),
}

/// Options of `eewgate run` beyond the settings file.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Print every action, telegram verdict, link change and fault on standard output as
    /// JSON Lines (tagged by `type`), for integrators and the system tests.
    pub events_stdout: bool,
    /// Test hook: the core loop stops making progress after this long (proves that a stuck
    /// loop lets the watchdog fire). Set by `EEWGATE_TEST_STALL_CORE_AFTER_MS`.
    pub stall_core_after: Option<Duration>,
    /// Test hook: sim input pins stuck at a level (a broken read-back wire).
    pub sim_stuck_inputs: Vec<(u8, bool)>,
    /// Print the events for people instead of as JSON (`eewgate demo`): each event line is
    /// turned into text by this function (`None` skips it). Wins over `events_stdout`.
    pub narrate: Option<fn(&serde_json::Value) -> Option<String>>,
    /// Stop cleanly after this long (`eewgate demo`).
    pub stop_after: Option<Duration>,
    /// The settings file the daemon was started from: the web UI edits it, and a saved
    /// change restarts the daemon's tasks with it. `None`: the settings cannot be edited.
    pub config_path: Option<std::path::PathBuf>,
    /// Where `health.json` and the first-boot `setup-code` are kept for the programs
    /// beside the daemon (`/run/eewgate` under systemd); `None`: nowhere.
    pub runtime_dir: Option<std::path::PathBuf>,
}

impl RunOptions {
    /// Reads the test hooks from the environment.
    pub fn with_env_hooks(mut self) -> Self {
        self.stall_core_after = std::env::var("EEWGATE_TEST_STALL_CORE_AFTER_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis);
        // "24=0,25=1": pin=level pairs.
        self.sim_stuck_inputs = std::env::var("EEWGATE_TEST_SIM_STUCK_INPUTS")
            .ok()
            .map(|v| {
                v.split(',')
                    .filter_map(|pair| {
                        let (pin, level) = pair.split_once('=')?;
                        Some((pin.trim().parse().ok()?, level.trim() == "1"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        self
    }
}

/// Runs the daemon until SIGTERM/SIGINT or a fatal failure.
pub fn run(cfg: DaemonConfig, opts: RunOptions) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("eewgate")
        .build()?;
    runtime.block_on(run_async(cfg, opts))
}

/// Monotonic milliseconds since the daemon started, shared as a progress counter.
#[derive(Clone, Debug)]
struct Progress {
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Progress {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }
    fn beat(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }
    fn age(&self) -> Duration {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// What lives for the whole process, across the restarts that apply saved settings.
struct Process {
    stop: CancellationToken,
    notifier: Arc<Notifier>,
    events: Option<EventPrinter>,
    started_at: chrono::DateTime<chrono::Utc>,
    settings: Arc<crate::webui::SettingsFile>,
    webui: Option<crate::webui::Host>,
}

async fn run_async(mut cfg: DaemonConfig, opts: RunOptions) -> anyhow::Result<ExitCode> {
    let stop = CancellationToken::new();
    // Process-wide tasks: signals and the planned stop. Registered before anything else so
    // no SIGTERM is missed, even between two starts of the daemon's tasks.
    let mut background = tokio::task::JoinSet::new();
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let stop = stop.clone();
        background.spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = int.recv() => tracing::info!("SIGINT: shutting down"),
                () = stop.cancelled() => {}
            }
            stop.cancel();
        });
    }
    if let Some(after) = opts.stop_after {
        let stop = stop.clone();
        background.spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(after) => {
                    tracing::info!(after_s = after.as_secs(), "planned stop");
                    stop.cancel();
                }
                () = stop.cancelled() => {}
            }
        });
    }
    let events = match opts.narrate {
        Some(f) => Some(EventPrinter::spawn(f)),
        None => opts
            .events_stdout
            .then(|| EventPrinter::spawn(|v| Some(v.to_string()))),
    };
    let mut process = Process {
        stop: stop.clone(),
        notifier: Arc::new(Notifier::from_env()),
        events,
        started_at: now_utc(),
        settings: Arc::new(crate::webui::SettingsFile::new(opts.config_path.clone())),
        webui: None,
    };
    // The settings of the tasks before a saved change, to probe what it touched.
    let mut previous: Option<DaemonConfig> = None;
    let code = loop {
        // Subscribed before the file is read: a save made while these tasks start is
        // seen by them and applied next.
        let saved = process.settings.subscribe();
        let (outcome, reload) =
            run_generation(&cfg, previous.as_ref(), &opts, &mut process, saved).await?;
        if !reload || stop.is_cancelled() {
            break exit_code(outcome);
        }
        let path = opts
            .config_path
            .as_deref()
            .expect("a reload is only requested when a settings file can be edited");
        match crate::config::load_daemon(path) {
            Ok(new) => {
                tracing::info!(path = %path.display(), "applying the saved settings");
                previous = Some(std::mem::replace(&mut cfg, new));
            }
            Err(errors) => {
                // Checked before it was saved, so this is an outside edit or a secret
                // file that went away: keep what runs, loudly.
                for e in &errors {
                    tracing::error!(problem = %e, "saved settings invalid; the previous settings stay in effect");
                }
            }
        }
    };
    // The web UI ends last: the page that asked for the stop sees it happen.
    process.webui = None;
    background.abort_all();
    // A stopped daemon has no health to report and no setup to offer.
    if let Some(dir) = &opts.runtime_dir {
        use crate::system::runtime_dir::{HEALTH_FILE, SETUP_CODE_FILE, remove};
        for name in [HEALTH_FILE, SETUP_CODE_FILE] {
            if let Err(e) = remove(dir, name) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove {name}");
            }
        }
    }
    process.notifier.notify("STOPPING=1");
    if let Some(p) = &process.events {
        p.flush(Duration::from_secs(1));
    }
    Ok(code)
}

fn exit_code(outcome: Outcome) -> ExitCode {
    match outcome {
        Outcome::Clean => {
            tracing::info!("stopped cleanly");
            ExitCode::SUCCESS
        }
        Outcome::Timeout(stuck) => {
            tracing::error!(stuck = ?stuck, "shutdown exceeded its bound; tasks abandoned");
            ExitCode::FAILURE
        }
        Outcome::Failed { task, error } => {
            tracing::error!(task = %task, error = %error, "fatal task failure");
            eprintln!("eewgate: task {task} failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// One start of every task of the daemon with `cfg`, until the process stops (`false`)
/// or a saved settings change is to be applied (`true`; only once no alert is in
/// progress, and every contact was released on the way out).
async fn run_generation(
    cfg: &DaemonConfig,
    previous: Option<&DaemonConfig>,
    opts: &RunOptions,
    process: &mut Process,
    mut saved: watch::Receiver<u64>,
) -> anyhow::Result<(Outcome, bool)> {
    let cancel = process.stop.child_token();
    let mut sup = Supervisor::new(cancel.clone());
    let notifier = Arc::clone(&process.notifier);
    let events = process.events.clone();
    let (status_tx, status_rx) = watch::channel(Status {
        started_at: Some(process.started_at),
        settings: crate::status::SettingsStatus {
            revision: crate::settings_edit::revision(&cfg.text),
            applied_at: Some(now_utc()),
            pending: None,
            changed_channels: previous
                .map(|p| crate::assurance::touched_channels(p, cfg))
                .unwrap_or_default(),
        },
        output_names: cfg
            .settings
            .outputs
            .relays
            .iter()
            .map(|r| (format!("relay:{}", r.id), r.name.clone()))
            .collect(),
        ..Status::default()
    });
    let progress = Progress::new();

    for note in &cfg.notes {
        tracing::warn!("settings: {note}");
    }
    // Remembered before any contact can close, for an `eewgate failsafe` after a crash
    // whose settings file was edited since (every contact of the previous start was
    // released on its way out).
    if let Some(dir) = crate::run_cmd::state_dir(None)
        && let Err(e) = crate::outputs::remember_pins(&cfg.hardware, &dir)
    {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot remember the relay pins for failsafe");
    }

    // History: opened first so the rest can record; a storage problem degrades history
    // (a fault on the status model) and never stops the alarms.
    let (history, first_ran) = open_history(cfg, &mut sup, &status_tx, events.as_ref()).await;

    // Links.
    let (link_tx, link_rx) = mpsc::channel::<LinkEvent>(LINK_QUEUE);
    for link in &cfg.links {
        spawn_link(&mut sup, link, link_tx.clone());
    }
    drop(link_tx);

    // Outputs: relays and the LED on pins, each its own task and queue; every relay pin
    // is claimed at its released level here, before READY, and released again when
    // `failsafe` drops (every exit path). Audio and MQTT are logged and printed.
    let sim = crate::hw::sim::SimBoard::new();
    if let Some(p) = &events {
        let p = p.clone();
        sim.set_listener(move |c| {
            p.send(json!({
                "type": "pin", "pin": c.pin, "level": c.level, "output": &c.output,
                "at": c.at.to_rfc3339(),
            }));
        });
    }
    if let (crate::config::HardwareBackend::Sim, Some(f)) =
        (cfg.hardware.backend, &cfg.hardware.sim_state_file)
    {
        sim.persist_to(f)?;
    }
    let backend = crate::hw::open(cfg.hardware.backend, &sim)?;
    let crate::outputs::Hardware {
        failsafe,
        relays,
        led,
    } = crate::outputs::claim(&cfg.hardware, backend.as_ref(), &sim)?;
    for (pin, level) in &opts.sim_stuck_inputs {
        sim.stick(*pin, Some(*level));
    }
    let (out_tx, out_rx) = mpsc::channel::<Action>(OUTPUT_QUEUE);
    {
        let cancel = sup.token();
        let events = events.clone();
        sup.spawn("outputs", outputs_task(out_rx, events, cancel));
    }
    let ctx = crate::outputs::Ctx {
        events: events.clone(),
        status: status_tx.clone(),
        history: history.clone(),
        cancel: sup.token(),
    };
    // Audio and MQTT: each its own task and queue too; a sound card or broker that is
    // missing is an output fault on the status model, never a reason not to start.
    let (audio_tx, audio_probe) = crate::audio::spawn(&mut sup, &cfg.audio, &ctx)?;
    let mqtt_tx = crate::mqtt::spawn(&mut sup, &cfg.mqtt, &ctx)?;
    let router = crate::outputs::spawn(&mut sup, relays, led, &ctx, out_tx)
        .with_audio(audio_tx, audio_probe)
        .with_mqtt(mqtt_tx, cfg.mqtt.enabled);

    // The web UI reads the status model and history and audits into history; it starts
    // after both exist and its failures never stop the daemon (see `crate::webui`).
    let webui_history = history.clone();

    // The core loop.
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    let (command_tx, command_rx) = mpsc::channel::<CoreCommand>(COMMAND_QUEUE);
    {
        let core = Core::new(
            cfg,
            status_tx.clone(),
            router,
            events.clone(),
            progress.clone(),
            history,
        )
        .with_evidence(ctx.clone());
        let cancel = sup.token();
        let stall = opts.stall_core_after;
        sup.spawn(
            "core",
            core.run(link_rx, command_rx, cancel, ready_tx, stall),
        );
    }

    // Delivery assurance: the probe schedule and the ageing of every channel's evidence.
    crate::assurance::spawn(
        &mut sup,
        cfg,
        crate::assurance::Wiring {
            ctx: ctx.clone(),
            commands: command_tx.clone(),
            baseline: first_ran.unwrap_or_else(now_utc),
        },
    );

    // The health file beside the daemon (rewritten by each start of the tasks).
    if let Some(dir) = &opts.runtime_dir {
        sup.spawn(
            "runtime-health",
            crate::system::runtime_dir::health_task(dir.clone(), status_rx.clone(), sup.token()),
        );
    }

    // A saved settings change: applied by starting everything again with the new file,
    // but never while an alert is in progress (docs/adr/0011-web-ui.md).
    let reload = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let cancel = sup.token();
        let reload = Arc::clone(&reload);
        let mut status_rx = status_rx.clone();
        let status_tx = status_tx.clone();
        let events = events.clone();
        saved.borrow_and_update();
        sup.spawn("settings", async move {
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                changed = saved.changed() => if changed.is_err() {
                    cancel.cancelled().await;
                    return Ok(());
                },
            }
            loop {
                if !status_rx.borrow_and_update().alert_in_progress() {
                    break;
                }
                // A stable code; the UI words it in its language.
                let why = "waiting_for_alert_end";
                status_tx.send_if_modified(|s| {
                    let changed = s.settings.pending.as_deref() != Some(why);
                    s.settings.pending = Some(why.to_owned());
                    changed
                });
                tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    _ = status_rx.changed() => {}
                }
            }
            tracing::info!("restarting the daemon's tasks with the saved settings");
            if let Some(p) = &events {
                p.send(json!({"type": "settings", "state": "applying"}));
            }
            reload.store(true, Ordering::SeqCst);
            cancel.cancel();
            Ok(())
        });
    }

    if cfg.webui.enabled || process.webui.is_some() {
        let wiring = crate::webui::Wiring {
            cfg: &cfg.webui,
            db: &cfg.storage.path,
            status: status_rx.clone(),
            status_tx: &status_tx,
            history: webui_history,
            events: events.as_ref(),
            settings: &process.settings,
            commands: command_tx,
            runtime_dir: opts.runtime_dir.as_deref(),
        };
        crate::webui::attach(&mut process.webui, &mut sup, wiring).await;
    }

    // Liveness: systemd watchdog and/or the hardware watchdog, and STATUS= lines. Started
    // after the web UI is attached, so READY=1 means its setup code (if any) is out too.
    {
        let cancel = sup.token();
        let notifier = notifier.clone();
        let hw = cfg.daemon.hardware_watchdog.clone();
        let status_rx = status_rx.clone();
        let progress = progress.clone();
        let status_tx = status_tx.clone();
        sup.spawn(
            "liveness",
            liveness_task(
                notifier, hw, status_rx, status_tx, progress, ready_rx, cancel,
            ),
        );
    }

    tracing::info!(links = cfg.links.len(), "eewgate started");
    let outcome = sup.run(cfg.daemon.shutdown_timeout).await;
    // Every relay released before anything else happens on the way out.
    drop(failsafe);
    let reload = reload.load(Ordering::SeqCst) && matches!(outcome, Outcome::Clean);
    if reload {
        notifier.notify("RELOADING=1\nSTATUS=applying the saved settings");
    }
    Ok((outcome, reload))
}

async fn open_history(
    cfg: &DaemonConfig,
    sup: &mut Supervisor,
    status: &watch::Sender<Status>,
    events: Option<&EventPrinter>,
) -> (Option<HistoryWriter>, Option<chrono::DateTime<chrono::Utc>>) {
    let path = &cfg.storage.path;
    let store = match Store::open_or_quarantine(path, &StoreOptions::default(), now_utc()).await {
        Ok((store, quarantined)) => {
            if let Some(moved) = quarantined {
                tracing::error!(path = %path.display(), moved_to = %moved.display(), "history database was corrupt: moved aside, starting afresh");
            }
            store
        }
        Err(err) => {
            tracing::error!(path = %path.display(), error = %err, "history unavailable: alarms still run, nothing is recorded");
            let detail = format!("cannot open {}: {err}", path.display());
            if let Some(p) = events {
                p.send(
                    json!({"type": "fault", "fault": "storage", "active": true, "detail": detail}),
                );
            }
            status.send_modify(|s| {
                s.storage.ok = false;
                s.storage.detail = Some(detail);
            });
            return (None, None);
        }
    };
    // Healthy from here: the LED, started next, must not flash a storage fault first.
    status.send_modify(|s| s.storage.ok = true);
    restore_verification(&store, status).await;
    let first_ran = match store.first_config_at().await {
        Ok(at) => at,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read when the appliance first ran: unproved channels are counted from now");
            None
        }
    };
    let (writer, task) = HistoryWriter::new(store.clone(), WriterOptions::default());
    let cancel = sup.token();
    sup.spawn("history", async move {
        task.run(cancel).await;
        Ok(())
    });
    let retention = Duration::from_secs(u64::from(cfg.storage.retention_days) * 86_400);
    let cancel = sup.token();
    sup.spawn("retention", async move {
        crate::store::run_retention(store, retention, cancel).await;
        Ok(())
    });
    let _ = writer.try_send(Record::Config {
        at: now_utc(),
        text: cfg.text.clone(),
    });
    (Some(writer), first_ran)
}

/// Each channel's latest evidence from history onto the status model: a proof's age
/// must survive restarts, or a restart would make an unproved output look fresh.
async fn restore_verification(store: &Store, status: &watch::Sender<Status>) {
    let (summary, mut by_method) = match (
        store.evidence_summary().await,
        store.evidence_ok_by_method().await,
    ) {
        (Ok(s), Ok(m)) => (s, m),
        (Err(err), _) | (_, Err(err)) => {
            tracing::warn!(error = %err, "cannot read the evidence history: every channel starts unproved");
            return;
        }
    };
    let view = |r: crate::store::EvidenceRow| crate::status::Evidence {
        at: r.at,
        source: r.source,
        method: r.method,
        ok: r.ok,
        measurement_ms: r.measurement_ms,
        detail: r.detail,
    };
    status.send_modify(|s| {
        for (channel, sum) in summary {
            let v = crate::status::Verification {
                last_ok_at: sum.last_ok.as_ref().map(|r| r.at),
                last_ok_method: sum.last_ok.map(|r| r.method),
                last: Some(view(sum.last)),
                ok_by_method: by_method.remove(&channel).unwrap_or_default(),
                due_at: None,
            };
            s.verification.insert(channel, v);
        }
    });
}

fn spawn_link(sup: &mut Supervisor, link: &LinkConfig, tx: mpsc::Sender<LinkEvent>) {
    let cancel = sup.token();
    let name: Arc<str> = Arc::from(link.name.as_str());
    let task = format!("link:{}", link.name);
    match &link.kind {
        LinkKind::Replay {
            files,
            interval_ms,
            at_original_times,
            repeat,
        } => {
            let cfg = crate::inputs::replay::ReplayConfig {
                name,
                files: files.clone(),
                interval: Duration::from_millis(u64::from(*interval_ms)),
                at_original_times: *at_original_times,
                repeat: *repeat,
            };
            sup.spawn(task, crate::inputs::replay::run(cfg, tx, cancel));
        }
        LinkKind::JmaTcp { .. } | LinkKind::JmaSerial { .. } => {
            sup.spawn(
                task,
                crate::inputs::jma_stream::run_link(link.clone(), tx, cancel),
            );
        }
        LinkKind::Dmdata { .. } => {
            sup.spawn(
                task,
                crate::inputs::dmdata::run_link(link.clone(), tx, cancel),
            );
        }
    }
}

/// The key under which copies of one report from several links are the same report.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct MergeKey {
    status: u8,
    event_id: String,
    serial: u32,
    info: u8,
}

impl MergeKey {
    fn of(r: &Report) -> Self {
        Self {
            status: match r.status {
                ReportStatus::Normal => 0,
                ReportStatus::Training => 1,
                ReportStatus::Test => 2,
            },
            event_id: r.event_id.as_str().to_owned(),
            serial: r.serial,
            info: match r.info_type {
                InfoType::Issued => 0,
                InfoType::Correction => 1,
                InfoType::Cancel => 2,
            },
        }
    }
}

/// First copy wins; later copies are measured against it.
#[derive(Debug, Default)]
struct Merge {
    first: HashMap<MergeKey, (Arc<str>, Instant)>,
    order: VecDeque<(Instant, MergeKey)>,
}

enum Copy {
    First,
    Later { first_link: Arc<str>, lag: Duration },
}

impl Merge {
    fn observe(&mut self, key: MergeKey, link: &Arc<str>, at: Instant) -> Copy {
        while let Some((t, _)) = self.order.front() {
            if at.duration_since(*t) > MERGE_MEMORY || self.order.len() > MERGE_MAX {
                if let Some((_, k)) = self.order.pop_front() {
                    self.first.remove(&k);
                }
            } else {
                break;
            }
        }
        if let Some((first_link, first_at)) = self.first.get(&key) {
            return Copy::Later {
                first_link: first_link.clone(),
                lag: at.saturating_duration_since(*first_at),
            };
        }
        self.first.insert(key.clone(), (link.clone(), at));
        self.order.push_back((at, key));
        Copy::First
    }
}

struct LinkTrack {
    limit: Duration,
    live: bool,
    last_alive: Instant,
}

struct Core {
    engine: Engine,
    merge: Merge,
    links: BTreeMap<String, LinkTrack>,
    status: watch::Sender<Status>,
    outputs: crate::outputs::Router,
    events: Option<EventPrinter>,
    progress: Progress,
    time_cfg: crate::config::TimeConfig,
    last_time_check: Option<Instant>,
    upstream_offset_ms: Option<i64>,
    dropped_actions: u64,
    deadline: Option<JstTime>,
    replay_links: Vec<String>,
    replay_shift: HashMap<String, chrono::TimeDelta>,
    all_down_reported: bool,
    history: Option<HistoryWriter>,
    history_health: Option<watch::Receiver<StoreHealth>>,
    /// Where evidence from commands goes (the outputs' context).
    evidence: Option<crate::outputs::Ctx>,
}

impl Core {
    fn with_evidence(mut self, ctx: crate::outputs::Ctx) -> Self {
        self.evidence = Some(ctx);
        self
    }

    /// The MQTT self-test: the publisher's probe, not an engine action (it has no
    /// effect a building could feel, so nothing stands in its way but a running alarm).
    fn mqtt_self_test(&self) -> Decision {
        let refused = |why| Decision {
            event_id: None,
            serial: None,
            label: eew_core::engine::Label::Test,
            outcome: "self_test_refused",
            detail: Some(why),
        };
        if !self.engine.running_alarms().is_empty() {
            return refused("alert_in_progress");
        }
        match self.outputs.probe_mqtt("self_test") {
            Ok(()) => Decision {
                outcome: "self_test_started",
                detail: None,
                ..refused("")
            },
            Err(why) => refused(why),
        }
    }

    fn new(
        cfg: &DaemonConfig,
        status: watch::Sender<Status>,
        outputs: crate::outputs::Router,
        events: Option<EventPrinter>,
        progress: Progress,
        history: Option<HistoryWriter>,
    ) -> Self {
        let now = Instant::now();
        let links = cfg
            .links
            .iter()
            .map(|l| {
                // Every link starts with its silence limit as grace: a link still
                // connecting at boot is not a fault (a refused connection reports `Down`
                // at once anyway).
                let live = true;
                (
                    l.name.clone(),
                    LinkTrack {
                        limit: l.silence_limit,
                        live,
                        last_alive: now,
                    },
                )
            })
            .collect();
        status.send_modify(|s| {
            for l in &cfg.links {
                s.links.insert(l.name.clone(), LinkStatus::default());
            }
            if history.is_some() {
                s.storage.ok = true;
            }
        });
        let history_health = history.as_ref().map(HistoryWriter::health);
        Self {
            engine: Engine::new(cfg.settings.clone()),
            merge: Merge::default(),
            links,
            status,
            outputs,
            events,
            progress,
            time_cfg: cfg.time.clone(),
            last_time_check: None,
            upstream_offset_ms: None,
            dropped_actions: 0,
            deadline: None,
            replay_links: cfg
                .links
                .iter()
                .filter(|l| matches!(l.kind, LinkKind::Replay { .. }))
                .map(|l| l.name.clone())
                .collect(),
            replay_shift: HashMap::new(),
            all_down_reported: false,
            history,
            history_health,
            evidence: None,
        }
    }

    async fn run(
        mut self,
        mut rx: mpsc::Receiver<LinkEvent>,
        mut commands: mpsc::Receiver<CoreCommand>,
        cancel: CancellationToken,
        ready: tokio::sync::oneshot::Sender<()>,
        stall_after: Option<Duration>,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        self.warm_up();
        let _ = ready.send(());
        loop {
            self.progress.beat();
            if stall_after.is_some_and(|d| started.elapsed() >= d) {
                tracing::warn!("test hook: the core loop stops making progress");
                cancel.cancelled().await;
                return Ok(());
            }
            let sleep = match self.deadline {
                Some(d) => {
                    d.0.signed_duration_since(now_jst().0)
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .min(CORE_PERIOD)
                }
                None => CORE_PERIOD,
            };
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(()),
                ev = rx.recv() => match ev {
                    // Links say "down: shutting down" as they stop; that is not a fault.
                    Some(_) if cancel.is_cancelled() => return Ok(()),
                    Some(ev) => self.on_link_event(ev),
                    None => {
                        // Every link task ended: only happens while shutting down.
                        cancel.cancelled().await;
                        return Ok(());
                    }
                },
                Some(c) = commands.recv() => self.on_command(c),
                () = tokio::time::sleep(sleep) => {}
            }
            if self.deadline.is_some_and(|d| d <= now_jst()) {
                let step = self.engine.step(Input::Tick, now_jst());
                self.deadline = step.next_deadline;
                self.emit(step.actions, &step.decisions);
            }
            if cancel.is_cancelled() {
                // The history writer stops with everything else; its "stopped" is not a
                // storage fault.
                return Ok(());
            }
            self.check_links();
            self.check_time();
            self.check_history();
            self.publish_alert();
        }
    }

    /// Runs one real telegram through parsing and prediction before READY=1, so the
    /// compiled-in tables (codes, JMA2001) are loaded before the first real alert needs
    /// them (the first telegram otherwise pays ~3 ms in release builds).
    fn warm_up(&self) {
        const WARM_UP: &str = "37 03 00 110311144645 C11 110311144619 ND20110311144640 NCN001 \
             JD////////////// JN/// 287 N382 E1427 010 43 01 RK6620/ RT10/// RC///// 9999=";
        if let Ok(report) = eew_core::parse(WARM_UP.as_bytes()) {
            let settings = self.engine.settings();
            let _ = eew_core::predict::predict(&report, &settings.site, &settings.prediction);
        }
    }

    /// Queues a history record; never waits (a full queue is counted by the writer).
    fn record(&self, record: Record) {
        if let Some(h) = &self.history {
            let _ = h.try_send(record);
        }
    }

    fn check_history(&mut self) {
        let Some(rx) = self.history_health.as_mut() else {
            return;
        };
        if !rx.has_changed().unwrap_or(false) {
            return;
        }
        let h = rx.borrow_and_update().clone();
        if !h.is_ok() {
            tracing::error!(detail = ?h.detail(), dropped = h.dropped, "history degraded");
        }
        self.print(json!({"type": "fault", "fault": "storage", "active": !h.is_ok(), "detail": h.detail()}));
        self.status.send_modify(|s| {
            s.storage.ok = h.is_ok();
            s.storage.detail = h.detail();
            s.storage.dropped = h.dropped;
        });
    }

    fn on_link_event(&mut self, ev: LinkEvent) {
        match ev {
            LinkEvent::Telegram(received) => self.on_telegram(received),
            LinkEvent::Garbage {
                link,
                bytes,
                reason,
                received_at,
            } => {
                self.alive(&link);
                tracing::warn!(link = %link, reason, bytes = bytes.len(), "set aside bytes that are not a telegram");
                self.status.send_modify(|s| {
                    if let Some(l) = s.links.get_mut(&*link) {
                        l.rejected += 1;
                    }
                });
                self.record(Record::Telegram(TelegramRecord::garbage(
                    &link,
                    received_at,
                    bytes.clone(),
                    reason,
                )));
                self.print(json!({
                    "type": "garbage", "link": &*link, "reason": reason,
                    "bytes": bytes.len(), "received_at": received_at.to_rfc3339(),
                }));
            }
            LinkEvent::Up { link, peer } => {
                tracing::info!(link = %link, peer = %peer, "link up");
                if let Some(t) = self.links.get_mut(&*link) {
                    t.live = true;
                    t.last_alive = Instant::now();
                }
                self.status.send_modify(|s| {
                    if let Some(l) = s.links.get_mut(&*link) {
                        l.up = true;
                        l.peer = Some(peer.clone());
                        l.down_reason = None;
                        l.last_alive_at = Some(now_utc());
                    }
                });
                self.record(Record::Link(LinkRecord {
                    at: now_utc(),
                    link: link.to_string(),
                    state: LinkState::Up,
                    detail: Some(peer.clone()),
                }));
                self.print(json!({"type": "link", "link": &*link, "state": "up", "peer": peer}));
            }
            LinkEvent::Down { link, reason } => {
                tracing::warn!(link = %link, reason = %reason, "link down");
                if let Some(t) = self.links.get_mut(&*link) {
                    t.live = false;
                }
                self.status.send_modify(|s| {
                    if let Some(l) = s.links.get_mut(&*link) {
                        l.up = false;
                        // `fault` is left to `check_links` (run at the end of this
                        // iteration): it raises, prints and records `link:<name>`.
                        l.down_reason = Some(reason.clone());
                    }
                });
                self.record(Record::Link(LinkRecord {
                    at: now_utc(),
                    link: link.to_string(),
                    state: LinkState::Down,
                    detail: Some(reason.clone()),
                }));
                self.print(
                    json!({"type": "link", "link": &*link, "state": "down", "reason": reason}),
                );
            }
            LinkEvent::Alive { link } => self.alive(&link),
        }
    }

    fn alive(&mut self, link: &str) {
        if let Some(t) = self.links.get_mut(link) {
            t.last_alive = Instant::now();
        }
        self.status.send_modify(|s| {
            if let Some(l) = s.links.get_mut(link) {
                l.last_alive_at = Some(now_utc());
            }
        });
    }

    fn on_telegram(&mut self, received: Received) {
        let link = received.link.clone();
        self.alive(&link);
        let parsed = eew_core::parse(&received.bytes);
        let decode_us = micros(received.received_mono.elapsed());
        let report = match parsed {
            Err(rejection) => {
                tracing::warn!(link = %link, reason = %rejection.reason, "telegram rejected: {}", rejection.message);
                self.status.send_modify(|s| {
                    if let Some(l) = s.links.get_mut(&*link) {
                        l.telegrams += 1;
                        l.rejected += 1;
                        l.last_telegram_at = Some(received.received_at);
                    }
                });
                self.record(Record::Telegram(TelegramRecord::rejected(
                    &link,
                    received.received_at,
                    received.bytes.clone(),
                    &rejection,
                    Some(decode_us),
                )));
                self.print(json!({
                    "type": "telegram", "link": &*link, "verdict": "rejected",
                    "reason": rejection.reason.code(), "message": rejection.message,
                    "decode_us": decode_us,
                }));
                return;
            }
            Ok(report) => report,
        };
        let mut report = report;
        if self.is_replay(&link) {
            // A recorded sequence plays "as if now": the first report of the run sets the
            // shift, and every later one keeps its spacing.
            let shift = *self
                .replay_shift
                .entry(link.to_string())
                .or_insert_with(|| {
                    report
                        .issued_at
                        .map(|t| now_jst().0.signed_duration_since(t.0))
                        .unwrap_or_default()
                });
            report.shift_times(shift);
        }
        let copy = self
            .merge
            .observe(MergeKey::of(&report), &link, received.received_mono);
        let live_link = self
            .links
            .get(&*link)
            .is_some_and(|_| !self.is_replay(&link));
        // Issue to receipt on this link: JMA's and the distributor's delay plus clock offset.
        let mut link_latency_ms = None;
        if live_link
            && report.status == ReportStatus::Normal
            && let Some(issued) = report.issued_at
        {
            let offset = received
                .received_at
                .signed_duration_since(issued.0)
                .num_milliseconds();
            self.upstream_offset_ms = Some(offset);
            link_latency_ms = Some(offset);
        }
        let first = matches!(copy, Copy::First);
        if live_link && first && report.status == ReportStatus::Test {
            // JMA's delivery test (VXSE42, code status 30, 試験) arrived: the whole path
            // from JMA through this link works (delivery assurance's `upstream` channel).
            if let Some(ctx) = &self.evidence {
                let latency = report.issued_at.map(|i| {
                    received
                        .received_at
                        .signed_duration_since(i.0)
                        .num_milliseconds() as f64
                });
                ctx.evidence(crate::outputs::Proof {
                    channel: "upstream".to_owned(),
                    source: "jma",
                    method: eew_core::assurance::method::DELIVERY_TEST,
                    ok: true,
                    measurement_ms: latency,
                    detail: format!(
                        "JMA's delivery test {} received on link {link}",
                        report.event_id.as_str()
                    ),
                });
            }
        }
        self.record(Record::Telegram(TelegramRecord::report(
            &link,
            received.received_at,
            received.bytes.clone(),
            &report,
            !first,
            Some(decode_us),
        )));
        self.status.send_modify(|s| {
            if let Some(l) = s.links.get_mut(&*link) {
                l.telegrams += 1;
                l.first_copies += u64::from(first);
                l.last_telegram_at = Some(received.received_at);
                if link_latency_ms.is_some() {
                    l.latency_ms = link_latency_ms;
                }
            }
        });
        match copy {
            Copy::Later { first_link, lag } => {
                tracing::debug!(link = %link, event_id = %report.event_id, serial = report.serial, first_link = %first_link, lag_ms = lag.as_millis(), "later copy");
                self.print(json!({
                    "type": "telegram", "link": &*link, "verdict": "duplicate",
                    "event_id": report.event_id.as_str(), "serial": report.serial,
                    "first_link": &*first_link, "lag_ms": u64::try_from(lag.as_millis()).unwrap_or(u64::MAX),
                    "decode_us": decode_us,
                }));
            }
            Copy::First => {
                let event_id = report.event_id.as_str().to_owned();
                let serial = report.serial;
                // Republished after the decision's actions are on their way.
                let for_mqtt = self.outputs.mqtt_feed().then(|| report.clone());
                let step = self.engine.step(Input::Report(Box::new(report)), now_jst());
                self.deadline = step.next_deadline;
                let decision_us = micros(received.received_mono.elapsed());
                tracing::info!(link = %link, event_id = %event_id, serial, decode_us, decision_us, "report");
                self.print(json!({
                    "type": "telegram", "link": &*link, "verdict": "accepted",
                    "event_id": event_id, "serial": serial,
                    "decode_us": decode_us, "decision_us": decision_us,
                }));
                self.emit(step.actions, &step.decisions);
                if let Some(r) = for_mqtt {
                    match serde_json::to_value(&r) {
                        Ok(report) => {
                            if let Err(err) =
                                self.outputs.feed_mqtt(crate::mqtt::MqttInput::Report {
                                    link: link.to_string(),
                                    report,
                                })
                            {
                                tracing::warn!(link = %link, error = %err, "report not republished");
                            }
                        }
                        Err(err) => tracing::error!(error = %err, "report not serialisable"),
                    }
                }
            }
        }
    }

    fn on_command(&mut self, c: CoreCommand) {
        match c {
            CoreCommand::Engine(
                Command::SelfTest {
                    output: OutputId::Mqtt,
                },
                reply,
            ) => {
                tracing::info!(output = "mqtt", "operator command: self-test");
                let _ = reply.send(vec![self.mqtt_self_test()]);
            }
            CoreCommand::Probe(req) => self.probe(req),
            CoreCommand::Evidence(proof) => match &self.evidence {
                Some(ctx) => ctx.evidence(proof),
                None => tracing::warn!(output = %proof.channel, "evidence with nowhere to go"),
            },
            CoreCommand::Engine(command, reply) => {
                tracing::info!(command = ?command, "operator command");
                let step = self.engine.step(Input::Command(command), now_jst());
                self.deadline = step.next_deadline;
                self.print(json!({"type": "command", "command": command}));
                let decisions = step.decisions.clone();
                self.emit(step.actions, &step.decisions);
                let _ = reply.send(decisions);
            }
            CoreCommand::DrillReport(report) => {
                tracing::info!(event_id = %report.event_id, serial = report.serial, "drill report");
                self.print(json!({
                    "type": "telegram", "link": "drill", "verdict": "drill",
                    "event_id": report.event_id.as_str(), "serial": report.serial,
                }));
                let step = self.engine.step(Input::DrillReport(report), now_jst());
                self.deadline = step.next_deadline;
                self.emit(step.actions, &step.decisions);
            }
        }
    }

    /// A scheduled probe: the MQTT round trip, a contact's idle read-back, or a test
    /// pulse through the engine (refused like an operator's while an alarm runs).
    fn probe(&mut self, req: crate::assurance::ProbeRequest) {
        use crate::assurance::ProbeRequest;
        let refused = match req {
            ProbeRequest::Mqtt => {
                if self.engine.running_alarms().is_empty() {
                    self.outputs.probe_mqtt("probe").err()
                } else {
                    Some("alert_in_progress")
                }
            }
            ProbeRequest::RelayIdle(id) => self.outputs.check_idle(id).err(),
            ProbeRequest::Audio => {
                if self.engine.running_alarms().is_empty() {
                    self.outputs.probe_audio().err()
                } else {
                    Some("alert_in_progress")
                }
            }
            ProbeRequest::RelayPulse(id) => {
                self.outputs.mark_probe(id);
                let step = self.engine.step(
                    Input::Command(Command::SelfTest {
                        output: OutputId::Relay(id),
                    }),
                    now_jst(),
                );
                self.deadline = step.next_deadline;
                let why = step
                    .decisions
                    .iter()
                    .find(|d| d.outcome == "self_test_refused")
                    .and_then(|d| d.detail);
                if why.is_some() {
                    self.outputs.unmark_probe(id);
                }
                let decisions = step.decisions.clone();
                self.emit(step.actions, &decisions);
                why
            }
        };
        if let Some(why) = refused {
            tracing::info!(output = %req.channel(), why, "scheduled probe not run");
        }
    }

    fn is_replay(&self, link: &str) -> bool {
        self.replay_links.iter().any(|l| l == link)
    }

    /// Hands actions to the outputs without ever waiting.
    fn emit(&mut self, actions: Vec<Action>, decisions: &[Decision]) {
        let at = now_jst();
        // The outputs first: nothing else stands between a decision and a relay.
        let mut sent = Vec::with_capacity(actions.len());
        for a in actions {
            sent.push(a.clone());
            if let Err(err) = self.outputs.try_send(a) {
                self.dropped_actions += 1;
                tracing::error!(error = %err, dropped = self.dropped_actions, "output queue full: action dropped");
            }
        }
        for a in sent {
            // Relay and LED tasks print their own action lines (next to the pin change).
            if matches!(a.output, OutputId::Audio | OutputId::Mqtt)
                && let Some(p) = &self.events
                && let Some(v) = crate::outputs::action_line(&a, json!({}))
            {
                p.send(v);
            }
            self.record(Record::Action(a));
        }
        for d in decisions {
            tracing::debug!(event_id = ?d.event_id, serial = ?d.serial, outcome = d.outcome, detail = ?d.detail, "decision");
            self.record(Record::Decision {
                at,
                decision: d.clone(),
            });
            if self.outputs.mqtt_feed()
                && let Err(err) = self.outputs.feed_mqtt(crate::mqtt::MqttInput::Decision {
                    at,
                    decision: d.clone(),
                })
            {
                tracing::warn!(error = %err, "decision not republished");
            }
        }
    }

    fn check_links(&mut self) {
        let now = Instant::now();
        let mut changes = Vec::new();
        for (name, t) in &self.links {
            let silent = now.duration_since(t.last_alive) > t.limit;
            changes.push((name.clone(), !t.live || silent, silent));
        }
        let mut newly = Vec::new();
        self.status.send_if_modified(|s| {
            let mut modified = false;
            for (name, fault, silent) in &changes {
                if let Some(l) = s.links.get_mut(name)
                    && l.fault != *fault
                {
                    l.fault = *fault;
                    if *fault && *silent && l.up {
                        l.down_reason = Some("silent beyond its limit".to_owned());
                    }
                    newly.push((name.clone(), *fault));
                    modified = true;
                }
            }
            let all_down = !s.links.is_empty() && s.links.values().all(|l| l.fault);
            if s.all_links_down != all_down {
                s.all_links_down = all_down;
                modified = true;
            }
            modified
        });
        for (name, fault) in newly {
            if fault {
                tracing::error!(link = %name, "link fault");
            } else {
                tracing::info!(link = %name, "link healthy");
            }
            self.record(Record::Fault(FaultRecord {
                at: now_utc(),
                kind: "link".to_owned(),
                active: fault,
                detail: Some(name.clone()),
            }));
            self.print(json!({"type": "fault", "fault": format!("link:{name}"), "active": fault}));
        }
        let all_down = self.status.borrow().all_links_down;
        if all_down != self.all_down_reported {
            self.all_down_reported = all_down;
            self.record(Record::Fault(FaultRecord {
                at: now_utc(),
                kind: "all_links".to_owned(),
                active: all_down,
                detail: None,
            }));
            self.print(json!({"type": "fault", "fault": "all_links_down", "active": all_down}));
            let step = self.engine.step(
                Input::Fault {
                    fault: eew_core::engine::Fault::Link,
                    active: all_down,
                },
                now_jst(),
            );
            self.deadline = step.next_deadline;
            self.emit(step.actions, &step.decisions);
        }
    }

    fn check_time(&mut self) {
        let due = self.last_time_check.is_none_or(|t| {
            t.elapsed() >= Duration::from_secs(u64::from(self.time_cfg.check_interval_s))
        });
        if !due {
            return;
        }
        self.last_time_check = Some(Instant::now());
        let read = timesync::kernel_time().map_err(|e| e.to_string());
        let (fault, detail) = timesync::assess(
            read.as_ref().map_err(String::as_str),
            self.upstream_offset_ms,
            &self.time_cfg,
        );
        let kernel = read.ok();
        let offset = self.upstream_offset_ms;
        let changed = self.status.send_if_modified(|s| {
            let new = crate::status::TimeStatus {
                synchronised: kernel.map(|k| k.synchronised),
                est_error_us: kernel.map(|k| k.est_error_us),
                since_last_sync_s: timesync::since_last_sync().map(|d| d.as_secs()),
                upstream_offset_ms: offset,
                fault,
                detail: detail.clone(),
            };
            let fault_changed = s.time.fault != fault;
            s.time = new;
            fault_changed
        });
        if changed {
            if fault {
                tracing::error!(detail = ?detail, "time fault");
            } else {
                tracing::info!("time healthy");
            }
            self.record(Record::Fault(FaultRecord {
                at: now_utc(),
                kind: "time_sync".to_owned(),
                active: fault,
                detail: detail.clone(),
            }));
            self.print(
                json!({"type": "fault", "fault": "time", "active": fault, "detail": detail}),
            );
            let step = self.engine.step(
                Input::Fault {
                    fault: eew_core::engine::Fault::Clock,
                    active: fault,
                },
                now_jst(),
            );
            self.deadline = step.next_deadline;
            self.emit(step.actions, &step.decisions);
        }
    }

    fn publish_alert(&mut self) {
        let running = self.engine.running_alarms();
        let closed = self.engine.closed_relays();
        let led = self.engine.led();
        let current = self.engine.current_alarm();
        self.status.send_if_modified(|s| {
            let new = crate::status::AlertStatus {
                running,
                closed_relays: closed,
                led: Some(led),
                current,
            };
            if s.alert == new {
                false
            } else {
                s.alert = new;
                true
            }
        });
    }

    fn print(&self, value: serde_json::Value) {
        if let Some(p) = &self.events {
            p.send(value);
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// JSON Lines on standard output, written by its own task so a slow reader never stalls
/// the core loop (lines are dropped, and counted, when it falls behind).
#[derive(Clone, Debug)]
pub(crate) struct EventPrinter {
    tx: mpsc::Sender<PrinterMsg>,
}

#[derive(Debug)]
enum PrinterMsg {
    Line(serde_json::Value),
    Flush(std::sync::mpsc::Sender<()>),
}

impl EventPrinter {
    fn spawn(format: fn(&serde_json::Value) -> Option<String>) -> Self {
        let (tx, mut rx) = mpsc::channel::<PrinterMsg>(4096);
        std::thread::Builder::new()
            .name("eewgate-stdout".into())
            .spawn(move || {
                use std::io::Write;
                let stdout = std::io::stdout();
                while let Some(m) = rx.blocking_recv() {
                    match m {
                        PrinterMsg::Line(v) => {
                            let Some(line) = format(&v) else { continue };
                            let mut out = stdout.lock();
                            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                                break;
                            }
                        }
                        PrinterMsg::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })
            .map_or_else(
                |err| tracing::error!(error = %err, "cannot start the stdout writer"),
                |_| (),
            );
        Self { tx }
    }

    pub(crate) fn send(&self, mut value: serde_json::Value) {
        if let serde_json::Value::Object(map) = &mut value {
            map.entry("at")
                .or_insert_with(|| json!(now_utc().to_rfc3339()));
        }
        let _ = self.tx.try_send(PrinterMsg::Line(value));
    }

    /// Waits (at most `timeout`) until every line sent so far is written: the last lines
    /// (the fail-safe's pin changes) must not be lost when the process exits.
    fn flush(&self, timeout: Duration) {
        let (done, wait) = std::sync::mpsc::channel();
        if self.tx.try_send(PrinterMsg::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(timeout);
        }
    }
}

async fn outputs_task(
    mut rx: mpsc::Receiver<Action>,
    events: Option<EventPrinter>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            a = rx.recv() => {
                let Some(a) = a else { return Ok(()) };
                tracing::info!(
                    output = %a.output, action = a.kind.name(), event_id = ?a.event_id,
                    serial = ?a.serial, label = ?a.label, "action"
                );
                if let Some(p) = &events {
                    let mut v = serde_json::to_value(&a)?;
                    if let serde_json::Value::Object(map) = &mut v {
                        map.insert("type".into(), json!("action"));
                    }
                    p.send(v);
                }
            }
        }
    }
}

async fn liveness_task(
    notifier: Arc<Notifier>,
    hw: Option<crate::config::HardwareWatchdog>,
    mut status_rx: watch::Receiver<Status>,
    status_tx: watch::Sender<Status>,
    progress: Progress,
    ready: tokio::sync::oneshot::Receiver<()>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    // Ready once the core loop runs (the store, links and outputs were spawned before it).
    tokio::select! {
        () = cancel.cancelled() => return Ok(()),
        r = ready => if r.is_err() { return Ok(()) },
    }
    let systemd_wd = notifier.watchdog_timeout();
    let mut device = match (&hw, systemd_wd) {
        (Some(hw), None) => match watchdog::HardwareWatchdog::open(&hw.device, hw.timeout_s) {
            Ok(d) => Some(d),
            Err(err) => anyhow::bail!(
                "cannot open the hardware watchdog {}: {err}",
                hw.device.display()
            ),
        },
        (Some(_), Some(_)) => {
            tracing::info!(
                "systemd's watchdog is enabled; the hardware watchdog is left to systemd"
            );
            None
        }
        _ => None,
    };
    let budget = systemd_wd
        .or_else(|| {
            device
                .as_ref()
                .map(|d| Duration::from_secs(u64::from(d.timeout_s())))
        })
        .unwrap_or(Duration::from_secs(10));
    // Pet at a third of the budget; "progressing" means the core loop beat within half.
    let period = (budget / 3).max(Duration::from_millis(100));
    let stale = (budget / 2).max(CORE_PERIOD * 2);
    status_tx.send_modify(|s| {
        s.ready = true;
        s.watchdog.systemd = systemd_wd.is_some();
        s.watchdog.hardware = device.is_some();
    });
    let summary = status_rx.borrow_and_update().summary();
    notifier.notify(&format!("READY=1\nSTATUS={summary}"));
    let mut last_summary = summary.clone();
    tracing::info!(status = %summary, "ready");
    let mut warned = false;
    // An interval, not a sleep per iteration: status changes must not postpone the pets.
    let mut pet = tokio::time::interval(period);
    pet.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = pet.tick() => {}
            changed = status_rx.changed() => {
                if changed.is_ok() {
                    // Only when the line people read changes, not on every telegram.
                    let summary = status_rx.borrow_and_update().summary();
                    if summary != last_summary {
                        notifier.notify(&format!("STATUS={summary}"));
                        last_summary = summary;
                    }
                }
                continue;
            }
        }
        let progressing = progress.age() <= stale;
        status_tx.send_if_modified(|s| {
            let changed = s.watchdog.progressing != progressing;
            s.watchdog.progressing = progressing;
            changed
        });
        if progressing {
            warned = false;
            notifier.notify("WATCHDOG=1");
            if let Some(d) = device.as_mut()
                && let Err(err) = d.keepalive()
            {
                tracing::error!(error = %err, "hardware watchdog keepalive failed");
            }
        } else if !warned {
            warned = true;
            tracing::error!(
                age_ms = progress.age().as_millis(),
                "the core loop is not making progress: watchdog not petted"
            );
        }
    }
    if let Some(d) = device
        && let Err(err) = d.magic_close()
    {
        tracing::warn!(error = %err, "hardware watchdog magic close failed");
    }
    Ok(())
}
