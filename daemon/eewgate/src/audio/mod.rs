//! The audio output: the jack into the building's PA system.
//!
//! The engine decides *what* is said as clip ids (`ActionKind::Announce` /
//! `ActionKind::Countdown` carry `clips_ja` and `clips_en`); this module says it. The
//! clips are pre-rendered WAV files embedded in the binary ([`clips`], by `build.rs`),
//! the chimes are synthesised at start-up ([`chime`]), and a dedicated thread
//! ([`player`]) owns the sink and writes 20 ms periods in real time, checking for new
//! commands between periods, so an update, a countdown or a stop takes effect within a
//! period. The sinks ([`sink`]): `null`, `wav` (one file per episode) and `alsa` (cargo
//! feature `alsa`). Why this shape: `docs/adr/0009-audio-output.md`.
//!
//! Like every output it has its own bounded queue and task: the core loop hands it
//! actions with `try_send` and never waits for it, and a dead or missing sound card is an
//! output fault (`outputs.audio` in the status model), never a crash — the sink is opened
//! again every few seconds.

#[cfg(feature = "alsa")]
pub mod alsa_sink;
pub mod chime;
pub mod clips;
pub mod dsp;
pub mod player;
pub mod settings;
pub mod sink;
pub mod wav;

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use eew_core::engine::{Action, OutputId};
use serde_json::json;
use tokio::sync::mpsc;

use crate::outputs::{Ctx, Proof, since_decision_us};

pub use chime::{CHIMES, ChimeDef};
pub(crate) use settings::section;
pub use settings::{AudioBackend, AudioConfig, Chime};

/// Capacity of the audio output's queue (from the core loop).
const AUDIO_QUEUE: usize = 32;
/// Capacity of the queue from the task to the player thread. The thread empties it every
/// period; full means the thread is stuck in the driver.
const THREAD_QUEUE: usize = 64;
/// How long shutdown waits for the player to fade out and close its file.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// A language the announcements are said in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lang {
    /// Japanese.
    Ja,
    /// English.
    En,
}

impl Lang {
    /// `ja` or `en`: the settings value and the clip directory's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }
}

/// The sink `[audio]` asks for, opened (again) by the player thread.
fn opener(cfg: &AudioConfig, paced: bool) -> player::Opener {
    let cfg = cfg.clone();
    Box::new(move || -> Result<Box<dyn sink::Sink>, sink::SinkError> {
        match cfg.backend {
            AudioBackend::Null => Ok(Box::new(sink::NullSink::new(cfg.sample_rate, paced))),
            AudioBackend::Wav => {
                let dir = cfg.wav_dir.clone().unwrap_or_else(|| ".".into());
                Ok(Box::new(sink::WavSink::open(&dir, cfg.sample_rate, paced)?))
            }
            #[cfg(feature = "alsa")]
            AudioBackend::Alsa => Ok(Box::new(alsa_sink::AlsaSink::open(
                &cfg.device,
                cfg.sample_rate,
            )?)),
            #[cfg(not(feature = "alsa"))]
            AudioBackend::Alsa => Err(sink::SinkError::Open {
                what: format!("ALSA device {:?}", cfg.device),
                detail: "eewgate was built without the `alsa` feature".to_owned(),
            }),
        }
    })
}

/// The clips of the catalogue missing for the configured languages, as a fault text.
fn missing_clips(cfg: &AudioConfig) -> Option<String> {
    let missing: Vec<String> = cfg
        .languages
        .iter()
        .flat_map(|l| clips::missing_from_catalogue(*l))
        .collect();
    match missing.as_slice() {
        [] => None,
        [one] => Some(format!("fault: missing clip {one}")),
        [first, rest @ ..] => Some(format!(
            "fault: missing clip {first} and {} more",
            rest.len()
        )),
    }
}

/// The null sink's name in evidence.
const NULL_SINK: &str = "null";

