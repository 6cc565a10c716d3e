//! The audio player end to end through its public seam: the player thread with a real
//! sink, the embedded clips, and the files read back — the WAV sink, and ALSA through
//! its `file` plugin (feature `alsa`; `libasound2-dev` installed).
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use eew_core::engine::{Action, ActionKind, AlertFlags, Cause, Label, OutputId};
use eewgate::audio::player::{self, Command, PlayerEvent, PlayerSettings};
use eewgate::audio::sink::{Sink, SinkError, WavSink};
use eewgate::audio::{AudioConfig, Lang, chime, clips, dsp, wav};

const NUMBERS: &[&str] = &["eew", "shindo_5_lower", "ato", "num_2x", "num_5", "seconds"];

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eewgate-audio-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn action(kind: ActionKind, serial: u32) -> Action {
    Action {
        at: eewgate::system::clock::now_jst(),
        output: OutputId::Audio,
        kind,
        cause: Cause::Start,
        event_id: Some("20240101000000".to_owned()),
        serial: Some(serial),
        label: Label::Real,
        training: false,
        intensity_class: None,
        long_period_class: None,
        warning: false,
        arrival: None,
        remaining_s: None,
        flags: AlertFlags::default(),
    }
}

fn announce(ids: &[&'static str], serial: u32) -> Action {
    action(ActionKind::announce(ids.to_vec(), ids.to_vec()), serial)
}

/// A running player thread and what it reported.
struct Player {
    tx: mpsc::SyncSender<Command>,
    events: mpsc::Receiver<PlayerEvent>,
    thread: std::thread::JoinHandle<()>,
}

fn start(settings: PlayerSettings, sink: Box<dyn Sink>) -> Player {
    let mut sink = Some(sink);
    let open: player::Opener = Box::new(move || {
        sink.take().ok_or_else(|| SinkError::Open {
            what: "test sink".into(),
            detail: "opened twice".into(),
        })
    });
    let (tx, rx) = mpsc::sync_channel(16);
    let (ev_tx, events) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        player::run(
            settings,
            open,
            rx,
            None,
            Box::new(move |e| {
                let _ = ev_tx.send(e);
            }),
        );
    });
    Player { tx, events, thread }
}

impl Player {
    fn send(&self, a: Action) {
        self.tx.send(Command::Act(Box::new(a))).unwrap();
    }

    /// Every event until an episode ends (or 60 s pass).
    fn until_episode_end(&self) -> Vec<PlayerEvent> {
        let mut out = Vec::new();
        loop {
            let e = self.events.recv_timeout(Duration::from_secs(60)).unwrap();
            let end = matches!(e, PlayerEvent::EpisodeEnded { .. });
            out.push(e);
            if end {
                return out;
            }
        }
    }

    fn shutdown(self) {
        let _ = self.tx.send(Command::Shutdown);
        self.thread.join().unwrap();
    }
}

fn settings(langs: &[Lang], repeat: u8) -> PlayerSettings {
    PlayerSettings::from_config(&AudioConfig {
        languages: langs.to_vec(),
        repeat,
        volume: 100,
        ..AudioConfig::default()
    })
}

fn segments(events: &[PlayerEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            PlayerEvent::Segment { label } => Some(label.clone()),
            _ => None,
        })
        .collect()
}

fn clip_frames(lang: Lang, id: &str) -> usize {
    wav::parse(clips::embedded(lang, id).unwrap())
        .unwrap()
        .frames()
}

fn frames(d: Duration, rate: u32) -> usize {
    (d.as_secs_f64() * f64::from(rate)).round() as usize
}

/// Chime + gap + `repeat` × every language's clips, gaps between, at 16 kHz.
fn expected_frames(ids: &[&str], langs: &[Lang], repeat: usize) -> usize {
    let per_lang: Vec<usize> = langs
        .iter()
        .map(|l| ids.iter().map(|id| clip_frames(*l, id)).sum())
        .collect();
    let passes = repeat * langs.len();
    chime::synthesize("alert", 16000).unwrap().len()
        + frames(player::GAP_AFTER_CHIME, 16000)
        + repeat * per_lang.iter().sum::<usize>()
        + (passes - 1) * frames(player::GAP_BETWEEN, 16000)
}

fn read(path: &Path) -> wav::Pcm {
    wav::parse(&std::fs::read(path).unwrap()).unwrap()
}

fn the_file(events: &[PlayerEvent]) -> PathBuf {
    events
        .iter()
        .find_map(|e| match e {
            PlayerEvent::EpisodeEnded { file, .. } => file.clone(),
            _ => None,
        })
        .unwrap()
}

