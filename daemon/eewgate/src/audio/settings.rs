//! `[audio]`: which sink, how loud, which chime, which languages, how often.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use eew_core::settings::Walker;
use toml::Table;

use super::Lang;
use super::chime::{CHIMES, DEFAULT_CHIME};
use super::wav::{self, RATES};

/// Operator chime files larger than this are refused (10 s of 96 kHz stereo is ~3.7 MiB).
const MAX_CHIME_BYTES: u64 = 8 * 1024 * 1024;
/// An operator chime longer than this would delay the words too much.
const MAX_CHIME_SECONDS: f64 = 10.0;

/// Which sink plays the announcements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioBackend {
    /// Discards, in real time (no speaker; the default without `wav_dir`).
    Null,
    /// One WAV file per episode in `wav_dir` (the default when `wav_dir` is given).
    Wav,
    /// An ALSA PCM (needs the `alsa` cargo feature).
    Alsa,
}

/// The chime that opens a new event's announcement.
#[derive(Clone, PartialEq)]
pub enum Chime {
    /// One of [`CHIMES`], synthesised at start-up.
    Builtin(&'static str),
    /// An operator's WAV file, read and checked when the settings are loaded.
    File {
        /// Where it was read from.
        path: PathBuf,
        /// Its rate (Hz).
        rate: u32,
        /// Its samples, mixed down to mono.
        samples: Arc<[i16]>,
    },
}

impl fmt::Debug for Chime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Chime::Builtin(name) => write!(f, "Builtin({name:?})"),
            Chime::File {
                path,
                rate,
                samples,
            } => f
                .debug_struct("File")
                .field("path", path)
                .field("rate", rate)
                .field("frames", &samples.len())
                .finish(),
        }
    }
}

impl Chime {
    /// Its name in logs and events: `chime:alert`, `chime:file`.
    pub fn label(&self) -> String {
        match self {
            Chime::Builtin(name) => format!("chime:{name}"),
            Chime::File { .. } => "chime:file".to_owned(),
        }
    }
}

/// `[audio]`.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioConfig {
    /// The sink.
    pub backend: AudioBackend,
    /// ALSA PCM name (`default`, `hw:0,0`, `plughw:1`, …).
    pub device: String,
    /// Directory of the WAV sink (relative to the settings file's directory).
    pub wav_dir: Option<PathBuf>,
    /// 0–100; applied as a cubic gain curve (see `dsp::volume_gain`).
    pub volume: u8,
    /// The chime before a new event's announcement.
    pub chime: Chime,
    /// Languages, in the order spoken.
    pub languages: Vec<Lang>,
    /// How many times an announcement is said (1–5).
    pub repeat: u8,
    /// The rate asked of the device (Hz); the clips (16 kHz) are resampled to it.
    pub sample_rate: u32,
    /// Level of delivery assurance's probe tone (dBFS, −60…−10): low, so a PA left on
    /// at night hears a faint beep at most.
    pub probe_level_db: f64,
    /// An ALSA capture PCM that hears the PA (a loopback from the amplifier's monitor
    /// output): the probe tone heard back there proves the audio path (`capture`).
    pub capture_device: Option<String>,
}

impl Default for AudioConfig {
    fn default() -> Self {
        Self {
            backend: AudioBackend::Null,
            device: "default".to_owned(),
            wav_dir: None,
            volume: 80,
            chime: Chime::Builtin(DEFAULT_CHIME),
            languages: vec![Lang::Ja, Lang::En],
            repeat: 2,
            sample_rate: 48000,
            probe_level_db: -30.0,
            capture_device: None,
        }
    }
}

/// The keys `[audio]` takes.
const KEYS: &[&str] = &[
    "backend",
    "device",
    "wav_dir",
    "volume",
    "chime",
    "languages",
    "repeat",
    "sample_rate",
    "probe_level_db",
    "capture_device",
];