/// The daemon's reporter: history (`output_results`), the status model and JSON event
/// lines, from the player thread (all of them never wait).
///
/// Every announcement played to its end is evidence that the audio path works as far as
/// the appliance can see (`playback`); a self-test's is what the Tests page waits for.
fn reporter(ctx: Ctx, sink: &'static str) -> impl FnMut(player::PlayerEvent) + Send {
    use player::PlayerEvent as E;
    // A self-test announcement is playing.
    let mut testing = false;
    move |ev| match ev {
        E::Started {
            action,
            clips,
            file,
        } => {
            testing = action.cause == eew_core::engine::Cause::SelfTest;
            let latency_us = since_decision_us(&action);
            tracing::info!(
                output = "audio", action = action.kind.name(), event_id = ?action.event_id,
                serial = ?action.serial, latency_us, clips = clips.len(), "announcement started"
            );
            if let Some(p) = &ctx.events {
                p.send(json!({
                    "type": "audio", "action": action.kind.name(),
                    "event_id": action.event_id, "serial": action.serial,
                    "clips": clips, "file": file, "latency_us": latency_us, "ok": true,
                }));
            }
            let detail = format!("{} clip(s): {}", clips.len(), clips.join(" "));
            ctx.record_result("audio", &action, true, Some(latency_us), Some(detail));
        }
        E::Stopped { action, idle, file } => {
            let latency_us = since_decision_us(&action);
            tracing::info!(
                output = "audio", event_id = ?action.event_id, serial = ?action.serial,
                latency_us, idle, "announcement stopped"
            );
            if let Some(p) = &ctx.events {
                p.send(json!({
                    "type": "audio", "action": "stop", "event_id": action.event_id,
                    "serial": action.serial, "idle": idle, "file": file,
                    "latency_us": latency_us, "ok": true,
                }));
            }
            let detail = if idle {
                "nothing was playing"
            } else {
                "silence"
            };
            ctx.record_result(
                "audio",
                &action,
                true,
                Some(latency_us),
                Some(detail.to_owned()),
            );
        }
        E::Superseded { action } => {
            if action.cause == eew_core::engine::Cause::SelfTest {
                testing = false;
            }
            tracing::info!(
                output = "audio", action = action.kind.name(), event_id = ?action.event_id,
                serial = ?action.serial, "replaced before it was played"
            );
            if let Some(p) = &ctx.events {
                p.send(json!({
                    "type": "audio", "action": action.kind.name(),
                    "event_id": action.event_id, "serial": action.serial,
                    "superseded": true, "ok": true,
                }));
            }
            ctx.record_result(
                "audio",
                &action,
                true,
                None,
                Some("replaced by a newer action before it was played".to_owned()),
            );
        }
        E::Failed { action, detail } => {
            tracing::error!(
                output = "audio", action = action.kind.name(), event_id = ?action.event_id,
                serial = ?action.serial, detail = %detail, "could not be played"
            );
            if let Some(p) = &ctx.events {
                p.send(json!({
                    "type": "audio", "action": action.kind.name(),
                    "event_id": action.event_id, "serial": action.serial,
                    "ok": false, "detail": detail,
                }));
            }
            if action.cause == eew_core::engine::Cause::SelfTest {
                testing = false;
                ctx.evidence(Proof {
                    channel: "audio".to_owned(),
                    source: "self_test",
                    method: "playback",
                    ok: false,
                    measurement_ms: None,
                    detail: detail.clone(),
                });
            }
            ctx.record_result("audio", &action, false, None, Some(detail));
        }
        E::EpisodeEnded {
            event_id,
            file,
            seconds,
        } => {
            let source = if std::mem::take(&mut testing) && event_id.is_none() {
                Some("self_test")
            } else if event_id.is_some() && sink != NULL_SINK {
                Some("alarm")
            } else {
                None
            };
            // The null sink discards: nothing was heard, so it proves nothing (and an
            // audio output left on it is exactly the misconfiguration to catch).
            let (ok, detail) = if sink == NULL_SINK {
                (
                    false,
                    "played to the null sink: no sound device is configured ([audio] backend)"
                        .to_owned(),
                )
            } else {
                (
                    true,
                    format!("played {seconds:.1} s to the {sink} sink; confirm that it was heard"),
                )
            };
            if let Some(source) = source {
                ctx.evidence(Proof {
                    channel: "audio".to_owned(),
                    source,
                    method: "playback",
                    ok,
                    measurement_ms: Some(seconds * 1000.0),
                    detail,
                });
            }
            tracing::info!(output = "audio", event_id = ?event_id, seconds, "announcement ended");
            if let Some(p) = &ctx.events {
                p.send(json!({
                    "type": "audio_end", "event_id": event_id, "file": file,
                    "seconds": seconds,
                }));
            }
        }
        E::Health(problem) => ctx.set_output_health("audio", problem),
        E::Probe {
            ok,
            detail,
            seconds,
        } => {
            // The device took the tone: it opens and plays. Nobody heard it, so it keeps
            // the channel's age where it is (ADR 0013); a failure faults the channel.
            ctx.evidence(Proof {
                channel: "audio".to_owned(),
                source: "probe",
                method: "device",
                ok,
                measurement_ms: Some(seconds * 1000.0),
                detail,
            });
        }
        E::ProbeSkipped { why } => {
            tracing::info!(output = "audio", why = %why, "audio probe not played")
        }
        E::Segment { label } => tracing::debug!(output = "audio", clip = %label, "playing"),
    }
}

