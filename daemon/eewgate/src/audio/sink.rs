//! Where samples go: the [`Sink`] seam with its backends — [`NullSink`] (discards),
//! [`WavSink`] (one WAV file per announcement episode) and, with the `alsa` feature, the
//! ALSA device (`super::alsa_sink`).
//!
//! Every sink plays in real time: a write returns when the device (or, for the file and
//! null sinks, a clock) has room for more, and at most [`AHEAD`] is queued beyond what has
//! been "heard". That keeps the player's timing — when an update or a stop takes effect,
//! how long an episode lasts — the same on a laptop, in CI and on the appliance.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::wav::WavWriter;

/// How far ahead of the listener a sink may run: two 20 ms periods. Small, so a stop or
/// a countdown is heard within ~50 ms of the command; not smaller, so a busy scheduler
/// on a small board does not underrun the device.
pub const AHEAD: Duration = Duration::from_millis(40);

/// Why a sink failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The device or directory cannot be opened.
    #[error("cannot open {what}: {detail}")]
    Open {
        /// What was opened.
        what: String,
        /// Why it failed.
        detail: String,
    },
    /// Writing failed.
    #[error("cannot write to {what}: {detail}")]
    Write {
        /// Where.
        what: String,
        /// Why.
        detail: String,
    },
}

/// An audio output device: mono 16-bit samples in, sound (or a file) out.
pub trait Sink: Send {
    /// The rate the sink plays at (Hz); the player renders at this rate.
    fn rate(&self) -> u32;
    /// What it is, for logs (`alsa:default`, `wav:/var/lib/eewgate/audio`, `null`).
    fn describe(&self) -> String;
    /// An announcement episode starts (a chime, or a countdown from silence); returns the
    /// file it is written to, for sinks that write files.
    fn begin(&mut self, event_id: Option<&str>) -> Result<Option<PathBuf>, SinkError>;
    /// Plays samples, returning when the sink has room for the next period.
    fn write(&mut self, samples: &[i16]) -> Result<(), SinkError>;
    /// The episode is over: let what was written play out (or close the file).
    fn end(&mut self) -> Result<(), SinkError>;
}

/// Real-time pacing by the monotonic clock, for sinks without a device clock.
#[derive(Debug)]
pub struct Pacer {
    rate: u32,
    paced: bool,
    start: Option<Instant>,
    frames: u64,
}

impl Pacer {
    /// Paces `rate` frames per second (or not at all when `paced` is false: tests).
    pub fn new(rate: u32, paced: bool) -> Self {
        Self {
            rate: rate.max(1),
            paced,
            start: None,
            frames: 0,
        }
    }

    /// Accounts for `n` frames written and sleeps while more than [`AHEAD`] is queued.
    pub fn wrote(&mut self, n: usize) {
        if !self.paced {
            return;
        }
        let now = Instant::now();
        let start = *self.start.get_or_insert(now);
        self.frames = self.frames.saturating_add(n as u64);
        let played = Duration::from_secs_f64(self.frames as f64 / f64::from(self.rate));
        let due = start + played;
        if due > now + AHEAD {
            std::thread::sleep(due - AHEAD - now);
        } else if now > due + AHEAD {
            // The writer fell behind (a stall): a device would have underrun and
            // resumed later; rebase instead of racing to catch up.
            self.start = now.checked_sub(played);
        }
    }

