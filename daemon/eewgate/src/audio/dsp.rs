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

#[cfg(test)]
mod tests {
    use super::*;

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