/// Starts the audio output: the player thread (which opens the sink; a sink that cannot
/// open is an output fault, retried every few seconds) and the task feeding it. Returns
/// the output's queue; actions for other outputs are ignored.
pub(crate) fn spawn(
    sup: &mut crate::supervisor::Supervisor,
    cfg: &AudioConfig,
    ctx: &Ctx,
) -> anyhow::Result<(mpsc::Sender<Action>, Option<AudioProbe>)> {
    let (tx, rx) = mpsc::channel(AUDIO_QUEUE);
    let sink = match cfg.backend {
        AudioBackend::Null => NULL_SINK,
        AudioBackend::Wav => "WAV file",
        AudioBackend::Alsa => "ALSA",
    };
    let (thread_tx, done_rx) = start(cfg, true, Box::new(reporter(ctx.clone(), sink)))?;
    // The null sink discards: a tone played there proves nothing, so it is not probed.
    let probe = (cfg.backend != AudioBackend::Null).then(|| AudioProbe {
        tx: thread_tx.clone(),
        level_db: cfg.probe_level_db,
        capture: cfg.capture_device.clone().map(|device| Capture {
            device,
            rate: cfg.sample_rate,
            ctx: ctx.clone(),
            busy: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }),
    });
    sup.spawn(
        "audio",
        feed(rx, thread_tx, done_rx, ctx.cancel.clone(), ctx.clone()),
    );
    Ok((tx, probe))
}

/// Asks the player thread for delivery assurance's probe tone (never waits).
#[derive(Clone)]
pub(crate) struct AudioProbe {
    tx: PlayerQueue,
    level_db: f64,
    /// The loopback capture that hears the tone back, if one is configured.
    capture: Option<Capture>,
}

impl std::fmt::Debug for AudioProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioProbe")
            .field("level_db", &self.level_db)
            .field("capture", &self.capture.as_ref().map(|c| c.device.as_str()))
            .finish_non_exhaustive()
    }
}

/// `[audio] capture_device`: where the probe tone is listened for.
#[derive(Clone)]
struct Capture {
    device: String,
    rate: u32,
    ctx: Ctx,
    /// A capture is under way (one at a time).
    busy: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// How long the capture records: the tone (400 ms) with room before and after it for the
/// loopback's delay and the quiet the tone is compared with.
#[cfg(feature = "alsa")]
const CAPTURE_LENGTH: Duration = Duration::from_millis(1200);
/// How long the capture records before the tone is asked for.
const CAPTURE_LEAD: Duration = Duration::from_millis(200);

impl AudioProbe {
    /// Queues the probe; why not as a stable code. With a capture device, the tone is
    /// played once the capture is recording, on a thread of its own, and what it heard
    /// is evidence (`capture`).
    pub(crate) fn request(&self) -> Result<(), &'static str> {
        let Some(capture) = &self.capture else {
            return self
                .tx
                .try_send(player::Command::Probe {
                    level_db: self.level_db,
                })
                .map_err(|_| "busy");
        };
        use std::sync::atomic::Ordering;
        if capture.busy.swap(true, Ordering::SeqCst) {
            return Err("busy");
        }
        let capture = capture.clone();
        let tx = self.tx.clone();
        let level_db = self.level_db;
        std::thread::Builder::new()
            .name("eewgate-capture".into())
            .spawn(move || {
                let (ok, detail) = listen(&capture.device, capture.rate, || {
                    std::thread::sleep(CAPTURE_LEAD);
                    let _ = tx.try_send(player::Command::Probe { level_db });
                });
                capture.ctx.evidence(Proof {
                    channel: "audio".to_owned(),
                    source: "probe",
                    method: eew_core::assurance::method::CAPTURE,
                    ok,
                    measurement_ms: None,
                    detail,
                });
                capture.busy.store(false, Ordering::SeqCst);
            })
            .map(|_| ())
            .map_err(|_| "busy")
    }
}

