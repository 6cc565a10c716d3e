//! The little signal processing the player needs: mixing down, resampling, gain and
//! fades. Everything saturates; nothing indexes.

/// Averages interleaved channels into one.
pub fn to_mono(samples: &[i16], channels: u16) -> Vec<i16> {
    let n = usize::from(channels.max(1));
    if n == 1 {
        return samples.to_vec();
    }
    samples
        .chunks_exact(n)
        .map(|frame| {
            let sum: i32 = frame.iter().map(|s| i32::from(*s)).sum();
            clamp(sum / i32::from(channels.max(1)))
        })
        .collect()
}

fn clamp(v: i32) -> i16 {
    i16::try_from(v.clamp(i32::from(i16::MIN), i32::from(i16::MAX))).unwrap_or(0)
}

/// Resamples mono audio from `from` Hz to `to` Hz by linear interpolation.
///
/// Linear is enough here: the clips are speech band-limited to 8 kHz, the common case is
/// an integer up-ratio (16 → 48 kHz) and the destination is a PA system, not a studio.
pub fn resample_linear(input: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || from == 0 || to == 0 || input.is_empty() {
        return input.to_vec();
    }
    let out_len = (input.len() as u64 * u64::from(to) / u64::from(from)).max(1);
    let step = f64::from(from) / f64::from(to);
    (0..out_len)
        .map(|i| {
            let pos = i as f64 * step;
            let idx = pos as usize;
            let frac = pos - idx as f64;
            let a = f64::from(input.get(idx).copied().unwrap_or(0));
            let b = f64::from(
                input
                    .get(idx + 1)
                    .copied()
                    .or_else(|| input.last().copied())
                    .unwrap_or(0),
            );
            (a + (b - a) * frac).round() as i16
        })
        .collect()
}

/// The gain for a volume of 0–100: a cubic curve, `(v / 100)³`.
///
/// Loudness is perceived roughly logarithmically; a cubic curve is the usual cheap
/// approximation (mixers such as PulseAudio's use it): 100 is unity (0 dB), 80 is
/// −5.8 dB, 50 is −18 dB, 20 is −42 dB and 0 is silence, so the low half of the range
/// stays usable instead of crowding every audible setting into the top few steps.
pub fn volume_gain(volume: u8) -> f32 {
    let v = f32::from(volume.min(100)) / 100.0;
    v * v * v
}

/// Multiplies `samples` by `gain`, saturating.
pub fn apply_gain(samples: &mut [i16], gain: f32) {
    if (gain - 1.0).abs() < f32::EPSILON {
        return;
    }
    for s in samples {
        *s = scale(*s, gain);
    }
}

fn scale(s: i16, gain: f32) -> i16 {
    // `as` from f32 to i16 saturates (and maps NaN to 0), which is what is wanted.
    (f32::from(s) * gain).round() as i16
}

/// A linear fade-out of `total` samples, `left` of which are still to go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fade {
    /// Samples still to fade.
    pub left: usize,
    /// The fade's length.
    pub total: usize,
}

impl Fade {
    /// A fade of `total` samples.
    pub fn new(total: usize) -> Self {
        Self {
            left: total.max(1),
            total: total.max(1),
        }
    }

    /// Fades `samples` (the next ones played), returning how many were taken; samples
    /// after the fade's end are not touched and not counted.
    pub fn apply(&mut self, samples: &mut [i16]) -> usize {
        let n = self.left.min(samples.len());
        for s in samples.iter_mut().take(n) {
            // From just below 1 down to 0 at the last sample.
            let g = (self.left - 1) as f32 / self.total as f32;
            *s = scale(*s, g);
            self.left -= 1;
        }
        n
    }

    /// True when the fade is over.
    pub fn done(&self) -> bool {
        self.left == 0
    }
}

/// Root mean square of the samples (0 for none), in sample units.
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|s| f64::from(*s).powi(2)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// What a loopback capture heard of the probe tone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Heard {
    /// The quietest 50 ms of the capture (the room and the line with no tone), dBFS.
    pub floor_db: f64,
    /// The loudest 50 ms, dBFS.
    pub peak_db: f64,
    /// The tone stood out: at least [`HEARD_MARGIN_DB`] over the floor and above
    /// [`HEARD_MIN_DB`].
    pub heard: bool,
}

/// How far above the capture's own floor the tone must be.
pub const HEARD_MARGIN_DB: f64 = 10.0;
/// Quieter than this is not a tone, whatever the floor.
pub const HEARD_MIN_DB: f64 = -70.0;

fn dbfs(rms: f64) -> f64 {
    20.0 * (rms.max(0.5) / f64::from(i16::MAX)).log10()
}