/// Reads `[audio]` from the settings file's top-level `table`; every problem goes to `w`
/// with its path. Absent → defaults (the null sink: the daemon runs, nothing is heard).
pub(crate) fn section(w: &mut Walker, table: &Table, base: &Path) -> AudioConfig {
    let mut out = AudioConfig::default();
    let Some(t) = w.section(table, "", "audio") else {
        return out;
    };
    let p = "audio";
    let backend = w.get(t, p, "backend").map(|(path, v)| {
        let b = w.choice_at(
            &path,
            v,
            &[
                ("null", AudioBackend::Null),
                ("wav", AudioBackend::Wav),
                ("alsa", AudioBackend::Alsa),
            ],
        );
        (path, b)
    });
    if let Some((path, v)) = w.get(t, p, "wav_dir")
        && let Some(s) = w.str_at(&path, v)
    {
        if s.trim().is_empty() {
            w.error(
                path,
                "must name a directory, e.g. \"/var/lib/eewgate/audio\"",
            );
        } else {
            out.wav_dir = Some(base.join(s));
        }
    }
    match &backend {
        // An explicit backend, or the wav sink implied by a wav_dir.
        Some((_, Some(b))) => out.backend = *b,
        Some((_, None)) => {}
        None if t.contains_key("wav_dir") => out.backend = AudioBackend::Wav,
        None => {}
    }
    if let Some((path, Some(b))) = &backend {
        if *b == AudioBackend::Wav && !t.contains_key("wav_dir") {
            w.error(
                format!("{p}.wav_dir"),
                "missing: backend = \"wav\" writes its files to this directory",
            );
        }
        if *b != AudioBackend::Wav && t.contains_key("wav_dir") {
            w.error(
                format!("{p}.wav_dir"),
                "only used with backend = \"wav\"; remove it or change the backend",
            );
        }
        if *b == AudioBackend::Alsa && !cfg!(feature = "alsa") {
            w.error(
                path.clone(),
                "backend = \"alsa\" needs eewgate built with the `alsa` feature \
                 (cargo build --features alsa)",
            );
        }
    }
    if let Some((path, v)) = w.get(t, p, "capture_device")
        && let Some(s) = w.str_at(&path, v)
    {
        if s.trim().is_empty() || s.chars().any(char::is_control) {
            w.error(
                path,
                "must name an ALSA capture PCM, e.g. \"hw:1,0\" or \"plughw:CARD=Device\"",
            );
        } else if out.backend != AudioBackend::Alsa {
            w.error(
                path,
                "only used with backend = \"alsa\" (the capture hears what the sound card plays)",
            );
        } else {
            out.capture_device = Some(s.to_owned());
        }
    }
    if let Some((path, v)) = w.get(t, p, "device")
        && let Some(s) = w.str_at(&path, v)
    {
        if s.trim().is_empty() || s.chars().any(char::is_control) {
            w.error(
                path,
                "must name an ALSA PCM, e.g. \"default\" or \"hw:0,0\"",
            );
        } else if out.backend != AudioBackend::Alsa {
            w.error(path, "only used with backend = \"alsa\"");
        } else {
            out.device = s.to_owned();
        }
    }
    if let Some((path, v)) = w.get(t, p, "volume")
        && let Some(n) = w.int_in(&path, v, 0, 100)
    {
        out.volume = u8::try_from(n).unwrap_or(100);
    }
    if let Some((path, v)) = w.get(t, p, "repeat")
        && let Some(n) = w.int_in(&path, v, 1, 5)
    {
        out.repeat = u8::try_from(n).unwrap_or(1);
    }
    if let Some((path, v)) = w.get(t, p, "probe_level_db")
        && let Some(n) = w.int_in(&path, v, -60, -10)
    {
        out.probe_level_db = n as f64;
    }
    if let Some((path, v)) = w.get(t, p, "sample_rate")
        && let Some(n) = w.u32_in(&path, v, 8000, 96000)
    {
        if RATES.contains(&n) {
            out.sample_rate = n;
        } else {
            let list: Vec<String> = RATES.iter().map(u32::to_string).collect();
            w.error(
                path,
                format!(
                    "{n} Hz is not a common rate; use one of {}",
                    list.join(", ")
                ),
            );
        }
    }
    if let Some((path, v)) = w.get(t, p, "languages")
        && let Some(langs) = languages(w, &path, v)
    {
        out.languages = langs;
    }
    if let Some((path, v)) = w.get(t, p, "chime")
        && let Some(s) = w.str_at(&path, v)
        && let Some(c) = chime(w, &path, s, base)
    {
        out.chime = c;
    }
    w.unknown_keys(t, p, KEYS);
    out
}