/// Records the loopback while the tone plays (`play` asks for it) and says whether it was
/// heard, with the levels.
#[cfg(feature = "alsa")]
fn listen(device: &str, rate: u32, play: impl FnOnce()) -> (bool, String) {
    match alsa_sink::capture(device, rate, CAPTURE_LENGTH, play) {
        Ok((samples, rate)) => {
            let h = dsp::heard(&samples, rate);
            let detail = format!(
                "the probe tone was {} on {device}: loudest {:.1} dBFS over a floor of {:.1} dBFS ({:+.1} dB; {} needed)",
                if h.heard {
                    "heard back"
                } else {
                    "NOT heard back"
                },
                h.peak_db,
                h.floor_db,
                h.peak_db - h.floor_db,
                dsp::HEARD_MARGIN_DB
            );
            (h.heard, detail)
        }
        Err(err) => (false, format!("the loopback capture failed: {err}")),
    }
}

#[cfg(not(feature = "alsa"))]
fn listen(device: &str, _rate: u32, _play: impl FnOnce()) -> (bool, String) {
    (
        false,
        format!("cannot listen on {device:?}: eewgate was built without the `alsa` feature"),
    )
}

/// The player thread's command queue.
type PlayerQueue = std_mpsc::SyncSender<player::Command>;

/// Starts the player thread; returns its command queue and a receiver that resolves
/// when the thread has ended.
pub(crate) fn start(
    cfg: &AudioConfig,
    paced: bool,
    report: Box<dyn FnMut(player::PlayerEvent) + Send>,
) -> anyhow::Result<(PlayerQueue, tokio::sync::oneshot::Receiver<()>)> {
    let (thread_tx, thread_rx) = std_mpsc::sync_channel(THREAD_QUEUE);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let settings = player::PlayerSettings::from_config(cfg);
    let open = opener(cfg, paced);
    let missing = missing_clips(cfg);
    std::thread::Builder::new()
        .name("eewgate-audio".into())
        .spawn(move || {
            player::run(settings, open, thread_rx, missing, report);
            let _ = done_tx.send(());
        })?;
    Ok((thread_tx, done_rx))
}