/// Compares the capture's loudest and quietest 50 ms windows: the probe tone (400 ms)
/// fills some windows, the silence around it others, whatever the loopback's delay.
pub fn heard(capture: &[i16], rate: u32) -> Heard {
    let window = (rate as usize / 20).max(1);
    let levels: Vec<f64> = capture
        .chunks(window)
        .filter(|c| c.len() == window)
        .map(rms)
        .collect();
    let floor = levels.iter().copied().fold(f64::INFINITY, f64::min);
    let peak = levels.iter().copied().fold(0.0, f64::max);
    if levels.is_empty() {
        return Heard {
            floor_db: dbfs(0.0),
            peak_db: dbfs(0.0),
            heard: false,
        };
    }
    let (floor_db, peak_db) = (dbfs(floor), dbfs(peak));
    Heard {
        floor_db,
        peak_db,
        heard: peak_db >= HEARD_MIN_DB && peak_db - floor_db >= HEARD_MARGIN_DB,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize, amplitude: f64) -> Vec<i16> {
        (0..n)
            .map(|i| (amplitude * (2.0 * std::f64::consts::PI * i as f64 / 16.0).sin()) as i16)
            .collect()
    }

    #[test]
    fn a_tone_over_silence_is_heard_and_noise_alone_is_not() {
        // 300 ms silence, 400 ms at -30 dBFS, 500 ms silence, at 16 kHz.
        let mut c = vec![0i16; 4800];
        c.extend(tone(6400, 1036.0));
        c.extend(vec![0i16; 8000]);
        let h = heard(&c, 16000);
        assert!(h.heard, "{h:?}");
        assert!(
            (h.peak_db - -33.0).abs() < 1.0,
            "a sine's RMS is 3 dB under its peak: {h:?}"
        );
        // The same tone buried in noise as loud: not heard.
        let noise: Vec<i16> = (0..c.len())
            .map(|i| if i % 2 == 0 { 1000 } else { -1000 })
            .collect();
        let buried: Vec<i16> = c
            .iter()
            .zip(&noise)
            .map(|(a, b)| a.saturating_add(*b))
            .collect();
        assert!(!heard(&buried, 16000).heard, "{:?}", heard(&buried, 16000));
        // Silence, and a tone far below anything a PA passes: not heard.
        assert!(!heard(&vec![0i16; 19200], 16000).heard);
        let mut faint = vec![0i16; 4800];
        faint.extend(tone(6400, 5.0));
        faint.extend(vec![0i16; 8000]);
        assert!(!heard(&faint, 16000).heard, "{:?}", heard(&faint, 16000));
        assert!(!heard(&[], 16000).heard);
    }

    #[test]
    fn resampling_keeps_duration_and_shape() {
        let input: Vec<i16> = (0..1600).map(|i| (i % 100) as i16 * 100).collect();
        let up = resample_linear(&input, 16000, 48000);
        assert_eq!(up.len(), 4800);
        assert_eq!(up[0], input[0]);
        assert_eq!(up[3], input[1]);
        // Half-way between two input samples.
        assert_eq!(up[1], 33);
        let down = resample_linear(&input, 16000, 8000);
        assert_eq!(down.len(), 800);
        assert_eq!(resample_linear(&[], 16000, 48000), Vec::<i16>::new());
        assert_eq!(resample_linear(&[5], 44100, 48000), vec![5]);
    }

    #[test]
    fn gain_saturates_and_volume_is_cubic() {
        let mut s = [i16::MAX, i16::MIN, 100];
        apply_gain(&mut s, 2.0);
        assert_eq!(s, [i16::MAX, i16::MIN, 200]);
        assert!((volume_gain(100) - 1.0).abs() < 1e-6);
        assert!(volume_gain(0).abs() < 1e-9);
        assert!((volume_gain(50) - 0.125).abs() < 1e-6);
        assert!(volume_gain(200) <= 1.0);
    }

    #[test]
    fn fade_ends_at_zero() {
        let mut f = Fade::new(4);
        let mut s = [1000i16; 6];
        assert_eq!(f.apply(&mut s), 4);
        assert!(f.done());
        assert_eq!(s, [750, 500, 250, 0, 1000, 1000]);
    }

    #[test]
    fn mono_and_rms() {
        assert_eq!(to_mono(&[1, 3, 5], 1), vec![1, 3, 5]);
        assert_eq!(to_mono(&[i16::MAX, i16::MAX], 2), vec![i16::MAX]);
        assert!((rms(&[3, -3, 3, -3]) - 3.0).abs() < 1e-9);
        assert_eq!(rms(&[]), 0.0);
    }
}
