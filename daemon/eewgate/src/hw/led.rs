//! What the status LED shows: the engine's pattern combined with the status model's
//! faults, as a cycle of colours a person in the equipment room can read without a
//! screen.
//!
//! | state | pattern |
//! |---|---|
//! | normal | steady green |
//! | alert | fast red blink (150 ms on/off) |
//! | exercise (training, test, drill) | slow blue blink (1 s on/off; green without a blue pin) |
//! | upstream fault (links) | steady amber (red + green) |
//! | time fault | amber double blink |
//! | verification overdue (an output's scheduled proof) | green with a short amber flash every 2 s |
//! | internal fault (storage, an output) | steady red |
//! | lamp test (a self-test, a few seconds) | red, green, blue, amber, off in turn |

use std::time::Duration;

use eew_core::engine::LedPattern;
use serde::Serialize;

use crate::status::Status;

/// What the LED says, most urgent last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LedState {
    /// All well.
    Normal,
    /// An output's scheduled end-to-end proof is overdue.
    VerificationOverdue,
    /// A link fault (or every link down).
    UpstreamFault,
    /// The clock is not trustworthy.
    TimeFault,
    /// Storage or an output is faulty.
    InternalFault,
    /// An exercise is running.
    Exercise,
    /// A real alert is running.
    Alert,
    /// A lamp test: every colour in turn (shown only while one runs; an alarm ends it).
    LampTest,
}

/// One colour (red, green, blue).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rgb(pub bool, pub bool, pub bool);

const OFF: Rgb = Rgb(false, false, false);
const RED: Rgb = Rgb(true, false, false);
const GREEN: Rgb = Rgb(false, true, false);
const BLUE: Rgb = Rgb(false, false, true);
const AMBER: Rgb = Rgb(true, true, false);

/// The state for an engine pattern and the status model: an alert or exercise shows
/// over faults (people must see the alarm); among faults the most serious shows.
pub fn state(engine: LedPattern, status: &Status) -> LedState {
    match engine {
        LedPattern::LampTest => return LedState::LampTest,
        LedPattern::Alert => return LedState::Alert,
        LedPattern::Exercise => return LedState::Exercise,
        LedPattern::Normal | LedPattern::Fault => {}
    }
    let internal = !status.storage.ok || status.outputs.values().any(|v| v.starts_with("fault"));
    if internal {
        LedState::InternalFault
    } else if status.time.fault {
        LedState::TimeFault
    } else if engine == LedPattern::Fault
        || status.all_links_down
        || status.links.values().any(|l| l.fault)
    {
        LedState::UpstreamFault
    } else if status.verification_fault() {
        LedState::VerificationOverdue
    } else {
        LedState::Normal
    }
}

/// The cycle of (colour, duration) a state shows; one step means steady.
pub fn frames(state: LedState, has_blue: bool) -> Vec<(Rgb, Duration)> {
    let ms = Duration::from_millis;
    match state {
        LedState::Normal => vec![(GREEN, Duration::ZERO)],
        LedState::Alert => vec![(RED, ms(150)), (OFF, ms(150))],
        LedState::Exercise => {
            let c = if has_blue { BLUE } else { GREEN };
            vec![(c, ms(1000)), (OFF, ms(1000))]
        }
        LedState::UpstreamFault => vec![(AMBER, Duration::ZERO)],
        LedState::VerificationOverdue => vec![(GREEN, ms(1750)), (AMBER, ms(250))],
        LedState::TimeFault => vec![
            (AMBER, ms(200)),
            (OFF, ms(200)),
            (AMBER, ms(200)),
            (OFF, ms(1400)),
        ],
        LedState::InternalFault => vec![(RED, Duration::ZERO)],
        LedState::LampTest => {
            let mut v = vec![(RED, LAMP_STEP), (GREEN, LAMP_STEP)];
            if has_blue {
                v.push((BLUE, LAMP_STEP));
            }
            v.extend([(AMBER, LAMP_STEP), (OFF, LAMP_STEP)]);
            v
        }
    }
}

/// How long each colour of the lamp test shows.
const LAMP_STEP: Duration = Duration::from_millis(500);

/// How long a lamp test lasts: every colour once, then the standing pattern again.
pub fn lamp_test_length(has_blue: bool) -> Duration {
    frames(LedState::LampTest, has_blue)
        .iter()
        .map(|(_, d)| *d)
        .sum()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;
    use crate::status::LinkStatus;

    fn healthy() -> Status {
        let mut s = Status::default();
        s.storage.ok = true;
        s.links.insert("a".into(), LinkStatus::default());
        s
    }

    #[test]
    fn each_situation_has_its_own_state() {
        let s = healthy();
        assert_eq!(state(LedPattern::Normal, &s), LedState::Normal);
        assert_eq!(state(LedPattern::Alert, &s), LedState::Alert);
        assert_eq!(state(LedPattern::Exercise, &s), LedState::Exercise);
        assert_eq!(state(LedPattern::Fault, &s), LedState::UpstreamFault);
        let mut link = healthy();
        link.links.get_mut("a").unwrap().fault = true;
        assert_eq!(state(LedPattern::Normal, &link), LedState::UpstreamFault);
        let mut time = healthy();
        time.time.fault = true;
        assert_eq!(state(LedPattern::Fault, &time), LedState::TimeFault);
        let mut storage = healthy();
        storage.storage.ok = false;
        assert_eq!(state(LedPattern::Fault, &storage), LedState::InternalFault);
        let mut relay = healthy();
        relay
            .outputs
            .insert("relay:1".into(), "fault: read-back".into());
        assert_eq!(state(LedPattern::Normal, &relay), LedState::InternalFault);
        let mut overdue = healthy();
        overdue.verification_overdue.push("audio".into());
        assert_eq!(
            state(LedPattern::Normal, &overdue),
            LedState::VerificationOverdue
        );
        // A link fault is more serious than an overdue proof.
        overdue.links.get_mut("a").unwrap().fault = true;
        assert_eq!(state(LedPattern::Normal, &overdue), LedState::UpstreamFault);
        // A failed proof shows like an overdue one.
        let mut failed = healthy();
        failed
            .verification
            .entry("relay:1".into())
            .or_default()
            .record(crate::status::Evidence {
                at: chrono::DateTime::UNIX_EPOCH,
                source: "operator".into(),
                method: "operator".into(),
                ok: false,
                measurement_ms: None,
                detail: None,
            });
        assert_eq!(
            state(LedPattern::Normal, &failed),
            LedState::VerificationOverdue
        );
        // The alarm shows over any fault.
        assert_eq!(state(LedPattern::Alert, &storage), LedState::Alert);
        assert_eq!(state(LedPattern::LampTest, &storage), LedState::LampTest);
    }

    #[test]
    fn every_state_looks_different() {
        let all = [
            LedState::Normal,
            LedState::VerificationOverdue,
            LedState::UpstreamFault,
            LedState::TimeFault,
            LedState::InternalFault,
            LedState::Exercise,
            LedState::Alert,
            LedState::LampTest,
        ];
        for blue in [true, false] {
            let looks: Vec<_> = all.iter().map(|s| frames(*s, blue)).collect();
            for (i, a) in looks.iter().enumerate() {
                for b in looks.iter().skip(i + 1) {
                    assert_ne!(a, b);
                }
            }
        }
        assert_eq!(
            frames(LedState::Normal, true),
            vec![(GREEN, Duration::ZERO)]
        );
        assert_eq!(frames(LedState::Alert, true)[0].0, RED);
        assert_eq!(frames(LedState::Exercise, true)[0].0, BLUE);
    }
}