/// Forwards the queue to the player thread; on shutdown lets it fade out and finish its
/// file before returning.
async fn feed(
    mut rx: mpsc::Receiver<Action>,
    thread_tx: std_mpsc::SyncSender<player::Command>,
    mut done: tokio::sync::oneshot::Receiver<()>,
    cancel: tokio_util::sync::CancellationToken,
    ctx: Ctx,
) -> anyhow::Result<()> {
    loop {
        let a = tokio::select! {
            () = cancel.cancelled() => break,
            _ = &mut done => anyhow::bail!("the audio player thread ended"),
            a = rx.recv() => match a { Some(a) => a, None => break },
        };
        if a.output != OutputId::Audio {
            continue;
        }
        match thread_tx.try_send(player::Command::Act(Box::new(a))) {
            Ok(()) => {}
            Err(std_mpsc::TrySendError::Full(player::Command::Act(a))) => {
                let detail = "fault: the player is not keeping up (stuck in the driver?)";
                ctx.record_result("audio", &a, false, None, Some(detail.to_owned()));
                ctx.set_output_health("audio", Some(detail.to_owned()));
            }
            Err(_) => anyhow::bail!("the audio player thread ended"),
        }
    }
    let _ = thread_tx.try_send(player::Command::Shutdown);
    drop(thread_tx);
    let _ = tokio::time::timeout(SHUTDOWN_WAIT, done).await;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use std::path::{Path, PathBuf};

    use eew_core::engine::{ActionKind, Label};
    use tokio::sync::watch;
    use tokio_util::sync::CancellationToken;

    use super::player::tests::{action, announce};
    use super::*;
    use crate::status::Status;
    use crate::supervisor::{Outcome, Supervisor};

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("eewgate-audio-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn ctx(cancel: &CancellationToken) -> (Ctx, watch::Receiver<Status>) {
        let (status, rx) = watch::channel(Status::default());
        (
            Ctx {
                events: None,
                status,
                history: None,
                cancel: cancel.clone(),
            },
            rx,
        )
    }

    fn wav_files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_task_plays_each_episode_into_its_own_file_and_stops_cleanly() {
        let dir = tmp("spawn");
        let cfg = AudioConfig {
            backend: AudioBackend::Wav,
            wav_dir: Some(dir.clone()),
            languages: vec![Lang::Ja],
            repeat: 1,
            sample_rate: 16000,
            ..AudioConfig::default()
        };
        let cancel = CancellationToken::new();
        let (ctx, status) = ctx(&cancel);
        let mut sup = Supervisor::new(cancel.clone());
        let (tx, _) = spawn(&mut sup, &cfg, &ctx).unwrap();
        tx.try_send(announce(&["num_5"], "20240101000000", 1))
            .unwrap();
        // Chime 1.15 s + 0.3 s + "5" 0.23 s, in real time.
        tokio::time::sleep(Duration::from_millis(2600)).await;
        // A second event, stopped while its chime plays.
        tx.try_send(announce(&["num_5"], "20240101000100", 1))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        tx.try_send(action(ActionKind::Stop, "20240101000100", 2, Label::Real))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        cancel.cancel();
        assert!(matches!(
            sup.run(Duration::from_secs(3)).await,
            Outcome::Clean
        ));
        assert_eq!(
            status.borrow().outputs.get("audio").map(String::as_str),
            Some("ok")
        );
        let files = wav_files(&dir);
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files[0].to_string_lossy().ends_with("_20240101000000.wav"));
        let first = wav::parse(&std::fs::read(&files[0]).unwrap()).unwrap();
        let second = wav::parse(&std::fs::read(&files[1]).unwrap()).unwrap();
        assert!((1.6..1.8).contains(&first.seconds()), "{}", first.seconds());
        assert!(
            (0.2..1.0).contains(&second.seconds()),
            "{}",
            second.seconds()
        );
        assert!(dsp::rms(&first.samples) > 1000.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sink_that_cannot_open_is_an_output_fault_not_a_crash() {
        let file = tmp("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let cfg = AudioConfig {
            backend: AudioBackend::Wav,
            wav_dir: Some(file.join("sub")),
            ..AudioConfig::default()
        };
        let cancel = CancellationToken::new();
        let (ctx, mut status) = ctx(&cancel);
        let mut sup = Supervisor::new(cancel.clone());
        let (tx, _) = spawn(&mut sup, &cfg, &ctx).unwrap();
        tx.try_send(announce(&["num_5"], "e", 1)).unwrap();
        let h = tokio::time::timeout(
            Duration::from_secs(2),
            status.wait_for(|s| {
                s.outputs
                    .get("audio")
                    .is_some_and(|h| h.starts_with("fault"))
            }),
        )
        .await
        .unwrap()
        .unwrap()
        .outputs
        .get("audio")
        .cloned()
        .unwrap();
        assert!(h.contains("cannot open"), "{h}");
        cancel.cancel();
        assert!(matches!(
            sup.run(Duration::from_secs(3)).await,
            Outcome::Clean
        ));
        std::fs::remove_file(&file).unwrap();
    }

    #[test]
    fn the_catalogue_is_complete_for_the_default_languages() {
        assert_eq!(missing_clips(&AudioConfig::default()), None);
    }
}
