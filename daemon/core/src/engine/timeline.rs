//! Simulated time for the engine: feed inputs at given times and fire every deadline in
//! between, exactly as the daemon's loop does with a real clock. Used by
//! `eewgate replay`, the scenario tests and the property tests, so all three exercise
//! the same loop.

use super::{Engine, Input, Step};
use crate::report::JstTime;

/// Upper bound on deadline ticks fired by one call, so a scheduling bug can never hang a
/// replay (the engine's deadlines always move forward; this is belt and braces).
pub const MAX_TICKS_PER_ADVANCE: usize = 100_000;

/// An engine driven in simulated time.
#[derive(Clone, Debug)]
pub struct Timeline {
    engine: Engine,
    now: Option<JstTime>,
    deadline: Option<JstTime>,
}

impl Timeline {
    /// Starts with nothing scheduled; simulated time begins at the first input.
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            now: None,
            deadline: None,
        }
    }

    /// The engine (for inspection).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Current simulated time (the latest time fed or ticked).
    pub fn now(&self) -> Option<JstTime> {
        self.now
    }

    /// The next scheduled deadline.
    pub fn deadline(&self) -> Option<JstTime> {
        self.deadline
    }

    /// Fires every deadline up to and including `t`, then sets the time to `t`.
    /// Times never run backwards: an earlier `t` is taken as the current time.
    pub fn advance_to(&mut self, t: JstTime) -> Vec<Step> {
        let t = self.now.map_or(t, |now| now.max(t));
        let mut steps = Vec::new();
        for _ in 0..MAX_TICKS_PER_ADVANCE {
            match self.deadline {
                Some(d) if d <= t => {
                    let at = self.now.map_or(d, |now| now.max(d));
                    steps.push(self.step(Input::Tick, at));
                }
                _ => break,
            }
        }
        self.now = Some(t);
        steps
    }

    /// Advances to `at` and feeds `input` there. Returns the ticks fired on the way and
    /// the input's own step, in order.
    pub fn feed(&mut self, input: Input, at: JstTime) -> Vec<Step> {
        let mut steps = self.advance_to(at);
        let at = self.now.unwrap_or(at);
        steps.push(self.step(input, at));
        steps
    }

    /// Fires deadlines until nothing is scheduled or the next one is after `limit`.
    pub fn drain(&mut self, limit: JstTime) -> Vec<Step> {
        let mut steps = Vec::new();
        for _ in 0..MAX_TICKS_PER_ADVANCE {
            match self.deadline {
                Some(d) if d <= limit => {
                    let at = self.now.map_or(d, |now| now.max(d));
                    steps.push(self.step(Input::Tick, at));
                }
                _ => break,
            }
        }
        steps
    }

    fn step(&mut self, input: Input, at: JstTime) -> Step {
        let step = self.engine.step(input, at);
        self.now = Some(at);
        // A deadline not after `at` would be fired again at once; the engine never returns
        // one, but guard against it by nudging it past `at`.
        self.deadline = step
            .next_deadline
            .map(|d| if d <= at { super::add_ms(at, 1) } else { d });
        step
    }
}
