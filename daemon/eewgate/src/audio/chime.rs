//! The built-in chimes that open a new event's announcement, synthesised at start-up at
//! the output's rate (no asset files, so they cannot go missing).
//!
//! Both are this project's own simple designs. They deliberately do not imitate NHK's
//! EEW chime (a distinctive broadcast sound, not ours to copy, and one people associate
//! with the broadcast warning rather than their building's system).

use std::f32::consts::TAU;

/// A built-in chime: its name (the `[audio] chime` value) and what it sounds like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChimeDef {
    /// The name used in the settings file.
    pub name: &'static str,
    /// A description for the documentation.
    pub description: &'static str,
}

/// Every built-in chime; the first is the default.
pub const CHIMES: &[ChimeDef] = &[
    ChimeDef {
        name: "alert",
        description: "two rising tones (G5 then C6, bright, 0.2 s each), played twice; \
                      about 1.1 s — urgent and clearly audible over background noise",
    },
    ChimeDef {
        name: "bell",
        description: "a softer two-strike bell (E5 then C5, inharmonic partials, slow \
                      decay); about 1.6 s — for quiet buildings such as hospitals",
    },
];

/// The default chime.
pub const DEFAULT_CHIME: &str = "alert";

/// Peak level of the synthesised chimes: −6 dBFS, like a normalised speech clip's peaks,
/// so the chime is not louder than the words that follow it.
const PEAK: f32 = 0.5;

/// One partial of a struck tone: frequency ratio, amplitude, decay rate (1/s).
type Partial = (f32, f32, f32);
/// One strike: start (s), length (s), fundamental (Hz), partials.
type Strike = (f32, f32, f32, &'static [Partial]);

/// Adds one struck tone at `start_s` into `buf`.
fn strike(buf: &mut [f32], rate: u32, start_s: f32, dur_s: f32, freq: f32, partials: &[Partial]) {
    let rate_f = rate as f32;
    let start = (start_s * rate_f) as usize;
    let len = (dur_s * rate_f) as usize;
    // 4 ms attack and a 15 ms release avoid clicks at both ends.
    let attack = (0.004 * rate_f).max(1.0);
    let release = (0.015 * rate_f).max(1.0);
    for (i, out) in buf.iter_mut().skip(start).take(len).enumerate() {
        let t = i as f32 / rate_f;
        let mut v = 0.0;
        for (ratio, amp, decay) in partials {
            v += amp * (-decay * t).exp() * (TAU * freq * ratio * t).sin();
        }
        let i_f = i as f32;
        let env = (i_f / attack).min(1.0) * ((len as f32 - i_f) / release).min(1.0);
        *out += v * env;
    }
}

/// The samples of chime `name` at `rate` Hz, or `None` for an unknown name.
pub fn synthesize(name: &str, rate: u32) -> Option<Vec<i16>> {
    let rate = rate.max(1000);
    let (total_s, plan): (f32, Vec<Strike>) = match name {
        "alert" => {
            // A bright, slightly square-ish timbre (odd partials) that cuts through noise.
            const BRIGHT: &[Partial] = &[(1.0, 1.0, 3.0), (2.0, 0.25, 6.0), (3.0, 0.3, 8.0)];
            let (low, high) = (783.99, 1046.5);
            (
                1.15,
                vec![
                    (0.0, 0.2, low, BRIGHT),
                    (0.22, 0.26, high, BRIGHT),
                    (0.56, 0.2, low, BRIGHT),
                    (0.78, 0.34, high, BRIGHT),
                ],
            )
        }
        "bell" => {
            // Inharmonic partials of a small bell; upper ones die away first.
            const BELL: &[Partial] = &[
                (1.0, 1.0, 2.2),
                (2.0, 0.45, 3.5),
                (2.76, 0.3, 5.0),
                (5.4, 0.12, 9.0),
            ];
            (
                1.6,
                vec![(0.0, 0.75, 659.25, BELL), (0.55, 1.05, 523.25, BELL)],
            )
        }
        _ => return None,
    };
    let mut buf = vec![0.0f32; (total_s * rate as f32) as usize];
    for (start, dur, freq, partials) in plan {
        strike(&mut buf, rate, start, dur, freq, partials);
    }
    let peak = buf.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let norm = if peak > 0.0 { PEAK / peak } else { 0.0 };
    Some(
        buf.iter()
            .map(|v| (v * norm * f32::from(i16::MAX)).round() as i16)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::dsp::rms;

    #[test]
    fn every_chime_is_audible_and_bounded() {
        for c in CHIMES {
            for rate in [8000, 16000, 44100, 48000] {
                let s = synthesize(c.name, rate).unwrap();
                let secs = s.len() as f64 / f64::from(rate);
                assert!((1.0..2.0).contains(&secs), "{} {secs}", c.name);
                assert!(rms(&s) > 1000.0, "{} is too quiet", c.name);
                let peak = s.iter().map(|v| v.unsigned_abs()).max().unwrap();
                assert!((15000..=16500).contains(&peak), "{} peak {peak}", c.name);
                // Starts and ends without a click.
                assert!(s[0].unsigned_abs() < 200 && s[s.len() - 1].unsigned_abs() < 200);
            }
        }
        assert!(synthesize("nhk", 48000).is_none());
        assert_eq!(CHIMES[0].name, DEFAULT_CHIME);
    }
}
