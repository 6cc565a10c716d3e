//! The ALSA sink (cargo feature `alsa`): S16_LE, mono when the device takes it (else
//! stereo, the same sample on both channels), ~100 ms buffer in ~20 ms periods, of which
//! the player keeps only [`AHEAD`] queued.
//!
//! ALSA directly rather than through cpal or rodio: the device is named in the settings
//! (no enumeration), the buffer and period sizes are ours to set, an underrun is visible
//! (and recovered with `prepare`), and the PCM is opened once at start-up so the first
//! alarm does not wait for the device (ADR 0009).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use alsa::pcm::{Access, Format, HwParams, PCM, State};
use alsa::{Direction, ValueOr};

use nix::errno::Errno;

use super::sink::{AHEAD, Sink, SinkError};

/// The device's buffer: room for scheduling hiccups on a small board.
const BUFFER_US: u32 = 100_000;
/// The device's period, matching the player's.
const PERIOD_US: u32 = 20_000;
/// A write (or a drain) that makes no progress for this long is a device fault.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// One wait for room in the buffer (ms).
const WAIT_MS: u32 = 50;

/// An open ALSA playback PCM.
pub struct AlsaSink {
    pcm: PCM,
    device: String,
    rate: u32,
    channels: usize,
    /// Interleaved samples being written (mono duplicated for stereo devices).
    buf: Vec<i16>,
    underruns: u64,
}

impl std::fmt::Debug for AlsaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlsaSink")
            .field("device", &self.device)
            .field("rate", &self.rate)
            .field("channels", &self.channels)
            .field("underruns", &self.underruns)
            .finish_non_exhaustive()
    }
}

fn open_err(device: &str) -> impl Fn(alsa::Error) -> SinkError + '_ {
    move |e| SinkError::Open {
        what: format!("ALSA device {device:?}"),
        detail: e.to_string(),
    }
}

/// Opens `device` in `direction`, non-blocking, as S16_LE interleaved, mono when the
/// device takes it (else stereo), at the rate nearest to `rate`, with the sink's buffer
/// and period: the PCM, its rate and its channel count. Shared by playback and the
/// loopback capture.
fn open_pcm(device: &str, direction: Direction, rate: u32) -> Result<(PCM, u32, usize), SinkError> {
    let err = open_err(device);
    // `PCM::new` panics on a NUL byte; the name comes from the settings file.
    let name = std::ffi::CString::new(device).map_err(|_| SinkError::Open {
        what: format!("ALSA device {device:?}"),
        detail: "the name contains a NUL byte".to_owned(),
    })?;
    // Non-blocking: a blocking open of a device another process holds would wait for it
    // forever, and so would a read or write on a wedged driver. Those wait with a bound.
    let pcm = PCM::open(&name, direction, true).map_err(&err)?;
    let (rate, channels) = {
        let hwp = HwParams::any(&pcm).map_err(&err)?;
        hwp.set_access(Access::RWInterleaved).map_err(&err)?;
        hwp.set_format(Format::S16LE).map_err(&err)?;
        let channels = if hwp.set_channels(1).is_ok() {
            1
        } else {
            hwp.set_channels(2).map_err(&err)?;
            2
        };
        let rate = hwp.set_rate_near(rate, ValueOr::Nearest).map_err(&err)?;
        hwp.set_buffer_time_near(BUFFER_US, ValueOr::Nearest)
            .map_err(&err)?;
        hwp.set_period_time_near(PERIOD_US, ValueOr::Nearest)
            .map_err(&err)?;
        pcm.hw_params(&hwp).map_err(&err)?;
        (rate, channels)
    };
    Ok((pcm, rate, channels))
}

impl AlsaSink {
    /// Opens `device` for playback at (the rate nearest to) `rate` Hz.
    pub fn open(device: &str, rate: u32) -> Result<Self, SinkError> {
        let err = open_err(device);
        let (pcm, rate, channels) = open_pcm(device, Direction::Playback, rate)?;
        let period = pcm
            .hw_params_current()
            .and_then(|current| current.get_period_size())
            .map_err(&err)?;
        {
            // Start as soon as one period is queued: the first word must not wait for a
            // full buffer.
            let swp = pcm.sw_params_current().map_err(&err)?;
            swp.set_start_threshold(period).map_err(&err)?;
            swp.set_avail_min(period).map_err(&err)?;
            pcm.sw_params(&swp).map_err(&err)?;
        }
        pcm.prepare().map_err(&err)?;
        // The native-endian check: io_i16 refuses if S16LE is not the host's i16.
        pcm.io_i16().map_err(&err)?;
        tracing::info!(
            output = "audio",
            device,
            rate,
            channels,
            period_frames = period,
            "ALSA device open"
        );
        Ok(Self {
            pcm,
            device: device.to_owned(),
            rate,
            channels,
            buf: Vec::new(),
            underruns: 0,
        })
    }

    fn write_err(&self, e: alsa::Error) -> SinkError {
        SinkError::Write {
            what: format!("ALSA device {:?}", self.device),
            detail: e.to_string(),
        }
    }

    /// Keeps at most [`AHEAD`] queued in the device, so a stop is heard promptly.
    fn pace(&self) {
        let Ok(queued) = self.pcm.delay() else {
            return;
        };
        let ahead = i64::from(self.rate) * i64::try_from(AHEAD.as_millis()).unwrap_or(40) / 1000;
        let excess = queued - ahead;
        if excess > 0 {
            let us = u64::try_from(excess).unwrap_or(0) * 1_000_000 / u64::from(self.rate.max(1));
            std::thread::sleep(Duration::from_micros(us));
        }
    }
}