    /// Waits until everything written has been "played", then starts afresh.
    pub fn drain(&mut self) {
        if self.paced
            && let Some(start) = self.start
        {
            let due = start + Duration::from_secs_f64(self.frames as f64 / f64::from(self.rate));
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        self.start = None;
        self.frames = 0;
    }
}

/// Discards the samples, in real time (an appliance without a speaker, CI).
#[derive(Debug)]
pub struct NullSink {
    rate: u32,
    pacer: Pacer,
}

impl NullSink {
    /// A null sink at `rate` Hz, paced in real time unless `paced` is false.
    pub fn new(rate: u32, paced: bool) -> Self {
        Self {
            rate,
            pacer: Pacer::new(rate, paced),
        }
    }
}

impl Sink for NullSink {
    fn rate(&self) -> u32 {
        self.rate
    }
    fn describe(&self) -> String {
        "null".to_owned()
    }
    fn begin(&mut self, _event_id: Option<&str>) -> Result<Option<PathBuf>, SinkError> {
        Ok(None)
    }
    fn write(&mut self, samples: &[i16]) -> Result<(), SinkError> {
        self.pacer.wrote(samples.len());
        Ok(())
    }
    fn end(&mut self) -> Result<(), SinkError> {
        self.pacer.drain();
        Ok(())
    }
}

/// Writes each episode to `<dir>/<UTC time>_<event id>.wav` (mono, 16-bit PCM), in real
/// time: a recording of exactly what the PA would have played, and when.
#[derive(Debug)]
pub struct WavSink {
    dir: PathBuf,
    rate: u32,
    pacer: Pacer,
    writer: Option<WavWriter>,
}

/// Keeps what is safe in a file name.
fn file_part(s: &str) -> String {
    let kept: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(40)
        .collect();
    if kept.is_empty() {
        "none".to_owned()
    } else {
        kept
    }
}

impl WavSink {
    /// Opens (creating if needed) the directory.
    pub fn open(dir: &Path, rate: u32, paced: bool) -> Result<Self, SinkError> {
        let err = |e: std::io::Error| SinkError::Open {
            what: dir.display().to_string(),
            detail: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        let meta = std::fs::metadata(dir).map_err(err)?;
        if !meta.is_dir() || meta.permissions().readonly() {
            return Err(SinkError::Open {
                what: dir.display().to_string(),
                detail: "not a writable directory".to_owned(),
            });
        }
        Ok(Self {
            dir: dir.to_owned(),
            rate,
            pacer: Pacer::new(rate, paced),
            writer: None,
        })
    }
}

impl Sink for WavSink {
    fn rate(&self) -> u32 {
        self.rate
    }
    fn describe(&self) -> String {
        format!("wav:{}", self.dir.display())
    }
    fn begin(&mut self, event_id: Option<&str>) -> Result<Option<PathBuf>, SinkError> {
        self.end()?;
        let stamp = crate::system::clock::now_utc().format("%Y%m%dT%H%M%S%.3fZ");
        let id = file_part(event_id.unwrap_or(""));
        let mut n = 1u32;
        loop {
            let name = if n == 1 {
                format!("{stamp}_{id}.wav")
            } else {
                format!("{stamp}_{id}-{n}.wav")
            };
            let path = self.dir.join(name);
            match WavWriter::create(&path, self.rate) {
                Ok(w) => {
                    self.writer = Some(w);
                    return Ok(Some(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => n += 1,
                Err(e) => {
                    return Err(SinkError::Open {
                        what: path.display().to_string(),
                        detail: e.to_string(),
                    });
                }
            }
        }
    }
    fn write(&mut self, samples: &[i16]) -> Result<(), SinkError> {
        if let Some(w) = self.writer.as_mut() {
            w.write(samples).map_err(|e| SinkError::Write {
                what: w.path().display().to_string(),
                detail: e.to_string(),
            })?;
        }
        self.pacer.wrote(samples.len());
        Ok(())
    }
    fn end(&mut self) -> Result<(), SinkError> {
        self.pacer.drain();
        if let Some(mut w) = self.writer.take() {
            w.finish().map_err(|e| SinkError::Write {
                what: w.path().display().to_string(),
                detail: e.to_string(),
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_is_real_time_with_a_small_lead() {
        let mut sink = NullSink::new(16000, true);
        let t = Instant::now();
        // 300 ms of audio in 20 ms periods.
        for _ in 0..15 {
            sink.write(&[0; 320]).unwrap();
        }
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(250), "{took:?}");
        assert!(took < Duration::from_millis(400), "{took:?}");
        sink.end().unwrap();
        assert!(t.elapsed() >= Duration::from_millis(295));
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_part("20240101000000"), "20240101000000");
        assert_eq!(file_part("../../etc"), "etc");
        assert_eq!(file_part(""), "none");
    }
}