fn languages(w: &mut Walker, path: &str, v: &toml::Value) -> Option<Vec<Lang>> {
    let Some(arr) = v.as_array() else {
        w.error(path, "must be an array such as [\"ja\", \"en\"]");
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in arr.iter().enumerate() {
        let at = format!("{path}[{i}]");
        match w.choice_at(&at, item, &[("ja", Lang::Ja), ("en", Lang::En)]) {
            Some(l) if out.contains(&l) => {
                w.error(at, format!("{:?} is listed twice", l.as_str()));
                ok = false;
            }
            Some(l) => out.push(l),
            None => ok = false,
        }
    }
    if ok && out.is_empty() {
        w.error(path, "must list at least one language: \"ja\", \"en\"");
        ok = false;
    }
    ok.then_some(out)
}

fn chime(w: &mut Walker, path: &str, s: &str, base: &Path) -> Option<Chime> {
    if let Some(c) = CHIMES.iter().find(|c| c.name == s) {
        return Some(Chime::Builtin(c.name));
    }
    let looks_like_file = s.contains('/') || s.to_ascii_lowercase().ends_with(".wav");
    if !looks_like_file {
        let names: Vec<&str> = CHIMES.iter().map(|c| c.name).collect();
        let hint = eew_core::settings::did_you_mean(s, &names)
            .map(|n| format!("did you mean {n:?}? "))
            .unwrap_or_default();
        w.error(
            path,
            format!(
                "{s:?} is not a built-in chime; {hint}built-in: {}; or give the path of a \
                 16-bit PCM WAV file",
                names
                    .iter()
                    .map(|n| format!("{n:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        return None;
    }
    let file = base.join(s);
    match read_chime(&file) {
        Ok((rate, samples)) => Some(Chime::File {
            path: file,
            rate,
            samples: samples.into(),
        }),
        Err(e) => {
            w.error(path, format!("{}: {e}", file.display()));
            None
        }
    }
}

/// Reads and checks an operator's chime file: 16-bit PCM, mono or stereo, a common rate,
/// at most 10 s.
fn read_chime(file: &Path) -> Result<(u32, Vec<i16>), String> {
    use std::io::Read;
    let f = std::fs::File::open(file).map_err(|e| format!("cannot read: {e}"))?;
    let mut bytes = Vec::new();
    f.take(MAX_CHIME_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    let pcm = check_chime(&bytes)?;
    Ok((pcm.rate, pcm.mono()))
}

/// Checks an operator's chime (a file, or an upload from the web UI): at most 8 MiB of
/// 16-bit PCM WAV, mono or stereo, a common rate, at most 10 s.
pub fn check_chime(bytes: &[u8]) -> Result<wav::Pcm, String> {
    if bytes.len() as u64 > MAX_CHIME_BYTES {
        return Err(format!("larger than {MAX_CHIME_BYTES} bytes"));
    }
    let pcm = wav::parse(bytes).map_err(|e| e.to_string())?;
    if pcm.seconds() > MAX_CHIME_SECONDS {
        return Err(format!(
            "{:.1} s long; a chime may last at most {MAX_CHIME_SECONDS} s",
            pcm.seconds()
        ));
    }
    Ok(pcm)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;
    use eew_core::settings::parse_table;

    fn load(text: &str, base: &Path) -> (AudioConfig, Vec<String>) {
        let table = parse_table(text).map_err(|e| e.0).unwrap();
        let mut w = Walker::new();
        let cfg = section(&mut w, &table, base);
        let errors = w
            .into_errors()
            .iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect();
        (cfg, errors)
    }

    fn errors(text: &str) -> Vec<String> {
        load(text, Path::new("/nonexistent")).1
    }

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "eewgate-audio-settings-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn absent_means_defaults() {
        let (cfg, e) = load("[site]\nlat = 1\n", Path::new("."));
        assert!(e.is_empty());
        assert_eq!(cfg, AudioConfig::default());
        assert_eq!(cfg.backend, AudioBackend::Null);
        assert_eq!(cfg.languages, vec![Lang::Ja, Lang::En]);
        assert_eq!((cfg.volume, cfg.repeat, cfg.sample_rate), (80, 2, 48000));
        assert_eq!(cfg.chime, Chime::Builtin("alert"));
    }

    #[test]
    fn a_wav_dir_alone_selects_the_wav_sink_relative_to_the_file() {
        let (cfg, e) = load(
            "[audio]\nwav_dir = \"rec\"\nvolume = 100\nrepeat = 1\nlanguages = [\"en\"]\n\
             sample_rate = 16000\nchime = \"bell\"\n",
            Path::new("/etc/eewgate"),
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(cfg.backend, AudioBackend::Wav);
        assert_eq!(cfg.wav_dir, Some(PathBuf::from("/etc/eewgate/rec")));
        assert_eq!(cfg.languages, vec![Lang::En]);
        assert_eq!((cfg.volume, cfg.repeat, cfg.sample_rate), (100, 1, 16000));
        assert_eq!(cfg.chime, Chime::Builtin("bell"));
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let e = errors(
            "[audio]\nbackend = \"pulse\"\nvolume = 101\nrepeat = 0\nsample_rate = 12345\n\
             languages = [\"ja\", \"fr\", \"ja\"]\nchime = \"nhk\"\nvolum = 3\n",
        );
        let has = |p: &str, m: &str| e.iter().any(|l| l.starts_with(p) && l.contains(m));
        assert!(has("audio.backend:", "\"pulse\" is not allowed"), "{e:?}");
        assert!(has("audio.volume:", "out of range; allowed 0–100"), "{e:?}");
        assert!(has("audio.repeat:", "allowed 1–5"), "{e:?}");
        assert!(has("audio.sample_rate:", "not a common rate"), "{e:?}");
        assert!(has("audio.languages[1]:", "\"fr\""), "{e:?}");
        assert!(has("audio.languages[2]:", "listed twice"), "{e:?}");
        assert!(has("audio.chime:", "not a built-in chime"), "{e:?}");
        assert!(has("audio.volum:", "did you mean \"volume\""), "{e:?}");
        assert_eq!(e.len(), 8, "{e:?}");
    }

    #[test]
    fn keys_that_do_not_apply_to_the_backend_are_errors() {
        let e = errors("[audio]\nbackend = \"wav\"\n");
        assert!(
            e.iter().any(|l| l.starts_with("audio.wav_dir: missing")),
            "{e:?}"
        );
        let e = errors("[audio]\nbackend = \"null\"\nwav_dir = \"x\"\ndevice = \"hw:0\"\n");
        assert!(e.iter().any(|l| l.starts_with("audio.wav_dir:")), "{e:?}");
        assert!(e.iter().any(|l| l.starts_with("audio.device:")), "{e:?}");
        let e = errors("[audio]\nbackend = \"alsa\"\ndevice = \"hw:0\\u0000\"\nlanguages = []\n");
        assert!(e.iter().any(|l| l.starts_with("audio.device:")), "{e:?}");
        assert!(e.iter().any(|l| l.starts_with("audio.languages:")), "{e:?}");
        assert_eq!(
            e.iter().any(|l| l.starts_with("audio.backend:")),
            !cfg!(feature = "alsa"),
            "{e:?}"
        );
        let e = errors("audio = 3\n");
        assert!(e.iter().any(|l| l.starts_with("audio:")), "{e:?}");
    }

    #[test]
    fn a_chime_file_is_checked_when_loaded() {
        let dir = tmp("chime");
        // Not a WAV at all.
        std::fs::write(dir.join("chime.wav"), b"ID3 this is an mp3").unwrap();
        let (_, e) = load("[audio]\nchime = \"chime.wav\"\n", &dir);
        assert!(
            e.iter()
                .any(|l| l.starts_with("audio.chime:") && l.contains("not a WAV file")),
            "{e:?}"
        );
        // Missing.
        let (_, e) = load("[audio]\nchime = \"sounds/none.wav\"\n", &dir);
        assert!(
            e.iter()
                .any(|l| l.starts_with("audio.chime:") && l.contains("cannot read")),
            "{e:?}"
        );
        // 8-bit.
        let mut b = wav::encode(22050, &[0; 100]);
        b[34] = 8;
        std::fs::write(dir.join("eight.wav"), &b).unwrap();
        let (_, e) = load("[audio]\nchime = \"eight.wav\"\n", &dir);
        assert!(e.iter().any(|l| l.contains("16-bit")), "{e:?}");
        // Good: stereo 44.1 kHz, mixed down.
        let mut stereo = wav::header(44100, 2, 441).to_vec();
        for _ in 0..441 {
            stereo.extend_from_slice(&1000i16.to_le_bytes());
            stereo.extend_from_slice(&3000i16.to_le_bytes());
        }
        std::fs::write(dir.join("ok.wav"), &stereo).unwrap();
        let (cfg, e) = load("[audio]\nchime = \"ok.wav\"\n", &dir);
        assert!(e.is_empty(), "{e:?}");
        match cfg.chime {
            Chime::File {
                rate,
                samples,
                path,
                ..
            } => {
                assert_eq!(rate, 44100);
                assert_eq!(samples.len(), 441);
                assert_eq!(samples[0], 2000);
                assert_eq!(path, dir.join("ok.wav"));
            }
            other @ Chime::Builtin(_) => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