impl Sink for AlsaSink {
    fn rate(&self) -> u32 {
        self.rate
    }

    fn describe(&self) -> String {
        format!("alsa:{}", self.device)
    }

    fn begin(&mut self, _event_id: Option<&str>) -> Result<Option<PathBuf>, SinkError> {
        if !matches!(self.pcm.state(), State::Prepared | State::Running) {
            self.pcm.prepare().map_err(|e| self.write_err(e))?;
        }
        Ok(None)
    }

    fn write(&mut self, samples: &[i16]) -> Result<(), SinkError> {
        self.buf.clear();
        for s in samples {
            for _ in 0..self.channels {
                self.buf.push(*s);
            }
        }
        let mut done = 0usize;
        let mut recoveries = 0u32;
        let deadline = Instant::now() + WRITE_TIMEOUT;
        while done < samples.len() {
            let io = self.pcm.io_i16().map_err(|e| self.write_err(e))?;
            let rest = self.buf.get(done * self.channels..).unwrap_or_default();
            match io.writei(rest) {
                Ok(n) => done += n,
                Err(e) if e.errno() == Errno::EAGAIN as i32 => {
                    // The buffer is full: wait for room, but not forever.
                    if Instant::now() >= deadline {
                        return Err(SinkError::Write {
                            what: format!("ALSA device {:?}", self.device),
                            detail: format!(
                                "no room in the buffer for {} ms (driver stuck?)",
                                WRITE_TIMEOUT.as_millis()
                            ),
                        });
                    }
                    let _ = self.pcm.wait(Some(WAIT_MS));
                }
                Err(e) if recoveries < 3 => {
                    recoveries += 1;
                    if e.errno() == Errno::EPIPE as i32 {
                        self.underruns += 1;
                        tracing::warn!(
                            output = "audio", device = %self.device, underruns = self.underruns,
                            "ALSA underrun; recovering"
                        );
                    }
                    // EPIPE (underrun) and ESTRPIPE (suspended) are recoverable.
                    self.pcm
                        .try_recover(e, true)
                        .map_err(|e| self.write_err(e))?;
                }
                Err(e) => return Err(self.write_err(e)),
            }
        }
        self.pace();
        Ok(())
    }

    fn end(&mut self) -> Result<(), SinkError> {
        // Let what is queued (at most AHEAD) play out, then be ready for the next one.
        // Drain also starts a prepared stream that holds less than a period. Non-blocking,
        // it may return EAGAIN and go on draining in the background: poll, bounded.
        if matches!(self.pcm.state(), State::Running | State::Prepared) {
            match self.pcm.drain() {
                Ok(()) => {}
                Err(e) if e.errno() == Errno::EAGAIN as i32 => {}
                Err(e) => return Err(self.write_err(e)),
            }
            let deadline = Instant::now() + WRITE_TIMEOUT;
            while self.pcm.state() == State::Draining && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        self.pcm.prepare().map_err(|e| self.write_err(e))?;
        Ok(())
    }
}

/// Records `duration` of mono S16_LE from the capture PCM `device` at (the rate nearest
/// to) `rate` Hz (delivery assurance's loopback capture, which hears the probe tone back);
/// `started` is called once the device is recording, so the tone is played inside the
/// recording. Returns the samples and the rate. Non-blocking reads with a deadline: a
/// wedged driver is an error, never a hung thread.
pub fn capture(
    device: &str,
    rate: u32,
    duration: Duration,
    started: impl FnOnce(),
) -> Result<(Vec<i16>, u32), SinkError> {
    let err = open_err(device);
    let (pcm, rate, channels) = open_pcm(device, Direction::Capture, rate)?;
    pcm.prepare().map_err(&err)?;
    pcm.start().map_err(&err)?;
    let read_err = |e: alsa::Error| SinkError::Write {
        what: format!("ALSA capture device {device:?}"),
        detail: e.to_string(),
    };
    let want = (duration.as_secs_f64() * f64::from(rate)).round() as usize;
    let mut out: Vec<i16> = Vec::with_capacity(want);
    let mut buf = vec![0i16; 1024 * channels];
    let deadline = Instant::now() + duration + WRITE_TIMEOUT;
    let mut started = Some(started);
    while out.len() < want {
        if let Some(f) = started.take() {
            f();
        }
        let io = pcm.io_i16().map_err(read_err)?;
        match io.readi(&mut buf) {
            Ok(frames) => {
                for frame in buf.chunks(channels).take(frames) {
                    // Mono: the first channel of a stereo capture.
                    out.push(frame.first().copied().unwrap_or(0));
                }
            }
            Err(e) if e.errno() == Errno::EAGAIN as i32 => {
                if Instant::now() >= deadline {
                    return Err(SinkError::Write {
                        what: format!("ALSA capture device {device:?}"),
                        detail: "no samples came (driver stuck?)".to_owned(),
                    });
                }
                let _ = pcm.wait(Some(WAIT_MS));
            }
            Err(e) => {
                pcm.try_recover(e, true).map_err(read_err)?;
            }
        }
    }
    out.truncate(want);
    Ok((out, rate))
}