#[test]
fn a_numbers_announcement_is_written_whole_to_its_wav_file() {
    let dir = tmp("numbers");
    let langs = [Lang::Ja, Lang::En];
    let p = start(
        settings(&langs, 2),
        Box::new(WavSink::open(&dir, 16000, false).unwrap()),
    );
    p.send(announce(NUMBERS, 1));
    let events = p.until_episode_end();
    p.shutdown();
    let mut want = vec!["chime:alert".to_owned()];
    for _ in 0..2 {
        for l in ["ja", "en"] {
            want.extend(NUMBERS.iter().map(|id| format!("{l}:{id}")));
        }
    }
    assert_eq!(segments(&events), want);
    assert!(
        matches!(&events[0], PlayerEvent::Health(None)),
        "{events:?}"
    );
    assert!(events.iter().any(
        |e| matches!(e, PlayerEvent::Started { action, clips, file: Some(_) } if action.serial == Some(1) && *clips == want)
    ));
    let pcm = read(&the_file(&events));
    assert_eq!((pcm.rate, pcm.channels), (16000, 1));
    assert_eq!(pcm.frames(), expected_frames(NUMBERS, &langs, 2));
    assert!(
        dsp::rms(&pcm.samples) > 1500.0,
        "{}",
        dsp::rms(&pcm.samples)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn at_48_khz_the_clips_are_resampled_to_the_same_duration() {
    let dir = tmp("resampled");
    let p = start(
        settings(&[Lang::Ja], 1),
        Box::new(WavSink::open(&dir, 48000, false).unwrap()),
    );
    p.send(announce(&["eew", "protect"], 1));
    let events = p.until_episode_end();
    p.shutdown();
    let pcm = read(&the_file(&events));
    assert_eq!(pcm.rate, 48000);
    let want = expected_frames(&["eew", "protect"], &[Lang::Ja], 1) as f64 / 16000.0;
    assert!(
        (pcm.seconds() - want).abs() < 0.01,
        "{} vs {want}",
        pcm.seconds()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stop_shortens_the_episode_to_silence_within_50_ms() {
    let dir = tmp("stop");
    // Paced in real time, as on the appliance.
    let p = start(
        settings(&[Lang::Ja, Lang::En], 2),
        Box::new(WavSink::open(&dir, 16000, true).unwrap()),
    );
    p.send(announce(NUMBERS, 1));
    std::thread::sleep(Duration::from_millis(700));
    p.send(action(ActionKind::Stop, 2));
    let events = p.until_episode_end();
    p.shutdown();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PlayerEvent::Stopped { idle: false, .. }))
    );
    let pcm = read(&the_file(&events));
    // 700 ms, plus what the sink runs ahead (40 ms) and the fade (10 ms), with slack
    // for a busy machine (the whole announcement is over 10 s).
    assert!((0.65..1.5).contains(&pcm.seconds()), "{} s", pcm.seconds());
    let full = expected_frames(NUMBERS, &[Lang::Ja, Lang::En], 2) as f64 / 16000.0;
    assert!(full > 10.0);
    // The chime was playing: not silent; and it ends in silence, not a click.
    assert!(dsp::rms(&pcm.samples) > 1500.0);
    assert_eq!(pcm.samples.last().copied(), Some(0));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_update_in_place_does_not_chime_again_and_the_file_is_one_episode() {
    let dir = tmp("update");
    let p = start(
        settings(&[Lang::Ja], 1),
        Box::new(WavSink::open(&dir, 16000, true).unwrap()),
    );
    p.send(announce(&["eew", "shindo_4", "beware"], 1));
    // During the chime.
    std::thread::sleep(Duration::from_millis(500));
    p.send(announce(&["eew_warning", "shindo_6_upper", "beware"], 2));
    let events = p.until_episode_end();
    p.shutdown();
    assert_eq!(
        segments(&events),
        [
            "chime:alert",
            "ja:eew_warning",
            "ja:shindo_6_upper",
            "ja:beware"
        ]
    );
    // The first announcement started (its chime was heard); its words never were.
    let started: Vec<Option<u32>> = events
        .iter()
        .filter_map(|e| match e {
            PlayerEvent::Started { action, .. } => Some(action.serial),
            _ => None,
        })
        .collect();
    assert_eq!(started, vec![Some(1), Some(2)]);
    let pcm = read(&the_file(&events));
    assert_eq!(
        pcm.frames(),
        expected_frames(&["eew_warning", "shindo_6_upper", "beware"], &[Lang::Ja], 1)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// ALSA through its `file` plugin: `file:FILE=<path>,FORMAT=wav` is predefined in
/// alsa-lib's `alsa.conf` (type file, slave `null`), so no sound card and no custom
/// configuration are needed. The plugin completes the WAV header when the PCM closes,
/// so the file is read after the player has shut down.
#[test]
fn through_alsa_file_plugin_the_device_receives_the_whole_announcement() {
    #[cfg(not(feature = "alsa"))]
    println!("skipping: eewgate built without the `alsa` feature (cargo test --features alsa)");
    #[cfg(feature = "alsa")]
    {
        use eewgate::audio::alsa_sink::AlsaSink;
        let dir = tmp("alsa");
        let path = dir.join("alsa.wav");
        let device = format!("file:FILE={},FORMAT=wav", path.display());
        let sink = AlsaSink::open(&device, 16000).unwrap();
        assert_eq!(sink.rate(), 16000);
        assert_eq!(sink.describe(), format!("alsa:{device}"));
        let langs = [Lang::Ja, Lang::En];
        let p = start(settings(&langs, 1), Box::new(sink));
        p.send(announce(NUMBERS, 1));
        let events = p.until_episode_end();
        p.shutdown();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, PlayerEvent::Started { file: None, .. }))
        );
        let pcm = read(&path);
        assert_eq!(pcm.rate, 16000);
        let got = pcm.frames();
        let want = expected_frames(NUMBERS, &langs, 1);
        // Everything written reaches the file (the plugin may pad to a period).
        assert!(
            got >= want && got <= want + 16000 / 50,
            "{got} frames, expected {want}"
        );
        assert!(dsp::rms(&dsp::to_mono(&pcm.samples, pcm.channels)) > 1500.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(feature = "alsa")]
#[test]
fn an_alsa_device_that_does_not_exist_is_an_error_not_a_panic() {
    let err = eewgate::audio::alsa_sink::AlsaSink::open("hw:99,0", 48000).unwrap_err();
    assert!(err.to_string().contains("cannot open"), "{err}");
    let err = eewgate::audio::alsa_sink::AlsaSink::open("hw:0\0", 48000).unwrap_err();
    assert!(err.to_string().contains("NUL"), "{err}");
}

/// Delivery assurance's probe: a 400 ms low-level tone as its own episode (its own file
/// on the WAV sink), reported as `Probe { ok }` — at −30 dBFS, an RMS near 0.0316 × full
/// scale / √2.
#[test]
fn the_probe_tone_is_a_short_low_level_episode_of_its_own() {
    let dir = tmp("probe");
    let p = start(
        settings(&[Lang::Ja], 1),
        Box::new(WavSink::open(&dir, 16000, false).unwrap()),
    );
    p.tx.send(Command::Probe { level_db: -30.0 }).unwrap();
    let e = loop {
        match p.events.recv_timeout(Duration::from_secs(10)).unwrap() {
            PlayerEvent::Health(None) => {}
            e => break e,
        }
    };
    let PlayerEvent::Probe {
        ok,
        detail,
        seconds,
    } = e
    else {
        panic!("the probe's result: {e:?}");
    };
    assert!(ok, "{detail}");
    assert!((seconds - 0.4).abs() < 1e-9, "{seconds}");
    p.shutdown();
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].to_string_lossy().ends_with("_probe.wav"),
        "{files:?}"
    );
    let pcm = wav::parse(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(pcm.frames(), 6400, "400 ms at 16 kHz");
    let rms = dsp::rms(&pcm.samples);
    let expected = 10f64.powf(-30.0 / 20.0) * f64::from(i16::MAX) / 2f64.sqrt();
    assert!(
        (rms - expected).abs() / expected < 0.1,
        "rms {rms:.0}, expected about {expected:.0}"
    );
    let peak = pcm.samples.iter().map(|s| s.unsigned_abs()).max().unwrap();
    assert!(peak <= 1037, "never louder than −30 dBFS: {peak}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A sink whose first write waits for the test's go (so an action arrives mid-probe).
struct GatedSink {
    inner: WavSink,
    gate: Option<mpsc::Receiver<()>>,
    entered: mpsc::Sender<()>,
}

impl Sink for GatedSink {
    fn rate(&self) -> u32 {
        self.inner.rate()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn begin(&mut self, event_id: Option<&str>) -> Result<Option<PathBuf>, SinkError> {
        self.inner.begin(event_id)
    }
    fn write(&mut self, samples: &[i16]) -> Result<(), SinkError> {
        if let Some(gate) = self.gate.take() {
            let _ = self.entered.send(());
            let _ = gate.recv();
        }
        self.inner.write(samples)
    }
    fn end(&mut self) -> Result<(), SinkError> {
        self.inner.end()
    }
}

/// An announcement never waits behind the probe: it interrupts it between two periods
/// and plays, and the probe proves nothing.
#[test]
fn an_announcement_interrupts_the_probe() {
    let dir = tmp("probe-interrupted");
    let (go, gate) = mpsc::channel();
    let (entered_tx, entered) = mpsc::channel();
    let p = start(
        settings(&[Lang::Ja], 1),
        Box::new(GatedSink {
            inner: WavSink::open(&dir, 16000, false).unwrap(),
            gate: Some(gate),
            entered: entered_tx,
        }),
    );
    p.tx.send(Command::Probe { level_db: -30.0 }).unwrap();
    // The probe's first period is being written: an alarm's announcement arrives.
    entered.recv_timeout(Duration::from_secs(10)).unwrap();
    p.send(announce(&["num_5"], 1));
    go.send(()).unwrap();
    let events: Vec<PlayerEvent> = p
        .until_episode_end()
        .into_iter()
        .filter(|e| !matches!(e, PlayerEvent::Health(_)))
        .collect();
    assert!(
        matches!(&events[0], PlayerEvent::ProbeSkipped { why } if why.contains("interrupted")),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PlayerEvent::Started { .. })),
        "the announcement plays: {events:#?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, PlayerEvent::Probe { .. })),
        "{events:#?}"
    );
    p.shutdown();
    std::fs::remove_dir_all(&dir).unwrap();
}
